"""Generate: optimise a universal image and watch it form.

The run lives in a :class:`umask.jobs.Job` kept in this session's state (the
search itself in a warm worker process, see ``ui.server.worker_pool``); two
fragments poll it (every 2 s, the curves every 4 s) and redraw the curves, the
image and the per-mask view. Clicking any widget reruns the script but never
touches the run, so it goes on.
"""

from __future__ import annotations

from typing import NamedTuple

import streamlit as st
import torch

import umask
from umask.config import PRESETS
from umask.env import env_seconds
from umask.jobs import Job
from umask.masks import BUILTIN_FAMILIES, check_parts
from umask.models import DEFAULT_MODEL, weights_available
from umask.plots import run as plots
from umask.results import zip_name
from umask.targets import class_label
from umask.text import count, duration, percent
from ui.look import FILLS, PICTURE_HEIGHT, unused_cells_note
from ui.models import MODEL_HELP, get_model, load_failure, model_choices, model_label
from ui.server import configure_gil, or_stop, warm_plotly, worker_pool
from ui.session import JOB_KEY, result_zip, take_run_result

# Redraw periods while a run is live: the image and progress every 2 s, the
# plotly curves every 4 s (UMASK_POLL_S scales both). Each redraw takes CPU from the optimisation (the
# server holds the GIL while it builds figures, the browser redraws plotly
# charts), so they are kept cheap and not too frequent; README, "How the dashboard runs".
POLL_S = 2.0
#: The most the click that starts a run waits for its first step before the
#: page is drawn (a warm worker takes a fraction of a second; a cold one, or a
#: run waiting for a free worker, is shown "starting" or "waiting" instead).
FIRST_FRAME_WAIT_S = 1.5
JUST_STARTED_KEY = "gen_just_started"
# A run nobody has polled for this long (its tab was closed) stops by itself.
# Every page polls (ui.session.keep_run_alive); the margin is for browsers that
# slow the timers of a hidden tab to about one a minute.
IDLE_TIMEOUT_S = 90.0
# A run paused this long stops (its best image kept): a paused run holds one of
# the server's few worker slots, which other students' runs may be waiting for.
PAUSE_LIMIT_S = 600.0
SIZES = (32, 48, 64, 96, 128)
PRESET_LABELS = {"fast": "umask's fast default", "seed": "the study's SGD (lr 0.1)"}

INTRO = (
    "**What am I looking at?** A frozen ImageNet classifier and one small picture. The picture is cut into "
    "K parts, and each part gets its own target class. The only thing that changes is the picture's pixels: "
    "they are nudged, step by step, until hiding part *k* makes the model say target *k*, for every *k* at "
    "once. The study behind this asked: *can one image be made to belong to any class we like?* Watch the "
    "success curve climb, then open **Explore** to hide parts yourself and see what the model sees."
)


def _on_targets_how_change() -> None:
    # "by name" starts from the random targets the preview showed, so
    # changing one class is one pick, not K; earlier picks are kept.
    state = st.session_state
    if state["gen_targets_how"] == "by name" and not state.get("gen_targets"):
        try:
            state["gen_targets"] = list(umask.choose_targets(int(state["gen_k"]), seed=int(state["gen_seed"])))
        except (KeyError, umask.UmaskError):  # no K or seed yet: start empty
            pass


class Sketch(NamedTuple):
    """What the preview draws before a run: the layout and the targets chosen so far (None: not picked yet)."""

    family: str
    mode: str
    k: int
    size: int
    targets: tuple[int | None, ...]


def _least_side(model: str, loadable: bool) -> int:
    """The least side ``model`` sees at (its ``min_size``; EfficientNet-Lite0
    is blind below 64, where every run would end at 0 %), so the size list
    offers no other; 1 while unknown.

    Learning it loads the model, which is not done while this session's run
    is alive (seconds of the CPU it needs); a side learnt once is kept for
    the session. A failed load is said once, on the click.
    """
    known: dict = st.session_state.setdefault("_gen_least_side", {})
    job = st.session_state.get(JOB_KEY)
    if model not in known and loadable and not (job is not None and job.alive):
        loaded = get_model(model, quiet=True)
        if loaded is not None:
            known[model] = loaded.min_size
    return known.get(model, 1)


