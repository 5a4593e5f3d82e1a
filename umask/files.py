"""Writing a file so that readers see the old version or the new one, never half of one."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator


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


# mkstemp creates files readable by the owner only; results get the mode a
# plain open() would give.
FILE_MODE = 0o666 & ~_process_umask()


@contextmanager
def atomic_file(path: str | Path, mode: str = "w", **open_kwargs) -> Iterator[IO]:
    """Open a temporary sibling of ``path``; on a clean exit, fsync it and move it into place.

    On an exception the temporary file is removed and ``path`` is untouched.
    ``mode`` is "w" or "wb"; ``open_kwargs`` go to :func:`os.fdopen` (e.g. ``newline=""``).
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **open_kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
