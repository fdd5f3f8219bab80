"""Slider-to-redraw time of the dashboard on a scenario (default: the default scenario).

Starts the dashboard, opens it in Debian's headless chromium (Playwright), moves a policy's strength slider one
step at a time (each step a setting not seen before, so nothing comes from the cache) and times each move from
the key press to the redrawn chart (its timing line, drawn by the same callback, names the new strength).
Also times the server's part alone (compile + deterministic run), in wall and CPU seconds (on a shared
machine the CPU seconds are the figure to compare). Prints medians and the load average; the target is
under 1 s for the default scenario.

    .venv/bin/python benchmarks/bench_dashboard.py [SCENARIO] [--moves 6]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from aftermath.dashboard.server import dashboard_server, serve_in_thread
from aftermath.dashboard.workspace import Settings, Workspace

REDRAWN = "text => document.querySelector('#explore-timing').innerText.includes(text)"
CHROMIUM = Path("/usr/bin/chromium")


def server_side(scenario: str, policy: str, moves: int) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds) of each move's compile + deterministic run."""
    workspace = Workspace()
    workspace.explore(scenario, Settings())  # load, compile the kernels once
    times, cpu = [], []
    for step in range(1, moves + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        workspace.explore(scenario, Settings.of({policy: step / 20}))
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return times, cpu


def in_browser(scenario: str, policy: str, moves: int) -> tuple[list[float], list[float]]:
    """(wall seconds, this process's CPU seconds: the server's callbacks, not chromium's drawing) of each move
    from the key press to the redrawn chart."""
    from playwright.sync_api import sync_playwright

    server, url = dashboard_server(scenario, None, port=0)
    serve_in_thread(server)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"])
            page = browser.new_page(viewport={"width": 1300, "height": 1000})
            page.goto(url)
            page.wait_for_selector("#explore-numbers td.value", timeout=300_000)
            thumb = page.locator(f"[id='{json.dumps({'kind': 'strength', 'name': policy}, separators=(',', ':'))}'] "
                                 "[role='slider']")
            times, cpu = [], []
            for _ in range(moves):
                thumb.focus()
                start, start_cpu = time.perf_counter(), time.process_time()
                thumb.press("ArrowRight")
                # The timing line is redrawn with the chart, by the same callback, and names the new strength.
                page.wait_for_function(REDRAWN, arg=f"{policy}={float(thumb.get_attribute('aria-valuenow')):g})",
                                       timeout=300_000)
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="isis_after_caliphate")
    parser.add_argument("--policy", default=None, help="the policy whose slider moves (default: the first)")
    parser.add_argument("--moves", type=int, default=6)
    args = parser.parse_args()
    policy = args.policy or next(iter(Workspace().entry(args.scenario).scenario.interventions))
    server, cpu = server_side(args.scenario, policy, args.moves)
    print(f"{args.scenario}, slider {policy}, {args.moves} moves; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")
    print(f"server (compile + deterministic run): median {statistics.median(server):.3f} s, "
          f"min {min(server):.3f} s, max {max(server):.3f} s; CPU median {statistics.median(cpu):.3f} s")
    if not CHROMIUM.exists():
        print(f"browser: skipped ({CHROMIUM} is missing; scripts/install-browser.sh installs it)")
        return
    browser, browser_cpu = in_browser(args.scenario, policy, args.moves)
    print(f"browser (key press to redrawn chart): median {statistics.median(browser):.3f} s, "
          f"min {min(browser):.3f} s, max {max(browser):.3f} s; server CPU median "
          f"{statistics.median(browser_cpu):.3f} s; target under 1 s; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
