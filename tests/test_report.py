"""The report: its numbers come from the engine, policy changes are paired, scenario text is inert, writes are atomic."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from ruamel.yaml import YAML

from aftermath import compile_model, load_scenario, parse_scenario, simulate
from aftermath.report import build
from aftermath.report.build import build_report
from aftermath.report.content import collect
from aftermath.report.html import script_json
from aftermath.report.numbers import rounded, signed
from aftermath.scenario.loader import resolve_scenario_path
from aftermath.summary import bands
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


@pytest.fixture(scope="module")
def content():  # noqa: ANN201
    return collect(load_scenario("competing_exits"), 60, 7, [POLICY, {"border_and_intelligence": 0.5}])


def test_headline_bands_are_the_engines_bands(content) -> None:  # noqa: ANN001
    dataset = simulate(compile_model(load_scenario("competing_exits")), replicates=60, seed=7)
    expected = bands(dataset, content.key_dates, ["returned_total", "killed_total"])
    for row in expected.itertuples():
        fan = next(o for o in content.outcomes if o.name == row.outcome).fans[""]
        band = fan.at(row.date)
        assert (band.median, band.low, band.high) == pytest.approx((row.median, row.low, row.high))


def test_policy_differences_are_paired_replicate_by_replicate(content) -> None:  # noqa: ANN001
    scenario = load_scenario("competing_exits")
    base = simulate(compile_model(scenario), replicates=60, seed=7)
    policy = simulate(compile_model(scenario, policies=POLICY), replicates=60, seed=7)
    paired = (policy["returned_total"] - base["returned_total"]).values
    effect = content.policies[0]
    assert np.allclose(effect.differences["returned_total"].values, np.quantile(paired, [0.05, 0.25, 0.5, 0.75, 0.95],
                                                                                axis=0))
    # The policy only diverts returns into detention: the total leaving theatre, and so those still in
    # theatre, is the same draw for draw. Independent streams would give a spread around zero instead.
    assert not effect.differences["in_theatre_total"].values.any()
    assert effect.differences["returned_total"].at("2018-12").high < 0
    half = content.policies[1].differences["returned_total"].at("2018-12").median
    assert effect.differences["returned_total"].at("2018-12").median < half < 0


def test_sankey_and_country_table_account_for_everyone(content) -> None:  # noqa: ANN001
    sankey = content.sankey
    assert sankey.date == content.key_dates[-1]
    cohort = 1585 + 325 + 705 + 145 + 760 + 155 + 397 + 81
    from_origins = sum(value for a, _, value in sankey.links if sankey.columns[a] == 0)
    assert from_origins == pytest.approx(cohort)
    assert {sankey.nodes[b] for _, b, _ in sankey.links} == {"In theatre", "Killed", "Returned", "Detained"}
    table = content.countries
    assert [origin for origin, _ in table.rows] == ["FR", "DE", "GB", "BE"]
    departed = table.rows[0][1][0]
    assert departed.median == departed.low == departed.high == 1585 + 325
    parts = sum(cell.median for cell in table.rows[0][1][1:])
    assert abs(parts - departed.median) < 0.05 * departed.median


def test_observations_split_fitted_and_later() -> None:
    scenario = load_scenario("competing_exits")
    early = collect(scenario, 20, 1, fit_until="2017-12").observations[0]
    late = collect(scenario, 20, 1, fit_until="2016-06").observations[0]
    assert early.fitted and not late.fitted
    assert early.model == late.model
    assert early.inside == (early.low <= early.model.high and early.high >= early.model.low)


def test_report_is_one_self_contained_file(tmp_path: Path) -> None:
    out = build_report("competing_exits", tmp_path / "report.html", replicates=30, seed=3, policies=[POLICY],
                       figures_dir=tmp_path / "figures")
    page = out.read_text(encoding="utf-8")
    for heading in ("What the model expects", "How the numbers change over time", "Where the fighters went",
                    "Country by country", "What the policies change", "How well the model matches the record",
                    "Where each number comes from", "What we assumed", "About this run"):
        assert f">{heading}</h2>" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "@import" not in page and not re.search(r"url\((?!#)", page)
    assert page.count("<svg") == page.count("data-chart=") >= 8
    assert "Figure E04" in page  # the observation's and parameters' full citation
    data = json.loads(re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page).group(1))
    assert data["metadata"]["seed"] == 3 and data["metadata"]["runs (replicates)"] == 30
    assert data["metadata"]["scenario hash"] == compile_model(load_scenario("competing_exits")).scenario_hash
    files = sorted(p.name for p in (tmp_path / "figures").iterdir())
    stems = {name.rsplit(".", 1)[0] for name in files}
    assert files == sorted([f"{s}.png" for s in stems] + [f"{s}.svg" for s in stems])
    assert {"where-they-went", "policy-effects", "fan-returned_total"} <= stems
    assert (tmp_path / "figures" / "where-they-went.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.rglob(".*partial")]


def test_same_seed_same_report(tmp_path: Path) -> None:
    content_a = collect(load_scenario("competing_exits"), 25, 11)
    content_b = collect(load_scenario("competing_exits"), 25, 11)
    page_a = build.render(content_a, generated="fixed")
    assert page_a == build.render(content_b, generated="fixed")


def test_scenario_text_cannot_become_markup(tmp_path: Path) -> None:
    scenario = parse_scenario(hostile_yaml(), "hostile.yaml")
    assert scenario.title == ATTACK
    page = build_report(scenario, tmp_path / "hostile.html", replicates=10).read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<img" not in page and "<!--" not in page
    assert page.count("<script") == 1  # our JSON data block, which never runs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    block = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(block)["title"] == ATTACK


def test_script_json_cannot_close_its_element() -> None:
    text = script_json({"a": "</script><!-- \u2028 &"})
    assert "</" not in text and "<!--" not in text and "\u2028" not in text
    assert json.loads(text) == {"a": "</script><!-- \u2028 &"}


def test_a_failed_write_leaves_the_old_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report.html"
    out.write_text("old", encoding="utf-8")

    def broken(*args, **kwargs) -> str:  # noqa: ANN002, ANN003
        raise RuntimeError("disk full")

    monkeypatch.setattr(build, "render", broken)
    with pytest.raises(RuntimeError):
        build_report("competing_exits", out, replicates=5)
    assert out.read_text(encoding="utf-8") == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_bad_output_path_is_refused_before_any_run(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="expected a file ending in .html"):
        build_report("competing_exits", tmp_path / "report.pdf")
    with pytest.raises(ValueError, match="does not exist"):
        build_report("competing_exits", tmp_path / "missing" / "report.html")


@pytest.mark.parametrize(
    ("value", "text"),
    [(0, "0"), (0.3251, "0.33"), (7.26, "7.3"), (42.4, "42"), (546.5, "546"), (1910, "1,910"), (40123, "40,100"),
     (-598.2, "\u2212598"), (float("nan"), "n/a")],
)
def test_numbers_are_rounded_for_reading(value: float, text: str) -> None:
    assert rounded(value) == text


def test_changes_carry_their_sign() -> None:
    assert signed(12.0) == "+12" and signed(-3.0) == "\u22123" and signed(0.0) == "0"


def test_cli_report_and_its_errors(tmp_path: Path) -> None:
    out = tmp_path / "cli.html"
    done = run_cli("report", "competing_exits", "-n", "8", "--policy", "border_and_intelligence=0.5",
                   "--at", "2016-12", "-o", str(out))
    assert done.returncode == 0, done.stderr
    page = out.read_text(encoding="utf-8")
    assert "in 2016-12" in page and "Border and intelligence (strength 0.5)" in page
    for args, message in (
        (["-o", str(tmp_path / "r.txt")], "expected a file ending in .html"),
        (["--policy", "nope", "-o", str(out)], "unknown policy 'nope'"),
        (["--at", "2040-01", "-o", str(out)], "outside the scenario's time span"),
        (["--at", "soon", "-o", str(out)], "not a date"),
    ):
        failed = run_cli("report", "competing_exits", *args)
        assert failed.returncode == 2, args
        assert message in failed.stderr and "Traceback" not in failed.stderr
        assert len(failed.stderr.strip().splitlines()) == 1
