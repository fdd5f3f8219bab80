"""Calibrate the default scenario to the observations of its fitted window (to December 2017).

Only observations dated up to FIT_END are used; later ones are out-of-sample checks and are never
read here. The script runs the deterministic engine and

1. rescales the origin shares so each country's cumulative arrivals meet its departure counts
   (the remainders are held to their assumed totals, and other MENA takes what is left);
2. fits a few hazards and the national return propensities by least squares on the log errors of
   the in-sample observations, each weighted by its tolerance;

then prints the values to write into the scenario and the fit table. It does not edit the file:
the scenario stays the one place the numbers live, each with its sources.

    .venv/bin/python scripts/calibrate_default.py [--rounds 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from scipy.optimize import least_squares

from aftermath import compile_model, load_scenario, simulate
from aftermath.fitcheck import FIT_END, check_observations, observation_interval, tolerance_for
from aftermath.scenario.checks import stratum_array
from aftermath.scenario.schema import Scenario, parse_month

REMAINDERS = {"EU_rest": 500, "Europe_rest": 500, "FSU_rest": 1000, "Asia_rest": 1000, "World_rest": 700}
"""Assumed departures of the regional remainders by October 2017 (see origin_share in the scenario)."""
BALANCE = "MENA_rest"
"""The remainder that takes what the others leave of the world's inflow."""
SCALARS = ["leave_hazard", "death_hazard", "arrest_on_return", "local_recruitment_territorial"]
"""Scalars fitted. leave_hazard is the rate of the other EU states (NL, SE, AT, EU_rest: propensity 1),
whose returnees are what the EU totals (E03, E04, E09, E11) leave after the four largest."""
REPORTED = ["FR", "GB", "DE", "BE", "RU", "TN", "SA", "TR", "MA"]
"""Origins with a national returnee count: each has its own propensity."""
REFERENCE = ["NL", "SE", "AT", "EU_rest"]


def propensity_groups(origins: list[str]) -> dict[str, list[str]]:
    """Each reported origin alone, and every origin with no count together (held by the world total, G12)."""
    unreported = [o for o in origins if o not in REPORTED and o not in REFERENCE]
    return {**{origin: [origin] for origin in REPORTED}, "unreported": unreported}


def in_sample(scenario: Scenario) -> list:
    cutoff = parse_month(FIT_END)
    return [o for o in scenario.observations if o.date <= cutoff]


def values_of(scenario: Scenario, name: str) -> np.ndarray:
    parameter = scenario.parameters[name]
    return stratum_array(scenario, parameter.value, list(parameter.dims), parameter.default, ())


def run(scenario: Scenario, rows: dict[str, np.ndarray]):
    """Deterministic runs, one per row of the given parameter arrays (declared units)."""
    width = max((len(v) for v in rows.values()), default=1)
    return simulate(compile_model(scenario), replicates=width, engine="deterministic", parameters=rows,
                    keep_compartments=False)


def at(dataset, outcome: str, month: int) -> np.ndarray:
    from aftermath.scenario.schema import month_label

    return dataset[outcome].sel(time=np.datetime64(month_label(month), "M")).values.reshape(-1)


def calibrate_shares(scenario: Scenario, fixed: dict[str, np.ndarray]) -> np.ndarray:
    """Origin shares that meet the national departure counts (fixed point, three passes)."""
    origins = scenario.dimensions["origin"]
    shares = values_of(scenario, "origin_share").copy()
    by_origin = {o: [obs for obs in in_sample(scenario) if obs.outcome == f"arrivals_{o}"] for o in origins}
    for _ in range(3):
        data = run(scenario, {**fixed, "origin_share": shares[None]})
        arrived = data["arrivals_by_origin"].sel(time=np.datetime64("2017-10", "M")).values.reshape(-1)
        for index, origin in enumerate(origins):
            ratios = []
            for obs in by_origin[origin]:
                model = float(at(data, obs.outcome, obs.date)[0])
                low, high = observation_interval(obs)
                ratios.append(np.clip(model, low, high) / model)
            if origin in REMAINDERS:
                ratios.append(REMAINDERS[origin] / arrived[index])
            if ratios:
                shares[index] *= float(np.exp(np.mean(np.log(ratios))))
        balance = origins.index(BALANCE)
        shares[balance] = 1.0 - (shares.sum() - shares[balance])
    return shares


