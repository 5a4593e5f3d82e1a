"""What every dashboard page shares: cached models and the CPU budget."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Callable, TypeVar

# Imported up front, once: plotly and streamlit import pandas lazily, and a
# second script thread that meets a half-imported pandas breaks plotly's
# validators ("partially initialized module 'pandas'").
import pandas  # noqa: F401
import streamlit as st
import torch

import umask
from umask.devices import env_count, env_seconds, env_switch, share_of_cores
from umask.masks import grid_side
from umask.models import DEFAULT_MODEL, checkpoint_path, list_models, model_info, weights_available
from umask.images import image_to_uint8
from umask.workers import WorkerPool

T = TypeVar("T")


def or_stop(read: Callable[[], T]) -> T:
    """``read()``, or, when it raises UmaskError (a bad UMASK_* variable), its sentence and a stopped page."""
    try:
        return read()
    except umask.UmaskError as err:
        st.error(str(err))
        st.stop()


def torch_threads() -> int:
    """Threads of one optimisation: :func:`umask.devices.share_of_cores`
    (UMASK_TORCH_THREADS overrides; a bad value stops the page with one sentence)."""
    return or_stop(lambda: env_count("UMASK_TORCH_THREADS", share_of_cores()))


#: Metric labels and values wrap instead of ending in "...": the answer
#: "consomme (925)" or "Smallest disc with every class" must be read whole on
#: a 1024 px projector, where Streamlit's single line cuts them off.
WRAP_METRICS_CSS = """<style>
[data-testid="stMetricValue"] .stMarkdownEllipsis, [data-testid="stMetricValue"] p,
[data-testid="stMetricLabel"] .stMarkdownEllipsis, [data-testid="stMetricLabel"] p {
  white-space: normal; overflow: visible; text-overflow: clip;
}
</style>"""


def style_page() -> None:
    """The dashboard's few style rules (a style-only st.html takes no room on the page)."""
    st.html(WRAP_METRICS_CSS)


def configure_torch() -> None:
    """Set this process's torch threads to :func:`torch_threads` (page-side work)."""
    threads = torch_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@st.cache_resource(show_spinner=False)
def _pool() -> WorkerPool:
    return WorkerPool(threads=torch_threads())


def worker_pool() -> WorkerPool | None:
    """The warm worker processes that Generate's runs go to, one pool per
    server; None (UMASK_WORKERS=0) runs them in threads of the server itself.

    A run in a thread shares the server's interpreter lock with every page
    redraw and slows down while watched; a worker process does not (README,
    "How the dashboard runs").
    """
    if not or_stop(lambda: env_switch("UMASK_WORKERS", True)):
        return None
    return or_stop(_pool)  # a bad UMASK_MAX_RUNS: say so, run nothing


@st.cache_resource(show_spinner="Loading model...")
def cached_model(spec: str) -> umask.Classifier:
    """Load a model once per process; every session shares it read-only (it is
    frozen). Fed at another side, it is a view: ``Classifier.with_resize``."""
    return umask.load_model(spec)


def served_model(spec: str) -> umask.Classifier:
    """The cached model, unless :func:`refused_checkpoint` refuses ``spec``.

    Every page loads through here, so a model named by a visitor's file (an
    uploaded result, a sweep's CSV) meets the same rule.

    Raises:
        UmaskError: refused, or the loader's own one sentence.
    """
    refused = refused_checkpoint(spec)
    if refused:
        raise umask.UmaskError(refused)
    return cached_model(spec)


def get_model(spec: str, *, quiet: bool = False) -> umask.Classifier | None:
    """The cached model, or None after showing the loader's one-sentence error
    (``quiet``: shown elsewhere on the page already).

    A failure is remembered for the session: offline, each retry would wait
    for a network check again on every click.
    """
    failed: dict = st.session_state.setdefault("_umask_model_errors", {})
    if spec not in failed:
        try:
            return served_model(spec)
        except umask.UmaskError as err:
            failed[spec] = str(err)
    if not quiet:
        explain_load_failure(spec)
    return None


def load_failure(spec: str) -> str | None:
    """The loader's sentence for ``spec`` when it failed in this session (see :func:`get_model`)."""
    return st.session_state.get("_umask_model_errors", {}).get(spec)


