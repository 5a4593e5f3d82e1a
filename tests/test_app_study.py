"""The Study sweeps and Geometry pages, headless (Streamlit AppTest), on a real tiny sweep.

A small sweep (the ``tiny`` test model, grid and hstripes, K = 2 and 3, two
seeds) is made once with :func:`umask.sweep.run_sweep`; the pages must show
what its ``results.csv`` and result folders hold, and the Geometry page what
:mod:`umask.geometry` and :mod:`umask.toy` compute for the same inputs.
"""

from __future__ import annotations

import dataclasses
import os
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from umask.errors import OUT_OF_MEMORY_FIX
from umask.geometry import decision_slice, result_geometry, study_claim
from umask.masks import study_part
from umask.results import load_result, result_to_zip
from umask.sweep import CSV_FILE, SweepPlan, read_rows, run_sweep, typed_rows
from umask.targets import imagenet_classes
from umask.text import percent
from umask.toy import SCATTERED_OFFSETS, classes_in_disc, make_toy, meeting_point, region_map, smallest_disc_with_all_classes

from .conftest import registered, tiny_classifier

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 60
OTHER = "another folder..."


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A finished sweep folder of the tiny model (8 runs, under a second) with its typed rows."""
    with registered("tiny", tiny_classifier):
        out = tmp_path_factory.mktemp("study") / "sweeps" / "demo"
        # 25 steps: most runs reach 100 %, a few do not, so both kinds are on the page.
        plan = SweepPlan(models=("tiny",), families=("grid", "hstripes"), ks=(2, 3), seeds=(0, 1), steps=25, size=16)
        outcome = run_sweep(plan, out)
        assert outcome.ran == 8
        yield out, typed_rows(read_rows(out / CSV_FILE))
    from ui.models import cached_model

    cached_model.clear()  # the page cached "tiny"; no later test may meet it


@pytest.fixture(autouse=True)
def sweeps_root(tmp_path_factory, monkeypatch):
    """The Study and Geometry pages open typed folders under UMASK_FOLDERS_ROOT only: here, pytest's temporary folders."""
    monkeypatch.setenv("UMASK_FOLDERS_ROOT", str(tmp_path_factory.getbasetemp()))


