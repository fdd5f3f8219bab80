"""Draws from the parameters' declared uncertainty: Latin hypercube (default) or plain Monte Carlo.

A draw is one number per uncertain parameter and sample: the value itself (in the parameter's
unit) or, for a `relative` distribution, the multiplier of all its per-stratum values. Draws are
what the store keeps; `expand_draws` turns them into the per-run arrays `simulate` takes.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Literal

import numpy as np

from aftermath.model.compile import stable_id
from aftermath.resources import check_seed, require_memory
from aftermath.scenario.checks import stratum_array
from aftermath.scenario.schema import Scenario
from aftermath.scenario.validate import TAIL, frozen_distribution
from aftermath.units import is_probability_unit

Sampler = Literal["lhs", "mc", "design"]
SAMPLERS: tuple[str, ...] = ("lhs", "mc")
"""The samplers that draw; a run whose draws its caller made (a sensitivity design, recorded in the
run's metadata) is labelled DESIGN."""
DESIGN = "design"
_SAMPLING_STREAM = stable_id("parameter samples")


def uncertain_parameters(scenario: Scenario) -> list[str]:
    """Parameters with a distribution, in the order the file declares them."""
    return [name for name, p in scenario.parameters.items() if p.distribution is not None]


def unit_samples(dimensions: int, samples: int, sampler: Sampler, seed: int) -> np.ndarray:
    """(samples, dimensions) points in the open unit cube; the same for the same seed."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
    rng = np.random.default_rng([_SAMPLING_STREAM, seed])
    if dimensions == 0:
        return np.zeros((samples, 0))
    if sampler == "lhs":
        from scipy.stats import qmc  # imported here: scipy.stats costs seconds at CLI start-up

        return qmc.LatinHypercube(d=dimensions, rng=rng).random(samples)
    return rng.random((samples, dimensions))


def sample_draws(scenario: Scenario, samples: int, sampler: Sampler = "lhs", seed: int = 0) -> dict[str, np.ndarray]:
    """One draw per uncertain parameter and sample: {parameter: (samples,)}.

    Raises aftermath.errors.ResourceError for a seed outside 0..2^63-1 or draws beyond this machine's memory.
    """
    names = uncertain_parameters(scenario)
    check_seed(seed)
    require_memory(8.0 * samples * max(len(names), 1) * 3, f"{samples:,} parameter samples")  # points, clip, ppf
    return draws_from_unit(scenario, names, unit_samples(len(names), samples, sampler, seed))


def draws_from_unit(
    scenario: Scenario, names: list[str], points: np.ndarray, margin: float = TAIL
) -> dict[str, np.ndarray]:
    """Points of the unit cube (samples, len(names)) as draws, through each distribution's quantile
    function; quantiles are kept within [margin, 1 - margin] so unbounded distributions stay finite."""
    return {
        name: frozen_distribution(scenario.parameters[name].distribution).ppf(
            np.clip(points[:, i], margin, 1 - margin)
        )
        for i, name in enumerate(names)
    }


def expand_draws(scenario: Scenario, draws: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Draws as parameter arrays (samples, *strata in the parameter's dims order), in declared units.

    A relative draw multiplies every stratum's value; a probability stays within [0, 1].
    """
    arrays = {}
    for name, draw in draws.items():
        parameter = scenario.parameters[name]
        draw = np.asarray(draw, dtype=float)
        if parameter.distribution is not None and parameter.distribution.relative:
            values = stratum_array(scenario, parameter.value, list(parameter.dims), parameter.default, ())
            array = draw.reshape(-1, *[1] * values.ndim) * values[None]
        else:
            array = draw
        if is_probability_unit(parameter.unit):
            array = np.clip(array, 0.0, 1.0)
        arrays[name] = array
    return arrays


def per_run_parameters(
    scenario: Scenario, runs: int, seed: int, fixed: Collection[str] = ()
) -> dict[str, np.ndarray]:
    """One Latin-hypercube draw of every uncertain parameter per run, as `simulate` takes them;
    parameters in `fixed` (e.g. set on the command line) keep their value."""
    draws = {name: draw for name, draw in sample_draws(scenario, runs, "lhs", seed).items() if name not in fixed}
    return expand_draws(scenario, draws)
