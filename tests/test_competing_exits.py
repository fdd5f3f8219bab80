"""Competing exits, one person at a time, and the sampler's Stirling correction, against closed forms.

A cell of n persons with outflow hazards h_1..h_k (total H) loses Binomial(n, 1 - exp(-H dt)) persons in a
step, and flow i takes a share h_i / H of them (the competing-risks split: Kalbfleisch & Prentice, The
Statistical Analysis of Failure Time Data, 2nd ed., section 8.2). The deterministic engine moves the
expectations exactly; the stochastic engine's pooled shares are compared with them within 5 standard
errors (a false failure about once in 1.7 million runs per assertion).

False-failure budget: 10 assertions at 5 SE (binomial means and shares over thousands of exits, so the
normal tail holds), P(|Z| > 5) = 5.7e-7 each: 5.7e-6 for the file. The seeds are fixed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from aftermath import compile_model, simulate
from aftermath.engines.kernels import INVERSION_LIMIT
from tests.conftest import scenario_from
from tests.isolated import Isolated

HAZARDS = {"first": 0.01, "second": 0.02, "third": 0.03}
"""Per month; listed in flow order, so the sequential split takes 1/6, then 2/5 of the rest, then the rest."""


def _three_ways(initial: float, step: str = "month", hazards: dict[str, float] = HAZARDS):
    fixed = {"fixed": "test", "assumption": "test"}
    return compile_model(scenario_from({
        "name": "competing",
        "title": "three competing exits",
        "time": {"start": "2015-01", "end": "2017-01", "step": step},
        "compartments": {"active": {"initial": initial, "assumption": "test"},
                         **{f"by_{name}": {} for name in hazards}},
        "parameters": {f"h_{name}": {"unit": "per month", "value": value, **fixed} for name, value in hazards.items()},
        "flows": [{"name": name, "from": "active", "to": f"by_{name}", "rate": f"h_{name}"} for name in hazards],
    }))


@pytest.mark.parametrize("step, months", [("month", 1.0), ("quarter", 3.0), ("year", 12.0)])
def test_the_deterministic_split_is_each_hazard_over_the_total(step: str, months: float) -> None:
    result = simulate(_three_ways(1e6, step), 1, engine="deterministic")
    total = sum(HAZARDS.values())
    leaving = 1e6 * -math.expm1(-total * months)
    for name, hazard in HAZARDS.items():
        assert result[f"by_{name}"].values[0, 1] == pytest.approx(leaving * hazard / total, rel=1e-12)
    assert result["active"].values[0, 1] == pytest.approx(1e6 - leaving, rel=1e-12)


def test_the_stochastic_split_takes_each_hazards_share_of_the_exits() -> None:
    result = simulate(_three_ways(1e5), 100, engine="stochastic", seed=7)
    counts = np.array([result[f"by_{name}"].values[:, 1].sum() for name in HAZARDS])
    exits = counts.sum()
    total = sum(HAZARDS.values())
    expected_exits = 100 * 1e5 * -math.expm1(-total)
    assert abs(exits - expected_exits) < 5 * math.sqrt(expected_exits * math.exp(-total))
    for count, hazard in zip(counts, HAZARDS.values(), strict=True):
        share = hazard / total  # given the exits, a flow's count is Binomial(exits, share)
        assert abs(count / exits - share) < 5 * math.sqrt(share * (1 - share) / exits), (count / exits, share)


def test_a_single_person_leaves_and_picks_an_exit_with_the_closed_form_chances() -> None:
    """One person per run: leaving moves one person (a count of 1 is not 'nothing to move'). With hazards 0.2
    and 0.3 per month, P(first) = 0.2 / 0.5 (1 - e^-0.5) = 0.1574 and P(second) = 0.2361 in the first month."""
    hazards = {"first": 0.2, "second": 0.3}
    runs = 4000
    result = simulate(_three_ways(1.0, hazards=hazards), runs, engine="stochastic", seed=3)
    leave = -math.expm1(-0.5)
    for name, hazard in hazards.items():
        chance = hazard / 0.5 * leave
        moved = result[f"by_{name}"].values[:, 1]
        assert set(np.unique(moved)) <= {0.0, 1.0}
        assert abs(moved.sum() - runs * chance) < 5 * math.sqrt(runs * chance * (1 - chance)), (name, moved.sum())


@pytest.mark.parametrize("k", [0.0, 1.0, 2.0, 5.0, 9.0, 10.0, 11.0, 20.0, 57.0, 200.0, 1000.0])
def test_the_samplers_stirling_tail_is_its_definition(k: float) -> None:
    """The BTRS sampler's correction fc(k) = log k! - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2]
    (Hormann 1993, 'The generation of binomial random variates', section 3): below 10 from lgamma and a
    constant, from 10 on by its series; here against its definition with math.lgamma (cancellation leaves
    about 1e-9 relative at 1000)."""
    from aftermath.engines.kernels import _stirling_tail

    exact = math.lgamma(k + 1.0) - ((k + 0.5) * math.log(k + 1.0) - (k + 1.0) + 0.5 * math.log(2 * math.pi))
    assert _stirling_tail(k) == pytest.approx(exact, rel=1e-7)


def test_a_stratum_that_draws_no_leaver_does_not_stop_the_next_ones() -> None:
    """Origin A leaves at 1e-12 a month (no leaver in any run), B at 0.5: B still loses Binomial(1000,
    1 - e^-0.5) persons in the first month in each of 50 runs (mean 393.5), within 5 standard errors."""
    fixed = {"fixed": "test", "assumption": "test"}
    model = compile_model(scenario_from({
        "name": "strata",
        "title": "a stratum with almost no hazard first",
        "time": {"start": "2015-01", "end": "2015-06"},
        "dimensions": {"origin": ["A", "B"]},
        "compartments": {"active": {"dims": ["origin"], "initial": 1000, "assumption": "test"},
                         "gone": {"dims": ["origin"]}},
        "parameters": {"leave": {"unit": "per month", "dims": ["origin"], "value": {"A": 1e-12, "B": 0.5},
                                 **fixed}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "leave"}],
    }))
    gone = simulate(model, 50, engine="stochastic", seed=2)["gone"].values[:, 1]  # (runs, origin)
    assert (gone[:, 0] == 0).all()
    chance = -math.expm1(-0.5)
    assert abs(gone[:, 1].mean() - 1000 * chance) < 5 * math.sqrt(1000 * chance * (1 - chance) / 50)


SMALL_EXITS = {"A": (20, 0.5), "B": (200, 0.01)}
"""(persons, hazard per month) by origin: n p = 7.9 and 2.0, both in the inversion sampler's range."""


