"""The study's illustration as a toy: C linear classes in the plane.

A linear classifier with C classes scores a point p in R^2 as
``score_c(p) = w_c . p + b_c`` and predicts the argmax. The boundary between
classes a and b is the line ``(w_a - w_b) . p + (b_a - b_b) = 0``.

* When every boundary passes through one point p* (all scores equal there),
  every class region is a cone with apex p*: *any* disc around p*, however
  small, holds points of every class. This is the study's picture of a
  universal image: a point where all classes meet, so small changes (masks)
  reach any class.
* When the lines do not meet, some classes lie far apart and only a large
  disc touches them all.

Here class c has direction ``w_c = (cos a_c, sin a_c)`` (angle ``a_c``) and
bias ``b_c = -w_c . centre + offset_c``: with all offsets 0 the lines meet at
``centre``; an offset moves class c's lines away. The dashboard's sliders
change angles and offsets; everything here is a pure function of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import UmaskError


@dataclass(frozen=True)
class LinearToy:
    """C linear classes in the plane.

    Attributes:
        weights: ``(C, 2)`` class directions.
        biases: ``(C,)`` class biases.
    """

    weights: np.ndarray
    biases: np.ndarray

    @property
    def classes(self) -> int:
        return int(self.weights.shape[0])


#: Offsets that keep the lines of 4 to 8 evenly spread classes from meeting
#: while every class still wins somewhere in the [-3, 3] view (larger ones
#: left 4 of 8 classes winning nowhere): the report's "do not meet" example
#: and the Geometry page's starting sliders. Smallest discs: r = 0.55 (4
#: classes), 1.17 (5) ... 2.00 (8).
SCATTERED_OFFSETS = (0.0, 0.3, -0.3, 0.4, -0.7, -0.4, 0.1, -0.2)


def make_toy(angles_deg: list[float], offsets: list[float] | None = None, *, centre: tuple[float, float] = (0.0, 0.0)) -> LinearToy:
    """A toy from class angles (degrees) and offsets (0 = the lines meet at ``centre``).

    Raises:
        UmaskError: fewer than 2 classes, mismatched lengths, or two classes
            with the same direction (their boundary would not be a line).
    """
    if len(angles_deg) < 2:
        raise UmaskError("The toy needs at least 2 classes.")
    offsets = [0.0] * len(angles_deg) if offsets is None else list(offsets)
    if len(offsets) != len(angles_deg):
        raise UmaskError(f"{len(angles_deg)} angles but {len(offsets)} offsets; give one of each per class.")
    rad = np.radians(np.asarray(angles_deg, dtype=float))
    w = np.stack([np.cos(rad), np.sin(rad)], axis=1)
    gaps = np.linalg.norm(w[:, None] - w[None], axis=2) + np.eye(len(w))
    if gaps.min() < 1e-6:
        raise UmaskError("Two classes have the same angle; give every class its own direction.")
    b = -(w @ np.asarray(centre, dtype=float)) + np.asarray(offsets, dtype=float)
    return LinearToy(weights=w, biases=b)


def evenly_spaced(classes: int, *, offsets: list[float] | None = None, centre: tuple[float, float] = (0.0, 0.0)) -> LinearToy:
    """``classes`` directions evenly spread round the circle."""
    if classes < 2:
        raise UmaskError("The toy needs at least 2 classes.")
    return make_toy([360.0 * c / classes for c in range(classes)], offsets, centre=centre)


def scores(toy: LinearToy, points: np.ndarray) -> np.ndarray:
    """Class scores ``w_c . p + b_c`` of ``(N, 2)`` points -> ``(N, C)``."""
    return points @ toy.weights.T + toy.biases


def classify(toy: LinearToy, points: np.ndarray) -> np.ndarray:
    """Predicted class of ``(N, 2)`` points -> ``(N,)`` int."""
    return np.argmax(scores(toy, points), axis=1)


def meeting_point(toy: LinearToy) -> tuple[np.ndarray, float]:
    """The point where all scores are closest to equal, and how far from equal.

    Solves ``w_c . p + b_c = s`` for (p, s) in least squares; the residual
    (root mean square, in score units) is 0 exactly when all boundary lines
    meet in ``p``.
    """
    a = np.concatenate([toy.weights, -np.ones((toy.classes, 1))], axis=1)
    sol, *_ = np.linalg.lstsq(a, -toy.biases, rcond=None)
    residual = float(np.sqrt(np.mean((a @ sol + toy.biases) ** 2)))
    return sol[:2], residual


def boundaries(toy: LinearToy) -> list[tuple[int, int, np.ndarray, float]]:
    """Every pairwise boundary ``(a, b, normal, offset)``: ``normal . p + offset = 0``."""
    out = []
    for a in range(toy.classes):
        for b in range(a + 1, toy.classes):
            out.append((a, b, toy.weights[a] - toy.weights[b], float(toy.biases[a] - toy.biases[b])))
    return out


def boundary_segments(toy: LinearToy, *, extent: float = 3.0, samples: int = 801) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """Where each pairwise line really separates its two classes, inside ``[-extent, extent]^2``.

    The line of classes a and b divides the plane only where a and b lead
    every other class; elsewhere a third class wins on both sides and the
    line is no edge of any region. Returns ``(a, b, xs, ys)`` for each pair
    with such a stretch in view: ``samples`` points along the line, NaN where
    it is not an edge (a plot draws the pieces apart).
    """
    out = []
    for a, b, normal, offset in boundaries(toy):
        length = float(np.linalg.norm(normal))
        foot = -offset * normal / length**2  # the line's point nearest the origin
        along = np.array([-normal[1], normal[0]]) / length
        t = np.linspace(-2 * extent, 2 * extent, samples)  # past the corners of the view
        points = foot[None, :] + t[:, None] * along[None, :]
        values = scores(toy, points)
        lead = values[:, a]
        others = np.delete(values, [a, b], axis=1)
        edge = (others.max(axis=1, initial=-np.inf) <= lead + 1e-12) & (np.abs(points) <= extent).all(axis=1)
        edge &= np.roll(edge, 1) | np.roll(edge, -1)  # a lone point (lines crossing where a third class ties) is no edge
        if edge.any():
            xs, ys = np.where(edge, points[:, 0], np.nan), np.where(edge, points[:, 1], np.nan)
            out.append((a, b, xs, ys))
    return out


@dataclass(frozen=True)
class RegionMap:
    """Predicted classes on a square grid.

    Attributes:
        xs, ys: ``(R,)`` coordinates; ``classes[row=y, col=x]``.
    """

    xs: np.ndarray
    ys: np.ndarray
    classes: np.ndarray
    toy: LinearToy


def region_map(toy: LinearToy, *, extent: float = 3.0, resolution: int = 201) -> RegionMap:
    """Classes on ``[-extent, extent]^2`` with ``resolution`` points a side."""
    xs = np.linspace(-extent, extent, resolution)
    xx, yy = np.meshgrid(xs, xs)
    classes = classify(toy, np.stack([xx.ravel(), yy.ravel()], axis=1)).reshape(resolution, resolution)
    return RegionMap(xs=xs, ys=xs.copy(), classes=classes, toy=toy)


@dataclass(frozen=True)
class Disc:
    """The smallest disc (on the grid) that holds a point of every class.

    Attributes:
        centre: ``(2,)``; radius: its radius (``inf`` when some class has no
            point in the view); accuracy: how far both may be off (the region
            grid's spacing plus half a diagonal of the centres' grid).
        missing: classes with no point in the view.
    """

    centre: np.ndarray
    radius: float
    accuracy: float
    missing: tuple[int, ...]

    def describe(self) -> str:
        """"r = 0.83", "r ≈ 0" (within the grid's accuracy of 0: the lines
        meet, and a disc of any size round that point holds every class), or
        "none in view"."""
        if self.missing:
            return "none in view"
        return "r ≈ 0" if self.radius <= self.accuracy else f"r = {self.radius:.2f}"


def smallest_disc_with_all_classes(regions: RegionMap, *, candidates: int = 61) -> Disc:
    """Search centres on a ``candidates`` x ``candidates`` grid over the view.

    For a centre q the disc must reach the nearest point of each class, so its
    radius is ``max_c dist(q, region_c)``; the answer is the centre that makes
    this smallest. Distances are to grid points of each region, and centres
    lie on a grid too: :attr:`Disc.accuracy` says how far off both may be.
    """
    xx, yy = np.meshgrid(regions.xs, regions.ys)
    pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
    labels = regions.classes.ravel()
    spacing = float(regions.xs[1] - regions.xs[0])
    classes = regions.toy.classes
    missing = tuple(c for c in range(classes) if not np.any(labels == c))
    cs = np.linspace(regions.xs[0], regions.xs[-1], candidates)
    cx, cy = np.meshgrid(cs, cs)
    centres = np.stack([cx.ravel(), cy.ravel()], axis=1)
    accuracy = spacing + float(cs[1] - cs[0]) / math.sqrt(2)
    if missing:
        return Disc(centre=np.array([math.nan, math.nan]), radius=math.inf, accuracy=accuracy, missing=missing)
    grid = regions.classes
    # The nearest point of a region, seen from outside it, lies on its border:
    # grid points with a 4-neighbour of another class, or on the view's edge.
    border = np.zeros_like(grid, dtype=bool)
    border[:, 1:] |= grid[:, 1:] != grid[:, :-1]
    border[:, :-1] |= grid[:, :-1] != grid[:, 1:]
    border[1:, :] |= grid[1:, :] != grid[:-1, :]
    border[:-1, :] |= grid[:-1, :] != grid[1:, :]
    border[0, :] = border[-1, :] = border[:, 0] = border[:, -1] = True
    border = border.ravel()
    # The centre's own class is at distance 0 (for the toy, the exact class).
    own = classify(regions.toy, centres)
    need = np.zeros(len(centres))
    for c in range(classes):
        edge = pts[(labels == c) & border]
        d = np.linalg.norm(centres[:, None, :] - edge[None, :, :], axis=2).min(axis=1)
        d[own == c] = 0.0
        need = np.maximum(need, d)
    best = int(np.argmin(need))
    return Disc(centre=centres[best], radius=float(need[best]), accuracy=accuracy, missing=())


def classes_in_disc(toy: LinearToy, centre: tuple[float, float], radius: float, *, samples: int = 4000) -> set[int]:
    """The classes found among ``samples`` points spread evenly over a disc."""
    if radius <= 0:
        return {int(classify(toy, np.asarray([centre], dtype=float))[0])}
    # Sunflower (Vogel) spiral: even coverage of the disc, deterministic.
    n = np.arange(samples) + 0.5
    r = radius * np.sqrt(n / samples)
    theta = n * math.pi * (3 - math.sqrt(5))
    pts = np.stack([centre[0] + r * np.cos(theta), centre[1] + r * np.sin(theta)], axis=1)
    return set(int(c) for c in np.unique(classify(toy, pts)))
