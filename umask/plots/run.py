"""Figures of one universal-image run: curves, the image and its parts, hit grids.

Images are upscaled here with nearest-neighbour (each pixel becomes a square
block), so a 64 x 64 image stays sharp on a projector instead of blurring.
"""

from __future__ import annotations

import base64
import math
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image, ImageDraw, ImageFont

from ..images import encode_png, image_to_uint8
from ..text import percent
from .axes import label_log_y
from .palette import BLUE, GREEN, RED

HIT, MISS, LINE = GREEN, RED, BLUE
# Part outlines: a yellow that stays visible on noise, and the tint of selected parts.
OUTLINE = np.array([255, 221, 0], dtype=np.float32)
SELECTED = np.array([0, 160, 255], dtype=np.float32)


def upscale(image: torch.Tensor | np.ndarray, *, side: int = 384) -> np.ndarray:
    """Nearest-neighbour upscale to about ``side`` pixels a side.

    Args:
        image: ``(3, H, W)`` float in [0, 1], or an ``(H, W, 3)`` uint8 array.
        side: target side; the integer factor ``max(1, side // W)`` is used so
            every source pixel becomes an equal square block.

    Returns:
        ``(H*f, W*f, 3)`` uint8.
    """
    array = image_to_uint8(image) if isinstance(image, torch.Tensor) else np.asarray(image)
    factor = max(1, side // array.shape[1])
    return np.repeat(np.repeat(array, factor, axis=0), factor, axis=1)


def png_data_uri(array: np.ndarray, *, optimize: bool = False) -> str:
    """``(H, W, 3)`` uint8 -> ``data:image/png;base64,...`` (lossless).

    Fast compression by default (redrawn every poll); ``optimize`` trades time
    for size, for pages that are saved once (the sweep report).
    """
    data = encode_png(array, optimize=True) if optimize else encode_png(array, compress_level=1)
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _layout_base(fig: go.Figure, *, title: str | None, height: int) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.0, xanchor="left") if title else None,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
    )
    return fig


def thin(steps: Sequence[int], values: Sequence[float], most: int = 600) -> tuple[list[int], list[float]]:
    """At most ``most`` evenly spaced points, always keeping the last one.

    A 5000-step run redrawn every second would otherwise send 5000 points per
    curve per poll; a few hundred look the same on screen.
    """
    n = len(steps)
    if n <= most:
        return list(steps), list(values)
    idx = sorted(set(np.linspace(0, n - 1, most).round().astype(int).tolist()))
    return [steps[i] for i in idx], [values[i] for i in idx]


def loss_figure(steps: Sequence[int], losses: Sequence[float], *, height: int = 260) -> go.Figure:
    """The batch loss per step (log scale when it spans more than a decade).

    A log axis has no 0, and the margin loss is exactly 0 once every mask
    wins by its margin: those steps are drawn as dots along the axis floor,
    said in the axis title, or the curve would just end as if the run had.
    """
    steps, losses = thin(steps, losses)
    fig = go.Figure(go.Scatter(x=steps, y=losses, mode="lines", line=dict(color=LINE), name="loss"))
    # A NaN or infinite loss (a diverged run) has no point to draw: it must
    # neither turn the log axis on nor count as a 0.
    finite = [v for v in losses if math.isfinite(v)]
    positive = [v for v in finite if v > 0]
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="loss")
    log = bool(positive) and (max(positive) / min(positive) > 10 or len(positive) < len(finite))
    if log:
        zeros = [s for s, v in zip(steps, losses) if math.isfinite(v) and v <= 0]
        if zeros:
            floor = min(positive) / 3
            fig.add_trace(go.Scatter(x=zeros, y=[floor] * len(zeros), mode="markers", marker=dict(color=LINE, size=4),
                                     name="loss 0", hovertemplate="step %{x}: loss 0<extra></extra>"))
            fig.update_yaxes(title_text="loss (dots: 0)")
            fig.update_layout(showlegend=False)
        label_log_y(fig)  # 1-2-5 ticks: a short run's decade-only axis showed a single "10"
    return _layout_base(fig, title="Loss", height=height)


def success_figure(steps: Sequence[int], rates: Sequence[float], *, height: int = 260) -> go.Figure:
    """Fraction of masks whose prediction is their target, per step, in %."""
    in_percent = [100.0 * r for r in rates]
    best = list(np.maximum.accumulate(in_percent)) if in_percent else []
    _, best = thin(steps, best)
    steps, in_percent = thin(steps, in_percent)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(steps), y=in_percent, mode="lines", line=dict(color=HIT), name="this step"))
    fig.add_trace(go.Scatter(x=list(steps), y=best, mode="lines", line=dict(color=HIT, dash="dot"), name="best so far"))
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="masks on target (%)", range=[-2, 102])
    # The key is in the title, short enough for half of a 1024 px page, not
    # a legend: inside the plot a legend sat on the study preset's curve
    # (10-20 % for the whole run), above it it ran into the title.
    fig.update_layout(showlegend=False)
    return _layout_base(fig, title="Success rate (dotted: best so far)", height=height)


