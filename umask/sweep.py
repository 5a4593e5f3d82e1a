"""Sweeps: every combination of models, mask families, modes, K and seeds.

A sweep folder ``DIR`` holds:

* ``runs/<model>/<family>-<mode>/<preset>-<steps>/k<K>-seed<S>/``: one result
  folder per run, in the engine's format (:func:`umask.results.save_result`).
* ``results.csv``: one row per finished run (:data:`COLUMNS`), in a stable
  order (the plan's order, then any older runs sorted).
* ``sweep.json``: the settings every run of the folder shares (image size,
  fill); a different size or fill needs a new folder.
* ``report.html``: written by :mod:`umask.report`.

Resuming: a run is finished when its result folder exists (saved atomically)
*and* its row is in the CSV. The row is appended (flush + fsync) right after
the folder is saved; on start the CSV is reconciled with the folders (rows
rebuilt for folders that lack one, rows without a folder dropped, duplicates
removed), so a kill at any moment loses at most the run in progress and never
duplicates one. Every row is computed from the saved folder, so a rebuilt row
equals the row an uninterrupted sweep writes.
"""

from __future__ import annotations

import contextlib
import csv
import io
import itertools
import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from .config import PRESETS, Config, check_preset
from .devices import resolve_device
from .errors import UmaskError
from .files import JSON_READ_ERRORS, atomic_file, check_writable, is_hidden, safe_name
from .geometry import SLICE_RESOLUTION, check_slice_resolution, result_geometry
from .masks import BUILTIN_FAMILIES, check_mode, check_parts, parse_fill
from .models import STUDY_MODELS, Classifier, canonical_spec, load_model, model_info
from .optimise import StepReport, UniversalSearch
from .results import (JSON_FILE, SWEEP_RUNS_DIR, Result, check_outside_results, check_result_folder, load_result,
                      remove_save_leftovers, save_result)
from .text import percent_number
from .timing import StepTiming

log = logging.getLogger(__name__)

CSV_FILE = "results.csv"
SETTINGS_FILE = "sweep.json"
RUNS_DIR = SWEEP_RUNS_DIR  # run folders: RUNS_DIR/MODEL/FAMILY-MODE/PRESET-STEPS/kK-seedS

# The study's grid: six models x two mask families x K = 2..58 step 8, plus 62.
STUDY_KS = (2, 10, 18, 26, 34, 42, 50, 58, 62)
STUDY_FAMILIES = ("grid", "hstripes")

COLUMNS = (
    "model",
    "mask_family",
    "mode",
    "k",
    "seed",
    "preset",
    "max_steps",
    "steps",
    "seconds",
    "success_rate",
    "hits",
    "succeeded",
    "final_loss",
    "l0_max",
    "l1_max",
    "rel_l1_max",
    "rel_l2_max",
    "linf_max",
    "rel_linf_max",
    "norm_change_l2_max",
    "radius_at_x",
    "radius_at_x_rel",
    "enclosing_radius",
    "enclosing_radius_rel",
    "folder",
)

# The columns a sweep folder made before the absolute L1/Linf and the L2 norm
# change were added: still read; their rows are rebuilt from their folders
# when a sweep or a report next writes the CSV.
ADDED_COLUMNS = ("l1_max", "linf_max", "norm_change_l2_max")
OLD_COLUMNS = tuple(c for c in COLUMNS if c not in ADDED_COLUMNS)

#: The most runs one sweep may hold (the study's grid is 108 a seed).
MAX_RUNS = 100_000


@dataclass(frozen=True, order=True)
class RunKey:
    """What identifies one run of a sweep."""

    model: str
    mask_family: str
    mode: str
    k: int
    seed: int
    preset: str
    max_steps: int

    @property
    def folder(self) -> str:
        """Result folder relative to the sweep folder (any model spec made a safe name)."""
        return (f"{RUNS_DIR}/{safe_name(self.model)}/{self.mask_family}-{self.mode}/"
                f"{self.preset}-{self.max_steps}/k{self.k:02d}-seed{self.seed}")


