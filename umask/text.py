"""Numbers in sentences: "1 step", "2 steps", "99.5 %"."""

from __future__ import annotations

import math


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun in the number it takes: ``count(1, "run") == "1 run"``,
    ``count(3, "class", "classes") == "3 classes"``."""
    return f"{n} {noun if n == 1 else (plural or noun + 's')}"


def duration(seconds: float | None, tenths: bool = False) -> str:
    """A time span as a clock reads it: "9 s", "16 min 45 s", "1 h 05 min",
    "9 days 07 h"; "..." while it is not known yet. ``tenths``: a span under
    a minute keeps one decimal ("5.7 s"), as a finished run's time does."""
    if seconds is None:
        return "..."
    if tenths and round(seconds, 1) < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{count(days, 'day')} {hours:02d} h"
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


def change(fraction: float, digits: int = 1) -> str:
    """A relative change with its sign: ``change(0.059) == "+5.9 %"``."""
    return f"{100 * fraction:+.{digits}f} %"


def percent(fraction: float | None, digits: int = 2) -> str:
    """A fraction (0..1) as a percentage ("1.56 %"); "n/a" when missing or NaN.

    Never rounds to a certainty that is not there: a probability of 0.995
    (or 199 of 200 masks) reads "99.5 %", not "100 %", and 1 of 1000 masks
    "0.1 %", not "0 %"; more digits are shown, up to three more, and a
    figure still at 100 then is cut, not rounded (one still at 0 reads
    "< 0.001 %").
    """
    if fraction is None or math.isnan(fraction):
        return "n/a"
    value = 100 * fraction
    most = digits + 3
    if fraction < 1:
        while digits < most and round(value, digits) >= 100:
            digits += 1
        if round(value, digits) >= 100:
            value = math.floor(value * 10**digits) / 10**digits
    if fraction > 0:
        while digits < most and round(value, digits) == 0:
            digits += 1
        if round(value, digits) == 0:
            return f"< {10.0**-digits:.{digits}f} %"
    return f"{value:.{digits}f} %"


def percent_number(fraction: float, digits: int = 1) -> float:
    """A fraction as a number of per cent for a sortable table cell
    (``percent_number(0.4567) == 45.7``), by :func:`percent`'s rule with the
    digits fixed: short of certainty it stops at 99.9, not 100, and above
    nothing at 0.1, not 0."""
    value = round(100 * fraction, digits)
    least = 10.0**-digits
    if fraction < 1 and value >= 100:
        return round(100 - least, digits)
    if fraction > 0 and value == 0:
        return least
    return value
