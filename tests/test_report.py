"""The report: its numbers are the ensemble's, policy changes are paired, scenario text is inert, writes are atomic."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from ruamel.yaml import YAML

from aftermath import compile_model, load_scenario, parse_scenario
from aftermath.experiments import ExecutorSpec, design_experiment, read_scenario, run_experiment, run_stored
from aftermath.formatting import number
from aftermath.report import build
from aftermath.report.build import build_report, collect, collect_stored
from aftermath.report.content import (
    Fan,
    OutcomeSummary,
    fan,
    observation_rows,
    origin_regions,
    pathway,
    strata_title,
)
from aftermath.report.html import script_json
from aftermath.report.svgchart import fan_svg
from aftermath.scenario.loader import resolve_scenario_path
from aftermath.store import Store
from tests.conftest import run_cli

ATTACK = "<script>alert(1)</script></script><!-- <img src=x onerror=alert(2)> & \"quoted\""
POLICY = {"border_and_intelligence": None}


def hostile_yaml() -> str:
    """competing_exits with markup in every free-text field a report shows (as JSON, which is YAML)."""
    data = YAML(typ="safe").load(resolve_scenario_path("competing_exits").read_text(encoding="utf-8"))
    data["title"] = data["description"] = ATTACK
    data["outcomes"]["in_theatre_total"]["description"] = ATTACK
    data["parameters"]["border_checks"]["assumption"] = ATTACK
    data["interventions"]["border_and_intelligence"]["description"] = ATTACK
    data["observations"][0]["note"] = ATTACK
    return json.dumps(data, default=str)


SERIAL = ExecutorSpec(workers=1)
FREE_TEXT = ("title", "description", "assumption", "note", "citation", "fixed", "pathway")
"""Every free-text field of a scenario (scenario/schema.py and network/schema.py: `Text` and `pathway`)."""
SHOWN = {"title", "description", "interventions.*.description", "interventions.*.assumption",
         "parameters.*.assumption", "parameters.*.description", "parameters.*.fixed", "outcomes.*.description",
         "observations.*.note", "sources.*.citation", "compartments.*.pathway", "schedules.*.assumption", "groups"}
"""The fields a report shows (the rest must not reach the page unescaped either)."""


def attack(number: int) -> str:
    """A hostile text whose escaped form is findable: script, tag with a handler, comment, quote, ampersand."""
    return f'<script>alert({number})</script><img src=x onerror=alert({number})><!-- "&'


def escaped(number: int) -> str:
    return f"&lt;script&gt;alert({number})&lt;/script&gt;&lt;img src=x onerror=alert({number})&gt;&lt;!--"


def hostile_everywhere(name: str) -> tuple[str, dict[str, list[int]]]:
    """A shipped scenario with a distinct hostile text in every free-text field and as every region name
    of `groups`; returns its text (JSON, which is YAML) and the attack numbers by field pattern."""
    data = YAML(typ="safe").load(resolve_scenario_path(name).read_text(encoding="utf-8"))
    # a citation of the scenario's own, cited by its first sourced parameter (the shipped ones cite evidence)
    data.setdefault("sources", []).append({"id": "X99", "citation": "to be replaced"})
    next(p for p in data["parameters"].values() if p.get("sources"))["sources"].append("X99")
    numbers: dict[str, list[int]] = {}

    def plant(node, path: tuple[str, ...]) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        for key, value in list(items):
            if key in FREE_TEXT and isinstance(value, str):
                pattern = ".".join((*path[:1], *["*"] * (len(path) > 1), str(key)))
                numbers.setdefault(pattern, []).append(sum(map(len, numbers.values())))
                node[key] = attack(numbers[pattern][-1])
            else:
                plant(value, (*path, str(key)))

    plant(data, ())
    for dim, regions in data.get("groups", {}).items():
        data["groups"][dim] = {}
        for members in regions.values():
            numbers.setdefault("groups", []).append(sum(map(len, numbers.values())))
            data["groups"][dim][attack(numbers["groups"][-1])] = members
    return json.dumps(data, default=str), numbers


class Elements(HTMLParser):
    """The elements and attributes a browser would build from a page (Python's HTML tokenizer)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def assert_inert(page: str) -> None:
    """No element or attribute that can run code came from the scenario: one script (our JSON data), no
    <img>, no on* handler, no comment opened by the text."""
    parser = Elements()
    parser.feed(page)
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert scripts == [{"type": "application/json", "id": "report-data"}]
    assert not [tag for tag, _ in parser.tags if tag in ("img", "iframe", "object", "embed")]
    assert not [(tag, a) for tag, attrs in parser.tags for a in attrs if a.startswith("on")]
    assert "<!--" not in page and "<script>alert" not in page


def hostile_everywhere_report(folder: Path) -> tuple[dict[str, list[int]], Path]:
    """The default scenario (network, observations, events, groups, pathways) made hostile, with every
    report section on: all its policies, the network, the record."""
    text, numbers = hostile_everywhere("isis_after_caliphate")
    source = folder / "hostile-everywhere.yaml"
    source.write_text(text, encoding="utf-8")
    policies = [{name: None} for name in parse_scenario(text).interventions]
    out = build_report(folder / "hostile-everywhere.html", source, samples=4, replicates=1, seed=1,
                       policies=policies, executor=SERIAL, stock_runs=4)
    return numbers, out


@pytest.fixture(scope="module")
def experiment_and_content():
    arms = [{}, POLICY, {"border_and_intelligence": 0.5}]
    text, file, _ = read_scenario("competing_exits")
    experiment = design_experiment(text, file, samples=20, replicates=3, arms=arms, seed=7)
    result = run_experiment(experiment, SERIAL)
    content = collect("competing_exits", samples=20, replicates=3, seed=7, policies=arms[1:], executor=SERIAL,
                      stock_runs=25)
    return result, content


def test_headline_bands_are_the_ensembles_bands(experiment_and_content) -> None:
    result, content = experiment_and_content
    baseline = result.arms["baseline"]
    for name in ("returned_total", "killed_total"):
        fans = next(o for o in content.outcomes if o.name == name).fans[""]
        for date in content.key_dates:
            raw = baseline[name].sel(time=np.datetime64(date, "M")).values  # the 60 members at that date
            band = fans.at(date)
            # the labelled band is the 5-95% range and the median: numpy's quantiles of the raw members
            assert (band.low, band.median, band.high) == pytest.approx(tuple(np.quantile(raw, [0.05, 0.5, 0.95])))
        last = fans.at(content.key_dates[-1])
        assert last.low < last.median < last.high, "members must differ for the check to mean anything"
    assert content.members == 60 and content.facts.samples == 20 and content.facts.uncertain_parameters == 4


def test_policy_differences_are_paired_member_by_member(experiment_and_content) -> None:
    result, content = experiment_and_content
    paired = (result.arms["border_and_intelligence"] - result.arms["baseline"])["returned_total"].values
    effect = content.policies[0]
    assert effect.label == "Border and intelligence"
    # the fan's five quantiles: 5%, quartiles, median and 95%, by numpy from the paired differences
    expected = np.quantile(paired, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
    assert np.allclose(effect.differences["returned_total"].values, expected)
    # The policy only diverts returns into detention: the total leaving theatre, and so those still in
    # theatre, is the same draw for draw. Independent streams would give a spread around zero instead.
    assert not effect.differences["in_theatre_total"].values.any()
    assert effect.differences["returned_total"].at("2018-12").high < 0
    half = content.policies[1]
    assert half.label == "Border and intelligence (strength 0.5)"
    assert effect.differences["returned_total"].at("2018-12").median < half.differences[
        "returned_total"].at("2018-12").median < 0


def test_map_and_country_table_are_the_same_runs(experiment_and_content) -> None:
    result, content = experiment_and_content
    sankey = content.sankey
    assert sankey.date == content.key_dates[-1] == content.at and content.facts.stock_members == 25
    first = result.arms["baseline"].isel(replicate=slice(0, 25)).sel(time=np.datetime64(sankey.date, "M"))
    into = {sankey.nodes[b]: 0.0 for _, b, _ in sankey.links}
    for _, b, value in sankey.links:
        into[sankey.nodes[b]] += value
    assert set(into) == {"In theatre", "Killed", "Returned", "Detained"}
    assert into["In theatre"] == pytest.approx(float(first["in_theatre_total"].mean()))
    assert into["Returned"] == pytest.approx(float(first["returned_total"].mean()))
    table = content.countries
    assert [origin for origin, _ in table.rows] == ["FR", "DE", "GB", "BE"]
    assert table.columns == ["Departed (all followed)", "In theatre", "Killed", "Returned", "Detained"]
    departed = table.rows[0][1][0]
    assert 0.9 * 1910 - 1 <= departed.low <= departed.median <= departed.high <= 1.1 * 1910 + 1


def grouped_scenario_text() -> str:
    """competing_exits with its origins in regions and the two ways home as one pathway."""
    data = YAML(typ="safe").load(resolve_scenario_path("competing_exits").read_text(encoding="utf-8"))
    data["groups"] = {"origin": {"Western Europe": ["FR", "BE"], "North": ["GB"]}}
    data["compartments"]["returned"]["pathway"] = "left theatre"
    data["compartments"]["detained"]["pathway"] = "left theatre"
    return json.dumps(data, default=str)


def test_declared_regions_and_pathways_shape_the_map(tmp_path: Path) -> None:
    scenario = parse_scenario(grouped_scenario_text())
    assert origin_regions(scenario) == {"Western Europe": ["FR", "BE"], "North": ["GB"], "Other origins": ["DE"]}
    assert pathway(scenario, "returned") == pathway(scenario, "detained") == "Left theatre"
    source = tmp_path / "grouped.yaml"
    source.write_text(grouped_scenario_text(), encoding="utf-8")
    content = collect(source, samples=6, replicates=1, executor=SERIAL, stock_runs=6)
    sankey = content.sankey
    layers = {column: [n for n, c in zip(sankey.nodes, sankey.columns, strict=True) if c == column]
              for column in (0, 1, 2)}
    assert layers == {0: ["Western Europe", "North", "Other origins"],
                      1: ["In theatre", "Killed", "Left theatre"], 2: ["Returned", "Detained"]}
    leaving = sum(v for _, b, v in sankey.links if sankey.nodes[b] == "Left theatre")
    assert leaving == pytest.approx(sum(v for a, _, v in sankey.links if sankey.columns[a] == 1))
    assert content.countries.columns == ["Departed (all followed)", "In theatre", "Killed",
                                         "Left theatre: returned", "Left theatre: detained"]


def test_a_scenario_with_a_network_shows_it(tmp_path: Path) -> None:
    content = collect("alliance_network", samples=6, replicates=1, executor=SERIAL, stock_runs=6)
    network = content.network
    assert network is not None and [date for date, _ in network.graphs] == content.key_dates
    assert all(graph.number_of_nodes() == len(content.scenario.network.groups) for _, graph in network.graphs)
    assert {text for text, _ in network.summary} >= {"active provinces", "alliance ties", "groups active"}
    page = build.render(content, generated="fixed")
    assert '>The alliance network</h2>' in page and 'data-chart="The alliance network"' in page
    assert collect("competing_exits", samples=2, replicates=1, executor=SERIAL, stock_runs=2).network is None


def test_a_scenario_with_a_home_front_shows_it(tmp_path: Path) -> None:
    from tests.test_homefront import small_scenario

    source = tmp_path / "home.yaml"
    source.write_text(small_scenario(), encoding="utf-8")
    content = collect(source, samples=6, replicates=1, policies=[{"border_and_intelligence": None}],
                      executor=SERIAL, stock_runs=2)
    home = content.home_front
    assert home is not None and home.years == [2014, 2015, 2016, 2017]  # 2018 ends with the run: not whole
    texts = [text for text, _ in home.rows]
    assert "Plots, all regions" in texts and "Plots by operational returnees" in texts and "Plots completed" in texts
    assert [what for what, *_ in home.observed] == ["plots, West"]
    assert [policy for policy, _ in home.effects] == ["Border and intelligence"]
    assert all(b is None or b.low <= b.median <= b.high for _, bands in home.rows for b in bands)
    page = build_report(tmp_path / "home.html", source, samples=6, replicates=1,
                        policies=[{"border_and_intelligence": None}], executor=SERIAL, stock_runs=2).read_text()
    assert '>The home front</h2>' in page and 'data-chart="Plots at home per year by region"' in page
    assert "Change in plots with Border and intelligence" in page
    assert collect("competing_exits", samples=2, replicates=1, executor=SERIAL, stock_runs=2).home_front is None


def test_observations_split_fitted_and_later(experiment_and_content) -> None:
    _, content = experiment_and_content
    early = observation_rows(content.scenario, content.outcomes, "2017-12")[0]
    late = observation_rows(content.scenario, content.outcomes, "2016-06")[0]
    assert early.fitted and not late.fitted
    assert early.model == late.model == content.outcomes[2].fans[""].at("2016-12")
    assert early.inside == (early.low <= early.model.high and early.high >= early.model.low)


def test_report_is_one_self_contained_file(tmp_path: Path) -> None:
    out = build_report(tmp_path / "report.html", "competing_exits", samples=10, replicates=2, seed=3,
                       policies=[POLICY], executor=SERIAL, stock_runs=10, figures_dir=tmp_path / "figures")
    page = out.read_text(encoding="utf-8")
    for heading in ("What the model expects", "How the numbers change over time", "Where the fighters went",
                    "Country by country", "What the policies change", "How well the model matches the record",
                    "Where each number comes from", "What we assumed", "About this run"):
        assert f">{heading}</h2>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and not re.search(r"url\((?!#)", page)
    assert page.count("<svg") == page.count("data-chart=") >= 8
    assert "Figure E04" in page  # the observation's and parameters' full citation
    errors = page.split('id="observation-errors"')[1].split("</table>")[0]  # the built-in observation model
    assert "Observation error, grade H" in errors and "sd of log(figure)" in errors and "0.1 to 0.3" in errors
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page).group(1))
    assert data["metadata"]["seed"] == 3 and data["metadata"]["runs (replicates)"] == 20
    assert data["metadata"]["scenario hash"] == compile_model(load_scenario("competing_exits")).scenario_hash
    files = sorted(p.name for p in (tmp_path / "figures").iterdir())
    stems = {name.rsplit(".", 1)[0] for name in files}
    assert files == sorted([f"{s}.png" for s in stems] + [f"{s}.svg" for s in stems])
    assert {"where-they-went", "policy-effects", "fan-returned_total"} <= stems
    assert (tmp_path / "figures" / "where-they-went.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.rglob(".*partial")]


def test_same_seed_same_report() -> None:
    made = [collect("competing_exits", samples=6, replicates=2, seed=11, executor=SERIAL, stock_runs=6)
            for _ in range(2)]
    assert build.render(made[0], generated="fixed") == build.render(made[1], generated="fixed")


def test_scenario_text_cannot_become_markup(tmp_path: Path) -> None:
    source = tmp_path / "hostile.yaml"
    source.write_text(hostile_yaml(), encoding="utf-8")
    assert parse_scenario(hostile_yaml()).title == ATTACK
    page = build_report(tmp_path / "hostile.html", source, samples=4, replicates=1, executor=SERIAL,
                        stock_runs=4, policies=[POLICY]).read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<img" not in page and "<!--" not in page
    assert page.count("<script") == 1  # our JSON data block, which never runs
    assert_inert(page)
    # title, lead, outcome description, parameter assumption, policy description, observation note
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(block)["title"] == ATTACK


def test_charts_skip_months_where_an_outcome_is_undefined() -> None:
    times = np.arange("2014-01", "2015-01", dtype="datetime64[M]")
    runs = np.tile(np.arange(12.0), (5, 1))
    runs[:, :3] = np.nan  # a share of nobody before anyone arrives
    summary = OutcomeSummary("returned_share", "", (), {"": fan(runs, times)})
    svg = fan_svg(summary, [], "2017-12")
    assert "nan" not in svg and svg.count("<polyline") == 1
    assert summary.fans[""].at("2014-02").median != summary.fans[""].at("2014-02").median  # NaN: shown as n/a
    assert number(summary.fans[""].at("2014-02").median) == "n/a"


def test_script_json_cannot_close_its_element() -> None:
    text = script_json({"a": "</script><!-- \u2028 &"})
    assert "</" not in text and "<!--" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- \u2028 &"}


def test_a_failed_write_leaves_the_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report.html"
    out.write_text("old", encoding="utf-8")

    def broken(*args, **kwargs) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "render", broken)
    with pytest.raises(RuntimeError):
        build_report(out, "competing_exits", samples=2, replicates=1, executor=SERIAL, stock_runs=2)
    assert out.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_bad_output_path_is_refused_before_any_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"expected a file ending in \.html"):
        build_report(tmp_path / "report.pdf", "competing_exits")
    with pytest.raises(ValueError, match="does not exist"):
        build_report(tmp_path / "missing" / "report.html", "competing_exits")


def test_cli_report_and_its_errors(tmp_path: Path) -> None:
    out = tmp_path / "cli.html"
    done = run_cli("report", "competing_exits", "-s", "4", "-n", "2", "--workers", "1", "--map-runs", "4",
                   "--policy", "border_and_intelligence=0.5", "--at", "2016-12", "-o", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert "in 2016-12" in page and "Border and intelligence (strength 0.5)" in page
    for args, message in (
        (["competing_exits", "-o", str(tmp_path / "r.txt")], "expected a file ending in .html"),
        (["competing_exits", "--policy", "nope", "-o", str(out)], "unknown policy 'nope'"),
        (["competing_exits", "--at", "2040-01", "-o", str(out)], "outside the scenario's time span"),
        (["--run", "1", "--policy", "x", "-o", str(out)], "give no SCENARIO, --policy, --posterior or --prior"),
        (["--run", "1", "--store", str(tmp_path / "none.duckdb"), "-o", str(out)], "none.duckdb"),
    ):
        failed = run_cli("report", *args)
        assert failed.returncode == 2, (args, failed.stderr)
        assert message in failed.stderr and "Traceback" not in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1


def test_report_of_a_stored_run(tmp_path: Path) -> None:
    text, file, _ = read_scenario("competing_exits")
    experiment = design_experiment(text, file, samples=6, replicates=2, arms=[{}, POLICY], seed=5)
    store = Store(tmp_path / "runs.duckdb")
    run_id = run_stored(store, experiment, "compare")
    stored = collect_stored(store, run_id, stock_runs=6)
    fresh = collect("competing_exits", samples=6, replicates=2, seed=5, policies=[POLICY], executor=SERIAL,
                    stock_runs=6)
    assert stored.facts.run_id == run_id
    for mine, theirs in zip(stored.outcomes, fresh.outcomes, strict=True):
        assert all(np.array_equal(mine.fans[k].values, theirs.fans[k].values) for k in mine.fans)
    assert np.array_equal(stored.policies[0].differences["returned_total"].values,
                          fresh.policies[0].differences["returned_total"].values)
    assert stored.sankey == fresh.sankey
    page = build_report(tmp_path / "stored.html", run=run_id, store=tmp_path / "runs.duckdb", stock_runs=6)
    assert f"<dt>stored run</dt><dd>{run_id}</dd>" in page.read_text(encoding="utf-8")


def test_no_free_text_field_of_a_scenario_becomes_markup(tmp_path: Path) -> None:
    numbers, out = hostile_everywhere_report(tmp_path)
    assert set(SHOWN) <= set(numbers), sorted(set(SHOWN) - set(numbers))
    page = out.read_text(encoding="utf-8")
    assert_inert(page)
    for section in ("headline", "over-time", "where", "countries", "policies", "network", "record", "sources",
                    "assumptions"):
        assert f'<section id="{section}">' in page, section
    for pattern, planted in numbers.items():
        for planted_number in planted:
            assert attack(planted_number) not in page, pattern
    for pattern in SHOWN:
        assert any(escaped(n) in page for n in numbers[pattern]), f"{pattern}: not shown"
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(block)["title"] == attack(numbers["title"][0])


def test_a_strata_title_never_repeats_its_by() -> None:
    """Issue 15's 'Detained by cohort: by cohort': the 'by' is added only where the title does not say it,
    and the count of strata shown only when some are left out."""
    fan_ = Fan(np.array(["2017-12"], dtype="datetime64[M]"), np.zeros((5, 1)))
    fans = {"a": fan_, "b": fan_, "c": fan_}
    said = OutcomeSummary("detained", "", ("cohort",), fans, title="Detained by cohort")
    unsaid = OutcomeSummary("returned", "", ("origin",), fans, title="Returned")
    assert strata_title(said, 3) == "Detained by cohort"
    assert strata_title(unsaid, 3) == "Returned by origin"
    assert strata_title(unsaid, 2) == "Returned by origin: the 2 largest"


def test_the_observation_errors_show_their_spread_unit_range_and_sources() -> None:
    """Every number has a unit, a range and a source: the default scenario's observation model too."""
    from aftermath.report.html import sources
    from aftermath.scenario.describe import observation_error_rows

    scenario = load_scenario("isis_after_caliphate")
    rows = {row.name: row for row in observation_error_rows(scenario)}
    high = rows["observation error, grade H"]
    assert (high.value, high.unit, high.low, high.high) == ("0.2", "sd of log(figure)", 0.09, 0.45)
    assert high.sources == ["G03", "G06", "G07"] and "chi-square" in high.assumption
    assert set(rows) == {"observation error, grade H", "observation error, grade M", "observation error, grade L",
                         "observation error, ungraded figures"}
    for row in rows.values():
        assert row.low <= float(row.value) <= row.high and (row.sources or row.assumption)

    class Content:  # what `sources` reads of a report's content
        pass

    content = Content()
    content.scenario = scenario
    shown = sources(content)  # type: ignore[arg-type]
    assert [row["range"] for row in shown["errors"]][:2] == ["0.09 to 0.45", "0.17 to 0.45"]
    assert any("E01" in cite for cite, _ in shown["cited"])  # the medium grade's sources are cited in full



def test_a_posteriors_label_from_a_file_name_cannot_become_markup(tmp_path: Path) -> None:
    """With a posterior the report adds its calibration section and names the draws in the method text; a
    shipped posterior's label carries its file's name, which may hold any character."""
    from dataclasses import replace

    from aftermath.inference.calibration import calibrate
    from tests.calibration_helpers import synthetic_scenario

    text, scenario = synthetic_scenario(3)
    source = tmp_path / "synthetic.yaml"
    source.write_text(text, encoding="utf-8")
    posterior = calibrate(scenario, until="2018-12", draws=100, method="laplace", steps=200, seed=1)
    posterior = replace(posterior, source=f"shipped posterior {attack(7)}.posterior.csv")
    page = build_report(tmp_path / "r.html", source, samples=4, replicates=1, seed=1, executor=SERIAL,
                        stock_runs=4, posterior=posterior).read_text(encoding="utf-8")
    assert_inert(page)
    assert '<h3 id="calibration">' in page
    # shown in the calibration section, the assumptions and About (the sampler)
    assert attack(7) not in page and page.count(escaped(7)) == 3
