"""What an experiment is: a scenario, its parameter samples, and the arms (baseline, policies) to run.

Members are numbered `sample * replicates + k`; that global index keys every random draw, so any
split of the members into ranges (the unit of work and of storage) gives the same numbers. All
arms share the seed and the samples: a policy and its baseline are paired member by member
(common random numbers).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aftermath.engines.simulate import ENGINES, Engine
from aftermath.errors import ResourceError, ScenarioError
from aftermath.experiments.sampling import SAMPLERS, Sampler, sample_draws
from aftermath.model.compile import CompiledModel, compile_model, scenario_hash
from aftermath.resources import MAX_MEMBERS, check_seed, require_memory
from aftermath.scenario.loader import parse_scenario, resolve_scenario_path
from aftermath.scenario.schema import Scenario
from aftermath.summary import key_dates

BASELINE = "baseline"
TASKS_PER_RUN = 64
RANGE_LIMITS = (16, 250)


@dataclass(frozen=True)
class Arm:
    """One way of running the scenario: a set of policies at resolved strengths (none: the baseline)."""

    label: str
    policies: dict[str, float]


def make_arm(scenario: Scenario, policies: Mapping[str, float | None]) -> Arm:
    """An arm from {policy: strength or None for its default}; the label keeps what was asked."""
    if not policies:
        return Arm(BASELINE, {})
    resolved = compile_model(scenario, policies=policies).interventions
    label = "+".join(name if strength is None else f"{name}={strength:g}" for name, strength in policies.items())
    return Arm(label, resolved)


@dataclass(frozen=True)
class Experiment:
    """Everything needed to run (or resume) an ensemble; the draws are fixed when it is designed."""

    scenario_text: str
    scenario_file: str
    scenario: Scenario
    scenario_hash: str
    seed: int
    engine: Engine
    sampler: Sampler
    samples: int
    replicates: int
    """Stochastic replicates per parameter sample."""
    arms: tuple[Arm, ...]
    draws: dict[str, np.ndarray]
    """Sampled value (or multiplier, for relative distributions) per uncertain parameter: (samples,)."""
    range_size: int
    outcomes: tuple[str, ...] | None = None
    """The recorded series kept (stored, assembled), in the scenario's order; None: all of them."""

    @property
    def members(self) -> int:
        return self.samples * self.replicates

    def ranges(self) -> list[tuple[int, int]]:
        """The member ranges [first, last) work is sent and stored in."""
        starts = range(0, self.members, self.range_size)
        return [(first, min(first + self.range_size, self.members)) for first in starts]


def default_range_size(members: int) -> int:
    """About TASKS_PER_RUN ranges: enough to spread over workers and to lose little on a crash."""
    return min(members, int(np.clip(math.ceil(members / TASKS_PER_RUN), *RANGE_LIMITS)))


def read_scenario(reference: str | Path | None) -> tuple[str, str, Scenario]:
    """(text, file name, validated scenario) of a path or shipped name; the text is what gets stored."""
    path = resolve_scenario_path(reference)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read the file ({exc})", file=path) from None
    return text, str(path), parse_scenario(text, path)