#: Font sizes (pixels) below which a part label is left out: unreadable, and
#: on thin parts it would spill over its neighbours. The probability map's
#: "k: p%" falls back to "k" below the larger one.
MIN_LABEL, MIN_LONG_LABEL = 10, 14
#: Pixels of a label's dark box beside its text, each side.
LABEL_PAD_X = 2
#: Part outlines: two pixels wide around parts at least this many upscaled
#: pixels across, one pixel down to the smaller figure, none below it (62
#: one-row stripes would be more outline than image).
OUTLINE_2PX, OUTLINE_1PX = 24, 10


def _boundaries(labels: np.ndarray, width: int = 2) -> np.ndarray:
    """``(H, W)`` bool: pixels next to another part, a line ``width`` (1 or 2) pixels wide."""
    edge = np.zeros(labels.shape, dtype=bool)
    horizontal = labels[:, :-1] != labels[:, 1:]
    vertical = labels[:-1, :] != labels[1:, :]
    edge[:, 1:] |= horizontal
    edge[1:, :] |= vertical
    if width > 1:
        edge[:, :-1] |= horizontal
        edge[:-1, :] |= vertical
    return edge


def _part_boxes(labels: np.ndarray) -> dict[int, tuple[float, float, int, int]]:
    """Part -> (row, column) of a pixel inside it near its centre of mass, and its (height, width)."""
    boxes = {}
    for part in range(int(labels.max()) + 1):
        rows, cols = np.nonzero(labels == part)
        if rows.size == 0:
            continue
        r, c = rows.mean(), cols.mean()
        # The centre of mass of a non-convex part may lie outside it: use the
        # part's own pixel closest to it, so the number sits on its part.
        i = int(np.argmin((rows - r) ** 2 + (cols - c) ** 2))
        boxes[part] = (float(rows[i]), float(cols[i]), int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1))
    return boxes


def _outline_width(boxes: dict, factor: int) -> int:
    """How wide to draw the part outlines: 2, 1 or 0 pixels, by the typical part's narrower side."""
    if not boxes:
        return 0
    across = factor * float(np.median([min(h, w) for _, _, h, w in boxes.values()]))
    return 2 if across >= OUTLINE_2PX else 1 if across >= OUTLINE_1PX else 0


def _outline(big: np.ndarray, big_lab: np.ndarray, boxes: dict, factor: int, colour) -> None:
    """Paint the part boundaries of the upscaled ``big`` (float, in place) in ``colour``, as wide as :func:`_outline_width` says."""
    width = _outline_width(boxes, factor)
    if width:
        big[_boundaries(big_lab, width)] = colour


def _label_size(boxes: dict, factor: int, longest: int, side: int) -> int:
    """Font size (pixels) for part labels of ``longest`` characters; 0 for none.

    As large as a typical part holds, so the labels stay legible where the
    page shows the picture at half its size (a 1024 px screen): at most 70 %
    of the median part's height and a label's width, with its dark box,
    within 90 % of its width (else neighbours' labels overlap and some are
    left out: 9 of K = 128's squares were), never above a twelfth of the
    picture; 0 when that is below :data:`MIN_LABEL` (the parts are too thin
    to carry a number).
    """
    if not boxes:
        return 0
    by_height = 0.7 * factor * float(np.median([h for _, _, h, _ in boxes.values()]))
    room = 0.9 * factor * float(np.median([w for _, _, _, w in boxes.values()])) - 2 * LABEL_PAD_X
    by_width = room / (0.6 * max(1, longest))  # a digit is about 0.6 em wide
    size = int(min(by_height, by_width, max(MIN_LABEL, side / 12)))
    return size if size >= MIN_LABEL else 0


def _numbers(big: np.ndarray, boxes: dict, factor: int, texts: dict[int, str], size: int) -> np.ndarray:
    """Write ``texts[part]`` in ``size`` px on a dark box at each part's centre (PIL, no plotly)."""
    img = Image.fromarray(big)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size)
    for text, (x, y), box in _placed_labels(draw, font, boxes, factor, texts):
        draw.rectangle(box, fill=(0, 0, 0))
        draw.text((x, y), text, fill=(255, 255, 255), font=font, anchor="mm")
    return np.asarray(img)


