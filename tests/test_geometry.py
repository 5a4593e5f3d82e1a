import math

import numpy as np
import pytest
import torch

from umask.errors import UmaskError
from umask.evaluate import classify_masked
from umask.geometry import claim_text, decision_slice, enclosing_ball, mask_geometry, study_claim
from umask.masks import apply_masks, layout, make_masks
from umask.plots.geometry import distances_figure, slice_figure


def stripes(k, size):
    return make_masks(layout("hstripes", k, size), "hide")


@pytest.mark.parametrize("fill", [0.0, 1.0])
def test_constant_image_by_hand(fill):
    # 8x8 grey 0.5, 4 stripes of 2 rows: each copy changes 3*2*8 = 48 of 192 values by 0.5.
    geo = mask_geometry(torch.full((3, 8, 8), 0.5), stripes(4, 8), fill=fill)
    assert np.allclose(geo.absolute["l0"], 0.25)
    assert np.allclose(geo.absolute["l1"], 24.0) and np.allclose(geo.relative["l1"], 24.0 / 96.0)
    assert np.allclose(geo.absolute["l2"], math.sqrt(12)) and np.allclose(geo.relative["l2"], 0.5)
    assert np.allclose(geo.absolute["linf"], 0.5) and np.allclose(geo.relative["linf"], 1.0)
    # The norm change | ||x|| - ||x_k|| | / ||x||: a quarter of the values go from 0.5 to the fill.
    # Fill 0: L1 96 -> 72, L2 sqrt(48) -> sqrt(36), Linf unchanged; fill 1: L1 96 -> 120, L2 -> sqrt(84), Linf 0.5 -> 1.
    l1, l2, linf = (72.0, 6.0, 0.5) if fill == 0.0 else (120.0, math.sqrt(84), 1.0)
    assert np.allclose(geo.norm_change["l1"], abs(96 - l1) / 96)
    assert np.allclose(geo.norm_change["l2"], abs(math.sqrt(48) - l2) / math.sqrt(48))
    assert np.allclose(geo.norm_change["linf"], abs(0.5 - linf) / 0.5)
    assert geo.radius_at_x == pytest.approx(math.sqrt(12))
    # Four copies at equal distance a along orthogonal directions: a regular simplex,
    # circumradius a * sqrt((K-1)/K) = sqrt(12) * sqrt(3/4) = 3.
    assert geo.ball.radius == pytest.approx(3.0, rel=1e-5)
    assert geo.ball.lower_bound <= geo.ball.radius + 1e-12
    assert geo.centre_offset == pytest.approx(math.sqrt(12 - 9), rel=1e-4)


def test_two_rows_by_hand():
    # 2x2 image, row 0 = 1.0 and row 1 = 0.2 in every channel; stripe k hides row k.
    image = torch.tensor([[1.0, 1.0], [0.2, 0.2]]).expand(3, 2, 2).clone()
    geo = mask_geometry(image, stripes(2, 2))
    l1x, l2x = 3 * 2 * 1.2, math.sqrt(3 * 2 * (1 + 0.04))
    assert geo.image_norms["l1"] == pytest.approx(l1x) and geo.image_norms["l2"] == pytest.approx(l2x)
    assert geo.relative["l1"] == pytest.approx([6.0 / l1x, 1.2 / l1x])
    assert geo.relative["l2"] == pytest.approx([math.sqrt(6) / l2x, math.sqrt(6 * 0.04) / l2x])
    assert geo.relative["linf"] == pytest.approx([1.0, 0.2])
    assert geo.absolute["l0"] == pytest.approx([0.5, 0.5])
    assert geo.summary()["radius_at_x"] == pytest.approx(math.sqrt(6))
    # Two points: the enclosing ball is half their distance.
    assert geo.ball.radius == pytest.approx(math.sqrt(6 + 0.24) / 2, rel=1e-6)
    # In words: sqrt(6) = 2.449 is 98.06 % of ||x||_2 = 2.498; the half-distance 1.249 is 50.00 %.
    text = geo.balls_text()
    assert text.startswith("Ball centred at x holding all 2 copies (L2): radius 2.449 = 98.06 % of ||x||₂ = 2.50; "
                           "minimal enclosing ball over any centre"), text
    assert text.endswith(f"radius 1.249 = 50.00 %, its centre {geo.centre_offset:.3f} from x."), text