def page(name: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page(f"app_pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def open_sweep(at: AppTest, folder: Path | str) -> None:
    at.sidebar.selectbox(key="study_pick").set_value(OTHER).run()
    at.sidebar.text_input(key="study_path").set_value(str(folder)).run()
    assert not at.exception, at.exception


def open_copy(out: Path, copy: Path) -> AppTest:
    """The Study page showing a copy of the sweep ``out`` (the test may change the copy)."""
    shutil.copytree(out, copy)
    at = page("study")
    open_sweep(at, copy)
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def chart(at: AppTest, key: str) -> dict:
    (element,) = [c for c in at.get("plotly_chart") if c.proto.id and key in c.proto.id] or [None]
    assert element is not None, f"no chart {key}"
    return json.loads(element.proto.spec)


def panels(spec: dict) -> dict[str, list[tuple]]:
    """Subplot title -> [(x, y) of each trace]; traces name their axis 'x', 'x2', ..."""
    titles = [a["text"] for a in spec["layout"].get("annotations", [])]
    out: dict[str, list[tuple]] = {t: [] for t in titles}
    for trace in spec["data"]:
        axis = trace.get("xaxis", "x")
        index = 0 if axis == "x" else int(axis[1:]) - 1
        out[titles[index]].append((trace["x"], trace["y"]))
    return out


def gallery_captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption if c.value.startswith("**K = ")]


# ------------------------------------------------------------------ Study ---


def test_study_page_shows_the_sweep_plots_table_and_gallery(sweep, tmp_path, monkeypatch, tmp_path_factory):
    out, rows = sweep
    monkeypatch.setenv("UMASK_FOLDERS_ROOT", str(tmp_path))  # a root that holds no sweep
    at = page("study")
    assert "Choose a sweep folder" in at.info[0].value  # nothing chosen yet: a hint, no error
    monkeypatch.setenv("UMASK_FOLDERS_ROOT", str(tmp_path_factory.getbasetemp()))
    open_sweep(at, out)
    assert not at.error
    assert metrics(at) == {
        "Finished runs": "8",
        "Models": "1",
        "Mean success": percent(float(np.mean([r["success_rate"] for r in rows])), 0),
        "Image": "16 px",
    }
    assert len(at.get("plotly_chart")) == 3  # success, time, geometry

    # Success rate: one panel per family, K on x, mean over the two seeds on y.
    def mean(family, k, column, only=lambda r: True):
        values = [r[column] for r in rows if r["mask_family"] == family and r["k"] == k and only(r)]
        return float(np.mean(values))

    shown = panels(chart(at, "study_success"))
    assert set(shown) == {"grid", "hstripes"}
    for family, traces in shown.items():
        ((x, y),) = traces
        assert x == [2, 3]
        assert y == pytest.approx([100 * mean(family, k, "success_rate") for k in (2, 3)])
    # Time to 100 %, in steps: only the runs that made it count.
    at.radio(key="study_time_unit").set_value("steps").run()
    succeeded = lambda r: r["succeeded"] == 1  # noqa: E731
    assert any(map(succeeded, rows)) and not all(map(succeeded, rows))  # both kinds, or the check below says little
    time_panels = panels(chart(at, "study_time"))
    assert set(time_panels) == {"grid", "hstripes"}
    for family, traces in time_panels.items():
        ks = [k for k in (2, 3) if any(succeeded(r) for r in rows if r["mask_family"] == family and r["k"] == k)]
        if not ks:
            assert traces == []
            continue
        ((x, y),) = traces
        assert x == ks and y == pytest.approx([mean(family, k, "steps", succeeded) for k in ks])
    # Geometry: the first series is the worst mask's share of values changed (the CSV's l0_max), at most
    # the stripe's share of the image (8 or 6 rows of 16): values already equal to the fill do not change.
    for family, traces in panels(chart(at, "study_geometry")).items():
        x, y = traces[0]
        assert x == [2, 3] and y == pytest.approx([100 * mean(family, k, "l0_max") for k in (2, 3)], abs=1e-3)
        if family == "hstripes":
            assert 25 < y[0] <= 50 and 25 < y[1] <= 100 * 6 / 16

    # The table: one line per (family, K), seeds averaged.
    table = at.dataframe[0].value
    assert len(table) == 4 and set(table["seeds"]) == {2}
    assert list(table["success %"]) == pytest.approx(
        [round(100 * mean(f, k, "success_rate"), 1) for f in ("grid", "hstripes") for k in (2, 3)]
    )

    # Gallery: the first group (grid) and seed 0 by default; one image pair and caption per K.
    assert at.selectbox(key="study_gallery_group").value == ("tiny", "grid", "hide", "seed", 25)
    assert at.radio(key="study_gallery_seed").options == ["0", "1"]
    names = imagenet_classes()
    for family, seed in (("grid", 0), ("hstripes", 1)):
        at.selectbox(key="study_gallery_group").set_value(("tiny", family, "hide", "seed", 25))
        at.radio(key="study_gallery_seed").set_value(seed).run()
        assert not at.exception
        captions = gallery_captions(at)
        assert len(captions) == 2
        for caption, k in zip(captions, (2, 3)):
            (row,) = [r for r in rows if (r["mask_family"], r["k"], r["seed"]) == (family, k, seed)]
            result = load_result(out / row["folder"])
            assert caption.startswith(f"**K = {k}**: {percent(result.success_rate, 0)} in {result.steps} steps")
            part = study_part(k)  # K <= 5: the last part
            assert f"part {part} hidden; target {names[result.targets[part]]}" in caption
            assert caption.endswith(", hit") == (result.predictions[part] == result.targets[part])

    # Filtering a family out removes it from plots, table and gallery.
    at.sidebar.multiselect(key=f"study_hide_families:{out}").set_value(["grid"]).run()
    assert not at.exception
    assert set(panels(chart(at, "study_success"))) == {"hstripes"}
    assert set(at.dataframe[0].value["masks"]) == {"hstripes"}
    assert at.selectbox(key="study_gallery_group").options == ["tiny: hstripes / hide"]
    stripes = [r for r in rows if r["mask_family"] == "hstripes"]  # the figures on top count what is shown
    assert metrics(at) == {"Finished runs shown": f"{len(stripes)} of 8", "Models": "1",
                           "Mean success": percent(float(np.mean([r["success_rate"] for r in stripes])), 0),
                           "Image": "16 px"}
    # ... and every run hidden: a note that says the filters did it, no exception.
    at.sidebar.multiselect(key=f"study_hide_models:{out}").set_value(["tiny"]).run()
    assert not at.exception
    assert at.info[0].value.startswith("The sidebar hides all ") and not at.tabs


def test_study_page_follows_a_growing_sweep_and_keeps_recipes_apart(sweep, tmp_path):
    out, rows = sweep
    grown = tmp_path / "grown"
    at = open_copy(out, grown)
    assert set(panels(chart(at, "study_success"))) == {"grid", "hstripes"}
    # The sweep goes on with a new family, in another recipe: it shows up at the next redraw, unasked.
    run_sweep(SweepPlan(models=("tiny",), families=("vstripes",), ks=(2,), seeds=(0,), steps=20, size=16,
                        preset="fast"), grown)
    at.run()
    assert not at.exception
    assert set(panels(chart(at, "study_success"))) == {"grid", "hstripes", "vstripes"}
    table = at.dataframe[0].value
    assert set(zip(table["masks"], table["preset"], table["step budget"])) == {
        ("grid", "seed", 25), ("hstripes", "seed", 25), ("vstripes", "fast", 20)}
    # Two seeds per row of the study's recipe, one for the new one: never averaged together.
    assert sorted(zip(table["masks"], table["seeds"])) == [("grid", 2)] * 2 + [("hstripes", 2)] * 2 + [("vstripes", 1)]
    assert at.selectbox(key="study_gallery_group").options == [
        "tiny: grid / hide (seed, 25 steps)", "tiny: hstripes / hide (seed, 25 steps)", "tiny: vstripes / hide (fast, 20 steps)"]


def test_study_page_bad_folders_give_one_message(sweep, tmp_path):
    out, _ = sweep
    at = page("study")
    # A folder outside the root is refused by name, before anything is read or written.
    at.sidebar.selectbox(key="study_pick").set_value(OTHER).run()
    at.sidebar.text_input(key="study_path").set_value("/etc").run()
    assert not at.exception and "'/etc' is outside" in at.sidebar.error[0].value and not at.metric
    open_sweep(at, tmp_path / "no-such-sweep")
    assert [e.value for e in at.error] == [f"Sweep folder '{tmp_path / 'no-such-sweep'}' does not exist."]
    assert not at.get("plotly_chart") and not at.metric
    # A pasted path's stray spaces are not part of it.
    at.sidebar.text_input(key="study_path").set_value(f"  {tmp_path / 'no-such-sweep'}\n").run()
    assert [e.value for e in at.error] == [f"Sweep folder '{tmp_path / 'no-such-sweep'}' does not exist."]
    # A sweep whose first run is still going: one sentence, no empty tabs.
    starting = tmp_path / "starting"
    starting.mkdir()
    (starting / CSV_FILE).write_text((out / CSV_FILE).read_text().splitlines()[0] + "\n")
    open_sweep(at, starting)
    assert [i.value for i in at.info] == [f"{starting} has no finished runs yet; they appear here as the sweep finishes "
                                          "them (reload the page)."]
    assert not at.metric and not at.tabs and not at.error

    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / CSV_FILE).write_text("a,b\n1,2\n")
    at.sidebar.text_input(key="study_path").set_value(str(foreign)).run()
    assert not at.exception
    assert len(at.error) == 1 and "is not a umask results.csv" in at.error[0].value

    # A hand-edited cell that is not a number: one sentence that says where (was a ValueError traceback).
    edited = tmp_path / "edited"
    shutil.copytree(out, edited)
    lines = (edited / CSV_FILE).read_text().splitlines()
    cells = lines[2].split(",")
    cells[3] = "three"  # the K column of row 2
    lines[2] = ",".join(cells)
    (edited / CSV_FILE).write_text("\n".join(lines) + "\n")
    at.sidebar.text_input(key="study_path").set_value(str(edited)).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Row 2 of results.csv has 'three' in column k, not a number; fix or delete that row."]

    # A sweep whose run folder went missing: the rest still shows, that run says why.
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    rows = read_rows(broken / CSV_FILE)
    gone = next(r for r in rows if r["mask_family"] == "grid" and r["seed"] == "0" and r["k"] == "3")
    shutil.rmtree(broken / gone["folder"])
    at.sidebar.text_input(key="study_path").set_value(str(broken)).run()
    assert not at.exception
    assert metrics(at)["Finished runs"] == "8" and len(at.get("plotly_chart")) == 3
    assert len(gallery_captions(at)) == 1  # K = 2 still drawn
    assert len(at.error) == 1 and "does not exist" in at.error[0].value


