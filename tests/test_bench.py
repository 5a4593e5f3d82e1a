"""The benchmark's machinery (not its speed: that lives in BENCHMARKS.md)."""

import dataclasses
import json
from pathlib import Path

import pytest

from umask.bench import BenchPlan, BenchReport, machine_info, step_overhead, time_to_universal, to_markdown
from umask.config import Config
from umask.errors import UmaskError
from umask.evaluate import classify_masked
from umask.optimise import UniversalSearch


def test_time_to_universal_reports_a_run(tiny):
    run = time_to_universal(tiny, "fast", 3, "hstripes", 0, cap=300)
    assert run.reached and run.success_rate == 1.0 and 0 < run.steps < 300 and run.seconds > 0
    capped = time_to_universal(tiny, "seed", 3, "hstripes", 0, cap=2)
    assert capped.steps == 2 and not capped.reached
    # A capped run reports the success rate of its best image, as saved (here 2 of 3 masks).
    partial = time_to_universal(tiny, "fast", 3, "hstripes", 0, cap=5)
    best = UniversalSearch(tiny, Config.preset("fast", model="tiny", k=3, mask_family="hstripes", seed=0, steps=5)).run()
    check = classify_masked(tiny, best.image, best.masks, targets=best.targets)
    assert (partial.steps, partial.reached) == (5, False)
    assert partial.success_rate == sum(p == t for p, t in zip(check.predictions, best.targets)) / 3 == 2 / 3


def test_step_overhead_times_the_same_work(tiny):
    """Both contenders run one forward + backward per step of the same masked batch."""
    from umask import bench
    from umask.masks import layout, make_masks

    fed = []
    hook = tiny.register_forward_pre_hook(lambda module, args: fed.append(args[0].detach().clone()))
    grads = []
    tiny.net[0].register_full_backward_hook(lambda module, grad_in, grad_out: grads.append(1))
    try:
        batches = {}
        for name, make in (("umask", bench._umask_step_fn), ("bare", bench._bare_step_fn)):
            step = make(tiny, 4)
            step()  # warm-up, as step_overhead does
            fed.clear(), grads.clear()
            step()
            assert len(fed) == 1 and len(grads) == 1, name  # one forward, one backward: no extra pass on either side
            batches[name] = fed[0]
    finally:
        hook.remove()
    hidden = (make_masks(layout("grid", 4, 64), "hide") == 0).expand(4, 3, 64, 64)
    for name, batch in batches.items():
        # The same four masks, fill 0 (a few visible pixels may sit on the box's 0 too).
        assert batch.shape == (4, 3, 64, 64) and (batch[hidden] == 0).all(), name
        assert (batch[~hidden] != 0).float().mean() > 0.9, name
    row = step_overhead(tiny, 4, steps=3)
    assert row["model"] == "tiny" and row["k"] == 4 and row["umask_s"] > 0 and row["bare_s"] > 0


def test_markdown_tables(tiny):
    plan = dataclasses.replace(BenchPlan.quick(), ks=(3,), families=("hstripes",))
    report = BenchReport(plan=plan, machine=machine_info())
    report.runs = [time_to_universal(tiny, p, 3, "hstripes", 0, cap=200) for p in ("seed", "fast")]
    report.overhead = [step_overhead(tiny, 3, steps=2)]
    text = to_markdown(report)
    assert "| 3 | hstripes | seed |" in text and "| 3 | hstripes | fast |" in text
    assert "| tiny | 3 |" in text and "torch thread" in text
    # `bench --no-universal` (no K): only the tables that ran.
    overhead_only = BenchReport(plan=dataclasses.replace(plan, ks=()), machine=machine_info(), overhead=report.overhead)
    text = to_markdown(overhead_only)
    assert "Time to universal" not in text and "| tiny | 3 |" in text
    assert "Step overhead" not in to_markdown(BenchReport(plan=plan, machine=machine_info(), runs=report.runs))
    # The machine line never claims "no GPU" on a machine that has one (the bench runs on the CPU either way).
    for gpu, said in ((None, "no GPU"), ("NVIDIA H100", "on the CPU (NVIDIA H100 present, unused)")):
        machine = dict(machine_info(), gpu=gpu)
        assert f"cores, {said}; torch" in to_markdown(BenchReport(plan=plan, machine=machine, runs=report.runs))


