"""The dashboard, driven headless with Streamlit's AppTest on the bundled model.

AppTest does not fire ``st.fragment(run_every=...)`` timers, so the tests wait
on the job object in the session state and call ``at.run()`` again, as a
browser's poll would.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from umask.cli import main as cli_main
from umask.config import Config
from umask.evaluate import classify_masked
from umask.masks import part_indicators
from umask.targets import choose_targets
from umask.text import duration, percent
from umask.models import load_model
from umask.optimise import UniversalSearch
from umask.results import load_result, result_from_zip, result_to_zip
from ui.session import result_id

from .conftest import registered, tiny_classifier

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 120  # seconds per script run: the first run loads the model


@pytest.fixture(scope="module")
def model():
    return load_model("efficientnet_lite0")


def generate_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("app_pages/generate.py").run()  # not necessarily the first page
    assert not at.exception
    return at


def configure(at: AppTest, *, k: int = 2, steps: int = 40, family: str = "grid", target_seed: int = 0, stop: bool = True) -> None:
    at.sidebar.selectbox(key="gen_family").set_value(family)
    at.sidebar.number_input(key="gen_k").set_value(k)
    at.sidebar.number_input(key="gen_steps").set_value(steps)
    at.sidebar.number_input(key="gen_seed").set_value(target_seed)
    at.sidebar.checkbox(key="gen_stop").set_value(stop)


def start_endless_run(at: AppTest, k: int, seed: int = 0):
    """Click Generate for a run with no end, and return its job once the worker steps."""
    configure(at, k=k, steps=100_000, stop=False, target_seed=seed)
    at.sidebar.button(key="gen_go").click().run()
    job = at.session_state["umask_job"]
    deadline = time.monotonic() + 60
    while job.snapshot().step < 3:
        if time.monotonic() > deadline:
            job.stop()
            raise AssertionError("the run did not start stepping within 60 s")
        time.sleep(0.05)
    return job


def watch_until_done(job, timeout: float) -> bool:
    """Wait for ``job`` as an open page does: with a heartbeat every second.

    A job nobody watches for a minute stops by itself, so a bare wait fails
    whenever the worker is slow to start (a busy machine), not just when the
    run hangs.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.touch()
        if job.wait(1.0):
            return True
    return False


def finish(at: AppTest, timeout: float = 120.0):
    job = at.session_state["umask_job"]
    assert watch_until_done(job, timeout), "the run did not end in time"
    at.run()  # the poll that sees the end
    assert not at.exception
    return job


def hidden_part_mask(labels: torch.Tensor, part: int) -> torch.Tensor:
    """Built independently of the page: 1 everywhere except on ``part``."""
    return 1.0 - part_indicators(labels)[part : part + 1]


@pytest.mark.real
def test_generate_streams_then_explore_matches_the_engine(model):
    at = generate_page()
    assert at.title[0].value == "One image, many classes"
    assert "What am I looking at?" in at.markdown[0].value
    configure(at, k=2, steps=40)
    at.sidebar.button(key="gen_go").click().run()
    assert not at.exception
    job = at.session_state["umask_job"]
    assert job.config.k == 2 and job.config.mask_family == "grid" and job.config.model == "efficientnet_lite0"
    # The click's own redraw shows the button greyed: a second click would throw this run away.
    assert at.sidebar.button(key="gen_go").disabled
    # The page is drawn while the run is live: progress, controls, curves.
    assert at.get("progress") and at.button(key="gen_stop_run")
    # The classroom note folds away beside a run, so the live image stays in view.
    assert at.expander[0].label == "What am I looking at?" and "K parts" in at.expander[0].markdown[0].value
    finish(at)
    snap = job.snapshot()
    result = snap.result
    assert snap.state == "finished" and result.steps <= 40
    verdict = at.success if result.hit_count == 2 else at.warning  # green only when every mask hits
    assert verdict[0].value.startswith(f"{result.hit_count} of 2 masks give their target")
    assert at.session_state["umask_result"] is result
    assert len(at.get("plotly_chart")) == 2  # loss and success curves
    assert len(at.get("image")) == 2  # the image with its parts, the per-mask probabilities
    # Once the run has ended, the per-mask table is the result's: measured on the saved image shown above it.
    table = next(m.value for m in at.markdown if m.value.startswith("| part | target"))
    assert table.startswith("| part | target | prediction (saved image) |")  # no longer "current"
    rows = table.splitlines()[2:]
    assert len(rows) == 2
    for part, (row, target, pred, prob) in enumerate(zip(rows, result.targets, result.predictions, result.target_probs)):
        assert row == (f"| {part} | {model.categories[target]} | {model.categories[pred]} | {percent(prob, 1)} | "
                       f"{':green[hit]' if pred == target else ':red[miss]'} |")

    at.switch_page("app_pages/explore.py").run()
    assert not at.exception
    parts = next(b for b in at.button_group if b.key.startswith("exp_parts_"))
    assert parts.options == ["0", "1"] and parts.value == [1]  # part min(5, K-1) hidden by default
    # Hide part 0 only: what the page says must be the engine's prediction.
    parts.set_value([0])
    at.run()
    assert not at.exception
    engine = classify_masked(model, result.image, hidden_part_mask(result.labels, 0), fill=result.fill)
    best, p = engine.top(0, 1)[0]
    verdict = "target hit" if best == result.targets[0] else f"target '{model.categories[result.targets[0]]}' missed"
    shown = (at.success or at.warning)[0].value
    assert shown == f"part 0 hidden → '{model.categories[best]}' {percent(p, 1)}, {verdict}"
    top = at.dataframe[0].value
    assert list(top["class"]) == [model.categories[c] for c, _ in engine.top(0, 5)]
    assert list(top["probability"]) == [percent(q, 1) for _, q in engine.top(0, 5)]
    owned = [f"{model.categories[c]} is part {result.targets.index(c)}'s target" for c, _ in engine.top(0, 5)
             if c in result.targets]
    assert (f"Among these five: {'; '.join(owned)}." if owned else "None of these five is a part's target.") in \
        [c.value for c in at.caption]
    # Two parts hidden: the combined mask, still the engine's numbers.
    next(b for b in at.button_group if b.key.startswith("exp_parts_")).select(1)
    at.run()
    # (K = 2 on a grid uses the top two of four squares: the bottom half stays visible.)
    keep = 1.0 - part_indicators(result.labels).sum(dim=0, keepdim=True)
    both = classify_masked(model, result.image, keep, fill=result.fill)
    top = at.dataframe[0].value
    assert list(top["class"]) == [model.categories[c] for c, _ in both.top(0, 5)]
    assert at.info[0].value.startswith("all parts hidden → ")
    # The download is the engine's zip of this result, and it reads back.
    assert at.sidebar.get("download_button")
    data = at.session_state["_umask_memo"]["zip"][("zip", result_id(result), result.steps, result.seconds)]
    back = result_from_zip(data)
    assert back.targets == result.targets and torch.equal(back.image, result.image)