def test_study_page_writes_the_report_and_loads_only_served_checkpoints(sweep, tmp_path):
    out, _ = sweep
    copy = tmp_path / "copy"
    at = open_copy(out, copy)
    at.sidebar.checkbox(key="study_slices").check().run()
    at.sidebar.button(key="study_write").click().run()
    assert not at.exception and not at.sidebar.error
    page_html = (copy / "report.html").read_text()
    assert "Decision regions near the universal image" in page_html and "no slice" not in page_html
    assert at.sidebar.get("download_button")  # the report just written can be downloaded at once

    # A CSV that names a checkpoint outside the served folder: the report says so instead of loading it.
    elsewhere = Path("/nonexistent-umask-test") / "net.pth"
    text = (copy / CSV_FILE).read_text()
    assert text.count("\ntiny,") == 8
    (copy / CSV_FILE).write_text(text.replace("\ntiny,", f"\nmobilenet_v3_small={elsewhere},"))
    at.sidebar.button(key="study_write").click().run()
    assert not at.exception and not at.sidebar.error
    page_html = (copy / "report.html").read_text()
    assert f"no slice (The checkpoint &#x27;{elsewhere}&#x27; is outside" in page_html


def test_study_page_switches_between_sweeps_with_other_runs(sweep, tmp_path):
    out, _ = sweep
    other = tmp_path / "other"
    run_sweep(SweepPlan(models=("tiny",), families=("hstripes",), ks=(2,), seeds=(3,), steps=5, size=16), other)
    at = page("study")
    open_sweep(at, out)
    at.selectbox(key="study_gallery_group").set_value(("tiny", "grid", "hide", "seed", 25))
    at.radio(key="study_gallery_seed").set_value(1).run()
    # The gallery's group and seed of the first folder do not exist in the second: it starts from its own.
    at.sidebar.text_input(key="study_path").set_value(str(other)).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="study_gallery_group").value == ("tiny", "hstripes", "hide", "seed", 5)
    assert len(gallery_captions(at)) == 1
    at.sidebar.text_input(key="study_path").set_value(str(out)).run()
    assert not at.exception, at.exception
    assert len(gallery_captions(at)) == 2


