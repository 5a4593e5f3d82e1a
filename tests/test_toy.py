import math

import numpy as np
import pytest

from umask.errors import UmaskError
from umask.plots.geometry import toy_figure
from umask.toy import (
    classes_in_disc,
    classify,
    evenly_spaced,
    make_toy,
    meeting_point,
    region_map,
    smallest_disc_with_all_classes,
)


def test_lines_meet_at_the_centre():
    toy = evenly_spaced(5, centre=(0.5, -1.0))
    point, residual = meeting_point(toy)
    assert residual < 1e-9 and point == pytest.approx([0.5, -1.0])
    assert classes_in_disc(toy, (0.5, -1.0), 1e-3) == set(range(5))
    disc = smallest_disc_with_all_classes(region_map(toy, extent=3, resolution=101))
    assert disc.radius <= 2 * disc.accuracy and np.linalg.norm(disc.centre - [0.5, -1.0]) <= 2 * disc.accuracy


def test_shifted_lines_need_a_large_disc():
    toy = evenly_spaced(5, offsets=[0.0, 1.2, -0.6, 0.9, -0.3])
    point, residual = meeting_point(toy)
    assert residual > 0.1
    assert len(classes_in_disc(toy, tuple(point), 0.05)) < 5
    disc = smallest_disc_with_all_classes(region_map(toy, extent=3, resolution=121))
    assert disc.radius > 0.5
    centre = tuple(disc.centre)
    assert classes_in_disc(toy, centre, disc.radius + 2 * disc.accuracy) == set(range(5))
    assert len(classes_in_disc(toy, centre, disc.radius / 2)) < 5


def test_classify_follows_the_directions():
    toy = make_toy([0, 90, 180, 270])
    far = np.array([[10, 0], [0, 10], [-10, 0], [0, -10]], dtype=float)
    assert classify(toy, far).tolist() == [0, 1, 2, 3]


def test_class_outside_the_view_is_missing():
    toy = make_toy([0, 120, 240], offsets=[0, 0, -50])  # class 2 pushed far away
    disc = smallest_disc_with_all_classes(region_map(toy, extent=2, resolution=41))
    assert disc.missing == (2,) and math.isinf(disc.radius)


def test_bad_toys():
    with pytest.raises(UmaskError, match="at least 2"):
        make_toy([10])
    with pytest.raises(UmaskError, match="same angle"):
        make_toy([10, 10, 50])
    with pytest.raises(UmaskError, match="one of each"):
        make_toy([0, 90], offsets=[0])


def test_toy_figure_draws_regions_lines_and_disc():
    toy = evenly_spaced(4)
    regions = region_map(toy, resolution=41)
    fig = toy_figure(regions, disc=smallest_disc_with_all_classes(regions), meeting=meeting_point(toy), probe=((0, 0), 1.0))
    # heatmap + the 4 edges between neighbouring classes (opposite ones never touch) + disc + probe + meeting star
    assert len(fig.data) == 1 + 4 + 3
    assert fig.layout.xaxis.range == (-3.0, 3.0) and fig.layout.xaxis.constrain == "domain"


@pytest.mark.parametrize("meet", [True, False])
def test_boundary_segments_are_the_edges_between_regions(meet):
    from umask.toy import boundary_segments

    offsets = None if meet else [0.0, 1.5, -0.8, 0.4, 2.0, -1.2, 0.9, 0.3]
    toy = evenly_spaced(8, offsets=offsets)
    segments = boundary_segments(toy)
    assert segments  # some edges are always in view
    if meet:  # eight cones round one point: each class borders its two neighbours only
        assert sorted((a, b) for a, b, *_ in segments) == sorted([(c, c + 1) for c in range(7)] + [(0, 7)])
    for a, b, xs, ys in segments:
        points = np.stack([xs, ys], axis=1)[~np.isnan(xs)]
        assert len(points) >= 2 and (np.abs(points) <= 3.0).all()
        # A step to either side of the line lands in a and in b: it is their edge.
        normal = toy.weights[a] - toy.weights[b]
        step = 1e-4 * normal / np.linalg.norm(normal)
        inner = points[1:-1]  # the ends may sit on a corner where a third class begins
        assert set(classify(toy, inner + step)) == {a} and set(classify(toy, inner - step)) == {b}
