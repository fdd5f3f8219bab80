"""A synthetic scenario with known true parameters, and noisy observations drawn from its observation model."""

from __future__ import annotations

import numpy as np

from aftermath import compile_model, simulate
from aftermath.inference.observation import predictive_draws
from aftermath.scenario.loader import parse_scenario
from aftermath.scenario.schema import ObservationError

TRUTH = {"death_hazard": 0.12, "return_hazard": 0.25}
DATES = ["2014-07", "2015-01", "2015-07", "2016-01", "2016-07", "2017-01", "2017-07", "2018-01"]
SIGMA = 0.1

HEAD = """
format: 1
name: synthetic_cohort
title: A synthetic cohort leaving by two competing exits
time: {{start: 2014-01, end: 2019-12}}
compartments:
  in_theatre: {{initial: 5000, assumption: synthetic}}
  killed: {{assumption: synthetic}}
  returned: {{assumption: synthetic}}
parameters:
  death_hazard:
    unit: per year
    value: {death}
    distribution: {{type: lognormal, median: 0.15, sigma: 0.5}}
    assumption: synthetic prior
  return_hazard:
    unit: per year
    value: {ret}
    distribution: {{type: lognormal, median: 0.2, sigma: 0.5}}
    assumption: synthetic prior
flows:
  - {{name: dying, from: in_theatre, to: killed, rate: death_hazard}}
  - {{name: returning, from: in_theatre, to: returned, rate: return_hazard}}
outcomes:
  killed_total: {{expr: killed}}
  returned_total: {{expr: returned}}
observation_model:
  default: {{distribution: lognormal, sigma: {sigma}, range: [0.05, 1.0], assumption: synthetic}}
"""


def synthetic_scenario(seed: int, observations: str | None = None):
    """(scenario text, scenario): the truth's values as the parameters' values; observations drawn from the
    lognormal observation model around the truth's deterministic outcomes (or the given YAML block)."""
    head = HEAD.format(death=TRUTH["death_hazard"], ret=TRUTH["return_hazard"], sigma=SIGMA)
    if observations is None:
        truth = parse_scenario(head)
        data = simulate(compile_model(truth), replicates=1, engine="deterministic", keep_compartments=False)
        rng = np.random.default_rng(seed)
        error = ObservationError(distribution="lognormal", sigma=SIGMA, range=(0.05, 1.0), assumption="synthetic")
        lines = []
        for outcome in ("killed_total", "returned_total"):
            for date in DATES:
                latent = data[outcome].sel(time=np.datetime64(date, "M")).values.reshape(1)
                figure = float(predictive_draws(error, latent, rng)[0])
                lines.append(f"  - {{outcome: {outcome}, date: {date}, value: {figure:.3f}, source: synthetic}}")
        observations = "\n".join(lines)
    text = head + "sources:\n  - {id: synthetic, citation: drawn in the test}\nobservations:\n" + observations + "\n"
    return text, parse_scenario(text)
