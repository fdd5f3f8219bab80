"""Conformance: models with answers derived by hand or computed with scipy independently of the engines.

For each model: the ODE engine within 1e-4 relative of the answer; the deterministic engine within 1%
with the sub-steps the coarse-step check recommends; for the linear models (where the deterministic
engine is the exact mean of the stochastic chain) the stochastic mean within 5 standard errors of the
deterministic engine (2 compartments x 3 and x 5 yearly dates = 16 comparisons at two-sided 5.7e-7: a false
failure below 1e-5 per run). Nonlinear models (SIR, SEIR, S-E-R, logistic) are not in the last check: the mean
of a nonlinear chain is not the chain of means (an outbreak from 5 cases dies out early in (1/R0)^5 of runs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from scipy.optimize import brentq

from aftermath import compile_model, simulate
from aftermath.engines.steps import TARGET_HAZARD_STEP, WARN_HAZARD_STEP, coarse_step
from tests.conftest import scenario_from

ODE_RTOL = 1e-4


def _parameter(value: float, unit: str) -> dict[str, Any]:
    return {"unit": unit, "value": value, "fixed": "a conformance case", "assumption": "a conformance case"}


def _scenario(
    compartments: dict[str, float],
    parameters: dict[str, tuple[float, str]],
    flows: list[tuple[str, str, str, str]],
    end: str,
    step: str = "month",
    **extra: Any,
) -> Any:
    boundaries = {"births": {"kind": "source"}, "deaths": {"kind": "sink"}}
    return scenario_from(
        {
            "name": "conformance",
            "title": "a conformance case",
            "time": {"start": "2000-01", "end": end, "step": step},
            "compartments": {n: {"initial": v, "assumption": "a conformance case"} for n, v in compartments.items()},
            "boundaries": boundaries,
            "parameters": {n: _parameter(v, u) for n, (v, u) in parameters.items()},
            "flows": [{"name": n, "from": a, "to": b, "rate": r} for n, a, b, r in flows],
            **extra,
        }
    )


def _run(scenario: Any, engine: str, substeps: int | None = None, replicates: int = 1, seed: int = 0):
    model = compile_model(scenario, substeps=substeps)
    return simulate(model, replicates=replicates, engine=engine, seed=seed)  # type: ignore[arg-type]


def _recommended(scenario: Any) -> int:
    check = coarse_step(compile_model(scenario))
    assert check is not None
    return check.recommended


def _series(result, name: str) -> np.ndarray:
    return result[name].values[0]


# --- the models and their answers -----------------------------------------------------------


def sir(latent: bool = False) -> Any:
    """SIR (or SEIR with a 2-month latent period): beta 0.3 per month, 5-month infectious period,
    N = 1000 with 5 infectious at the start."""
    compartments = {"S": 995.0, "E": 0.0, "I": 5.0, "R": 0.0} if latent else {"S": 995.0, "I": 5.0, "R": 0.0}
    parameters = {"beta": (0.3, "per month"), "gamma": (0.2, "per month"), "sigma": (0.5, "per month")}
    flows = [
        ("infection", "S", "E" if latent else "I", "beta * I / (S + I + R" + (" + E)" if latent else ")")),
        ("recovery", "I", "R", "gamma"),
    ]
    if latent:
        flows.append(("onset", "E", "I", "sigma"))
    return _scenario(compartments, parameters, flows, end="2020-01")


def sir_final_size(n: float = 1000.0, s0: float = 995.0, r0: float = 1.5) -> float:
    """Final size relation of SIR and SEIR with no one removed at the start (Kermack-McKendrick):
    ln(S_inf / S0) = -R0 R_inf / N with R_inf = N - S_inf; solved for R_inf."""
    return brentq(lambda r: r - (n - s0 * np.exp(-r0 * r / n)), 1.0, n)


def sir_peak(n: float = 1000.0, s0: float = 995.0, i0: float = 5.0, r0: float = 1.5) -> float:
    """SIR's invariant I + S - (N/R0) ln S is constant; I peaks where S = N/R0."""
    return i0 + s0 - n / r0 - (n / r0) * np.log(s0 * r0 / n)


def scipy_reference(derivative, y0: list[float], months: int) -> np.ndarray:
    """The ODE solved by scipy alone (tight tolerances), sampled monthly: (months + 1, len(y0))."""
    grid = np.arange(months + 1, dtype=float)
    solution = solve_ivp(derivative, (0, months), y0, method="DOP853", t_eval=grid, rtol=1e-11, atol=1e-10)
    return solution.y.T