def test_study_page_lists_sweeps_under_its_root(sweep, monkeypatch):
    out, _ = sweep
    root = out.parent.parent
    hidden = root / ".staging" / "demo"
    hidden.mkdir(parents=True, exist_ok=True)
    (hidden / CSV_FILE).write_text((out / CSV_FILE).read_text())
    monkeypatch.setenv("UMASK_FOLDERS_ROOT", str(root))  # without it, the working directory
    at = page("study")
    pick = at.sidebar.selectbox(key="study_pick")
    shown = str(out.relative_to(root))  # "sweeps/demo": a long absolute path would be cut off before its name
    assert pick.options == [shown, OTHER]  # the hidden copy is not offered
    assert pick.value == str(out) and metrics(at)["Finished runs"] == "8"
    assert not at.exception and not at.error
    # A link under the root to a sweep elsewhere is not offered either: a typed path to it would be refused.
    elsewhere = root.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    (elsewhere / CSV_FILE).write_text((out / CSV_FILE).read_text())
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    at = page("study")
    assert at.sidebar.selectbox(key="study_pick").options == [shown, OTHER]
    # A root that is not a folder: one sentence, nothing listed.
    monkeypatch.setenv("UMASK_FOLDERS_ROOT", str(root / "nowhere"))
    at = page("study")
    assert [e.value for e in at.error] == [f"UMASK_FOLDERS_ROOT is '{root / 'nowhere'}', which is not a folder here; set it "
                                           "to the folder that holds the results and sweeps this dashboard may open."]


