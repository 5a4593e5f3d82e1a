import pytest
import torch

from umask.errors import UmaskError
from umask.masks import (
    apply_masks,
    layout,
    load_layout,
    make_masks,
    max_parts,
    num_parts,
    part_indicators,
    save_layout_png,
    selection_mask,
)


def test_grid_k62_uses_62_of_64_equal_squares():
    labels = layout("grid", 62, 64)
    assert num_parts(labels) == 62
    counts = torch.bincount(labels[labels >= 0])
    assert counts.tolist() == [64] * 62  # 8 x 8 cells of 8 x 8 pixels
    # The last two cells of the 8 x 8 grid (bottom right) belong to no part.
    assert (labels[56:, 48:] == -1).all()
    assert labels[0, 0] == 0 and labels[0, 8] == 1 and labels[8, 0] == 8  # row-major


def test_grid_cells_are_squares_in_row_major_order():
    labels = layout("grid", 9, 30)
    assert labels[0:10, 0:10].unique().tolist() == [0]
    assert labels[0:10, 10:20].unique().tolist() == [1]
    assert labels[20:30, 20:30].unique().tolist() == [8]


@pytest.mark.parametrize("family", ["hstripes", "vstripes"])
def test_stripes_are_as_equal_as_integer_rows_allow(family):
    labels = layout(family, 10, 64)
    counts = torch.bincount(labels.flatten())
    assert sorted(set((counts // 64).tolist())) == [6, 7]  # 64 rows into 10 stripes
    assert counts.sum() == 64 * 64
    line = labels[:, 0] if family == "hstripes" else labels[0, :]
    assert (line.diff() >= 0).all()  # stripes in order, top to bottom / left to right
    whole = labels[:, :1] if family == "hstripes" else labels[:1, :]
    assert (labels == whole).all()  # each row (column) lies in one stripe


def test_hstripes_64_is_one_row_each():
    labels = layout("hstripes", 64, 64)
    assert (labels[:, 0] == torch.arange(64)).all()


def test_random_layout_partitions_into_k_nonempty_connected_blocks():
    labels = layout("random", 12, 32, seed=3)
    assert (labels >= 0).all()
    counts = torch.bincount(labels.flatten())
    assert len(counts) == 12 and (counts > 0).all()
    for part in range(12):
        assert _connected(labels == part)
    assert torch.equal(labels, layout("random", 12, 32, seed=3))
    assert not torch.equal(labels, layout("random", 12, 32, seed=4))
    # Plain nearest-centre cells split at a pixel corner about once in sixty blocks.
    for size, k, seed in [(s, k, seed) for s in (16, 64) for k in (5, 26, 62) for seed in range(4)]:
        labels = layout("random", k, size, seed=seed)
        assert all(_connected(labels == part) for part in range(k)), (size, k, seed)


def _connected(region: torch.Tensor) -> bool:
    """4-connectivity flood fill: pieces that meet only at a corner are two."""
    pixels = {tuple(p) for p in region.nonzero().tolist()}
    stack, seen = [next(iter(pixels))], set()
    while stack:
        y, x = stack.pop()
        if (y, x) in seen:
            continue
        seen.add((y, x))
        stack += [(y + dy, x + dx) for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)) if (y + dy, x + dx) in pixels]
    return seen == pixels


def test_k_limits_and_errors():
    assert max_parts("hstripes", 64) == 64
    with pytest.raises(UmaskError, match="at least 2 masks"):
        layout("grid", 1, 64)
    with pytest.raises(UmaskError, match="the most is 64"):
        layout("hstripes", 65, 64)
    with pytest.raises(UmaskError, match="Unknown mask family 'dots'"):
        layout("dots", 4, 64)


def test_masked_pixels_are_capped_for_layouts_and_part_maps(tmp_path):
    from PIL import Image
    import numpy as np

    assert layout("grid", 64, 512).max() == 63  # K x side x side = 2^24: the most allowed
    with pytest.raises(UmaskError, match=r"The 'grid' layout has K = 65 parts on a 512x512 image, more than umask handles: "
                                         r"K x side x side may be at most 16,777,216"):
        layout("grid", 65, 512)
    # A part map brings its own K and side (an uploaded result): refused with the same rule.
    stripes = (np.arange(1024)[:, None] * 17 // 1024 + 1).repeat(1024, axis=1).astype(np.uint16)
    Image.fromarray(stripes).save(tmp_path / "many.png")
    with pytest.raises(UmaskError, match=r"many.png' has K = 17 parts on a 1024x1024 image, more than umask handles"):
        load_layout(tmp_path / "many.png", 1024)


def test_hide_and_keep_masks():
    labels = layout("hstripes", 4, 8)
    hide = make_masks(labels, "hide")
    keep = make_masks(labels, "keep")
    assert hide.shape == keep.shape == (4, 1, 8, 8)
    assert torch.equal(hide + keep, torch.ones_like(hide))
    assert torch.equal(keep, part_indicators(labels))
    assert hide[1, 0, 2:4].sum() == 0 and hide[1, 0, :2].min() == 1
    with pytest.raises(UmaskError, match="choose 'hide' or 'keep'"):
        make_masks(labels, "blur")


def test_selection_mask_hides_or_keeps_any_combination():
    labels = layout("grid", 4, 8)
    for mode in ("hide", "keep"):
        one = make_masks(labels, mode)
        assert torch.equal(selection_mask(labels, [1], mode), one[1:2])  # one part: that mask exactly
        both = selection_mask(labels, [1, 3], mode)
        assert torch.equal(both, one[1:2] * one[3:4] if mode == "hide" else one[1:2] + one[3:4])
    assert torch.equal(selection_mask(labels, [], "hide"), torch.ones(1, 1, 8, 8))  # nothing hidden
    assert torch.equal(selection_mask(labels, [], "keep"), torch.zeros(1, 1, 8, 8))  # nothing visible
    with pytest.raises(UmaskError, match="choose 'hide' or 'keep'"):
        selection_mask(labels, [0], "blur")


@pytest.mark.parametrize("fill", [0.0, 0.25, 0.5, 1.0, "mean"])
def test_fill_values(fill):
    image = torch.rand(3, 8, 8)
    masks = make_masks(layout("hstripes", 2, 8), "hide")
    out = apply_masks(image, masks, fill)
    assert out.shape == (2, 3, 8, 8)
    expected = image.mean(dim=(1, 2)) if fill == "mean" else torch.full((3,), float(fill))
    assert torch.allclose(out[0, :, :4, :], expected[:, None, None].expand(3, 4, 8))
    assert torch.equal(out[0, :, 4:, :], image[:, 4:, :])


@pytest.mark.parametrize("k,mode", [(255, "L"), (256, "I;16"), (300, "I;16")])
def test_custom_layout_round_trip(tmp_path, k, mode):
    from PIL import Image

    labels = layout("random", k, 64, seed=1)  # value k+1 for part k: K = 256 no longer fits 8 bits
    save_layout_png(labels, tmp_path / "parts.png")
    with Image.open(tmp_path / "parts.png") as img:
        assert img.mode == mode
    assert torch.equal(load_layout(tmp_path / "parts.png", 64), labels)


def test_custom_layout_errors(tmp_path):
    from PIL import Image
    import numpy as np

    with pytest.raises(UmaskError, match="does not exist"):
        load_layout(tmp_path / "none.png", 8)
    (tmp_path / "junk.png").write_bytes(b"not a png")
    with pytest.raises(UmaskError, match="not a readable image"):
        load_layout(tmp_path / "junk.png", 8)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(UmaskError, match="is 4x4 but the image size is 8x8"):
        load_layout(tmp_path / "small.png", 8)
    gappy = np.zeros((8, 8), np.uint8)
    gappy[:4] = 1
    gappy[4:] = 3
    Image.fromarray(gappy).save(tmp_path / "gap.png")
    with pytest.raises(UmaskError, match="without gaps"):
        load_layout(tmp_path / "gap.png", 8)
    # A palette image: its pixels are table indices, which need not be the grey values shown (here reversed).
    indices = np.repeat(np.arange(1, 5, dtype=np.uint8), 2)[:, None].repeat(8, axis=1)
    palette = Image.fromarray(indices, mode="P")
    palette.putpalette([0, 0, 0] + [v for g in (4, 3, 2, 1) for v in (g, g, g)])
    palette.save(tmp_path / "palette.png")
    with pytest.raises(UmaskError, match="is a palette image .*; save it as a grey PNG"):
        load_layout(tmp_path / "palette.png", 8)
    # A JPEG, even of a good map: its compression turns the edges between parts into other numbers.
    good = np.repeat(np.arange(1, 5, dtype=np.uint8), 2)[:, None].repeat(8, axis=1)
    Image.fromarray(good).save(tmp_path / "parts.jpg", quality=95)
    with pytest.raises(UmaskError, match=r"^Part map '.*parts.jpg' is a JPEG image; give a PNG \(lossless\), grey, "
                                         r"where value k\+1 marks part k.$"):
        load_layout(tmp_path / "parts.jpg", 8)


def test_a_huge_part_map_is_one_sentence_without_pillows_warning(tmp_path):
    import warnings
    import zlib

    from PIL import Image

    Image.new("L", (1, 1)).save(tmp_path / "huge.png")
    # Rewrite the header's size to 10000 x 10000 without writing the pixels: 100 megapixels, past the
    # size Pillow warns about (89 M), short of the one it refuses (179 M).
    data = bytearray((tmp_path / "huge.png").read_bytes())
    data[16:24] = (10000).to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the IHDR chunk's checksum, over its type and data
    (tmp_path / "huge.png").write_bytes(bytes(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would fail here, as it would print three lines in the CLI
        with pytest.raises(UmaskError, match="is 10000x10000 but the image size is 64x64"):
            load_layout(tmp_path / "huge.png", 64)