@pytest.mark.parametrize("in_worker", [True, False])
def test_streaming_overhead_runs_the_same_job_with_and_without_a_consumer(tiny, in_worker):
    from umask.bench import streaming_overhead

    alone, consumed = streaming_overhead(tiny, k=3, steps=8, reps=1, poll_s=0.001, in_worker=in_worker)
    assert alone["name"] == f"job alone ({'worker process' if in_worker else 'thread'})"
    assert alone["steps"] == consumed["steps"] == 8
    assert alone["seconds"] > 0 and consumed["seconds"] > 0
    # The overhead is the time the consumer adds to the same steps.
    assert consumed["overhead"] == pytest.approx(consumed["seconds"] / alone["seconds"] - 1)


def test_a_streaming_run_that_fails_is_one_sentence_not_a_rate():
    from umask.bench import streaming_overhead

    from .conftest import failing_classifier

    broken = failing_classifier(RuntimeError("a broken layer"))
    with pytest.raises(UmaskError, match=r"The streaming measurement's run ended failed \(The optimisation failed: "
                                         r"RuntimeError: a broken layer\); no overhead can be measured."):
        streaming_overhead(broken, k=3, steps=8, reps=1, poll_s=0.001, in_worker=False)


def test_preset_seeds_limits_the_slow_contender(tiny, monkeypatch):
    import umask.bench as bench

    calls = []
    monkeypatch.setattr(bench, "load_model", lambda name: tiny)
    monkeypatch.setattr(bench, "time_to_universal", lambda model, preset, k, family, seed, cap: calls.append((preset, seed))
                        or bench.RunTiming(preset, k, family, seed, 10, 1.0, 1.0, True))
    plan = BenchPlan(ks=(3,), families=("grid",), seeds=3, preset_seeds=1, overhead_models=(), memory_models=(),
                     streaming_steps=0)
    report = bench.run_bench(plan)
    assert sorted(calls) == [("fast", 0), ("fast", 1), ("fast", 2), ("seed", 0)]
    assert "(the preset on the first 1 only)" in to_markdown(report)
    # No preset runs at all: the fast rows stand alone, with no speed-up to claim.
    report.runs = [r for r in report.runs if r.preset == "fast"]
    assert "| 3 | grid | fast | 3/3 | 10 | 1.0 | 1.0 | 1.00 |  |" in to_markdown(report)
    # One recipe alone: a part that adds the preset's missing seeds.
    calls.clear()
    report = bench.run_bench(dataclasses.replace(plan, recipes=("seed",), preset_seeds=None, first_seed=3, seeds=2))
    assert calls == [("seed", 3), ("seed", 4)] and "2 seed(s) each, the study preset only" in to_markdown(report)


