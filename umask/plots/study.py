"""Figures of a sweep: success rate, time to 100 % and geometry, each against K.

Every function takes the typed rows of a ``results.csv``
(:func:`umask.sweep.typed_rows`: dicts with numbers as numbers) and returns a
``plotly.graph_objects.Figure``: one panel per mask family (and mode, when a
sweep has several), one line per model, the mean over seeds with their
standard deviation as error bars.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ..masks import grid_side
from ..text import percent
from .axes import label_log_y

PALETTE = qualitative.Plotly + qualitative.D3


def _panel(row: dict, modes: set[str]) -> str:
    return row["mask_family"] if len(modes) <= 1 else f"{row['mask_family']} / {row['mode']}"


def _series_name(row: dict, presets: set[tuple[str, int]]) -> str:
    return row["model"] if len(presets) <= 1 else f"{row['model']} ({row['preset']}, {row['max_steps']} steps)"


def _grouped(rows: list[dict]) -> tuple[list[str], list[str], dict]:
    """panels, series, {(panel, series): {K: [rows]}} in first-seen order."""
    modes = {r["mode"] for r in rows}
    presets = {(r["preset"], r["max_steps"]) for r in rows}
    panels: dict[str, None] = {}
    series: dict[str, None] = {}
    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in rows:
        p, s = _panel(r, modes), _series_name(r, presets)
        panels[p] = None
        series[s] = None
        groups[(p, s)][r["k"]].append(r)
    return list(panels), list(series), groups


def _stats(values: Iterable[float]) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if not math.isnan(x)], dtype=float)
    if len(v) == 0:
        return math.nan, 0.0, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def _empty(message: str, height: int) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(height=height, xaxis_visible=False, yaxis_visible=False)
    return fig


def _k_ticks(fig: go.Figure, rows: list[dict]) -> None:
    """Ticks at the swept K when there are few (no "2.5 masks"), else whole numbers."""
    ks = sorted({int(r["k"]) for r in rows})
    if len(ks) <= 12:
        fig.update_xaxes(tickmode="array", tickvals=ks)
    else:
        fig.update_xaxes(tickformat="d")


def _per_k_figure(
    rows: list[dict],
    value,  # row list -> (mean, std, n, hover text)
    *,
    title: str,
    y_title: str,
    height: int,
    log_y: bool = False,
    y_range: list[float] | None = None,
) -> go.Figure:
    """One panel per mask family, one line per series; ``y_range`` also
    keeps the error bars inside it (a success rate never passes 100 %)."""
    panels, series, groups = _grouped(rows)
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels, shared_yaxes=True, horizontal_spacing=0.04)
    colours = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(series)}
    for col, panel in enumerate(panels, start=1):
        for s in series:
            per_k = groups.get((panel, s))
            if not per_k:
                continue
            ks = sorted(per_k)
            stats = [value(per_k[k]) for k in ks]
            keep = [i for i, st in enumerate(stats) if not math.isnan(st[0])]
            if not keep:
                continue
            means, spreads = [stats[i][0] for i in keep], [stats[i][1] for i in keep]
            up, down = spreads, spreads
            if y_range is not None:  # bounded values: the bar stops at the bound (mean ± std could pass it)
                up = [min(sd, max(0.0, y_range[1] - m)) for m, sd in zip(means, spreads)]
                down = [min(sd, max(0.0, m - y_range[0])) for m, sd in zip(means, spreads)]
            # A point of one seed has no spread to show: no bar, not a bar of 0 (read as "no variation").
            single = [stats[i][2] <= 1 for i in keep]
            up = [math.nan if one else u for u, one in zip(up, single)]
            down = [math.nan if one else d for d, one in zip(down, single)]
            fig.add_trace(
                go.Scatter(
                    x=[ks[i] for i in keep],
                    y=means,
                    error_y=dict(type="data", symmetric=False, array=up, arrayminus=down,
                                 visible=any(stats[i][2] > 1 for i in keep)),
                    mode="lines+markers",
                    name=s,
                    legendgroup=s,
                    showlegend=col == 1,
                    line=dict(color=colours[s]),
                    hovertext=[stats[i][3] for i in keep],
                    hovertemplate="%{hovertext}<extra>" + s + "</extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="K", row=1, col=col)  # one per panel: longer, two ran into each other at 1024 px
    _k_ticks(fig, rows)
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    if log_y:
        label_log_y(fig)
    if y_range is not None:
        fig.update_yaxes(range=[y_range[0] - 3, y_range[1] + 3])  # room for the markers at the bounds
    fig.update_layout(title=dict(text=title, x=0.0), height=height, margin=dict(l=10, r=10, t=60, b=10))
    return fig


def success_figure(rows: list[dict], *, height: int = 380) -> go.Figure:
    """Success rate (masks that reach their class, %) vs K; error bars: std over seeds."""
    if not rows:
        return _empty("No finished runs yet.", height)

    def value(group: list[dict]):
        mean, std, n = _stats(100 * r["success_rate"] for r in group)
        return mean, std, n, f"K={group[0]['k']}: {percent(mean / 100, 1)} ± {std:.1f} over {n} seed(s)"

    return _per_k_figure(
        rows, value, title="Success rate vs K (mean over seeds; bars: ± one s.d., clipped to 0-100 %)",
        y_title="masks reaching their class (%)", height=height, y_range=[0, 100],
    )


def time_figure(rows: list[dict], *, y: str = "seconds", height: int = 380) -> go.Figure:
    """Time to 100 % (``y`` = "seconds" or "steps") vs K, over the runs that reached 100 %.

    Runs that did not reach 100 % within their budget are left out of the
    mean; the hover says how many seeds made it.
    """
    if not rows:
        return _empty("No finished runs yet.", height)
    unit = "s" if y == "seconds" else "steps"
    if not any(r["succeeded"] for r in rows):
        return _empty("No run has reached 100 % yet (more steps, or the fast preset, may help).", 160)

    def value(group: list[dict]):
        done = [r[y] for r in group if r["succeeded"]]
        mean, std, n = _stats(done)
        return mean, std, n, f"K={group[0]['k']}: {mean:.4g} {unit} ± {std:.3g} ({n}/{len(group)} seeds reached 100 %)"

    return _per_k_figure(
        rows,
        value,
        title=f"Time to 100 % vs K ({'optimisation seconds' if y == 'seconds' else 'steps'}; runs that reached it)",
        y_title="seconds" if y == "seconds" else "steps",
        height=height,
        log_y=True,
    )


GEOMETRY_SERIES = (
    ("l0_max", "L0: fraction of values changed"),
    ("rel_l1_max", "L1 relative"),
    # The ball centred at x that holds every copy has the worst copy's L2
    # distance as its radius: one line, named for both readings.
    ("radius_at_x_rel", "L2 relative = ball at x, radius / ||x||₂"),
    ("enclosing_radius_rel", "minimal enclosing ball, radius / ||x||₂"),
    ("norm_change_l2_max", "L2 norm change, | ||x||₂ − ||m_k x||₂ | / ||x||₂"),
)


SHARE_NAME = "one part's share of the pixels (hide; keep: the rest)"


def _part_share(family: str, k: int) -> float:
    """The share of the image one part covers, as the L0 of a hidden part
    would be on an image with no zero values: 1/K for stripes and random
    blocks, one square of the n x n grid (n = ceil(sqrt(K))) for a grid, so
    K = 2 on a grid is 25 %, not 50 %. Whole-pixel rounding is left out."""
    return 1 / grid_side(k) ** 2 if family == "grid" else 1 / k


def geometry_figure(rows: list[dict], *, height: int = 380) -> go.Figure:
    """How close the masked copies are to x, vs K: the worst mask's relative distance per norm.

    Means over models and seeds (the figures depend on K and the image, little
    on the model); one panel per mask family.
    """
    if not rows:
        return _empty("No finished runs yet.", height)
    modes = {r["mode"] for r in rows}
    panels = list(dict.fromkeys(_panel(r, modes) for r in rows))
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels, shared_yaxes=True, horizontal_spacing=0.04)
    for col, panel in enumerate(panels, start=1):
        mine = [r for r in rows if _panel(r, modes) == panel]
        ks = sorted({r["k"] for r in mine})
        for i, (column, name) in enumerate(GEOMETRY_SERIES):
            stats = [_stats(100 * r[column] for r in mine if r["k"] == k) for k in ks]
            fig.add_trace(
                go.Scatter(
                    x=ks,
                    y=[s[0] for s in stats],
                    error_y=dict(type="data", array=[s[1] if s[2] > 1 else math.nan for s in stats],
                                 visible=any(s[2] > 1 for s in stats)),
                    mode="lines+markers",
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                    line=dict(color=PALETTE[i]),
                    hovertemplate="K=%{x}: %{y:.2f} %<extra>" + name + "</extra>",
                ),
                row=1,
                col=col,
            )
        family, mode = mine[0]["mask_family"], mine[0]["mode"]
        if family != "custom":  # a custom map's parts can be any size
            share = [_part_share(family, k) for k in ks]
            fig.add_trace(
                go.Scatter(
                    x=ks, y=[100 * (f if mode == "hide" else 1 - f) for f in share], mode="lines",
                    name=SHARE_NAME, legendgroup="share", showlegend=col == 1, line=dict(color="grey", dash="dot"),
                    hovertemplate=("one part" if mode == "hide" else "all but one part") + ": %{y:.2f} %<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="K", row=1, col=col)  # one per panel: longer, two ran into each other at 1024 px
    _k_ticks(fig, rows)
    # Every panel log: plotly.js links shared axes only when their types agree.
    label_log_y(fig)
    fig.update_yaxes(title_text="largest ||x − m_k x|| / ||x|| (%)", row=1, col=1)
    fig.update_layout(
        title=dict(text="How far the masked copies lie from the universal image (worst mask)", x=0.0),
        height=height,
        margin=dict(l=10, r=10, t=60, b=10),
    )
    return fig