@pytest.mark.real
def test_a_run_that_ends_while_explore_is_open_shows_its_image_there(model):
    # Endless runs, stopped from the test: a run that stops at 100 % can end
    # before Explore is drawn (a fraction of a second on a fast machine).
    at = generate_page()
    first = start_endless_run(at, k=2)
    second = None
    try:
        at.switch_page("app_pages/explore.py").run()
        assert at.info[0].value.startswith("A run is going on the **Generate** page: its image comes here when it ends")
        first.stop()  # as if it had reached its end while Explore was open
        assert watch_until_done(first, 60)
        at.run()  # the app-wide heartbeat's poll that sees the end (a browser's timer fires it)
        assert not at.exception
        assert at.session_state["umask_result"] is first.snapshot().result
        assert at.caption[0].value.startswith("generated here (efficientnet_lite0, grid, K=2, seed 0, ended ")
        assert "mode hide, hidden pixels black (0), 64 x 64 px" in at.caption[0].value  # as Generate names the fill

        # A second run, from Generate, ending while Explore shows the first one's image: it takes its place.
        at.switch_page("app_pages/generate.py").run()
        second = start_endless_run(at, k=2, seed=1)
        assert second is not first
        at.switch_page("app_pages/explore.py").run()
        assert at.info[0].value == "A new run is going on the **Generate** page: its image replaces this one when it ends."
        second.stop()
        assert watch_until_done(second, 60)
        at.run()
        assert at.session_state["umask_result"] is second.snapshot().result
        assert at.caption[0].value.startswith("generated here (efficientnet_lite0, grid, K=2, seed 1, ended ")
        assert not [i for i in at.info if "run is going" in i.value]
    finally:
        for job in (first, second):
            if job is not None:
                job.stop()


@pytest.mark.real
def test_a_run_goes_on_while_its_tab_shows_another_page_and_stops_when_the_tab_is_gone(model):
    at = generate_page()
    job = start_endless_run(at, k=2)
    try:
        job.idle_timeout = 10.0  # the page's 90 s, shortened for the test (a loaded CI takes seconds per script run)
        at.switch_page("app_pages/explore.py").run()
        deadline = time.monotonic() + 25  # two and a half idle timeouts on Explore, which never polls the run itself
        while time.monotonic() < deadline:
            time.sleep(0.5)
            at.run()  # what the app-wide heartbeat fragment's timer does in a browser
        assert not at.exception
        assert job.alive and job.snapshot(touch=False).state == "running"
        # The tab closes: nothing polls any more, and the run ends by itself.
        assert job.wait(30)
        assert job.snapshot(touch=False).state == "abandoned"
    finally:
        job.stop()


@pytest.mark.real
def test_the_click_that_starts_a_run_draws_its_first_step(model):
    at = generate_page()
    first = start_endless_run(at, k=2)  # now a worker holds the model, as on a server in use
    first.stop()
    assert first.wait(30)
    at.run()
    at.sidebar.button(key="gen_go").click().run()
    job = at.session_state["umask_job"]
    try:
        assert job is not first
        # Drawn by the click's own run, not by a poll 2 s later: the page waited for the first step
        # (a warm worker takes a fraction of the FIRST_FRAME_WAIT_S it may wait).
        line = at.get("progress")[0].proto.text
        assert re.match(r"Running: step [1-9]", line), line
        assert "gen_just_started" not in at.session_state  # taken by that run: no later run waits
    finally:
        job.stop()


