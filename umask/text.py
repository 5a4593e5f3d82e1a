"""Numbers in sentences: "1 step", "2 steps"."""

from __future__ import annotations


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the number it takes: ``count(1, "run") == "1 run"``,
    ``count(3, "class", "classes") == "3 classes"``."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"
