"""Results on disk: a folder with ``universal.png``, ``parts.png``, ``result.json``.

* ``universal.png``: the universal image, 8-bit RGB, exactly H x W.
* ``parts.png``: the part label map, grey, value k+1 where part k lies, 0
  elsewhere (16-bit when K > 255).
* ``result.json``: model, K, masks, targets, predictions measured on the saved
  PNG, timings, the config and the model's preprocessing.

Writes are atomic: everything is written into a hidden sibling folder and
renamed into place, so a crash leaves either the old result or the new one,
never half of one. Replacing a result swaps the two folders in one step
(Linux's ``renameat2`` exchange); where the system has no such call, the old
folder is renamed aside first, and a crash between the two renames leaves it
as ``.NAME.old-*`` beside the missing folder.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
import tempfile
import uuid
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import UmaskError
from .files import DIR_MODE, IMAGE_READ_ERRORS, JSON_READ_ERRORS, check_writable, is_hidden, safe_name, sync_folder
from .images import image_to_uint8, png_bytes, uint8_to_image
from .models.registry import checkpoint_path
from .models.wrapper import MAX_SIDE, MIN_RESIZE, MIN_SIDE
from .masks import FAMILIES, MODES, load_layout, make_masks, num_parts, parse_fill, save_layout_png
from .targets import NUM_CLASSES, imagenet_classes
from .text import percent

log = logging.getLogger(__name__)

IMAGE_FILE = "universal.png"
PARTS_FILE = "parts.png"
JSON_FILE = "result.json"
#: Where a sweep keeps its run folders (umask.sweep), named here because a
#: sweep folder given where one result is wanted is told apart by it.
SWEEP_RUNS_DIR = "runs"
#: What a refused upload is told to give instead.
ZIP_HINT = "use a zip of a result folder (the Download button's, or a folder zipped as it is)."
FILES = (IMAGE_FILE, PARTS_FILE, JSON_FILE)


@dataclass(frozen=True)
class Result:
    """One universal image and what it achieved.

    Attributes:
        image: ``(3, H, W)`` float on the CPU, on the 8-bit grid (k / 255).
        labels: ``(H, W)`` int64 part map, -1 where no part lies.
        predictions, target_probs, success_rate: measured on ``image``.
        final_loss: the training loss at the step whose image was kept (the
            best one, which after a stop or a used-up budget need not be the last).
        config: the :class:`umask.config.Config` as a dict.
        preprocessing: ``{"mean", "std", "resize_to"}`` of the model wrapper.
        weights_sha256: the SHA-256 of the model's checkpoint file (``ARCH=PATH``
            models only), to notice when that file has changed since.
    """

    image: torch.Tensor
    labels: torch.Tensor
    model: str
    mask_family: str
    mask_mode: str
    fill: float | str
    targets: tuple[int, ...]
    target_names: tuple[str, ...]
    predictions: tuple[int, ...]
    target_probs: tuple[float, ...]
    success_rate: float
    steps: int
    seconds: float
    final_loss: float
    config: dict
    preprocessing: dict
    weights_sha256: str | None = None

    @property
    def k(self) -> int:
        return len(self.targets)

    @property
    def size(self) -> int:
        return int(self.image.shape[-1])

    @property
    def fingerprint(self) -> str:
        """SHA-1 hex digest of what makes this result itself: its saved pixels,
        parts, targets, mode, fill and model (not its timings). The dashboard
        keys widgets and caches by it; a zip's name carries a piece of it."""
        digest = hashlib.sha1(image_to_uint8(self.image).tobytes())
        digest.update(self.labels.numpy().tobytes())
        digest.update(repr((self.targets, self.mask_mode, self.fill, self.model)).encode())
        return digest.hexdigest()

    @property
    def hit_count(self) -> int:
        """How many masks give their target (on the saved image)."""
        return sum(p == t for p, t in zip(self.predictions, self.targets))

    @property
    def resize_to(self) -> int | None:
        """The side the image was fed to its model at (None: as it is), for re-evaluation."""
        return self.preprocessing.get("resize_to")

    @property
    def masks(self) -> torch.Tensor:
        """``(K, 1, H, W)`` keep-multipliers of this result's parts and mode."""
        return make_masks(self.labels, self.mask_mode)

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "k": self.k,
            "mask_family": self.mask_family,
            "mask_mode": self.mask_mode,
            "fill": self.fill,
            "size": self.size,
            "targets": list(self.targets),
            "target_names": list(self.target_names),
            "predictions": list(self.predictions),
            "target_probs": [round(p, 6) for p in self.target_probs],
            "success_rate": self.success_rate,
            "steps": self.steps,
            "seconds": self.seconds,
            "final_loss": None if math.isnan(self.final_loss) else round(self.final_loss, 6),
            "config": self.config,
            "preprocessing": self.preprocessing,
        } | ({"weights_sha256": self.weights_sha256} if self.weights_sha256 else {})