@pytest.mark.real
def test_clicks_while_running_neither_kill_nor_restart_the_run(model):
    at = generate_page()
    job = start_endless_run(at, k=4)
    try:
        before = job.snapshot().step
        # Other widgets: the sidebar and a page switch and back.
        at.sidebar.number_input(key="gen_k").set_value(6)
        at.sidebar.selectbox(key="gen_family").set_value("hstripes")
        at.run()
        at.switch_page("app_pages/explore.py").run()
        at.switch_page("app_pages/generate.py").run()
        assert not at.exception
        assert at.session_state["umask_job"] is job and job.alive and job.config.k == 4
        assert any(i.value.startswith("The sidebar's settings differ from the run shown below; **Stop** it") for i in at.info)
        assert at.sidebar.button(key="gen_go").disabled  # a click would throw the live run away
        deadline = time.monotonic() + 30  # it steps on, however slow the machine
        while job.snapshot().step <= before:
            assert time.monotonic() < deadline, "the run stopped stepping"
            time.sleep(0.05)
        # Pause, Resume and Stop are buttons of the live view.
        at.button(key="gen_pause").click().run()
        assert job.snapshot().state == "paused"
        at.button(key="gen_resume").click().run()
        assert job.snapshot().state == "running"
        deadline = time.monotonic() + 60  # some masks won, so the bar below has something to show
        while job.snapshot().best_success_rate < 0.5:
            assert time.monotonic() < deadline, "no mask was won within 60 s"
            time.sleep(0.05)
        at.button(key="gen_stop_run").click().run()
        assert watch_until_done(job, 30)
        at.run()
        snap = job.snapshot()
        assert snap.state == "stopped" and snap.result is not None and snap.result.steps == snap.step
        assert at.session_state["umask_result"] is snap.result  # Stop keeps the best image so far
        verdict = at.success if snap.result.hit_count == 4 else at.warning  # a partial result is not shown as a success
        assert verdict[0].value.startswith(f"{snap.result.hit_count} of 4 masks give their target")
        bar = at.get("progress")[0].proto
        assert "Stopped" in bar.text
        # Its bar is the saved image's share, as its line says (not a few steps of 100,000).
        assert bar.value == int(100 * snap.result.success_rate), (bar.value, snap.result.success_rate)  # st.progress truncates
        assert not at.sidebar.button(key="gen_go").disabled
        assert not [b for b in at.button if b.key in ("gen_pause", "gen_resume", "gen_stop_run")]  # nothing left to stop
    finally:
        job.stop()


@pytest.mark.real
def test_two_sessions_run_at_once_without_disturbing_each_other(model, monkeypatch):
    import umask
    from ui.models import cached_model

    cached_model.clear()  # a fresh process, as far as the model cache goes
    loads, load = [], umask.load_model
    monkeypatch.setattr(umask, "load_model", lambda spec, *a, **kw: loads.append(spec) or load(spec, *a, **kw))
    tabs = [generate_page(), generate_page()]
    for at, seed in zip(tabs, (1, 2)):
        configure(at, k=2, steps=60, target_seed=seed, stop=False)
    tabs[0].sidebar.button(key="gen_go").click().run()
    first = tabs[0].session_state["umask_job"]
    first.pause()  # held mid-run (a paused run keeps its place) until the second tab's run is going too
    tabs[1].sidebar.button(key="gen_go").click().run()
    jobs = [first, tabs[1].session_state["umask_job"]]
    assert jobs[0] is not jobs[1]
    assert jobs[0].alive and jobs[1].alive  # both runs at the same time
    assert loads == ["efficientnet_lite0"] and jobs[0].model is jobs[1].model  # loaded once, shared by both tabs
    jobs[0].resume()
    for at in tabs:
        finish(at)
    results = [job.snapshot().result for job in jobs]
    assert all(job.snapshot().state == "finished" and r.steps == 60 for job, r in zip(jobs, results))
    assert results[0].targets != results[1].targets
    for at, job, result in zip(tabs, jobs, results):
        assert at.session_state["umask_result"] is result
        # Each result is the one its config makes alone: nothing leaked between the runs.
        alone = UniversalSearch(model, job.config).run()
        assert torch.equal(result.image, alone.image) and result.predictions == alone.predictions


@pytest.mark.real
def test_a_run_beyond_the_servers_cap_waits_its_turn_and_says_so(model):
    tabs = [generate_page()]
    running = [start_endless_run(tabs[0], k=2)]
    pool = running[0].pool
    try:
        while len(running) < pool.max_workers:
            tabs.append(generate_page())
            running.append(start_endless_run(tabs[-1], k=2))
        late = generate_page()
        configure(late, k=2, steps=5, stop=False)
        late.sidebar.button(key="gen_go").click().run()
        job = late.session_state["umask_job"]
        deadline = time.monotonic() + 30
        while job.snapshot().waiting_behind != 0:
            assert time.monotonic() < deadline, "the run beyond the cap did not wait in line"
            time.sleep(0.05)
        late.run()  # the poll
        texts = [el.value for el in late.info]
        assert f"Waiting for its turn: this server runs at most {pool.max_workers} optimisations at once and all are " \
               "busy; this one is next and starts as soon as one of them ends. A run whose tab was closed or reloaded " \
               "ends by itself within 90 s." in texts, texts
        # The progress line says the same, not "loading the model" beside it.
        assert late.get("progress")[0].proto.text == "Waiting for its turn..."
        assert job.snapshot().step == 0
        # A second one in line, paused and then stopped there: no step, so no
        # result, and the image Explore shows (here: the first tab's) stays.
        other = generate_page()
        kept = UniversalSearch(model, Config(k=2, steps=1, stop_at_success=False)).run()
        other.session_state["umask_result"], other.session_state["umask_result_source"] = kept, "uploaded"
        configure(other, k=2, steps=5, stop=False)
        other.sidebar.button(key="gen_go").click().run()
        queued = other.session_state["umask_job"]
        while queued.snapshot().waiting_behind != 1:
            assert time.monotonic() < deadline + 30, "the second run beyond the cap did not wait in line"
            time.sleep(0.05)
        other.button(key="gen_pause").click().run()
        assert other.get("progress")[0].proto.text.startswith("Waiting for its turn (paused: once it starts, it holds")
        other.button(key="gen_stop_run").click().run()
        assert queued.wait(10) and queued.snapshot().result is None
        other.run()
        assert other.get("progress")[0].proto.text == ("Stopped before its first step: no image was made, "
                                                      "so there is nothing to keep.")
        assert other.session_state["umask_result"] is kept and other.session_state["umask_result_source"] == "uploaded"
        assert not other.success and not other.warning  # no verdict on a run that made nothing
        running[0].stop()  # one busy worker comes free: the waiting run takes it
        finish(late)
        assert job.snapshot().state == "finished" and job.snapshot().result.steps == 5
        assert not any(el.value.startswith("Waiting") for el in late.info)
    finally:
        for other in running:
            other.stop()


