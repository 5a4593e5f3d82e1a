"""How much does watching a run in the dashboard slow it down? (issue: streaming <= 10 %)

Runs the same optimisation (bundled model, K = 10 grid, 64 x 64, no early stop)
alternately

* alone: a :class:`umask.jobs.Job` in a fresh Python process, nobody watching;
* watched: ``streamlit run app.py`` (the run in its worker process, see
  :mod:`umask.workers`) with headless Chromium (Debian's
  /usr/bin/chromium, driven by Playwright) on the Generate page, the page
  polling and redrawing as a classroom would see it,

both with the torch thread count the dashboard uses (half the cores), and
prints the steps per second of each and the slowdown. Browser, server and
optimisation share this machine's cores, as on a teacher's laptop. Run it on
an otherwise idle machine:

    python tools/app_streaming.py [--steps 200] [--pairs 3] [--markdown]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the repository's packages

from tools.browser import CHROMIUM, CHROMIUM_ARGS, ROOT, launch_app  # noqa: E402
from umask.text import change  # noqa: E402

ALONE = """
import sys, time, torch
import umask
from umask.devices import share_of_cores
from umask.jobs import Job
torch.set_num_threads(share_of_cores())
model = umask.load_model("efficientnet_lite0")
cfg = umask.Config(k=10, mask_family="grid", steps=int(sys.argv[1]), stop_at_success=False, snapshot_every=1,
                   targets=umask.choose_targets(10, seed=0))
# A short run first, as the dashboard's worker is warm: first-step costs
# (allocator, kernels) should not count against either side.
Job(model, cfg.replace(steps=5), idle_timeout=None).start().wait()
job = Job(model, cfg, idle_timeout=None).start()
job.wait()
snap = job.snapshot()
print(snap.step, snap.elapsed_s)
"""


def run_alone(steps: int) -> float:
    out = subprocess.run([sys.executable, "-c", ALONE, str(steps)], cwd=ROOT, check=True, capture_output=True, text=True,
                         env={**os.environ, "UMASK_OFFLINE": "1"}).stdout.split()
    return int(out[-2]) / float(out[-1])


def start_server() -> tuple[subprocess.Popen, str]:
    return launch_app({**os.environ, "UMASK_OFFLINE": "1"}, subprocess.DEVNULL)


def cpu_seconds(keep) -> float:
    """User + system CPU seconds of every process for which ``keep(pid, ppid, comm)`` is true."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            head, tail = (entry / "stat").read_text().rsplit(")", 1)
        except OSError:
            continue
        fields = tail.split()
        if keep(int(entry.name), int(fields[1]), head.split("(", 1)[1]):
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def run_watched(page, steps: int, server_pid: int, cpu: dict[str, list[float]] | None = None) -> float:
    """Generate on the open page; steps/s from the finished progress line.

    ``cpu`` collects the CPU seconds the server, its worker processes (where
    the optimisation runs) and Chromium used during the run.
    """
    from playwright.sync_api import expect

    # The server by pid, its workers by parent pid; Chromium by process name
    # (its helpers rewrite their command lines).
    watched = {"server": lambda pid, ppid, comm: pid == server_pid,
               "workers": lambda pid, ppid, comm: ppid == server_pid,
               "chromium": lambda pid, ppid, comm: comm.startswith("chrom")}
    before = {name: cpu_seconds(keep) for name, keep in watched.items()}
    sidebar = page.get_by_test_id("stSidebar")
    sidebar.get_by_role("button", name="Generate").click()
    progress = page.get_by_test_id("stProgress")
    # The previous run's "Finished" line stays until the new run's first frame:
    # wait for it to go, or we would time the old run again.
    expect(progress).not_to_contain_text("Finished", timeout=60_000)
    expect(progress).to_contain_text(f"Finished: step {steps} / {steps}", timeout=600_000)
    text = progress.inner_text()
    # Wall time, as run_alone's elapsed_s, in text.duration's words: "(7.1 s in all)", "(2 min 05 s in all)".
    minutes, seconds = re.search(r"\((?:(\d+) min )?([\d.]+) s in all\)", text).groups()
    elapsed = 60 * int(minutes or 0) + float(seconds)
    if cpu is not None:
        for name, keep in watched.items():
            cpu.setdefault(name, []).append(cpu_seconds(keep) - before[name])
    return steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true", help="print a BENCHMARKS.md table")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    proc, url = start_server()
    alone, watched, cpu = [], [], {}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1200})
            page.set_default_timeout(120_000)
            page.goto(url)
            page.get_by_test_id("stSidebarNav").get_by_text("Generate").click()
            sidebar = page.get_by_test_id("stSidebar")
            box = sidebar.get_by_label("Max steps")
            box.fill(str(args.steps))
            box.press("Enter")
            sidebar.get_by_text("Stop at 100 %").click()
            time.sleep(1.0)
            run_watched(page, args.steps, proc.pid)  # warm-up: first-run costs (plotly.js, caches)
            for pair in range(args.pairs):
                # Alternate the order so drift hits both alike.
                order = ("alone", "watched") if pair % 2 == 0 else ("watched", "alone")
                for which in order:
                    rate = run_alone(args.steps) if which == "alone" else run_watched(page, args.steps, proc.pid, cpu)
                    (alone if which == "alone" else watched).append(rate)
                    print(f"pair {pair + 1}: {which:8s} {rate:.2f} steps/s", flush=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    a, w = statistics.median(alone), statistics.median(watched)
    slowdown = a / w - 1
    print(f"median: alone {a:.2f} steps/s, watched {w:.2f} steps/s, slowdown {change(slowdown)}")
    print("CPU seconds per watched run: " + ", ".join(f"{name} {statistics.median(v):.1f}" for name, v in cpu.items())
          + f" (the run itself: {args.steps / w:.1f} s of wall time)")
    if args.markdown:
        print("\n| run | steps/s (each pair) | median | slowdown |\n|---|---|---|---|")
        print(f"| job alone | {', '.join(f'{r:.2f}' for r in alone)} | {a:.2f} | |")
        print(f"| dashboard in Chromium | {', '.join(f'{r:.2f}' for r in watched)} | {w:.2f} | {change(slowdown)} |")


if __name__ == "__main__":
    main()