def _mean_small_exits() -> list[float]:
    """Mean exits by origin in the first month of 2,000 stochastic runs of SMALL_EXITS."""
    fixed = {"fixed": "test", "assumption": "test"}
    model = compile_model(scenario_from({
        "name": "strata",
        "title": "small exits with probabilities that differ by origin",
        "time": {"start": "2015-01", "end": "2015-03"},
        "dimensions": {"origin": list(SMALL_EXITS)},
        "compartments": {"active": {"dims": ["origin"], "initial": {o: n for o, (n, _) in SMALL_EXITS.items()},
                                    "assumption": "test"},
                         "gone": {"dims": ["origin"]}},
        "parameters": {"leave": {"unit": "per month", "dims": ["origin"],
                                 "value": {o: h for o, (_, h) in SMALL_EXITS.items()}, **fixed}},
        "flows": [{"name": "leaving", "from": "active", "to": "gone", "rate": "leave"}],
    }))
    return simulate(model, 2000, engine="stochastic", seed=3)["gone"].values[:, 1].mean(axis=0).tolist()


def test_each_stratum_draws_its_exits_with_its_own_probability_in_the_inversion_sampler(isolated: Isolated) -> None:
    """Two origins whose exits both fall to the inversion sampler, with very different probabilities (0.393
    and 0.00995): each cell's mean exits over 2,000 runs is n p within 5 SE (binomial variance; 2 assertions,
    1.1e-6). The step kernel precomputes log(1 - p) per cell for the sampler: B drawing with A's would start
    its inversion at (1 - 0.393)^200 = e^-100 and never reach a uniform (a hang: the run is in a child with a
    time limit)."""
    means = isolated.call("tests.test_competing_exits:_mean_small_exits", limit=120)
    for mean, (n, hazard) in zip(means, SMALL_EXITS.values(), strict=True):
        chance = -math.expm1(-hazard)
        assert n * min(chance, 1 - chance) < INVERSION_LIMIT  # the path under test, whatever its limit
        assert abs(mean - n * chance) < 5 * math.sqrt(n * chance * (1 - chance) / 2000), (mean, n * chance)


def test_the_deterministic_split_holds_cell_by_cell_where_the_hazards_differ_by_stratum() -> None:
    """Three origins, each with its own pair of competing hazards (per month): origin o loses
    n (1 - exp(-H_o)) persons in the first month, flow i taking h_io / H_o of them, cell by cell."""
    fixed = {"fixed": "test", "assumption": "test"}
    killed = {"A": 0.01, "B": 0.05, "C": 0.002}
    returned = {"A": 0.04, "B": 0.005, "C": 0.03}
    model = compile_model(scenario_from({
        "name": "strata",
        "title": "competing hazards that differ by origin",
        "time": {"start": "2015-01", "end": "2015-06"},
        "dimensions": {"origin": list(killed)},
        "compartments": {"active": {"dims": ["origin"], "initial": 1e5, "assumption": "test"},
                         "killed": {"dims": ["origin"]}, "returned": {"dims": ["origin"]}},
        "parameters": {"kill": {"unit": "per month", "dims": ["origin"], "value": killed, **fixed},
                       "go_home": {"unit": "per month", "dims": ["origin"], "value": returned, **fixed}},
        "flows": [{"name": "killing", "from": "active", "to": "killed", "rate": "kill"},
                  {"name": "return", "from": "active", "to": "returned", "rate": "go_home"}],
    }))
    result = simulate(model, 1, engine="deterministic")
    for index, origin in enumerate(killed):
        total = killed[origin] + returned[origin]
        leaving = 1e5 * -math.expm1(-total)
        assert result["killed"].values[0, 1, index] == pytest.approx(leaving * killed[origin] / total, rel=1e-12)
        assert result["returned"].values[0, 1, index] == pytest.approx(leaving * returned[origin] / total, rel=1e-12)


