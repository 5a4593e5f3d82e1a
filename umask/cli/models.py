"""``umask models``: the models umask knows, each one's download size,
whether its weights are on this machine, and what it is. Any other
torchvision classifier, or ARCH=PATH for a local checkpoint, is accepted too."""

from __future__ import annotations

import argparse

from ..models import ModelInfo, list_models, partial_download, torchvision_classifiers, weights_available
from .output import echo, format_table


def add_arguments(p: argparse.ArgumentParser) -> None:
    """No options: the list is the same for everyone."""


def _weights_here(info: ModelInfo) -> str:
    """"yes", "no", or "partial (12 of 98 MB)" for an interrupted download."""
    if weights_available(info.name):
        return "yes"
    partial = partial_download(info.name) if info.source == "torchvision" else None
    return f"partial ({partial[0]:.0f} of {partial[1]:.0f} MB)" if partial else "no"


def run(args: argparse.Namespace) -> int:
    rows = []
    for info in list_models():
        size = ("pip package" if info.package else "none") if info.download_mb is None else f"{info.download_mb:.0f} MB"
        here = _weights_here(info)
        rows.append([info.name, size, here, info.description])
    echo(format_table(["model", "download", "weights here", "description"], rows))
    others = [n for n in torchvision_classifiers() if n not in {r[0] for r in rows}]
    echo(f"\nAlso accepted: any torchvision classifier ({len(others)} more, e.g. {', '.join(others[:4])}),")
    echo("or ARCH=PATH to load a local state-dict checkpoint for a torchvision architecture.")
    return 0