def _write_folder(result: Result, folder: Path) -> None:
    (folder / IMAGE_FILE).write_bytes(png_bytes(result.image))
    save_layout_png(result.labels, folder / PARTS_FILE)
    with open(folder / JSON_FILE, "w") as fh:
        json.dump(result.to_json(), fh, indent=2)
    # On disk before the folder is renamed into place: a crash then leaves the
    # old result or the whole new one.
    for name in FILES:
        with open(folder / name, "rb") as fh:
            os.fsync(fh.fileno())


def check_outside_results(path: str | Path, instead: str) -> None:
    """Raise unless ``path`` lies outside every saved result folder (at any depth).

    A stranger in a result folder makes that result one that a later
    ``--overwrite`` refuses to replace (it holds files umask did not write).
    ``instead`` ends the sentence: what to give ("write to another path").
    """
    # Where the OS puts it: ".." and links in the folders above resolved (not
    # lexically: rr/../new is beside rr, not in it); the last name is what is written.
    where = Path(path).absolute().parent.resolve()
    for parent in (where, *where.parents):
        if (parent / JSON_FILE).is_file() and (parent / IMAGE_FILE).is_file():
            raise UmaskError(f"'{path}' lies in the result folder '{parent}', which holds only its own files; {instead}.")


def check_result_folder(folder: str | Path) -> None:
    """Raise unless ``folder`` is absent, empty, or an earlier result (which a save replaces).

    Called by :func:`save_result`, and before long runs so they fail at once.

    Raises:
        UmaskError: ``folder`` is a file, holds files umask did not write, or
            cannot be written (see :func:`umask.files.check_writable`).
    """
    folder = Path(folder)
    check_writable(folder, folder=True)  # first: it turns a name too long or a loop of links into one sentence
    here = Path.cwd().resolve()
    if folder.resolve() == here or folder.resolve() in here.parents:
        raise UmaskError(f"'{folder}' is the current folder or holds it; a result folder is replaced whole, "
                         "so give a new folder (e.g. runs/first).")
    check_outside_results(folder, "give a folder outside it")
    if not folder.exists():
        return
    try:
        # A folder under a result file's name is the user's too (a save would delete what it holds).
        foreign = [p.name if p.name not in FILES else p.name + "/" for p in folder.iterdir()
                   if p.name not in FILES or not p.is_file() or p.is_symlink()]
    except OSError as err:
        raise UmaskError(f"Cannot read output folder '{folder}': {err.strerror or err}.") from None
    if foreign:
        raise UmaskError(
            f"Output folder '{folder}' already holds other files ({', '.join(sorted(foreign)[:3])}); choose a new or empty folder."
        )