def _placed_labels(draw, font, boxes: dict, factor: int, texts: dict[int, str]) -> list:
    """``(text, (x, y), box)`` of each label to write. One that would cover a
    label already placed is left out: random parts' centres can lie close,
    and numbers piled on each other ("124 96 103") say nothing."""
    placed = []
    for part, (r, c, _, _) in boxes.items():
        text = texts.get(part)
        if text is None:
            continue
        x, y = (c + 0.5) * factor, (r + 0.5) * factor
        left, top, right, bottom = draw.textbbox((x, y), text, font=font, anchor="mm")
        box = (left - LABEL_PAD_X, top - 1, right + LABEL_PAD_X, bottom + 1)
        if not any(box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for _, _, o in placed):
            placed.append((text, (x, y), box))
    return placed


def render_parts(
    image: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    selected: Sequence[int] = (),
    numbers: bool = True,
    side: int = 384,
) -> np.ndarray:
    """The image, nearest-upscaled, with the part layout drawn over it.

    Args:
        image: ``(3, H, W)`` in [0, 1].
        labels: ``(H, W)`` part map (-1 = no part); None gives the bare
            upscaled image (use that for "exactly what the model sees").
        selected: parts to tint blue (the ones the user toggled).
        numbers: write each part's number on it (where the parts are large
            enough to hold a legible one; outlines too are left out of
            parts too thin for them).
        side: about the upscaled side in pixels (an integer multiple of W).

    Returns:
        ``(H*f, W*f, 3)`` uint8.
    """
    big = upscale(image, side=side)
    if labels is None:
        return big
    factor = big.shape[0] // image.shape[-2]
    big = big.astype(np.float32)
    lab = labels.cpu().numpy()
    big_lab = np.repeat(np.repeat(lab, factor, axis=0), factor, axis=1)
    if len(selected):
        tint = np.isin(big_lab, list(selected))
        big[tint] = 0.45 * big[tint] + 0.55 * SELECTED
    boxes = _part_boxes(lab)
    _outline(big, big_lab, boxes, factor, OUTLINE)
    big = big.clip(0, 255).astype(np.uint8)
    size = _label_size(boxes, factor, len(str(len(boxes) - 1)), big.shape[0]) if numbers else 0
    if size:
        big = _numbers(big, boxes, factor, {k: str(k) for k in boxes}, size)
    return big