def sidebar_config() -> tuple[umask.Config | None, Sketch]:
    """Widgets -> (Config or None when the input is not usable yet, the preview's sketch); a click on
    Generate starts the run (:func:`start_job`)."""
    sb = st.sidebar
    sb.header("Generate")
    # The button first, filled in last (it depends on the settings): with
    # the defaults, one click starts a run, and below the settings it sat
    # under the fold of a 1024 x 768 projector.
    go_slot = sb.container()
    choices = model_choices()
    model = sb.selectbox("Model", choices, index=choices.index(DEFAULT_MODEL) if DEFAULT_MODEL in choices else 0,
                         format_func=model_label, persist_state="session", key="gen_model",
                         help=MODEL_HELP)
    weights_here = weights_available(model)
    if not weights_here and load_failure(model) is None:  # once it failed, the page says why instead
        sb.caption("Its weights are not on this machine yet: Generate downloads them first, which needs the internet.")
    family = sb.selectbox("Mask family", BUILTIN_FAMILIES, persist_state="session", key="gen_family",
                          help="grid: equal squares; stripes: K bands; random: K connected blocks.")
    mode = sb.radio("Mask mode", umask.MODES, horizontal=True, persist_state="session", key="gen_mode",
                    format_func=lambda m: "hide part k" if m == "hide" else "keep only part k")
    k = int(sb.number_input("K (masks = target classes)", min_value=2, max_value=128, value=10, step=1, persist_state="session", key="gen_k"))
    sizes = tuple(s for s in SIZES if s >= _least_side(model, weights_here)) or SIZES[-1:]
    if st.session_state.get("gen_size") not in (None, *sizes):  # a side kept from another model
        st.session_state["gen_size"] = min(sizes, key=lambda s: abs(s - st.session_state["gen_size"]))
    # The default through the state alone: a widget given a default while
    # the snap above sets its state makes Streamlit log a warning.
    st.session_state.setdefault("gen_size", 64 if 64 in sizes else sizes[0])
    size = sb.selectbox("Image size (pixels a side)", sizes, persist_state="session", key="gen_size")
    fill = sb.selectbox("Hidden pixels", tuple(FILLS), format_func=FILLS.get, persist_state="session", key="gen_fill")
    how = sb.radio("Targets", ("random", "by name"), horizontal=True, persist_state="session", key="gen_targets_how",
                   on_change=_on_targets_how_change,
                   help="By name starts from the random targets. The k-th class picked is part k's target: removing one "
                        "moves the later ones up a part, and a new pick goes to the last part.")
    targets: tuple[int, ...] | None = None
    names = umask.imagenet_classes()
    if how != "random":
        picked = sb.multiselect("Pick K classes (type to search)", range(len(names)), format_func=class_label,
                                persist_state="session", key="gen_targets")
        if len(picked) == k:
            targets = tuple(picked)
    preset = sb.radio("Preset", tuple(PRESETS), format_func=PRESET_LABELS.get, persist_state="session", key="gen_preset")
    if "gen_steps" not in st.session_state:  # both presets allow the study's 5000; a typed budget is the user's
        st.session_state["gen_steps"] = umask.Config.preset(preset).steps
    steps = int(sb.number_input("Max steps", min_value=1, max_value=100_000, step=50, persist_state="session", key="gen_steps"))
    stop = sb.checkbox("Stop at 100 %", value=True, persist_state="session", key="gen_stop")
    seed = int(sb.number_input("Seed", min_value=0, value=0, step=1, persist_state="session", key="gen_seed",
                               help="Draws the random targets (and the starting noise of the study's preset)."))
    complete = how == "random" or targets is not None
    try:
        check_parts(family, k, size)  # the page says why (the preview); the button waits
        cuttable = True
    except umask.UmaskError:
        cuttable = False
    config = None
    if cuttable and complete:
        try:
            config = umask.Config.preset(
                preset, model=model, mask_family=family, mask_mode=mode, k=k, size=size, fill=fill,
                targets=targets if targets is not None else umask.choose_targets(k, seed=seed), steps=steps,
                stop_at_success=stop, seed=seed, snapshot_every=1,
            )
        except umask.UmaskError as err:
            sb.error(str(err))
    # A click starts the run here, before the button is drawn: drawn after,
    # the button shows it (greyed, "Stop it first") from the click on.
    if st.session_state.get("gen_go") and config is not None:
        start_job(config)
    running = st.session_state.get(JOB_KEY)
    live = running is not None and running.snapshot(touch=False).live  # the state the page shows, not the thread
    # A click during a run would start another in its place: the run on the
    # screen is stopped (its best image kept) before a new one starts.
    if live:
        waits = "A run is going: Stop it first (Stop keeps its best image so far)."
    elif not cuttable:
        waits = f"Generate waits: '{family}' cannot cut K = {k} parts from a {size} x {size} image."
    elif not complete:
        waits = (f"Generate waits: {count(len(picked), 'target class', 'target classes')} picked for K = {k}; "
                 f"pick exactly {k}, or choose random targets.")
    else:
        waits = None
    go_slot.button("Generate", type="primary", key="gen_go", width="stretch", disabled=waits is not None, help=waits)
    if waits is not None and not live:  # beside the greyed button, not only on hover or far below it
        go_slot.caption(waits)
    if weights_here and not (running is not None and running.alive):  # a stopping run's thread still uses the CPU
        # Warm a worker process with the model (loaded for the size list,
        # cached) before the click, so the first frame is not a model load
        # nor a torch import. Not while this session's run goes: a new
        # process would take its CPU.
        pool = worker_pool()
        loaded = get_model(model, quiet=True)  # a failure is said once, on the click
        if loaded is not None and pool is not None:
            pool.prewarm(loaded)
    warm_plotly()
    if config is not None:
        return config, Sketch(family, mode, k, size, config.targets)
    # Not usable yet: the preview says why (or the error above).
    shown = tuple(picked[:k]) + (None,) * max(0, k - len(picked)) if cuttable and not complete else ()
    return None, Sketch(family, mode, k, size, shown)


