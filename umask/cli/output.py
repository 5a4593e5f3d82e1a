"""Writing to the terminal: plain tables and a progress bar (stdout / stderr)."""

from __future__ import annotations

import io
import json
import math
import sys
from typing import Iterable, Sequence

#: Seconds between two progress lines when stderr is not a terminal (a log file, nohup, CI).
LOG_EVERY_S = 30.0
#: The figures after the percentage: the postfix (success rates) before the
#: time, so a line cut to an 80-column terminal loses its clock first. Without
#: counts (a sweep's copy-steps mean nothing to a reader): the time alone.
FIGURES = "{n_fmt}/{total_fmt}{postfix} [{elapsed}<{remaining}, {rate_fmt}]"
TIME_ONLY = "[{elapsed}<{remaining}{postfix}]"
#: A bar on a terminal; off one (a log), no bar and never cut: a log line may be as long as it needs.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| " + FIGURES
LINE_FORMAT = "{desc}: {percentage:3.0f}% " + FIGURES


def echo(text: str = "") -> None:
    """One line to stdout (the CLI's result channel), flushed: long jobs report as they go, even into a file."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def json_text(payload) -> str:
    """``payload`` as standard JSON: a figure that is not a number (a relative
    distance of an all-black image) is null, not Python's bare NaN, which
    JSON readers refuse."""
    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [clean(item) for item in value]
        return value

    return json.dumps(clean(payload), indent=2, allow_nan=False)


def format_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A left-aligned text table with a rule under the header."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def on_terminal() -> bool:
    """Whether stderr is a terminal (progress redraws in place) or a file or pipe."""
    return sys.stderr.isatty()


class _Lines(io.TextIOBase):
    """tqdm's stream off a terminal: each redraw becomes one plain line, so a
    log file reads as lines, not one line of carriage returns."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        line = text.replace("\r", "").rstrip()
        if line:
            self._stream.write(line + "\n")
            self._stream.flush()
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def progress(total: int, description: str, *, unit: str = "step", initial: int = 0, counts: bool = True):
    """A tqdm bar on stderr with rate and ETA; off a terminal (nohup, a log,
    CI), the same figures as a line every :data:`LOG_EVERY_S` seconds.

    ``initial`` counts work done before (a resumed sweep): it fills the bar
    without entering the rate, so the ETA stays honest. ``counts=False``
    leaves out the done/total count and the rate (units no reader counts in).
    """
    from tqdm import tqdm

    if on_terminal():
        layout = BAR_FORMAT if counts else BAR_FORMAT.replace(FIGURES, TIME_ONLY)
        return tqdm(total=total, desc=description, unit=unit, initial=initial, file=sys.stderr, dynamic_ncols=True,
                    bar_format=layout)
    layout = LINE_FORMAT if counts else LINE_FORMAT.replace(FIGURES, TIME_ONLY)
    return tqdm(total=total, desc=description, unit=unit, initial=initial, file=_Lines(sys.stderr), bar_format=layout,
                mininterval=LOG_EVERY_S, maxinterval=LOG_EVERY_S)  # tqdm's monitor otherwise redraws every 10 s


def status(text: str) -> None:
    """One line on stderr, beside the progress bars (stdout carries the results)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def left_out(spec: str, why: str) -> str:
    """The line for a model ``--skip-missing`` left out, alike in every command:
    ``why`` is the loader's sentence, continued after a colon: its first word
    is lowered only when it is a plain capitalised word ("Checkpoint"), never
    a name that starts it ("ResNet.pt", "VGG")."""
    first = why.split(" ", 1)[0]
    if first.isalpha() and first[1:].islower():
        why = why[:1].lower() + why[1:]
    return f"umask: {spec} left out (--skip-missing): {why}"
