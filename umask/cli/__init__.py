"""``python -m umask``: the command line.

Each command lives in its own module, ``umask.cli.<command>``, with
``add_arguments(parser)`` and ``run(args) -> int``; its docstring is its
``--help`` description. This file lists the commands, imports only the one
being run (the others would load torch for nothing: ``python -m umask
--help`` answers at once), and turns a :class:`~umask.errors.UmaskError`
into one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import re
import signal
import sys
import threading
from types import ModuleType
from typing import Sequence

from ..errors import INTERRUPTED, OUT_OF_MEMORY_FIX, UmaskError, out_of_memory, user_sentence

#: Every command and its line in the command list, in the order listed.
COMMANDS = {
    "generate": "make a universal image",
    "evaluate": "classify a saved result's masked copies on one or more models",
    "models": "list the registered models and whether their weights are here",
    "classes": "list ImageNet-1K classes, optionally those matching QUERY",
    "sweep": "run every combination of models, masks, K and seeds; resumable; writes a report",
    "geometry": "norm distances of a result's masked copies, the 1.6 %% claim, a decision slice",
    "fgsm": "make an adversarial example of a photo (FGSM / iterative FGSM)",
    "bench": "run the speed benchmark and write BENCHMARKS.md",
}


class Terminated(KeyboardInterrupt):
    """SIGTERM (kill, timeout, a CI job cancelled), met as Ctrl-C is: a run
    keeps its best image, a sweep its finished runs; the exit code is 143."""

    exit_code = 128 + signal.SIGTERM


def interrupt_code(err: KeyboardInterrupt) -> int:
    """The exit code of an interrupted command: 130 for Ctrl-C, 143 for SIGTERM."""
    return getattr(err, "exit_code", 130)


def refuse_unused(does: str, options: Sequence[tuple[str, object]]) -> None:
    """Refuse the options given that would do nothing: ``does`` says what the
    command does instead. An option counts as given unless it is None or
    False (``--first-seed 0`` is given)."""
    unused = [flag for flag, value in options if value is not None and value is not False]
    if unused:
        raise UmaskError(f"{does}, so {', '.join(unused)} would do nothing; drop {'it' if len(unused) == 1 else 'them'}.")


def _terminate(signum, frame) -> None:
    raise Terminated


def command_module(name: str) -> ModuleType:
    """The module of command ``name`` (imported on first use)."""
    return importlib.import_module(f"{__name__}.{name}")


def named_command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs: its first word that is not an option, when
    that is a command; None for none or an unknown word (argparse says so)."""
    word = next((token for token in argv if not token.startswith("-")), None)
    return word if word in COMMANDS else None


class _Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors: a mistyped option gets
    "umask: error: ..." and where to look, not the whole usage first."""

    #: The command the command line names: the top-level parser reports a
    #: command's unrecognised arguments, which that command's help explains.
    named: str | None = None

    def error(self, message: str):
        command = self.prog.removeprefix("python -m umask").strip() or self.named or ""
        typed = re.match(r"argument COMMAND: invalid choice: '(.*?)'", message)
        alike = difflib.get_close_matches(typed.group(1), list(COMMANDS), n=1) if typed else []
        if alike:  # a mistyped command: its likely meaning first, as a mistyped class name gets
            message = f"unknown command '{typed.group(1)}'; did you mean '{alike[0]}'? (the commands: {', '.join(COMMANDS)})"
        sys.stderr.write(f"umask: error: {f'{command}: ' if command else ''}{message}; "
                         f"see python -m umask {command + ' ' if command else ''}--help.\n")
        raise SystemExit(2)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with ``argv``, only the command it names gets its options
    (and its module imported), every other one just its line in the list."""
    parser = _Parser(
        prog="python -m umask",
        description="Universal masked images: one image that a frozen classifier sends to K chosen classes, one per mask.",
    )
    parser.named = named_command(argv) if argv is not None else None
    parser.add_argument("-v", "--verbose", action="store_true", help="log what umask does")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    wanted = COMMANDS if argv is None else [named_command(argv)]
    for name, summary in COMMANDS.items():
        command = sub.add_parser(name, help=summary, formatter_class=argparse.RawDescriptionHelpFormatter)
        if name in wanted:
            module = command_module(name)
            command.description = (module.__doc__ or "").replace("``", "")  # the docstring without its RST quotes
            module.add_arguments(command)
        # -v after the command name too ("generate -v"); SUPPRESS keeps one given before it
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log what umask does")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    # Started with stdout or stderr closed (`>&-`), Python has None there: the
    # work still runs and saves, its lines go nowhere, as asked.
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w")
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")
    for stream in (sys.stdout, sys.stderr):
        # A terminal that cannot show "∞" or "→" (a latin-1 locale) gets "?",
        # not a UnicodeEncodeError halfway through a table.
        if hasattr(stream, "reconfigure") and stream.errors == "strict":
            stream.reconfigure(errors="replace")
    # Signal handlers belong to the main thread (a test may call main from
    # another); a SIGTERM ignored or handled by whoever started us stays so.
    own = threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    previous = signal.signal(signal.SIGTERM, _terminate) if own else None
    try:
        if not argv:  # no command at all: the list of commands, not one line about a missing one
            build_parser(argv).print_help(sys.stderr)
            return 2
        args = build_parser(argv).parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
        return int(command_module(args.command).run(args) or 0)
    except KeyboardInterrupt as err:
        # Each command says what it kept when stopped in its own work; here
        # it was stopped elsewhere (loading torch or a model, reading input).
        sys.stderr.write(INTERRUPTED)
        return interrupt_code(err)
    except BrokenPipeError:  # `| head` read what it wanted: nothing to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush meets no pipe
        return 0
    except (UmaskError, OSError, MemoryError, RuntimeError) as err:
        # A UmaskError's sentence, or the file system's refusal that no check
        # foresaw (a name too long, a full disk under stdout), in its words.
        sentence = user_sentence(err)
        if sentence is None:
            raise
        if not isinstance(err, UmaskError) and out_of_memory(err):  # the memory check before a run is an estimate: a step can still outgrow what is free
            sentence = f"out of memory while it ran (what was saved before is kept); {OUT_OF_MEMORY_FIX}."
        sys.stderr.write(f"umask: error: {sentence}\n")
        return 2
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
