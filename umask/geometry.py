"""The study's geometric reading of a universal image, measured.

An image is a point of R^(3*H*W) (pixel values in [0, 1], all three channels,
flattened). Its K masked copies ``x_k = m_k x + (1 - m_k) fill`` (made by
:func:`umask.masks.apply_masks`) are K nearby points, and the model sends them
to K different classes. This module measures how near they are and draws what
the model does on a plane through them.

Norms (all over the flattened ``3*H*W`` vector ``d = x - x_k``):
    L0    fraction of the values that differ (``count(d != 0) / (3*H*W)``);
          the study's "1/64 = 1.6 %" for one hidden row of 64 is this figure.
    L1    ``sum |d|``; relative: ``/ sum |x|``.
    L2    ``sqrt(sum d^2)`` (Euclidean); relative: ``/ ||x||_2``.
    Linf  ``max |d|``; relative: ``/ max |x|``.

The study words its figure as a "relative difference of norms"; read
literally that is ``| ||x|| - ||x_k|| | / ||x||`` (the *norm change*), which
is not the norm of the difference. Both are measured. With fill 0 the two
agree in L1 (pixels are >= 0); in L2 the norm change of hiding a share s of
the pixels is about s/2, and in Linf it is usually 0.

Radii (L2, absolute):
    radius at x      ``max_k ||x - x_k||_2``: the smallest ball *centred at x*
                     that holds all K copies.
    enclosing ball   the minimal enclosing ball of the K copies over any
                     centre, by Frank-Wolfe on the dual (Badoiu-Clarkson
                     style), stopped when its certified upper and lower
                     bounds on the radius agree to ``tol``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from .errors import UmaskError
from .evaluate import classify_masked
from .masks import apply_masks, layout, make_masks
from .models import Classifier
from .text import count, percent

NORMS = ("l0", "l1", "l2", "linf")
NORM_LABELS = {
    "l0": "L0 (fraction of values changed)",
    "l1": "L1 (sum of |difference|)",
    "l2": "L2 (Euclidean)",
    "linf": "L-infinity (largest |difference|)",
}

ProgressHook = Callable[[int, int], None]


@dataclass(frozen=True)
class Ball:
    """A ball around points in R^n.

    Attributes:
        centre: ``(n,)`` float64 numpy array.
        radius: the largest distance from ``centre`` to a point (an upper
            bound on the minimal radius).
        lower_bound: a certified lower bound on the minimal radius (the dual
            value); ``radius - lower_bound`` is the remaining gap.
        iterations: Frank-Wolfe iterations used.
    """

    centre: np.ndarray
    radius: float
    lower_bound: float
    iterations: int


# Masked copies in memory at once: all K = 1000 copies of a 128 x 128 image
# in float64 (and the differences, squares, ...) took 1.5 GB.
COPIES_PER_CHUNK = 64

# first row -> (row of the chunk's first point, (B, n) float64 points), in
# order from the chunk that holds that row (a multiple of the chunk size);
# called again for each pass, so only one or two chunks live at a time.
PointChunks = Callable[[int], Iterator[tuple[int, torch.Tensor]]]


def enclosing_ball(points: np.ndarray | torch.Tensor, *, tol: float = 1e-6, max_iter: int = 100_000) -> Ball:
    """Minimal enclosing ball of N points (rows of ``points``, shape ``(N, n)``).

    Solves the dual ``max_{lambda in simplex} sum_i lambda_i |p_i|^2 - |sum_i lambda_i p_i|^2``
    by Frank-Wolfe with exact line search on the N x N Gram matrix (each step
    moves weight towards the point farthest from the current centre, as in
    Badoiu-Clarkson). The primal radius ``max_i |c - p_i|`` is an upper bound
    and ``sqrt(dual)`` a lower bound; it stops when they agree to ``tol``
    (relative) or after ``max_iter`` steps.
    """
    p = torch.as_tensor(points).detach().cpu().double()
    p = p.reshape(p.shape[0], -1)
    return _enclosing_ball(lambda first: iter([(0, p)] if first == 0 else []), p.shape[0], tol=tol, max_iter=max_iter)


def _enclosing_ball(chunks: PointChunks, n: int, *, tol: float = 1e-6, max_iter: int = 100_000) -> Ball:
    """:func:`enclosing_ball` of ``n`` points read chunk by chunk (see :data:`PointChunks`)."""
    if n == 0:
        raise UmaskError("An enclosing ball needs at least one point.")
    offset = sum(chunk.sum(dim=0) for _, chunk in chunks(0)) / n  # centring keeps the Gram matrix well conditioned
    gram = np.empty((n, n))
    for a, chunk_a in chunks(0):
        q_a = chunk_a - offset
        for b, chunk_b in chunks(a):  # the blocks below the diagonal are those above, transposed
            block = (q_a @ (chunk_b - offset).T).numpy()
            gram[a : a + len(chunk_a), b : b + len(chunk_b)] = block
            gram[b : b + len(chunk_b), a : a + len(chunk_a)] = block.T
    sq = np.diag(gram).copy()
    lam = np.zeros(n)
    lam[int(np.argmax(sq))] = 1.0  # start at the point farthest from the mean
    g_lam = gram @ lam
    it = 0
    upper = lower = 0.0
    for it in range(1, max_iter + 1):
        quad = float(lam @ g_lam)
        dist2 = np.maximum(sq - 2 * g_lam + quad, 0.0)  # |c - p_j|^2 with c = sum lam_i q_i
        j = int(np.argmax(dist2))
        upper = math.sqrt(dist2[j])
        lower = math.sqrt(max(float(lam @ sq) - quad, 0.0))
        if upper - lower <= tol * max(upper, 1e-12):
            break
        # Exact line search along e_j - lam for the concave quadratic dual.
        d_g = gram[:, j] - g_lam  # G (e_j - lam)
        slope = (sq[j] - lam @ sq) - 2 * (g_lam[j] - quad)
        curvature = gram[j, j] - 2 * g_lam[j] + quad  # |q_j - c|^2
        step = 1.0 if curvature <= 0 else min(max(slope / (2 * curvature), 0.0), 1.0)
        if step == 0.0:
            break
        lam = (1 - step) * lam
        lam[j] += step
        g_lam = g_lam + step * d_g
    weights = torch.from_numpy(lam)
    centre = offset + sum(weights[a : a + len(chunk)] @ (chunk - offset) for a, chunk in chunks(0))
    radius = max(float((chunk - centre).pow(2).sum(dim=1).sqrt().max()) for _, chunk in chunks(0))
    return Ball(centre=centre.numpy(), radius=radius, lower_bound=min(lower, radius), iterations=it)


@dataclass(frozen=True)
class MaskGeometry:
    """How far each masked copy lies from the universal image.

    Attributes:
        absolute: norm name -> ``(K,)`` numpy array of ``||x - x_k||``
            (``l0`` is already a fraction of the ``3*H*W`` values).
        relative: norm name -> ``(K,)`` numpy array of ``||x - x_k|| / ||x||``
            (``l0``: the same fraction).
        norm_change: norm name (``l1``, ``l2``, ``linf``) -> ``(K,)`` numpy
            array of ``| ||x|| - ||x_k|| | / ||x||``, the study's wording read
            literally (see the module doc).
        image_norms: norm name -> ``||x||`` (``l0``: fraction of non-zero values).
        hidden_share: ``(K,)`` numpy array, the fraction of pixels mask k
            replaces by the fill (L0 reaches it when no such pixel already
            holds the fill value).
        radius_at_x: ``max_k ||x - x_k||_2``.
        ball: minimal enclosing ball of the K copies (any centre), or None.
        centre_offset: ``||x - ball centre||_2`` (how far x is from the best centre).
    """

    absolute: dict[str, np.ndarray]
    relative: dict[str, np.ndarray]
    norm_change: dict[str, np.ndarray]
    image_norms: dict[str, float]
    hidden_share: np.ndarray
    radius_at_x: float
    ball: Ball | None
    centre_offset: float | None

    @property
    def k(self) -> int:
        return int(self.absolute["l2"].shape[0])

    def summary(self) -> dict[str, float]:
        """Flat figures for a table or a CSV row (the worst mask of each norm)."""
        out: dict[str, float] = {}
        for norm in NORMS:
            out[f"max_abs_{norm}"] = float(self.absolute[norm].max())
            if norm != "l0":
                out[f"max_rel_{norm}"] = float(self.relative[norm].max())
                out[f"max_norm_change_{norm}"] = float(self.norm_change[norm].max())
        out["radius_at_x"] = self.radius_at_x
        out["radius_at_x_rel"] = self.radius_at_x / self.image_norms["l2"] if self.image_norms["l2"] > 0 else math.nan
        if self.ball is not None:
            out["enclosing_radius"] = self.ball.radius
            out["enclosing_radius_rel"] = self.ball.radius / self.image_norms["l2"] if self.image_norms["l2"] > 0 else math.nan
        return out

    def balls_text(self, digits: int = 2) -> str:
        """The two balls in words (plain text, any front end): the one centred
        at x that holds every copy, and the smallest over any centre."""
        s = self.summary()
        text = (f"Ball centred at x holding all {self.k} copies (L2): radius {s['radius_at_x']:.3f} = "
                f"{percent(s['radius_at_x_rel'], digits)} of ||x||₂ = {self.image_norms['l2']:.2f}")
        if self.ball is None:
            return text + "."
        return text + (f"; minimal enclosing ball over any centre (Frank-Wolfe on its dual, certified gap "
                       f"{self.ball.radius - self.ball.lower_bound:.1e}): radius {s['enclosing_radius']:.3f} = "
                       f"{percent(s['enclosing_radius_rel'], digits)}, its centre {self.centre_offset:.3f} from x.")

    def table(self) -> list[dict[str, float]]:
        """One dict per mask: ``k`` and every absolute and relative figure."""
        rows = []
        for k in range(self.k):
            row: dict[str, float] = {"k": k}
            for norm in NORMS:
                row[f"abs_{norm}"] = float(self.absolute[norm][k])
                if norm != "l0":
                    row[f"rel_{norm}"] = float(self.relative[norm][k])
                    row[f"norm_change_{norm}"] = float(self.norm_change[norm][k])
            rows.append(row)
        return rows


def _norms(d: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-row norms of ``(K, n)`` float64 differences."""
    return {
        "l0": (d != 0).double().mean(dim=1),
        "l1": d.abs().sum(dim=1),
        "l2": d.pow(2).sum(dim=1).sqrt(),
        "linf": d.abs().amax(dim=1),
    }