@pytest.mark.real
def test_upload_a_cli_result_and_a_bad_file(model, tmp_path, monkeypatch):
    out = tmp_path / "cli-result"
    assert cli_main(["generate", "--k", "3", "--masks", "hstripes", "--steps", "5", "--out", str(out)]) == 0
    saved = load_result(out)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # zipped the way a user zips a folder
        for path in sorted(out.iterdir()):
            archive.write(path, f"cli-result/{path.name}")
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("app_pages/explore.py").run()
    assert "No image yet" in at.info[0].value
    at.sidebar.file_uploader(key="exp_upload").set_value(("cli-result.zip", buffer.getvalue(), "application/zip"))
    at.run()
    assert not at.exception
    shown = at.session_state["umask_result"]
    assert shown.targets == saved.targets and torch.equal(shown.image, saved.image)
    assert "uploaded: cli-result.zip" in at.caption[0].value
    parts = next(b for b in at.button_group if b.key.startswith("exp_parts_"))
    assert parts.options == ["0", "1", "2"] and parts.value == [2]  # part min(5, K-1) = 2 hidden
    engine = classify_masked(model, saved.image, hidden_part_mask(saved.labels, 2), fill=saved.fill)
    assert list(at.dataframe[0].value["class"]) == [
        model.categories[c] for c, _ in engine.top(0, 5)
    ]
    # A file that is not a result: one sentence, the page keeps the last good result.
    at.sidebar.file_uploader(key="exp_upload").set_value(("notes.zip", b"not a zip", "application/zip"))
    at.run()
    assert not at.exception
    assert at.sidebar.error[0].value.startswith("The upload is not a zip archive")
    assert at.sidebar.error[0].value.endswith(" The page still shows the result uploaded: cli-result.zip.")
    assert at.session_state["umask_result"] is shown
    # Cleared, the error goes; the same file uploaded again is read again.
    at.sidebar.file_uploader(key="exp_upload").set_value(None).run()
    assert not at.sidebar.error
    at.sidebar.file_uploader(key="exp_upload").set_value(("cli-result.zip", buffer.getvalue(), "application/zip")).run()
    at.sidebar.file_uploader(key="exp_upload").set_value(None).run()
    at.session_state["umask_result"] = None  # e.g. another result came since
    at.run()
    at.sidebar.file_uploader(key="exp_upload").set_value(("cli-result.zip", buffer.getvalue(), "application/zip")).run()
    assert at.session_state["umask_result"].targets == saved.targets
    # A result made with a model this torchvision does not know: a warning, the page works on the models it has.
    import dataclasses

    foreign = result_to_zip(dataclasses.replace(saved, model="futurenet_x"))
    at.sidebar.file_uploader(key="exp_upload").set_value(("future.zip", foreign, "application/zip")).run()
    assert not at.exception
    assert "made with 'futurenet_x', which is not a model known here" in at.sidebar.warning[0].value
    picker = next(m for m in at.sidebar.multiselect if m.label == "Models to compare")
    assert picker.value == ["efficientnet_lite0"] and "futurenet_x" not in picker.options
    # A result naming a local checkpoint: loaded when the file lies under the folder the server opens, not elsewhere.
    import torchvision

    served, elsewhere = tmp_path / "served", tmp_path / "elsewhere"
    for folder in (served, elsewhere):
        folder.mkdir()
        torch.save(torchvision.models.mobilenet_v3_small(num_classes=1000).state_dict(), folder / "net.pth")
    monkeypatch.setenv("UMASK_FOLDERS_ROOT", str(served))
    outside = f"mobilenet_v3_small={elsewhere / 'net.pth'}"
    at.sidebar.file_uploader(key="exp_upload").set_value(("far.zip", result_to_zip(dataclasses.replace(saved, model=outside)),
                                                         "application/zip")).run()
    assert not at.exception
    assert at.sidebar.warning[0].value == (f"The checkpoint '{elsewhere / 'net.pth'}' is outside {served}; the dashboard "
                                           "loads checkpoints under that folder only (UMASK_FOLDERS_ROOT names it when the dashboard "
                                           "starts); compare this result on the models listed.")
    picker = next(m for m in at.sidebar.multiselect if m.label == "Models to compare")
    assert picker.value == ["efficientnet_lite0"] and outside not in picker.options
    # A space after "=" (load_model strips it) does not make the path look relative.
    spaced = f"mobilenet_v3_small= {elsewhere / 'net.pth'}"
    at.sidebar.file_uploader(key="exp_upload").set_value(("far2.zip", result_to_zip(dataclasses.replace(saved, model=spaced)),
                                                         "application/zip")).run()
    assert not at.exception and "is outside" in at.sidebar.warning[0].value
    inside = f"mobilenet_v3_small={served / 'net.pth'}"
    at.sidebar.file_uploader(key="exp_upload").set_value(("near.zip", result_to_zip(dataclasses.replace(saved, model=inside)),
                                                         "application/zip")).run()
    assert not at.exception and not at.sidebar.warning
    picker = next(m for m in at.sidebar.multiselect if m.label == "Models to compare")
    assert picker.value == [inside]


