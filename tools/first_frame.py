"""How soon after a click on Generate does the page show the run? (issue: the first frame within 2 s)

One ``streamlit run app.py`` (bundled model, offline) and fresh browser
sessions against it, one after another, as a class's laptops would open it.
Each session opens the Generate page, waits until it is ready (the button
enabled), clicks Generate and times until the page shows the run's first
step: the live image and a progress line at step 1 or later. It then stops
that run and clicks again (a later click in the same session). The first
session is the server's first run (its worker process may still be
starting); it is reported apart. Run it on an otherwise idle machine:

    python tools/first_frame.py [--sessions 8]
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

from tools.browser import CHROMIUM, CHROMIUM_ARGS, launch_app  # noqa: E402

FIRST_STEP = re.compile(r"Running: step [1-9]")


def click_to_first_frame(page) -> float:
    """Click Generate; seconds until the live image and a step >= 1 show."""
    from playwright.sync_api import expect

    button = page.get_by_test_id("stSidebar").get_by_role("button", name="Generate")
    expect(button).to_be_enabled()
    clicked = time.perf_counter()
    button.click()
    expect(page.get_by_test_id("stMain").get_by_test_id("stImage").first).to_be_visible()
    expect(page.get_by_test_id("stProgress")).to_contain_text(FIRST_STEP)
    return time.perf_counter() - clicked


def stop_run(page) -> None:
    from playwright.sync_api import expect

    page.get_by_test_id("stMain").get_by_role("button", name="Stop").click()
    expect(page.get_by_test_id("stProgress")).to_contain_text("Stopped")


def one_session(browser, url: str) -> tuple[float, float]:
    """(first click, later click) seconds in a fresh session."""
    context = browser.new_context(viewport={"width": 1500, "height": 1200})
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(url)
        page.get_by_test_id("stSidebarNav").get_by_text("Generate").click()
        sidebar = page.get_by_test_id("stSidebar")
        box = sidebar.get_by_label("Max steps")
        box.fill("400")
        box.press("Enter")
        sidebar.get_by_text("Stop at 100 %").click()  # runs that last until stopped: no race with their end
        from playwright.sync_api import expect

        expect(box).to_have_value("400")
        expect(sidebar.get_by_role("checkbox", name="Stop at 100 %")).not_to_be_checked()
        first = click_to_first_frame(page)
        stop_run(page)
        later = click_to_first_frame(page)
        stop_run(page)
        return first, later
    finally:
        context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sessions", type=int, default=8)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    proc, url = launch_app({**os.environ, "UMASK_OFFLINE": "1"}, subprocess.DEVNULL)
    firsts, laters = [], []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for n in range(args.sessions):
                first, later = one_session(browser, url)
                firsts.append(first)
                laters.append(later)
                print(f"session {n + 1}: first click {first:.2f} s, later click {later:.2f} s"
                      + (" (the server's first run)" if n == 0 else ""), flush=True)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)

    def summary(values: list[float]) -> str:
        return f"median {statistics.median(values):.2f} s, {min(values):.2f}-{max(values):.2f} s over {len(values)}"

    print(f"server's first run: {firsts[0]:.2f} s")
    if len(firsts) > 1:
        print(f"a session's first click (sessions 2-{len(firsts)}): {summary(firsts[1:])}")
    print(f"a later click: {summary(laters)}")


if __name__ == "__main__":
    main()