def mask_geometry(
    image: torch.Tensor,
    masks: torch.Tensor,
    *,
    fill: float | str = 0.0,
    enclosing: bool = True,
) -> MaskGeometry:
    """Distances between ``image`` and its K masked copies (see the module doc).

    Args:
        image: ``(3, H, W)`` in [0, 1] (pass the saved 8-bit image to measure the PNG).
        masks: ``(K, 1, H, W)`` keep-multipliers from :func:`umask.masks.make_masks`.
        fill: the hidden-pixel value, or ``"mean"``.
        enclosing: also compute the minimal enclosing ball of the copies.
    """
    if image.dim() != 3 or image.shape[0] != 3:
        raise UmaskError(f"Expected an image of shape (3, H, W); got {tuple(image.shape)}.")
    if masks.dim() != 4 or tuple(masks.shape[-2:]) != tuple(image.shape[-2:]):
        raise UmaskError(f"Masks of shape {tuple(masks.shape)} do not fit an image of shape {tuple(image.shape)}.")
    x = image.detach().cpu().double()
    flat_x = x.reshape(1, -1)

    k_all = masks.shape[0]

    def chunks(first: int) -> Iterator[tuple[int, torch.Tensor]]:
        """The engine's masked copies from copy ``first`` on, flattened, a few at a time (:data:`PointChunks`)."""
        for start in range(first, k_all, COPIES_PER_CHUNK):
            part = masks[start : start + COPIES_PER_CHUNK].detach().cpu().double()
            yield start, apply_masks(x, part, fill).reshape(part.shape[0], -1)

    # Written into arrays made up front: small results kept between chunks
    # would pin the heap above each chunk's freed memory, which the next
    # chunk then could not reuse (glibc: peaks of 2 GB instead of 0.2).
    absolute = {norm: np.empty(k_all) for norm in NORMS}
    copy_norms = {norm: np.empty(k_all) for norm in NORMS}
    for start, copies in chunks(0):
        for into, figures in ((absolute, _norms(flat_x - copies)), (copy_norms, _norms(copies))):
            for norm, values in figures.items():
                into[norm][start : start + len(values)] = values.numpy()
    image_norms = {k: float(v[0]) for k, v in _norms(flat_x).items()}
    relative, norm_change = {}, {}
    for norm in NORMS:
        if norm == "l0":
            relative[norm] = absolute[norm]
            continue
        denom = image_norms[norm]
        if denom > 0:
            relative[norm] = absolute[norm] / denom
            norm_change[norm] = np.abs(image_norms[norm] - copy_norms[norm]) / denom
        else:  # a black image: nothing to be relative to
            relative[norm] = norm_change[norm] = np.full_like(absolute[norm], math.nan)
    ball = None
    offset = None
    if enclosing:
        ball = _enclosing_ball(chunks, k_all)
        offset = float(np.sqrt(((flat_x[0].numpy() - ball.centre) ** 2).sum()))
    return MaskGeometry(
        absolute=absolute,
        relative=relative,
        norm_change=norm_change,
        image_norms=image_norms,
        # 0/1 masks: the float32 sums are exact counts (no K x n float64 copy of the masks).
        hidden_share=((1.0 - masks.detach().cpu().float()).flatten(1).sum(dim=1).double() / masks[0].numel()).numpy(),
        radius_at_x=float(absolute["l2"].max()),
        ball=ball,
        centre_offset=offset,
    )


