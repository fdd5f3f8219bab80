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
    inputs: dict[str, np.ndarray]
    """{parameter: (cases,)} draws of the complete samples."""
    values: np.ndarray
    """(cases, targets): each target averaged over the sample's replicates."""


def stored_cases(store: Store, run_id: int, targets: Sequence[Target], arm: str | None = None) -> Cases:
    """Load the targets of one arm (default: the first) of a stored run, one row per complete sample.

    Raises DecisionError for an unknown arm or target, StoreError for an unknown run.
    """
    run = store.run(run_id)
    experiment = stored_experiment(run)
    check_targets(experiment.scenario, targets)
    labels = run.labels
    chosen = arm or labels[0]
    if chosen not in labels:
        raise DecisionError(f"run {run_id} has no arm {chosen!r}; expected one of {', '.join(labels)}")
    layout = layout_of(experiment)
    months = [layout.times[np.searchsorted(layout.times, np.datetime64(t.date, "M"), side="right") - 1]
              for t in targets]
    dates = [str(m) for m in dict.fromkeys(months)]
    members, arrays, _ = store.load_series(run, layout, dates)
    series = arrays[labels.index(chosen)]
    replicates = experiment.replicates
    samples = members // replicates
    ids, counts = np.unique(samples, return_counts=True)
    complete = ids[counts == replicates]
    keep = np.isin(samples, complete)
    values = np.column_stack([
        series[t.outcome][keep, dates.index(str(m))].reshape(len(complete), replicates).mean(axis=1)
        for t, m in zip(targets, months, strict=True)
    ]) if len(complete) else np.zeros((0, len(targets)))
    inputs = {name: np.asarray(draw)[complete] for name, draw in run.draws.items()}
    return Cases(run_id, experiment.scenario.name, chosen, inputs, values)
