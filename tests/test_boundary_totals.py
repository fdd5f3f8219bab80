"""What a run records as entered from sources and exited to sinks, against a mass balance and closed forms.

One compartment of 1,000 persons, a sink hazard of 0.05 per month and a source of 10 persons per month:
entered by month t is 10 t in every engine; every person who left went to the sink, so the balance
entered - exited = count(t) - 1,000 holds at every step (whatever the engine's discretisation).
"""

from __future__ import annotations

import numpy as np
import pytest

from aftermath import compile_model, simulate
from tests.conftest import scenario_from


def _model(inflow: str = "inflow"):
    fixed = {"fixed": "test", "assumption": "test"}
    return compile_model(scenario_from({
        "name": "balance",
        "title": "a source and a sink",
        "time": {"start": "2015-01", "end": "2015-12"},
        "compartments": {"active": {"initial": 1000, "assumption": "test"}},
        "boundaries": {"recruits": {"kind": "source"}, "dead": {"kind": "sink"}},
        "parameters": {"die": {"unit": "per month", "value": 0.05, **fixed},
                       "inflow": {"unit": "persons per month", "value": 10.0, **fixed},
                       "span": {"unit": "months", "value": 12.0, **fixed}},
        "flows": [{"name": "recruiting", "from": "recruits", "to": "active", "rate": inflow},
                  {"name": "dying", "from": "active", "to": "dead", "rate": "die"}],
    }))


@pytest.mark.parametrize("engine", ["deterministic", "stochastic", "ode"])
@pytest.mark.parametrize("growing", [False, True], ids=["constant", "growing"])
def test_entered_and_exited_balance_the_count_at_every_step(engine: str, growing: bool) -> None:
    """Constant rates run as stretches of steps in one kernel call, an inflow growing in time, 10 (1 + t / 12)
    persons a month at t months, step by step: entered by month m is then 10 sum_{k < m} (1 + k / 12) in the
    step engines (each step at the rate of its start) and 10 (m + m^2 / 24) in the ODE engine."""
    result = simulate(_model("inflow * (1 + t / span)" if growing else "inflow"), 3, engine=engine, seed=1)
    entered, exited, count = (result[name].values for name in ("entered", "exited", "active"))
    months = np.arange(12)
    if not growing:
        expected = 10.0 * months
    elif engine == "ode":
        expected = 10.0 * (months + months**2 / 24)
    else:
        expected = 10.0 * np.concatenate([[0.0], np.cumsum(1 + months[:-1] / 12)])
    if engine != "stochastic":  # the stochastic inflow is Poisson: its count, not its mean
        np.testing.assert_allclose(entered, np.broadcast_to(expected, entered.shape), rtol=1e-6, atol=1e-9)
    assert (exited[:, 0] == 0).all() and (np.diff(exited, axis=1) > 0).all()
    np.testing.assert_allclose(entered - exited, count - 1000.0, rtol=1e-6, atol=1e-6)