def result_geometry(result, *, enclosing: bool = True) -> MaskGeometry:
    """:func:`mask_geometry` of a :class:`umask.results.Result` (its image, parts, mode, fill)."""
    return mask_geometry(result.image, result.masks, fill=result.fill, enclosing=enclosing)


def study_claim(image: torch.Tensor | None = None, *, k: int | None = None, size: int = 64) -> dict:
    """The study's "at most 1.6 %" claim: hstripes with K masks on a size x size image.

    K defaults to the study's 64 stripes, or one stripe a row on a smaller image.

    The copies are the study's, m_k x: hidden pixels become 0, whatever fill
    the image was made with. Measures a constant mid-grey image (0.5
    everywhere) and, when given, a real ``image`` (resized nowhere: it must be
    ``size`` x ``size``).

    Returns:
        ``{"constant": summary, "image": summary or None, "pixel_fraction": f,
        "stripe_rows": r, "k": k, "size": size}`` where each summary is
        :meth:`MaskGeometry.summary` and the widest stripe is r rows, a
        fraction f of the pixels (1/K when K divides the side).
    """
    k = min(64, size) if k is None else k
    labels = layout("hstripes", k, size)
    stripe_rows = int(torch.bincount(labels[:, 0]).max())
    masks = make_masks(labels, "hide")
    out: dict = {"pixel_fraction": stripe_rows / size, "stripe_rows": stripe_rows, "k": k, "size": size}
    out["constant"] = mask_geometry(torch.full((3, size, size), 0.5), masks, fill=0.0, enclosing=False).summary()
    out["image"] = None
    if image is not None:
        if tuple(image.shape[-2:]) != (size, size):
            raise UmaskError(f"The study's claim is about {size}x{size} images; this one is {image.shape[-1]}x{image.shape[-2]}.")
        out["image"] = mask_geometry(image, masks, fill=0.0, enclosing=False).summary()
    return out