def check_output_file(path: str | Path, *, reads: tuple[str | Path, ...] = (), overwrite: bool = False) -> None:
    """:func:`~umask.files.check_writable` for a command's output file, which
    must not be one of a saved result's own files either: ``--out
    runs/a/universal.png`` would quietly replace that result's image.

    A file already at ``path`` is replaced only with ``overwrite`` (the
    command's ``--overwrite``): an earlier adversarial image or report is a
    result too, and a typo in a path must not cost it.

    Raises:
        UmaskError: see check_writable; ``path`` is a file of a result
            folder or lies in one (generate --overwrite would then refuse
            to replace that result); it is a device or a pipe; or it exists
            and ``overwrite`` is false.
    """
    check_writable(path, reads=reads)  # as typed: a trailing '/' is refused there
    path = Path(path)
    if path.name in FILES and (path.parent / JSON_FILE).is_file():
        raise UmaskError(f"'{path}' is a file of the result in '{path.parent}'; write to another path.")
    check_outside_results(path, "write to another path")
    # The file is written beside the path and renamed over it: that would
    # replace a link, not write through it, and lose a device.
    if path.is_symlink():
        raise UmaskError(f"'{path}' is a link (to '{os.readlink(path)}'); give the path of a file itself.")
    if path.exists() and not path.is_file():
        raise UmaskError(f"'{path}' is not a plain file (a device, a pipe or a socket); give a file's path.")
    if not overwrite and path.exists():
        raise UmaskError(f"'{path}' already exists; give another path, or add --overwrite to replace it.")


def _exchange(new: Path, old: Path) -> bool:
    """Swap two folders in one step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where the system or the filesystem cannot; raises OSError
    for any other failure.
    """
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # not Linux, or a C library without it
        return False
    at_cwd, rename_exchange = -100, 2
    if renameat2(at_cwd, os.fsencode(new), at_cwd, os.fsencode(old), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(old))


def _staging_prefixes(folder: Path) -> tuple[str, str]:
    """Names :func:`save_result` gives, beside ``folder``, to the new copy it
    writes and to the old copy it moves aside (both hidden)."""
    return f".{folder.name}.tmp-", f".{folder.name}.old-"


def remove_save_leftovers(folder: str | Path) -> None:
    """Remove what a save killed mid-way (kill -9, power loss) left beside ``folder``.

    Only for a caller that alone writes there (the sweep, under its lock):
    another process's save in progress would lose its staging copy.
    """
    folder = Path(folder)
    if not folder.parent.is_dir():
        return
    prefixes = _staging_prefixes(folder)
    for path in folder.parent.iterdir():
        if path.name.startswith(prefixes) and (path.is_dir() or path.is_symlink()):  # a link: it alone goes
            _remove_moved_aside(path)


def _remove_moved_aside(path: Path) -> None:
    """Remove a staging copy or the old result moved aside by a save. Where
    ``folder`` was a link to a result, the link itself lands here: it goes
    (its target, the old result, stays), it is not followed."""
    if path.is_symlink():
        path.unlink(missing_ok=True)
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def save_result(result: Result, folder: str | Path) -> Path:
    """Write ``result`` to ``folder`` atomically; replaces an older result there
    (``folder`` a link to a result: the link is replaced, its target kept).

    Raises:
        UmaskError: ``folder`` exists and holds something other than a result
            (umask never deletes files it did not write).
    """
    folder = Path(folder)
    check_result_folder(folder)
    staging = None
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        new_prefix, old_prefix = _staging_prefixes(folder)
        staging = Path(tempfile.mkdtemp(prefix=new_prefix, dir=folder.parent))
        os.chmod(staging, DIR_MODE)  # mkdtemp's folders are the owner's only
        _write_folder(result, staging)
        sync_folder(staging)  # its entries on disk before it is renamed into place
        if not folder.exists():
            staging.rename(folder)
        elif not _exchange(staging, folder):  # (after an exchange, staging holds the old result: removed below)
            retired = folder.parent / f"{old_prefix}{uuid.uuid4().hex[:8]}"
            folder.rename(retired)
            try:
                staging.rename(folder)
            except OSError:
                retired.rename(folder)  # put the old result back
                raise
            _remove_moved_aside(retired)
        sync_folder(folder.parent)  # the rename itself on disk, not only the files
    except OSError as err:
        raise UmaskError(f"Cannot write the result to '{folder}': {err.strerror or err}.") from None
    finally:
        if staging is not None:
            _remove_moved_aside(staging)
    log.info("saved %s: %s K=%d, %s on target", folder, result.model, result.k, percent(result.success_rate, 0))
    return folder


