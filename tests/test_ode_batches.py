"""How many runs the ODE engine stacks into one solve_ivp call: bounded by the implicit solvers' memory.

The bound is checked against ODEPACK's own sizes, not the engine's formula: LSODA with a banded Jacobian
needs a real work array of LRW = 22 + 10 NEQ + (2 ML + MU) NEQ doubles (lsoda.f, "LRW ... JT = 4 or 5"),
here NEQ = runs x n and ML = MU = n - 1 for a run of n = cells + rate cells unknowns; the dense Jacobian
that Radau and BDF hold per run has n^2 entries.
"""

from __future__ import annotations

import pytest

from aftermath.engines.ode import JACOBIAN_BUDGET_BYTES, OdeOptions, batch_size


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