CLAIM_COLUMNS = (
    ("L0 (fraction of values changed)", "max_abs_l0"),
    ("L1 relative", "max_rel_l1"),
    ("L2 relative", "max_rel_l2"),
    ("L∞ relative", "max_rel_linf"),
    ("L2 norm change", "max_norm_change_l2"),
)


def claim_text(claim: dict) -> str:
    """:func:`study_claim` in words (plain text, any front end): which figure
    the study's 1.6 % is, and what the other norms make of the same masks."""
    k, size, rows = claim["k"], claim["size"], claim["stripe_rows"]
    return (
        "The study: horizontal stripes with K = 64 on a 64 x 64 image differ from the universal image by at most 1.6 % "
        f"(one row of 64 hidden = 1/64 = 1.56 % of the pixels). Here: K = {k} on {size} x {size}, the widest stripe "
        f"{count(rows, 'row')} of {size} = {percent(claim['pixel_fraction'])} of the pixels; hidden pixels "
        "are 0, the study's copies m_k x, whatever fill the image was made with. That figure is a count (L0): the "
        "fraction of values that change. In L1 (relative to ||x||₁) it is close to the stripe's share too, exactly that "
        "for a constant image; in L2 it is about its square root (12.5 % for 1/64), and in L∞ it is 100 % (a hidden "
        "pixel of the brightest value falls from max to 0). Each of these is the worst mask's ||x − m_k x|| / ||x|| in "
        "the same norm, over all 3·H·W values. The study's words, a \"relative difference of norms\", read literally "
        "are | ||x|| − ||m_k x|| | / ||x||, the norm change: in L1 the same as above, in L2 about half the stripe's share "
        "(0.78 % for one row of 64 on a constant image): the reading under which the study's 1.6 % holds in a true norm."
    )