def _good_model(spec) -> bool:
    """A model spec the dashboard and ``evaluate`` can name and load: a
    non-empty string, and for ``ARCH=PATH`` both halves (``"resnet18="``
    would only fail later, on the page that offers to reload it)."""
    if not isinstance(spec, str) or not spec.strip():
        return False
    if "=" in spec:
        try:
            checkpoint_path(spec)
        except UmaskError:
            return False
    return True


def _good_preprocessing(pre) -> bool:
    """``{"mean": 3 numbers, "std": 3 positive numbers, "resize_to": None or a side in [8, MAX_SIDE]}``."""
    if not isinstance(pre, dict):
        return False
    stats = [pre.get("mean"), pre.get("std")]
    if not all(isinstance(v, list) and len(v) == 3 and all(isinstance(x, (int, float)) for x in v) for v in stats):
        return False
    resize = pre.get("resize_to")
    return min(stats[1]) > 0 and (resize is None or (type(resize) is int and MIN_RESIZE <= resize <= MAX_SIDE))


def _whole(value) -> int:
    """A JSON integer as an int; anything else (3.7, "3", true, 1e999) raises ValueError."""
    if type(value) is not int:
        raise ValueError(value)
    return value


def _whole_list(values) -> tuple[int, ...]:
    if not isinstance(values, list):
        raise ValueError(values)
    return tuple(_whole(v) for v in values)


def _read_meta(path: Path) -> dict:
    """A result.json as a dict holding every key a result needs."""
    try:
        meta = json.loads(path.read_bytes())  # bytes: UTF-8 whatever the locale
    except JSON_READ_ERRORS:
        raise UmaskError(f"{path} is not valid JSON; the result is corrupt.") from None
    except OSError as err:
        raise UmaskError(f"{path} cannot be read ({err.strerror or err}).") from None
    if not isinstance(meta, dict):
        raise UmaskError(f"{path} is not a JSON object; it was not written by umask.")
    required = ("model", "k", "mask_family", "mask_mode", "fill", "size", "targets", "predictions", "preprocessing")
    missing = [key for key in required if key not in meta]
    if missing:
        raise UmaskError(f"{path} lacks {', '.join(missing)}; it was not written by umask.")
    return meta


def _read_image(path: Path, size: int) -> torch.Tensor:
    """A result's universal.png as ``(3, size, size)`` floats, refused unless an 8-bit RGB PNG of that size."""
    try:
        with Image.open(path) as img:
            # The header first: a huge image is refused before it is decoded
            # (an uploaded zip must not fill the server's memory).
            if img.size != (size, size):
                raise UmaskError(f"{path} is {img.width}x{img.height} but result.json says {size}x{size}.")
            img.load()
            if img.format != "PNG":  # a JPEG renamed .png has lost the exact pixels the predictions were made on
                raise UmaskError(f"{path} is a {img.format} file, not a PNG; the result is corrupt.")
            if img.mode != "RGB":
                kind = {"L": "grey", "LA": "grey with transparency", "P": "a palette image", "RGBA": "RGB with transparency",
                        "1": "black and white"}.get(img.mode, f"of pixel mode {img.mode}")
                raise UmaskError(f"{path} is {kind}, not 8-bit RGB as a result's image is saved.")
            image = uint8_to_image(np.array(img))
    except Image.DecompressionBombError:  # its header declares hundreds of megapixels
        raise UmaskError(f"{path} is far larger than a result's image ({MAX_SIDE} x {MAX_SIDE} at most); "
                         "the result is corrupt.") from None
    except IMAGE_READ_ERRORS:
        raise UmaskError(f"{path} is not a readable PNG; the result is corrupt.") from None
    return image


