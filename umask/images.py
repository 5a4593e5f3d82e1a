"""Pixels in and out: the 8-bit rule, PNG bytes, photos.

Pixels are floats in [0, 1] everywhere in umask; a file holds 8-bit levels.
:func:`eight_bit_levels` is the one rounding rule between the two: the saved
PNG, the image the optimiser checks and the attacks' 8-bit outputs all come
from it, so a prediction measured on the rounded image is the saved file's.
A photo is loaded *on the 8-bit grid* (every value is k / 255): that is what
the file holds, and what a user gets back after saving and reloading, so
distances measured against it stay true after a round trip through a PNG.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from .errors import UmaskError
from .files import IMAGE_READ_ERRORS, atomic_file, check_writable


def eight_bit_levels(image: torch.Tensor) -> torch.Tensor:
    """``(…, H, W)`` pixels in [0, 1] -> the levels 0..255 an 8-bit PNG holds them as (floats)."""
    return torch.round(image.clamp(0.0, 1.0) * 255.0)


def quantise(image: torch.Tensor) -> torch.Tensor:
    """Round ``(…, H, W)`` pixels in [0, 1] to the 256 levels an 8-bit PNG holds."""
    return eight_bit_levels(image) / 255.0


def image_to_uint8(image: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` in [0, 1] -> ``(H, W, 3)`` uint8 (rounded, as saved)."""
    return eight_bit_levels(image.detach().cpu()).to(torch.uint8).permute(1, 2, 0).numpy()


def uint8_to_image(array: np.ndarray) -> torch.Tensor:
    """``(H, W, 3)`` uint8 -> ``(3, H, W)`` float in [0, 1], contiguous: a
    strided view sums a channel's mean (fill "mean") in another order, and
    re-evaluating a saved result must give its probabilities to the last digit."""
    return torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1).contiguous().float() / 255.0


def encode_png(array: np.ndarray, **options) -> bytes:
    """``(H, W, 3)`` uint8 as the bytes of an RGB PNG (lossless); ``options``
    go to Pillow's PNG writer (``compress_level``, ``optimize``)."""
    buffer = io.BytesIO()
    Image.fromarray(array, mode="RGB").save(buffer, format="PNG", **options)
    return buffer.getvalue()


def png_bytes(image: torch.Tensor) -> bytes:
    """``(3, H, W)`` in [0, 1] as the bytes of an 8-bit RGB PNG (a result's image, a download)."""
    return encode_png(image_to_uint8(image))


#: The photos a refused one is told to give instead (what the uploader takes).
PHOTO_KINDS = "a JPEG, PNG or WebP photo"


def load_photo(source: str | Path | bytes, *, size: int | None = 224, name: str | None = None) -> torch.Tensor:
    """Read a photo as ``(3, size, size)`` floats in [0, 1], on the 8-bit grid.

    The shorter side is resized to ``size`` (bicubic, antialiased, as
    torchvision's ImageNet preprocessing) and the centre square cropped, so
    the model sees the photo at its native resolution without distortion.
    EXIF rotation is applied; greyscale and palette images become RGB, and
    a transparent photo is laid on white, as a browser shows it (its hidden
    colours under alpha 0 are not what anyone sees, so the model must not
    see them either).

    Args:
        source: a file path, or the file's bytes (e.g. a browser upload).
        size: the side of the square result; ``None`` keeps the full photo
            ``(3, H, W)`` as it is.
        name: what to call the photo in error messages (default: the path).

    Raises:
        UmaskError: the file is missing, is not an image Pillow can read, or
            ``size`` is not positive.
    """
    if size is not None and size < 1:
        raise UmaskError(f"Photo size {size} is not allowed; give a positive number of pixels.")
    label = name or ("the uploaded file" if isinstance(source, bytes) else str(source))
    if not isinstance(source, bytes) and not str(source).strip():  # Path("") is the current folder
        raise UmaskError(f"The photo's path is empty; give the path of {PHOTO_KINDS}.")
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else open(Path(source), "rb")
    except FileNotFoundError:
        raise UmaskError(f"Photo '{label}' does not exist; give the path of {PHOTO_KINDS}.") from None
    except IsADirectoryError:
        raise UmaskError(f"Photo '{label}' is a folder; give the path of {PHOTO_KINDS}.") from None
    except OSError as err:
        raise UmaskError(f"Photo '{label}' cannot be read ({err.strerror or err}); give the path of {PHOTO_KINDS}.") from None
    try:
        with stream, Image.open(stream) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
                # A 16-bit grey photo: Pillow's convert("RGB") clips its 0..65535
                # to 0..255 (all white); scale it to 8 bits as a viewer shows it.
                img = Image.fromarray((np.asarray(img, dtype=np.float64) / 257.0).round().clip(0, 255).astype(np.uint8))
            if "A" in img.getbands() or "transparency" in img.info:
                img = Image.alpha_composite(Image.new("RGBA", img.size, "white"), img.convert("RGBA"))
            img = img.convert("RGB")
    except Image.DecompressionBombError:
        raise UmaskError(f"Photo '{label}' has more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels, too many "
                         f"to read; give a smaller {PHOTO_KINDS.removeprefix('a ')}.") from None
    except IMAGE_READ_ERRORS:
        raise UmaskError(f"Photo '{label}' is not a readable image; give {PHOTO_KINDS}.") from None
    if size is not None:
        # Resize the shorter side, then crop the centre square: ImageNet's
        # "resize + center crop" without the 256/224 margin, so the whole
        # short side of the photo stays in view.
        img = ImageOps.fit(img, (size, size), method=Image.Resampling.BICUBIC, centering=(0.5, 0.5))
    return uint8_to_image(np.array(img))


def photo_size(source: str | Path | bytes) -> tuple[int, int]:
    """``(width, height)`` of a photo (a path, or the file's bytes) as
    :func:`load_photo` sees it (the same EXIF rotation applied). Call it on
    a photo that load_photo has read: a broken file raises Pillow's own
    errors here."""
    with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
        return ImageOps.exif_transpose(img).size


def describe_crop(width: int, height: int, side: int) -> str:
    """What :func:`load_photo` did to a ``width`` x ``height`` photo for a
    ``side`` x ``side`` input, in words ("" when nothing)."""
    if (width, height) == (side, side):
        return ""
    how = "enlarged" if min(width, height) < side else "resized"
    return f"{width}x{height}: shorter side {how} to {side}, centre {side}x{side} cropped"


def save_png(image: torch.Tensor, path: str | Path) -> Path:
    """Write ``(3, H, W)`` in [0, 1] to ``path`` as an 8-bit RGB PNG, atomically.

    The PNG goes to a temporary file in the same folder, then ``os.replace``
    puts it in place: a crash or a full disk never leaves a half-written file
    where an old one was.

    Missing folders are made, as for every file umask writes.

    Raises:
        UmaskError: ``path`` is a folder, or cannot be written.
    """
    path = Path(path)
    check_writable(path)
    with atomic_file(path, "wb") as fh:
        fh.write(png_bytes(image))
    return path
