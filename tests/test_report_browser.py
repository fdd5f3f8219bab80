"""The report in a real browser (Debian's headless Chromium, driven by Playwright): it loads offline with no
console error and no request beyond the file itself, every chart is drawn, and scenario text cannot run code.

scripts/install-browser.sh installs the browser; Playwright never downloads one. Without a browser the tests
are skipped on a developer's machine and fail in CI (CI=true), so a missing install cannot pass silently.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from aftermath.experiments import ExecutorSpec
from aftermath.report.build import build_report
from tests.test_report import ATTACK, POLICY, attack, hostile_everywhere_report, hostile_yaml

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
SHAPES = """s => {
    const shapes = s.querySelectorAll('path, use, rect, polygon, polyline, line, circle');
    const marks = [...s.querySelectorAll('path, polygon, polyline')].filter(m => {
        const b = m.getBBox(); return b.width > 5 && b.height > 5; });
    const box = s.getBBox();
    return {count: shapes.length, marks: marks.length, width: box.width, height: box.height};
}"""
OVERLAPS = """s => {
    const boxes = [...s.querySelectorAll('text')].map(t => [t.textContent.trim(), t.getBoundingClientRect()])
        .filter(([text, b]) => text && b.width > 0 && b.height > 0);
    const found = [];
    boxes.forEach(([a, p], i) => boxes.slice(i + 1).forEach(([b, q]) => {
        const x = Math.min(p.right, q.right) - Math.max(p.left, q.left);
        const y = Math.min(p.bottom, q.bottom) - Math.max(p.top, q.top);
        if (x > 1 && y > 1) found.push(a + ' / ' + b);
    }));
    return found;
}"""
"""Pairs of text elements of one figure whose boxes overlap by more than a pixel each way."""
WIDE = """() => [...document.querySelectorAll('main *')].filter(e => e.scrollWidth > e.clientWidth + 1
    && getComputedStyle(e).overflowX !== 'visible').map(e => (e.closest('[id]') || {id: ''}).id + ' ' + e.tagName)"""
"""Elements that scroll sideways inside the page (a table wider than its box)."""
OPTIONS = {"samples": 8, "replicates": 2, "executor": ExecutorSpec(workers=1), "stock_runs": 8}


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (run scripts/install-browser.sh)"
    return None


@pytest.fixture(scope="module")
def browser():
    missing = _missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


class Visit:
    """A page opened from a file, with every request, console message, page error and dialog recorded."""

    def __init__(self, browser, path: Path, width: int = 1200) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 900})
        self.requests: list[str] = []
        self.console: list[tuple[str, str]] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda message: self.console.append((message.type, message.text)))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("dialog", self._dialog)
        self.page.goto(path.resolve().as_uri(), wait_until="load")
        self.page.wait_for_timeout(300)

    def _route(self, route) -> None:
        self.requests.append(route.request.url)
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    return build_report(folder / "report.html", "competing_exits", policies=[{"border_and_intelligence": None}],
                        seed=2, **OPTIONS)


def test_report_loads_offline_without_errors_and_draws_every_chart(browser, report: Path) -> None:
    visit = Visit(browser, report)
    try:
        assert visit.requests == [report.resolve().as_uri()]
        assert not visit.errors
        assert not [text for kind, text in visit.console if kind in ("error", "warning")]
        visit.page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        charts = visit.page.locator("figure[data-chart]")
        assert charts.count() >= 8
        for index in range(charts.count()):
            chart = charts.nth(index)
            svg = chart.locator("svg")
            assert svg.count() == 1, chart.get_attribute("data-chart")
            box = svg.bounding_box()
            assert box is not None and box["width"] > 200 and box["height"] > 100
            shapes = svg.evaluate(SHAPES)
            assert shapes["count"] > 10 and shapes["marks"] >= 2 and shapes["width"] > 100 and shapes["height"] > 50, (
                chart.get_attribute("data-chart"), shapes)
        headings = visit.page.locator("h2").all_inner_texts()
        assert headings[:3] == ["In brief", "What the model expects", "How the numbers change over time"]
        ARTIFACTS.mkdir(exist_ok=True)
        visit.page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        visit.page.locator("#where").screenshot(path=str(ARTIFACTS / "report-where.png"))
        assert (ARTIFACTS / "report.png").stat().st_size > 50_000
    finally:
        visit.close()


def test_markup_in_the_scenario_is_shown_as_text_and_never_runs(browser, tmp_path: Path) -> None:
    source = tmp_path / "hostile.yaml"
    source.write_text(hostile_yaml(), encoding="utf-8")
    report = build_report(tmp_path / "hostile.html", source, policies=[POLICY], **OPTIONS)
    visit = Visit(browser, report)
    try:
        assert not visit.dialogs and not visit.errors
        assert visit.requests == [report.resolve().as_uri()]  # the <img src=x> never became an element
        assert visit.page.title() == ATTACK
        assert visit.page.locator("h1").inner_text() == ATTACK
        assert visit.page.locator("img").count() == 0
        assert visit.page.evaluate("document.scripts.length") == 1
        data = visit.page.evaluate("JSON.parse(document.getElementById('report-data').textContent)")
        assert data["title"] == ATTACK
        ARTIFACTS.mkdir(exist_ok=True)
        visit.page.locator("header").screenshot(path=str(ARTIFACTS / "report-hostile-title.png"))
    finally:
        visit.close()


def test_the_report_opens_the_same_from_another_folder(browser, report: Path, tmp_path: Path) -> None:
    moved = Path(shutil.copy(report, tmp_path / "copy.html"))
    visit = Visit(browser, moved)
    try:
        assert visit.requests == [moved.resolve().as_uri()]
        assert visit.page.locator("figure[data-chart] svg").count() >= 8
    finally:
        visit.close()


@pytest.fixture(scope="module")
def default_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("default")
    return build_report(folder / "default.html", None, policies=[{"military_pressure": None}], **OPTIONS)


def test_default_scenario_report_with_its_network(browser, default_report: Path) -> None:
    report = default_report
    visit = Visit(browser, report)
    try:
        assert visit.requests == [report.resolve().as_uri()]
        assert not visit.errors and not [text for kind, text in visit.console if kind in ("error", "warning")]
        for anchor in ("headline", "over-time", "where", "countries", "policies", "network", "home_front", "record",
                       "sources"):
            assert visit.page.locator(f"section#{anchor}").count() == 1, anchor
        network = visit.page.locator('figure[data-chart="The alliance network"] svg')
        assert network.evaluate(SHAPES)["marks"] > 20
        home = visit.page.locator('figure[data-chart="Plots at home per year by region"] svg')
        assert home.bounding_box()["width"] > 200 and home.evaluate(SHAPES)["marks"] >= 4
        assert "Change in plots with Military pressure" in visit.page.locator("section#home_front").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        visit.page.screenshot(path=str(ARTIFACTS / "report-default.png"))  # the first screen (the page is ~40,000 px)
        visit.page.locator("#where").screenshot(path=str(ARTIFACTS / "report-default-where.png"))
        visit.page.locator("#network").screenshot(path=str(ARTIFACTS / "report-default-network.png"))
        visit.page.locator("#home_front").screenshot(path=str(ARTIFACTS / "report-default-home-front.png"))
    finally:
        visit.close()


def test_no_free_text_field_runs_in_the_browser(browser, tmp_path: Path) -> None:
    """The default scenario with a distinct hostile text in every free-text field, every section on."""
    numbers, report = hostile_everywhere_report(tmp_path)
    visit = Visit(browser, report)
    try:
        assert not visit.dialogs and not visit.errors
        assert visit.requests == [report.resolve().as_uri()]
        assert visit.page.title() == attack(numbers["title"][0])
        assert visit.page.locator("img, iframe, object, embed").count() == 0
        assert visit.page.evaluate("document.scripts.length") == 1
        handlers = visit.page.evaluate(
            "[...document.querySelectorAll('*')].flatMap(e => [...e.attributes].map(a => a.name))"
            ".filter(n => n.startsWith('on'))")
        assert handlers == []
        text = visit.page.locator("body").inner_text()
        for pattern in ("interventions.*.description", "observations.*.note", "sources.*.citation", "groups"):
            assert any(attack(n).split("<!--")[0] in text for n in numbers[pattern]), pattern
    finally:
        visit.close()


def test_the_layout_at_1280_px_summary_on_one_screen_no_sideways_scroll_no_overlapping_labels(
    browser, default_report: Path
) -> None:
    """What a policymaker opens: the summary (headline bands, the policy's change, the fit) is the first screen
    at 1280 x 900; nothing scrolls sideways, even with every fold open; no label covers another in any chart."""
    visit = Visit(browser, default_report, width=1280)
    try:
        summary = visit.page.locator("section").first
        assert summary.get_attribute("id") == "summary"
        box = summary.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 900, box
        assert "Change with Military pressure" in summary.inner_text() and "Against the record" in summary.inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        visit.page.screenshot(path=str(ARTIFACTS / "report-summary-1280x900.png"))
        visit.page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        assert visit.page.evaluate("document.documentElement.scrollWidth") <= 1280
        assert visit.page.evaluate(WIDE) == []
        charts = visit.page.locator("figure[data-chart]")
        overlapping = {charts.nth(i).get_attribute("data-chart"): charts.nth(i).locator("svg").evaluate(OVERLAPS)
                       for i in range(charts.count())}
        assert {name: pairs for name, pairs in overlapping.items() if pairs} == {}
        visit.page.locator("#countries").screenshot(path=str(ARTIFACTS / "report-countries-1280.png"))
    finally:
        visit.close()
