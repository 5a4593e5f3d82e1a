"""Models on the dashboard: loaded once per process and shared, a failure
said once per session (with a way to try again), labels with download sizes."""

from __future__ import annotations

import streamlit as st

import umask
from umask.models import DEFAULT_MODEL, checkpoint_path, list_models, model_info, weights_available

from .folders import ROOT_ENV, folders_root, under_root


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


def unknown_model(spec: str) -> str | None:
    """Why a result's model cannot be had here when no registry knows its name
    (a result made with a newer torchvision, or a renamed model), said before
    any click: no retry can help, and the loader's remedy names the CLI."""
    try:
        model_info(spec)
    except umask.UmaskError:
        return f"This result was made with '{spec}', which is not a model known here."
    return None


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