# --------------------------------------------------------------- Geometry ---


def pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def open_result(at: AppTest, folder: Path | str) -> None:
    """Open ``folder`` by its typed path (the list of found folders is tested on its own)."""
    at.sidebar.radio(key="geo_source").set_value("A result folder").run()
    at.sidebar.selectbox(key="geo_pick").set_value(OTHER).run()
    at.sidebar.text_input(key="geo_path").set_value(str(folder)).run()
    assert not at.exception, at.exception


def upload_zip(at: AppTest, name: str, data: bytes) -> None:
    """Open a zip on the Geometry page by its uploader."""
    at.sidebar.radio(key="geo_source").set_value("Upload a zip").run()
    at.sidebar.file_uploader(key="geo_upload").set_value((name, data, "application/zip")).run()


def assert_distances_are_the_engines(at: AppTest, result) -> None:
    s = result_geometry(result).summary()
    shown = metrics(at)
    assert shown["Worst L0 (values changed)"] == pct(s["max_abs_l0"])
    assert shown["Worst L1, relative"] == pct(s["max_rel_l1"])
    assert shown["Worst L2, relative"] == pct(s["max_rel_l2"])
    assert shown["Worst L∞, relative"] == pct(s["max_rel_linf"])
    assert shown["Worst L2 norm change"] == pct(s["max_norm_change_l2"])
    ball = next(t.value for t in at.text if t.value.startswith("Ball centred at x"))
    assert ball == result_geometry(result).balls_text()
    assert f"radius {s['radius_at_x']:.3f} = " in ball and f"radius {s['enclosing_radius']:.3f} = " in ball


