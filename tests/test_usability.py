"""What a newcomer meets (issue 15): labels and headline outcomes, explain, progress, outputs that say what
they did, unknown keys named, seed articles cited by what they are, and the API's defaults made explicit."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ruamel.yaml import YAML

import aftermath
from aftermath.errors import ScenarioError
from aftermath.scenario.describe import elements, headline_outcomes, outcome_kind, outcome_label
from aftermath.scenario.evidence import known_citations, seeds, short_citation
from aftermath.scenario.loader import load_scenario, parse_scenario, resolve_scenario_path
from aftermath.summary import bands
from tests.conftest import ROOT, run_cli, scenario_from

SHARED_SEEDS = ROOT.parent / "shared" / "seeds"


def test_run_shows_the_headline_set_with_labels_and_all_shows_everything() -> None:
    headline = run_cli("run", "competing_exits", "-n", "8")
    everything = run_cli("run", "competing_exits", "-n", "8", "--all")
    assert headline.returncode == everything.returncode == 0, headline.stderr + everything.stderr
    assert "Returned total" in headline.stdout and "stock, people" in headline.stdout
    assert "returned_by_origin" not in headline.stdout and "with --all" in headline.stdout
    assert "Returned by origin: FR" in everything.stdout and "with --all" not in everything.stdout
    assert re.search(r"\d+% to \d+%", headline.stdout)  # the share outcome reads in percent
    cells = re.sub(r"\d{4}-\d{2}", "", headline.stdout).replace("5-95%", "")
    assert not re.search(r"\d-\d", cells)  # ranges read 'to', never 'a-b'


def test_json_carries_labels_kinds_and_strata_names() -> None:
    done = run_cli("run", "competing_exits", "-n", "4", "--json")
    payload = json.loads(done.stdout)
    assert payload["outcomes"]["returned_share"] == {
        "label": "Returned share", "description": "Share of the cohort that has returned.", "kind": "share",
        "quantity": "ratio", "by": []}
    assert payload["outcomes"]["returns_per_month"]["quantity"] == "flow per step"
    assert payload["headline"] and set(payload["strata"]) == {"origin", "cohort"}


def test_the_default_scenario_names_its_strata_groups_and_outcomes() -> None:
    scenario = load_scenario(None)
    assert scenario.labels["origin"]["FR"] == "France" and scenario.labels["origin"]["MENA_rest"].startswith("rest")
    assert set(scenario.labels["origin"]) == set(scenario.dimensions["origin"])
    assert all(o.label for o in scenario.outcomes.values()), "every outcome of the default scenario has a label"
    assert all(c.label for c in scenario.compartments.values())
    assert scenario.network is not None and all(g.label for g in scenario.network.groups.values())
    assert 5 <= len(headline_outcomes(scenario)) <= 12
    assert outcome_kind(scenario, "returned_share_eu") == "share" and outcome_kind(scenario, "arrivals") == "count"
    assert outcome_label(scenario, "remnant_strength") == "IS members in Syria/Iraq"


def raw_competing_exits() -> dict:
    """The shipped example as the plain data of its YAML (dates as written)."""
    return YAML(typ="safe").load(resolve_scenario_path("competing_exits").read_text(encoding="utf-8"))


def test_labels_and_headline_are_checked() -> None:
    data = raw_competing_exits()
    with pytest.raises(ScenarioError, match=r"labels\.origin\.XX: 'XX' is not a stratum of 'origin'"):
        scenario_from({**data, "labels": {"origin": {"XX": "Nowhere"}}})
    with pytest.raises(ScenarioError, match=r"headline\[0\]: unknown outcome 'nothing'"):
        scenario_from({**data, "headline": ["nothing"]})


def test_explain_lists_every_kind_and_explains_one_name() -> None:
    listing = run_cli("explain", "isis_after_caliphate")
    assert listing.returncode == 0, listing.stderr
    for title in ("Dimensions", "Compartments", "Flows", "Parameters", "Schedules", "Events", "Interventions",
                  "Outcomes", "Network groups", "Sources"):
        assert title in listing.stdout, title
    one = run_cli("explain", "returned_eu")
    assert one.returncode == 0 and "outcome returned_eu" in one.stdout and "cumulative" in one.stdout
    stratum = run_cli("explain", "competing_exits", "return_hazard")
    assert stratum.returncode == 0 and "per year" in stratum.stdout
    wrong = run_cli("explain", "returnd_eu")
    assert wrong.returncode == 2 and "did you mean 'returned_eu'" in wrong.stderr
    kinds = {e.kind for e in elements(load_scenario(None)).values()}
    assert kinds >= {"dimension", "stratum", "compartment", "boundary", "parameter", "schedule", "flow", "event",
                     "intervention", "outcome", "network group", "source"}


def test_progress_lines_when_not_a_terminal() -> None:
    done = run_cli("run", "competing_exits", "-n", "3")
    assert "competing_exits: stochastic: started" in done.stderr and "done, 3/3 runs" in done.stderr
    quiet = run_cli("run", "competing_exits", "-n", "3", "--json")
    assert quiet.stderr == ""


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["events"].append({"name": "surge", "date": "2015-01", "from": "in_theatre", "to": "killed",
                                       "share": 0.1}),
         r"events\[0\]\.share: unknown field 'share' \(did you mean 'fraction'\?\).*'fraction' missing here"),
        (lambda d: d.setdefault("schedules", {}).update(
            {"s": {"kind": "step", "values": {"2015-01": 1}, "assumption": "x"}}),
         r"schedules\.s\.kind: unknown field 'kind' \(did you mean 'interpolation'\?\).*'points' missing"),
        (lambda d: d.update({"boundaries": [{"name": "recruitment", "kind": "source"}]}),
         r"boundaries: a list where a mapping is expected"),
        (lambda d: d["flows"][0].update({"rates": d["flows"][0].pop("rate")}),
         r"flows\[0\]\.rates: unknown field 'rates' \(did you mean 'rate'\?\)"),
    ],
)
def test_unknown_keys_are_named_before_the_missing_field(edit, message) -> None:
    data = raw_competing_exits()
    data.setdefault("events", [])
    edit(data)
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(json.dumps(data), "mine.yaml")


def test_version_and_usage_errors_name_the_right_command() -> None:
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.strip() == f"aftermath {aftermath.__version__}"
    root = run_cli("--bogus")
    assert root.returncode == 2 and "see 'aftermath --help'" in root.stderr and "aftermath aftermath" not in root.stderr
    sub = run_cli("run", "--bogus")
    assert sub.returncode == 2 and "see 'aftermath run --help'" in sub.stderr


def test_scenarios_never_cuts_the_file_column() -> None:
    done = subprocess.run([sys.executable, "-m", "aftermath", "scenarios"], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "COLUMNS": "70"}, timeout=120)
    folder = Path(aftermath.__file__).parent / "scenarios"
    assert done.returncode == 0 and "…" not in done.stdout and f"in {folder}\n" in done.stdout
    for name in ("competing_exits", "isis_after_caliphate"):
        assert re.search(rf"│ {name} +│.*│ {name}\.yaml +│", done.stdout)


def test_out_writes_outcomes_compressed_and_says_its_size(tmp_path: Path) -> None:
    out = tmp_path / "results.nc"
    done = run_cli("run", "competing_exits", "-n", "5", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert re.search(r"outcomes \(add --compartments.*written to .*results\.nc \(\d[\d.]* kB\)", done.stdout)
    import xarray as xr

    with xr.open_dataset(out) as data:
        assert "returned_total" in data and "in_theatre" not in data
        assert data["returned_total"].encoding.get("zlib")
    full = tmp_path / "full.nc"
    assert run_cli("run", "competing_exits", "-n", "5", "--out", str(full), "--compartments").returncode == 0
    with xr.open_dataset(full) as data:
        assert "in_theatre" in data
    assert run_cli("run", "competing_exits", "--compartments").returncode == 2


def test_resume_of_a_complete_run_says_so(tmp_path: Path) -> None:
    store = str(tmp_path / "runs.duckdb")
    assert run_cli("ensemble", "competing_exits", "-s", "2", "-n", "2", "--workers", "1", "--store", store
                   ).returncode == 0
    done = run_cli("resume", "1", "--store", store)
    assert done.returncode == 0 and "already complete" in done.stdout and len(done.stdout.splitlines()) == 1


def test_seed_articles_are_cited_by_author_title_outlet_and_date() -> None:
    table = seeds()
    if SHARED_SEEDS.exists():
        assert set(table) == {p.name for p in SHARED_SEEDS.glob("*.txt")}
    for row in table.values():
        assert all(row[k].strip() for k in ("author", "title", "outlet", "date", "basis"))
        assert re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", row["date"])
    text = known_citations()["seed:003_10eaacf1158f0fab.txt"].text
    assert text.startswith("Elena Pokalova (2019-10-02). Mission Accomplished?") and "Small Wars Journal" in text
    for cid, citation in known_citations().items():  # seed articles, and figures quoted from them
        if cid.removeprefix("seed:") in table or cid[:1].isupper():
            assert ".txt" not in citation.text and "seed:" not in citation.text, cid
    assert short_citation("seed:001_fd2c25ceb1b6fcbd.txt") == "Alex Wilner (2017-02-13)"
    with open(ROOT / "src" / "aftermath" / "evidence" / "seeds.csv", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == len(table)
    for path in [*(ROOT / "src" / "aftermath" / "scenarios").glob("*.yaml"), ROOT / "docs" / "model.md"]:
        assert not re.search(r"\bseeds? \d{3}", path.read_text(encoding="utf-8"), re.I), path.name


def test_simulate_holds_parameters_unless_given_draws_as_run_does(competing_model, competing_exits) -> None:
    """The API's default (fixed parameters) is `run --fixed-parameters`; draw_parameters gives `run`'s numbers."""
    fixed = aftermath.simulate(competing_model, replicates=6, seed=3)
    drawn = aftermath.simulate(competing_model, replicates=6, seed=3,
                               parameters=aftermath.draw_parameters(competing_exits, 6, seed=3))
    dates = ["2018-12"]
    for flags, dataset in (((), drawn), (("--fixed-parameters",), fixed)):
        done = run_cli("run", "competing_exits", "-n", "6", "--seed", "3", "--json", *flags)
        cli = {(r["outcome"], r["date"]): r["median"] for r in json.loads(done.stdout)["bands"]
               if r["date"] in dates and r.get("origin") is None}
        api = bands(dataset, dates)
        api = api[api["outcome"] == "returned_total"]
        assert cli[("returned_total", "2018-12")] == pytest.approx(float(api["median"].iloc[0]))
    assert not np.allclose(fixed["returned_total"].values, drawn["returned_total"].values)
