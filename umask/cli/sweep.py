"""``umask sweep``: every combination of models, masks, K and seeds, resumable, with a report.

Examples:
    python -m umask sweep --models efficientnet_lite0 --masks grid hstripes --k 2 10 18 --out sweeps/lite0
    python -m umask sweep --study --out sweeps/study            # the study's grid, on a GPU when there is one
    python -m umask sweep --study --estimate --out sweeps/study  # how long it would take here (measured)

Interrupt it (Ctrl-C) and run the same command again: finished runs are skipped.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..config import PRESETS
from ..errors import UmaskError
from ..masks import BUILTIN_FAMILIES, MODES
from ..devices import resolve_device
from ..geometry import SLICE_RESOLUTION, check_slice_resolution
from ..models import DEFAULT_MODEL, model_info, weights_available
from ..report import REPORT_FILE, build_report
from ..files import output_path
from ..results import check_output_file
from ..sweep import (CSV_FILE, MAX_RUNS, STUDY_FAMILIES, STUDY_KS, SweepHooks, SweepPlan, check_out_folder, estimate_seconds,
                     repair_csv, report_slice_resolution, run_sweep, study_plan, sweep_running)
from ..timing import StepTiming, time_steps, timing_model
from ..text import count, duration, percent
from . import interrupt_code, refuse_unused
from .output import echo, format_table, left_out, on_terminal, progress, status


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", action="store_true",
                   help="the study's grid: its six models x grid/hstripes x K = 2..58 step 8 and 62, preset seed, --device auto "
                        "(any other flag given overrides that part)")
    p.add_argument("--models", nargs="+", default=None, help=f"model specs (default {DEFAULT_MODEL})")
    p.add_argument("--masks", nargs="+", choices=BUILTIN_FAMILIES, default=None,
                   help=f"mask families (default {' '.join(STUDY_FAMILIES)})")
    p.add_argument("--modes", nargs="+", choices=MODES, default=None, help="mask modes (default hide, the study's)")
    p.add_argument("--k", nargs="+", type=int, default=None, help=f"values of K (default {' '.join(map(str, STUDY_KS))})")
    p.add_argument("--seeds", type=int, default=None, help="seeds per combination: 0..N-1 (default 1)")
    p.add_argument("--preset", choices=tuple(PRESETS), default=None, help="seed (the study's recipe, default) or fast")
    p.add_argument("--steps", type=int, default=None, help="step budget per run (default: the preset's; 5000 for seed)")
    p.add_argument("--size", type=int, default=None, help="image side (default 64)")
    p.add_argument("--fill", default=None, help="hidden-pixel value (default 0)")
    p.add_argument("--device", default=None, help="cpu (default), cuda or auto (--study: auto)")
    p.add_argument("--skip-missing", action="store_true", help="leave out models whose weights cannot be loaded")
    p.add_argument("--dry-run", action="store_true", help="list the runs and what is already done, run nothing")
    p.add_argument("--estimate", action="store_true",
                   help="measure seconds per step of each model here and print the sweep's worst-case time; run nothing")
    p.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    p.add_argument("--report-only", action="store_true", help="only (re)write report.html from what the folder holds")
    p.add_argument("--slice-resolution", type=int, default=None,
                   help=f"grid points a side of the report's decision slices, 3 to 301, or 0 for none (default: as the "
                        f"folder's last report, else {SLICE_RESOLUTION}; kept for the next --report-only)")
    p.add_argument("--out", type=output_path, required=True, help="the sweep folder (results.csv, runs/, report.html)")


def plan_from_args(args: argparse.Namespace) -> SweepPlan:
    """The plan the flags ask for; ``--study`` supplies the study's values for flags not given."""
    if args.seeds is not None and args.seeds > MAX_RUNS:  # before its tuple of seeds is built
        raise UmaskError(f"--seeds {args.seeds} is more runs than one sweep handles (at most {MAX_RUNS:,}); use fewer seeds.")
    values = {
        "models": tuple(args.models) if args.models else None,
        "families": tuple(args.masks) if args.masks else None,
        "modes": tuple(args.modes) if args.modes else None,
        "ks": tuple(args.k) if args.k else None,
        "seeds": tuple(range(args.seeds)) if args.seeds is not None else None,
        "preset": args.preset,
        "steps": args.steps,
        "size": args.size,
        "fill": args.fill,
        "device": args.device,
    }
    if args.seeds is not None and args.seeds < 1:
        raise UmaskError(f"--seeds {args.seeds} must be at least 1.")
    if args.steps is not None and args.steps < 1:
        raise UmaskError(f"--steps {args.steps} must be at least 1.")
    if args.study:
        return study_plan(**values)
    values["models"] = values["models"] or (DEFAULT_MODEL,)
    return SweepPlan(**{k: v for k, v in values.items() if v is not None})


