"""The benchmark's machinery (not its speed: that lives in BENCHMARKS.md)."""

import dataclasses

from umask.bench import BenchPlan, BenchReport, machine_info, step_overhead, time_to_universal, to_markdown


def test_time_to_universal_reports_a_run(tiny):
    run = time_to_universal(tiny, "fast", 3, "hstripes", 0, cap=300)
    assert run.reached and run.success_rate == 1.0 and 0 < run.steps < 300 and run.seconds > 0
    capped = time_to_universal(tiny, "seed", 3, "hstripes", 0, cap=2)
    assert capped.steps == 2 and not capped.reached


def test_step_overhead_compares_the_same_work(tiny):
    row = step_overhead(tiny, 4, steps=3)
    assert row["umask_s"] > 0 and row["bare_s"] > 0
    assert row["overhead"] == row["umask_s"] / row["bare_s"] - 1


def test_markdown_tables(tiny):
    plan = dataclasses.replace(BenchPlan.quick(), ks=(3,), families=("hstripes",))
    report = BenchReport(plan=plan, machine=machine_info())
    report.runs = [time_to_universal(tiny, p, 3, "hstripes", 0, cap=200) for p in ("seed", "fast")]
    report.overhead = [step_overhead(tiny, 3, steps=2)]
    text = to_markdown(report)
    assert "| 3 | hstripes | seed |" in text and "| 3 | hstripes | fast |" in text
    assert "| tiny | 3 |" in text and "torch threads" in text


def test_streaming_overhead_runs_the_same_job_with_and_without_a_consumer(tiny):
    from umask.bench import streaming_overhead

    alone, consumed = streaming_overhead(tiny, k=3, steps=8, reps=1, poll_s=0.001)
    assert alone["steps"] == consumed["steps"] == 8
    assert alone["seconds"] > 0 and consumed["seconds"] > 0
    assert consumed["overhead"].endswith("%")
