"""Part layouts and masks, as tensors made by small pure functions.

A *part layout* is an integer label map of shape ``(H, W)``: value ``k`` marks
part ``k`` (0-based) and ``-1`` marks pixels that belong to no part. From it,
:func:`part_indicators` gives ``(K, 1, H, W)`` tensors with 1 inside part k,
and :func:`make_masks` turns those into *keep-multipliers*: 1 where the model
sees the image, 0 where the fill value shows instead.

Families:
    grid      n x n squares, n = ceil(sqrt(K)), as equal as whole pixels allow
              (sides of 10 and 11 for n = 6 on 64 px); parts are the first K
              cells in row-major order (K = 62 uses 62 of 64 squares).
    hstripes  K horizontal stripes, as equal as integer rows allow.
    vstripes  K vertical stripes, likewise.
    random    K connected blocks: the (Euclidean) Voronoi cells of K distinct
              pixels drawn with ``seed``, grown from their centres so each is
              one piece edge to edge; every pixel belongs to one block.
    custom    a label-map image where pixel value k+1 marks part k, 0 none.

Modes:
    hide      mask k hides part k (the study): the model sees everything else.
    keep      only part k is visible.
"""

from __future__ import annotations

import heapq
import math
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import UmaskError
from .files import IMAGE_READ_ERRORS
from .models.wrapper import MAX_SIDE, MIN_SIDE

FAMILIES = ("grid", "hstripes", "vstripes", "random", "custom")
#: The families :func:`layout` draws by itself (custom needs a label-map image).
BUILTIN_FAMILIES = FAMILIES[:-1]
MODES = ("hide", "keep")


def _bounds(length: int, n: int) -> list[int]:
    """n+1 integer cut points splitting ``length`` into n near-equal runs."""
    return [round(i * length / n) for i in range(n + 1)]


def grid_side(k: int) -> int:
    """Squares a side of the grid family for K parts: n = ceil(sqrt(K)); the
    parts are its first K squares, row by row (K = 62 uses 62 of 64)."""
    return math.ceil(math.sqrt(k))


def max_parts(family: str, size: int) -> int:
    """The largest K a family can make on a ``size`` x ``size`` image."""
    if family == "grid":
        return size * size  # n = ceil(sqrt(K)) must stay <= size
    if family in ("hstripes", "vstripes"):
        return size
    if family == "random":
        return size * size
    raise UmaskError(f"Unknown mask family '{family}'; choose one of {', '.join(FAMILIES)}.")


#: The most masked pixels (K x side x side) one layout may make. The K masked
#: copies are one batch, and a result opened from a file (an upload) brings
#: its own K and side: K = 64 at 512 x 512 or K = 1000 at 128 x 128 fit; a
#: K = 1000 map at 1024 x 1024 would take gigabytes to mask and measure.
MAX_MASKED_PIXELS = 2**24


def _check_masked_pixels(k: int, size: int, what: str) -> None:
    if k * size * size > MAX_MASKED_PIXELS:
        raise UmaskError(
            f"{what} has K = {k} parts on a {size}x{size} image, more than umask handles: K x side x side may be at most "
            f"{MAX_MASKED_PIXELS:,} (K = 64 at 512 x 512, K = 1000 at 128 x 128)."
        )


def check_enough_parts(k: int) -> None:
    """Raise unless K >= 2: one mask makes an ordinary adversarial image, not a universal one."""
    if k < 2:
        raise UmaskError(f"K = {k} is too small; a universal image needs at least 2 masks.")


def check_parts(family: str, k: int, size: int) -> None:
    """Raise unless ``family`` can cut K parts from a size x size image (what
    :func:`layout` checks first, without building the layout)."""
    check_enough_parts(k)
    limit = max_parts(family, size)
    if k > limit:
        raise UmaskError(f"K = {k} is more parts than '{family}' can make on a {size}x{size} image; the most is {limit}.")
    _check_masked_pixels(k, size, f"The '{family}' layout")


