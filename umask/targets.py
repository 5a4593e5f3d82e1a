"""ImageNet-1K class names and the choice of the K target classes.

Class indices are the standard ImageNet-1K order used by torchvision (0 =
"tench", 1 = "goldfish", ...). Names are torchvision's short category names,
kept in ``data/imagenet_classes.txt``.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

from .errors import UmaskError
from .text import count

NUM_CLASSES = 1000


CLASSES_FILE = Path(__file__).parent / "data" / "imagenet_classes.txt"


@lru_cache(maxsize=1)
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ImageNet-1K class names, index i = class i."""
    # torchvision's weights metadata holds the same list (a test checks they
    # agree), but reading it there means importing all of torchvision first
    # (3 s here, mostly torch._dynamo), which `umask classes` and a worker
    # running the bundled model never need.
    try:
        names = tuple(CLASSES_FILE.read_text(encoding="utf-8").splitlines())
    except (OSError, UnicodeDecodeError):
        names = ()
    if len(names) != NUM_CLASSES:
        raise UmaskError(f"The ImageNet class names in '{CLASSES_FILE}' are missing or damaged; restore that file "
                         "from the umask repository.")
    return names


def _spaced(text: str) -> str:
    """``text`` with its runs of white space as one space, none at the ends:
    "tiger  cat" typed with two spaces is the tiger cat."""
    return " ".join(text.split())


def search_classes(query: str = "") -> list[tuple[int, str]]:
    """Classes whose name contains ``query`` (case-insensitive); all when
    empty; the one class of that index when ``query`` is one (:func:`parse_index`)."""
    q = _spaced(query).lower()
    names = imagenet_classes()
    index = parse_index(q)
    if index is not None:
        return [(index, names[index])] if 0 <= index < NUM_CLASSES else []
    return [(i, n) for i, n in enumerate(names) if q in n.lower()]


def parse_index(text: str) -> int | None:
    """``text`` read as a class index ("5", "+5", "-1": a bad index, still an
    index), or None for a name. ASCII digits only: "５" and "²" are not
    indices. No ImageNet class name starts with a sign or a digit."""
    return int(text) if re.fullmatch(r"[+-]?\d+", text.strip(), re.ASCII) else None


def close_matches(query: str, n: int = 5) -> list[int]:
    """Up to ``n`` class indices whose names look like ``query`` (a typo's
    likely meaning), the most alike first."""
    q = _spaced(query).lower()
    lowered = [name.lower() for name in imagenet_classes()]
    found = [lowered.index(c) for c in difflib.get_close_matches(q, lowered, n=n, cutoff=0.6)]
    found += [i for i, name in enumerate(lowered) if q in name and i not in found]
    return found[:n]


def class_label(index: int, categories: Sequence[str] | None = None) -> str:
    """A class as "goldfish (1)", for tables, plots and select boxes
    (``categories``: a model's own names; ImageNet-1K's by default)."""
    names = categories if categories is not None else imagenet_classes()
    return f"{names[index]} ({index})"


def describe(indices: Iterable[int]) -> str:
    """Classes as a reader wants them named: "'goldfish' (1), 'tench' (0)"."""
    names = imagenet_classes()
    return ", ".join(f"'{names[i]}' ({i})" for i in indices)


def resolve_class(spec: int | str) -> int:
    """Turn a class index or name into an index in [0, 1000).

    A name matches case-insensitively: an exact name wins, otherwise it must be
    the prefix or a whole word of exactly one name ("volc" is volcano; "cat"
    is ambiguous: catamaran, tiger cat, Persian cat...). Digits are read as an index.

    Raises:
        UmaskError: unknown index, unknown name (close matches listed) or an
            ambiguous name (the candidates listed).
    """
    index = int(spec) if isinstance(spec, int) else parse_index(str(spec))  # int(): True is not stored as true
    if index is not None:
        if not 0 <= index < NUM_CLASSES:
            raise UmaskError(f"Class index {index} is out of range; ImageNet-1K indices run from 0 to 999.")
        return index
    names = imagenet_classes()
    query = _spaced(str(spec)).lower()
    if not query:
        raise UmaskError("An empty class name was given; give an ImageNet class name or an index 0-999.")
    lowered = [n.lower() for n in names]
    exact = [i for i, n in enumerate(lowered) if n == query]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        # ImageNet has 'Cardigan' (the corgi) and 'cardigan' (the sweater): the exact case tells them apart.
        same_case = [i for i in exact if names[i] == _spaced(str(spec))]
        if len(same_case) == 1:
            return same_case[0]
        raise UmaskError(
            f"Class name '{spec}' is ambiguous: it names {describe(exact)}; give the index instead."
        )
    # A prefix, or a whole word of a name: "cat" starts only "catamaran" but
    # is a word of "tiger cat" and "Persian cat", which a person may well mean.
    word = re.compile(rf"\b{re.escape(query)}\b")
    candidates = [i for i, n in enumerate(lowered) if n.startswith(query) or word.search(n)]
    if len(candidates) == 1:
        return candidates[0]
    if len(candidates) > 1:
        shown = candidates[:8]
        more = f" and {len(candidates) - 8} more" if len(candidates) > 8 else ""
        raise UmaskError(
            f"Class name '{spec}' is ambiguous: it could be {describe(shown)}{more}; type more of the name or give the index."
        )
    close = close_matches(query)
    hint = f" Close matches: {describe(close)}." if close else " Run 'python -m umask classes' to list them."
    raise UmaskError(f"Unknown ImageNet class '{spec}'.{hint}")


def choose_targets(k: int, *, seed: int = 0, given: Sequence[int | str] | None = None) -> tuple[int, ...]:
    """K distinct target classes: ``given`` (names or indices) or random with ``seed``.

    Raises:
        UmaskError: wrong number of given targets, or a class given twice.
    """
    if given:
        if len(given) != k:
            raise UmaskError(f"{count(len(given), 'target')} given for K = {k} masks; give exactly {k} or none (random).")
        targets = tuple(resolve_class(g) for g in given)
        if len(set(targets)) != k:
            dup = sorted({t for t in targets if targets.count(t) > 1})
            raise UmaskError(f"Targets must be distinct, but {describe(dup)} appears more than once.")
        return targets
    if not 2 <= k <= NUM_CLASSES:
        raise UmaskError(f"K = {k} targets cannot be distinct ImageNet classes; K must lie between 2 and 1000.")
    import torch  # here, not above: `umask classes` lists names without waiting seconds for torch

    gen = torch.Generator().manual_seed(seed)
    return tuple(int(i) for i in torch.randperm(NUM_CLASSES, generator=gen)[:k])
