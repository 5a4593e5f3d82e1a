"""``umask models`` and ``umask classes``: what can be used."""

from __future__ import annotations

import argparse

from ..models import ModelInfo, list_models, partial_download, torchvision_classifiers, weights_available
from ..targets import search_classes
from .output import echo, format_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models and whether their weights are here")
    p.set_defaults(run=run_models)
    p = sub.add_parser("classes", help="list ImageNet-1K classes, optionally those matching QUERY")
    p.add_argument("query", nargs="?", default="", help="part of a class name (case-insensitive)")
    p.set_defaults(run=run_classes)


def _weights_here(info: ModelInfo) -> str:
    """"yes", "no", or "partial (12 of 98 MB)" for an interrupted download."""
    if weights_available(info.name):
        return "yes"
    partial = partial_download(info.name) if info.source == "torchvision" else None
    return f"partial ({partial[0]:.0f} of {partial[1]:.0f} MB)" if partial else "no"


def run_models(args: argparse.Namespace) -> int:
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


def run_classes(args: argparse.Namespace) -> int:
    matches = search_classes(args.query)
    if not matches:
        echo(f"No ImageNet class contains '{args.query}'.")
        return 1
    echo(format_table(["index", "class"], matches))
    return 0