def residuals(scenario: Scenario, data, observations: list) -> np.ndarray:
    """(runs, observations) log errors to the observation intervals, divided by their tolerances."""
    columns = []
    for obs in observations:
        model = np.maximum(at(data, obs.outcome, obs.date), 1e-9)
        low, high = observation_interval(obs)
        columns.append(np.log(model / np.clip(model, low, high)) / tolerance_for(obs.source))
    return np.stack(columns, axis=1)


def calibrate_hazards(scenario: Scenario, fixed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Scalars and return propensities by least squares on the in-sample observations (log space)."""
    origins = scenario.dimensions["origin"]
    observations = [o for o in in_sample(scenario) if not o.outcome.startswith("arrivals")]
    base = {name: float(values_of(scenario, name).reshape(-1)[0]) for name in SCALARS}
    propensity = values_of(scenario, "return_propensity").copy()
    groups = [[origins.index(o) for o in members] for members in propensity_groups(origins).values()]
    start = np.log([*base.values(), *(propensity[group[0]] for group in groups)])

    def rows_for(points: np.ndarray) -> dict[str, np.ndarray]:
        rows = {name: np.exp(points[:, i]) for i, name in enumerate(SCALARS)}
        table = np.repeat(propensity[None], len(points), axis=0)
        for i, group in enumerate(groups):
            table[:, group] = np.exp(points[:, len(SCALARS) + i])[:, None]
        rows["return_propensity"] = table
        return {**{k: np.repeat(v, len(points), axis=0) for k, v in fixed.items()}, **rows}

    def batch(points: np.ndarray) -> np.ndarray:
        return residuals(scenario, run(scenario, rows_for(points)), observations)

    def objective(x: np.ndarray) -> np.ndarray:
        return batch(x[None])[0]

    def jacobian(x: np.ndarray) -> np.ndarray:
        step = 1e-3
        points = np.vstack([x, x + step * np.eye(len(x))])
        values = batch(points)
        return ((values[1:] - values[0]) / step).T

    bounds = (start - np.log(10.0), start + np.log(10.0))
    fit = least_squares(objective, start, jac=jacobian, bounds=bounds, loss="soft_l1", max_nfev=30)
    best = rows_for(fit.x[None])
    return {name: best[name][0] for name in [*SCALARS, "return_propensity"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="alternations of shares and hazards")
    args = parser.parse_args()
    scenario = load_scenario("isis_after_caliphate")
    origins = scenario.dimensions["origin"]
    fixed: dict[str, np.ndarray] = {}
    for _ in range(args.rounds):
        fixed["origin_share"] = calibrate_shares(scenario, fixed)[None]
        fixed.update({k: v[None] for k, v in calibrate_hazards(scenario, fixed).items()})
    np.set_printoptions(suppress=True)
    print("origin_share:", {o: round(float(v), 4) for o, v in zip(origins, fixed["origin_share"][0], strict=True)})
    print("return_propensity:",
          {o: round(float(v), 2) for o, v in zip(origins, fixed["return_propensity"][0], strict=True)
           if o in REPORTED or o == "MENA_rest"})
    for name in SCALARS:
        print(f"{name}: {float(fixed[name][0]):.4g}")
    data = run(scenario, fixed)
    print(f"\n{'source':6} {'outcome':28} {'date':7} {'observed':>22} {'model':>10} {'error':>6} tol")
    for check in check_observations(scenario, data):
        if not check.in_sample:
            continue
        flag = "" if check.within_tolerance else "  <- outside tolerance"
        interval = f"[{check.low:.4g}, {check.high:.4g}]"
        print(f"{check.source:6} {check.outcome:28} {check.date} {check.value:10.4g} {interval:>22}"
              f" {check.median:10.4g} {check.error:6.2f} {check.tolerance:.2f}{flag}")


if __name__ == "__main__":
    main()
