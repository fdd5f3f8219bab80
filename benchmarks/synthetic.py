"""The benchmark's synthetic model: 12 compartments x 60 strata x 27 flows over 120 months.

One specification feeds both implementations: `scenario()` writes it as an aftermath scenario
(a dict, validated by `aftermath.parse_scenario`), and `monthly_rates()` evaluates the same rates
in plain numpy for the Mesa model, so the two can be checked against each other without sharing
any of aftermath's compiler.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

import aftermath

ORIGINS = [f"o{i:02d}" for i in range(20)]
COHORTS = ["men", "women", "minors"]
COMPARTMENTS = [f"stage_{i:02d}" for i in range(12)]
SOURCE = "recruits"
SINK = "removed"
START, END = "2018-01", "2028-01"
STEPS = 120
CAMPAIGN = {0: 1.0, 30: 1.6, 60: 0.8, 84: 1.0}
"""Campaign intensity (a multiplier of some hazards) from each month offset on."""
ASSUMPTION = "synthetic benchmark"
MONTHS_PER = {"per month": 1.0, "persons per month": 1.0, "per year": 12.0, "ratio": 1.0, "fraction": 1.0}


@dataclass(frozen=True)
class Parameter:
    unit: str
    value: float | np.ndarray
    dims: tuple[str, ...] = ()
    distribution: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Flow:
    name: str
    source: str
    target: str
    factors: tuple[str, ...]
    """Names multiplied together to give the rate: parameters, and 'campaign' for the schedule."""


@dataclass(frozen=True)
class SyntheticModel:
    initial: np.ndarray
    """(compartment, origin, cohort) initial counts."""
    parameters: dict[str, Parameter]
    flows: list[Flow]

    def scenario(self) -> dict:
        """The model as an aftermath scenario document."""
        return {
            "format": 1,
            "name": "synthetic_benchmark",
            "title": "Synthetic benchmark: 12 compartments x 60 strata x 27 flows",
            "description": "A chain of stages with skips, a retreat, a relapse, recruitment and removal.",
            "time": {"start": START, "end": END},
            "dimensions": {"origin": ORIGINS, "cohort": COHORTS},
            "compartments": {
                name: {"dims": ["origin", "cohort"], "initial": {
                    origin: {cohort: float(self.initial[c, i, j]) for j, cohort in enumerate(COHORTS)}
                    for i, origin in enumerate(ORIGINS)
                }, "assumption": ASSUMPTION}
                for c, name in enumerate(COMPARTMENTS)
            },
            "boundaries": {SOURCE: {"kind": "source"}, SINK: {"kind": "sink"}},
            "parameters": {name: _parameter_document(p) for name, p in self.parameters.items()},
            "schedules": {
                "campaign": {
                    "unit": "dimensionless",
                    "points": {_month_after(START, offset): value for offset, value in CAMPAIGN.items()},
                    "assumption": ASSUMPTION,
                }
            },
            "flows": [
                {"name": f.name, "from": f.source, "to": f.target, "rate": " * ".join(f.factors)} for f in self.flows
            ],
            "outcomes": {
                "population": {"expr": " + ".join(COMPARTMENTS)},
                "last_stage_by_origin": {"expr": COMPARTMENTS[-1], "by": ["origin"]},
                "recruited_per_month": {"expr": "recruiting"},
            },
        }

    def compiled(self) -> aftermath.CompiledModel:
        """Validate and compile through the public API, as a user's scenario file would be."""
        return aftermath.compile_model(aftermath.parse_scenario(json.dumps(self.scenario()), "<synthetic benchmark>"))

    def monthly_rates(self, step: int) -> np.ndarray:
        """(flow, origin, cohort) rates in force during month `step`, per month (persons per month for inflows)."""
        campaign = CAMPAIGN[max(k for k in CAMPAIGN if k <= step)]
        rates = np.ones((len(self.flows), len(ORIGINS), len(COHORTS)))
        for index, flow in enumerate(self.flows):
            for factor in flow.factors:
                if factor == "campaign":
                    rates[index] *= campaign
                else:
                    rates[index] *= self._per_month(factor)
        return rates

    def _per_month(self, name: str) -> np.ndarray:
        parameter = self.parameters[name]
        value = np.asarray(parameter.value, dtype=float) / MONTHS_PER[parameter.unit]
        shape = [len(ORIGINS) if "origin" in parameter.dims else 1, len(COHORTS) if "cohort" in parameter.dims else 1]
        return value.reshape(shape)