def test_copies_read_a_few_at_a_time_give_the_figures_of_all_at_once(monkeypatch):
    import umask.geometry as geometry

    image = torch.rand(3, 12, 12, generator=torch.Generator().manual_seed(1))
    masks = make_masks(layout("random", 10, 12, seed=0), "keep")
    whole = mask_geometry(image, masks, fill="mean")
    monkeypatch.setattr(geometry, "COPIES_PER_CHUNK", 3)  # 10 copies: chunks of 3, 3, 3 and 1
    chunked = mask_geometry(image, masks, fill="mean")
    for figures in ("absolute", "relative", "norm_change"):
        for norm, values in getattr(whole, figures).items():
            assert getattr(chunked, figures)[norm] == pytest.approx(values, rel=1e-12), (figures, norm)
    assert chunked.ball.radius == pytest.approx(whole.ball.radius, rel=1e-9)
    assert chunked.ball.centre == pytest.approx(whole.ball.centre, abs=1e-9)
    # and that ball is the one enclosing_ball finds for the copies themselves
    direct = enclosing_ball(apply_masks(image.double(), masks.double(), "mean").flatten(1))
    assert direct.radius == pytest.approx(whole.ball.radius, rel=1e-9)


def test_mean_fill_uses_the_engine_copies():
    image = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    geo = mask_geometry(image, stripes(4, 8), fill="mean")
    mean = image.mean(dim=(1, 2))
    d = (image[:, :2, :] - mean[:, None, None]).abs()
    assert geo.absolute["l1"][0] == pytest.approx(float(d.sum()), rel=1e-6)


def test_study_claim_norms():
    claim = study_claim(torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1)))
    const = claim["constant"]
    assert const["max_abs_l0"] == pytest.approx(1 / 64) and const["max_rel_l1"] == pytest.approx(1 / 64)
    assert const["max_rel_l2"] == pytest.approx(1 / 8) and const["max_rel_linf"] == pytest.approx(1.0)
    # The study's "relative difference of norms" read literally: under 1.6 % in L1 and L2, 0 in Linf.
    assert const["max_norm_change_l1"] == pytest.approx(1 / 64)
    assert const["max_norm_change_l2"] == pytest.approx(1 - math.sqrt(63 / 64)) and const["max_norm_change_linf"] == 0
    noise = claim["image"]
    assert noise["max_abs_l0"] <= 1 / 64 + 1e-12 and 1 / 64 < noise["max_rel_l1"] < 0.03
    with pytest.raises(UmaskError, match="64x64"):
        study_claim(torch.rand(3, 32, 32))
    # 64 stripes on 96 rows: 32 stripes of 2 rows, 32 of 1; the worst hides 2/96 of the pixels.
    wide = study_claim(size=96)  # K: the study's 64 by default
    assert study_claim(size=32)["k"] == 32  # fewer rows than 64: one stripe a row
    assert wide["stripe_rows"] == 2 and wide["pixel_fraction"] == pytest.approx(2 / 96)
    assert wide["constant"]["max_abs_l0"] == pytest.approx(2 / 96) and wide["constant"]["max_rel_l1"] == pytest.approx(2 / 96)
    # In words, as the report, the Geometry page and the CLI say it.
    assert "Here: K = 64 on 64 x 64, the widest stripe 1 row of 64 = 1.56 % of the pixels" in claim_text(claim)
    assert "Here: K = 64 on 96 x 96, the widest stripe 2 rows of 96 = 2.08 % of the pixels" in claim_text(wide)


@pytest.mark.parametrize(
    "points,radius",
    [
        ([[0, 0], [4, 0], [0, 3]], 2.5),  # right triangle: half the hypotenuse
        ([[0, 0], [10, 0], [5, 1]], 5.0),  # obtuse: half the longest side
        ([[0, 0], [1, 0], [0.5, math.sqrt(3) / 2]], 1 / math.sqrt(3)),  # equilateral
        ([[1, 1, 1]], 0.0),
    ],
)
def test_enclosing_ball_known_cases(points, radius):
    ball = enclosing_ball(np.array(points, dtype=float))
    assert ball.radius == pytest.approx(radius, abs=1e-5)
    assert ball.lower_bound == pytest.approx(radius, abs=1e-5)


