"""Fuzzing `aftermath run` with extreme and non-finite numbers (hypothesis).

Every generated scenario (with `--set` and `--policy` values as extreme as its numbers) must either run to
the end with finite, non-negative, conserved counts (exit 0), or stop with exit 2 and one line `error: ...`,
within a time limit: never hang, never a traceback, never garbage with exit 0. Each example runs the real
console entry point in an isolated child (tests/isolated.py), so a hang is killed and reported instead of
blocking the suite.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.conftest import cohort_scenario
from tests.isolated import Isolated

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="each example runs in a forked child")

LIMIT_SECONDS = 60.0
EXTREMES = [
    float("nan"), float("inf"), -float("inf"), 1e300, -1e300, 1e100, 9.3e18, 1e16, 1e12, 1e10, 5e9,
    1e-300, 0.0, -0.0, -1e-9, -1.0, 0.5, 1.0, 3.0, 40.0,
]
numbers = st.one_of(st.sampled_from(EXTREMES), st.floats(allow_nan=True, allow_infinity=True))
RATES = [
    "leave * surge",
    "leave * exp(t * leave * 40)",
    "leave * gone / (gone + home) * (gone + home) / gone",
    "leave * active / (active + home)",
    "max(leave, 0) * min(surge, 1e300)",
]
INFLOWS = ["inflow", "inflow * surge", "inflow * exp(t * leave * 40)", "inflow * (active + 1) / (home + 1)"]


def _yaml(data: dict[str, Any]) -> str:
    """A scenario dict as YAML (JSON with YAML's spelling of NaN and infinities)."""
    text = json.dumps(data)
    return re.sub(r"-Infinity\b", "-.inf", re.sub(r"\bInfinity\b", ".inf", re.sub(r"\bNaN\b", ".nan", text)))


#: Each field and the values it usually takes: each example makes one to three fields extreme, so that most
#: examples pass the checks on loading and reach the engine.
SANE = {
    "leave": st.floats(0, 2), "die_A": st.floats(0, 2), "die_B": st.floats(0, 2), "inflow": st.floats(0, 1e4),
    "initial_A": st.floats(0, 1e7), "initial_B": st.floats(0, 1e7), "surge_start": st.floats(0, 50),
    "surge_end": st.floats(0, 50), "fraction": st.floats(0, 1), "effect": st.floats(0, 10),
    "strength": st.floats(0, 1), "distribution_1": st.floats(0.1, 100), "distribution_2": st.floats(0.1, 10),
    "truncation_low": st.floats(0, 10), "truncation_high": st.floats(20, 1e4), "set": st.floats(0, 1),
    "policy": st.floats(0, 1),
    "size_default": st.floats(0, 1e5), "size_sigma": st.floats(0.01, 0.5),
}


@st.composite
def hostile_runs(draw: st.DrawFn) -> tuple[dict[str, Any], list[str]]:
    extreme = draw(st.sets(st.sampled_from(sorted(SANE)), min_size=1, max_size=3))

    def value(field: str) -> float:
        return draw(numbers if field in extreme else SANE[field])

    operation = draw(st.sampled_from(["multiply", "add", "set"]))
    data = cohort_scenario(
        interventions={
            "push": {
                "start": "2015-06",
                "effects": [{"parameter": "inflow", operation: value("effect")}],
                "strength": value("strength"),
                "assumption": "test",
            }
        }
    )
    parameters = data["parameters"]
    parameters["leave"]["value"] = value("leave")
    parameters["die"]["value"] = {"A": value("die_A"), "B": value("die_B")}
    parameters["inflow"]["value"] = value("inflow")
    if draw(st.booleans()):
        kind = draw(st.sampled_from(["normal", "lognormal", "uniform"]))
        first, second = value("distribution_1"), value("distribution_2")
        fields = {
            "normal": {"mean": first, "sd": second},
            "lognormal": {"median": first, "sigma": second},
            "uniform": {"low": min(first, parameters["inflow"]["value"]), "high": first + second},
        }
        distribution = {"type": kind, **fields[kind]}
        if kind != "uniform" and draw(st.booleans()):
            distribution.update(low=value("truncation_low"), high=value("truncation_high"))
        parameters["inflow"].pop("fixed")
        parameters["inflow"]["distribution"] = distribution
    if draw(st.booleans()):
        data["compartments"]["active"]["initial"] = {"A": value("initial_A"), "B": value("initial_B")}
    else:  # a parameter with a default for B and a relative lognormal
        parameters["size"] = {
            "unit": "persons", "dims": ["origin"], "value": {"A": value("initial_A")}, "default": value("size_default"),
            "distribution": {"type": "lognormal", "median": 1, "sigma": value("size_sigma"), "relative": True},
            "assumption": "test",
        }
        data["compartments"]["active"]["initial"] = "size"
    data["schedules"]["surge"]["points"] = {"2015-01": value("surge_start"), "2016-01": value("surge_end")}
    data["flows"][0]["rate"] = draw(st.sampled_from(RATES))
    data["flows"][3]["rate"] = draw(st.sampled_from(INFLOWS))
    data["events"][0]["fraction"] = value("fraction")
    engine = draw(st.sampled_from(["stochastic", "deterministic"]))
    options = ["-n", "3", "--seed", str(draw(st.integers(0, 2**32))), "--engine", engine]
    if draw(st.booleans()):
        options += ["--set", f"{draw(st.sampled_from(['leave', 'inflow', 'share']))}={value('set')!r}"]
    if draw(st.booleans()):
        options += ["--policy", f"push={value('policy')!r}"]
    if draw(st.booleans()):
        options.append("--fixed-parameters")
    return data, options


def _check_counts(path: Path) -> None:
    with xr.open_dataset(path, engine="netcdf4") as result:
        stocks = [name for name, v in result.data_vars.items() if v.attrs.get("kind") == "compartment"]
        total = 0
        for name in stocks:
            values = result[name].values.astype(float)
            assert np.isfinite(values).all() and (values >= 0).all(), name
            total = total + values.reshape(values.shape[0], values.shape[1], -1).sum(axis=2)
        entered, exited = result["entered"].values, result["exited"].values
        assert np.isfinite(entered).all() and np.isfinite(exited).all()
        expected = total[:, :1] + entered - exited
        assert np.allclose(total, expected, rtol=1e-9, atol=1e-6), "people are not conserved"


def _example(options: list[str], **changes: Any) -> tuple[dict[str, Any], list[str]]:
    data = cohort_scenario()
    for name, parameter in changes.items():
        data["parameters"][name] = parameter
    if "size" in changes:
        data["compartments"]["active"]["initial"] = "size"
    return data, ["-n", "3", *options]


def _size(**fields: Any) -> dict[str, Any]:
    return {"unit": "persons", "dims": ["origin"], "value": {"A": 500}, "assumption": "test", **fields}


@pytest.mark.slow
@example(run=_example(["--set", "inflow=1e300"]))  # a Poisson mean beyond int64
@example(run=_example([], size=_size(default=float("nan"), fixed="test")))  # NaN counts in the binomial sampler
@example(run=_example([], size=_size(default=50, distribution={"type": "lognormal", "median": 1, "sigma": 50,
                                                              "relative": True})))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(run=hostile_runs())
def test_a_hostile_run_finishes_with_sound_counts_or_exits_2_with_one_line(run, isolated: Isolated) -> None:
    data, options = run
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        scenario = folder / "hostile.yaml"
        scenario.write_text(_yaml(data))
        args = ["run", str(scenario), *options, "--out", str(folder / "out.nc")]
        result = isolated.call("tests.isolated:run_cli", args, name, limit=LIMIT_SECONDS)  # fails if it hangs
        event(f"exit {result['status']}")
        assert "Traceback" not in result["stdout"] + result["stderr"], result["stderr"]
        if result["status"] == 0:
            _check_counts(folder / "out.nc")
        else:
            assert result["status"] == 2, result
            lines = result["stderr"].splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: "), result["stderr"]
            assert result["stdout"] == ""
            assert not (folder / "out.nc").exists()
