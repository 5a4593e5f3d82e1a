"""What every dashboard page shares: cached models and the CPU budget."""

from __future__ import annotations

import os

import streamlit as st
import torch

import umask
from umask.models import DEFAULT_MODEL, list_models, weights_available


def configure_torch() -> None:
    """One optimisation should not starve the others on a shared CPU.

    Each run's thread uses a share of the cores (UMASK_TORCH_THREADS overrides).
    """
    threads = int(os.environ.get("UMASK_TORCH_THREADS", max(1, (os.cpu_count() or 2) // 2)))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@st.cache_resource(show_spinner="Loading model...")
def cached_model(spec: str, resize_to: int | str | None = None) -> umask.Classifier:
    """Load a model once per process; every session shares it read-only (it is frozen)."""
    return umask.load_model(spec, resize_to=resize_to)


def get_model(spec: str, resize_to: int | str | None = None) -> umask.Classifier | None:
    """The cached model, or None after showing the loader's one-sentence error."""
    try:
        return cached_model(spec, resize_to)
    except umask.UmaskError as err:
        st.error(str(err))
        return None


def model_label(name: str) -> str:
    """'resnet50 (98 MB download)' / 'efficientnet_lite0 (bundled, offline)' for select boxes."""
    info = next((m for m in list_models() if m.name == name), None)
    if info is None or info.download_mb is None:
        return f"{name} (bundled, offline)" if name == DEFAULT_MODEL or (info and weights_available(name)) else name
    state = "cached" if weights_available(name) else f"{info.download_mb:.0f} MB download"
    return f"{name} ({state})"


def model_choices() -> list[str]:
    """Registered models that can be used here, the offline default first."""
    return [m.name for m in list_models() if m.source != "bundled" or weights_available(m.name)]