def test_geometry_page_measures_a_result_like_the_engine(sweep):
    out, rows = sweep
    (row,) = [r for r in rows if (r["mask_family"], r["k"], r["seed"]) == ("hstripes", 3, 0)]
    result = load_result(out / row["folder"])
    at = page("geometry")
    assert "Choose a result" in at.info[0].value and metrics(at)["Lines meet?"] == "yes"  # the toy needs no result
    # The sweep's eight runs are offered by their path under the root (type to search), before a typed path.
    at.sidebar.radio(key="geo_source").set_value("A result folder").run()
    root = Path(os.environ["UMASK_FOLDERS_ROOT"])
    listed = at.sidebar.selectbox(key="geo_pick").options
    # Named from the run's own folder up: the parts that tell the runs apart come first.
    runs = [" ‹ ".join(reversed((out / r["folder"]).relative_to(root).parts)) for r in sorted(rows, key=lambda r: r["folder"])]
    assert [o for o in listed if o in runs] == runs and listed[-1] == OTHER
    assert runs[0].startswith("k02-seed0 ‹ seed-25 ‹ grid-hide ‹ tiny ‹ runs ‹ demo ‹ sweeps")
    at.sidebar.selectbox(key="geo_pick").set_value(str(out / row["folder"])).run()
    assert_distances_are_the_engines(at, result)
    open_result(at, out / row["folder"])
    assert not at.error
    assert_distances_are_the_engines(at, result)
    # The per-mask table is umask.geometry's, mask by mask.
    table = at.dataframe[0].value
    expected = result_geometry(result).table()
    assert list(table["k"]) == [0, 1, 2]
    for column in ("abs_l0", "rel_l1", "rel_l2", "abs_linf"):
        assert list(table[column]) == pytest.approx([r[column] for r in expected])
    # The study's claim on this 16 px image: 16 stripes, L0 = 1/16.
    claim = study_claim(result.image, k=16, size=16)
    lines = at.dataframe[1].value.set_index("figure (worst mask)")  # one row per figure, one column per image
    assert list(lines.columns) == ["constant grey 0.5", "this universal image"]
    assert list(lines.loc["L0 (fraction of values changed)"]) == [pct(claim["constant"]["max_abs_l0"]), pct(claim["image"]["max_abs_l0"])] == ["6.25 %"] * 2
    assert list(lines.loc["L2 relative"]) == [pct(claim["constant"]["max_rel_l2"]), pct(claim["image"]["max_rel_l2"])]
    assert list(lines.loc["L2 norm change"]) == [pct(claim["constant"]["max_norm_change_l2"]), pct(claim["image"]["max_norm_change_l2"])]

    # The decision slice: the page's plane is the engine's, and x is where the model puts it.
    at.slider(key="geo_res").set_value(11).run()
    assert any(i.value.startswith("Click **Classify the slice** to classify 11 x 11 points") for i in at.info)
    at.button(key="geo_go").click().run()
    assert not at.exception and not at.error
    model = tiny_classifier()
    sl = decision_slice(model, result.image, result.masks, i=0, j=1, fill=result.fill, resolution=11)
    with torch.no_grad():
        x_class = int(model(result.image[None]).argmax())
    assert sl.centre_class == x_class
    names = imagenet_classes()
    caption = next(c.value for c in at.caption if c.value.startswith("x is classified"))
    assert caption == (f"x is classified {names[x_class]} ({x_class}); {len(set(sl.classes.ravel().tolist()))} classes on "
                       f"the slice; {percent(sl.outside_box.mean(), 0)} of its points leave the [0, 1] box.")
    figure = chart(at, "geo_slice_fig")
    heat = next(trace for trace in figure["data"] if trace["type"] == "heatmap")
    assert [[int(point[2]) for point in row] for row in heat["customdata"]] == sl.classes.tolist()  # the page's map is the engine's
    # The slice stays while the toy below is played with.
    at.toggle(key="toy_meet").set_value(False).run()
    assert any(c.value == caption for c in at.caption)

    # The same copy twice: said at once, beside a greyed button; no slice, no exception.
    at.number_input(key="geo_j").set_value(0).run()
    assert not at.exception and at.button(key="geo_go").disabled
    assert [w.value for w in at.warning] == ["The slice needs two different masks in 0..2; got 0 and 0."]
    assert not [i for i in at.info if i.value.startswith("Click **Classify the slice**")]