def test_parts_run_side_by_side_merge_into_one_table(tiny, monkeypatch, tmp_path):
    """`bench --first-seed/--masks --json` parts, then `bench --merge`: one table, every run once."""
    import json

    import umask.bench as bench
    from umask.cli import main

    monkeypatch.setattr(bench, "load_model", lambda name: tiny)
    monkeypatch.setattr(bench, "time_to_universal", lambda model, preset, k, family, seed, cap:
                        bench.RunTiming(preset, k, family, seed, 100 if preset == "seed" else 10 + seed,
                                        10.0 if preset == "seed" else 1.0 + seed, 1.0, True))
    common = ["bench", "--k", "3", "--no-overhead", "--no-streaming"]
    assert main([*common, "--masks", "grid", "--seeds", "2", "--json", str(tmp_path / "a.json"), "--out", str(tmp_path / "a.md")]) == 0
    assert main([*common, "--masks", "grid", "--seeds", "1", "--first-seed", "2",
                 "--json", str(tmp_path / "b.json"), "--out", str(tmp_path / "b.md")]) == 0
    part = json.loads((tmp_path / "b.json").read_text())
    assert [(r["preset"], r["seed"]) for r in part["runs"]] == [("seed", 2), ("fast", 2)]
    assert "Streaming" not in (tmp_path / "b.md").read_text()

    out = tmp_path / "BENCHMARKS.md"
    # The same part twice would count its runs twice: refused.
    assert main(["bench", "--merge", str(tmp_path / "a.json"), str(tmp_path / "a.json"), "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["bench", "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(out)]) == 0
    text = out.read_text()
    # Three seeds of each contender; the fast median is seed 1's 2.0 s against the preset's 10.0 s.
    assert "| 3 | grid | seed | 3/3 | 100 | 10.0 | 10.0 | 1.00 |  |" in text
    assert "| 3 | grid | fast | 3/3 | 11 | 2.0 | 3.0 | 1.00 | 5.00x |" in text
    assert "Merged from 2 parts" in text and "- K = 3 grid, fast: 0: 10, 1: 11, 2: 12" in text
    assert "3 run(s) of each contender per row; the two contenders alternate run by run." in text
    # Hand-written notes go under "Notes", so the merge writes the whole file again.
    notes = tmp_path / "notes.md"
    notes.write_text("- The preset is slow.\n")
    assert main(["bench", "--merge", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--notes", str(notes),
                 "--out", str(out)]) == 0
    assert out.read_text().endswith("## Notes\n\n- The preset is slow.\n")
    # A part run again (same seeds, another file): its steps show once per seed, with the count.
    (tmp_path / "a2.json").write_bytes((tmp_path / "a.json").read_bytes())
    assert main(["bench", "--merge", str(tmp_path / "a.json"), str(tmp_path / "a2.json"), "--out", str(out)]) == 0
    assert "- K = 3 grid, fast: 0: 10 (x2), 1: 11 (x2)" in out.read_text()
    # A part that timed one contender alone: the table does not claim they alternated there.
    assert main([*common, "--masks", "grid", "--seeds", "1", "--first-seed", "2", "--recipes", "fast",
                 "--json", str(tmp_path / "c.json"), "--out", str(tmp_path / "c.md")]) == 0
    assert "alternate" not in (tmp_path / "c.md").read_text()
    assert main(["bench", "--merge", str(tmp_path / "a.json"), str(tmp_path / "c.json"), "--out", str(out)]) == 0
    assert ("the two contenders alternate run by run within a part, but 1 of the 2 parts timed one contender alone"
            in out.read_text())
    assert bench._steps_by_seed([bench.RunTiming("fast", 3, "grid", 0, 10, 1.0, 1.0, True),
                                 bench.RunTiming("fast", 3, "grid", 0, 12, 1.0, 1.0, True)]) == "0: 10 / 12"


