"""The work a worker does: run one member range of every arm.

A worker gets the experiment's small context once (the scenario text, not a compiled model) and
then only range descriptors; it parses and compiles once per scenario and arm and keeps the
result, so a long-lived (e.g. Dask) worker pays for compilation once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import numba
import numpy as np

from aftermath.engines.simulate import simulate
from aftermath.errors import ModelError
from aftermath.experiments.design import Arm, Experiment, recorded_series
from aftermath.experiments.sampling import expand_draws
from aftermath.model.compile import CompiledModel, compile_model
from aftermath.scenario.loader import parse_scenario

_CACHE_LIMIT = 16


@dataclass(frozen=True)
class WorkerContext:
    """What every task of an experiment shares; sent once per worker."""

    scenario_text: str
    scenario_file: str
    scenario_hash: str
    seed: int
    engine: str
    replicates: int
    arms: tuple[Arm, ...]
    outcomes: tuple[str, ...] | None = None
    """The recorded series sent back (None: all)."""
    kernel_threads: int | None = None
    """Threads the engine's parallel kernel may use per task (None: numba's default). Executors that
    run one task per core set 1, so workers do not fight over the cores."""

    @classmethod
    def of(cls, experiment: Experiment) -> WorkerContext:
        return cls(
            experiment.scenario_text, experiment.scenario_file, experiment.scenario_hash, experiment.seed,
            experiment.engine, experiment.replicates, experiment.arms, experiment.outcomes,
        )


@dataclass(frozen=True)
class Task:
    """Members [first, last) and the draws of the samples they belong to (from `first_sample` on)."""

    first: int
    last: int
    first_sample: int
    draws: dict[str, np.ndarray]


@dataclass(frozen=True)
class TaskResult:
    first: int
    last: int
    series: tuple[dict[str, np.ndarray], ...]
    """Per arm (in the experiment's order): recorded series name -> (members, time, *its strata)."""
    seconds: float


def make_task(experiment: Experiment, first: int, last: int) -> Task:
    first_sample = first // experiment.replicates
    stop = (last - 1) // experiment.replicates + 1
    return Task(first, last, first_sample, {name: d[first_sample:stop] for name, d in experiment.draws.items()})


def compiled(context: WorkerContext, arm: Arm) -> CompiledModel:
    """The arm's model, compiled once per worker process (the last few scenario x policies kept)."""
    return _compiled(context.scenario_text, context.scenario_file, context.scenario_hash, tuple(arm.policies.items()))


@lru_cache(maxsize=_CACHE_LIMIT)
def _compiled(text: str, file: str, expected_hash: str, policies: tuple[tuple[str, float], ...]) -> CompiledModel:
    model = compile_model(parse_scenario(text, file), policies=dict(policies))
    if model.scenario_hash != expected_hash:
        raise ModelError(
            f"this worker reads the scenario as {model.scenario_hash}, not {expected_hash}; "
            "expected every worker to run the same aftermath version as the main process"
        )
    return model


def run_task(context: WorkerContext, task: Task) -> TaskResult:
    """Simulate members [first, last) of every arm with the same seed and parameters."""
    started = time.perf_counter()
    if context.kernel_threads is not None:
        numba.set_num_threads(min(context.kernel_threads, numba.config.NUMBA_NUM_THREADS))
    members = np.arange(task.first, task.last)
    rows = members // context.replicates - task.first_sample
    series = []
    for arm in context.arms:
        model = compiled(context, arm)
        values = expand_draws(model.scenario, task.draws)
        dataset = simulate(
            model, replicates=len(members), seed=context.seed, engine=context.engine,  # type: ignore[arg-type]
            parameters={name: array[rows] for name, array in values.items()},
            keep_compartments=False, first_replicate=task.first, samples=members // context.replicates,
        )
        kept = recorded_series(model) if context.outcomes is None else context.outcomes
        series.append({name: dataset[name].values for name in kept})
    return TaskResult(task.first, task.last, tuple(series), time.perf_counter() - started)

