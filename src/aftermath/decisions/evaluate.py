"""Evaluate a scenario at chosen parameter points and policies: the one bridge from decisions to experiments.

A *target* is one outcome at one date (`remnant_strength@2025-12`). Evaluations run as an experiment
(same executors, same member-keyed random numbers) but keep only the targets of each finished range,
so a Sobol design of tens of thousands of runs never holds the full series in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aftermath.experiments.design import Arm, Experiment, design_experiment, layout_of
from aftermath.experiments.executors import ExecutorSpec
from aftermath.experiments.runner import SERIAL, run_ranges
from aftermath.experiments.sampling import Sampler
from aftermath.experiments.worker import TaskResult
from aftermath.scenario.schema import Scenario, month_label, parse_month


class DecisionError(ValueError):
    """A decision analysis cannot be done as asked (too small a sample, an unknown outcome, no levers)."""


@dataclass(frozen=True)
class Target:
    """One one-number outcome at one month."""

    outcome: str
    date: str
    """'YYYY-MM'."""

    @property
    def label(self) -> str:
        return f"{self.outcome}@{self.date}"


def parse_target(text: str) -> Target:
    """'OUTCOME@YYYY-MM' as a Target; raises DecisionError naming the expected form."""
    outcome, sep, date = text.partition("@")
    if not sep or not outcome.strip():
        raise DecisionError(f"{text!r}: expected OUTCOME@YYYY-MM, e.g. remnant_strength@2025-12")
    try:
        month = parse_month(date.strip())
    except ValueError as exc:
        raise DecisionError(f"{text!r}: {exc}") from None
    return Target(outcome.strip(), month_label(month))


def check_targets(scenario: Scenario, targets: Sequence[Target]) -> None:
    """Refuse a target whose outcome is unknown or stratified, or whose date is outside the horizon."""
    scalar = [name for name, outcome in scenario.outcomes.items() if not outcome.by]
    for target in targets:
        if target.outcome not in scenario.outcomes:
            raise DecisionError(
                f"{target.label}: no outcome {target.outcome!r} in scenario {scenario.name!r}; "
                f"expected one of {', '.join(scalar)}"
            )
        if scenario.outcomes[target.outcome].by:
            raise DecisionError(f"{target.label}: the outcome is split by {scenario.outcomes[target.outcome].by}; "
                                "expected a one-number outcome")
        month = parse_month(target.date)
        if not scenario.time.start <= month <= scenario.time.end:
            raise DecisionError(f"{target.label}: the date is outside the scenario's horizon "
                                f"{month_label(scenario.time.start)} to {month_label(scenario.time.end)}")


def evaluate_targets(
    experiment: Experiment,
    targets: Sequence[Target],
    executor: ExecutorSpec = SERIAL,
    progress: Callable[[int], None] | None = None,
    keep: Callable[[TaskResult], None] | None = None,
) -> np.ndarray:
    """Each arm's targets per parameter sample, averaged over the sample's replicates.

    Returns (arms, samples, targets) floats; `keep` is given each finished range's whole result (to
    store it). Raises DecisionError for a bad target.
    """
    check_targets(experiment.scenario, targets)
    layout = layout_of(experiment)
    positions = [
        int(np.searchsorted(layout.times, np.datetime64(t.date, "M"), side="right")) - 1 for t in targets
    ]
    values = np.empty((len(experiment.arms), experiment.members, len(targets)))
    for result in run_ranges(experiment, experiment.ranges(), executor):
        for arm, series in enumerate(result.series):
            for column, (target, position) in enumerate(zip(targets, positions, strict=True)):
                values[arm, result.first:result.last, column] = series[target.outcome][:, position]
        if keep is not None:
            keep(result)
        if progress is not None:
            progress(result.last - result.first)
    shaped = values.reshape(len(experiment.arms), experiment.samples, experiment.replicates, len(targets))
    return shaped.mean(axis=2)


def scenario_experiment(
    scenario_text: str,
    scenario_file: str,
    draws: Mapping[str, np.ndarray],
    arms: Sequence[Mapping[str, float | None] | Arm] = ({},),
    engine: str = "deterministic",
    replicates: int = 1,
    seed: int = 0,
    sampler: Sampler = "lhs",
) -> Experiment:
    """An experiment over given draws {parameter: (samples,)} (parameters left out keep their value);
    `sampler` is how they were made (DESIGN: a sensitivity design)."""
    samples = len(next(iter(draws.values()))) if draws else 1
    return design_experiment(
        scenario_text, scenario_file, samples=samples, replicates=replicates, arms=arms, sampler=sampler,
        engine=engine, seed=seed, draws=draws,  # type: ignore[arg-type]
    )
