"""Settings read from environment variables (UMASK_POLL_S, UMASK_WORKERS, ...):
unset or blank means the default, and a value that is not allowed is one
sentence naming the variable and what it must be."""

from __future__ import annotations

import math
import os
from typing import Callable, TypeVar

from .errors import UmaskError

T = TypeVar("T")


def _from_env(name: str, default: T, parse: Callable[[str], T | None], wanted: str) -> T:
    """The environment variable ``name`` read by ``parse`` (None: not allowed), or ``default`` when unset or blank.

    Raises:
        UmaskError: the variable is set to a value ``parse`` refuses; the
            sentence says it must be ``wanted``.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    value = parse(text)
    if value is None:
        raise UmaskError(f"{name} is '{text}'; it must be {wanted}.")
    return value


def _positive_seconds(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def env_seconds(name: str, default: float) -> float:
    """A positive, finite number of seconds from the environment variable ``name``, else ``default``.

    Raises:
        UmaskError: the variable is set to anything else.
    """
    return _from_env(name, default, _positive_seconds, f"a number of seconds above 0, such as {default:g}")


def env_count(name: str, default: int) -> int:
    """A whole number >= 1 from the environment variable ``name``, else ``default``.

    Raises:
        UmaskError: the variable is set to anything else.
    """
    return _from_env(name, default, lambda text: int(text) if text.isdecimal() and int(text) >= 1 else None,
                     "a whole number, 1 or more")


def env_switch(name: str, default: bool) -> bool:
    """``1`` (on) or ``0`` (off) from the environment variable ``name``, else ``default``.

    Raises:
        UmaskError: the variable is set to anything else.
    """
    return _from_env(name, default, {"1": True, "0": False}.get, "1 (on) or 0 (off)")