def load_result(folder: str | Path) -> Result:
    """Read a result folder written by :func:`save_result` (or by hand, to
    spec), or a zip of one (:func:`result_to_zip`, the dashboard's download).

    Raises:
        UmaskError: missing folder or file, unreadable image, bad JSON, or
            files that disagree with each other.
    """
    if not str(folder).strip():  # Path("") is the current folder, which is not what was meant
        raise UmaskError(f"An empty path was given; give a result folder (one holding {', '.join(FILES)}).")
    folder = Path(folder)
    if folder.is_file():
        if zipfile.is_zipfile(folder) or folder.suffix.lower() == ".zip":  # a damaged .zip: said so by result_from_zip
            return result_from_zip(folder)  # read member by member: a file of gigabytes is refused unread
        raise UmaskError(f"'{folder}' is a file; a result is a folder holding {', '.join(FILES)} (or a zip of one).")
    if not folder.is_dir():
        raise UmaskError(f"Result folder '{folder}' does not exist.")
    if not any((folder / name).exists() for name in FILES):
        raise UmaskError(_no_result_here(folder))
    for name in FILES:
        if not (folder / name).is_file():
            what = f"its {name} is a folder" if (folder / name).is_dir() else f"it has no {name}"
            raise UmaskError(f"Result folder '{folder}' is incomplete: {what}; a result holds the files {', '.join(FILES)}.")
    meta = _read_meta(folder / JSON_FILE)
    try:
        size = _whole(meta["size"])
    except (TypeError, ValueError):
        raise UmaskError(f"{folder / JSON_FILE} has a malformed size; the result is corrupt.") from None
    if not MIN_SIDE <= size <= MAX_SIDE:
        raise UmaskError(f"{folder / JSON_FILE} says the image is {size} pixels wide; umask's images are {MIN_SIDE} to {MAX_SIDE}.")
    image = _read_image(folder / IMAGE_FILE, size)
    try:
        k = _whole(meta["k"])
        targets = _whole_list(meta["targets"])
        predictions = _whole_list(meta["predictions"])
        fill = parse_fill(meta["fill"])
    except (TypeError, ValueError, OverflowError, UmaskError):
        raise UmaskError(f"{folder / JSON_FILE} has a malformed k, targets, predictions or fill; the result is corrupt.") from None
    if not _good_model(meta["model"]) or not _good_preprocessing(meta["preprocessing"]):
        raise UmaskError(f"{folder / JSON_FILE} has a malformed model or preprocessing; the result is corrupt.")
    if meta["mask_family"] not in FAMILIES:
        raise UmaskError(f"{folder / JSON_FILE} has mask_family '{meta['mask_family']}'; it must be one of "
                         f"{', '.join(FAMILIES)}, so the result is corrupt.")
    if meta["mask_mode"] not in MODES:
        raise UmaskError(f"{folder / JSON_FILE} has mask_mode '{meta['mask_mode']}'; it must be 'hide' or 'keep'.")
    if not all(0 <= t < NUM_CLASSES for t in targets + predictions):
        raise UmaskError(f"{folder / JSON_FILE} names classes outside 0-{NUM_CLASSES - 1}; the result is corrupt.")
    if len(set(targets)) != len(targets):  # the engine's K targets are distinct classes (so K <= 1000)
        raise UmaskError(f"{folder / JSON_FILE} names a target class more than once; a result's targets are distinct, so it is corrupt.")
    labels = load_layout(folder / PARTS_FILE, size)
    counts = {f"parts in {PARTS_FILE}": num_parts(labels), "targets": len(targets), "predictions": len(predictions)}
    wrong = [f"{n} {what}" for what, n in counts.items() if n != k]
    if wrong:
        raise UmaskError(f"{folder} is inconsistent: K = {k} in result.json but {' and '.join(wrong)}.")
    target_names = [imagenet_classes()[t] for t in targets]
    names = meta.get("target_names") or target_names
    if isinstance(names, list) and len(names) == k and names != target_names:
        raise UmaskError(f"{folder / JSON_FILE} has target_names that are not the names of its targets; the result is corrupt.")
    probs = meta.get("target_probs") or ()
    try:
        names = tuple(str(n) for n in names)
        probs = tuple(float(p) for p in probs)
        success_rate = float(meta.get("success_rate", 0.0))
        steps = _whole(meta.get("steps", 0))
        seconds = float(meta.get("seconds", 0.0))
        final_loss = float(meta["final_loss"]) if meta.get("final_loss") is not None else math.nan
    except (TypeError, ValueError, OverflowError):
        raise UmaskError(f"{folder / JSON_FILE} has malformed target names, probabilities or timings; the result is corrupt.") from None
    sha = meta.get("weights_sha256")
    if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
        raise UmaskError(f"{folder / JSON_FILE} has a malformed weights_sha256 (64 hex digits); the result is corrupt.")
    if len(names) != k or len(probs) not in (0, k):
        raise UmaskError(f"{folder / JSON_FILE} is inconsistent: K = {k} but {len(names)} target names and {len(probs)} probabilities.")
    hits = sum(p == t for p, t in zip(predictions, targets))
    if "success_rate" not in meta:  # a result written by hand to spec: its rate is its predictions'
        success_rate = hits / k
    elif not abs(success_rate - hits / k) < 1e-6:  # (not <: NaN is no rate either)
        raise UmaskError(f"{folder / JSON_FILE} is inconsistent: success_rate {success_rate:g} but its predictions hit "
                         f"{hits} of its {k} targets; the result is corrupt.")
    return Result(
        image=image,
        labels=labels,
        model=meta["model"],
        mask_family=meta["mask_family"],
        mask_mode=meta["mask_mode"],
        fill=fill,
        targets=targets,
        target_names=names,
        predictions=predictions,
        target_probs=probs,
        success_rate=success_rate,
        steps=steps,
        seconds=seconds,
        final_loss=final_loss,
        config=meta.get("config") if isinstance(meta.get("config"), dict) else {},
        weights_sha256=sha,
        preprocessing=meta["preprocessing"],
    )