def test_a_bad_poll_or_switch_interval_is_one_sentence_on_the_page(monkeypatch):
    monkeypatch.setenv("UMASK_SWITCH_INTERVAL", "0")
    at = generate_page()
    assert not at.exception
    assert [e.value for e in at.error] == ["UMASK_SWITCH_INTERVAL is '0'; it must be a number of seconds above 0, such as 0.0005."]
    monkeypatch.delenv("UMASK_SWITCH_INTERVAL")
    monkeypatch.setenv("UMASK_POLL_S", "often")
    at = generate_page()
    assert [e.value for e in at.error] == ["UMASK_POLL_S is 'often'; it must be a number of seconds above 0, such as 2."]


@pytest.mark.real
def test_a_model_without_weights_shows_a_message_and_the_page_stays_usable(model, monkeypatch):
    from umask.models import STUDY_MODELS, list_models

    monkeypatch.setenv("UMASK_OFFLINE", "1")
    at = generate_page()
    # The study's six with their download size (their weights are not here), short enough for the sidebar.
    sizes = {m.name: m.download_mb for m in list_models()}
    options = at.sidebar.selectbox(key="gen_model").options
    assert options[0] == "efficientnet_lite0"
    assert [f"{name} ({sizes[name]:.0f} MB)" for name in STUDY_MODELS] == [o for o in options if "MB)" in o]
    assert "resnet50 (98 MB)" in options
    at.sidebar.selectbox(key="gen_model").set_value("resnet50")
    configure(at, k=2, steps=5)
    # Said on choosing it, before any click.
    at.run()
    assert "Its weights are not on this machine yet" in " ".join(c.value for c in at.sidebar.caption)
    at.sidebar.button(key="gen_go").click().run()
    assert not at.exception
    assert "umask_job" not in at.session_state
    assert not at.error and at.warning[0].value == (
        "resnet50 is not available here: The weights of 'resnet50' are not in the torch cache and "
        "download.pytorch.org cannot be reached.")
    assert "resnet50-11ad3fa6.pth" in at.expander[0].markdown[0].value  # the file and the folder, for whoever fixes it
    # Back to the bundled model: Generate works.
    at.sidebar.selectbox(key="gen_model").set_value("efficientnet_lite0")
    at.sidebar.button(key="gen_go").click().run()
    job = finish(at)
    result = job.snapshot().result
    assert result is not None
    # The missing model again, beside a finished run: refused, and no "click Generate to run with them".
    at.sidebar.selectbox(key="gen_model").set_value("resnet50")
    at.sidebar.button(key="gen_go").click().run()
    assert at.session_state["umask_job"] is job and [w for w in at.warning if "not available here" in w.value]
    assert not [i.value for i in at.info if "run with them" in i.value]
    at.run()  # nor on the next rerun: the failure is remembered, so a click would fail again
    assert not [i.value for i in at.info if "run with them" in i.value]
    # Nor for settings the layout cannot cut (Generate is greyed out).
    at.sidebar.selectbox(key="gen_model").set_value("efficientnet_lite0")
    configure(at, k=100, family="hstripes")
    at.sidebar.selectbox(key="gen_size").set_value(64).run()
    assert at.sidebar.button(key="gen_go").disabled and not [i.value for i in at.info if "run with them" in i.value]
    # Explore: the missing model's column says so in short, under its name; the others work.
    at.switch_page("app_pages/explore.py").run()
    at.sidebar.multiselect(key=f"exp_models_{result_id(result)}").set_value(["efficientnet_lite0", "resnet50"]).run()
    assert not at.exception and not at.error
    assert [w.value for w in at.warning if "not available here" in w.value] == [
        "resnet50 is not available here: The weights of 'resnet50' are not in the torch cache and download.pytorch.org cannot be reached."]
    # The summary grid says which selected model it lacks, not only what it shows.
    assert any(m.value.startswith("**Every part on every model** (efficientnet_lite0: ") for m in at.markdown)
    assert "Not in the grid: resnet50 (not available here; its column above says why)." in [c.value for c in at.caption]
    remedy = at.expander[0].markdown[0].value
    assert remedy.startswith("Download https://") and "resnet50-11ad3fa6.pth" in remedy  # the remedy, not the warning again
    # A failure is remembered (offline, no network check on every click) until "Try again".
    import umask

    calls = []
    real = umask.load_model
    monkeypatch.setattr(umask, "load_model", lambda spec, **kw: calls.append(spec) or real(spec, **kw))
    at.run()
    assert calls == []
    at.button(key="retry_model_resnet50").click().run()
    assert calls == ["resnet50"] and not at.exception
    assert [w.value for w in at.warning if "not available here" in w.value]  # offline still: said again


@pytest.mark.real
def test_a_model_whose_weights_are_here_but_fail_to_load_is_said_once(model, monkeypatch):
    """A damaged cache file: the sidebar warms the model (quietly), the click says why, once."""
    import umask.models

    monkeypatch.setenv("UMASK_OFFLINE", "1")
    monkeypatch.setattr(umask.models, "weights_available", lambda spec: True)
    at = generate_page()
    at.sidebar.selectbox(key="gen_model").set_value("resnet50")
    configure(at, k=2, steps=5)
    at.run()
    assert not at.exception and not at.warning  # the failed warm-up is not said before the click
    at.sidebar.button(key="gen_go").click().run()
    assert not at.exception  # was: two "Try again" buttons with one key
    assert len([w for w in at.warning if "resnet50 is not available here" in w.value]) == 1