def _estimate(plan: SweepPlan, out: Path) -> int:
    """``--estimate``: time a few steps of each model with runs left, and bound the runs left."""
    from ..sweep import check_resumable, pending_keys

    check_resumable(out, plan)
    left = pending_keys(plan, out)
    models = list(dict.fromkeys(k.model for k in left))
    if not left:
        echo(f"Every run of the sweep ({count(len(plan.keys()), 'run')}) is done in {out}; nothing is left to time.")
        return 0
    timings: dict[str, StepTiming] = {}
    ks = (min(plan.ks), max(plan.ks)) if len(plan.ks) > 1 else (plan.ks[0],)
    with progress(len(models), "timing models", unit="model") as bar:
        for spec in models:
            model, weights = timing_model(spec, device=plan.device)
            family = "hstripes" if "hstripes" in plan.families else plan.families[0]
            timings[spec] = StepTiming(spec, weights, time_steps(model, ks=ks, size=plan.size, preset=plan.preset, family=family))
            del model
            bar.update(1)
    per_model = estimate_seconds(plan, timings, left)
    rows = []
    for spec, t in timings.items():
        rows.append([spec, t.weights] + [f"{t.seconds[k]:.3f}" for k in ks] + [duration(per_model[spec])])
    echo(format_table(["model", "weights"] + [f"s/step K={k}" for k in ks] + ["runs left, full budget"], rows))
    total = sum(per_model.values())
    done = len(plan.keys()) - len(left)
    echo(
        f"\n{count(len(left), 'run')}{f' (of {len(plan.keys())}; {done} done)' if done else ''} x up to {count(plan.max_steps, 'step')} on {resolve_device(plan.device).type}: at most {duration(total)} "
        f"(every run using its whole budget; runs stop at 100 %, so less in practice). "
        f"Seconds per step were measured here (one warm-up step, then 3), linear in K between the measured K."
    )
    return 0


