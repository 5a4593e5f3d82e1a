"""The benchmark behind BENCHMARKS.md: time to universal, step overhead, memory.

``python -m umask bench [--quick]`` runs it in one process. Contenders are
alternated (seed preset, then fast default, then the other way round for the
next seed) so that drift of a shared machine hits both alike. Speed goals live
here, in a benchmark, never in a timed test.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
import torch.nn.functional as F

from .config import Config
from .errors import UmaskError
from .masks import FAMILIES, layout, make_masks
from .models import STUDY_MODELS, Classifier, load_model
from .optimise import UniversalSearch
from .targets import choose_targets
from .text import change, count, percent
from .timing import timing_model

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BenchPlan:
    """What to run. ``full()`` is the issue's plan; ``quick()`` fits in 5 minutes on 2 cores."""

    ks: tuple[int, ...] = (10, 26, 62)
    families: tuple[str, ...] = ("grid", "hstripes")
    seeds: int = 5
    first_seed: int = 0  # seeds run are first_seed .. first_seed + seeds - 1 (split a plan across processes)
    preset_cap: int = 5000  # the study's own step budget
    preset_seeds: int | None = None  # run the (slow) study preset on the first N seeds only; None: all
    recipes: tuple[str, ...] = ("seed", "fast")  # the contenders run: a part may add one recipe's missing seeds
    fast_cap: int | None = None  # None: the fast preset's own budget
    overhead_models: tuple[str, ...] = ("efficientnet_lite0",) + STUDY_MODELS
    overhead_ks: tuple[int, ...] = (10, 62)
    overhead_steps: int = 20  # interleaved steps per contender; fewer is noise on a shared CPU
    memory_models: tuple[str, ...] = STUDY_MODELS
    streaming_steps: int = 150  # 0 skips the streaming table
    streaming_reps: int = 3

    def validate(self) -> None:
        """Raise now what would otherwise stop the benchmark an hour in.

        Raises:
            UmaskError: a count below its minimum, or a K that a mask family
                or a recipe cannot take (one sentence, as the CLI shows it).
        """
        for name, least in (("seeds", 1), ("first_seed", 0), ("preset_cap", 1), ("preset_seeds", 0), ("fast_cap", 1)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise UmaskError(f"--{name.replace('_', '-')} {value} is not allowed; give a whole number of {least} or more.")
        if self.first_seed + self.seeds - 1 >= 2**63:  # what torch's generators take; said before the first run, not after
            raise UmaskError(f"--first-seed {self.first_seed} with --seeds {self.seeds} reaches seed "
                             f"{self.first_seed + self.seeds - 1}, above 2^63 - 1; give a smaller --first-seed.")
        if not (self.ks and self.families and self.seeds) and not self.overhead_models and not self.memory_models \
                and not self.streaming_steps:
            # Writing its tables would replace BENCHMARKS.md with headings.
            raise UmaskError("This benchmark would measure nothing; drop one of --no-universal, --no-overhead, --no-streaming.")
        caps = {"seed": self.preset_cap, "fast": self.fast_cap}
        for k in self.ks:
            for family in self.families:
                layout(family, k, 64)  # K more than the family makes: its own sentence
                for recipe in self.recipes:
                    Config.preset(recipe, k=k, mask_family=family, **({"steps": caps[recipe]} if caps.get(recipe) else {}))
        for k in self.overhead_ks:
            layout("grid", k, 64)

    @classmethod
    def full(cls) -> "BenchPlan":
        return cls()

    @classmethod
    def quick(cls) -> "BenchPlan":
        return cls(
            ks=(10,),
            families=("grid", "hstripes"),
            seeds=1,
            preset_cap=600,
            overhead_models=("efficientnet_lite0", "resnet50", "mobilenet_v3_small"),
            overhead_ks=(10,),
            overhead_steps=8,
            memory_models=("mobilenet_v3_small",),
            streaming_steps=150,
            streaming_reps=1,
        )


@dataclass(frozen=True)
class RunTiming:
    """One time-to-universal run, as it appears in table 1."""

    preset: str
    k: int
    family: str
    seed: int
    steps: int
    seconds: float
    success_rate: float
    reached: bool  # 100 % on the saved 8-bit image


def time_to_universal(model: Classifier, preset: str, k: int, family: str, seed: int, cap: int | None) -> RunTiming:
    """One run of a preset until 100 % on the 8-bit image, or its cap."""
    overrides = dict(model=model.name, k=k, mask_family=family, seed=seed, snapshot_every=0)
    if cap is not None:
        overrides["steps"] = cap
    search = UniversalSearch(model, Config.preset(preset, **overrides))
    result = search.run()
    return RunTiming(preset, k, family, seed, result.steps, result.seconds, result.success_rate, search.succeeded)


def _bare_step_fn(model: Classifier, k: int, size: int = 64) -> Callable[[], None]:
    """A plain PyTorch loop on the same model and batch: forward, CE, backward, Adam, clamp."""
    masks = make_masks(layout("grid", k, size), "hide")
    targets = torch.tensor(choose_targets(k, seed=0))
    x = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)

    def step() -> None:
        loss = F.cross_entropy(model(masks * x), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 1)

    return step