def poll_seconds() -> float:
    """Seconds between the live view's redraws (UMASK_POLL_S; a bad value stops the page with one sentence)."""
    return or_stop(lambda: env_seconds("UMASK_POLL_S", POLL_S))


def start_job(config: umask.Config) -> None:
    """Replace this session's run with a new one; errors are one sentence and keep the old run."""
    model = get_model(config.model)
    if model is None:
        return  # get_model showed why (e.g. no weights offline); the page stays usable
    try:
        # A slow UMASK_POLL_S polls the run seldom: its idle timeout leaves room for three polls.
        job = Job(model, config, idle_timeout=max(IDLE_TIMEOUT_S, 3 * poll_seconds()), pause_limit=PAUSE_LIMIT_S,
                  pool=worker_pool())
    except umask.UmaskError as err:
        st.error(str(err))
        return
    old = st.session_state.get(JOB_KEY)
    if old is not None:
        old.stop()  # one run per session: a new Generate replaces the old run
    st.session_state[JOB_KEY] = job.start()
    # Not the button's own value: redrawn greyed, the button reads False for
    # the rest of this run. The job itself: a flag left by a run cut short
    # must not make a later run wait.
    st.session_state[JUST_STARTED_KEY] = job


def _timing(snap, stops_early: bool) -> str:
    """Speed and time of the progress line. A run that stops at 100 % usually
    ends long before its step budget (the default's K = 10: about 45 of
    5000 steps), so it is told by its time so far and the budget's bound,
    not by an ETA that reads as a forecast."""
    if snap.state == "paused":  # no speed and no ETA: a paused run has neither
        return "click Resume to go on"
    speed = f"{snap.steps_per_s:.1f} steps/s"
    if not snap.live:  # the optimisation's time, as the verdict below gives it; the wall clock adds the model's loading
        return (f"{speed} · {duration(snap.optimisation_s, tenths=True)} of optimisation "
                f"({duration(snap.elapsed_s, tenths=True)} in all)")
    if stops_early:  # the bound, said as the budget's, not as a forecast ("at most 13 min more" for a 10 s run alarmed)
        return (f"{speed} · {duration(snap.elapsed_s)} so far · ends when every mask hits, usually long before the "
                f"step budget ({duration(snap.eta_s)} away)")
    return f"{speed} · ETA {duration(snap.eta_s)}"


def per_mask_rows(job: Job, snap) -> list[dict]:
    """One row per mask: target, prediction, target probability.

    While the run goes: the latest step's. Once it has ended: the result's,
    measured on the saved 8-bit best image the page shows then (the last
    step's image may be another, and the study's preset steps in float).
    """
    cats = job.model.categories
    if snap.result is not None:
        predictions, probs = snap.result.predictions, snap.result.target_probs
    else:
        predictions, probs = snap.predictions, snap.target_probs
    rows = []
    for part, target in enumerate(job.targets):
        pred = predictions[part] if predictions else None
        rows.append({
            "part": part,
            "target": cats[target],
            "prediction": cats[pred] if pred is not None else "",
            "p(target)": probs[part] if probs else 0.0,
            "hit": pred == target,
        })
    return rows