def inflow_chain() -> Any:
    """1000 active with exit hazards 0.6 (to home, which empties at 0.2) and 0.3 (to a sink) per year,
    plus 120 persons per year recruited."""
    return _scenario(
        {"active": 1000.0, "home": 0.0},
        {
            "out": (0.6, "per year"),
            "die": (0.3, "per year"),
            "leave": (0.2, "per year"),
            "src": (120, "persons per year"),
        },
        [
            ("returning", "active", "home", "out"),
            ("dying", "active", "deaths", "die"),
            ("moving_on", "home", "deaths", "leave"),
            ("recruiting", "births", "active", "src"),
        ],
        end="2003-01",
    )


def inflow_chain_exact(months: np.ndarray) -> np.ndarray:
    """x' = A x + b solved as an augmented linear system with the matrix exponential: (t, [active, home])."""
    a, b_out, c = 0.9 / 12, 0.6 / 12, 0.2 / 12
    system = np.array([[-a, 0.0, 10.0], [b_out, -c, 0.0], [0.0, 0.0, 0.0]])
    return np.array([(expm(system * t) @ np.array([1000.0, 0.0, 1.0]))[:2] for t in months])


def seir_births(step: str = "year", end: str = "2400-01") -> Any:
    """S-E-R with births and deaths: S -> E at beta E / N, E -> R at gamma, every compartment dies at
    mu, births mu N into S (a closed birth-death balance); mu 0.02, beta 0.5, gamma 0.1 per year."""
    return _scenario(
        {"S": 990.0, "E": 10.0, "R": 0.0},
        {"mu": (0.02, "per year"), "beta": (0.5, "per year"), "gamma": (0.1, "per year")},
        [
            ("born", "births", "S", "mu * (S + E + R)"),
            ("engaging", "S", "E", "beta * E / (S + E + R)"),
            ("leaving", "E", "R", "gamma"),
            ("dying_s", "S", "deaths", "mu"),
            ("dying_e", "E", "deaths", "mu"),
            ("dying_r", "R", "deaths", "mu"),
        ],
        end=end,
        step=step,
    )


def seir_equilibrium(n: float = 1000.0, mu: float = 0.02, beta: float = 0.5, gamma: float = 0.1) -> dict[str, float]:
    """Setting the derivatives to zero: S* = N (gamma + mu) / beta, E* = mu (N - S*) / (gamma + mu)."""
    s = n * (gamma + mu) / beta
    e = mu * (n - s) / (gamma + mu)
    return {"S": s, "E": e, "R": n - s - e}


def logistic() -> Any:
    """P' = r P (1 - P/K) as births r P from a source and a crowding hazard r P / K to a sink."""
    return _scenario(
        {"P": 10.0},
        {"r": (0.05, "per month"), "capacity": (1000.0, "persons")},
        [("growing", "births", "P", "r * P"), ("crowding", "P", "deaths", "r * P / capacity")],
        end="2020-01",
    )


def logistic_exact(t: np.ndarray, p0: float = 10.0, r: float = 0.05, k: float = 1000.0) -> np.ndarray:
    return k / (1 + (k / p0 - 1) * np.exp(-r * t))


def delay_with_schedule() -> Any:
    """A first-order delay (mean 6 months) of a pulse of 600 plus a stepped inflow schedule: 10 persons
    per month from 2001-01, 30 from 2002-07, 0 from 2003-07; the delayed stock empties into `out`."""
    return _scenario(
        {"pipeline": 600.0, "out": 0.0},
        {"delay": (6.0, "months")},
        [("arriving", "births", "pipeline", "supply"), ("delivering", "pipeline", "out", "1 / delay")],
        end="2005-01",
        schedules={
            "supply": {
                "unit": "persons per month",
                "points": {"2000-01": 0, "2001-01": 10, "2002-07": 30, "2003-07": 0},
                "assumption": "a conformance case",
            }
        },
    )


