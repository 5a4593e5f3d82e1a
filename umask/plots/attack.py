"""Figures of the adversarial example: top-k predictions before and after the attack."""

from __future__ import annotations

from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..attacks import Prediction
from ..text import percent
from .palette import BLUE, GREEN, RED

BEFORE, AFTER, TARGET = BLUE, RED, GREEN


def _bars(predictions: Sequence[Prediction], colour: str, highlight: int | None) -> go.Bar:
    # Most probable on top: plotly draws the first horizontal bar at the bottom.
    rows = list(reversed(predictions))
    return go.Bar(
        x=[p.probability for p in rows],
        y=[f"{p.name} ({p.index})" for p in rows],
        orientation="h",
        marker_color=[TARGET if p.index == highlight else colour for p in rows],
        text=[percent(p.probability, 1) for p in rows],
        # Inside a long bar, beside a short one: "auto" drew no number at all where it did not fit.
        textposition=["inside" if p.probability > 0.3 else "outside" for p in rows],
        cliponaxis=False,
        hovertemplate="%{y}: %{text}<extra></extra>",  # the bar's own label: plotly's %-format rounds 0.99996 to 100.00%
        showlegend=False,
    )


def topk_figure(
    before: Sequence[Prediction],
    after: Sequence[Prediction],
    *,
    target: int | None = None,
    height: int = 280,
) -> go.Figure:
    """Two bar charts side by side: the top-k classes of the photo and of the attacked photo.

    Args:
        before, after: top-k lists, most probable first (see
            :func:`umask.attacks.top_predictions`).
        target: the target class of a targeted attack, drawn in green wherever it appears.
        height: figure height in pixels.
    """
    fig = make_subplots(
        rows=1, cols=2, horizontal_spacing=0.25, subplot_titles=("Photo: top-5", "Adversarial photo: top-5")
    )
    fig.add_trace(_bars(before, BEFORE, target), row=1, col=1)
    fig.add_trace(_bars(after, AFTER, target), row=1, col=2)
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10))
    return fig