def run(args: argparse.Namespace) -> int:

    if not args.out.strip():  # Path("") would be the current folder
        raise UmaskError("--out is empty; give the sweep folder, e.g. --out sweeps/first.")
    out = Path(args.out)
    if args.slice_resolution not in (None, 0):  # before any run: the report is written last
        check_slice_resolution(args.slice_resolution)
    if args.report_only:
        refuse_unused(f"--report-only runs nothing and writes the report of what '{out}' holds", (
            ("--study", args.study), ("--models", args.models), ("--masks", args.masks), ("--modes", args.modes),
            ("--k", args.k), ("--seeds", args.seeds), ("--preset", args.preset), ("--steps", args.steps),
            ("--size", args.size), ("--fill", args.fill), ("--skip-missing", args.skip_missing),
            ("--dry-run", args.dry_run), ("--estimate", args.estimate), ("--no-report", args.no_report),
        ))
        if out.is_file():
            raise UmaskError(f"'{out}' is a file, not a sweep folder; give the folder a sweep wrote (it holds {CSV_FILE}).")
        if not (out / CSV_FILE).is_file():
            raise UmaskError(f"'{out}' holds no {CSV_FILE}; run a sweep into it first.")
        check_output_file(out / REPORT_FILE, overwrite=True)
        if sweep_running(out):  # a report of the sweep so far is worth having; say that it is one
            status(f"note: a sweep is writing into '{out}' right now; this report shows the runs finished so far "
                   f"(a later --report-only, or the sweep's own report, shows the rest).")
        repair_csv(out)  # a row torn by a kill is rebuilt from its folder, as a sweep would
        return _report(out, args)
    if args.estimate and args.dry_run:
        raise UmaskError("--estimate and --dry-run each run nothing and print one thing (the time it would take, the "
                         "runs it would make); give one of them.")
    plan = plan_from_args(args)
    plan.validate()
    if not args.no_report:  # written last: a folder or a link in its place must not wait hours to be said
        check_out_folder(out)  # first: "a file, not a folder" is said of the folder, not of the report in it
        check_output_file(out / REPORT_FILE, overwrite=True)
    if args.estimate:
        if args.skip_missing:  # as the run will: a model without its weights here is left out, not timed
            missing = [spec for spec in plan.models if not weights_available(spec)]
            if len(missing) == len(plan.models):
                raise UmaskError(f"No model of the sweep has its weights here ({', '.join(missing)}), so nothing would run.")
            if missing:
                echo(f"left out (no weights here, --skip-missing): {', '.join(missing)}")
                plan = dataclasses.replace(plan, models=tuple(m for m in plan.models if m not in missing))
        return _estimate(plan, out)
    if args.dry_run:
        return _dry_run(plan, out, skip_missing=args.skip_missing)
    bar = _SweepBar(plan, out)
    try:
        outcome = run_sweep(plan, out, hooks=bar.hooks(), skip_unavailable=args.skip_missing)
    except KeyboardInterrupt as err:
        bar.close()  # before the line, so the line is not drawn over
        done = (f"after {count(bar.done, 'finished run')} (all saved)" if bar.done
                else "before a run finished (nothing is half-written)")
        status(f"umask: interrupted {done}; run the same command again to resume.")
        return interrupt_code(err)
    finally:
        bar.close()
    for spec, why in outcome.unavailable.items():
        status(left_out(spec, why))
    echo(f"{count(outcome.ran, 'run')} done now, {outcome.skipped} already done before; {count(len(outcome.rows), 'row')} in {out / CSV_FILE}")
    if args.no_report:
        return 0
    report = out / REPORT_FILE
    if outcome.ran == 0 and report.is_file() and report.stat().st_mtime >= (out / CSV_FILE).stat().st_mtime:
        echo(f"report: {report} (nothing new ran, so it is as it was; --report-only rewrites it)")
        return 0
    return _report(out, args, plan.device)


def _dry_run(plan: SweepPlan, out: Path, *, skip_missing: bool) -> int:
    """``--dry-run``: the runs the sweep would make and which are done, refusing what a real run would refuse."""
    from ..sweep import check_models, check_resumable, none_can_load, pending_keys

    check_resumable(out, plan)
    pending = set(pending_keys(plan, out))
    # Those here are loaded (nothing is downloaded) and meet the real run's
    # checks: a size a model cannot see at is refused now, not after the plan.
    # With --skip-missing, one whose file is here but does not load (a corrupt
    # checkpoint) is left out, as the run would leave it out.
    specs = list(dict.fromkeys(k.model for k in plan.keys() if k in pending))
    here = {spec: weights_available(spec) for spec in specs}
    _, failed = check_models(plan, [spec for spec in specs if here[spec]], skip_unavailable=skip_missing)
    for spec, why in failed.items():
        status(left_out(spec, why))
    rows = [[k.model, k.mask_family, k.mode, k.k, k.seed, k.preset, k.max_steps,
             "done" if k not in pending else "left out" if k.model in failed else "to run"] for k in plan.keys()]
    pending -= {k for k in pending if k.model in failed}
    echo(format_table(["model", "masks", "mode", "K", "seed", "preset", "steps", "state"], rows))
    echo(f"\n{len(pending)} of {count(len(rows), 'run')} to do; results go to {out}/")
    missing = [spec for spec in specs if not here[spec]]
    if missing:
        why = {"bundled": "its pip package is not installed", "checkpoint": "no such file",
               "torchvision": "it downloads on first use; offline it cannot"}
        echo("no weights here yet for " + "; ".join(f"{spec} ({why.get(model_info(spec).source, 'not available')})" for spec in missing)
             + (": --skip-missing leaves out a model that cannot load (and a sweep with none that can is refused)."
                if skip_missing else ": a model that cannot load stops the sweep, unless --skip-missing leaves it out."))
    elif none_can_load(plan, failed):
        echo("No model of the sweep can load here, so the run would be refused.")
    return 0


