"""Decision analyses of stored ensembles (DuckDB run store): each parameter sample is one case.

A case's outcome is the mean over its replicates; its inputs are the stored draws (in the
parameter's unit, or the multiplier of a relative distribution).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aftermath.decisions.evaluate import DecisionError, Target, check_targets
from aftermath.experiments.design import layout_of
from aftermath.experiments.runner import stored_experiment
from aftermath.store import Store


@dataclass(frozen=True)
class Cases:
    """A stored run's parameter samples and their targets."""

    run_id: int
    scenario: str
    arm: str
    """The arm's label, or ALL_ARMS."""
    inputs: dict[str, np.ndarray]
    """{parameter: (cases,)} draws of the complete samples (and policy strengths when arms are pooled)."""
    values: np.ndarray
    """(cases, targets): each target averaged over the sample's replicates."""


ALL_ARMS = "all"
"""The `arm` that pools every arm of a run: its policies' strengths become inputs beside the draws."""


def strength_column(policy: str) -> str:
    """The input holding a policy's strength when arms are pooled (0 in an arm without the policy)."""
    return f"{policy} (strength)"


def stored_cases(store: Store, run_id: int, targets: Sequence[Target], arm: str | None = None) -> Cases:
    """Load the targets of one arm (default: the first; every arm for a policy search run, whose metadata
    has a 'search') of a stored run, one row per complete sample.

    With `arm` ALL_ARMS, each (arm, sample) is a case (arm by arm, samples in order) and each policy of
    the run is one more input, `strength_column(policy)`: its strength in the case's arm (0, no change,
    where the arm does not apply it), so scenario discovery can find boxes of uncertainties and policy
    strengths together. Raises DecisionError for an unknown arm or target, StoreError for an unknown run.
    """
    run = store.run(run_id)
    experiment = stored_experiment(run)
    check_targets(experiment.scenario, targets)
    missing = [t.outcome for t in targets if experiment.outcomes is not None and t.outcome not in experiment.outcomes]
    if missing:
        raise DecisionError(f"run {run_id} stored only the outcomes {', '.join(experiment.outcomes or ())}, not "
                            f"{missing[0]!r}; run it again with {missing[0]!r} in --outcomes")
    labels = run.labels
    if arm is None and "search" in run.metadata:
        arm = ALL_ARMS
    pooled = arm == ALL_ARMS and ALL_ARMS not in labels  # an arm of that name (a policy called 'all') wins
    chosen = [*labels] if pooled else [arm or labels[0]]
    if chosen[0] not in labels:
        raise DecisionError(f"run {run_id} has no arm {chosen[0]!r}; expected one of {', '.join(labels)} "
                            f"(or {ALL_ARMS})")
    layout = layout_of(experiment)
    months = [layout.times[np.searchsorted(layout.times, np.datetime64(t.date, "M"), side="right") - 1]
              for t in targets]
    dates = [str(m) for m in dict.fromkeys(months)]
    members, arrays, _ = store.load_series(run, layout, dates)
    replicates = experiment.replicates
    samples = members // replicates
    ids, counts = np.unique(samples, return_counts=True)
    complete = ids[counts == replicates]
    keep = np.isin(samples, complete)

    def arm_values(label: str) -> np.ndarray:
        series = arrays[labels.index(label)]
        return np.column_stack([
            series[t.outcome][keep, dates.index(str(m))].reshape(len(complete), replicates).mean(axis=1)
            for t, m in zip(targets, months, strict=True)
        ]) if len(complete) else np.zeros((0, len(targets)))

    values = np.concatenate([arm_values(label) for label in chosen])
    inputs = {name: np.tile(np.asarray(draw)[complete], len(chosen)) for name, draw in run.draws.items()}
    if pooled:
        strengths = dict(run.arms)
        for policy in dict.fromkeys(p for _, policies in run.arms for p in policies):
            inputs[strength_column(policy)] = np.repeat(
                [float(strengths[label].get(policy, 0.0)) for label in chosen], len(complete))
    return Cases(run_id, experiment.scenario.name, arm or labels[0], inputs, values)