def test_enclosing_ball_beats_any_other_centre():
    pts = np.random.default_rng(0).normal(size=(20, 5))
    ball = enclosing_ball(pts)
    for c in [pts.mean(axis=0), np.zeros(5), pts[0]]:
        assert ball.radius <= np.linalg.norm(pts - c, axis=1).max() + 1e-9


def test_decision_slice_centre_is_x_and_markers_agree(tiny):
    image = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(2))
    masks = stripes(4, 16)
    calls = []

    def progress(done, total):
        assert not torch.is_grad_enabled()  # thousands of forwards: no autograd graph for any of them
        calls.append((done, total))

    sl = decision_slice(tiny, image, masks, i=0, j=2, resolution=8, batch_size=16, on_progress=progress)
    assert sl.classes.shape == (9, 9) and sl.s[4] == 0 and sl.t[4] == 0  # made odd: x in the middle
    assert sl.centre_class == int(tiny(image[None]).argmax())
    assert calls[-1] == (81, 81) and len(calls) == 6
    copies = classify_masked(tiny, image, masks)
    assert [m.predicted for m in sl.markers[1:]] == [copies.predictions[k] for k in (0, 2, 1, 3)]
    # copy 0 sits on the s axis at its L2 distance; copy 2 on the t axis (disjoint stripes are orthogonal).
    dist = mask_geometry(image, masks).absolute["l2"]
    assert (sl.markers[1].s, sl.markers[1].t) == pytest.approx((dist[0], 0.0), abs=1e-4)
    assert (sl.markers[2].s, sl.markers[2].t) == pytest.approx((0.0, dist[2]), abs=1e-4)
    assert sl.markers[3].off_plane == pytest.approx(dist[1], rel=1e-4)
    # Row a, column b of the map is the point x + s[b] e1 + t[a] e2, with e1
    # towards copy 0 and e2 towards copy 2 (orthogonal: disjoint stripes).
    e1, e2 = (apply_masks(image, masks[k : k + 1])[0] - image for k in (0, 2))
    e1, e2 = e1 / e1.norm(), e2 / e2.norm()
    for a, b in ((1, 6), (7, 2), (0, 8), (8, 0)):
        point = image + float(sl.s[b]) * e1 + float(sl.t[a]) * e2
        assert sl.classes[a, b] == int(tiny(point[None]).argmax()), (a, b)
    fig = slice_figure(sl, targets=(1, 2, 3, 4))
    present = set(int(c) for c in sl.classes.ravel())
    key = [t for t in fig.data if t.legendgroup == "classes"]
    assert len(fig.data) == 1 + len(key) + 3 and fig.data[0].z.shape == (9, 9)  # map, colour key, other copies, x, spanning copies
    x_key, spanning_key = fig.data[-2:]
    # x's key names its class (the colour under the star); the spanning copies are the diamonds at m0 x and m2 x.
    assert x_key.name == f"x, the universal image: {sl.categories[sl.centre_class]} ({sl.centre_class})"
    assert x_key.marker.symbol == "star" and (x_key.x[0], x_key.y[0]) == (0.0, 0.0)
    assert spanning_key.marker.symbol == "diamond" and list(spanning_key.text) == ["m0 x", "m2 x"]
    named = key[:12]
    assert len(present) == 15 and key[-1].name == "3 smaller: hover the map" and len(key) == 13
    assert all(t.name.split(" (")[0] in sl.categories for t in named)
    shares = [float(t.name.split(": ")[1].split("%")[0]) for t in named]
    assert shares == sorted(shares, reverse=True)  # the largest region first
    assert len(distances_figure(mask_geometry(image, masks)).data) == 5
    # The reference line is each mask's share of the pixels: a grid of K = 2 hides quarters, not halves.
    grid2 = mask_geometry(torch.full((3, 8, 8), 0.5), make_masks(layout("grid", 2, 8), "hide"))
    assert list(grid2.hidden_share) == [0.25, 0.25] and list(grid2.absolute["l0"]) == [0.25, 0.25]
    share = distances_figure(grid2).data[-1]
    assert share.name == "pixels the mask replaces (share)" and list(share.y) == [25.0, 25.0]


def test_decision_slice_bad_masks(tiny):
    image = torch.rand(3, 16, 16)
    with pytest.raises(UmaskError, match="two different masks"):
        decision_slice(tiny, image, stripes(4, 16), i=1, j=1)
    with pytest.raises(UmaskError, match="two different masks"):
        decision_slice(tiny, image, stripes(4, 16), i=0, j=7)