class _SweepBar:
    """The sweep's progress bar, fed by :class:`SweepHooks`, and a line per run off a terminal.

    It counts work, not runs: a step costs about K masked copies, so a run
    weighs K x its step budget, and the ETA does not take a K = 62 run for a
    K = 2 one. A run that stops early hands back what it left.
    """

    def __init__(self, plan: SweepPlan, out: Path) -> None:
        self.plan, self.out = plan, out
        self.bar = None
        self.done = self.total = 0

    def hooks(self) -> SweepHooks:
        return SweepHooks(on_start=self.on_start, on_model=self.on_model, on_run_start=self.on_run_start,
                          on_step=self.on_step, on_run_end=self.on_run_end)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()

    @staticmethod
    def _work(key) -> int:
        return key.k * key.max_steps

    def _masks(self, key) -> str:  # "vstripes", or "vstripes/keep" when the sweep runs both modes
        return key.mask_family + (f"/{key.mode}" if len(self.plan.modes) > 1 else "")

    def _describe(self, text: str) -> None:
        self.bar.set_description_str(f"sweep, run {min(self.done + 1, self.total)}/{self.total} {text}")

    def on_start(self, finished, pending) -> None:
        self.done, self.total = len(finished), len(finished) + len(pending)
        self.bar = progress(sum(map(self._work, finished + pending)), "sweep", unit="copy-step",
                            initial=sum(map(self._work, finished)), counts=False)
        if finished:
            echo(f"resuming: {len(finished)} of {count(self.total, 'run')} already done in {self.out}/")

    def on_model(self, spec: str) -> None:
        self._describe(f"loading {spec}")

    def on_run_start(self, key, config) -> None:
        self.bar.set_postfix_str("", refresh=False)  # not the last run's step and success
        self._describe(f"{key.model} {self._masks(key)} K={key.k} s{key.seed}")

    def on_step(self, key, report) -> None:
        if report.step % 10 == 0 or report.done:
            # As generate's bar: this step's rate and the best so far (the one a run saves and its line reports).
            self.bar.set_postfix_str(f"step={report.step}, success={percent(report.success_rate, 0)}, "
                                     f"best={percent(report.best_success_rate, 0)}", refresh=False)
        self.bar.update(key.k)

    def on_run_end(self, key, row) -> None:
        self.done += 1
        self.bar.update(key.k * (key.max_steps - int(row["steps"])))  # the budget it did not need
        if not on_terminal():  # nohup, a log file: one line per run besides the bar's periodic line
            echo(f"[{self.done}/{self.total}] {key.model} {self._masks(key)} K={key.k} seed {key.seed}: "
                 f"{percent(float(row['success_rate']), 0)} in {row['steps']} steps, "
                 f"{duration(float(row['seconds']), tenths=True)}")


def _report(out: Path, args: argparse.Namespace, device: str | None = None) -> int:
    """Write report.html; its decision slices run on ``device`` (the sweep's
    own after a sweep, so a --study on a GPU slices there too), else --device, else the CPU."""

    bars: dict[str, object] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for b in bars.values():
                b.close()
            bars[stage] = progress(total, stage, unit="point")
        b = bars[stage]
        b.update(done - b.n)

    device = device or args.device or "cpu"
    resolution = report_slice_resolution(out, args.slice_resolution)
    try:
        written = build_report(out, slices=resolution > 0, slice_resolution=resolution,
                               device=device, on_progress=on_progress)
    except KeyboardInterrupt as err:
        for b in bars.values():
            b.close()
        again = f"python -m umask sweep --out {out} --report-only"  # with this report's own settings (its slices' are kept)
        if report_slice_resolution(out, None) != resolution:  # not kept (no sweep.json): say it again
            again += f" --slice-resolution {resolution}"
        if device != "cpu":
            again += f" --device {device}"
        status(f"umask: interrupted while writing the report; the runs and {CSV_FILE} are saved, "
               f"and '{again}' writes it.")
        return interrupt_code(err)
    finally:
        for b in bars.values():
            b.close()
    echo(f"report: {written.path}")
    if written.unreadable:
        status(f"note: {count(len(written.unreadable), 'run folder')} of {CSV_FILE} could not be read "
               f"({', '.join(written.unreadable)}); the report leaves out their images and says why.")
    return 0