def test_merge_refuses_what_is_not_a_bench_part(tmp_path, capsys):
    from umask.cli import main

    bad = tmp_path / "bad.json"
    bad.write_text('{"runs": []}')
    assert main(["bench", "--merge", str(bad), "--out", str(tmp_path / "x.md")]) != 0
    err = capsys.readouterr().err
    assert "is not a bench --json file (its 'machine' is missing or malformed)." in err and "Traceback" not in err
    # Right keys, hollow values: still one sentence, before any table is written.
    part = {"plan": {}, "machine": {}, "runs": [], "overhead": [], "memory": [], "streaming": [], "seconds": 1.0}
    for change, named in (({}, "machine"), ({"machine": {k: 1 for k in ("cpu", "cores", "torch", "threads", "python")},
                                            "seconds": "a"}, "seconds")):
        bad.write_text(json.dumps({**part, **change}))
        assert main(["bench", "--merge", str(bad), "--out", str(tmp_path / "x.md")]) == 2
        err = capsys.readouterr().err
        assert err.strip().endswith(f"is not a bench --json file (its '{named}' is missing or malformed).")
    machine = {k: 1 for k in ("cpu", "cores", "torch", "threads", "python")}
    run = {"preset": "fast", "k": 2, "family": "grid", "seed": 0, "steps": 3, "seconds": 1.5, "success_rate": 1.0,
           "reached": True}
    # Rows of the wrong shape or type, as a hand edit leaves them: each said in one sentence, naming its table.
    for edit, named in (({"streaming": [1]}, "streaming"), ({"memory": [1]}, "memory"),
                        ({"overhead": [{"x": 1}]}, "overhead"), ({"streaming": [None]}, "streaming"),
                        ({"parts": "x"}, "parts"), ({"runs": [{**run, "k": "2"}]}, "runs"),
                        ({"runs": [{**run, "seconds": "x"}]}, "runs"), ({"runs": [{**run, "steps": None}]}, "runs"),
                        ({"runs": [{**run, "reached": 1}]}, "runs")):
        bad.write_text(json.dumps({**part, "machine": machine, **edit}))
        assert main(["bench", "--merge", str(bad), "--out", str(tmp_path / "x.md")]) == 2, edit
        assert capsys.readouterr().err.strip().endswith(f"is not a bench --json file (its '{named}' is missing or malformed).")
    # A device or a pipe would be read forever: refused before a byte is read.
    for option, given in (("--merge", "/dev/zero"), ("--notes", "/dev/zero")):
        args = ["bench", "--merge", "/dev/zero"] if option == "--merge" else ["bench", "--merge", str(bad), "--notes", given]
        assert main([*args, "--out", str(tmp_path / "x.md")]) == 2
        assert f"bench {option}: /dev/zero is not a plain file (a device or a pipe)" in capsys.readouterr().err
    # JSON nested past the recursion limit, or an integer of thousands of digits: not JSON this reads.
    for text in ("[" * 100_000 + "]" * 100_000, '{"seconds": ' + "9" * 5000 + "}"):
        bad.write_text(text)
        assert main(["bench", "--merge", str(bad), "--out", str(tmp_path / "x.md")]) == 2
        assert capsys.readouterr().err.strip().endswith("is not a bench --json file (it does not hold what bench --json writes).")
    assert not (tmp_path / "x.md").exists()
    (tmp_path / "part.json").write_text("{}")
    assert main(["bench", "--merge", str(tmp_path / "part.json"), "--out", str(tmp_path / "part.json")]) == 2
    assert "is what this command reads" in capsys.readouterr().err and (tmp_path / "part.json").read_text() == "{}"
    assert main(["bench", "--merge", str(tmp_path / "missing.json"), "--out", str(tmp_path / "x.md")]) != 0
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "adir").mkdir()
    assert main(["bench", "--merge", str(tmp_path / "adir"), "--out", str(tmp_path / "adir" / "x.md")]) != 0  # a folder
    err = capsys.readouterr().err
    assert err.strip() == f"umask: error: bench --merge: {tmp_path / 'adir'} is a folder; give the JSON files written by bench --json."
    assert not (tmp_path / "adir" / "x.md").exists()
    # Options of a run do nothing when merging: said, not ignored.
    (tmp_path / "part.json").write_text("{}")
    assert main(["bench", "--merge", str(tmp_path / "part.json"), "--quick", "--k", "5", "--out", str(tmp_path / "x.md")]) == 2
    assert capsys.readouterr().err.strip().endswith("so --quick, --k would do nothing; drop them.")
    assert main(["bench", "--merge", str(tmp_path / "part.json"), "--first-seed", "0", "--out", str(tmp_path / "x.md")]) == 2
    assert capsys.readouterr().err.strip().endswith("so --first-seed would do nothing; drop it.")  # 0 is given, not absent


