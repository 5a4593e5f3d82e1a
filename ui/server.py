"""What one dashboard process sets up for every page and run: torch's
threads, the worker processes runs go to, the interpreter's switch interval,
plotly warmed up; a bad UMASK_* setting is one sentence on the page."""

from __future__ import annotations

from typing import Callable, TypeVar

import streamlit as st

# torch is imported inside the functions that use it: app.py starts the
# first worker (start_first_worker) before this process imports torch.
import umask
from umask.devices import share_of_cores
from umask.env import env_count, env_seconds, env_switch
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


def configure_torch() -> None:
    """Set this process's torch threads to :func:`torch_threads` (page-side
    work), and have torch's compiler imported before the first click."""
    import torch

    threads = torch_threads()
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _optimisers_imported()


@st.cache_resource(show_spinner=False)
def _optimisers_imported() -> bool:
    """Once per server, on its first page: a Generate click builds a search
    (and its optimiser) in the server, which would import the compiler then."""
    from umask.optimise import import_optimisers

    import_optimisers()
    return True


@st.cache_resource(show_spinner=False)
def _pool() -> WorkerPool:
    return WorkerPool(threads=torch_threads())


def _configured_pool() -> WorkerPool | None:
    """The pool as UMASK_WORKERS and UMASK_MAX_RUNS set it (None: runs in threads).

    Raises:
        UmaskError: either setting has a value that is not allowed.
    """
    return _pool() if env_switch("UMASK_WORKERS", True) else None


def worker_pool() -> WorkerPool | None:
    """The warm worker processes that Generate's runs go to, one pool per
    server; None (UMASK_WORKERS=0) runs them in threads of the server itself.

    A run in a thread shares the server's interpreter lock with every page
    redraw and slows down while watched; a worker process does not (README,
    "How the dashboard runs").
    """
    return or_stop(_configured_pool)  # a bad setting: say so, run nothing


def start_first_worker() -> None:
    """Start the server's first worker process as its first page loads.

    A worker imports torch and the engine (seconds on a laptop): started
    here, on whichever page a visitor opens first, it is ready when they
    reach Generate and click. Only the first: later ones start as runs need
    them (a new process beside a run would take its CPU).
    """
    try:
        pool = _configured_pool()
    except umask.UmaskError:
        return  # a bad setting is said on Generate (worker_pool), not on every page
    if pool is not None and pool.started == 0:
        pool.prewarm()


def configure_gil() -> None:
    """Let a worker thread win the GIL back quickly from the page's script thread.

    Torch releases the GIL during each op; while a page script (a fragment
    building figures) holds it, the worker waits up to the switch interval
    (5 ms by default) after every op before it may go on: with hundreds of
    ops per step, a busy page slows the optimisation by tens of per cent.
    A short interval (UMASK_SWITCH_INTERVAL overrides) bounds that wait.
    """
    import sys

    interval = or_stop(lambda: env_seconds("UMASK_SWITCH_INTERVAL", 0.0005))
    if sys.getswitchinterval() != interval:
        sys.setswitchinterval(interval)


@st.cache_resource(show_spinner=False)
def warm_plotly() -> bool:
    """Draw each kind of dashboard picture once per process.

    Plotly's first figure costs ~0.4 s and the first PNG with part numbers
    loads a font; done here, before any click, neither lands between the
    Generate click and the first frame.
    """
    import plotly.graph_objects as go
    import torch

    from umask.plots import run as plots
    from umask.plots.run import png_data_uri

    go.Figure(go.Scatter(x=[0, 1], y=[0, 1])).to_json()
    go.Figure(go.Heatmap(z=[[0, 1]])).to_json()
    labels = umask.layout("grid", 4, 8)
    png_data_uri(plots.render_parts(torch.zeros(3, 8, 8), labels, side=64))
    png_data_uri(plots.render_part_probs(labels, [0.5] * 4, side=64))
    plots.loss_figure([1, 2], [1.0, 0.5]).to_json()
    return True