def delay_exact(months: np.ndarray) -> np.ndarray:
    """pipeline(t) = 600 e^{-t/6} + sum over inflow levels u_k switched on at t_k (and off at t_{k+1})
    of u_k tau (1 - e^{-(t - t_k)/tau}) on [t_k, t_{k+1}], decayed afterwards: piecewise closed form."""
    tau = 6.0
    value = 600.0 * np.exp(-months / tau)
    for start, stop, level in ((12.0, 30.0, 10.0), (30.0, 42.0, 30.0)):
        on = np.clip(months - start, 0.0, None)
        off = np.clip(months - stop, 0.0, None)
        value += level * tau * ((1 - np.exp(-on / tau)) - (1 - np.exp(-off / tau)))
    return value


# --- the checks -----------------------------------------------------------------------------


def test_constant_hazards_exact_at_any_step():
    """Competing exits with constant hazards: N0 exp(-H t) at monthly, quarterly and yearly steps."""
    for step in ("month", "quarter", "year"):
        scenario = _scenario(
            {"active": 1000.0, "home": 0.0},
            {"out": (0.6, "per year"), "die": (0.3, "per year")},
            [("returning", "active", "home", "out"), ("dying", "active", "deaths", "die")],
            end="2005-12" if step == "month" else ("2005-10" if step == "quarter" else "2005-01"),
            step=step,
        )
        model = compile_model(scenario)
        months = (model.months - model.months[0]).astype(float)
        exact = 1000.0 * np.exp(-0.075 * months)
        home = 1000.0 * 0.6 / 0.9 * (1 - np.exp(-0.075 * months))
        deterministic = simulate(model, 1, engine="deterministic")
        np.testing.assert_allclose(_series(deterministic, "active"), exact, rtol=1e-10)
        np.testing.assert_allclose(_series(deterministic, "home"), home, rtol=1e-10)
        ode = simulate(model, 1, engine="ode")
        np.testing.assert_allclose(_series(ode, "active"), exact, rtol=ODE_RTOL)
        np.testing.assert_allclose(_series(ode, "home")[1:], home[1:], rtol=ODE_RTOL)


def test_inflow_chain():
    """The issue's case: active after 3 years is 191.6; home follows the chain."""
    scenario = inflow_chain()
    exact = inflow_chain_exact(np.arange(37.0))
    assert exact[-1, 0] == pytest.approx(191.6, abs=0.05)
    ode = _run(scenario, "ode")
    np.testing.assert_allclose(_series(ode, "active"), exact[:, 0], rtol=ODE_RTOL)
    np.testing.assert_allclose(_series(ode, "home")[1:], exact[1:, 1], rtol=ODE_RTOL)
    substeps = _recommended(scenario)
    deterministic = _run(scenario, "deterministic", substeps)
    assert _series(deterministic, "active")[-1] == pytest.approx(exact[-1, 0], rel=0.005)
    np.testing.assert_allclose(_series(deterministic, "active"), exact[:, 0], rtol=0.01)
    np.testing.assert_allclose(_series(deterministic, "home")[1:], exact[1:, 1], rtol=0.01)


def test_sir_final_size_and_peak():
    scenario = sir()
    final, peak = sir_final_size(), sir_peak()
    reference = scipy_reference(
        lambda t, y: [-0.3 * y[0] * y[1] / 1000, 0.3 * y[0] * y[1] / 1000 - 0.2 * y[1]], [995, 5], 240
    )
    ode = _run(scenario, "ode")
    assert _series(ode, "R")[-1] == pytest.approx(final, rel=ODE_RTOL)
    np.testing.assert_allclose(_series(ode, "I"), reference[:, 1], rtol=ODE_RTOL, atol=1e-4)
    assert _series(ode, "I").max() == pytest.approx(reference[:, 1].max(), rel=ODE_RTOL)
    assert reference[:, 1].max() == pytest.approx(peak, rel=2e-3)  # the monthly grid misses the top by a little
    substeps = _recommended(scenario)
    deterministic = _run(scenario, "deterministic", substeps)
    assert _series(deterministic, "R")[-1] == pytest.approx(final, rel=0.01)
    assert _series(deterministic, "I").max() == pytest.approx(peak, rel=0.01)


def test_seir_final_size_and_peak():
    scenario = sir(latent=True)
    final = sir_final_size()

    def derivative(t, y):
        s, e, i = y
        force = 0.3 * i / 1000 * s
        return [-force, force - 0.5 * e, 0.5 * e - 0.2 * i]

    reference = scipy_reference(derivative, [995, 0, 5], 240)
    ode = _run(scenario, "ode")
    assert _series(ode, "R")[-1] == pytest.approx(final, rel=ODE_RTOL)
    assert _series(ode, "I").max() == pytest.approx(reference[:, 2].max(), rel=ODE_RTOL)
    deterministic = _run(scenario, "deterministic", _recommended(scenario))
    assert _series(deterministic, "R")[-1] == pytest.approx(final, rel=0.01)
    assert _series(deterministic, "I").max() == pytest.approx(reference[:, 2].max(), rel=0.01)