def claim_rows(claim: dict) -> list[dict]:
    """:func:`study_claim`'s figures as table rows: image, then the worst mask's fraction per norm (0..1)."""
    rows = []
    for name, key in (("constant grey 0.5", "constant"), ("this universal image", "image")):
        summary = claim.get(key)
        if summary:
            rows.append({"image": name, **{label: summary[field] for label, field in CLAIM_COLUMNS},
                         "radius at x (L2, abs)": summary["radius_at_x"]})
    return rows


# ------------------------------------------------------- decision slice ---


@dataclass(frozen=True)
class SliceMarker:
    """A point drawn on the slice: its name, plane coordinates and predicted class."""

    name: str
    s: float
    t: float
    predicted: int
    off_plane: float = 0.0  # L2 distance from the plane (0 for points that span it)


@dataclass(frozen=True)
class DecisionSlice:
    """The model's classes on a 2-D plane through the image.

    The plane is ``x + s * e1 + t * e2`` with ``e1, e2`` orthonormal (L2) in
    pixel space: ``e1`` points from x to copy ``i``; ``e2`` is the part of the
    direction to copy ``j`` orthogonal to ``e1``. So ``s`` and ``t`` are L2
    distances in pixel space and the picture is not skewed.

    Attributes:
        s, t: ``(R,)`` grid coordinates (``R`` = resolution, odd, so the middle
            point is exactly x).
        classes: ``(R, R)`` int predicted class, ``classes[row=t, col=s]``.
        confidence: ``(R, R)`` softmax probability of that class.
        markers: x and the masked copies (the spanning ones first).
        outside_box: ``(R, R)`` bool, True where some pixel leaves [0, 1]
            (the plane is not clamped: clamping would bend it).
        categories: class names of the model.
    """

    s: np.ndarray
    t: np.ndarray
    classes: np.ndarray
    confidence: np.ndarray
    markers: tuple[SliceMarker, ...]
    outside_box: np.ndarray
    categories: tuple[str, ...]
    masks_used: tuple[int, int]

    @property
    def centre_class(self) -> int:
        r = self.classes.shape[0] // 2
        return int(self.classes[r, r])


def check_slice_copies(k: int, i: int, j: int) -> None:
    """Raise unless copies ``i`` and ``j`` can span a slice of a K-mask result."""
    if not (0 <= i < k and 0 <= j < k) or i == j:
        raise UmaskError(f"The slice needs two different masks in 0..{k - 1}; got {i} and {j}.")


#: Grid points a side of a decision slice at most: 301^2 = 90,601 forwards, a
#: few minutes on a laptop CPU; 100,000 a side would be hours and ~75 GB.
MAX_SLICE_RESOLUTION = 301
#: Grid points a side of a slice unless told otherwise: 41^2 forwards, seconds on a CPU.
SLICE_RESOLUTION = 41


def check_slice_resolution(resolution: int) -> None:
    """Raise unless a slice of ``resolution`` points a side is from 3 to :data:`MAX_SLICE_RESOLUTION`."""
    if not 3 <= resolution <= MAX_SLICE_RESOLUTION:
        raise UmaskError(f"Slice resolution {resolution} is not allowed; use 3 to {MAX_SLICE_RESOLUTION} points a side.")


def slice_side(resolution: int) -> int:
    """Grid points a side of a slice asked for ``resolution``: made odd, so x is the centre point."""
    return resolution + 1 - resolution % 2


