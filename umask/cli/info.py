"""``umask models`` and ``umask classes``: what can be used."""

from __future__ import annotations

import argparse

from ..models import ModelInfo, list_models, partial_download, torchvision_classifiers, weights_available
from ..targets import NUM_CLASSES, close_matches, describe, search_classes
from .output import echo, format_table


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the registered models and whether their weights are here",
                       description="List the models umask knows: each one's download size, whether its weights are "
                                   "on this machine, and what it is. Any other torchvision classifier, or ARCH=PATH "
                                   "for a local checkpoint, is accepted too.")
    p.set_defaults(run=run_models)
    p = sub.add_parser("classes", help="list ImageNet-1K classes, optionally those matching QUERY",
                       description="List the 1000 ImageNet-1K classes with their indices, the names targets are "
                                   "given by; with QUERY, those whose name contains it, or the class of that index. "
                                   "Exit code 1 when nothing matches.")
    p.add_argument("query", nargs="?", default="", help="part of a class name (case-insensitive), or an index 0-999")
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
        if args.query.strip().isdigit():
            echo(f"No ImageNet class has index {args.query.strip()}; they run from 0 to {NUM_CLASSES - 1}.")
        else:
            close = close_matches(args.query)
            echo(f"No ImageNet class contains '{args.query}'." + (f" Close matches: {describe(close)}." if close else ""))
        return 1
    echo(format_table(["index", "class"], matches))
    return 0
