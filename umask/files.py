"""Writing a file so that readers see the old version or the new one, never half of one."""

from __future__ import annotations

import errno
import hashlib
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterable, Iterator

from PIL import Image, UnidentifiedImageError

from .errors import UmaskError

# What reading a broken, foreign or absurd image can raise: Pillow refuses
# images above ~179 megapixels with a DecompressionBombError, and a file that
# large is a mistake here, so it gets the same one-sentence error as the rest.
IMAGE_READ_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)
# What json.loads can raise on a damaged or hand-edited file: JSONDecodeError
# and UnicodeDecodeError are ValueErrors, as is an integer of over 4300
# digits; nesting thousands of levels deep exhausts the recursion limit.
JSON_READ_ERRORS = (ValueError, RecursionError)


def output_path(text: str) -> str:
    """A path to write, as the OS will read it once its folders are made
    (the ``type`` of every output option of the CLI).

    ``runs/new/../first`` is ``runs/first`` once ``runs/new`` exists, but
    while ``new`` is missing, nothing seems to be there: a result or file
    already at ``runs/first`` would be replaced without ``--overwrite``. A
    path with ``..`` has its folder part resolved (links and all); its last
    name stays as typed, so a link there is the link (not its target) and
    a trailing "/" stays. Any other path stays as typed, as messages echo it.
    """
    if ".." not in Path(text).parts:
        return text
    head, tail = os.path.split(text)
    if tail == "..":  # the last name is a folder to climb out of, not a name to write
        return os.path.realpath(text)
    return os.path.join(os.path.realpath(head or "."), tail)


def _process_umask() -> int:
    """The process umask, read without setting it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


# mkstemp and mkdtemp create files and folders for the owner only; results
# get the modes a plain open() or mkdir() would give.
FILE_MODE = 0o666 & ~_process_umask()
DIR_MODE = 0o777 & ~_process_umask()


def check_writable(path: str | Path, *, folder: bool = False, reads: tuple[str | Path, ...] = ()) -> None:
    """Raise unless ``path`` (a file, or with ``folder`` a folder) can be written.

    Called before long work, so that a run does not end in a save that fails.
    Missing parent folders are fine (they are made); the nearest one that
    exists gets a real probe file, because permission bits say nothing about
    /proc, a read-only mount or root. ``reads`` are the command's inputs (files
    or folders): writing over one, or into one, is refused.

    Raises:
        UmaskError: ``path`` is a folder where a file is wanted (or the other
            way round), one of ``reads`` or inside one, or nothing can be
            written where it would go.
    """
    if not str(path).strip():  # Path("") is the current folder
        raise UmaskError(f"An empty path was given; give the path of {'a folder' if folder else 'a file'}.")
    if not folder and str(path).endswith(("/", os.sep)):  # Path() would drop the slash and write a file of that name
        raise UmaskError(f"'{path}' ends in '/', so it names a folder; give the path of a file.")
    path = Path(path)
    try:
        exists = path.exists()
        target = path.resolve()
    except OSError as err:  # a name longer than the file system takes, a loop of links
        raise UmaskError(f"Cannot write '{path}': {err.strerror or err}; give another path.") from None
    except RuntimeError:  # pathlib's own word for a loop of symbolic links
        raise UmaskError(f"Cannot write '{path}': its symbolic links point at each other in a loop; give another path.") from None
    if path.is_symlink() and not exists:  # found only at the save, after the whole run
        raise UmaskError(f"'{path}' is a symbolic link to '{os.readlink(path)}', which does not exist; give another path.")
    if exists and path.is_dir() != folder:
        raise UmaskError(f"'{path}' is {'a file' if folder else 'a folder'}; give {'a folder' if folder else 'a file'} path.")
    for source in reads:
        src = Path(source).resolve()
        if target == src or src in target.parents:
            if target == src:
                raise UmaskError(f"'{path}' is what this command reads; write to another path.")
            raise UmaskError(f"'{path}' lies inside '{source}', which this command reads; write to another path.")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UmaskError(f"Cannot write '{path}': '{parent}' is a file, not a folder.")
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".umask-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise UmaskError(f"Cannot write '{path}': nothing can be written in '{parent}' ({err.strerror or err}).") from None


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits (read a megabyte at a time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def safe_name(text: str) -> str:
    """``text`` as one file name: runs of characters other than letters,
    digits, ``_``, ``.`` and ``-`` become ``_``.

    A text that had to be cleaned (a model spec ``resnet50=ck/a.pth``) gets a
    short hash of itself, so two texts never share a name (``ck/a_b.pth`` and
    ``ck/a/b.pth`` clean to the same one).
    """
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
    if name != text:
        name += "-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    return name


def is_hidden(parts: Iterable[str]) -> bool:
    """Whether any of a path's ``parts`` is hidden (starts with "."): the
    staging and retired copies of atomic writes, ``.git`` and the like, which
    listings of results and sweeps never count."""
    return any(part.startswith(".") for part in parts)


#: Write errors of the disk rather than of the caller (full, over quota, too
#: large, failing): the file's own sentence, not a traceback.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def sync_folder(folder: str | Path) -> None:
    """fsync ``folder`` itself, so a rename inside it survives a power cut, not
    only the renamed file's bytes. Skipped where a filesystem cannot."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_file(path: str | Path, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open a temporary sibling of ``path``; on a clean exit, fsync it and move it into place.

    Missing parent folders are made.

    On an exception the temporary file is removed and ``path`` is untouched.
    ``mode`` is "w" or "wb"; ``open_kwargs`` go to :func:`os.fdopen` (e.g. ``newline=""``).
    Text is UTF-8 unless ``encoding`` says otherwise: umask's reports carry
    non-ASCII (plotly.js, class names, "ε"), and a latin-1 locale must not
    turn that into an encoding error halfway through a write.

    Raises:
        UmaskError: the file cannot be created or moved into place (a missing
            or read-only folder, a folder of that name, a full disk).
    """
    path = Path(path)
    if "b" not in mode:
        open_kwargs.setdefault("encoding", "utf-8")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise UmaskError(f"Cannot write '{path}': {err.strerror or err}.") from None
    try:
        try:
            with os.fdopen(fd, mode, **open_kwargs) as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:
            if err.errno not in DISK_ERRNOS:
                raise
            raise UmaskError(f"Cannot write '{path}': {err.strerror or err}; nothing there was changed.") from None
        os.chmod(tmp, FILE_MODE)
        try:
            os.replace(tmp, path)
        except OSError as err:
            raise UmaskError(f"Cannot write '{path}': {err.strerror or err}.") from None
        sync_folder(folder)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