def test_decision_slice_refuses_an_image_too_small_before_any_forward_pass(tiny):
    # A real network fails inside its layers on such an image (a raw
    # RuntimeError); the check must come before the grid is classified.
    tiny.min_size = tiny.min_run_size = 32
    batches = []
    with pytest.raises(UmaskError, match="Image size 16 is too small for tiny, which needs at least 32 pixels"):
        decision_slice(tiny, torch.rand(3, 16, 16), stripes(4, 16), on_progress=lambda done, total: batches.append(done))
    assert batches == []


@pytest.mark.real
def test_slice_of_the_real_model(lite0):
    image = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(3))
    sl = decision_slice(lite0, image, stripes(8, 64), i=0, j=4, resolution=9)
    assert sl.centre_class == int(lite0(image[None]).argmax())
    assert len(set(sl.classes.ravel().tolist())) > 1  # regions meet on the plane: a misplaced centre would show


def test_sweep_geometry_figure_is_log_in_every_panel():
    # plotly.js links shared y axes only when their types agree: a linear second
    # panel would hide its tick labels under the first panel's log scale.
    from umask.plots.study import GEOMETRY_SERIES, geometry_figure

    rows = [dict({c: 0.01 * k for c, _ in GEOMETRY_SERIES}, k=k, mask_family=f, mode="hide")
            for f in ("grid", "hstripes") for k in (2, 10)]
    fig = geometry_figure(rows)
    axes = [fig.layout[name] for name in fig.layout if name.startswith("yaxis")]
    assert len(axes) == 2 and all(axis.type == "log" for axis in axes)
    # K is a count: ticks at the swept values, never at 2.5 or 3.5 masks.
    assert all(list(fig.layout[name].tickvals) == [2, 10] for name in fig.layout if name.startswith("xaxis"))


def test_log_axes_are_labelled_at_one_two_five():
    from umask.plots.axes import log_ticks
    from umask.plots.study import GEOMETRY_SERIES, geometry_figure

    assert log_ticks(1.3, 40) == [2, 5, 10, 20]
    assert log_ticks(0.5, 5000) == [1, 10, 100, 1000]  # over three decades: the powers only
    assert log_ticks(3, 4) == [2, 5]  # no tick inside: the nearest on each side
    # ... and the axis reaches them: a time axis of 3.1 s and 3.4 s shows "2" and "5", not a blank axis.
    import plotly.graph_objects as go
    from umask.plots.axes import label_log_y

    close = go.Figure(go.Scatter(x=[2, 10], y=[3.1, 3.4]))
    label_log_y(close)
    low, high = close.layout.yaxis.range
    assert list(close.layout.yaxis.tickvals) == [2, 5] and low < math.log10(2) and high > math.log10(5)
    # Every series at 2 % (K = 2) and 10 % (K = 10), one stripe's share (1/K) at 50 % and 10 %.
    rows = [dict({c: 0.01 * k for c, _ in GEOMETRY_SERIES}, k=k, mask_family="hstripes", mode="hide") for k in (2, 10)]
    fig = geometry_figure(rows)
    assert list(fig.layout.yaxis.tickvals) == [2, 5, 10, 20, 50] and list(fig.layout.yaxis.ticktext) == ["2", "5", "10", "20", "50"]


def test_sweep_geometry_reference_is_one_parts_share_of_the_pixels():
    from umask.plots.study import GEOMETRY_SERIES, SHARE_NAME, geometry_figure

    def rows(family, mode):
        return [dict({c: 0.01 for c, _ in GEOMETRY_SERIES}, k=k, mask_family=family, mode=mode) for k in (2, 10, 62)]

    def share(fig):
        (line,) = [t for t in fig.data if t.name == SHARE_NAME]
        return list(line.y)

    # A grid of K = 2 is two squares of a 2 x 2 grid: a quarter each, not a half.
    assert share(geometry_figure(rows("grid", "hide"))) == pytest.approx([25.0, 100 / 16, 100 / 64])
    assert share(geometry_figure(rows("hstripes", "hide"))) == pytest.approx([50.0, 10.0, 100 / 62])
    assert share(geometry_figure(rows("grid", "keep"))) == pytest.approx([75.0, 1500 / 16, 6300 / 64])  # all but the part
    assert not [t for t in geometry_figure(rows("custom", "hide")).data if t.name == SHARE_NAME]
