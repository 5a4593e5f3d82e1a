"""Writing to the terminal: plain tables and a progress bar (stdout / stderr)."""

from __future__ import annotations

import sys
from typing import Iterable, Sequence


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


def progress(total: int, description: str, *, unit: str = "step", initial: int = 0):
    """A tqdm bar on stderr with rate and ETA (silent when stderr is not a terminal).

    ``initial`` counts work done before (a resumed sweep): it fills the bar
    without entering the rate, so the ETA stays honest.
    """
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit=unit, initial=initial, file=sys.stderr, dynamic_ncols=True,
                disable=None)