def _month_after(start: str, months: int) -> str:
    year, month = map(int, start.split("-"))
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _parameter_document(parameter: Parameter) -> dict:
    value: object = parameter.value
    if parameter.dims == ("origin",):
        value = {o: float(v) for o, v in zip(ORIGINS, parameter.value, strict=True)}
    elif parameter.dims == ("cohort",):
        value = {c: float(v) for c, v in zip(COHORTS, parameter.value, strict=True)}
    elif parameter.dims == ("origin", "cohort"):
        value = {o: {c: float(v) for c, v in zip(COHORTS, row, strict=True)}
                 for o, row in zip(ORIGINS, parameter.value, strict=True)}
    return {"unit": parameter.unit, "dims": list(parameter.dims), "value": value,
            "distribution": parameter.distribution, "assumption": ASSUMPTION}


def synthetic_model(seed: int = 20180101) -> SyntheticModel:
    """The benchmark model; initial counts (log-uniform, 10 to 2,000) and per-stratum values drawn from `seed`."""
    rng = np.random.default_rng(seed)
    initial = np.rint(np.exp(rng.uniform(np.log(10), np.log(2000), (len(COMPARTMENTS), len(ORIGINS), len(COHORTS)))))
    relative = {"type": "uniform", "low": 0.8, "high": 1.2, "relative": True}
    parameters = {
        "recruitment": Parameter("persons per month", np.round(rng.uniform(2, 30, len(ORIGINS)), 2), ("origin",),
                                 relative),
        "cohort_share": Parameter("fraction", np.array([0.7, 0.2, 0.1]), ("cohort",),
                                  {"type": "uniform", "low": 0.9, "high": 1.1, "relative": True}),
        "progress_hazard": Parameter("per month", np.round(rng.uniform(0.006, 0.03, len(ORIGINS)), 4), ("origin",),
                                     relative),
        "late_progress_hazard": Parameter("per year", 0.18,
                                          distribution={"type": "triangular", "low": 0.12, "mode": 0.18, "high": 0.24}),
        "skip_hazard": Parameter("per year", 0.06, distribution={"type": "uniform", "low": 0.04, "high": 0.08}),
        "cohort_factor": Parameter("ratio", np.array([1.0, 0.6, 0.4]), ("cohort",), relative),
        "retreat_hazard": Parameter("per month", 0.004,
                                    distribution={"type": "triangular", "low": 0.002, "mode": 0.004, "high": 0.006}),
        "relapse_hazard": Parameter("per year", 0.09, distribution={"type": "lognormal", "median": 0.09, "sigma": 0.2}),
        "removal_hazard": Parameter("per year", np.array([0.3, 0.15, 0.1]), ("cohort",), relative),
    }
    stage = COMPARTMENTS
    flows = [Flow("recruiting", SOURCE, stage[0], ("recruitment", "cohort_share", "campaign"))]
    for i in range(11):
        if i < 6:
            factors = ("progress_hazard", "campaign") if i % 2 == 0 else ("progress_hazard",)
        else:
            factors = ("late_progress_hazard",)
        flows.append(Flow(f"advance_{i:02d}", stage[i], stage[i + 1], factors))
    flows += [Flow(f"skip_{i:02d}", stage[i], stage[i + 2], ("skip_hazard", "cohort_factor")) for i in range(10)]
    flows.append(Flow("retreat", stage[5], stage[2], ("retreat_hazard", "campaign")))
    flows.append(Flow("relapse", stage[11], stage[0], ("relapse_hazard",)))
    flows += [Flow(f"removal_{i:02d}", stage[i], SINK, ("removal_hazard",)) for i in (3, 7, 11)]
    return SyntheticModel(initial, parameters, flows)
