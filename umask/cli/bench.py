"""``umask bench``: measure time to universal, step overhead and memory; write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..bench import BenchPlan, run_bench, to_markdown
from ..files import atomic_file
from .output import echo


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run the speed benchmark and write BENCHMARKS.md", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a reduced plan that finishes in under 5 minutes on 2 cores")
    p.add_argument("--k", dest="ks", type=int, nargs="+", default=None, help="K values for time to universal")
    p.add_argument("--seeds", type=int, default=None, help="seeds per K and mask family")
    p.add_argument("--preset-cap", type=int, default=None, help="step cap of the study preset (default 5000)")
    p.add_argument("--preset-seeds", type=int, default=None,
                   help="run the study preset on the first N seeds only (it is the slow contender; default: every seed)")
    p.add_argument("--no-universal", action="store_true", help="skip the time-to-universal table")
    p.add_argument("--no-overhead", action="store_true", help="skip the step-overhead and memory tables")
    p.add_argument("--out", default="BENCHMARKS.md", help="where to write the tables")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    plan = BenchPlan.quick() if args.quick else BenchPlan.full()
    changes = {k: v for k, v in (("ks", tuple(args.ks) if args.ks else None), ("seeds", args.seeds), ("preset_cap", args.preset_cap), ("preset_seeds", args.preset_seeds)) if v is not None}
    if args.no_universal:
        changes["ks"] = ()
    if args.no_overhead:
        changes.update(overhead_models=(), memory_models=())
    plan = dataclasses.replace(plan, **changes)
    report = run_bench(plan, progress=echo)
    text = to_markdown(report, command=" ".join(["python -m umask", *sys.argv[1:]]))
    out = Path(args.out)
    with atomic_file(out) as fh:
        fh.write(text)
    echo(f"\nwrote {out}")
    return 0
