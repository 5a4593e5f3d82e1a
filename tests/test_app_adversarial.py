"""The Adversarial example page, headless (Streamlit AppTest) on the bundled model.

The page must show exactly what :mod:`umask.attacks` computes for the same
settings: the same photo crop, the same attack, the same top-1.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from umask import attacks
from umask.images import load_photo

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "app_pages" / "adversarial.py")

pytestmark = pytest.mark.real


def shown(at: AppTest) -> tuple[str, str]:
    """(the clean top-1, the adversarial top-1) as the two metrics show them."""
    assert not at.exception, at.exception
    metrics = {m.label: m for m in at.metric}
    said, after = metrics["The model says"], metrics["After the attack"]
    # The name large, its confidence and class index below it.
    return f"{said.value} ({said.delta.rsplit('class ', 1)[1]})", f"{after.value} ({after.delta.rsplit('class ', 1)[1]})"


def expected(model, photo, **settings) -> tuple[str, str, attacks.AttackResult]:
    result = attacks.attack(model, photo, **settings)
    top = result.top_clean(1)[0], result.top_adversarial(1)[0]
    return f"{top[0].name} ({top[0].index})", f"{top[1].name} ({top[1].index})", result


@pytest.fixture(scope="module")
def app():
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    return at


def test_page_matches_the_engine_as_epsilon_changes(app, lite0):
    coffee = load_photo(ROOT / "assets" / "coffee.jpg", size=lite0.native_size)  # the page's first photo
    before, after, result = expected(lite0, coffee, eps=attacks.PANDA_EPS)
    assert shown(app) == (before, after) and before.startswith("espresso") and not after.startswith("espresso")
    assert result.success and any("answer changed" in s.value for s in app.success)

    app.slider(key="adv_eps").set_value(0.03).run()
    before, after, _ = expected(lite0, coffee, eps=0.03)
    assert shown(app) == (before, after) and after != shown(app)[0]
    assert any(f"budget is {attacks.eight_bit_budget(0.03) * 255:.0f}/255 =" in c.value for c in app.caption)

    app.slider(key="adv_eps").set_value(0.0).run()
    assert shown(app)[1] == shown(app)[0]
    assert any("nothing may change" in i.value for i in app.info)
    captions = [img.caption for element in app.get("image") for img in element.proto.imgs]
    assert captions[1] == "The perturbation: none at ε = 0 (grey = no change)"  # no reading of an all-grey image
    # What was done to the photo is said (an upload of 20 x 30 was shown as a blurry square without a word).
    assert captions[0] == "The photo, as the model sees it (300x200: shorter side enlarged to 224, centre 224x224 cropped)"


def test_page_targeted_iterative_matches_the_engine(app, lite0):
    app.slider(key="adv_eps").set_value(0.02)
    app.radio(key="adv_kind").set_value("targeted")
    app.radio(key="adv_method").set_value("iterative").run()
    app.selectbox(key="adv_target").set_value(980).run()  # volcano
    app.radio(key="adv_photo").set_value("Chelsea the cat").run()
    cat = load_photo(ROOT / "assets" / "cat.jpg", size=lite0.native_size)
    before, after, result = expected(lite0, cat, eps=0.02, steps=10, target=980)
    assert shown(app) == (before, after) == (before, "volcano (980)")
    assert any("Reached the target" in s.value for s in app.success)
    # The target's line agrees with the page's own metric: reached, it is the top-1 and its confidence.
    # (Not with `result`: sign steps flip on float noise, so two runs of 10 steps can end at other probabilities.)
    line = next(c.value for c in app.caption if c.value.startswith("The target, volcano: "))
    found = re.fullmatch(r"The target, volcano: (?:< )?(\d+\.\d+) % before, (\d+\.\d+ %) after\.", line)
    after_metric = {m.label: m for m in app.metric}["After the attack"].delta
    assert found and float(found[1]) < 1.0 and after_metric.startswith(f"{found[2]} confidence · class 980")

    # Another photo: the cached clean prediction must follow the photo.
    app.radio(key="adv_photo").set_value("A cup of coffee").run()
    coffee = load_photo(ROOT / "assets" / "coffee.jpg", size=lite0.native_size)
    before, after, _ = expected(lite0, coffee, eps=0.02, steps=10, target=980)
    assert shown(app) == (before, after) and before.startswith("espresso")
    # The photo's own class as the target is no fooled model: said so, not a green "reached".
    app.selectbox(key="adv_target").set_value(967).run()
    assert shown(app)[1].startswith("espresso") and not app.success
    assert "The photo already is the target class; pick another target to see the attack move it." in [i.value for i in app.info]


def goldfish_at_panda_eps(app, model, photo: str, file: str, method: str, steps: int):
    """Set the page to a targeted attack on goldfish at ε = 0.007, and
    compute it with the engine: (the attack, the top-1 of its 8-bit PNG)."""
    app.radio(key="adv_photo").set_value(photo)
    app.slider(key="adv_eps").set_value(attacks.PANDA_EPS)
    app.radio(key="adv_kind").set_value("targeted")
    app.radio(key="adv_method").set_value(method).run()
    app.selectbox(key="adv_target").set_value(1).run()  # goldfish
    image = load_photo(ROOT / "assets" / file, size=model.native_size)
    result = attacks.attack(model, image, eps=attacks.PANDA_EPS, steps=steps, target=1)
    saved = attacks.quantise_in_ball(result.adversarial, result.clean, eps=attacks.PANDA_EPS)
    return result, attacks.top_predictions(attacks.predict(model, saved), model.categories, 1)[0]


def test_the_downloaded_png_is_judged_beside_the_verdict(app, lite0):
    """0.007 is 1.8 brightness levels: the float attack may reach a target the
    8-bit PNG (1 level) misses. The page says so next to its green verdict."""
    result, saved_top = goldfish_at_panda_eps(app, lite0, "Chelsea the cat", "cat.jpg", "iterative", steps=10)
    assert result.success and saved_top.index != 1  # the case in point: goldfish in memory, not in the PNG
    assert any("Reached the target" in s.value for s in app.success)
    warnings = [w.value for w in app.warning if w.value.startswith("Unlike the attack shown above, the downloaded 8-bit PNG")]
    # The class as the engine finds it; its probability is the page's own (ten sign steps flip on float
    # noise, so another thread count ends at another probability: 23.5 % with one, 26.1 % with two).
    assert len(warnings) == 1 and re.fullmatch(
        rf"Unlike the attack shown above, the downloaded 8-bit PNG does not reach the target: the model reads it as {re.escape(saved_top.name)} "
        r"\(\d+\.\d+ %\)\. A PNG moves a pixel by whole levels only, 1/255 within this ε; "
        r"raise ε to 0\.008 or use more iterative steps\.", warnings[0]), warnings
    assert attacks.eight_bit_budget(0.008) * 255 == pytest.approx(2)  # the ε it names is one whole level more
    # One level more: the PNG reaches it too, and nothing contradicts the verdict.
    app.slider(key="adv_eps").set_value(0.008).run()
    assert any("Reached the target" in s.value for s in app.success)
    assert not [w for w in app.warning if w.value.startswith("Unlike the attack shown above, the downloaded 8-bit PNG")]


def test_a_png_read_as_another_class_is_said_even_when_both_miss(app, lite0):
    """Coffee, one FGSM step towards goldfish at 0.007: neither the attack nor
    its PNG reaches goldfish, and (on the machines measured: espresso 28.5 %
    against the PNG's consomme 30.8 %) they end on different classes."""
    result, saved_top = goldfish_at_panda_eps(app, lite0, "A cup of coffee", "coffee.jpg", "one step (FGSM)", steps=1)
    after = result.top_adversarial(1)[0]
    # One step that missed: the way on is ε or the iterative form (not "more iterative steps").
    assert any(c.value.endswith(f"on {lite0.name} (one-step FGSM).") for c in app.caption)
    if not result.success:
        assert "The target class was not reached; raise ε or use the iterative form." in [w.value for w in app.warning]
    warnings = [w.value for w in app.warning if w.value.startswith("The downloaded 8-bit PNG is read differently")]
    if result.success or saved_top.index in (1, after.index):
        # A near tie (espresso and consomme are 0.3 % apart in the attack) that
        # another CPU or torch may break the other way: the page must then say nothing of it.
        assert warnings == []
        return
    assert len(warnings) == 1 and warnings[0].startswith(
        f"The downloaded 8-bit PNG is read differently from the attack shown above (not {after.name}): the model reads "
        f"it as {saved_top.name} ("), warnings
    # No "raise ε to the next level": that helps only where the attack itself reached the target.
    assert warnings[0].endswith("A PNG moves a pixel by whole levels only, 1/255 within this ε."), warnings


def test_steps_too_few_for_the_ball_advise_more_steps_not_a_larger_eps(app, lite0):
    # 2 automatic steps of 2/255 move a pixel by 0.0157 at most: at ε = 0.1 a larger ε changes nothing.
    app.radio(key="adv_photo").set_value("Chelsea the cat")
    app.slider(key="adv_eps").set_value(0.1)
    app.radio(key="adv_kind").set_value("targeted")
    app.radio(key="adv_method").set_value("iterative").run()
    app.number_input(key="adv_steps").set_value(2)
    app.selectbox(key="adv_target").set_value(825).run()  # stone wall
    cat = load_photo(ROOT / "assets" / "cat.jpg", size=lite0.native_size)
    result = attacks.attack(lite0, cat, eps=0.1, steps=2, target=825)
    assert result.short_walk and not result.success
    warnings = [w.value for w in app.warning]
    assert any(w.startswith("The target class was not reached; 2 steps of 0.00784 move a pixel by at most 0.0157, "
                            "less than ε: use more iterative steps") for w in warnings), warnings


def test_an_uploaded_photo_stays_after_a_visit_to_another_page(lite0):
    """Streamlit empties an uploader whose page is left; the class's photo must not need uploading again."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.switch_page("app_pages/adversarial.py").run()
    at.sidebar.radio(key="adv_photo").set_value("Upload your own").run()
    assert any(i.value.startswith("Upload a photo in the sidebar") for i in at.info)
    cat = (ROOT / "assets" / "cat.jpg").read_bytes()
    at.sidebar.file_uploader(key="adv_upload").set_value(("our-cat.jpg", cat, "image/jpeg")).run()
    first = shown(at)
    assert first == expected(lite0, load_photo(ROOT / "assets" / "cat.jpg", size=lite0.native_size),
                             eps=attacks.PANDA_EPS)[:2]
    at.switch_page("app_pages/explore.py").run()
    at.switch_page("app_pages/adversarial.py").run()
    assert at.sidebar.file_uploader(key="adv_upload").value is None  # Streamlit's uploader forgot it ...
    assert shown(at) == first  # ... the page did not
    assert "In use: our-cat.jpg, uploaded earlier (upload another file to replace it)." in [c.value for c in at.sidebar.caption]
    # Another file replaces it; clearing the uploader (its ✕) drops it.
    coffee = (ROOT / "assets" / "coffee.jpg").read_bytes()
    at.sidebar.file_uploader(key="adv_upload").set_value(("coffee.jpg", coffee, "image/jpeg")).run()
    assert shown(at)[0].startswith("espresso")
    at.sidebar.file_uploader(key="adv_upload").set_value(None).run()
    assert any(i.value.startswith("Upload a photo in the sidebar") for i in at.info) and not at.metric
