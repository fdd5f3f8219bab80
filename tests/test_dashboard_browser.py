"""The dashboard in a real browser (Debian's headless Chromium, driven by Playwright): a slider move redraws
the chart with the numbers the API gives for the same settings, an ensemble runs with progress and draws its
band, hostile scenario text stays text, a failing run leaves the server working, and the store and network
tabs show their data. Screenshots go to test-artifacts/.

Like test_report_browser.py: skipped without a browser on a developer's machine, failed in CI (CI=true).
"""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest

from aftermath import compile_model, load_scenario, simulate
from aftermath.scenario.loader import resolve_scenario_path
from aftermath.summary import key_dates
from tests import test_report_browser
from tests.test_report import ATTACK, hostile_yaml
from tests.test_report_browser import ARTIFACTS

pytest.importorskip("dash", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")

browser = test_report_browser.browser  # the report tests' fixture: Debian's chromium, skipped or failed alike
TIMEOUT_MS = 120_000
CHART_Y = "() => JSON.stringify(document.querySelector('#explore-chart .js-plotly-plot').data.map(t => t.y))"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    from aftermath.dashboard.server import dashboard_server, serve_in_thread

    store = tmp_path_factory.mktemp("dashboard") / "runs.duckdb"
    running, url = dashboard_server("competing_exits", store, port=0)
    serve_in_thread(running)
    yield url, store
    running.shutdown()
    running.server_close()


class Page:
    """A dashboard page with its console messages, page errors and dialogs recorded."""

    def __init__(self, browser, url: str) -> None:
        self.context = browser.new_context(viewport={"width": 1300, "height": 1000})
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page = self.context.new_page()
        self.page.on("console", lambda message: self.console.append((message.type, message.text)))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", self._dialog)
        self.page.goto(url, wait_until="load")
        self.wait_numbers()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def wait_numbers(self) -> None:
        self.page.wait_for_selector("#explore-numbers td.value", timeout=TIMEOUT_MS)

    def numbers(self) -> dict[str, float]:
        cells = self.page.locator("#explore-numbers tr[data-month]")
        return {cells.nth(i).get_attribute("data-month"): float(cells.nth(i).locator("td.value").get_attribute(
            "data-value")) for i in range(cells.count())}

    def move_slider_to_end(self, kind: str, name: str) -> float:
        """Press End on a slider's thumb; returns the seconds until the chart is redrawn."""
        before = self.page.evaluate(CHART_Y)
        thumb = self.page.locator(f'[id=\'{json.dumps({"kind": kind, "name": name}, separators=(",", ":"))}\'] '
                                  '[role="slider"]')
        thumb.focus()
        start = time.perf_counter()
        thumb.press("End")
        self.page.wait_for_function(f"before => ({CHART_Y})() !== before", arg=before, timeout=TIMEOUT_MS)
        return time.perf_counter() - start

    def clean(self) -> bool:
        return not self.errors and not self.dialogs and not [t for kind, t in self.console if kind == "error"]

    def close(self) -> None:
        self.context.close()


def deterministic(scenario: str, policies: dict[str, float], outcome: str,
                  overrides: dict[str, float] | None = None) -> dict[str, float]:
    """The API's numbers for the same settings: compile, run the deterministic engine, read the key dates."""
    loaded = load_scenario(scenario)
    model = compile_model(loaded, overrides=overrides, policies=policies)
    dataset = simulate(model, replicates=1, engine="deterministic")
    series = dataset[outcome].isel(replicate=0)
    return {d: float(series.sel(time=np.datetime64(d, "M").astype(series["time"].dtype))) for d in key_dates(loaded)}


def test_slider_redraws_the_chart_with_the_apis_numbers(browser, server) -> None:
    url, _ = server
    visit = Page(browser, url)
    try:
        baseline = visit.numbers()
        assert baseline == pytest.approx(deterministic("competing_exits", {}, "in_theatre_total"), rel=1e-12)
        seconds = visit.move_slider_to_end("parameter", "return_hazard")
        value = float(visit.page.locator('[id=\'{"kind":"parameter","name":"return_hazard"}\'] [role="slider"]')
                      .get_attribute("aria-valuenow"))
        visit.page.wait_for_function("() => document.querySelector('#explore-numbers td.value') !== null")
        moved = visit.numbers()
        last = key_dates(load_scenario("competing_exits"))[-1]
        assert moved[last] < 0.99 * baseline[last]  # a faster return empties the theatre sooner
        expected = deterministic("competing_exits", {}, "in_theatre_total", {"return_hazard": value})
        assert moved == pytest.approx(expected, rel=1e-12)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "dashboard-slider-competing_exits.txt").write_text(f"slider to redraw: {seconds:.3f} s\n")
        visit.page.screenshot(path=str(ARTIFACTS / "dashboard-explore.png"), full_page=True)
        assert seconds < 30, seconds
        assert visit.clean(), (visit.errors, visit.dialogs, visit.console)
    finally:
        visit.close()