def zip_name(result: Result) -> str:
    """The file name a result's zip is offered under,
    ``umask-<model>-<family>-<mode>-K<k>-<image>.zip``: ``<image>`` is the
    first 6 hex digits of :attr:`Result.fingerprint`, so two results of one
    model, layout and K (other targets, other seeds) get two names and a
    download does not land as "(1)" beside the other; a checkpoint spec's
    path is made one safe name (:func:`umask.files.safe_name`)."""
    return f"umask-{safe_name(result.model)}-{result.mask_family}-{result.mask_mode}-K{result.k}-{result.fingerprint[:6]}.zip"


def result_to_zip(result: Result) -> bytes:
    """The result folder's three files as the bytes of a zip archive."""
    with tempfile.TemporaryDirectory() as tmp:
        _write_folder(result, Path(tmp))
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in FILES:
                archive.write(Path(tmp) / name, name)
    return buffer.getvalue()


def _no_result_here(folder: Path) -> str:
    """Why a folder with none of a result's files is not one, and which to give instead."""
    runs = folder / SWEEP_RUNS_DIR
    if runs.is_dir():
        example = next((p.parent for p in sorted(runs.rglob(JSON_FILE))), None)
        return (f"'{folder}' is a sweep folder, not one result; give one of the run folders under {runs}"
                + (f", e.g. {example}." if example is not None else "."))
    return (f"'{folder}' holds no result (none of {', '.join(FILES)}); give a result folder, "
            "as python -m umask generate --out writes it.")