def layout(family: str, k: int, size: int, *, seed: int = 0) -> torch.Tensor:
    """Label map ``(size, size)`` int64 of a built-in family: part index or -1.

    Raises:
        UmaskError: unknown family, K < 2, K more than the family can make,
            or more than MAX_MASKED_PIXELS masked pixels.
    """
    if family == "custom":
        raise UmaskError("The 'custom' family needs a label-map image; use load_layout(path, size).")
    check_parts(family, k, size)
    labels = torch.full((size, size), -1, dtype=torch.int64)
    if family == "grid":
        n = grid_side(k)
        cuts = _bounds(size, n)
        for part in range(k):
            r, c = divmod(part, n)
            labels[cuts[r] : cuts[r + 1], cuts[c] : cuts[c + 1]] = part
    elif family in ("hstripes", "vstripes"):
        cuts = _bounds(size, k)
        for part in range(k):
            if family == "hstripes":
                labels[cuts[part] : cuts[part + 1], :] = part
            else:
                labels[:, cuts[part] : cuts[part + 1]] = part
    elif family == "random":
        gen = torch.Generator().manual_seed(seed)
        centres = torch.randperm(size * size, generator=gen)[:k].tolist()
        labels = torch.tensor(_grown_cells(size, [divmod(c, size) for c in centres]), dtype=torch.int64)
    return labels


def _grown_cells(size: int, centres: list[tuple[int, int]]) -> list[list[int]]:
    """Voronoi cells of ``centres`` on the pixel grid, each one piece edge to edge.

    Plain nearest-centre cells can meet themselves only at a pixel's corner
    (the grid cuts a thin wedge of a convex cell in two). Here each block
    grows from its centre through edge neighbours, and a pixel joins the
    nearest centre (squared Euclidean distance; ties: the lower part) whose
    block already touches it: mostly the Voronoi cell, always 4-connected.
    """
    labels = [[-1] * size for _ in range(size)]
    heap = [(0, part, y, x) for part, (y, x) in enumerate(centres)]
    heapq.heapify(heap)
    while heap:
        _, part, y, x = heapq.heappop(heap)
        if labels[y][x] != -1:
            continue
        labels[y][x] = part
        cy, cx = centres[part]
        for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
            if 0 <= ny < size and 0 <= nx < size and labels[ny][nx] == -1:
                heapq.heappush(heap, ((ny - cy) ** 2 + (nx - cx) ** 2, part, ny, nx))
    return labels