def test_small_ensemble_runs_with_progress_and_draws_its_band(browser, server) -> None:
    url, store = server
    visit = Page(browser, url)
    try:
        page = visit.page
        page.fill("#ensemble-samples", "3")
        page.fill("#ensemble-replicates", "2")
        page.locator("#ensemble-store input").check()
        page.wait_for_function("() => document.querySelector('#draws-label').innerText.includes('No posterior')",
                               timeout=TIMEOUT_MS)  # competing_exits ships none: the priors, and it says so
        page.click("#ensemble-run")
        page.wait_for_function("() => document.querySelector('#ensemble-status').innerText.includes('done')",
                               timeout=TIMEOUT_MS)
        assert "parameters from the prior" in page.inner_text("#ensemble-status")
        page.wait_for_selector("#explore-numbers td.band", timeout=TIMEOUT_MS)
        assert page.locator("#ensemble-progress").get_attribute("value") == "6"
        names = page.evaluate("() => document.querySelector('#explore-chart .js-plotly-plot').data.map(t => t.name)")
        assert any("5-95%" in str(name) for name in names)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-ensemble.png"), full_page=True)
        assert store.exists()  # asked for: "write the run to the store"
        page.locator("div.tab", has_text="Store").click()
        page.wait_for_selector("#runs-table td", timeout=TIMEOUT_MS)
        page.locator("#stored-run").click()
        page.get_by_role("option", name="run 1").click()
        page.wait_for_function("() => { const p = document.querySelector('#stored-chart .js-plotly-plot');"
                               " return p && p.data && p.data.length >= 3; }", timeout=TIMEOUT_MS)
        page.screenshot(path=str(ARTIFACTS / "dashboard-store.png"), full_page=True)
        report = page.request.get(url + "report/1")
        assert report.status == 200 and "<svg" in report.text()
        assert visit.clean(), (visit.errors, visit.dialogs, visit.console)
    finally:
        visit.close()


def test_compare_draws_paired_difference_bands(browser, server) -> None:
    url, _ = server
    visit = Page(browser, url)
    try:
        page = visit.page
        page.locator("#series").click()
        page.get_by_role("option", name=re.compile(r"\(returned_total, persons\)$")).click()
        page.locator("div.tab", has_text="Compare").click()
        page.locator("#mix-policies").click()
        page.get_by_role("option", name="border_and_intelligence").click()
        page.keyboard.press("Escape")  # a multiple choice stays open after a pick
        page.click("#mix-add")
        page.wait_for_selector("#mix-list li", timeout=TIMEOUT_MS)
        page.fill("#compare-samples", "2")
        page.fill("#compare-replicates", "2")
        page.click("#compare-run")
        page.wait_for_function("() => document.querySelector('#compare-status').innerText.includes('done')",
                               timeout=TIMEOUT_MS)
        page.wait_for_selector("#compare-numbers td", timeout=TIMEOUT_MS)
        names = page.evaluate("() => document.querySelector('#compare-chart .js-plotly-plot').data.map(t => t.name)")
        assert "border_and_intelligence: median" in names
        header = page.locator("#compare-numbers th").all_inner_texts()
        assert header == ["month", "baseline", "border_and_intelligence", "difference border_and_intelligence"]
        last = page.locator("#compare-numbers tbody tr").last.locator("td").all_inner_texts()
        assert last[3].startswith("-")  # border checks turn returns into arrests in theatre: fewer return
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-compare.png"), full_page=True)
        assert visit.clean(), (visit.errors, visit.dialogs, visit.console)
    finally:
        visit.close()