@dataclass(frozen=True)
class SweepPlan:
    """Which runs a sweep makes.

    Attributes:
        models: model specs, loaded one at a time in this order.
        families: mask families (grid, hstripes, vstripes, random).
        ks: numbers of masks.
        seeds: run seeds (initial image and random targets).
        modes: mask modes (hide = the study).
        preset: "seed" (the study's recipe) or "fast".
        steps: step budget; None keeps the preset's (5000 for "seed").
        size: image side (64 in the study).
        fill: hidden-pixel value.
        device: cpu | cuda | auto.
    """

    models: tuple[str, ...]
    families: tuple[str, ...] = STUDY_FAMILIES
    ks: tuple[int, ...] = STUDY_KS
    seeds: tuple[int, ...] = (0,)
    modes: tuple[str, ...] = ("hide",)
    preset: str = "seed"
    steps: int | None = None
    size: int = 64
    fill: float | str = 0.0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("models", "families", "ks", "seeds", "modes"):
            values = tuple(getattr(self, name))
            if name == "models":  # as each run's Config stores them, so finished runs are found again
                values = tuple(canonical_spec(spec) for spec in values)
            if not values:
                raise UmaskError(f"A sweep needs at least one value for {name}.")
            # Repeats would run (and count) the same run twice.
            object.__setattr__(self, name, tuple(dict.fromkeys(values)))
        check_preset(self.preset)
        # As each run's Config stores it: sweep.json must hold 0.5, not "0.5", or the next call is refused.
        object.__setattr__(self, "fill", parse_fill(self.fill))
        if "custom" in self.families:
            raise UmaskError(f"Sweeps use the built-in mask families ({', '.join(BUILTIN_FAMILIES)}), not 'custom'.")
        for mode in self.modes:
            check_mode(mode)
        runs = math.prod(len(getattr(self, name)) for name in ("models", "families", "modes", "ks", "seeds"))
        if runs > MAX_RUNS:  # its list of runs alone would take minutes and gigabytes
            raise UmaskError(f"This sweep would make {runs:,} runs, more than one sweep handles (at most {MAX_RUNS:,}); "
                             "use fewer models, K values or seeds (the study's grid is 108 runs a seed).")

    @property
    def max_steps(self) -> int:
        return self.steps if self.steps is not None else Config.preset(self.preset).steps

    def config(self, key: RunKey) -> Config:
        """The engine Config of one run."""
        return Config.preset(
            key.preset,
            model=key.model,
            mask_family=key.mask_family,
            mask_mode=key.mode,
            k=key.k,
            seed=key.seed,
            steps=key.max_steps,
            size=self.size,
            fill=self.fill,
            device=self.device,
            snapshot_every=0,
        )

    def keys(self) -> list[RunKey]:
        """Every run, models outermost (each model is loaded once)."""
        return [
            RunKey(model, family, mode, k, seed, self.preset, self.max_steps)
            for model, family, mode, k, seed in itertools.product(self.models, self.families, self.modes, self.ks, self.seeds)
        ]

    def validate(self) -> None:
        """Fail before the first run if any combination is impossible (e.g. K > size for stripes)
        or a model name is unknown (with close matches), even one with nothing left to run."""
        for spec in self.models:
            model_info(spec)
        # The seed changes no rule a Config or a layout checks: one seed stands for all.
        for key in (k for k in self.keys() if k.seed == self.seeds[0]):
            self.config(key)
        for family, k in itertools.product(self.families, self.ks):
            check_parts(family, k, self.size)  # what layout() checks, without building a layout


def study_plan(**overrides) -> SweepPlan:
    """The study's own grid: six models x grid/hstripes x K = 2..62, its recipe, GPU when present."""
    values = dict(models=STUDY_MODELS, families=STUDY_FAMILIES, ks=STUDY_KS, preset="seed", device="auto")
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SweepPlan(**values)


# ------------------------------------------------------------------ rows ---


