"""``python -m umask``: the command line.

Each command lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``; this file only wires them up and turns a
:class:`~umask.errors.UmaskError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from types import ModuleType

from ..errors import UmaskError
from . import bench, evaluate, fgsm, generate, geometry, info, sweep


def _commands() -> list[ModuleType]:
    return [generate, evaluate, info, bench, fgsm, sweep, geometry]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m umask",
        description="Universal masked images: one image that a frozen classifier sends to K chosen classes, one per mask.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what umask does")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _commands():
        module.add_parser(sub)
    for command in sub.choices.values():  # each command's description is its module docstring: drop its RST quotes
        command.description = (command.description or "").replace("``", "")
        # -v after the command name too ("generate -v"); SUPPRESS keeps one given before it
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log what umask does")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
        return int(args.run(args) or 0)
    except UmaskError as err:
        sys.stderr.write(f"umask: error: {err}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("umask: interrupted\n")
        return 130