@pytest.mark.slow
def test_slider_to_redraw_time_on_the_default_scenario(browser) -> None:
    """The measurement the issue asks for (target under 1 s on an idle machine); the bound here only
    catches a hang, since CI machines are shared."""
    from aftermath.dashboard.server import dashboard_server, serve_in_thread

    running, url = dashboard_server(None, None, port=0)
    serve_in_thread(running)
    visit = Page(browser, url)
    try:
        thumb = visit.page.locator('[id=\'{"kind":"strength","name":"military_pressure"}\'] [role="slider"]')
        times = []
        for step in (1, 2, 3):
            thumb.focus()
            start = time.perf_counter()
            thumb.press("ArrowRight")
            visit.page.wait_for_function("text => document.querySelector('#explore-timing').innerText.includes(text)",
                                         arg=f"military_pressure={step / 20:g})", timeout=TIMEOUT_MS)
            times.append(time.perf_counter() - start)
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "dashboard-slider-default.txt").write_text(
            "slider to redraw, default scenario: " + ", ".join(f"{t:.2f} s" for t in times) + "\n")
        visit.page.screenshot(path=str(ARTIFACTS / "dashboard-default.png"), full_page=True)
        assert max(times) < 60, times
        # ensembles draw from the shipped posterior, as the command line does; the priors on request
        label = "() => document.querySelector('#draws-label').innerText"
        assert "shipped posterior isis_after_caliphate.posterior.csv" in visit.page.evaluate(label)
        visit.page.get_by_label("the priors (declared distributions)").check()
        visit.page.wait_for_function(f"() => ({label})().includes('prior (the declared distributions)')",
                                     timeout=TIMEOUT_MS)
        assert visit.clean(), (visit.errors, visit.dialogs, visit.console)
    finally:
        visit.close()
        running.shutdown()
        running.server_close()


def _upload(visit: Page, name: str, text: str) -> None:
    visit.page.locator("#upload input[type=file]").set_input_files(
        {"name": name, "mimeType": "text/yaml", "buffer": text.encode()})


def test_hostile_text_stays_text_and_a_failing_run_leaves_the_server_working(browser, server) -> None:
    url, _ = server
    visit = Page(browser, url)
    try:
        _upload(visit, "hostile.yaml", hostile_yaml())
        visit.page.wait_for_function("title => document.querySelector('#scenario-title').innerText === title",
                                     arg=ATTACK, timeout=TIMEOUT_MS)
        visit.wait_numbers()
        assert visit.page.locator("img").count() == 0
        assert visit.page.evaluate("() => window.__attacked === undefined")
        ARTIFACTS.mkdir(exist_ok=True)
        visit.page.screenshot(path=str(ARTIFACTS / "dashboard-hostile.png"), full_page=True)
        # Valid, and runs in the baseline; with the policy at full strength a rate turns negative.
        text = resolve_scenario_path("competing_exits").read_text(encoding="utf-8").replace(
            "name: competing_exits", "name: failing").replace("(1 - border_checks)", "(1 - 3 * border_checks)")
        _upload(visit, "failing.yaml", text)
        visit.page.wait_for_function("() => document.querySelector('#scenario-title').innerText.includes('ompeting')",
                                     timeout=TIMEOUT_MS)
        visit.wait_numbers()
        visit.page.wait_for_function("() => document.querySelector('#scenario').innerText.includes('failing.yaml')",
                                     timeout=TIMEOUT_MS)
        thumb = visit.page.locator('[id=\'{"kind":"strength","name":"border_and_intelligence"}\'] [role="slider"]')
        thumb.focus()
        thumb.press("End")
        visit.page.wait_for_function("() => document.querySelector('#message').innerText.includes('rate')",
                                     timeout=TIMEOUT_MS)
        assert "expected a finite rate >= 0" in visit.page.locator("#message").inner_text()
        visit.page.screenshot(path=str(ARTIFACTS / "dashboard-failing-run.png"), full_page=True)
        thumb.press("Home")
        visit.page.wait_for_function("() => document.querySelector('#message').innerText === ''", timeout=TIMEOUT_MS)
        again = Page(visit.page.context.browser, url)  # the server still answers
        try:
            assert again.numbers() == pytest.approx(deterministic("competing_exits", {}, "in_theatre_total"))
            assert again.clean()
        finally:
            again.close()
        assert not visit.errors and not visit.dialogs
    finally:
        visit.close()


def test_alliance_network_hover_shows_capacities_and_ties(browser, server) -> None:
    url, _ = server
    visit = Page(browser, url)
    try:
        page = visit.page
        page.locator("#scenario").click()
        page.get_by_role("option", name="alliance_network", exact=True).click()
        page.wait_for_function("() => document.querySelector('#scenario-title').innerText.includes('lliance')",
                               timeout=TIMEOUT_MS)
        page.locator("div.tab", has_text="Alliance network").click()
        page.wait_for_function("() => { const p = document.querySelector('#network-chart .js-plotly-plot');"
                               " return p && p.data && p.data.some(t => t.name === 'groups'); }", timeout=TIMEOUT_MS)
        hover = page.evaluate("() => document.querySelector('#network-chart .js-plotly-plot').data"
                              ".find(t => t.name === 'groups').hovertext")
        assert all("declared capacities: training" in text and "ties:" in text for text in hover)
        point = page.locator("#network-chart g.points path").first
        point.hover(force=True)
        page.wait_for_selector("#network-chart g.hovertext", timeout=10_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-network.png"), full_page=True)
        assert visit.clean(), (visit.errors, visit.dialogs, visit.console)
    finally:
        visit.close()