def _fmt(value: float) -> str:
    """A float as the CSV stores it (stable text, 6 significant digits)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}"


def row_from_result(result: Result, key: RunKey, folder: str) -> dict[str, str]:
    """The CSV row of one saved run (call it on the *loaded* folder, so rows rebuilt later are equal)."""
    geo = result_geometry(result).summary()
    hits = result.hit_count
    return {
        "model": key.model,
        "mask_family": key.mask_family,
        "mode": key.mode,
        "k": str(key.k),
        "seed": str(key.seed),
        "preset": key.preset,
        "max_steps": str(key.max_steps),
        "steps": str(result.steps),
        "seconds": _fmt(result.seconds),
        "success_rate": _fmt(result.success_rate),
        "hits": str(hits),
        "succeeded": "1" if hits == result.k else "0",
        "final_loss": _fmt(result.final_loss),
        "l0_max": _fmt(geo["max_abs_l0"]),
        "l1_max": _fmt(geo["max_abs_l1"]),
        "rel_l1_max": _fmt(geo["max_rel_l1"]),
        "rel_l2_max": _fmt(geo["max_rel_l2"]),
        "linf_max": _fmt(geo["max_abs_linf"]),
        "rel_linf_max": _fmt(geo["max_rel_linf"]),
        "norm_change_l2_max": _fmt(geo["max_norm_change_l2"]),
        "radius_at_x": _fmt(geo["radius_at_x"]),
        "radius_at_x_rel": _fmt(geo["radius_at_x_rel"]),
        "enclosing_radius": _fmt(geo["enclosing_radius"]),
        "enclosing_radius_rel": _fmt(geo["enclosing_radius_rel"]),
        "folder": folder,
    }


def key_of_row(row: dict[str, str]) -> RunKey:
    return RunKey(
        row["model"], row["mask_family"], row["mode"], int(row["k"]), int(row["seed"]), row["preset"], int(row["max_steps"])
    )


def _rows_by_key(path: Path) -> dict[RunKey, dict[str, str]]:
    """The CSV's rows by run key; a hand-mangled row is dropped (its folder rebuilds it)."""
    rows: dict[RunKey, dict[str, str]] = {}
    if not path.exists():
        return rows
    for row in read_rows(path):
        try:
            rows[key_of_row(row)] = row
        except (ValueError, TypeError):
            log.warning("dropping a malformed row of %s: %s", path, row)
    return rows


def _key_of_folder(out: Path, folder: Path, result: Result) -> RunKey | None:
    """Recover a run's key from its saved result and its path (the preset is only in the path)."""
    rel = folder.relative_to(out).as_posix()
    match = re.fullmatch(rf"{RUNS_DIR}/[^/]+/[^/]+/(?P<preset>[a-z]+)-(?P<steps>\d+)/k\d+-seed(?P<seed>\d+)", rel)
    if match is None:
        return None
    seed = int(match["seed"])
    saved_seed = result.config.get("seed")
    # Compared, not converted: a hand-edited seed (null, 1.7, "1") is not this run's.
    if type(saved_seed) is not int or saved_seed != seed:
        return None
    # Nor is a result made with another step budget or, in a "seed" folder,
    # not the study's SGD (a `generate --overwrite` into the sweep's place).
    if result.config.get("steps") != int(match["steps"]):
        return None
    if match["preset"] == "seed" and result.config.get("optimizer") != PRESETS["seed"]["optimizer"]:
        return None
    key = RunKey(result.model, result.mask_family, result.mask_mode, result.k, seed, match["preset"], int(match["steps"]))
    return key if key.folder == rel else None


