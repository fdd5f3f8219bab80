"""The ODE engine's pieces: its options, one integrated step against a closed form, and its batch sizes.

One step of a linear system, two runs stacked: cell 0 receives an inflow c and loses a hazard h to cell 1;
a third flow back from cell 1 has rate 0. Then n0(t) = c/h + (N - c/h) e^(-ht), the hazard flow has moved
c t + (N - c/h)(1 - e^(-ht)) persons by t (its integral), the inflow c t, the zero flow exactly 0.

How many runs the engine stacks into one solve_ivp call is bounded by the implicit solvers' memory. The
bound is checked against ODEPACK's own sizes, not the engine's formula: LSODA with a banded Jacobian
needs a real work array of LRW = 22 + 10 NEQ + (2 ML + MU) NEQ doubles (lsoda.f, "LRW ... JT = 4 or 5"),
here NEQ = runs x n and ML = MU = n - 1 for a run of n = cells + rate cells unknowns; the dense Jacobian
that Radau and BDF hold per run has n^2 entries.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from aftermath.engines.ode import JACOBIAN_BUDGET_BYTES, METHODS, OdeOptions, batch_size, flow_system, integrate_step

SYSTEM = flow_system(np.array([0, -1, 1]), np.array([1, 0, 0]), cells=2)  # hazard 0->1, inflow ->0, zero 1->0
HAZARD, INFLOW = np.array([2.0, 0.5]), 5.0


def _rates(t: float, state: np.ndarray) -> np.ndarray:
    return np.column_stack([HAZARD, np.full(2, INFLOW), np.zeros(2)])


@pytest.mark.parametrize(("rtol", "atol"), [(0.0, 1e-6), (1.0, 1e-6), (1e-6, 0.0), (1e-6, -0.5)])
def test_tolerances_outside_their_range_are_refused(rtol: float, atol: float) -> None:
    with pytest.raises(ValueError, match="ODE tolerances"):
        OdeOptions(rtol=rtol, atol=atol)


def test_an_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown ODE method 'Euler'"):
        OdeOptions("Euler")


@pytest.mark.parametrize("method", METHODS)
def test_one_step_of_every_method_matches_the_closed_form_without_solver_warnings(method: str) -> None:
    start = np.array([[1000.0, 0.0], [300.0, 20.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. a Jacobian layout given to a method that cannot use it
        end, moved = integrate_step(SYSTEM, _rates, start, 1.5, OdeOptions(method, rtol=1e-8, atol=1e-8))
    t, rest = 1.5, INFLOW / HAZARD
    decay = np.exp(-HAZARD * t)
    left = INFLOW * t + (start[:, 0] - rest) * (1 - decay)
    np.testing.assert_allclose(end, np.column_stack([rest + (start[:, 0] - rest) * decay, start[:, 1] + left]),
                               rtol=1e-5)
    np.testing.assert_allclose(moved[:, :2], np.column_stack([left, np.full(2, INFLOW * t)]), rtol=1e-5)
    assert (moved[:, 2] == 0).all()


def test_an_overshoot_below_zero_comes_back_as_zero_persons() -> None:
    """RK45 at a loose tolerance overshoots a decay of 100 per month far below zero (measured: to about
    -8,000 persons before the clip); counts come back >= 0, as integrate_step promises."""
    fast = flow_system(np.array([0]), np.array([1]), cells=2)
    end, moved = integrate_step(fast, lambda t, s: np.full((1, 1), 100.0), np.array([[1000.0, 0.0]]), 1.0,
                                OdeOptions("RK45", rtol=0.5, atol=1e3))
    assert end[0, 0] == 0.0 and (moved >= 0).all()


def _lsoda_bytes(runs: int, n: int) -> int:
    neq = runs * n
    return 8 * (22 + 10 * neq + (3 * (n - 1)) * neq)


@pytest.mark.parametrize("n", [50, 500, 3000])
def test_lsoda_batches_fill_the_budget_without_exceeding_it(n: int) -> None:
    runs = batch_size(OdeOptions("LSODA"), n - n // 3, n // 3, fallback=1_000_000)
    assert runs >= 1
    assert _lsoda_bytes(runs, n) <= JACOBIAN_BUDGET_BYTES  # ODEPACK's need fits the budget
    assert _lsoda_bytes(runs + 1, n) > JACOBIAN_BUDGET_BYTES / 2  # and the batch is not needlessly small


def test_implicit_methods_hold_a_dense_jacobian_per_run_and_explicit_ones_take_the_fallback() -> None:
    n = 500
    for method in ("Radau", "BDF"):
        runs = batch_size(OdeOptions(method), 300, 200, fallback=1_000_000)
        assert 8 * n * n * runs <= JACOBIAN_BUDGET_BYTES < 8 * n * n * (runs + 1) * 4
    assert batch_size(OdeOptions("RK45"), 300, 200, fallback=77) == 77
    assert batch_size(OdeOptions("DOP853"), 30_000, 20_000, fallback=77) == 77
    assert batch_size(OdeOptions("LSODA"), 30_000, 20_000, fallback=77) == 1  # one run is always allowed
    assert batch_size(OdeOptions("LSODA"), 3, 2, fallback=77) == 77  # the fallback caps small models