def result_from_zip(data: bytes | Path) -> Result:
    """Read a zip made by :func:`result_to_zip` (files at its root or in one
    folder): its bytes (an upload), or the path of a zip file.

    Raises:
        UmaskError: not a zip, or a zip without a valid result inside.
    """
    try:
        archive = zipfile.ZipFile(data if isinstance(data, Path) else io.BytesIO(data))
    except zipfile.BadZipFile:
        what = f"'{data}' is not a readable zip archive (not a zip, or one cut short)" if isinstance(data, Path) \
            else "The upload is not a zip archive"
        raise UmaskError(f"{what}; {ZIP_HINT}") from None
    # Named where it has a name: the upload is the one file the page is about.
    zip_name = f"'{data}'" if isinstance(data, Path) else "the zip"
    with archive:
        # The result files by the folder that holds them: one result, or say so.
        folders: dict[str, list[zipfile.ZipInfo]] = {}
        for info in archive.infolist():
            path = Path(info.filename)
            if path.name in FILES and not info.is_dir() and not is_hidden(path.parts[:-1]):
                folders.setdefault(str(path.parent), []).append(info)
        if len(folders) > 1:
            shown = ", ".join(f"'{f}'" if f != "." else "the top level" for f in sorted(folders)[:3])
            raise UmaskError(
                f"{_capital(zip_name)} holds {len(folders)} results ({shown}{', ...' if len(folders) > 3 else ''}); "
                f"use a zip of one result folder."
            )
        return _load_zipped(archive, next(iter(folders.values()), []), zip_name)


def _capital(text: str) -> str:
    """A sentence that starts with "the zip" starts with a capital; one that
    starts with a file's name ("r.zip's ...") keeps the name as it is."""
    return "The" + text[3:] if text.startswith("the ") else text


def _whose(zip_name: str) -> str:
    """The possessive of :func:`_load_zipped`'s ``zip_name``: "the zip's", "r.zip's"."""
    return "the zip's" if zip_name == "the zip" else f"{zip_name.strip(chr(39)).rsplit('/', 1)[-1]}'s"


# The largest file a result zip may unpack to. A result at the largest side
# (MAX_SIDE = 1024) is a few MB; a zip that inflates a small upload to
# gigabytes would exhaust a shared classroom server's memory. zipfile never
# yields more than a member's declared size, so checking that is enough.
MAX_ZIP_MEMBER_BYTES = 64 * 2**20


def _load_zipped(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], zip_name: str) -> Result:
    """The result in ``members`` of ``archive``; ``zip_name`` ("'runs/r.zip'", or
    "the zip" for an upload) is how messages call it."""
    missing = [name for name in FILES if name not in {Path(info.filename).name for info in members}]
    if missing:  # said of the zip, not of the temporary folder it is unpacked into
        raise UmaskError(f"{_capital(zip_name)} has no {' or '.join(missing)}; a result zip holds {', '.join(FILES)} "
                         "(the zip that umask's Download button gives, or a zipped result folder).")
    for info in members:
        if info.file_size > MAX_ZIP_MEMBER_BYTES:
            raise UmaskError(
                f"{_capital(_whose(zip_name))} {Path(info.filename).name} unpacks to {info.file_size / 2**20:.0f} MB, more than a result "
                f"holds (at most {MAX_ZIP_MEMBER_BYTES // 2**20} MB a file); {ZIP_HINT}"
            )
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for info in members:
                (Path(tmp) / Path(info.filename).name).write_bytes(archive.read(info))
        except (zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, OSError, EOFError):
            raise UmaskError(f"{_capital(zip_name)} is damaged or encrypted; {ZIP_HINT}") from None
        try:
            return load_result(tmp)
        except UmaskError as err:
            # Said of the zip: the temporary folder means nothing to whoever uploaded it.
            # A quoted file of it reads "parts.png in 'r.zip'" (not "'r.zip's parts.png'").
            text = re.sub(rf"'{re.escape(tmp)}/([^']+)'", lambda m: f"{m.group(1)} in {zip_name}", str(err))
            text = text.replace(f"'{tmp}'", zip_name).replace(f"{tmp}/", f"{_whose(zip_name)} ").replace(tmp, zip_name)
            raise UmaskError(_capital(text)) from None
