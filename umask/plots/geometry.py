"""Figures of the geometry: per-mask distances, the decision-region slice, the 2-D toy."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative

from ..geometry import NORM_LABELS, DecisionSlice, MaskGeometry
from ..toy import Disc, LinearToy, RegionMap, boundary_segments
from ..targets import class_label
from ..text import percent
from .axes import label_log_y

PALETTE = qualitative.Light24 + qualitative.Dark24 + qualitative.Alphabet


def distances_figure(geo: MaskGeometry, *, height: int = 340) -> go.Figure:
    """Relative distance ``||x - m_k x|| / ||x||`` of every mask k, one line per norm (%)."""
    ks = list(range(geo.k))
    fig = go.Figure()
    for i, norm in enumerate(("l0", "l1", "l2", "linf")):
        fig.add_trace(
            go.Scatter(
                x=ks,
                y=100 * geo.relative[norm],
                mode="lines+markers",
                name=NORM_LABELS[norm],
                line=dict(color=qualitative.Plotly[i]),
                customdata=geo.absolute[norm],
                hovertemplate="mask %{x}: %{y:.2f} % (absolute %{customdata:.4g})<extra>" + norm.upper() + "</extra>",
            )
        )
    # Each mask's own share of the pixels, not 1/K: the two parts of a grid
    # of K = 2 are quarters of the image (25 %, not 50 %).
    fig.add_trace(
        go.Scatter(x=ks, y=100 * geo.hidden_share, mode="lines", name="pixels the mask replaces (share)",
                   line=dict(color="grey", dash="dot"), hovertemplate="mask %{x}: %{y:.2f} % of the pixels<extra></extra>")
    )
    label_log_y(fig, margin=0.2)  # the four norms and the shares, a fifth of a decade to spare
    fig.update_layout(
        title=dict(text="Distance from x to each masked copy, relative to ||x|| (same norm)", x=0.0),
        xaxis=dict(title="mask k", tick0=0, dtick=max(1, math.ceil(geo.k / 16))),  # whole masks only
        yaxis_title="||x − m_k x|| / ||x|| (%)",
        height=height,
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", y=-0.25),
    )
    return fig


def _class_colours(classes: Sequence[int]) -> dict[int, str]:
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(classes)}


#: Classes named in a slice map's colour key (the rest: hover).
KEY_CLASSES = 12


def slice_figure(sl: DecisionSlice, *, targets: Sequence[int] | None = None, height: int = 560) -> go.Figure:
    """The classes of the plane through x and two masked copies, with the copies marked.

    Axes are L2 distances in pixel space along the two orthonormal directions
    (see :class:`umask.geometry.DecisionSlice`). Each region is coloured by its
    predicted class; hover for the class name and its probability. The key
    lists one entry a line under the map, and the figure grows by its lines:
    ``height`` stays the map's (a key beside it or wrapped under it took the
    map's room, leaving a map of 200 pixels on a 1024 px screen).
    """
    present = list(dict.fromkeys(int(c) for c in np.unique(sl.classes)))
    # Biggest regions first, so the palette's first colours go to what matters.
    present.sort(key=lambda c: -int((sl.classes == c).sum()))
    colours = _class_colours(present)
    index = {c: i for i, c in enumerate(present)}
    z = np.vectorize(index.get)(sl.classes)
    n = len(present)
    scale = []
    for i, c in enumerate(present):
        lo, hi = i / n, (i + 1) / n
        scale += [[lo, colours[c]], [hi, colours[c]]]
    names = np.array(sl.categories, dtype=object)[sl.classes]
    custom = np.dstack([names, sl.confidence, sl.classes])
    fig = go.Figure(
        go.Heatmap(
            x=sl.s,
            y=sl.t,
            z=z,
            zmin=-0.5,
            zmax=n - 0.5,
            colorscale=scale,
            showscale=False,
            customdata=custom,
            hovertemplate="s=%{x:.3f}, t=%{y:.3f}<br>%{customdata[0]} (%{customdata[2]})<br>p = %{customdata[1]:.2f}<extra></extra>",
        )
    )
    # The colour key: the legend lists the classes, largest region first (a
    # map of 13 colours is unreadable without one); the smallest are left to
    # the hover beyond KEY_CLASSES.
    part_of = {t: k for k, t in enumerate(targets)} if targets is not None else {}
    for c in present[:KEY_CLASSES]:
        share = float((sl.classes == c).mean())
        target = f", target of part {part_of[c]}" if c in part_of else ""
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{class_label(c, sl.categories)}: {percent(share, 0)}{target}",
                                 marker=dict(symbol="square", size=12, color=colours[c]), legendgroup="classes",
                                 legendgrouptitle_text="Classes (share of the map)" if c == present[0] else None,
                                 hoverinfo="skip"))
    if len(present) > KEY_CLASSES:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", marker=dict(color="rgba(0,0,0,0)"), hoverinfo="skip",
                                 name=f"{len(present) - KEY_CLASSES} smaller: hover the map", legendgroup="classes"))
    spanning = sl.markers[:3]
    others = sl.markers[3:]
    target_of = {}
    if targets is not None:
        for m in sl.markers[1:]:
            k = int(m.name.split()[1])
            target_of[m.name] = targets[k]

    def hover(m) -> str:
        text = f"{m.name}<br>predicted: {class_label(m.predicted, sl.categories)}"
        if m.name in target_of:
            t = target_of[m.name]
            text += f"<br>target: {class_label(t, sl.categories)} {'hit' if t == m.predicted else 'miss'}"
        if m.off_plane > 0:
            text += f"<br>{m.off_plane:.3f} off the plane (projected)"
        return text

    if others:
        fig.add_trace(
            go.Scatter(
                x=[m.s for m in others],
                y=[m.t for m in others],
                mode="markers",
                name="other copies (projected)",
                marker=dict(symbol="circle-open", size=7, color="black"),
                hovertext=[hover(m) for m in others],
                hoverinfo="text",
            )
        )
    # Two keys, one per symbol: x (with its class, the colour under the star)
    # and the copies that span the plane.
    centre, copies = spanning[0], spanning[1:]
    for points, name, symbol, size in (
        ([centre], f"x, the universal image: {class_label(centre.predicted, sl.categories)}", "star", 16),
        (copies, "the two copies that span the plane", "diamond", 13),
    ):
        fig.add_trace(
            go.Scatter(
                x=[m.s for m in points],
                y=[m.t for m in points],
                mode="markers+text",
                name=name,
                text=["x" if m is centre else m.name.replace("copy ", "m") + " x" for m in points],
                textposition="top center",
                textfont=dict(color="black", size=14),
                marker=dict(symbol=symbol, size=size, color="white", line=dict(color="black", width=2)),
                hovertext=[hover(m) for m in points],
                hoverinfo="text",
            )
        )
    i, j = sl.masks_used
    key_lines = sum(1 for trace in fig.data if trace.showlegend is not False and trace.name) + 1  # + its title
    key_height = 21 * key_lines
    fig.update_layout(
        title=dict(text=f"Classes on the plane through x, m{i} x and m{j} x ({n} in view)", x=0.0),
        xaxis_title=f"s: L2 distance along x → m{i} x",
        yaxis_title=f"t: L2, the rest of x → m{j} x",
        xaxis_constrain="domain",
        yaxis_scaleanchor="x",
        height=height + key_height,
        margin=dict(l=10, r=10, t=50, b=key_height + 50),  # the key's lines, below the axis title
        legend=dict(orientation="v", x=0.0, xanchor="left", y=-55 / (height - 100), yanchor="top", tracegroupgap=4),
    )
    return fig


def toy_figure(
    regions: RegionMap,
    *,
    disc: Disc | None = None,
    meeting: tuple[np.ndarray, float] | None = None,
    probe: tuple[tuple[float, float], float] | None = None,
    height: int = 520,
) -> go.Figure:
    """The toy's class regions, the boundary lines between them, and the smallest disc that holds all classes.

    Args:
        regions: from :func:`umask.toy.region_map`.
        disc: from :func:`umask.toy.smallest_disc_with_all_classes`.
        meeting: ``(point, residual)`` from :func:`umask.toy.meeting_point`.
        probe: ``((cx, cy), radius)`` of a disc to draw dashed (a user's probe).
    """
    toy: LinearToy = regions.toy
    c = toy.classes
    colours = [PALETTE[i % len(PALETTE)] for i in range(c)]
    scale = []
    for i in range(c):
        scale += [[i / c, colours[i]], [(i + 1) / c, colours[i]]]
    fig = go.Figure(
        go.Heatmap(
            x=regions.xs, y=regions.ys, z=regions.classes, zmin=-0.5, zmax=c - 0.5, colorscale=scale, showscale=False,
            opacity=0.75, hovertemplate="(%{x:.2f}, %{y:.2f}): class %{z}<extra></extra>",
        )
    )
    lo, hi = float(regions.xs[0]), float(regions.xs[-1])
    # Only where a line is an edge between two regions: all C(C-1)/2 lines
    # drawn whole cross the regions and bury the picture (28 for 8 classes).
    for a, b, xs, ys in boundary_segments(toy, extent=hi):
        fig.add_trace(
            go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="rgba(0,0,0,0.6)", width=1.5), showlegend=False,
                       connectgaps=False, hovertemplate=f"boundary {a} | {b}<extra></extra>")
        )

    def circle(cx: float, cy: float, r: float) -> tuple[np.ndarray, np.ndarray]:
        a = np.linspace(0, 2 * math.pi, 121)
        return cx + r * np.cos(a), cy + r * np.sin(a)

    if disc is not None and math.isfinite(disc.radius):
        xs, ys = circle(disc.centre[0], disc.centre[1], max(disc.radius, disc.accuracy))
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="black", width=3),
                                 name=f"smallest disc with every class: {disc.describe()}", hoverinfo="skip"))
    if probe is not None:
        (px, py), pr = probe
        xs, ys = circle(px, py, pr)
        # Black on white: a white probe vanished in the legend's white key.
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="black", width=2, dash="dash"),
                                 name=f"probe disc r = {pr:.2f}", hoverinfo="skip"))
    if meeting is not None:
        point, residual = meeting
        if residual < 1e-9 and lo <= point[0] <= hi and lo <= point[1] <= hi:
            fig.add_trace(go.Scatter(x=[point[0]], y=[point[1]], mode="markers", name="all lines meet here",
                                     marker=dict(symbol="star", size=16, color="white", line=dict(color="black", width=2))))
    fig.update_layout(
        xaxis=dict(range=[lo, hi], title="p₁", constrain="domain"),  # square, without widening the view past the map
        yaxis=dict(range=[lo, hi], title="p₂", scaleanchor="x"),
        height=height,
        # The key above the map: below it, it sat on the p₁ axis title.
        margin=dict(l=10, r=10, t=50, b=10),
        legend=dict(orientation="h", x=0.0, y=1.02, yanchor="bottom"),
    )
    return fig