def explain_load_failure(spec: str) -> None:
    """Why ``spec`` cannot be used, in short for a class; the loader's remedy
    (file names, folders, commands) under an expander for whoever fixes it,
    with a button that tries again (a reload would lose the session's result)."""
    why = load_failure(spec) or "it could not be loaded"
    reason, _, remedy = why.partition(";")  # the loader's sentences: what is wrong; what to do
    st.warning(f"{spec} is not available here: {reason.rstrip('.')}.")
    with st.expander("How to make it available"):
        remedy = remedy.strip()
        if remedy:
            st.write(remedy[:1].upper() + remedy[1:])
        if refused_checkpoint(spec):  # this server's rule, not a missing file: trying again changes nothing
            return
        st.write("Then click **Try again**." if remedy else "Mend what the warning says, then click **Try again**.")
        st.button("Try again", key=f"retry_model_{spec}", on_click=forget_load_failure, args=(spec,))


def forget_load_failure(spec: str) -> None:
    """Let :func:`get_model` try ``spec`` again (its weights may be here now)."""
    st.session_state.get("_umask_model_errors", {}).pop(spec, None)


def fed_model(result: umask.Result, spec: str, *, quiet: bool = False) -> umask.Classifier | None:
    """The shared model for ``spec``, fed ``result`` as :func:`umask.as_fed_for` says (None: it could not load)."""
    model = get_model(spec, quiet=quiet)
    return None if model is None else umask.as_fed_for(model, spec, result)


def unused_cells_note(family: str, k: int, mode: str = "hide") -> str:
    """For a grid that K does not fill: which squares are parts, and what
    becomes of the rest ("" otherwise). Each copy hides its part (hide mode:
    the rest always shows) or shows only its part (keep: the rest never shows)."""
    side = grid_side(k)
    if family != "grid" or side * side == k:
        return ""
    fate = "never hidden" if mode == "hide" else "hidden in every copy"
    return (f"K = {k} on a grid uses the first {k} of {side * side} squares ({side} x {side}, row by row); "
            f"the other {side * side - k} belong to no part and are {fate}.")


def model_label(name: str) -> str:
    """A model in a select box: its name when its weights are here (bundled or
    cached), 'resnet50 (98 MB)' when they would be downloaded first. Short, so
    a 300-pixel sidebar and a multiselect's chips do not cut it off
    (:data:`MODEL_HELP` says what the size is)."""
    info = next((m for m in list_models() if m.name == name), None)
    if info is None or info.download_mb is None or weights_available(name):
        return name
    return f"{name} ({info.download_mb:.0f} MB)"


#: The help of every model select box: what the label's size means.
MODEL_HELP = (f"{DEFAULT_MODEL} is bundled and works offline. A size after a name: that model's weights are not on "
              "this machine yet and download once (that many MB; needs the internet).")


def model_choices() -> list[str]:
    """Registered models that can be used here, the offline default first.

    Their labels are made here, under a spinner: the first time, the download
    sizes come from torchvision's catalogue, an import of seconds that left
    the first visitor's sidebar empty without a word.
    """
    with st.spinner("Listing the models..."):
        choices = [m.name for m in list_models() if m.source != "bundled" or weights_available(m.name)]
        for name in choices:
            model_label(name)  # fills the caches the select boxes' labels read
    return choices


# ------------------------------------------------------- universal images ---

#: Session-state keys shared by the Generate and Explore pages.
JOB_KEY = "umask_job"
RESULT_KEY = "umask_result"
#: How tall a half-page picture (plotly) is drawn, in pixels: about a
#: half-page column's width on a 1024 px screen. Taller, the picture keeps
#: its square shape and blank bands above and below it push what follows
#: below the fold; at 1440 px the pictures are this size.
PICTURE_HEIGHT = 270
RESULT_SOURCE_KEY = "umask_result_source"


#: Seconds between the heartbeats every page sends to this session's run:
#: also how soon another page (Explore, Geometry) shows the image of a run
#: that has just ended.
HEARTBEAT_S = 2.0
#: Which run's result has been handed to Explore (set_result) already.
_HANDED_OVER_KEY = "gen_result_of"


def keep_run_alive() -> None:
    """Touch this session's run from whatever page is open, and hand its
    result over when it ends (:func:`take_run_result`).

    A run stops when nobody has polled it for its idle timeout (the tab was
    closed); Generate's own fragments poll it, and this keeps it going while
    the visitor is on Explore or another page. Draws nothing; polls only
    while there is a run.
    """
    job = st.session_state.get(JOB_KEY)
    st.fragment(_heartbeat, run_every=HEARTBEAT_S if job is not None and job.alive else None)()


def _heartbeat() -> None:
    job = st.session_state.get(JOB_KEY)
    if job is None:
        return
    if job.alive:
        job.touch()
    if take_run_result(job):
        st.rerun()  # the open page redraws with the new result, and this polling ends


