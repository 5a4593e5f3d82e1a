"""``umask classes``: the 1000 ImageNet-1K classes with their indices, the
names targets are given by. With QUERY: those whose name contains it, or the
class of that index. Exit code 1 when nothing matches."""

from __future__ import annotations

import argparse

from ..targets import NUM_CLASSES, close_matches, describe, parse_index, search_classes
from .output import echo, format_table, status


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", nargs="*", default=[],
                   help="part of a class name (case-insensitive; several words are one name: tiger cat), or an index 0-999")


def run(args: argparse.Namespace) -> int:
    args.query = " ".join(args.query)  # "classes tiger cat" without quotes
    matches = search_classes(args.query)
    if not matches:
        index = parse_index(args.query)
        if index is not None:  # -1 is an index too, out of range
            status(f"No ImageNet class has index {index}; they run from 0 to {NUM_CLASSES - 1}.")
        else:
            close = close_matches(args.query)
            status(f"No ImageNet class contains '{args.query}'." + (f" Close matches: {describe(close)}." if close else ""))
        return 1  # on stderr, with exit 1: a list redirected to a file stays a list
    echo(format_table(["index", "class"], matches))
    return 0
