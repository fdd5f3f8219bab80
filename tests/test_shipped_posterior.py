"""The posterior shipped beside a scenario (issue 13, item 6): the default scenario's draws load and match
their hash and the scenario's; commands draw from them by default, `--prior` does not; a changed draws file
is refused with one clear line, and draws made for another version of the scenario are not used."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from aftermath.inference.calibration import calibrate
from aftermath.inference.shipped import (
    ShippedPosteriorError,
    draws_path,
    parameter_source,
    read_draws,
    shipped_posterior,
    write_draws,
)
from aftermath.model.compile import model_hash, scenario_hash
from aftermath.scenario.loader import load_scenario
from tests.calibration_helpers import synthetic_scenario
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def default_scenario():
    return load_scenario(None)


def test_the_default_scenario_ships_current_posterior_draws(default_scenario) -> None:
    path = draws_path(default_scenario)
    assert path is not None and path.name == "isis_after_caliphate.posterior.csv" and path.is_file()
    _, made_for, command = read_draws(path)
    assert made_for == model_hash(default_scenario), (
        f"the default scenario changed after its posterior was calibrated: rerun {command}")
    shipped, stale = shipped_posterior(default_scenario)
    assert stale is None and shipped is not None
    assert shipped.until == "2017-12" and shipped.method == "laplace" and len(shipped) >= 500
    assert all(np.isfinite(shipped.draws[n]).all() for n in shipped.names)
    assert np.isclose(shipped.weights.sum(), 1.0)
    source = parameter_source(default_scenario)
    assert source.kind == "posterior" and "shipped posterior" in source.label
    assert parameter_source(default_scenario, prior=True).posterior is None
    # the data narrowed some parameter well inside its prior (else the calibration did nothing)
    d = shipped.diagnostics
    assert d["observations"] >= 60 and d["samples"] >= 4000
    # its importance weights are reliable (Vehtari et al. 2024: Pareto k below 0.7) and not a handful of draws
    assert d["pareto_k"] < 0.7 and d["ess"] > 1000


def test_run_draws_from_the_shipped_posterior_by_default_and_from_the_priors_with_prior() -> None:
    common = ("run", "--engine", "deterministic", "-n", "4", "--json")
    default = run_cli(*common)
    assert default.returncode == 0, default.stderr
    prior = run_cli(*common, "--prior")
    assert prior.returncode == 0, prior.stderr
    used, baseline = json.loads(default.stdout), json.loads(prior.stdout)
    assert used["parameters"]["from"] == "posterior" and "isis_after_caliphate.posterior.csv" in used["parameters"][
        "label"]
    assert baseline["parameters"] == {"from": "prior", "label": "prior (the declared distributions)", "warning": None}
    assert used["bands"] != baseline["bands"]
    conflict = run_cli("run", "--prior", "--posterior", "3")
    assert conflict.returncode == 2 and "give only one of them" in conflict.stderr
    assert "Traceback" not in conflict.stderr


@pytest.fixture
def shipped(tmp_path):
    """A synthetic scenario file with a posterior draws file beside it, written by `calibrate --draws-file`."""
    text, _ = synthetic_scenario(6)
    path = tmp_path / "synthetic.yaml"
    path.write_text(text)
    done = run_cli("calibrate", str(path), "--until", "2018-12", "--method", "emcee", "--steps", "6", "--walkers", "8",
                   "--draws", "40",
                   "--store", str(tmp_path / "runs.duckdb"), "--draws-file", str(tmp_path / "synthetic.posterior.csv"))
    assert done.returncode == 0, done.stderr
    return path


def test_a_changed_draws_file_is_refused_with_one_line(shipped) -> None:
    draws = shipped.with_name("synthetic.posterior.csv")
    lines = draws.read_text().splitlines(keepends=True)
    lines[6] = lines[6].replace("0.", "0.9", 1)  # one draw changed, its header left alone
    draws.write_text("".join(lines))
    with pytest.raises(ShippedPosteriorError, match="changed after 'aftermath calibrate' wrote them"):
        read_draws(draws)
    for command in (("run", str(shipped), "-n", "5"), ("fit-check", str(shipped), "-n", "5"),
                    ("ensemble", str(shipped), "-s", "4", "-n", "1", "--workers", "1")):
        refused = run_cli(*command)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, command
        assert len(refused.stderr.strip().splitlines()) == 1 and "regenerate the file with aftermath calibrate" in (
            refused.stderr), command
    assert run_cli("run", str(shipped), "-n", "5", "--prior").returncode == 0


def test_the_commands_label_the_draws_and_stale_draws_are_not_used(shipped, tmp_path) -> None:
    ran = run_cli("run", str(shipped), "-n", "5")
    assert ran.returncode == 0, ran.stderr
    assert "parameters drawn from the shipped posterior synthetic.posterior.csv" in " ".join(ran.stdout.split())
    checked = json.loads(run_cli("fit-check", str(shipped), "-n", "5", "--json").stdout)
    assert checked["parameters"]["from"] == "posterior"
    ensemble = run_cli("ensemble", str(shipped), "-s", "4", "-n", "1", "--workers", "1", "--json",
                       "--store", str(tmp_path / "e.duckdb"))
    assert json.loads(ensemble.stdout)["sampler"].startswith("shipped posterior synthetic.posterior.csv")
    report = run_cli("report", str(shipped), "-s", "4", "-n", "1", "--map-runs", "1", "--workers", "1",
                     "-o", str(tmp_path / "r.html"))
    assert report.returncode == 0, report.stderr
    page = (tmp_path / "r.html").read_text()
    assert "draws from the shipped posterior synthetic.posterior.csv" in page and "Calibration: what the data" in page
    sampled = run_cli("ensemble", str(shipped), "-s", "4", "--sampler", "mc", "--store", str(tmp_path / "e.duckdb"))
    assert sampled.returncode == 2 and "add --prior" in sampled.stderr
    # the scenario edited after calibrating: its draws are stale, said so, and the priors are used
    edited = tmp_path / "edited"
    edited.mkdir()
    shutil.copy(shipped.with_name("synthetic.posterior.csv"), edited / "synthetic.posterior.csv")
    (edited / "synthetic.yaml").write_text(shipped.read_text().replace("median: 0.15", "median: 0.16"))
    stale = run_cli("run", str(edited / "synthetic.yaml"), "-n", "5", "--json")
    assert stale.returncode == 0, stale.stderr
    assert "calibrated on another version of scenario" in stale.stderr and "rerun aftermath calibrate" in stale.stderr
    assert json.loads(stale.stdout)["parameters"]["from"] == "prior"
    # reworded only (title, descriptions, assumptions, a note): the draws still fit, and are used
    reworded = tmp_path / "reworded"
    reworded.mkdir()
    shutil.copy(shipped.with_name("synthetic.posterior.csv"), reworded / "synthetic.posterior.csv")
    text = shipped.read_text()
    changed = (text.replace("title: ", "title: Reworded, ", 1).replace("assumption: synthetic", "assumption: made up")
               .replace("description: ", "description: Reworded. "))
    assert changed != text
    (reworded / "synthetic.yaml").write_text(changed)
    kept = run_cli("run", str(reworded / "synthetic.yaml"), "-n", "5", "--json")
    assert kept.returncode == 0 and "warning" not in kept.stderr, kept.stderr
    assert json.loads(kept.stdout)["parameters"]["from"] == "posterior"


def test_the_model_hash_covers_numbers_and_structure_not_prose(default_scenario) -> None:
    """What the shipped draws are checked against: prose changes keep it, a number or a name changes it; the
    stored runs' scenario hash still covers everything."""
    scenario = default_scenario
    name, parameter = next((n, p) for n, p in scenario.parameters.items() if p.distribution is not None)

    def with_parameter(changed, key: str = name):
        return scenario.model_copy(update={"parameters": {**scenario.parameters, key: changed}})

    reworded = with_parameter(parameter.model_copy(update={"description": "other words", "sources": [],
                                                           "assumption": "another reason"}))
    retitled = reworded.model_copy(update={"title": "Another title", "description": "Another text."})
    assert model_hash(retitled) == model_hash(scenario)
    assert scenario_hash(retitled) != scenario_hash(scenario)
    renumbered = with_parameter(parameter.model_copy(update={"distribution": parameter.distribution.model_copy(
        update={"relative": not parameter.distribution.relative})}))
    assert model_hash(renumbered) != model_hash(scenario)
    step = scenario.time.model_copy(update={"substeps": scenario.time.substeps + 1})
    assert model_hash(scenario.model_copy(update={"time": step})) != model_hash(scenario)
    # a field name is prose, not a key that happens to be spelled like one
    assert model_hash(with_parameter(parameter, key="description")) != model_hash(scenario)
    model = scenario.observation_model
    wider = model.model_copy(update={"default": model.default.model_copy(update={"sigma": 0.6})})
    assert model_hash(scenario.model_copy(update={"observation_model": wider})) != model_hash(scenario)


def test_written_draws_read_back_as_the_same_posterior(tmp_path) -> None:
    _, scenario = synthetic_scenario(3)
    posterior = calibrate(scenario, until="2018-12", method="prior", draws=30, steps=60, seed=1)
    path = write_draws(tmp_path / "s.posterior.csv", scenario, posterior, "aftermath calibrate s.yaml")
    again, made_for, command = read_draws(path)
    assert made_for == model_hash(scenario) and command == "aftermath calibrate s.yaml"
    assert again.names == posterior.names and again.until == "2018-12"
    for name in posterior.names:
        np.testing.assert_allclose(again.draws[name], posterior.draws[name], rtol=1e-6)
    path.write_text("death_hazard\n0.1\n")
    with pytest.raises(ShippedPosteriorError, match="not an aftermath posterior draws file"):
        read_draws(path)