def take_run_result(job) -> bool:
    """Make an ended run's result the current one (Explore's, Geometry's), once.

    Returns:
        True when this call handed it over (the caller redraws the page).
    """
    if st.session_state.get(_HANDED_OVER_KEY) is job:
        return False
    snap = job.snapshot(touch=False)
    if snap.live:
        return False
    st.session_state[_HANDED_OVER_KEY] = job
    if snap.result is not None:
        cfg = job.config
        set_result(snap.result, f"generated here ({cfg.model}, {cfg.mask_family}, K={cfg.k}, seed {cfg.seed}, "
                                f"ended {time.strftime('%H:%M:%S')})")
    return True


def result_id(result: umask.Result) -> str:
    """A short fingerprint of a result (image, parts, targets) for widget keys and caches."""
    digest = hashlib.sha1()
    digest.update(image_to_uint8(result.image).tobytes())
    digest.update(result.labels.numpy().tobytes())
    digest.update(repr((result.targets, result.mask_mode, result.fill, result.model)).encode())
    return digest.hexdigest()[:12]


def session_memo(key: tuple, compute: Callable[[], T]) -> T:
    """``compute()`` once per key in this session (a few recent keys kept).

    For work that depends on a result only, on pages whose other widgets
    rerun the script many times (sliders, checkboxes).
    """
    store: dict = st.session_state.setdefault("_umask_memo", {})
    if key not in store:
        if len(store) >= 16:
            store.pop(next(iter(store)))  # the oldest
        store[key] = compute()
    return store[key]


def upload_digest(upload) -> str:
    """A name for an uploaded file's content: the same file uploaded again has the same one."""
    return hashlib.sha1(upload.getvalue()).hexdigest()


def result_from_upload(upload) -> umask.Result:
    """The result in an uploaded zip, read once per distinct file.

    Raises:
        UmaskError: the file is not a result zip.
    """
    return session_memo(("upload", upload_digest(upload)), lambda: umask.result_from_zip(upload.getvalue()))


ROOT_ENV = "UMASK_FOLDERS_ROOT"


def folders_root() -> Path:
    """The folder whose contents the pages may open by a typed path: the
    working directory, or ``$UMASK_FOLDERS_ROOT`` (a page that finds it
    missing says so and stops)."""
    root = Path(os.environ.get(ROOT_ENV) or Path.cwd()).expanduser().resolve()
    if not root.is_dir():
        st.error(f"{ROOT_ENV} is '{os.environ.get(ROOT_ENV)}', which is not a folder here; set it to the folder "
                 "that holds the results and sweeps this dashboard may open.")
        st.stop()
    return root


def under_root(path: Path) -> bool:
    """Whether ``path`` (relative: to the working directory, as files are
    opened) lies under :func:`folders_root`, symbolic links followed."""
    try:
        return path.expanduser().resolve().is_relative_to(folders_root())
    except RuntimeError:  # ~nosuchuser, or a loop of links
        return False


def refused_checkpoint(spec: str) -> str | None:
    """Why the page will not load ``spec``, when it is ``ARCH=PATH`` with the file outside :func:`folders_root`.

    A result from an uploaded zip names its model: a shared server loads only
    checkpoints under the folder it serves, not any file a visitor names.
    """
    try:
        if model_info(spec).source != "checkpoint":
            return None
    except umask.UmaskError:  # a name no registry knows: not a checkpoint (its loader says why)
        return None
    path = checkpoint_path(spec)
    if under_root(path):
        return None
    return (f"The checkpoint '{path}' is outside {folders_root()}; the dashboard loads checkpoints under that folder "
            f"only ({ROOT_ENV} names it when the dashboard starts).")


def find_folders(root: Path, marker: str, depth: int) -> list[str]:
    """Folders at most ``depth`` levels under ``root`` that hold a file
    ``marker`` (results.csv: a sweep; result.json: a result), sorted.

    Hidden folders (a venv's ``.venv``, staging copies) are not entered, nor
    is a folder once it holds the marker (a sweep's runs are found by asking
    for results); a symbolic link to a folder elsewhere is not followed: it
    would open what a typed path may not.
    """
    found = []
    for here, dirs, files in os.walk(root):
        level = len(Path(here).relative_to(root).parts)
        if marker in files:
            found.append(here)
            dirs.clear()
            continue
        dirs[:] = [] if level >= depth else [d for d in dirs if not d.startswith(".") and d not in NEVER_HOLD_RESULTS]
    return sorted(found)


#: Folders a search for results never enters: a venv not named .venv holds
#: torch's deep package tree, which a search six levels down would walk.
NEVER_HOLD_RESULTS = frozenset({"site-packages", "node_modules", "__pycache__"})


