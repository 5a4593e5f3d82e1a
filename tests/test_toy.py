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
    assert disc.radius <= 2 * disc.spacing and np.linalg.norm(disc.centre - [0.5, -1.0]) <= 2 * disc.spacing


def test_shifted_lines_need_a_large_disc():
    toy = evenly_spaced(5, offsets=[0.0, 1.2, -0.6, 0.9, -0.3])
    point, residual = meeting_point(toy)
    assert residual > 0.1
    assert len(classes_in_disc(toy, tuple(point), 0.05)) < 5
    disc = smallest_disc_with_all_classes(region_map(toy, extent=3, resolution=121))
    assert disc.radius > 0.5
    centre = tuple(disc.centre)
    assert classes_in_disc(toy, centre, disc.radius + 2 * disc.spacing) == set(range(5))
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
    # heatmap + 6 pairwise lines + disc + probe + meeting star
    assert len(fig.data) == 1 + 6 + 3