def _tiny48():
    model = tiny_classifier()
    model.name, model.min_size, model.min_run_size = "tiny48", 48, 48
    return model


def test_the_size_list_offers_only_the_sides_the_model_sees_at(tiny_registered):
    with registered("tiny48", _tiny48):
        at = generate_page()
        at.sidebar.selectbox(key="gen_model").set_value("tiny").run()
        size = at.sidebar.selectbox(key="gen_size")
        assert size.options == ["32", "48", "64", "96", "128"] and size.value == 64
        size.set_value(32).run()
        # A model that needs 48: a side it cannot take snaps to the nearest it can.
        at.sidebar.selectbox(key="gen_model").set_value("tiny48").run()
        size = at.sidebar.selectbox(key="gen_size")
        assert size.options == ["48", "64", "96", "128"] and size.value == 48
        assert not at.exception
        at.sidebar.selectbox(key="gen_model").set_value("tiny").run()
        assert at.sidebar.selectbox(key="gen_size").value == 48  # allowed there too: kept


@pytest.mark.real
def test_no_model_is_loaded_for_the_size_list_while_a_run_goes(model, tiny_registered, monkeypatch):
    import ui.models

    loads = []
    real_get = ui.models.get_model
    monkeypatch.setattr(ui.models, "get_model", lambda spec, **kw: (loads.append(spec), real_get(spec, **kw))[1])
    with registered("tiny48", _tiny48):
        at = generate_page()
        job = start_endless_run(at, k=2)
        try:
            # Picking another model mid-run loads nothing (seconds of the run's CPU): every side is offered.
            at.sidebar.selectbox(key="gen_model").set_value("tiny48").run()
            assert "tiny48" not in loads and job.alive
            assert at.sidebar.selectbox(key="gen_size").options == ["32", "48", "64", "96", "128"]
        finally:
            job.stop()
        assert watch_until_done(job, 30)
        at.run()  # the run has ended: now it is loaded, and the list is its own
        assert "tiny48" in loads and at.sidebar.selectbox(key="gen_size").options == ["48", "64", "96", "128"]


@pytest.mark.real
def test_targets_by_name_and_the_study_preset(model):
    at = generate_page()
    at.sidebar.radio(key="gen_preset").set_value("seed").run()
    assert at.sidebar.number_input(key="gen_steps").value == 5000  # the study's budget
    at.sidebar.number_input(key="gen_steps").set_value(123).run()
    at.sidebar.radio(key="gen_preset").set_value("fast").run()
    at.sidebar.radio(key="gen_preset").set_value("seed").run()
    assert at.sidebar.number_input(key="gen_steps").value == 123  # ... but a budget typed in survives a change of recipe
    # A K the layout cannot cut: the button waits and says why beside it (a click did nothing but repeat the error).
    configure(at, k=100, family="hstripes")
    at.sidebar.selectbox(key="gen_size").set_value(64).run()
    assert at.sidebar.button(key="gen_go").disabled
    assert at.sidebar.caption[0].value == "Generate waits: 'hstripes' cannot cut K = 100 parts from a 64 x 64 image."
    assert at.error[0].value == "K = 100 is more parts than 'hstripes' can make on a 64x64 image; the most is 64."
    # The bundled model is blind below 64 pixels: those sides are not offered.
    assert at.sidebar.selectbox(key="gen_size").options == ["64", "96", "128"]
    configure(at, k=2, steps=3)
    at.sidebar.radio(key="gen_targets_how").set_value("by name").run()
    # By name starts from the random targets the preview showed: changing one is one pick, not K.
    seed = at.sidebar.number_input(key="gen_seed").value
    assert at.sidebar.multiselect(key="gen_targets").value == list(choose_targets(2, seed=seed))
    assert not at.sidebar.button(key="gen_go").disabled
    at.sidebar.multiselect(key="gen_targets").set_value([1]).run()
    # One class for K = 2: Generate waits (disabled), the sidebar says why, the preview shows what is picked.
    assert at.sidebar.button(key="gen_go").disabled and "umask_job" not in at.session_state
    assert at.sidebar.caption[0].value == "Generate waits: 1 target class picked for K = 2; pick exactly 2, or choose random targets."
    assert "- part 0 hidden → *goldfish*\n- part 1 hidden → (not picked yet)" in at.markdown[-1].value
    at.sidebar.multiselect(key="gen_targets").set_value([1, 980]).run()
    at.sidebar.button(key="gen_go").click().run()
    job = finish(at)
    assert job.targets == (1, 980) and job.config.optimizer == "sgd" and job.config.lr == 0.1
    result = job.snapshot().result
    assert result.target_names == ("goldfish", "volcano")
    # The study's preset steps on the float image; the page's verdict, table
    # and progress line all speak of the saved 8-bit best image.
    rows = next(m.value for m in at.markdown if m.value.startswith("| part | target")).splitlines()[2:]
    assert [row.split(" | ")[3] for row in rows] == [percent(p, 1) for p in result.target_probs]
    line = at.get("progress")[0].proto.text
    assert f"saved image: {percent(result.success_rate, 0)} of 2 masks on target" in line
    # The speed and time of the optimisation, as the verdict gives them (loading the model is not a step).
    snap = job.snapshot()
    assert (f"{snap.steps_per_s:.1f} steps/s · {duration(result.seconds, tenths=True)} of optimisation "
            f"({duration(snap.elapsed_s, tenths=True)} in all)") in line
    assert any(f"{result.seconds:.1f} s of optimisation." in s.value for s in [*at.warning, *at.success])