@torch.no_grad()
def decision_slice(
    model: Classifier,
    image: torch.Tensor,
    masks: torch.Tensor,
    *,
    i: int = 0,
    j: int = 1,
    fill: float | str = 0.0,
    resolution: int = SLICE_RESOLUTION,
    extent: float = 1.6,
    batch_size: int = 64,
    show_all: bool = True,
    on_progress: ProgressHook | None = None,
) -> DecisionSlice:
    """Classify a grid of points on the plane through x and copies i and j.

    Args:
        model: a frozen classifier.
        image: ``(3, H, W)`` in [0, 1].
        masks: ``(K, 1, H, W)`` keep-multipliers.
        i, j: the two masked copies spanning the plane (distinct, in 0..K-1).
        resolution: grid points per side (made odd so x is the centre point).
        extent: half-width of the grid as a multiple of the farthest spanning
            copy's distance (1.6 shows both copies with a margin).
        batch_size: images per forward pass.
        show_all: also mark the other copies, projected onto the plane.
        on_progress: called ``(points done, points total)`` after each batch.

    Raises:
        UmaskError: bad mask indices, copies i and j on one line through x,
            or an image smaller than the model accepts.
    """
    k = masks.shape[0]
    check_slice_copies(k, i, j)
    model.check_side(image.shape[-1], classify_only=True)  # before the grid's forward passes, which would fail less clearly
    check_slice_resolution(resolution)
    resolution = slice_side(resolution)
    x = image.detach().cpu().float()
    copies = apply_masks(x, masks.detach().cpu().float(), fill)
    u = (copies[i] - x).double().flatten()
    v = (copies[j] - x).double().flatten()
    e1 = u / u.norm() if u.norm() > 0 else u
    v_perp = v - (v @ e1) * e1
    if u.norm() == 0 or v_perp.norm() < 1e-9 * max(float(v.norm()), 1.0):
        raise UmaskError(f"Masked copies {i} and {j} lie on one line through the image (or equal it); pick two other masks.")
    e2 = v_perp / v_perp.norm()
    half = extent * max(float(u.norm()), float(v.norm()))
    s = np.linspace(-half, half, resolution)
    t = np.linspace(-half, half, resolution)
    s[resolution // 2] = t[resolution // 2] = 0.0  # exactly x in the middle
    ss, tt = np.meshgrid(s, t)  # rows follow t, columns follow s
    coords = torch.from_numpy(np.stack([ss.ravel(), tt.ravel()], axis=1))
    basis = torch.stack([e1, e2]).float()  # (2, n)
    total = coords.shape[0]
    classes = np.empty(total, dtype=np.int64)
    confidence = np.empty(total, dtype=np.float32)
    outside = np.empty(total, dtype=bool)
    flat_x = x.flatten()
    for start in range(0, total, batch_size):
        c = coords[start : start + batch_size].float()
        points = flat_x[None] + c @ basis
        outside[start : start + len(c)] = ((points < 0) | (points > 1)).any(dim=1).numpy()
        probs = model(points.view(-1, *x.shape).to(model.device)).float().softmax(dim=1).cpu()
        conf, cls = probs.max(dim=1)
        classes[start : start + len(c)] = cls.numpy()
        confidence[start : start + len(c)] = conf.numpy()
        if on_progress is not None:
            on_progress(min(start + batch_size, total), total)

    # The copies as the saved predictions were measured: all K in one call.
    copy_classes = classify_masked(model, x, masks, fill=fill).predictions
    x_class = int(model(x[None].to(model.device)).argmax(dim=1))
    markers = [SliceMarker("x (universal image)", 0.0, 0.0, x_class)]
    order = [i, j] + ([m for m in range(k) if m not in (i, j)] if show_all else [])
    for m in order:
        d = (copies[m] - x).double().flatten()
        a, b = float(d @ e1), float(d @ e2)
        off = float((d - a * e1 - b * e2).norm())
        markers.append(SliceMarker(f"copy {m}", a, b, copy_classes[m], off))
    r = resolution
    return DecisionSlice(
        s=s,
        t=t,
        classes=classes.reshape(r, r),
        confidence=confidence.reshape(r, r),
        markers=tuple(markers),
        outside_box=outside.reshape(r, r),
        categories=tuple(model.categories),
        masks_used=(i, j),
    )