def read_rows(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``results.csv`` (strings, as written).

    Raises:
        UmaskError: the file is not a umask results.csv.
    """
    path = Path(path)
    if path.is_dir():
        raise UmaskError(f"'{path}' is a folder; a sweep folder holds results.csv as a file: move that folder away.")
    if path.parent.is_file():
        raise UmaskError(f"'{path.parent}' is a file, not a sweep folder.")
    if not path.parent.is_dir():
        raise UmaskError(f"Sweep folder '{path.parent}' does not exist.")
    if not path.is_file():
        raise UmaskError(f"'{path}' does not exist; a sweep folder holds results.csv.")
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                raise UmaskError(f"'{path}' is empty, not a umask results.csv; "
                                 f"{_damaged_csv_advice(path, 'delete it, or use another folder.')}")
            header = tuple(reader.fieldnames)
            if header not in (COLUMNS, OLD_COLUMNS):
                raise UmaskError(f"'{path}' is not a umask results.csv (its header differs); {_damaged_csv_advice(path)}")
            # A kill during an append can leave a partial last line: drop rows
            # with missing cells (the folder scan rebuilds them).
            rows = [row for row in reader if all(row.get(c) is not None for c in header) and None not in row]
    except UnicodeDecodeError:
        raise UmaskError(f"'{path}' is not a umask results.csv (it is not UTF-8 text); {_damaged_csv_advice(path)}") from None
    except csv.Error as err:  # e.g. a cell longer than the csv module's limit, a stray NUL byte
        raise UmaskError(f"'{path}' is not a umask results.csv (its CSV is malformed: {err}); "
                         f"{_damaged_csv_advice(path)}") from None
    except OSError as err:
        raise UmaskError(f"'{path}' cannot be read ({err.strerror or err}).") from None
    if header == OLD_COLUMNS:  # the figures it lacks stay empty (NaN) until its folders rebuild them
        rows = [{c: row.get(c, "") for c in COLUMNS} for row in rows]
    return rows


def _damaged_csv_advice(path: Path, otherwise: str = "use another folder.") -> str:
    """What to do with an unreadable results.csv: where run folders sit beside
    it (a spreadsheet re-saved it, say) nothing is lost by deleting it; a
    lone file may be someone's own data."""
    if (path.parent / RUNS_DIR).is_dir():
        return (f"delete it and run the same sweep command again: its rows are rebuilt from the run folders in "
                f"'{path.parent / RUNS_DIR}'.")
    return otherwise


def _is_old_row(row: dict[str, str]) -> bool:
    """A row read from a CSV written before :data:`ADDED_COLUMNS` (its absolute L1 is empty, never so in a new row)."""
    return row["l1_max"] == ""


def gallery_group(row: dict) -> tuple:
    """The runs one gallery section shows together: (model, mask family, mode,
    preset, step budget); seeds and K vary inside it."""
    return row["model"], row["mask_family"], row["mode"], row["preset"], row["max_steps"]


def summary_table(rows: list[dict]) -> list[dict]:
    """Of typed rows (:func:`typed_rows`), one dict per (model, family, mode, preset, step budget, K): mean
    success, seeds, seeds at 100 %, mean steps and seconds. Runs of different
    recipes in one folder are never averaged together."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["mask_family"], r["mode"], r["preset"], r["max_steps"], r["k"]), []).append(r)
    out = []
    for (model, family, mode, preset, budget, k), group in groups.items():
        out.append(
            {
                "model": model,
                "masks": family,
                "mode": mode,
                "preset": preset,
                "step budget": budget,
                "K": k,
                "seeds": len(group),
                "success %": percent_number(float(np.mean([r["success_rate"] for r in group]))),
                "at 100 %": sum(r["succeeded"] for r in group),
                "mean steps": round(float(np.mean([r["steps"] for r in group])), 1),
                "mean s": round(float(np.mean([r["seconds"] for r in group])), 2),
            }
        )
    return out


def typed_rows(rows: Iterable[dict[str, str]]) -> list[dict]:
    """CSV rows with numbers as numbers (empty cells -> NaN), for plots and tables.

    Raises:
        UmaskError: a number column holds something else (a hand-edited CSV).
    """
    ints = {"k", "seed", "max_steps", "steps", "hits", "succeeded"}
    text = {"model", "mask_family", "mode", "preset", "folder"}
    out = []
    for n, row in enumerate(rows, start=1):
        typed: dict = {}
        for c in COLUMNS:
            value = row[c]
            try:
                if c in text:
                    typed[c] = value
                elif c in ints:
                    typed[c] = int(value)
                else:
                    typed[c] = float(value) if value != "" else math.nan
            except ValueError:
                raise UmaskError(
                    f"Row {n} of results.csv has '{value}' in column {c}, not a number; fix or delete that row."
                ) from None
        out.append(typed)
    return out


def _write_csv_atomic(path: Path, rows: list[dict[str, str]]) -> None:
    """Write ``rows`` as the CSV, unless it already holds exactly them (a
    resumed sweep with nothing new leaves the file, and its time, alone)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = text.getvalue().encode()
    try:
        if path.read_bytes() == data:
            return
    except OSError:  # absent, or a folder (refused elsewhere)
        pass
    with atomic_file(path, "wb") as fh:
        fh.write(data)


def _append_row(path: Path, row: dict[str, str]) -> None:
    try:
        with open(path, "a", newline="", encoding="utf-8") as fh:
            csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n").writerow(row)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        # The run's folder is saved: the next start rebuilds its row from it.
        raise UmaskError(f"Cannot add a row to '{path}': {err.strerror or err}; the run is saved in '{row['folder']}' "
                         "and its row is rebuilt when the same command runs again.") from None


def _result_folders(out: Path) -> Iterable[Path]:
    runs = out / RUNS_DIR
    if not runs.is_dir():
        return []
    return sorted(p.parent for p in runs.rglob(JSON_FILE) if not is_hidden(p.relative_to(out).parts))


def _saved_runs(out: Path) -> Iterator[tuple[RunKey, Result]]:
    """Every readable run folder under ``out`` where a sweep puts its runs, with its key."""
    for folder in _result_folders(out):
        try:
            result = load_result(folder)
        except UmaskError as err:
            log.warning("skipping %s: %s", folder, err)
            continue
        key = _key_of_folder(out, folder, result)
        if key is None:
            log.warning("skipping %s: not where a sweep puts its runs, or its result.json names another run than its place", folder)
            continue
        yield key, result


def _row_of(rows: dict[RunKey, dict[str, str]], key: RunKey, result: Result) -> dict[str, str]:
    """A saved run's CSV row: the one in ``rows`` when whole, else rebuilt from its result."""
    row = rows.get(key)
    if row is None or row["folder"] != key.folder or _is_old_row(row):  # a line torn inside its last cell keeps every column
        row = row_from_result(result, key, key.folder)
    return row


def reconcile(out: str | Path, order: list[RunKey] | None = None) -> list[dict[str, str]]:
    """Make ``results.csv`` agree with the result folders, and rewrite it in a stable order.

    Keeps one row per result folder: rows whose folder is gone are dropped,
    folders without a row get one rebuilt from the folder, duplicates go.
    Order: keys in ``order`` first (the plan's order), then the rest sorted.

    Returns:
        The rows now in the CSV.
    """
    out = Path(out)
    path = out / CSV_FILE
    existing = _rows_by_key(path)
    rows: dict[RunKey, dict[str, str]] = {}
    for key, result in _saved_runs(out):
        rows[key] = _row_of(existing, key, result)
    rank = {key: i for i, key in enumerate(order or [])}
    ordered = sorted(rows, key=lambda k: (0, rank[k], k) if k in rank else (1, 0, k))
    result_rows = [rows[k] for k in ordered]
    _write_csv_atomic(path, result_rows)
    return result_rows


def repair_csv(out: str | Path) -> None:
    """Give every run folder its row in ``results.csv`` before a report reads
    it: a line torn by a kill, or missing, is rebuilt from its folder.

    Unlike :func:`reconcile` it never drops a row (a CSV copied without its
    run folders still reports), and writes only when a row was rebuilt. Left
    alone while a sweep is writing the folder (that sweep reconciles when it
    starts; a reader must not rewrite what it appends to) or where nothing
    can be written (the report reads the CSV as it is).
    """
    out = Path(out)
    path = out / CSV_FILE
    try:
        with _only_writer(out):
            rows = _rows_by_key(path)
            rebuilt = False
            for key, result in _saved_runs(out):
                row = _row_of(rows, key, result)
                if row is not rows.get(key):  # missing, or torn
                    rows[key] = row
                    rebuilt = True
            if rebuilt:
                _write_csv_atomic(path, list(rows.values()))
    except SweepBusy:
        log.info("%s: a sweep is writing it; the report reads results.csv as it is", out)
    except (OSError, UmaskError) as err:  # a read-only folder: report what is there
        log.info("%s: results.csv left as it is (%s)", out, err)


def _folder_settings(plan: SweepPlan) -> dict:
    """What one sweep folder holds a single value of (``sweep.json``): every run's image size and fill."""
    return {"size": plan.size, "fill": plan.fill}


def check_settings(out: Path, plan: SweepPlan) -> None:
    """One folder, one image size and fill: raise unless the folder's
    ``sweep.json`` (when there is one) holds the plan's."""
    settings = _folder_settings(plan)
    path = out / SETTINGS_FILE
    if path.exists():
        saved = _read_settings(out)
        if saved is None:
            raise UmaskError(f"{path} is not a JSON object, so '{out}' is not a umask sweep folder (or that file was "
                             'damaged: write back {"size": N, "fill": F} as its runs were made), or use another --out folder.')
        for name, value in settings.items():
            if saved.get(name) != value:
                raise UmaskError(
                    f"'{out}' holds a sweep with {name} = {json.dumps(saved.get(name))}, not {json.dumps(value)}; "
                    f"use a new --out folder for a different {name}."
                )


def _settle_settings(out: Path, plan: SweepPlan) -> None:
    """:func:`check_settings`, then write them on first use."""
    check_settings(out, plan)
    path = out / SETTINGS_FILE
    if not path.exists():
        with atomic_file(path) as fh:
            fh.write(json.dumps(_folder_settings(plan) | {"columns": list(COLUMNS)}, indent=2))


def check_resumable(out: Path, plan: SweepPlan) -> None:
    """Everything about ``out`` that would stop ``plan`` running into it, before
    any model loads: a folder of another kind (:func:`check_out_folder`),
    another size or fill (:func:`check_settings`), a results.csv it cannot read."""
    check_out_folder(out)
    check_settings(out, plan)
    if (out / CSV_FILE).exists():
        read_rows(out / CSV_FILE)


def check_out_folder(out: Path) -> None:
    """Refuse a folder that holds something other than a sweep, before any run.

    Only a folder that is not a sweep's yet: once ``sweep.json`` is there, a
    file beside it (an ``evaluate --json`` written there, a note) is left
    alone; the sweep writes only its own names.
    """
    check_writable(out, folder=True)
    check_outside_results(out, "give a sweep folder outside it")
    if out.is_dir() and not (out / SETTINGS_FILE).is_file():
        known = {CSV_FILE, SETTINGS_FILE, RUNS_DIR, "report.html"}
        foreign = [p.name for p in out.iterdir() if p.name not in known and not is_hidden([p.name])]
        if foreign:
            raise UmaskError(
                f"Output folder '{out}' holds files that are not a sweep's ({', '.join(sorted(foreign)[:3])}); choose a new or sweep folder."
            )


# ------------------------------------------------------------------- run ---


@dataclass
class SweepHooks:
    """Callbacks a sweep calls (the CLI draws bars with them; tests raise in them to simulate a kill).

    Attributes:
        on_start: ``(finished, pending)`` run keys once the folder is
            reconciled: those done before, and those this call will run.
        on_model: ``(spec)`` before a model loads.
        on_run_start: ``(key, config)`` before each run that is not finished yet.
        on_step: ``(key, report)`` after every optimisation step.
        on_run_end: ``(key, row)`` after the run's folder and row are written.
    """

    on_start: Callable[[list[RunKey], list[RunKey]], None] | None = None
    on_model: Callable[[str], None] | None = None
    on_run_start: Callable[[RunKey, Config], None] | None = None
    on_step: Callable[[RunKey, StepReport], None] | None = None
    on_run_end: Callable[[RunKey, dict], None] | None = None


@dataclass
class SweepOutcome:
    """What a call to :func:`run_sweep` did."""

    total: int
    skipped: int
    ran: int
    rows: list[dict[str, str]] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # model -> why it was skipped


def pending_keys(plan: SweepPlan, out: str | Path) -> list[RunKey]:
    """The plan's runs that are not finished in ``out``: those without a
    readable result folder at their place. The folders decide, as in
    :func:`reconcile`, not the CSV: a run whose row a kill lost (or whose
    damaged results.csv was deleted) is finished, its row is rebuilt."""
    done = {key for key, _ in _saved_runs(Path(out))}
    return [k for k in plan.keys() if k not in done]


def check_models(plan: SweepPlan, specs: Sequence[str], loader: Callable[..., Classifier] = load_model, *,
                 skip_unavailable: bool = False, keep_first: bool = False) -> tuple[dict[str, Classifier], dict[str, str]]:
    """Load each of ``specs`` once on the CPU, before anything is written.

    One that cannot load (weights missing offline, a bundled package not
    installed) is left out when ``skip_unavailable``, else stops the sweep;
    one that cannot see at the plan's size always stops it (a later, correct
    command must not meet a sweep.json of that size).

    Returns:
        (the first model loaded, by spec, when ``keep_first``; else empty),
        (each model left out -> why).

    Raises:
        UmaskError: a model that cannot load (unless skipped) or take the size.
    """
    kept: dict[str, Classifier] = {}
    unavailable: dict[str, str] = {}
    for spec in specs:
        try:
            model = loader(spec, device="cpu")  # downloads into the cache when it can
        except UmaskError as err:
            if not skip_unavailable:
                raise UmaskError(f"{str(err).rstrip('.')}; to run the sweep without {spec}, add --skip-missing.") from None
            unavailable[spec] = str(err)  # the outcome reports it
            log.info("skipping %s: %s", spec, err)
            continue
        model.check_side(plan.size, size_option="--size")  # the sweep's one way to set it (the CLI's, like --skip-missing above)
        if keep_first and not kept:
            kept[spec] = model
        del model
    return kept, unavailable


def none_can_load(plan: SweepPlan, unavailable: dict[str, str]) -> bool:
    """Whether every model of ``plan`` was left out (``check_models``'s second
    value): a sweep with nothing that can run is refused, and its dry run says so."""
    return bool(unavailable) and len(unavailable) == len(plan.models)


def run_sweep(
    plan: SweepPlan,
    out: str | Path,
    *,
    hooks: SweepHooks | None = None,
    loader: Callable[..., Classifier] = load_model,
    skip_unavailable: bool = False,
) -> SweepOutcome:
    """Run every unfinished combination of ``plan`` into the folder ``out``.

    ``skip_unavailable`` leaves out (and reports) models that cannot load
    instead of failing before the first run.

    Safe to interrupt at any moment (Ctrl-C, kill, an exception from a hook)
    and to call again with the same plan: finished runs are skipped.

    Raises:
        UmaskError: an impossible combination, a folder that is not a sweep's,
            different size/fill than the folder's, or a model that cannot load.
    """
    hooks = hooks or SweepHooks()
    out = Path(out)
    plan.validate()
    device = resolve_device(plan.device)  # no GPU where one is asked for: say so before anything is written
    check_resumable(out, plan)
    specs = list(dict.fromkeys(k.model for k in pending_keys(plan, out)))
    # The first model, when the sweep runs on the CPU: not loaded twice.
    loaded, unavailable = check_models(plan, specs, loader, skip_unavailable=skip_unavailable, keep_first=device.type == "cpu")
    if none_can_load(plan, unavailable):
        reasons = "; ".join(f"{spec}: {why.rstrip('.')}" for spec, why in unavailable.items())
        raise UmaskError(f"No model of the sweep can load here ({reasons}), so nothing would run.")
    out.mkdir(parents=True, exist_ok=True)
    with _only_writer(out):
        def load_once(spec: str, **kwargs) -> Classifier:
            model = loaded.pop(spec, None)
            return model if model is not None else loader(spec, **kwargs)

        return _run_locked(plan, out, hooks, load_once, unavailable)


LOCK_FILE = ".sweep.lock"


class SweepBusy(UmaskError):
    """Another sweep holds the folder's lock."""


@contextlib.contextmanager
def _only_writer(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock file: two sweeps writing one folder would race on
    its result folders and rewrite each other's rows."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: no lock, as before
        yield
        return
    with open(out / LOCK_FILE, "a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SweepBusy(f"Another sweep is writing into '{out}' right now; let it finish, or choose another folder.") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _run_locked(plan: SweepPlan, out: Path, hooks: SweepHooks, loader: Callable[..., Classifier],
                unavailable: dict[str, str]) -> SweepOutcome:
    _settle_settings(out, plan)
    keys = plan.keys()
    # The folders reconciled are the finished runs (pending_keys' rule), read once.
    saved = {key_of_row(row) for row in reconcile(out, keys)}
    pending = [k for k in keys if k not in saved]
    finished = [k for k in keys if k in saved]
    finished_before = len(finished)
    pending = [k for k in pending if k.model not in unavailable]
    if hooks.on_start:
        hooks.on_start(finished, pending)
    csv_path = out / CSV_FILE
    ran = 0
    for model_spec, group in itertools.groupby(pending, key=lambda k: k.model):
        if hooks.on_model:
            hooks.on_model(model_spec)
        model = loader(model_spec, device=plan.device)
        for key in group:
            config = plan.config(key)
            # Before the run, not when saving it: a folder that cannot take
            # the result (foreign files in it) must not cost the run's time.
            check_result_folder(out / key.folder)
            remove_save_leftovers(out / key.folder)  # of a save killed mid-way; this sweep alone writes here
            if hooks.on_run_start:
                hooks.on_run_start(key, config)
            search = UniversalSearch(model, config)
            for report in search:
                if hooks.on_step:
                    hooks.on_step(key, report)
            folder = save_result(search.result(), out / key.folder)
            # The row is computed from the folder as saved, so a row rebuilt
            # after a kill is identical to this one.
            row = row_from_result(load_result(folder), key, key.folder)
            _append_row(csv_path, row)
            ran += 1
            if hooks.on_run_end:
                hooks.on_run_end(key, row)
        del model
    rows = reconcile(out, keys)
    return SweepOutcome(total=len(keys), skipped=finished_before, ran=ran, rows=rows, unavailable=unavailable)


def sweep_running(out: str | Path) -> bool:
    """Whether a sweep is writing into ``out`` right now (it holds the folder's lock)."""
    try:
        with _only_writer(Path(out)):
            return False
    except SweepBusy:
        return True
    except OSError:  # no lock file can be made there (read-only): no sweep writes there either
        return False


def report_slice_resolution(out: str | Path, asked: int | None) -> int:
    """The decision slices' resolution for the report of ``out``: ``asked``
    when given, which is then kept in ``sweep.json`` for the next report
    (``--report-only`` without the option draws the slices as the sweep's
    own report did); else the one kept there, else :data:`SLICE_RESOLUTION`.
    Keeping it is best effort: a folder that cannot be written still reports."""
    out = Path(out)
    saved = _read_settings(out)
    if asked is None:
        kept = (saved or {}).get("slice_resolution")
        if not isinstance(kept, int) or isinstance(kept, bool):
            return SLICE_RESOLUTION
        try:
            if kept != 0:
                check_slice_resolution(kept)
        except UmaskError:  # an edited sweep.json: the default, not a refusal of the whole report
            return SLICE_RESOLUTION
        return kept
    if saved and saved.get("slice_resolution") != asked:
        try:
            with atomic_file(out / SETTINGS_FILE) as fh:
                fh.write(json.dumps(saved | {"slice_resolution": asked}, indent=2))
        except (OSError, UmaskError) as err:
            log.info("%s: the slice resolution is not kept (%s)", out, err)
    return asked


def sweep_settings(out: str | Path) -> dict:
    """``sweep.json`` of a sweep folder (size, fill), or {} when absent or damaged."""
    return _read_settings(Path(out)) or {}


def _read_settings(out: Path) -> dict | None:
    """``sweep.json`` as a dict ({} when there is none), or None when it is
    not a JSON object: damaged, or a folder of that name."""
    path = out / SETTINGS_FILE
    try:
        saved = json.loads(path.read_bytes()) if path.exists() else {}
    except (*JSON_READ_ERRORS, OSError):  # OSError: a folder of that name
        return None
    return saved if isinstance(saved, dict) else None


def estimate_seconds(plan: SweepPlan, timings: dict[str, StepTiming], keys: Sequence[RunKey] | None = None) -> dict[str, float]:
    """Upper bound of a plan's optimisation time per model: every run using its whole step budget.

    ``keys``: the runs to count (those left to do, :func:`pending_keys`);
    default every run of the plan. Runs of the study's recipe stop at 100 %,
    so the real time is lower by an amount only the run can tell.
    """
    out: dict[str, float] = {}
    for key in plan.keys() if keys is None else keys:
        out[key.model] = out.get(key.model, 0.0) + timings[key.model].per_step(key.k) * key.max_steps
    return out