def _umask_step_fn(model: Classifier, k: int, size: int = 64) -> Callable[[], None]:
    """umask's own step (no early stop, no snapshots) on the bare loop's arithmetic.

    The default config with the study's cross-entropy over all K masks, so both
    contenders differentiate the same batch and the difference is umask's own
    machinery (8-bit straight-through forward, success check, report, schedule).
    The default's focused loss differentiates only the losing masks, which
    makes its steps cheaper still once masks are won; table 1 counts that.
    """
    search = UniversalSearch(
        model, Config(model=model.name, k=k, size=size, steps=10**9, stop_at_success=False, snapshot_every=0, loss="ce")
    )
    stream = iter(search)
    return lambda: next(stream)


def step_overhead(model: Classifier, k: int, steps: int) -> dict:
    """Step time of umask vs the bare loop, interleaved step by step.

    ``umask_s`` and ``bare_s`` are each side's median; ``overhead`` is the
    median of the paired ratios (umask's step over the bare step run next to
    it), so a slow stretch of a shared machine hits both sides of a pair
    instead of moving one side's median.
    """
    umask_step, bare_step = _umask_step_fn(model, k), _bare_step_fn(model, k)
    umask_step(), bare_step()  # warm-up
    times: dict[str, list[float]] = {"umask": [], "bare": []}
    for i in range(steps):
        order = [("umask", umask_step), ("bare", bare_step)]
        for name, fn in order if i % 2 == 0 else reversed(order):
            started = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - started)
    u, b = statistics.median(times["umask"]), statistics.median(times["bare"])
    paired = statistics.median(x / y for x, y in zip(times["umask"], times["bare"]))
    return {"model": model.name, "k": k, "umask_s": u, "bare_s": b, "overhead": paired - 1}


_MEMORY_PROBE = """
import json, sys, torch
from umask.config import Config
from umask.models import RANDOM_WEIGHTS, torchvision_classifier
from umask.optimise import UniversalSearch
torch.set_num_threads({threads})
model = torchvision_classifier(sys.argv[1], RANDOM_WEIGHTS)
def high_water_kb():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child of
    # a big parent would report the parent's peak.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
before = high_water_kb()
stream = iter(UniversalSearch(model, Config(model=sys.argv[1], k=62, steps=3, stop_at_success=False, snapshot_every=0)))
for _ in stream: pass
after = high_water_kb()
print(json.dumps({{"model": sys.argv[1], "peak_mb": after / 1024, "model_mb": before / 1024}}))
"""


