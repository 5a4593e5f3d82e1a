"""Axis ticks shared by the figures."""

from __future__ import annotations

import math

import plotly.graph_objects as go


def log_ticks(lo: float, hi: float) -> list[float]:
    """Tick values for a log axis over [lo, hi] (both > 0): 1, 2 and 5 times
    each power of ten, or only the powers once the range spans over three
    decades. plotly's own log ticks label every digit ("2 5 10 2 5"), which
    a class reads as a broken scale."""
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1, 2, 5) if last - first <= 3 else (1,)
    ticks = [m * 10.0**e for e in range(first, last + 1) for m in steps]
    inside = [t for t in ticks if lo <= t <= hi]
    # At least two labels: widen to the nearest ticks outside the data.
    below = [t for t in ticks if t < lo][-1:]
    above = [t for t in ticks if t > hi][:1]
    return inside if len(inside) >= 2 else below + inside + above


def label_log_y(fig: go.Figure, *, margin: float | None = None) -> None:
    """Make every y axis of ``fig`` logarithmic, labelled at :func:`log_ticks`
    of the positive values its traces plot (error bars included).

    The range spans those values and ``margin`` decades more each side
    (default a twentieth of a decade), and always the ticks too: values
    close together (3.1 s and 3.4 s) lie between two ticks, which plotly's
    own range would cut off, leaving an axis with no number on it and a 10 %
    difference drawn full height."""
    values = []
    for trace in fig.data:
        ys = [] if trace.y is None else [float(y) for y in trace.y if y is not None]
        values += ys
        error = getattr(trace, "error_y", None)
        if error is None or error.visible is False or error.array is None:  # plotly draws bars unless told not to
            continue
        up = [float(e) for e in error.array]
        down = up if error.arrayminus is None else [float(e) for e in error.arrayminus]
        values += [y + e for y, e in zip(ys, up)] + [y - e for y, e in zip(ys, down)]
    values = [v for v in values if math.isfinite(v) and v > 0]
    fig.update_yaxes(type="log")
    if values:
        ticks = log_ticks(min(values), max(values))
        fig.update_yaxes(tickmode="array", tickvals=ticks, ticktext=[f"{t:g}" for t in ticks])
        pad = 0.05 if margin is None else margin
        low, high = min(values + ticks[:1]), max(values + ticks[-1:])
        fig.update_yaxes(range=[math.log10(low) - pad, math.log10(high) + pad])