def render_part_probs(labels: torch.Tensor, target_probs: Sequence[float], *, side: int = 320) -> np.ndarray:
    """Each part painted with its mask's target probability (white 0 to green 1), labelled "k: p%" (or "k" where that is too small to read).

    Args:
        labels: ``(H, W)`` part map; pixels of no part are grey.
        target_probs: K probabilities in [0, 1], one per mask.

    Returns:
        ``(H*f, W*f, 3)`` uint8.
    """
    lab = labels.cpu().numpy()
    probs = np.clip(np.asarray(target_probs, dtype=np.float32), 0.0, 1.0)
    white, green = np.array([247, 247, 247], np.float32), np.array([46, 158, 68], np.float32)
    colours = white + probs[:, None] * (green - white)  # (K, 3)
    rgb = np.where(lab[..., None] >= 0, colours[np.clip(lab, 0, None)], np.float32(200))
    factor = max(1, side // lab.shape[1])
    big = np.repeat(np.repeat(rgb, factor, axis=0), factor, axis=1)
    big_lab = np.repeat(np.repeat(lab, factor, axis=0), factor, axis=1)
    boxes = _part_boxes(lab)
    _outline(big, big_lab, boxes, factor, 255.0)
    big = big.astype(np.uint8)
    texts = {k: f"{k}: {percent(float(p), 0)}" for k, p in enumerate(probs)}
    # Sized for the longest a label can be ("9: 100 %"), not for this frame's:
    # else every label changes size as one number grows a digit, and a run
    # that ends on a 100 % fell back to bare part numbers.
    size = _label_size(boxes, factor, len(f"{len(probs) - 1}: {percent(1.0, 0)}"), big.shape[0])
    if size < MIN_LONG_LABEL:  # "k: p%" too small to read: the number alone, the colour tells p
        texts = {k: str(k) for k in texts}
        size = _label_size(boxes, factor, len(str(len(probs) - 1)), big.shape[0])
    if size:
        big = _numbers(big, boxes, factor, texts, size)
    return big


def image_figure(
    image: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    selected: Sequence[int] = (),
    numbers: bool = True,
    title: str | None = None,
    side: int = 384,
    clickable: bool | str = False,
    height: int | None = None,
) -> go.Figure:
    """:func:`render_parts` as a plotly figure (zoomable, for the Explore page).

    The pixels travel as a PNG data URI, not a z array: a 384 x 384 image is
    ~440k numbers as JSON but a few kB as PNG. ``clickable`` (True, or the verb
    for the hover text) adds :func:`click_targets`, so a chart with point
    selection reports the part a user clicks as the selected point's
    ``customdata``. ``height`` (pixels, default: the picture's own) bounds
    how tall the picture is drawn; a figure taller than its column is wide
    shows blank bands above and below the picture.
    """
    big = render_parts(image, labels, selected=selected, numbers=numbers, side=side)
    fig = go.Figure(go.Image(source=png_data_uri(big), hoverinfo="skip"))
    if clickable and labels is not None:
        xs, ys, parts = click_targets(labels, big.shape[0] // image.shape[-2])
        verb = "hide or show" if clickable is True else clickable
        fig.add_trace(go.Scatter(
            x=xs, y=ys, customdata=parts, mode="markers", showlegend=False,
            marker=dict(size=4, color="rgba(0,0,0,0)"),
            text=[f"part {p}: click to {verb}" if p >= 0 else "no part: not one of the K parts" for p in parts],
            hovertemplate="%{text}<extra></extra>",
        ))
        # Any click picks the nearest target, so a click anywhere on a part picks that part.
        fig.update_layout(hoverdistance=-1, clickmode="event+select", dragmode=False)
    fig.update_xaxes(visible=False, range=[-0.5, big.shape[1] - 0.5])
    fig.update_yaxes(visible=False, scaleanchor="x", range=[big.shape[0] - 0.5, -0.5])
    return _layout_base(fig, title=title, height=(height or big.shape[0]) + (50 if title else 20))


def click_targets(labels: torch.Tensor, factor: int, *, most: int = 1024) -> tuple[list[float], list[float], list[int]]:
    """Invisible click targets over an upscaled part map: (x, y, part) per target.

    A lattice of source pixels (every ``stride``-th row and column, at most
    about ``most`` points) in the upscaled image's coordinates, each carrying
    the part under it, plus one on any part the lattice misses. The nearest
    target to a click then lies in the part clicked (up to a lattice step at
    a part's edge), for any layout. Pixels outside every part (a grid's
    unused squares) carry -1: a click there picks no part, not the nearest.
    """
    lab = labels.cpu().numpy()
    h, w = lab.shape
    stride = max(1, math.ceil(math.sqrt(h * w / most)))
    rows, cols = np.meshgrid(np.arange(stride // 2, h, stride), np.arange(stride // 2, w, stride), indexing="ij")
    rows, cols, parts = rows.ravel().tolist(), cols.ravel().tolist(), lab[rows, cols].astype(int).ravel().tolist()
    # A part thinner than the stride (a one-row stripe) still gets a target.
    have = set(parts)
    for part, (r, c, _, _) in _part_boxes(lab).items():
        if part in have:
            continue
        rows.append(int(r))
        cols.append(int(c))
        parts.append(part)
    xs = [(c + 0.5) * factor - 0.5 for c in cols]
    ys = [(r + 0.5) * factor - 0.5 for r in rows]
    return xs, ys, parts


def hit_grid_figure(
    model_names: Sequence[str],
    hits: Sequence[Sequence[bool]],
    probs: Sequence[Sequence[float]],
    predicted: Sequence[Sequence[str]],
    target_names: Sequence[str],
    *,
    title: str | None = "Hit or miss: every part on every model",
) -> go.Figure:
    """The K x models summary: green where part k's mask gives its target on that model.

    Args:
        model_names: M column titles.
        hits: M lists of K booleans (prediction == target).
        probs: M lists of K target probabilities.
        predicted: M lists of K predicted class names.
        target_names: K target names, row labels.
    """
    k = len(target_names)
    z = np.array([[1.0 if h else 0.0 for h in col] for col in hits]).T  # (K, M)
    text = np.array([[f"{'hit' if h else 'miss'} {percent(p, 0)}" for h, p in zip(hc, pc)] for hc, pc in zip(hits, probs)], dtype=object).T
    hover = np.array(
        [
            [f"part {i}: target '{target_names[i]}'<br>{m}: '{predicted[j][i]}'<br>p(target) {percent(probs[j][i], 1)}" for i in range(k)]
            for j, m in enumerate(model_names)
        ],
        dtype=object,
    ).T
    rows = [f"{i}: {name}" for i, name in enumerate(target_names)]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(model_names),
            y=rows,
            zmin=0,
            zmax=1,
            colorscale=[[0.0, MISS], [0.5, MISS], [0.5, HIT], [1.0, HIT]],
            showscale=False,
            text=text,
            texttemplate="%{text}",
            customdata=hover,
            hovertemplate="%{customdata}<extra></extra>",
            xgap=2,
            ygap=2,
        )
    )
    fig.update_yaxes(autorange="reversed", tickfont=dict(size=11))
    fig.update_xaxes(side="top")
    return _layout_base(fig, title=title, height=120 + 24 * k)