def folder_picker(label: str, marker: str, depth: int, *, key: str, placeholder: str, what: str,
                  first: bool = True, deepest_first: bool = False) -> Path | None:
    """A sidebar select box of the folders :func:`find_folders` finds under
    :func:`folders_root` (type to search), with "another folder..." for a
    typed path (checked by :func:`typed_folder`); the chosen folder or None.
    ``first``: start on the first folder found (else on none, until picked).
    ``deepest_first``: name each folder from its last part up
    ("k02-seed0 ‹ fast-5000 ‹ grid-hide ‹ ..."): a sweep's runs differ only
    there, past the edge of a 300-pixel sidebar."""
    root = folders_root()
    options = find_folders(root, marker, depth) + [ANOTHER_FOLDER]

    def shown(option: str) -> str:  # relative to the root: an absolute path is cut off before its name
        if option == ANOTHER_FOLDER:
            return option
        parts = Path(option).relative_to(root).parts
        return " ‹ ".join(reversed(parts)) if deepest_first else "/".join(parts) or "."

    pick = st.sidebar.selectbox(label, options, index=0 if first else None, format_func=shown, persist_state="session",
                                key=f"{key}_pick", placeholder="Choose one (type to search)",
                                help=f"Folders under {root} that hold a {marker} (type to search).")
    if pick is None:
        return None
    if pick != ANOTHER_FOLDER:
        return Path(pick)
    typed = st.sidebar.text_input(f"Path of a {what[:-1]}", persist_state="session", key=f"{key}_path",
                                  placeholder=placeholder, help=f"A folder under {root}.")
    return typed_folder(typed, what) if typed else None


ANOTHER_FOLDER = "another folder..."


def typed_folder(typed: str, what: str) -> Path | None:
    """The folder a visitor typed, if it lies under :func:`folders_root`;
    else None, with a sidebar message. Relative paths start at the root.

    On a server shared by a class, a text box must not open (or, on the
    Study page, write report.html into) any folder of the server's disk.
    """
    root = folders_root()
    try:
        path = root / Path(typed).expanduser()  # an absolute path stays as it is
    except RuntimeError:  # ~nosuchuser
        path = root / typed
    if not under_root(path):
        st.sidebar.error(f"'{typed}' is outside {root}; this page opens {what} under it only: start the dashboard "
                         f"from a folder that holds it, or set {ROOT_ENV}.")
        return None
    return path


#: The hidden-pixel fills the Generate page offers, as it names them.
FILLS = {"0": "black (0)", "0.5": "grey (0.5)", "mean": "the image's mean"}


def fill_label(fill: float | str) -> str:
    """A result's fill as Generate names it ("black (0)"), or the number a CLI run gave."""
    return FILLS.get("mean" if fill == "mean" else f"{float(fill):g}", f"{fill}")


def set_result(result: umask.Result, source: str) -> None:
    """Make ``result`` the one the Explore page shows."""
    st.session_state[RESULT_KEY] = result
    st.session_state[RESULT_SOURCE_KEY] = source


@st.cache_resource(show_spinner=False)
def warm_plotly() -> bool:
    """Draw each kind of dashboard picture once per process.

    Plotly's first figure costs ~0.4 s and the first PNG with part numbers
    loads a font; done here, before any click, neither lands between the
    Generate click and the first frame.
    """
    import plotly.graph_objects as go

    from umask.plots import run as plots
    from umask.plots.run import png_data_uri

    go.Figure(go.Scatter(x=[0, 1], y=[0, 1])).to_json()
    go.Figure(go.Heatmap(z=[[0, 1]])).to_json()
    labels = umask.layout("grid", 4, 8)
    png_data_uri(plots.render_parts(torch.zeros(3, 8, 8), labels, side=64))
    png_data_uri(plots.render_part_probs(labels, [0.5] * 4, side=64))
    plots.loss_figure([1, 2], [1.0, 0.5]).to_json()
    return True


def class_label(index: int, categories=None) -> str:
    """A class as "goldfish (1)", for tables and select boxes."""
    names = categories or umask.imagenet_classes()
    return f"{names[index]} ({index})"


def configure_gil(interval_s: float | None = None) -> None:
    """Let a worker thread win the GIL back quickly from the page's script thread.

    Torch releases the GIL during each op; while a page script (a fragment
    building figures) holds it, the worker waits up to the switch interval
    (5 ms by default) after every op before it may go on: with hundreds of
    ops per step, a busy page slows the optimisation by tens of per cent.
    A short interval (UMASK_SWITCH_INTERVAL overrides) bounds that wait.
    """
    import sys

    interval = interval_s if interval_s is not None else or_stop(lambda: env_seconds("UMASK_SWITCH_INTERVAL", 0.0005))
    if sys.getswitchinterval() != interval:
        sys.setswitchinterval(interval)