def test_geometry_page_zip_current_result_and_bad_input(sweep, tmp_path, monkeypatch):
    out, rows = sweep
    (row,) = [r for r in rows if (r["mask_family"], r["k"], r["seed"]) == ("grid", 2, 1)]
    result = load_result(out / row["folder"])
    at = page("geometry")
    # A zip the engine wrote.
    upload_zip(at, "run.zip", result_to_zip(result))
    assert not at.exception and not at.error
    assert_distances_are_the_engines(at, result)
    assert at.subheader[0].value == "Distances (tiny, grid/hide, K = 2)"
    # Streamlit empties the uploader of a page one leaves: the zip is kept all the same.
    at.switch_page("app_pages/study.py").run()
    at.switch_page("app_pages/geometry.py").run()
    assert at.sidebar.file_uploader(key="geo_upload").value is None
    assert at.subheader[0].value == "Distances (tiny, grid/hide, K = 2)"
    assert_distances_are_the_engines(at, result)
    assert "In use: run.zip, uploaded earlier (upload another file to replace it)." in [c.value for c in at.sidebar.caption]
    # Made with a checkpoint outside the served folder: the slice says why it cannot classify, and offers no retry.
    far = dataclasses.replace(result, model="tiny=/nonexistent-umask-test/net.pth")
    upload_zip(at, "far.zip", result_to_zip(far))
    at.button(key="geo_go").click().run()
    assert not at.exception
    assert at.warning[0].value == (f"{far.model} is not available here: The checkpoint '/nonexistent-umask-test/net.pth' "
                                   f"is outside {Path(os.environ['UMASK_FOLDERS_ROOT']).resolve()}.")
    (how,) = [e for e in at.expander if e.label == "How to make it available"]
    assert [m.value for m in how.markdown] == ["The dashboard loads checkpoints under that folder only "
                                               "(UMASK_FOLDERS_ROOT names it when the dashboard starts)."]
    assert not [b for b in at.button if b.key.startswith("retry_model_")]
    # A checkpoint under the served folder that is not there: the warning says it once, the expander how to go on.
    missing = Path(os.environ["UMASK_FOLDERS_ROOT"]) / "missing.pth"
    gone = dataclasses.replace(result, model=f"tiny={missing}")
    upload_zip(at, "gone.zip", result_to_zip(gone))
    at.button(key="geo_go").click().run()
    assert at.warning[0].value == f"{gone.model} is not available here: The checkpoint of model tiny, '{missing}', does not exist here."
    (how,) = [e for e in at.expander if e.label == "How to make it available"]
    assert [m.value for m in how.markdown] == ["Mend what the warning says, then click **Try again**."]
    assert how.button(key=f"retry_model_{gone.model}")
    # Made with a model no registry here knows: said in one sentence, the page goes on.
    # No click can help: the button is greyed and the sentence says why, with no retry and no CLI remedy.
    newer = dataclasses.replace(result, model="futurenet_x")
    upload_zip(at, "new.zip", result_to_zip(newer))
    assert not at.exception and at.button(key="geo_go").disabled
    assert [w.value for w in at.warning] == ["This result was made with 'futurenet_x', which is not a model known here; "
                                             "its slice cannot be classified here."]
    assert not [b for b in at.button if b.key.startswith("retry_model_")]
    # A file that is not a zip: one sentence, the toy still works.
    upload_zip(at, "run.zip", b"not a zip")
    assert not at.exception
    assert len(at.error) == 1 and "not a zip" in at.error[0].value
    assert metrics(at)["Lines meet?"] == "yes"
    # A folder that does not exist.
    open_result(at, tmp_path / "nothing")
    assert [e.value for e in at.error] == [f"Result folder '{tmp_path / 'nothing'}' does not exist."]
    # A folder outside the root is refused by name, before anything is read.
    open_result(at, "/etc")
    assert "'/etc' is outside" in at.sidebar.error[0].value and "result folders" in at.sidebar.error[0].value
    assert not [h for h in at.subheader if h.value.startswith("Distances")]
    # A relative path starts at the root, not at the server's working directory.
    monkeypatch.setenv("UMASK_FOLDERS_ROOT", str(out))
    open_result(at, row["folder"])
    assert not at.error and not at.sidebar.error
    assert_distances_are_the_engines(at, result)
    # The result made on Generate / Explore is offered first.
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state["umask_result"] = result
    at.switch_page("app_pages/geometry.py").run()
    assert not at.exception
    assert at.sidebar.radio(key="geo_source").value.startswith("The current result")
    assert_distances_are_the_engines(at, result)


def toy_state(at: AppTest) -> tuple[str, str, str, list[str]]:
    """(lines meet?, smallest disc, classes in probe, names of the toy figure's traces)."""
    m = metrics(at)
    names = [t.get("name") for t in chart(at, "toy_fig")["data"] if t.get("name")]
    return m["Lines meet?"], m["Smallest disc with every class"], m["Classes in the probe disc"], names


