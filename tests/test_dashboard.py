"""The dashboard's data layer and server without a browser: settings give the API's numbers, start months and
fixed parameters reach experiments, strata filters add up, jobs survive failures, the CLI refuses bad input."""

from __future__ import annotations

import time
import urllib.request

import numpy as np
import pytest

from aftermath import compile_model, parse_scenario, simulate
from aftermath.scenario.schema import parse_month
from tests.conftest import run_cli

pytest.importorskip("dash", reason="the dashboard extra is not installed (pip install -e '.[dashboard]')")

from aftermath.dashboard.jobs import Jobs
from aftermath.dashboard.workspace import (
    DASHBOARD_FIXED,
    Settings,
    Workspace,
    expand_filter,
    levers,
    select_series,
    series_choices,
    variant_text,
    with_starts,
)


@pytest.fixture(scope="module")
def workspace() -> Workspace:
    return Workspace()


def test_explore_equals_the_api_and_is_cached(workspace: Workspace) -> None:
    settings = Settings.of({"border_and_intelligence": 0.5}, {"border_and_intelligence": parse_month("2016-06")},
                           {"return_hazard": 0.155})
    dataset = workspace.explore("competing_exits", settings)
    assert workspace.explore("competing_exits", settings) is dataset
    scenario = with_starts(workspace.entry("competing_exits").scenario, {"border_and_intelligence": 24197})
    model = compile_model(scenario, overrides={"return_hazard": 0.155}, policies={"border_and_intelligence": 0.5})
    expected = simulate(model, replicates=1, engine="deterministic")
    np.testing.assert_array_equal(dataset["in_theatre_total"].values, expected["in_theatre_total"].values)
    baseline = workspace.explore("competing_exits", Settings())
    assert not np.array_equal(baseline["in_theatre_total"].values, dataset["in_theatre_total"].values)


def test_variant_text_keeps_what_the_sliders_set(workspace: Workspace) -> None:
    entry = workspace.entry("competing_exits")
    settings = Settings.of({}, {"border_and_intelligence": parse_month("2016-06")}, {"return_hazard": 0.155})
    variant = parse_scenario(variant_text(entry.text, settings), "variant.yaml")
    assert variant.interventions["border_and_intelligence"].start == parse_month("2016-06")
    assert variant.parameters["return_hazard"].value == 0.155
    assert variant.parameters["return_hazard"].distribution is None
    assert variant.parameters["return_hazard"].fixed == DASHBOARD_FIXED
    assert variant_text(entry.text, Settings()) == entry.text
    # The variant compiles to the same deterministic run as the explorer's copy of the scenario.
    from_text = simulate(compile_model(variant, policies={"border_and_intelligence": 1.0}), replicates=1,
                         engine="deterministic")
    explored = workspace.explore("competing_exits", Settings.of({"border_and_intelligence": 1.0}, dict(
        settings.starts), dict(settings.overrides)))
    np.testing.assert_allclose(from_text["in_theatre_total"].values, explored["in_theatre_total"].values)


def test_bad_settings_are_refused_with_the_field(workspace: Workspace) -> None:
    from aftermath.errors import ScenarioError

    scenario = workspace.entry("competing_exits").scenario
    with pytest.raises(ScenarioError, match="cannot start in 2030-01"):
        with_starts(scenario, {"border_and_intelligence": parse_month("2030-01")})
    with pytest.raises(ScenarioError, match="unknown parameter"):
        workspace.experiment("competing_exits", Settings.of(overrides={"nope": 1.0}), [{}], 2, 1, 1)
    with pytest.raises(ScenarioError, match="not offered"):
        workspace.entry("/etc/passwd")


def test_ensembles_draw_from_the_shipped_posterior_as_the_command_line_does(workspace: Workspace, tmp_path,
                                                                           monkeypatch) -> None:
    from aftermath.experiments.sampling import sample_draws
    from aftermath.inference.shipped import parameter_source

    scenario = workspace.entry("isis_after_caliphate").scenario
    cli = parameter_source(scenario)  # what `aftermath ensemble` uses without --prior
    source = workspace.parameters("isis_after_caliphate")
    assert source.kind == cli.kind == "posterior" and source.label == cli.label
    assert "shipped posterior isis_after_caliphate.posterior.csv" in source.label
    moved = next(n for n in source.posterior.names if isinstance(scenario.parameters[n].value, int | float))
    value = float(scenario.parameters[moved].value)
    settings = Settings.of(overrides={moved: value})
    experiment, used = workspace.experiment("isis_after_caliphate", settings, [{}], 5, 1, 7)
    assert used.label == source.label and experiment.sampler == source.label
    expected = cli.draws(5, 7)
    assert moved not in experiment.draws and set(experiment.draws) == set(expected) - {moved}
    for name, draws in experiment.draws.items():
        np.testing.assert_array_equal(draws, expected[name])
    # the priors on request, as `--prior`: the experiment samples the variant's declared distributions
    prior, used = workspace.experiment("isis_after_caliphate", settings, [{}], 5, 1, 7, prior=True)
    assert used.kind == "prior" and prior.sampler == "lhs"
    sampled = sample_draws(prior.scenario, 5, "lhs", 7)
    assert set(prior.draws) == set(sampled) and moved not in sampled
    for name, draws in prior.draws.items():
        np.testing.assert_array_equal(draws, sampled[name])
    # a scenario without a posterior, and an upload (nothing beside it is read, even a file of its name here)
    assert workspace.parameters("competing_exits").kind == "prior"
    entry = workspace.entry("isis_after_caliphate")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "isis_after_caliphate.posterior.csv").write_text("not draws\n")
    key = workspace.add_upload(entry.text, "isis_after_caliphate.yaml")
    assert workspace.parameters(key).kind == "prior"