def design_experiment(
    scenario_text: str,
    scenario_file: str = "<string>",
    *,
    samples: int,
    replicates: int,
    arms: Sequence[Mapping[str, float | None] | Arm] = ({},),
    sampler: Sampler = "lhs",
    seed: int = 0,
    engine: Engine = "stochastic",
    range_size: int | None = None,
    draws: Mapping[str, np.ndarray] | None = None,
    outcomes: Sequence[str] | None = None,
) -> Experiment:
    """Validate everything up front (scenario, policies, sizes) and draw the parameter samples.

    `draws` replaces the sampling and `Arm`s are taken as they are (both used when resuming a stored
    run); `sampler` then names where the draws came from: DESIGN for a caller's design (a sensitivity
    analysis), 'posterior 7' for draws from a calibration. Policies given as {name: strength or None} are
    checked. The deterministic engine runs one member per sample. `outcomes` keeps only those recorded
    series (outcomes or sub-model outputs; ScenarioError naming an unknown one); None keeps all.
    """
    if samples < 1 or replicates < 1:
        raise ValueError("samples and replicates must be at least 1")
    check_seed(seed)
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    if draws is None and sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; expected one of {SAMPLERS}")
    scenario = parse_scenario(scenario_text, scenario_file)
    if engine == "deterministic":
        replicates = 1
    made = tuple(arm if isinstance(arm, Arm) else make_arm(scenario, arm) for arm in arms)
    _check_size(scenario, samples * replicates, len(made))
    labels = [arm.label for arm in made]
    if len(set(labels)) != len(labels):
        raise ScenarioError(f"the arms {labels} repeat one another", ("interventions",), expected="distinct policies")
    chosen = dict(draws) if draws is not None else sample_draws(scenario, samples, sampler, seed)
    kept = None if outcomes is None else kept_outcomes(compile_model(scenario), outcomes)
    return Experiment(
        scenario_text=scenario_text,
        scenario_file=scenario_file,
        scenario=scenario,
        scenario_hash=scenario_hash(scenario),
        seed=seed,
        engine=engine,
        sampler=sampler,
        samples=samples,
        replicates=replicates,
        arms=made,
        draws={name: np.asarray(values, dtype=float) for name, values in chosen.items()},
        range_size=range_size or default_range_size(samples * replicates),
        outcomes=kept,
    )


class OutcomeChoiceError(ValueError):
    """Outcomes to keep that the scenario does not record."""


def kept_outcomes(model: CompiledModel, names: Sequence[str]) -> tuple[str, ...]:
    """`names` in the order the model records them; OutcomeChoiceError for one it does not record (with
    the closest names) or for none at all."""
    recorded = list(recorded_series(model))
    unknown = [name for name in names if name not in recorded]
    if unknown:
        close = difflib.get_close_matches(unknown[0], recorded, n=3)
        raise OutcomeChoiceError(
            f"unknown outcome {unknown[0]!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else "")
            + f"; expected names of the scenario's outcomes or sub-model outputs, e.g. {', '.join(recorded[:3])} "
            "('aftermath explain' lists them)"
        )
    if not names:
        raise OutcomeChoiceError("no outcome named; expected at least one, comma separated")
    return tuple(name for name in recorded if name in names)


def _check_size(scenario: Scenario, members: int, arms: int) -> None:
    """Refuse (ResourceError) a run the store cannot number or whose summary would not fit in memory:
    every member of every arm at each key date, 8 bytes per outcome stratum."""
    if members > MAX_MEMBERS:
        raise ResourceError(f"{members:,} members (samples x replicates) is more than a run can hold ({MAX_MEMBERS:,})")
    strata = sum(math.prod(len(scenario.dimensions.get(d, ())) or 1 for d in o.by) for o in scenario.outcomes.values())
    require_memory(8.0 * members * arms * len(key_dates(scenario)) * max(strata, 1),
                   f"the summary of {members:,} members x {arms} arm(s)")


Strata = tuple[tuple[str, list[str]], ...]


@dataclass(frozen=True)
class Layout:
    """The shape of what an experiment records: each series' strata (name, labels), and the months."""

    series: dict[str, Strata]
    times: np.ndarray
    """datetime64[M], one per step."""
    step_months: int

    @property
    def dims(self) -> dict[str, list[str]]:
        return {dim: labels for strata in self.series.values() for dim, labels in strata}


def recorded_series(model: CompiledModel) -> dict[str, Strata]:
    """The series an experiment keeps (outcomes and sub-model outputs) and their strata."""
    series = {o.name: tuple((d, model.dims[d]) for d in o.by) for o in model.outcomes}
    for coupling in model.couplings:
        series.update({name: tuple(dims) for name, dims in coupling.outputs.items()})
    return series


def layout_of(experiment: Experiment) -> Layout:
    """What the experiment records: its kept series (all unless it chose `outcomes`), and the months."""
    model = compile_model(experiment.scenario)
    times = np.array([model.month_label(i) for i in range(model.steps + 1)], dtype="datetime64[M]")
    series = recorded_series(model)
    if experiment.outcomes is not None:
        series = {name: series[name] for name in experiment.outcomes}
    return Layout(series, times, int(model.dt))