def expected_toy(angles, offsets, probe=0.3) -> tuple[str, str, str]:
    toy = make_toy(angles, offsets)
    disc = smallest_disc_with_all_classes(region_map(toy, extent=3.0, resolution=121), candidates=41)
    point, residual = meeting_point(toy)
    inside = classes_in_disc(toy, (float(point[0]), float(point[1])), probe)
    return ("yes" if residual < 1e-9 else "no", disc.describe(),
            f"{len(inside)} of {len(angles)}")


def test_memory_that_runs_out_on_a_page_is_one_sentence_and_a_bug_stays_a_bug(sweep, monkeypatch):
    import umask.geometry

    out, rows = sweep
    at = page("geometry")
    upload_zip(at, "run.zip", result_to_zip(load_result(out / rows[0]["folder"])))

    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(umask.geometry, "decision_slice", out_of_memory)
    at.button(key="geo_go").click().run()
    assert not at.exception and [e.value for e in at.error] == [f"This ran out of memory; {OUT_OF_MEMORY_FIX}."]
    monkeypatch.setattr(umask.geometry, "decision_slice", lambda *args, **kwargs: 1 / 0)
    at.button(key="geo_go").click().run()
    assert at.exception[0].value == "division by zero"  # the traceback of a bug, not a sentence


def test_toy_sliders_move_the_lines(sweep):
    at = page("geometry")
    angles = [0, 72, 144, 216, 288]
    meet, disc, probe, names = toy_state(at)
    assert (meet, disc, probe) == expected_toy(angles, [0.0] * 5)
    assert (meet, disc, probe) == ("yes", "r ≈ 0", "5 of 5") and "all lines meet here" in names
    # Lines apart: the slider offsets (the page's defaults) take effect.
    at.toggle(key="toy_meet").set_value(False).run()
    offsets = [at.slider(key=f"toy_b{n}_5").value for n in range(5)]
    assert offsets == list(SCATTERED_OFFSETS[:5])
    meet, disc, probe, names = toy_state(at)
    assert (meet, disc, probe) == expected_toy(angles, offsets)
    assert meet == "no" and "all lines meet here" not in names
    assert float(disc.removeprefix("r = ")) > 1.0 and probe != "5 of 5"
    # Every offset back to 0: the lines meet again; then move one line.
    for n in range(5):
        at.slider(key=f"toy_b{n}_5").set_value(0.0)
    at.run()
    assert toy_state(at)[0] == "yes"
    at.slider(key="toy_b2_5").set_value(0.5).run()
    meet, disc, probe, names = toy_state(at)
    assert meet == "no" and (meet, disc, probe) == expected_toy(angles, [0.0, 0.0, 0.5, 0.0, 0.0])
    # Turning an angle moves a line too.
    at.slider(key="toy_b2_5").set_value(0.0)
    at.slider(key="toy_a1_5").set_value(100).run()
    assert toy_state(at)[:3] == expected_toy([0, 100, 144, 216, 288], [0.0] * 5)
    # Eight classes apart: every one wins somewhere in view at the starting offsets; pull one
    # line's offset down and that class wins nowhere: the page says which, not only "none in view".
    at.slider(key="toy_classes").set_value(8).run()
    assert metrics(at)["Smallest disc with every class"].startswith("r = ")
    assert not [c.value for c in at.caption if " nowhere in this view" in c.value]
    at.slider(key="toy_b3_8").set_value(-2.0).run()
    offsets = [at.slider(key=f"toy_b{n}_8").value for n in range(8)]
    assert expected_toy([45 * n for n in range(8)], offsets)[1] == metrics(at)["Smallest disc with every class"] == "none in view"
    assert any(c.value.startswith("Class 3 wins nowhere in this view") for c in at.caption)
    # Four classes: four lines of sliders; two equal angles is one sentence.
    at.toggle(key="toy_meet").set_value(True)
    at.slider(key="toy_classes").set_value(4).run()
    assert metrics(at)["Classes in the probe disc"] == "4 of 4"
    at.slider(key="toy_a1_4").set_value(0).run()
    assert not at.exception
    assert [e.value for e in at.error] == ["Two classes have the same angle; give every class its own direction."]