def test_seir_births_equilibrium_and_constant_population():
    """400 years at yearly steps: the ODE engine reaches the endemic equilibrium within 1e-4 and keeps N;
    the deterministic engine keeps N exactly (a closed birth-death balance) and comes within 1%."""
    equilibrium = seir_equilibrium()
    ode = _run(seir_births(), "ode")
    total = sum(_series(ode, name) for name in "SER")
    np.testing.assert_allclose(total, 1000.0, rtol=1e-6)
    for name, value in equilibrium.items():
        assert _series(ode, name)[-1] == pytest.approx(value, rel=ODE_RTOL), name
    substeps = _recommended(seir_births())
    deterministic = _run(seir_births(), "deterministic", substeps)
    for name, value in equilibrium.items():
        assert _series(deterministic, name)[-1] == pytest.approx(value, rel=0.01), name
    total = sum(_series(deterministic, name) for name in "SER")
    np.testing.assert_allclose(total, 1000.0, rtol=1e-10)  # births read the person-time deaths are drawn from


def _matches(scenario: Any, name: str, exact: np.ndarray):
    """The ODE engine within 1e-4 and the deterministic engine (recommended sub-steps) within 1% of a
    compartment's exact series; returns the ODE result."""
    ode = _run(scenario, "ode")
    np.testing.assert_allclose(_series(ode, name), exact, rtol=ODE_RTOL)
    deterministic = _run(scenario, "deterministic", _recommended(scenario))
    np.testing.assert_allclose(_series(deterministic, name), exact, rtol=0.01)
    return ode


def test_logistic_growth():
    _matches(logistic(), "P", logistic_exact(np.arange(241.0)))


def test_first_order_delay_with_a_schedule_input():
    exact = delay_exact(np.arange(61.0))
    ode = _matches(delay_with_schedule(), "pipeline", exact)
    months = np.arange(61.0)
    supplied = 10 * np.clip(months - 12, 0, 18) + 30 * np.clip(months - 30, 0, 12)
    np.testing.assert_allclose(_series(ode, "out"), 600.0 + supplied - exact, rtol=ODE_RTOL)


@pytest.mark.parametrize("case", ["inflow_chain", "delay_with_schedule"])
def test_stochastic_mean_matches_deterministic(case):
    """Linear models: the deterministic engine is the exact mean of the chain, sub-steps or not.
    Checked yearly (the monthly series are strongly autocorrelated, so more dates add no power)."""
    scenario = globals()[case]()
    substeps = _recommended(scenario)
    runs = 400
    stochastic = _run(scenario, "stochastic", substeps, replicates=runs, seed=3)
    deterministic = _run(scenario, "deterministic", substeps)
    for name in deterministic.data_vars:
        if deterministic[name].attrs.get("kind") != "compartment":
            continue
        values = stochastic[name].values[:, 12::12]
        error = np.abs(values.mean(axis=0) - deterministic[name].values[0, 12::12])
        tolerance = 5 * values.std(axis=0) / np.sqrt(runs) + 1e-9  # 5 SE (399 df: normal tail)
        assert (error <= tolerance).all(), name


def test_error_falls_with_substeps_first_order():
    """Halving the sub-step halves the deterministic engine's error on SIR (first order)."""
    final = sir_final_size()
    errors = [abs(_series(_run(sir(), "deterministic", k), "R")[-1] - final) for k in (4, 8, 16)]
    ratios = [errors[i] / errors[i + 1] for i in range(2)]
    assert all(1.7 < ratio < 2.3 for ratio in ratios), (errors, ratios)


def test_recommendation_thresholds():
    check = coarse_step(compile_model(sir()))
    assert check is not None and check.coarse
    assert check.compartment == "I" and check.flow == "recovery"
    assert check.hazard_step == pytest.approx(0.2)
    assert check.recommended >= check.hazard_step / TARGET_HAZARD_STEP
    fine = coarse_step(compile_model(sir(), substeps=check.recommended))
    assert fine is not None and not fine.coarse and fine.hazard_step <= WARN_HAZARD_STEP