def test_bench_checks_where_it_writes_before_measuring(tmp_path, capsys):
    from umask.cli import main

    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 2  # a folder: refused at once, nothing measured
    assert "is a folder; give a file path" in capsys.readouterr().err
    assert main(["bench", "--quick", "--json", str(tmp_path), "--out", str(tmp_path / "b.md")]) == 2
    assert "is a folder; give a file path" in capsys.readouterr().err
    # One file for both: the tables would overwrite the measurements.
    assert main(["bench", "--quick", "--json", str(tmp_path / "b.md"), "--out", str(tmp_path / "b.md")]) == 2
    assert capsys.readouterr().err == (f"umask: error: --json and --out both name '{tmp_path / 'b.md'}'; the measurements "
                                       "and the tables need two files.\n")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--k", "10", "100"], "K = 100 is more parts than 'hstripes' can make on a 64x64 image; the most is 64."),
        (["--k", "1"], "K = 1 is too small"),
        (["--seeds", "0"], "--seeds 0 is not allowed; give a whole number of 1 or more."),
        (["--first-seed", str(2**63 - 1), "--seeds", "2"], f"--first-seed {2**63 - 1} with --seeds 2 reaches seed {2**63}, "
                                                            "above 2^63 - 1; give a smaller --first-seed."),
        (["--preset-cap", "0"], "--preset-cap 0 is not allowed"),
        (["--first-seed", "-1"], "--first-seed -1 is not allowed"),
        (["--no-universal", "--no-overhead", "--no-streaming"], "This benchmark would measure nothing; drop one of"),
    ],
)
def test_a_bad_plan_is_refused_before_anything_is_measured(tmp_path, capsys, monkeypatch, argv, message):
    import umask.bench as bench
    from umask.cli import main

    monkeypatch.setattr(bench, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    assert main(["bench", *argv, "--out", str(tmp_path / "b.md")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "b.md").exists()


def test_bench_replaces_its_own_reports_but_not_other_files(tmp_path, capsys):
    from umask.cli import main

    part = Path(__file__).parent.parent / "benchmarks" / "2026-11-26" / "k10-grid.json"
    mine = tmp_path / "notes.md"
    mine.write_text("precious\n")
    assert main(["bench", "--merge", str(part), "--out", str(mine)]) == 2
    assert capsys.readouterr().err.endswith("already exists; give another path, or add --overwrite to replace it.\n")
    assert mine.read_text() == "precious\n"
    assert main(["bench", "--merge", str(part), "--out", str(mine), "--overwrite"]) == 0
    assert mine.read_text().startswith("# Benchmarks\n")
    assert main(["bench", "--merge", str(part), "--out", str(mine)]) == 0  # its own report: replaced, as BENCHMARKS.md is


def test_repeated_k_and_masks_are_measured_once(tmp_path, monkeypatch):
    import umask.cli.bench as bench_cli
    from umask.cli import main

    plans = []

    def record(plan, **kwargs):
        plans.append(plan)
        raise KeyboardInterrupt  # enough: the plan is what is checked

    monkeypatch.setattr(bench_cli, "run_bench", record)
    assert main(["bench", "--k", "2", "2", "10", "--masks", "grid", "grid", "--out", str(tmp_path / "b.md")]) == 130
    assert plans[0].ks == (2, 10) and plans[0].families == ("grid",)


def test_a_part_from_before_the_overhead_was_a_number_still_merges():
    """benchmarks/2026-11-26/overhead.json kept the streaming overhead as text ("+4.0%")."""
    from umask.bench import report_from_json, to_markdown

    path = Path(__file__).parent.parent / "benchmarks" / "2026-11-26" / "overhead.json"
    report = report_from_json(json.loads(path.read_text()))
    assert report.streaming[1]["overhead"] == pytest.approx(0.04)
    assert "| job + dashboard consumer (every 2 s) | 150 | 13.2 | 0.088 | +4.0 % |" in to_markdown(report)
