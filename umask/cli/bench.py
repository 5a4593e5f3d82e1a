"""``umask bench``: measure time to universal, step overhead and memory; write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from ..bench import REPORT_HEADING, BenchPlan, merge_reports, report_from_json, report_to_json, run_bench, to_markdown
from ..errors import UmaskError
from ..files import JSON_READ_ERRORS, atomic_file, output_path
from ..masks import BUILTIN_FAMILIES
from ..results import check_output_file
from . import refuse_unused
from .output import echo


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="a reduced plan that finishes in under 5 minutes on 2 cores")
    p.add_argument("--k", dest="ks", type=int, nargs="+", default=None, help="K values for time to universal (default: 10 26 62; --quick: 10)")
    p.add_argument("--masks", dest="families", nargs="+", choices=BUILTIN_FAMILIES, default=None,
                   help="mask families for time to universal (default: grid hstripes)")
    p.add_argument("--seeds", type=int, default=None, help="seeds per K and mask family (default: 5; --quick: 1)")
    p.add_argument("--first-seed", type=int, default=None, help="the first seed (default 0): split one plan across processes")
    p.add_argument("--preset-cap", type=int, default=None, help="step cap of the study preset (default 5000)")
    p.add_argument("--preset-seeds", type=int, default=None,
                   help="run the study preset on the first N seeds only (it is the slow contender; default: every seed)")
    p.add_argument("--recipes", nargs="+", choices=("seed", "fast"), default=None,
                   help="which contenders to run (default both: seed = the study's preset, fast = umask's default); "
                        "one alone adds its missing seeds to parts run before")
    p.add_argument("--no-universal", action="store_true", help="skip the time-to-universal table")
    p.add_argument("--no-overhead", action="store_true", help="skip the step-overhead and memory tables")
    p.add_argument("--no-streaming", action="store_true", help="skip the streaming-overhead table")
    p.add_argument("--out", type=output_path, default="BENCHMARKS.md", help="where to write the tables (default BENCHMARKS.md; an earlier bench report there is replaced)")
    p.add_argument("--overwrite", action="store_true", help="replace a file at --out or --json that bench did not write")
    p.add_argument("--json", type=lambda text: Path(output_path(text)), default=None,
                   help="also keep every measurement in this JSON file, rewritten after each item")
    p.add_argument("--notes", type=Path, default=None,
                   help="a markdown file appended under 'Notes' (what the figures mean, how the parts were run)")
    p.add_argument("--merge", type=Path, nargs="+", default=None, metavar="JSON",
                   help="run nothing: write the tables from --json files of runs made side by side")


def run(args: argparse.Namespace) -> int:
    command = " ".join(["python -m umask", *sys.argv[1:]])
    # Fail now, not after an hour of measurements.
    if args.merge and len({Path(p).resolve() for p in args.merge}) != len(args.merge):
        raise UmaskError("--merge names one file twice; give each part's JSON once (it would count its runs twice).")
    for path in args.merge or ():
        if path.is_dir():
            raise UmaskError(f"bench --merge: {path} is a folder; give the JSON files written by bench --json.")
    if args.merge:
        refuse_unused("--merge runs nothing and writes the tables of the parts it is given", (
            ("--quick", args.quick), ("--k", args.ks), ("--masks", args.families), ("--seeds", args.seeds),
            ("--first-seed", args.first_seed), ("--preset-cap", args.preset_cap), ("--preset-seeds", args.preset_seeds),
            ("--recipes", args.recipes), ("--no-universal", args.no_universal), ("--no-overhead", args.no_overhead),
            ("--no-streaming", args.no_streaming), ("--json", args.json),
        ))
    inputs = tuple(args.merge or ()) + ((args.notes,) if args.notes else ())
    # Rewriting BENCHMARKS.md (and the --json kept beside it) is what bench
    # is for; any other file there is someone's, replaced only when asked.
    check_output_file(args.out, reads=inputs, overwrite=args.overwrite or _written_by_bench(Path(args.out), _check_report_md))
    if args.json:
        if Path(args.json).absolute() == Path(args.out).absolute():  # the tables would overwrite the measurements
            raise UmaskError(f"--json and --out both name '{args.json}'; the measurements and the tables need two files.")
        check_output_file(args.json, reads=inputs, overwrite=args.overwrite or _written_by_bench(args.json, _read_part))
    notes = _read_notes(args.notes) if args.notes else None
    if args.merge:
        report = merge_reports([_read_part(path) for path in args.merge])
        text = to_markdown(report, command=command, notes=notes)
    else:
        plan = BenchPlan.quick() if args.quick else BenchPlan.full()
        # Repeats dropped, as a sweep drops them: `--k 2 2` would measure and report K = 2 twice.
        options = (("ks", tuple(dict.fromkeys(args.ks)) if args.ks else None),
                   ("families", tuple(dict.fromkeys(args.families)) if args.families else None),
                   ("seeds", args.seeds), ("first_seed", args.first_seed), ("preset_cap", args.preset_cap),
                   ("preset_seeds", args.preset_seeds), ("recipes", tuple(dict.fromkeys(args.recipes)) if args.recipes else None))
        changes = {k: v for k, v in options if v is not None}
        if args.no_universal:
            changes["ks"] = ()
        if args.no_overhead:
            changes.update(overhead_models=(), memory_models=())
        if args.no_streaming:
            changes["streaming_steps"] = 0
        plan = dataclasses.replace(plan, **changes)
        report = run_bench(plan, progress=echo, checkpoint=(lambda rep: _write_part(args.json, rep)) if args.json else None)
        if args.json:
            _write_part(args.json, report)
        text = to_markdown(report, command=command, notes=notes)
    out = Path(args.out)
    with atomic_file(out) as fh:
        fh.write(text)
    echo(f"\nwrote {out}")
    return 0


def _check_report_md(path: Path) -> None:
    """Raise unless ``path`` starts as :func:`~umask.bench.to_markdown` writes."""
    with open(path, encoding="utf-8") as fh:
        if fh.readline().rstrip("\n") != REPORT_HEADING:
            raise ValueError(path)


def _written_by_bench(path: Path, read) -> bool:
    """Whether ``path`` is absent or an earlier output of bench (``read`` accepts it)."""
    if not path.exists():
        return True
    if not path.is_file():
        return False
    try:
        read(path)
    except (UmaskError, OSError, ValueError):
        return False
    return True


def _write_part(path: Path, report) -> None:
    with atomic_file(path) as fh:
        json.dump(report_to_json(report), fh, indent=1)


#: The most either input of a merge may hold; parts and notes are a few hundred KB.
MAX_INPUT_MB = 64


def _read_regular(path: Path, option: str, give: str) -> bytes:
    """The bytes of a plain file of at most MAX_INPUT_MB: /dev/zero or a pipe would be read forever."""
    if path.exists() and not path.is_dir() and not path.is_file():
        raise UmaskError(f"bench {option}: {path} is not a plain file (a device or a pipe); {give}.")
    if path.is_file() and path.stat().st_size > MAX_INPUT_MB * 2**20:
        raise UmaskError(f"bench {option}: {path} holds {path.stat().st_size / 2**20:.0f} MB, more than the "
                         f"{MAX_INPUT_MB} MB it could be; {give}.")
    return path.read_bytes()


def _read_part(path: Path):
    try:
        return report_from_json(json.loads(_read_regular(path, "--merge", "give files written by bench --json")))
    except FileNotFoundError:
        raise UmaskError(f"bench --merge: {path} does not exist; give files written by bench --json.") from None
    except OSError as exc:  # a folder, no permission
        raise UmaskError(f"bench --merge: {path} cannot be read ({exc.strerror}); give files written by bench --json.") from None
    except (*JSON_READ_ERRORS, KeyError, TypeError, AttributeError) as exc:
        detail = (f"its '{exc.args[0]}' is missing or malformed" if isinstance(exc, KeyError)
                  else "it does not hold what bench --json writes")
        raise UmaskError(f"bench --merge: {path} is not a bench --json file ({detail}).") from None


def _read_notes(path: Path) -> str:
    try:
        return _read_regular(path, "--notes", "give a markdown file").decode("utf-8")
    except FileNotFoundError:
        raise UmaskError(f"bench --notes: {path} does not exist; give a markdown file.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UmaskError(f"bench --notes: {path} cannot be read as text ({exc}); give a markdown file.") from None
