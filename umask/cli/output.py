"""Writing to the terminal: plain tables and a progress bar (stdout / stderr)."""

from __future__ import annotations

import io
import sys
from typing import Iterable, Sequence

#: Seconds between two progress lines when stderr is not a terminal (a log file, nohup, CI).
LOG_EVERY_S = 30.0


def echo(text: str = "") -> None:
    """One line to stdout (the CLI's result channel), flushed: long jobs report as they go, even into a file."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


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


def progress(total: int, description: str, *, unit: str = "step", initial: int = 0):
    """A tqdm bar on stderr with rate and ETA; off a terminal (nohup, a log,
    CI), the same figures as a line every :data:`LOG_EVERY_S` seconds.

    ``initial`` counts work done before (a resumed sweep): it fills the bar
    without entering the rate, so the ETA stays honest.
    """
    from tqdm import tqdm

    if on_terminal():
        return tqdm(total=total, desc=description, unit=unit, initial=initial, file=sys.stderr, dynamic_ncols=True)
    return tqdm(total=total, desc=description, unit=unit, initial=initial, file=_Lines(sys.stderr), ncols=100,
                mininterval=LOG_EVERY_S, maxinterval=LOG_EVERY_S)  # tqdm's monitor otherwise redraws every 10 s