@pytest.mark.parametrize("engine", ["deterministic", "stochastic"])
def test_a_zero_hazard_before_another_exit_takes_nobody_and_leaves_the_others_whole(engine: str) -> None:
    """Hazards 0 and 0.3 per month (the zero first in flow order): nobody takes the first exit, and the second
    takes all the exits, 1e4 (1 - e^-0.3) = 2,592 in the first month (stochastic: the mean of 20 runs within 5
    standard errors of it)."""
    result = simulate(_three_ways(1e4, hazards={"first": 0.0, "second": 0.3}), 20, engine=engine, seed=4)
    assert (result["by_first"].values == 0).all()
    chance = -math.expm1(-0.3)
    second = result["by_second"].values[:, 1]
    if engine == "deterministic":
        assert second == pytest.approx(1e4 * chance, rel=1e-12)
    else:
        assert abs(second.mean() - 1e4 * chance) <= 5 * math.sqrt(1e4 * chance * (1 - chance) / 20)


@pytest.mark.parametrize("stochastic", [False, True])
def test_the_split_shares_are_sequential_and_the_last_flow_takes_exactly_what_is_left(stochastic: bool) -> None:
    """The kernels' per-cell cache (kernels.advance): with hazards 0.1, 0.2 and 0.3 per month (H = 0.6) a cell
    loses 1 - e^-0.6 a month, and the flows take 0.1 / 0.6, then 0.2 / 0.5 of the rest, then the rest: a share
    of exactly 1, though the hazard left for it, 0.1 + 0.2 + 0.3 - 0.1 - 0.2, is 0.3000000000000001 in
    floating point, not the last hazard 0.3 (a share of 0.3 / that would leave a person behind now and then).
    The stochastic cache keeps log(1 - min(s, 1 - s)) beside each share (binomial_constant), the
    deterministic one the total hazard."""
    from aftermath.engines.kernels import _cache_group

    cache_group = getattr(_cache_group, "py_func", _cache_group)
    rates = np.array([0.1, 0.2, 0.3])
    exit_cache, split_cache = np.zeros((2, 1)), np.zeros((2, 3))
    cache_group(rates, exit_cache, split_cache, np.array([0, 1, 2]), np.array([1, 1, 1]), 0, 3, 0, 1.0, stochastic)
    assert exit_cache[0, 0] == pytest.approx(-math.expm1(-0.6), rel=1e-15)
    shares = [0.1 / 0.6, 0.2 / 0.5]
    assert split_cache[0, :2] == pytest.approx(shares, rel=1e-15)
    assert split_cache[0, 2] == 1.0
    if stochastic:
        assert exit_cache[1, 0] == pytest.approx(-0.6, rel=1e-14)  # log(1 - p) with p = 1 - e^-0.6 < 1/2
        expected = [math.log1p(-min(s, 1 - s)) for s in shares] + [0.0]
        assert split_cache[1] == pytest.approx(expected, rel=1e-14)
    else:
        assert exit_cache[1, 0] == pytest.approx(0.6, rel=1e-15)


def test_a_zero_hazard_takes_a_share_of_zero_in_the_cache() -> None:
    """Hazards 0, 0.2 and 0.3 per month: the first flow's share is 0 (not a draw), then 0.2 / 0.5, then the rest
    (1); log(1 - min(s, 1 - s)) is 0 for the shares 0 and 1."""
    from aftermath.engines.kernels import _cache_group

    cache_group = getattr(_cache_group, "py_func", _cache_group)
    exit_cache, split_cache = np.zeros((2, 1)), np.zeros((2, 3))
    cache_group(np.array([0.0, 0.2, 0.3]), exit_cache, split_cache, np.array([0, 1, 2]), np.array([1, 1, 1]), 0, 3, 0,
                1.0, True)
    assert split_cache[0].tolist() == [0.0, pytest.approx(0.4, rel=1e-15), 1.0]
    assert split_cache[1].tolist() == [0.0, pytest.approx(math.log(0.6), rel=1e-14), 0.0]
