"""One visitor's session: its run (kept alive from any page, its result
handed over when it ends), the result Explore and Geometry show, and work
memoised per result or upload."""

from __future__ import annotations

import hashlib
import threading
import time
from typing import Callable, TypeVar

import streamlit as st

import umask

T = TypeVar("T")


#: Session-state keys shared by the pages: this session's run, and the
#: result Explore and Geometry show (with where it came from).
JOB_KEY = "umask_job"
RESULT_KEY = "umask_result"
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
    _in_full_run.active = True
    try:  # a fragment runs once right here, within the full run, then on its timer
        st.fragment(_heartbeat, run_every=HEARTBEAT_S if job is not None and job.alive else None)()
    finally:
        _in_full_run.active = False


#: Set while :func:`keep_run_alive` runs the heartbeat within a full run (one
#: per script thread, so per session).
_in_full_run = threading.local()


def _heartbeat() -> None:
    job = st.session_state.get(JOB_KEY)
    if job is None:
        return
    if job.alive:
        job.touch()
    # Within a full run the page has not drawn yet and reads the result as it
    # is handed over; a rerun there would drop the click that started the run.
    if take_run_result(job) and not getattr(_in_full_run, "active", False):
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


def set_result(result: umask.Result, source: str) -> None:
    """Make ``result`` the one the Explore page shows."""
    st.session_state[RESULT_KEY] = result
    st.session_state[RESULT_SOURCE_KEY] = source


def result_id(result: umask.Result) -> str:
    """A short fingerprint of a result (image, parts, targets) for widget keys and caches."""
    return result.fingerprint[:12]



MEMO_PER_KIND = 8


def session_memo(key: tuple, compute: Callable[[], T]) -> T:
    """``compute()`` once per key in this session.

    For work that depends on a result only, on pages whose other widgets
    rerun the script many times (sliders, checkboxes). ``key[0]`` names the
    kind of work; each kind keeps its :data:`MEMO_PER_KIND` most recently
    used keys, so dragging the ε slider through many values does not push
    out another page's geometry or zip.
    """
    kinds: dict = st.session_state.setdefault("_umask_memo", {})
    store: dict = kinds.setdefault(key[0], {})
    if key in store:
        store[key] = store.pop(key)  # now the most recent
    else:
        if len(store) >= MEMO_PER_KIND:
            store.pop(next(iter(store)))  # the least recently used
        store[key] = compute()
    return store[key]


def result_zip(result: umask.Result) -> bytes:
    """The result as a zip to download (:func:`umask.result_to_zip`), made once per result."""
    # result_id is the image, parts and targets: the same settings run again on the
    # CPU give the same image, and each run's zip carries its own steps and seconds.
    return session_memo(("zip", result_id(result), result.steps, result.seconds), lambda: umask.result_to_zip(result))


def upload_digest(data: bytes) -> str:
    """A name for an uploaded file's content: the same file uploaded again has the same one."""
    return hashlib.sha1(data).hexdigest()


def result_from_upload(data: bytes) -> umask.Result:
    """The result in an uploaded zip's bytes, read once per distinct file.

    Raises:
        UmaskError: the file is not a result zip.
    """
    return session_memo(("upload", upload_digest(data)), lambda: umask.result_from_zip(data))


def kept_upload(container, label: str, *, types: list[str], key: str) -> tuple[bytes, str] | None:
    """A file uploader whose file outlives a visit to another page: (bytes, name), or None.

    Streamlit empties an uploader whose page is left; a teacher who uploaded
    the class's photo would upload it again after every other page. The
    file is kept in the session until the uploader is cleared (its ✕) or
    given another file; back on the page, a caption names the file in use.
    """
    kept_key = f"{key}_kept"

    def remember() -> None:  # on a change by the visitor only: leaving the page changes nothing here
        upload = st.session_state.get(key)
        if upload is None:
            st.session_state.pop(kept_key, None)
        else:
            st.session_state[kept_key] = (upload.getvalue(), upload.name)

    upload = container.file_uploader(label, type=types, key=key, on_change=remember)
    if upload is not None:
        return upload.getvalue(), upload.name
    kept = st.session_state.get(kept_key)
    if kept is not None:
        container.caption(f"In use: {kept[1]}, uploaded earlier (upload another file to replace it).")
    return kept