def part_map_side(path: str | Path) -> int | None:
    """The side of a part-map image, read from its header (nothing decoded);
    None when it is not a readable image (:func:`load_layout` then says why).

    Raises:
        UmaskError: the map is not square, or its side is outside the sizes
            umask makes images at.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
    except (FileNotFoundError, *IMAGE_READ_ERRORS):
        return None
    if width != height:
        raise UmaskError(f"Part map '{path}' is {width}x{height}; a part map is square, as the image is.")
    if not MIN_SIDE <= width <= MAX_SIDE:
        raise UmaskError(f"Part map '{path}' is {width}x{width}; umask's images are {MIN_SIDE} to {MAX_SIDE} pixels a side.")
    return width


def load_layout(path: str | Path, size: int) -> torch.Tensor:
    """Label map ``(size, size)`` from an image where value k+1 = part k, 0 = none.

    Accepts 8-bit or 16-bit grey PNGs (such as a result's ``parts.png``).

    Raises:
        UmaskError: missing/unreadable file, wrong size, fewer than 2 parts,
            part numbers with gaps, or more than MAX_MASKED_PIXELS masked pixels.
    """
    path = Path(path)
    try:
        # Pillow warns (three lines on stderr) about a huge header before the size check below refuses it in one.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            if img.format != "PNG":  # a lossy JPEG blurs part numbers at every edge into parts of their own
                raise UmaskError(f"Part map '{path}' is a {img.format or 'non-PNG'} image; give a PNG (lossless), "
                                 "grey, where value k+1 marks part k.")
            if img.size != (size, size):  # from the header: a huge map is refused before it is decoded
                raise UmaskError(f"Part map '{path}' is {img.width}x{img.height} but the image size is {size}x{size}; "
                                 "they must match.")
            if img.mode in ("P", "PA"):  # np.array would give palette indices, not the grey values one sees
                raise UmaskError(f"Part map '{path}' is a palette image (its pixels are indices into a colour table); "
                                 "save it as a grey PNG where value k+1 marks part k.")
            img.load()
            values = np.array(img)
    except FileNotFoundError:
        raise UmaskError(f"Part map '{path}' does not exist; give a grey PNG where value k+1 marks part k.") from None
    except Image.DecompressionBombError:  # its header declares hundreds of megapixels
        raise UmaskError(f"Part map '{path}' is far larger than the {size}x{size} image; they must match.") from None
    except IMAGE_READ_ERRORS:
        raise UmaskError(f"Part map '{path}' is not a readable image; give a grey PNG where value k+1 marks part k.") from None
    if values.ndim != 2:
        raise UmaskError(f"Part map '{path}' has colour channels; it must be a single-channel (grey) image.")
    labels = torch.from_numpy(values.astype(np.int64)) - 1
    k = int(labels.max()) + 1
    present = set(torch.unique(labels).tolist()) - {-1}
    if k < 2 or present != set(range(k)):
        raise UmaskError(
            f"Part map '{path}' must number its parts 1..K without gaps (K >= 2); it holds values {sorted(p + 1 for p in present)[:10]}."
        )
    _check_masked_pixels(k, size, f"Part map '{path}'")
    return labels


def num_parts(labels: torch.Tensor) -> int:
    """K of a label map."""
    return int(labels.max()) + 1


def part_indicators(labels: torch.Tensor) -> torch.Tensor:
    """``(K, 1, H, W)`` float tensor: 1 inside part k, 0 elsewhere."""
    k = num_parts(labels)
    return (labels[None] == torch.arange(k)[:, None, None]).float()[:, None]


def study_part(k: int) -> int:
    """The part to show first: part 5, as the study's figures did, or the last part when K <= 5."""
    return min(5, k - 1)


def check_mode(mode: str) -> None:
    """Raise unless ``mode`` is a mask mode (hide or keep)."""
    if mode not in MODES:
        raise UmaskError(f"Unknown mask mode '{mode}'; choose 'hide' or 'keep'.")


def make_masks(labels: torch.Tensor, mode: str = "hide") -> torch.Tensor:
    """Keep-multipliers ``(K, 1, H, W)`` in {0, 1}: 1 where the model sees x.

    ``hide``: mask k is 0 on part k; ``keep``: mask k is 1 only on part k.
    """
    check_mode(mode)
    parts = part_indicators(labels)
    return 1.0 - parts if mode == "hide" else parts


def selection_mask(labels: torch.Tensor, parts, mode: str = "hide") -> torch.Tensor:
    """One keep-multiplier ``(1, 1, H, W)`` for any combination of parts.

    ``hide``: the chosen parts are hidden (1 elsewhere); ``keep``: only the
    chosen parts are visible. One chosen part gives exactly that part's row of
    :func:`make_masks`; none chosen shows the whole image (hide) or nothing (keep).
    """
    check_mode(mode)
    chosen = torch.zeros(labels.shape, dtype=torch.bool)
    for part in parts:
        chosen |= labels == int(part)
    chosen = chosen.float()[None, None]
    return 1.0 - chosen if mode == "hide" else chosen


def parse_fill(value: float | str) -> float | str:
    """A fill value: a number in [0, 1] or the word 'mean'."""
    if isinstance(value, str):
        if value.strip().lower() == "mean":
            return "mean"
        try:
            value = float(value)
        except ValueError:
            raise UmaskError(f"Fill '{value}' is not understood; use a number in [0, 1] (0 black, 0.5 grey) or 'mean'.") from None
    if not 0.0 <= float(value) <= 1.0:
        raise UmaskError(f"Fill {value} is outside [0, 1]; use 0 (black), 0.5 (grey), any value between, or 'mean'.")
    return float(value)


def apply_masks(image: torch.Tensor, masks: torch.Tensor, fill: float | str = 0.0) -> torch.Tensor:
    """The K masked copies of one image.

    Args:
        image: ``(3, H, W)`` in [0, 1].
        masks: ``(K, 1, H, W)`` keep-multipliers from :func:`make_masks`.
        fill: value of hidden pixels: a number in [0, 1], or ``"mean"`` for the
            image's per-channel mean (differentiable).

    Returns:
        ``(K, 3, H, W)`` in [0, 1]: ``masks * image + (1 - masks) * fill``.
    """
    if fill == "mean":
        fill_value = image.mean(dim=(1, 2), keepdim=True)
    elif float(fill) == 0.0:
        return masks * image  # black fill: skip the second term on the hot path
    else:
        fill_value = float(fill)
    return masks * image + (1.0 - masks) * fill_value


def save_layout_png(labels: torch.Tensor, path: str | Path) -> None:
    """Write a label map as a grey PNG (value k+1 = part k; 16-bit when K > 255)."""
    values = (labels + 1).numpy()
    if num_parts(labels) > 255:
        img = Image.fromarray(values.astype(np.uint16))
    else:
        img = Image.fromarray(values.astype(np.uint8), mode="L")
    img.save(path)