def peak_memory(arch: str) -> dict:
    """Peak resident memory of a K = 62 step on ``arch`` (random weights), in a fresh process."""
    code = _MEMORY_PROBE.format(threads=torch.get_num_threads())
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    out = subprocess.run([sys.executable, "-c", code, arch], capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _render_frame(job, model: Classifier, *, curves: bool) -> int:
    """What the Generate page's fragments build per poll: the two PNGs, the rows, the curves."""
    from .plots import run as plots

    snap = job.snapshot()
    probs = list(snap.target_probs) or [0.0] * len(job.targets)
    rows = [(model.categories[t], p) for t, p in zip(job.targets, probs)]
    size = len(plots.png_data_uri(plots.render_parts(snap.image, job.labels)))
    size += len(plots.png_data_uri(plots.render_part_probs(job.labels, [p for _, p in rows])))
    if curves:
        size += sum(len(f.to_json()) for f in (plots.loss_figure(snap.steps, snap.losses), plots.success_figure(snap.steps, snap.success_rates)))
    return size


def streaming_overhead(model: Classifier, *, k: int = 10, steps: int = 100, reps: int = 3, poll_s: float = 2.0,
                       in_worker: bool = True) -> list[dict]:
    """The same job alone vs with a consumer doing the dashboard's redraw work every ``poll_s``.

    As in the dashboard, the search runs in a warm worker process
    (``in_worker=False``: in a thread of this process) at this process's torch
    thread count, and the consumer here. Interleaved (alone, consumed,
    alone, ...); the figure is the median steps/s.
    """
    from .jobs import STOP_GRACE_S, Job
    from .workers import WorkerPool

    config = Config(model=model.name, k=k, steps=steps, stop_at_success=False, snapshot_every=1)
    pool = WorkerPool(max_idle=1, threads=torch.get_num_threads()) if in_worker else None
    job = None
    try:
        _render_frame(Job(model, config), model, curves=True)  # warm plotly's imports
        if pool is not None:
            job = Job(model, config.replace(steps=3), pool=pool).start()  # a warm worker holding the model
            job.wait()
        rates: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(reps):
            for consumed in (False, True):
                job = Job(model, config, pool=pool, idle_timeout=None)  # the unwatched one must not stop itself
                job.start()
                polls = 0
                while consumed and job.alive:
                    _render_frame(job, model, curves=polls % 2 == 0)  # curves on every second poll, as the page
                    polls += 1
                    time.sleep(poll_s)
                job.wait()
                snap = job.snapshot()
                if snap.state != "finished":  # a rate of a run that failed would be no figure at all
                    raise UmaskError(f"The streaming measurement's run ended {snap.state} "
                                     f"({(snap.error or 'no error given').rstrip('.')}); no overhead can be measured.")
                rates[consumed].append(snap.step / snap.elapsed_s)
    finally:
        # Interrupted mid-run (Ctrl-C): the run ends and gives its worker back
        # before this returns. Left to the interpreter's exit, a job thread
        # still in torch could abort the process ("terminate called ...").
        if job is not None and job.alive:
            job.stop()
            job.wait(STOP_GRACE_S + 5)  # past the grace, the job ends its worker itself
        if pool is not None:
            pool.close()
    alone, consumed = statistics.median(rates[False]), statistics.median(rates[True])
    where = "worker process" if in_worker else "thread"
    return [
        {"name": f"job alone ({where})", "steps": steps, "seconds": steps / alone},
        {"name": f"job + dashboard consumer (every {poll_s:g} s)", "steps": steps, "seconds": steps / consumed,
         "overhead": alone / consumed - 1},
    ]


@dataclass
class BenchReport:
    plan: BenchPlan
    machine: dict
    runs: list[RunTiming] = field(default_factory=list)
    overhead: list[dict] = field(default_factory=list)
    memory: list[dict] = field(default_factory=list)
    streaming: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    parts: int = 1  # bench --merge: how many side-by-side runs this report joins
    timing_parts: int = 0  # of those, how many timed runs to universal (table 1)
    lone_parts: int = 0  # and of these, how many timed a contender with no run of the other beside it


def machine_info() -> dict:
    return {
        "cpu": _cpu_name(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "device": "cpu",  # every measurement runs on the CPU, GPU or not
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_bench(plan: BenchPlan, *, progress: Progress | None = None,
              checkpoint: Callable[[BenchReport], None] | None = None) -> BenchReport:
    """Run the whole plan.

    ``progress`` receives one line per finished item; ``checkpoint`` receives
    the report after each item (``bench --json`` saves it there, so a killed
    benchmark keeps what it measured).
    """
    plan.validate()  # before the first measurement, not when the loop reaches a bad K
    say = progress or (lambda line: log.info(line))
    report = BenchReport(plan=plan, machine=machine_info())
    started = time.perf_counter()

    def done(line: str) -> None:
        report.seconds = time.perf_counter() - started
        say(line)
        if checkpoint is not None:
            checkpoint(report)

    model = load_model("efficientnet_lite0")
    for k in plan.ks:
        for family in plan.families:
            for i, seed in enumerate(range(plan.first_seed, plan.first_seed + plan.seeds)):
                contenders = [(name, cap) for name, cap in (("seed", plan.preset_cap), ("fast", plan.fast_cap))
                              if name in plan.recipes and not (name == "seed" and plan.preset_seeds is not None
                                                               and i >= plan.preset_seeds)]
                for preset, cap in contenders if seed % 2 == 0 else reversed(contenders):
                    run = time_to_universal(model, preset, k, family, seed, cap)
                    report.runs.append(run)
                    done(f"time to universal: {preset} K={k} {family} seed={seed}: {run.steps} steps, {run.seconds:.1f} s, {percent(run.success_rate, 0)}")
    for arch in plan.overhead_models:
        net, _ = timing_model(arch)  # real weights where here, else random: the same cost per step
        for k in plan.overhead_ks:
            row = step_overhead(net, k, plan.overhead_steps)
            report.overhead.append(row)
            done(f"step overhead: {arch} K={k}: umask {row['umask_s']*1000:.0f} ms vs bare {row['bare_s']*1000:.0f} ms ({change(row['overhead'])})")
    for arch in plan.memory_models:
        row = peak_memory(arch)
        report.memory.append(row)
        done(f"peak memory K=62 {arch}: {row['peak_mb']:.0f} MB")
    if plan.streaming_steps:
        report.streaming = streaming_overhead(model, steps=plan.streaming_steps, reps=plan.streaming_reps)
        row = report.streaming[-1]
        done(f"streaming overhead: {row['name']}: {change(row['overhead'])}")
    report.seconds = time.perf_counter() - started
    return report


def report_to_json(report: BenchReport) -> dict:
    """The report as plain JSON (``bench --json``), readable by :func:`report_from_json`."""
    timing, lone = _part_counts(report)
    return {
        "plan": dataclasses.asdict(report.plan),
        "machine": report.machine,
        "runs": [dataclasses.asdict(r) for r in report.runs],
        "overhead": report.overhead,
        "memory": report.memory,
        "streaming": report.streaming,
        "seconds": report.seconds,
        "parts": report.parts,
        "timing_parts": timing,
        "lone_parts": lone,
    }


_MACHINE_KEYS = ("cpu", "cores", "torch", "threads", "python")


_NUMBER = (int, float)
#: The fields of each table's rows in a ``bench --json`` part, and their types:
#: a part edited by hand must fail here, in one sentence, not as a traceback
#: in the middle of writing BENCHMARKS.md.
_ROW_FIELDS = {
    "runs": {"preset": str, "k": int, "family": str, "seed": int, "steps": int, "seconds": _NUMBER,
             "success_rate": _NUMBER, "reached": bool},
    "overhead": {"model": str, "k": int, "umask_s": _NUMBER, "bare_s": _NUMBER, "overhead": _NUMBER},
    "memory": {"model": str, "peak_mb": _NUMBER, "model_mb": _NUMBER},
    "streaming": {"name": str, "steps": int, "seconds": _NUMBER},
}


def _typed(value, kind) -> bool:
    """``isinstance`` where a JSON true/false is no number."""
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def report_from_json(data: dict) -> BenchReport:
    """A report from :func:`report_to_json`'s output.

    Raises:
        KeyError: the top-level entry missing or malformed; TypeError,
            ValueError: deeper entries (``bench --merge`` turns either into one
            sentence naming the file).
    """
    if not isinstance(data, dict):
        raise TypeError("not a JSON object")
    machine = data["machine"]
    if not isinstance(machine, dict) or any(key not in machine for key in _MACHINE_KEYS):
        raise KeyError("machine")
    if not _typed(data["seconds"], _NUMBER):
        raise KeyError("seconds")
    for key in ("parts", "timing_parts", "lone_parts"):
        if key in data and not _typed(data[key], int):
            raise KeyError(key)
    for key, fields in _ROW_FIELDS.items():
        if not isinstance(data[key], list) or not all(isinstance(row, dict) for row in data[key]):
            raise KeyError(key)
        for row in data[key]:
            if key == "streaming" and isinstance(row.get("overhead"), str):  # parts before 2026-11-28: "+4.0%"
                row["overhead"] = float(row["overhead"].rstrip(" %")) / 100
            if any(not _typed(row.get(name), kind) for name, kind in fields.items()) \
                    or ("overhead" in row and not _typed(row["overhead"], _NUMBER)):
                raise KeyError(key)
    plan = data["plan"]
    plan = BenchPlan(**{k: tuple(v) if isinstance(v, list) else v for k, v in plan.items()})
    return BenchReport(plan=plan, machine=data["machine"], runs=[RunTiming(**r) for r in data["runs"]],
                       overhead=data["overhead"], memory=data["memory"], streaming=data["streaming"],
                       seconds=data["seconds"], parts=data.get("parts", 1), timing_parts=data.get("timing_parts", 0),
                       lone_parts=data.get("lone_parts", 0))


def _part_counts(report: BenchReport) -> tuple[int, int]:
    """(parts that timed runs to universal, those of them that timed a
    contender alone: one recipe only, or the preset on the first seeds only)."""
    if report.parts > 1:
        return report.timing_parts, report.lone_parts
    plan = report.plan
    if not report.runs:
        return 0, 0
    lone = len(plan.recipes) == 1 or (plan.preset_seeds is not None and plan.preset_seeds < plan.seeds)
    return 1, int(lone)


def merge_reports(reports: list[BenchReport]) -> BenchReport:
    """One report from parts run in separate processes (``bench --merge``).

    Runs and rows are concatenated in the order given; the plan lists every K
    and mask family that any part ran, and ``seconds`` is the parts' sum.
    """
    if not reports:
        raise UmaskError("nothing to merge: give at least one bench --json file")
    first = reports[0]
    ks = sorted({r.k for rep in reports for r in rep.runs})
    families = [f for f in FAMILIES if any(r.family == f for rep in reports for r in rep.runs)]
    seeds = len({r.seed for rep in reports for r in rep.runs})
    caps = {rep.plan.preset_cap for rep in reports if rep.runs}
    if len(caps) > 1:
        raise UmaskError(f"the parts capped the study preset differently ({sorted(caps)}): merge parts with one cap")
    # Parts may run the preset on some seeds only: each row's count says how many.
    plan = dataclasses.replace(first.plan, ks=tuple(ks), families=tuple(families), seeds=seeds, first_seed=0,
                               preset_seeds=None, recipes=("seed", "fast"), preset_cap=caps.pop() if caps else first.plan.preset_cap)
    timing, lone = (sum(column) for column in zip(*(_part_counts(rep) for rep in reports)))
    merged = BenchReport(plan=plan, machine=first.machine, seconds=sum(rep.seconds for rep in reports),
                         parts=sum(rep.parts for rep in reports), timing_parts=timing, lone_parts=lone)
    for rep in reports:
        merged.runs += rep.runs
        merged.overhead += rep.overhead
        merged.memory += rep.memory
        merged.streaming += rep.streaming
    return merged


def _steps_by_seed(runs: list[RunTiming]) -> str:
    """"0: 114, 1: 5000 (92%)"; a seed run again with the same outcome (steps
    are deterministic on the CPU) shows once with its count: "0: 114 (x3)"."""
    by_seed: dict[int, list[str]] = {}
    for r in runs:
        by_seed.setdefault(r.seed, []).append(f"{r.steps}" + ("" if r.reached else f" ({percent(r.success_rate, 0)})"))
    parts = []
    for seed, outcomes in by_seed.items():
        same = len(set(outcomes)) == 1
        parts.append(f"{seed}: " + (outcomes[0] + (f" (x{len(outcomes)})" if len(outcomes) > 1 else "") if same
                                    else " / ".join(outcomes)))
    return ", ".join(parts)


def _median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


#: The first line of every report :func:`to_markdown` writes (how bench knows its own file).
REPORT_HEADING = "# Benchmarks"


def to_markdown(report: BenchReport, *, command: str = "python -m umask bench", notes: str | None = None) -> str:
    """BENCHMARKS.md: the tables, the machine, how the numbers were made, and
    ``notes`` (markdown, e.g. what the figures mean for the issue's targets)
    under "Notes" at the end."""
    m, p = report.machine, report.plan
    lines = [
        REPORT_HEADING,
        "",
        f"Written by `{command}` on {m['cpu']}, "
        f"{m['cores']} cores, " + (f"on the CPU ({m['gpu']} present, unused)" if m.get("gpu") else "no GPU")
        + f"; torch {m['torch']}, {count(m['threads'], 'torch thread')} "
        f"per process, Python {m['python']}. "
        + (f"Merged from {report.parts} parts (`bench --json`) run side by side, {report.seconds / 60:.0f} min of "
           f"benchmark time in all." if report.parts > 1 else f"The whole run took {report.seconds / 60:.0f} min."),
    ]
    if p.ks:
        by_cell: dict[tuple, list[RunTiming]] = {}
        for r in sorted(report.runs, key=lambda r: r.seed):
            by_cell.setdefault((r.k, r.family, r.preset), []).append(r)
        counts = {len(rs) for rs in by_cell.values()}
        if len(p.recipes) == 1:
            seeds = f"{p.seeds} seed(s) each, the {'study preset' if p.recipes[0] == 'seed' else 'default'} only"
        elif p.preset_seeds is not None:
            seeds = f"{p.seeds} seed(s) each (the preset on the first {p.preset_seeds} only)"
        elif len(counts) == 1:
            seeds = f"{counts.pop()} run(s) of each contender per row"
        else:
            seeds = "the runs of each row are counted under \"reached 100 %\" and listed below"
        timing, lone = _part_counts(report)
        if not lone:
            seeds += "; the two contenders alternate run by run"
        elif timing > 1:
            seeds += (f"; the two contenders alternate run by run within a part, but {lone} of the {timing} "
                      "parts timed one contender alone (see the notes)")
        lines += [
            "",
            "## 1. Time to universal (bundled EfficientNet-Lite0, 64 x 64, hide, fill 0)",
            "",
            f"Until every mask hits its target on the saved 8-bit image. Study preset (SGD lr 0.1) capped at "
            f"{p.preset_cap} steps; a capped run counts at its cap and reports its success rate; {seeds}. "
            "Speed-up: the preset's median wall time over the default's.",
            "",
            "| K | masks | preset | reached 100 % | median steps | median s | worst s | median success | speed-up (median s) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for k in p.ks:
            for family in p.families:
                rows = {pr: by_cell.get((k, family, pr), []) for pr in ("seed", "fast")}
                seed_median = _median(r.seconds for r in rows["seed"])
                for preset in ("seed", "fast"):
                    rs = rows[preset]
                    if not rs:
                        continue
                    med = _median(r.seconds for r in rs)
                    # Two decimals: a ratio just under a target must not round up to it.
                    speed = f"{seed_median / med:.2f}x" if preset == "fast" and med > 0 and rows["seed"] else ""
                    lines.append(
                        f"| {k} | {family} | {preset} | {sum(r.reached for r in rs)}/{len(rs)} | {_median(r.steps for r in rs):.0f} | "
                        f"{med:.1f} | {max(r.seconds for r in rs):.1f} | {_median(r.success_rate for r in rs):.2f} | {speed} |"
                    )
        lines += ["", "Steps of each run, by seed (a capped run shows its success rate):", ""]
        for k in p.ks:
            for family in p.families:
                for preset in ("seed", "fast"):
                    rs = by_cell.get((k, family, preset))
                    if rs:
                        lines.append(f"- K = {k} {family}, {preset}: {_steps_by_seed(rs)}")
    if report.overhead:
        lines += [
            "",
            "## 2. Step overhead: umask's step vs a bare PyTorch loop",
            "",
            "Same model, same K masked 64 x 64 copies: forward, loss, backward, update, clamp. Random weights for the "
            f"torchvision architectures (timing only). {p.overhead_steps} interleaved steps of each; ms/step: each "
            "side's median; overhead: the median of the paired ratios (each umask step over the bare step beside it).",
            "",
            "| model | K | umask ms/step | bare ms/step | overhead |",
            "|---|---|---|---|---|",
        ]
        for row in report.overhead:
            lines.append(f"| {row['model']} | {row['k']} | {row['umask_s'] * 1000:.0f} | {row['bare_s'] * 1000:.0f} | {change(row['overhead'])} |")
    if report.memory:
        lines += [
            "",
            "## Peak memory, K = 62 (CPU, peak resident set of a fresh process; random weights)",
            "",
            "| model | peak MB | before the first step MB (torch + model) |",
            "|---|---|---|",
        ]
        for row in report.memory:
            lines.append(f"| {row['model']} | {row['peak_mb']:.0f} | {row['model_mb']:.0f} |")
    if report.streaming:
        lines += ["", "## 3. Streaming overhead: the same run with and without the dashboard's consumer", ""]
        lines += ["| run | steps | s | s/step | overhead |", "|---|---|---|---|---|"]
        for row in report.streaming:
            lines.append(f"| {row['name']} | {row['steps']} | {row['seconds']:.1f} | {row['seconds'] / row['steps']:.3f} | "
                         f"{change(row['overhead']) if 'overhead' in row else ''} |")
    if notes:
        lines += ["", "## Notes", "", notes.strip()]
    return "\n".join(lines) + "\n"
