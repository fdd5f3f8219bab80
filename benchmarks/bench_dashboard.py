"""Slider-to-redraw time of the dashboard on a scenario (default: the default scenario).

Starts the dashboard, opens it in Debian's headless chromium (Playwright), moves a policy's strength slider one
step at a time (each step a setting not seen before, so nothing comes from the cache) and times each move from
the key press to the redrawn chart (its timing line, drawn by the same callback, names the new strength).
Also times the server's part alone (compile + deterministic run). Prints medians; the target is under 1 s
for the default scenario.

    .venv/bin/python benchmarks/bench_dashboard.py [SCENARIO] [--moves 6]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from aftermath.dashboard.server import dashboard_server, serve_in_thread
from aftermath.dashboard.workspace import Settings, Workspace

REDRAWN = "text => document.querySelector('#explore-timing').innerText.includes(text)"
CHROMIUM = Path("/usr/bin/chromium")


def server_side(scenario: str, policy: str, moves: int) -> list[float]:
    workspace = Workspace()
    workspace.explore(scenario, Settings())  # load, compile the kernels once
    times = []
    for step in range(1, moves + 1):
        start = time.perf_counter()
        workspace.explore(scenario, Settings.of({policy: step / 20}))
        times.append(time.perf_counter() - start)
    return times


def in_browser(scenario: str, policy: str, moves: int) -> list[float]:
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
            times = []
            for _ in range(moves):
                thumb.focus()
                start = time.perf_counter()
                thumb.press("ArrowRight")
                # The timing line is redrawn with the chart, by the same callback, and names the new strength.
                page.wait_for_function(REDRAWN, arg=f"{policy}={float(thumb.get_attribute('aria-valuenow')):g})",
                                       timeout=300_000)
                times.append(time.perf_counter() - start)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="isis_after_caliphate")
    parser.add_argument("--policy", default=None, help="the policy whose slider moves (default: the first)")
    parser.add_argument("--moves", type=int, default=6)
    args = parser.parse_args()
    policy = args.policy or next(iter(Workspace().entry(args.scenario).scenario.interventions))
    server = server_side(args.scenario, policy, args.moves)
    print(f"{args.scenario}, slider {policy}, {args.moves} moves")
    print(f"server (compile + deterministic run): median {statistics.median(server):.3f} s, "
          f"min {min(server):.3f} s, max {max(server):.3f} s")
    if not CHROMIUM.exists():
        print(f"browser: skipped ({CHROMIUM} is missing; scripts/install-browser.sh installs it)")
        return
    browser = in_browser(args.scenario, policy, args.moves)
    print(f"browser (key press to redrawn chart): median {statistics.median(browser):.3f} s, "
          f"min {min(browser):.3f} s, max {max(browser):.3f} s; target under 1 s")


if __name__ == "__main__":
    main()