def per_mask_markdown(rows: list[dict], *, live: bool) -> str:
    """The per-mask rows as a markdown table (part, target, prediction, p(target), hit)."""
    said = "current prediction" if live else "prediction (saved image)"
    lines = [f"| part | target | {said} | p(target) | |", "|---:|---|---|---:|:---:|"]
    for r in rows:
        if r["prediction"] == "":  # before the first step: nothing measured yet, so no "miss 0.0 %"
            lines.append(f"| {r['part']} | {r['target']} | | | |")
            continue
        mark = ":green[hit]" if r["hit"] else ":red[miss]"
        lines.append(f"| {r['part']} | {r['target']} | {r['prediction']} | {percent(r['p(target)'], 1)} | {mark} |")
    return "\n".join(lines)


def live_view() -> None:
    """Everything that changes while the run goes: redrawn by the polling fragment."""
    job: Job | None = st.session_state.get(JOB_KEY)
    if job is None:
        return
    snap = job.snapshot()  # also the heartbeat that keeps the run alive
    cfg = job.config
    state = job.describe(snap.state)
    if snap.error:
        st.error(snap.error)
    if snap.result is not None:
        on_target = f"saved image: {percent(snap.result.success_rate, 0)} of {cfg.k} masks on target"
    else:
        on_target = f"best so far: {round(snap.best_success_rate * cfg.k)} of {cfg.k} masks on target"
    text = f"{state}: step {snap.step} / {snap.total} · {_timing(snap, cfg.stop_at_success)} · {on_target}"
    if snap.waiting_behind is not None:  # said once, below: not "loading the model" too
        text = ("Waiting for its turn (paused: once it starts, it holds after its first step until you click Resume)..."
                if snap.state == "paused" else "Waiting for its turn...")
    elif not snap.live and snap.step == 0 and snap.result is None and not snap.error:
        text = "Stopped before its first step: no image was made, so there is nothing to keep."
    elif snap.state == "running" and snap.step == 0:  # a worker loading torch and the model: say so, not "0.0 steps/s"
        text = "Starting: the engine is loading the model (the first run after the server starts takes longest)..."
    # A run that stops at 100 % fills its bar as its masks are won: by steps,
    # it would sit empty for a whole run that takes 45 of 5000 steps. Once
    # any run has ended, the bar is the saved image's share, as the line says
    # (a run stopped at step 100 of 5000 sat at 2 % beside "100 %").
    if snap.result is not None:
        filled = snap.result.success_rate
    elif not cfg.stop_at_success:
        filled = snap.fraction
    else:
        filled = max(snap.fraction, snap.best_success_rate)
    st.progress(filled, text=text)
    if snap.waiting_behind is not None:
        ahead = snap.waiting_behind
        line = ("this one is next and starts as soon as one of them ends" if ahead == 0 else
                f"{count(ahead, 'run')} {'is' if ahead == 1 else 'are'} ahead of this one, which starts by itself")
        # A reloaded tab is a new session: its old run goes on, unseen, until
        # the idle timeout; say so, or the wait looks endless.
        st.info(f"Waiting for its turn: this server runs at most {job.pool.max_workers} optimisations at once and "
                f"all are busy; {line}. A run whose tab was closed or reloaded ends by itself within "
                f"{job.idle_timeout:.0f} s.")
    if snap.live:  # an ended run has nothing to pause or stop: its Download and Explore buttons come instead
        with st.container(horizontal=True):  # buttons as wide as their words: columns cut "Resume" to "Re..." at 1024 px
            if snap.state == "paused":
                st.button("Resume", key="gen_resume", on_click=job.resume)
            else:
                st.button("Pause", key="gen_pause", on_click=job.pause)
            st.button("Stop", key="gen_stop_run", on_click=job.stop)

    left, right = st.columns([1, 1])
    # Plain PNGs (st.image), not plotly: redrawn every poll, they cost the
    # server and the browser far less, so the optimisation keeps its speed.
    with left:
        st.markdown("**Current image**" if snap.live else "**The universal image (best found, as saved)**")
        st.image(plots.render_parts(snap.image, job.labels, side=384), output_format="PNG")
    with right:
        rows = per_mask_rows(job, snap)
        # No-break spaces: at 1024 px the line broke inside "0 %".
        st.markdown("**Each mask's target probability** (white\u00a00\u00a0% → green\u00a0100\u00a0%)")
        st.image(plots.render_part_probs(job.labels, [r["p(target)"] for r in rows], side=320), output_format="PNG")
    # A markdown table, not st.dataframe: redrawn every poll, it is far cheaper.
    # Up to 12 masks the table takes the height it needs (long class names
    # wrap); beyond, it scrolls rather than push the curves off the screen.
    with st.container(height="content" if len(rows) <= 12 else 480, key="gen_table"):
        st.markdown(per_mask_markdown(rows, live=snap.live))

    if snap.result is not None:
        # The verdict and its buttons live in this fragment, beside the
        # progress they conclude: they appear with the poll that sees the end,
        # whether or not the full rerun below has happened yet.
        result = snap.result
        verdict = st.success if result.hit_count == result.k else st.warning  # a partial result is not a success
        verdict(f"{result.hit_count} of {result.k} masks give their target on the saved 8-bit image "
                f"({percent(result.success_rate, 0)}) after {count(result.steps, 'step')}, {duration(result.seconds, tenths=True)} of optimisation.")
        result_panel(result)
    if not snap.live and take_run_result(job):
        # The run just ended (finished, stopped or failed): its result is
        # Explore's now; redraw the whole page once, which stops the polling.
        st.rerun()