def test_settings_survive_a_visit_to_other_pages(model):
    at = generate_page()
    configure(at, k=16, steps=77, target_seed=5, stop=False)
    at.sidebar.radio(key="gen_targets_how").set_value("by name").run()
    at.sidebar.multiselect(key="gen_targets").set_value([1, 980]).run()
    at.switch_page("app_pages/adversarial.py").run()
    at.sidebar.slider(key="adv_eps").set_value(0.012).run()
    at.switch_page("app_pages/explore.py").run()
    at.switch_page("app_pages/generate.py").run()
    assert not at.exception and not at.warning  # no "set via the Session State API" warning either
    sb = at.sidebar
    assert (sb.number_input(key="gen_k").value, sb.number_input(key="gen_steps").value,
            sb.number_input(key="gen_seed").value, sb.checkbox(key="gen_stop").value) == (16, 77, 5, False)
    assert sb.radio(key="gen_targets_how").value == "by name" and sb.multiselect(key="gen_targets").value == [1, 980]
    at.switch_page("app_pages/adversarial.py").run()
    assert not at.exception and at.sidebar.slider(key="adv_eps").value == 0.012


# ------------------------------------------------- the figures the pages draw ---

def test_render_parts_keeps_pixels_sharp_and_outlines_the_parts():
    from umask.masks import layout
    from umask.plots import run as plots
    from umask.images import image_to_uint8

    image = torch.rand(3, 8, 8)
    bare = plots.render_parts(image, None, side=64)
    assert bare.shape == (64, 64, 3)
    # Nearest neighbour: every source pixel is an 8 x 8 block of its exact colour.
    assert (bare == image_to_uint8(image).repeat(8, axis=0).repeat(8, axis=1)).all()
    labels = layout("hstripes", 2, 8)
    drawn = plots.render_parts(image, labels, numbers=False, side=64)
    assert (drawn[31:33] == plots.OUTLINE.astype("uint8")).all()  # the stripe boundary, two pixels thick
    assert (drawn[:30, 2:6] == bare[:30, 2:6]).all()  # inside a part: untouched
    tinted = plots.render_parts(image, labels, selected=[1], numbers=False, side=64)
    assert (tinted[:30] == drawn[:30]).all() and (tinted[34:] != drawn[34:]).any()


def test_part_labels_and_outlines_are_as_large_as_the_parts_hold():
    from umask.masks import layout
    from umask.plots import run as plots
    from umask.plots.run import _label_size, _outline_width, _part_boxes

    def boxes(family, k):
        return _part_boxes(layout(family, k, 64).numpy())

    # 384 px pictures of 64 px layouts (factor 6); the page may show them at half size.
    assert _label_size(boxes("grid", 4), 6, 2, 384) == 32  # big squares: a twelfth of the picture
    stripes = _label_size(boxes("hstripes", 16), 6, 2, 384)
    assert stripes == int(0.7 * 384 / 16)  # 70 % of a stripe's height: a label never spills into the next stripe
    assert _label_size(boxes("hstripes", 62), 6, 2, 384) == 0  # one-row stripes: no label, none legible
    wide = _label_size(boxes("grid", 10), 6, len("9: 100%"), 384)
    assert wide < _label_size(boxes("grid", 10), 6, 1, 384)  # a longer label gets a smaller font
    # Outlines: two pixels round big parts, one round thin ones, none where they would cover the image.
    assert [_outline_width(boxes(f, k), 6) for f, k in [("grid", 62), ("hstripes", 16), ("hstripes", 32), ("hstripes", 62)]] \
        == [2, 2, 1, 0]
    image = torch.rand(3, 64, 64)
    stripes62 = layout("hstripes", 62, 64)
    assert (plots.render_parts(image, stripes62) == plots.render_parts(image, None)).all()  # the image itself, as the model sees it
    assert (plots.render_parts(image, layout("grid", 62, 64)) != plots.render_parts(image, None)).any()
    # The probability map: "k: p%" where it fits; the number alone where only that is legible; none on one-row stripes.
    grid = plots.render_part_probs(layout("grid", 4, 64), [0.5] * 4)
    assert (plots.render_part_probs(layout("grid", 4, 64), [0.0] * 4) != grid).any()
    # One mask reaching 100 % repaints its own part only: the other labels keep their size and place.
    grid16 = layout("grid", 16, 64)
    before, after = (plots.render_part_probs(grid16, [0.05] * 15 + [p], side=320) for p in (0.05, 1.0))
    changed = (before != after).any(axis=2)
    part15 = np.repeat(np.repeat(grid16.numpy() == 15, 5, axis=0), 5, axis=1)
    assert changed.any() and not (changed & ~part15).any()
    plain = plots.render_part_probs(stripes62, [0.5] * 62)
    assert (plain == plain[:, :1]).all()  # every row one colour: no label drawn over the stripes