def test_levers_stay_within_declared_ranges(workspace: Workspace) -> None:
    scenario = workspace.entry("competing_exits").scenario
    found = {lever.name: lever for lever in levers(scenario)}
    assert "return_hazard" in found and "border_checks" not in found  # fixed parameters are not levers
    for lever in found.values():
        assert lever.low <= lever.value <= lever.high


def test_strata_filters_and_groups_add_up(workspace: Workspace) -> None:
    entry = workspace.entry("isis_after_caliphate")
    scenario = entry.scenario
    region = next(iter(scenario.groups["origin"]))
    labels = expand_filter(scenario, "origin", [f"group:{region}"])
    assert labels == [o for o in scenario.dimensions["origin"] if o in scenario.groups["origin"][region]]
    fake = {"returned_by_origin": (("replicate", "time", "origin"),
                                   np.arange(2 * 3 * 31, dtype=float).reshape(2, 3, 31))}
    import xarray as xr

    dataset = xr.Dataset(fake, coords={"origin": scenario.dimensions["origin"],
                                       "time": np.arange("2014-01", "2014-04", dtype="datetime64[M]")})
    whole = select_series(dataset, scenario, "outcome:returned_by_origin")
    part = select_series(dataset, scenario, "outcome:returned_by_origin", {"origin": [f"group:{region}", "US"]})
    np.testing.assert_array_equal(whole.values, dataset["returned_by_origin"].sum("origin").values)
    np.testing.assert_array_equal(part.values, dataset["returned_by_origin"].sel(origin=[*labels, "US"]).sum("origin"))


def test_a_failing_job_keeps_its_error_and_the_next_one_runs() -> None:
    jobs = Jobs()

    def fail(advance) -> None:
        advance(1)
        raise RuntimeError("boom")

    failed = jobs.start("ensemble", 2, fail)
    for _ in range(100):
        if failed.state != "running":
            break
        time.sleep(0.02)
    assert failed.state == "failed" and failed.error == "RuntimeError: boom" and failed.done == 1
    done = jobs.start("ensemble", 1, lambda advance: 42)
    for _ in range(100):
        if done.state != "running":
            break
        time.sleep(0.02)
    assert done.state == "done" and done.result == 42


def test_one_job_at_a_time() -> None:
    jobs = Jobs()
    gate = __import__("threading").Event()
    first = jobs.start("ensemble", 1, lambda advance: gate.wait(5))
    with pytest.raises(RuntimeError, match="still running"):
        jobs.start("comparison", 1, lambda advance: None)
    gate.set()
    for _ in range(100):
        if first.state != "running":
            break
        time.sleep(0.02)
    assert first.state == "done"


def test_server_answers_and_writes_nothing(tmp_path) -> None:
    from aftermath.dashboard.server import dashboard_server, serve_in_thread

    store = tmp_path / "runs.duckdb"
    server, url = dashboard_server("competing_exits", store, port=0)
    serve_in_thread(server)
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200 and b"aftermath dashboard" in response.read()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "report/1", timeout=30)
        assert refused.value.code == 400 and b"no run store here" in refused.value.read()
    finally:
        server.shutdown()
        server.server_close()
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_a_bad_scenario_and_a_taken_port(tmp_path) -> None:
    bad = run_cli("dashboard", str(tmp_path / "missing.yaml"), "--port", "0")
    assert bad.returncode == 2 and "no such file or shipped scenario" in bad.stderr and "Traceback" not in bad.stderr
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = run_cli("dashboard", "competing_exits", "--port", str(port))
    assert busy.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in busy.stderr
    assert "Traceback" not in busy.stderr


def test_outcomes_are_listed_with_their_labels_and_units() -> None:
    from aftermath.dashboard.app import _y_title

    scenario = parse_scenario(
        "name: u\ntitle: units\ntime: {start: 2000-01, end: 2001-01}\n"
        "compartments: {A: {initial: 10, assumption: a case}, B: {initial: 0, assumption: a case}}\n"
        "parameters: {h: {value: 0.1, unit: per month, assumption: a case, fixed: a test}}\n"
        "flows: [{name: leave, from: A, to: B, rate: h}]\n"
        "outcomes:\n"
        "  gone: {expr: B, label: Gone so far}\n"
        "  leaving: {expr: leave}\n"
        "  leaving_yearly: {expr: leave, unit: persons per year}\n"
        "  share_gone: {expr: B / (A + B)}\n"
    )
    choices = dict(series_choices(scenario))
    assert choices["outcome:gone"] == "Gone so far (gone, persons)"
    assert choices["outcome:leaving"].endswith("(leaving, persons per month)")
    assert choices["outcome:leaving_yearly"].endswith("(leaving_yearly, persons per year)")
    assert choices["outcome:share_gone"].endswith("(share_gone, share)")
    assert [_y_title(scenario, c) for c in ("outcome:leaving_yearly", "outcome:share_gone", "stock:A")] == [
        "persons per year", "share", "persons"]