def curves_view() -> None:
    """The loss and success curves: their own, slower fragment (plotly costs the browser most)."""
    job: Job | None = st.session_state.get(JOB_KEY)
    if job is None:
        return
    snap = job.snapshot()
    curves = st.columns(2)
    curves[0].plotly_chart(plots.loss_figure(snap.steps, snap.losses), key="gen_loss")
    curves[1].plotly_chart(plots.success_figure(snap.steps, snap.success_rates), key="gen_success")


def result_panel(result: umask.Result) -> None:
    """Download and explore the finished run."""
    row = st.container(horizontal=True)
    row.download_button("Download result (.zip)", result_zip(result), file_name=zip_name(result),
                        mime="application/zip", key="gen_download", on_click="ignore")
    if row.button("Explore this image", key="gen_explore", type="primary"):
        st.switch_page("app_pages/explore.py")


def preview(sketch: Sketch) -> None:
    """The chosen part layout on a grey image, before any run (also loads the chart code early)."""
    try:
        labels = umask.layout(sketch.family, sketch.k, sketch.size, seed=umask.Config.layout_seed)  # the dashboard never sets one
    except umask.UmaskError as err:
        st.error(str(err))
        return
    names = umask.imagenet_classes()
    col, text = st.columns([1, 1])
    col.plotly_chart(plots.image_figure(torch.full((3, sketch.size, sketch.size), 0.5), labels,
                                        title=f"The {sketch.k} parts ({sketch.family})", side=320, height=PICTURE_HEIGHT),
                     key="gen_preview", config={"displayModeBar": False})
    note = unused_cells_note(sketch.family, sketch.k, sketch.mode)
    if note:
        col.caption(note)
    if not sketch.targets:
        return
    verb = "hidden" if sketch.mode == "hide" else "the only part visible"
    text.markdown("**Targets**\n\n" + "\n".join(
        f"- part {k} {verb} → " + (f"*{names[t]}*" if t is not None else "(not picked yet)")
        for k, t in enumerate(sketch.targets)))


def main() -> None:
    configure_gil()
    poll_s = poll_seconds()  # a bad value is said before any run
    st.title("One image, many classes")
    intro = st.container()
    config, sketch = sidebar_config()
    job: Job | None = st.session_state.get(JOB_KEY)
    # Once a run is on the screen the note folds away: at full length it
    # pushed the live image below the fold of a 1024 x 700 screen.
    (intro.expander("What am I looking at?") if job is not None else intro).markdown(
        INTRO if job is None else INTRO.removeprefix("**What am I looking at?** "))
    if job is None:
        if config is not None:  # else the sidebar says what stops Generate, and "click Generate" would contradict it
            st.info("Choose the settings in the sidebar and click **Generate**. The bundled model runs offline on a laptop CPU.")
        preview(sketch)
        return
    if st.session_state.pop(JUST_STARTED_KEY, None) is job:  # this rerun is the click that started the run
        # The live view polls every POLL_S: drawn now, before the run's first
        # step, the first frame would come one poll after the click (2.4 s measured).
        job.wait_for_first_step(FIRST_FRAME_WAIT_S)
    live = job.snapshot(touch=False).live
    # Not for a model that failed in this session: "click Generate" would fail again (until Try again).
    if config is not None and config != job.config and load_failure(config.model) is None:
        st.info("The sidebar's settings differ from the run shown below; "
                + ("**Stop** it (its best image is kept), then click **Generate** to run with them." if live
                   else "click **Generate** to run with them."))
    st.fragment(live_view, run_every=poll_s if live else None)()
    st.fragment(curves_view, run_every=2.0 * poll_s if live else None)()


main()