def test_part_labels_never_cover_each_other():
    from PIL import Image, ImageDraw, ImageFont

    from umask.masks import layout
    from umask.plots.run import _label_size, _part_boxes, _placed_labels

    def placed(family, k, size):
        boxes, factor = _part_boxes(layout(family, k, size).numpy()), 384 // size
        font = ImageFont.load_default(size=_label_size(boxes, factor, len(str(k - 1)), 384))
        return boxes, _placed_labels(ImageDraw.Draw(Image.new("RGB", (384, 384))), font, boxes, factor, {p: str(p) for p in boxes})

    for k in (10, 128):  # room for every one (at K = 128 the widest labels had run into their neighbours)
        boxes, labels = placed("grid", k, 64)
        assert [text for text, _, _ in labels] == [str(p) for p in range(k)]
    boxes, labels = placed("random", 128, 128)  # 128 blocks: some centres lie close together
    assert 0 < len(labels) < len(boxes)
    for n, (_, _, a) in enumerate(labels):
        for _, _, b in labels[n + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


def test_figures_carry_the_numbers_they_are_given():
    from umask.plots import run as plots

    # A loss that reaches 0 (every mask won by its margin) on a log axis: the
    # curve does not just end; its zeros are dots on the axis floor, said so.
    fig = plots.loss_figure([1, 2, 3, 4], [5.0, 0.4, 0.0, 0.0])
    assert fig.layout.yaxis.type == "log" and list(fig.data[1].x) == [3, 4]
    floor = fig.data[1].y[0]
    assert 0 < floor < 0.4 and 10 ** fig.layout.yaxis.range[0] <= floor and "0" in fig.layout.yaxis.title.text
    assert len(plots.loss_figure([1, 2], [5.0, 4.0]).data) == 1  # no zeros: no dots
    # A diverged step (NaN, inf) is neither a 0 nor a reason for a log axis.
    fig = plots.loss_figure([1, 2, 3], [5.0, float("nan"), 4.0])
    assert fig.layout.yaxis.type != "log" and len(fig.data) == 1
    fig = plots.loss_figure([1, 2, 3, 4], [5.0, float("inf"), float("nan"), 0.0])
    assert fig.layout.yaxis.type == "log" and list(fig.data[1].x) == [4]

    steps, rates = list(range(1, 2001)), [min(1.0, s / 1500) for s in range(1, 2001)]
    fig = plots.success_figure(steps, rates)
    assert len(fig.data[0].x) <= 600 and fig.data[0].x[-1] == 2000 and fig.data[0].y[-1] == 100.0
    grid = plots.hit_grid_figure(["a", "b"], [[True, False], [False, False]], [[0.995, 0.1], [0.2, 0.3]],
                                 [["x", "y"], ["z", "w"]], ["goldfish", "volcano"])
    assert grid.data[0].z.tolist() == [[1.0, 0.0], [0.0, 0.0]]  # rows = parts, columns = models
    # 99.5 % is no certainty: never rounded up to "100 %".
    assert grid.data[0].text[0][0] == "hit 99.5 %" and grid.data[0].text[1][1] == "miss 30 %"


@pytest.mark.parametrize("family,k", [("grid", 10), ("hstripes", 62), ("random", 26)])
def test_every_part_has_click_targets_that_lie_on_it(family, k):
    from umask.masks import layout
    from umask.plots import run as plots

    labels = layout(family, k, 64)
    factor = 6
    xs, ys, parts = plots.click_targets(labels, factor)
    assert set(parts) - {-1} == set(range(k))  # even one-row stripes can be clicked
    # A grid's unused squares (-1) have targets too: a click there must pick no part, not the nearest one.
    assert (-1 in parts) == bool((labels < 0).any())
    assert len(parts) <= 1024 + k
    for x, y, part in zip(xs, ys, parts):
        row, col = (y + 0.5) / factor - 0.5, (x + 0.5) / factor - 0.5
        assert row == int(row) and col == int(col)  # the centre of a source pixel
        assert labels[int(row), int(col)] == part
    fig = plots.image_figure(torch.rand(3, 64, 64), labels, clickable=True)
    assert list(fig.data[1].customdata) == parts and fig.layout.hoverdistance == -1
    assert {t for t, p in zip(fig.data[1].text, parts) if p < 0} <= {"no part: not one of the K parts"}


def test_a_worker_process_that_imports_the_app_file_draws_nothing():
    """Streamlit installs app.py as __main__, so a spawned worker process
    imports it as __mp_main__ (multiprocessing's rule for the main script):
    there it must neither draw a page nor load the pages' imports."""
    probe = ("import runpy, sys; runpy.run_path(sys.argv[1], run_name='__mp_main__'); "
             "print(sorted(m for m in ('streamlit', 'torch', 'ui', 'ui.server') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", probe, APP], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "[]" and "Warning" not in done.stderr


def test_streamlit_config_names_real_options():
    """.streamlit/config.toml is read silently: a misspelt option would do
    nothing, and the streaming figure in the README depends on these."""
    import tomllib

    from streamlit import config

    settings = tomllib.loads((Path(APP).parent / ".streamlit" / "config.toml").read_text())
    names = [f"{section}.{key}" for section, options in settings.items() for key in options]
    assert "runner.postScriptGC" in names and "server.fileWatcherType" in names
    for name in names:
        config.get_option(name)  # raises RuntimeError for an unknown option


def test_a_grid_that_k_does_not_fill_is_explained_before_the_run():
    from ui.look import unused_cells_note

    note = ("K = 10 on a grid uses the first 10 of 16 squares (4 x 4, row by row); "
            "the other 6 belong to no part and are never hidden.")
    assert unused_cells_note("grid", 10) == note
    assert unused_cells_note("grid", 16) == "" and unused_cells_note("hstripes", 10) == ""
    assert unused_cells_note("grid", 10, "keep").endswith("the other 6 belong to no part and are hidden in every copy.")
    assert unused_cells_note("grid", 8, "hide").endswith("the last one belongs to no part and is never hidden.")
    at = generate_page()  # K = 10 on a grid by default
    assert note in [c.value for c in at.caption]
