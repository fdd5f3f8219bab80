"""Running experiments: in memory, or into the run store range by range, and resuming stored runs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass

from aftermath.experiments.design import Arm, Experiment, design_experiment, layout_of
from aftermath.experiments.executors import ExecutorSpec, open_executor
from aftermath.experiments.results import EnsembleResult, assemble, from_ranges
from aftermath.experiments.worker import TaskResult, WorkerContext, make_task
from aftermath.store import Store, StoredRun, StoreError
from aftermath.summary import key_dates

Progress = Callable[[int], None]
Started = Callable[[int, int], None]
SERIAL = ExecutorSpec(workers=1)
NOT_RESUMABLE = "not_resumable"
"""The metadata key of a run that `resume` refuses, holding why (e.g. a policy search, whose next policies
depend on the optimiser's state, which is not stored)."""


def run_ranges(
    experiment: Experiment, ranges: Sequence[tuple[int, int]], executor: ExecutorSpec = SERIAL
) -> Iterator[TaskResult]:
    """Run the given member ranges, yielding each as it finishes; on Ctrl-C no queued range starts."""
    if not ranges:
        return
    runner = open_executor(executor, WorkerContext.of(experiment))
    interrupted = True
    try:
        yield from runner.results(make_task(experiment, first, last) for first, last in ranges)
        interrupted = False
    finally:
        runner.close(interrupted=interrupted)


def run_experiment(
    experiment: Experiment, executor: ExecutorSpec = SERIAL, progress: Progress | None = None
) -> EnsembleResult:
    """Run every member of every arm and keep the results in memory."""
    results = []
    for result in run_ranges(experiment, experiment.ranges(), executor):
        results.append(result)
        if progress is not None:
            progress(result.last - result.first)
    return from_ranges(layout_of(experiment), [arm.label for arm in experiment.arms], results, experiment.replicates)


def run_stored(
    store: Store, experiment: Experiment, kind: str, executor: ExecutorSpec = SERIAL,
    progress: Progress | None = None, started: Started | None = None, metadata: dict | None = None,
) -> int:
    """Record the run (with JSON-ready `metadata`, e.g. the design it samples), then store each range
    as it finishes; returns the run id.

    `started` is told the run id and the members to run as soon as the run exists (so an
    interrupted caller can name it).
    """
    executor.check()
    with store.holding():
        run_id = store.create_run(experiment, layout_of(experiment), kind, executor.describe(), metadata)
        if started is not None:
            started(run_id, experiment.members)
        _finish(store, run_id, experiment, experiment.ranges(), executor, progress)
    return run_id


def stored_experiment(run: StoredRun) -> Experiment:
    """Rebuild a stored run's experiment from its scenario text and draws; refuse if it no longer matches.
    Raises StoreError for a calibration run (its draws are a posterior, not an ensemble to run or resume)."""
    row = run.row
    if row["kind"] == "calibration":
        raise StoreError(
            f"run {run.run_id} is a calibration, not an ensemble: 'aftermath show {run.run_id}' shows its posterior, "
            f"'aftermath calibrate --resume {run.run_id}' continues it, --posterior {run.run_id} draws from it")
    experiment = design_experiment(
        row["scenario_text"], row["scenario_file"], samples=int(row["samples"]), replicates=int(row["replicates"]),
        arms=[Arm(label, policies) for label, policies in run.arms], sampler=row["sampler"], seed=int(row["seed"]),
        engine=row["engine"], range_size=int(row["range_size"]), draws=run.draws,
        outcomes=None if row.get("outcomes") is None else json.loads(row["outcomes"]),
    )
    if experiment.scenario_hash != row["scenario_hash"]:
        raise StoreError(
            f"run {run.run_id}: this aftermath reads its scenario as {experiment.scenario_hash}, not "
            f"{row['scenario_hash']} as stored; finish it with the version that started it "
            f"({run.row['versions']})"
        )
    return experiment


def missing_ranges(store: Store, run_id: int, experiment: Experiment) -> list[tuple[int, int]]:
    done = set(store.completed(run_id))
    return [r for r in experiment.ranges() if r not in done]


def resume(
    store: Store, run_id: int, executor: ExecutorSpec = SERIAL, progress: Progress | None = None,
    started: Started | None = None,
) -> list[tuple[int, int]]:
    """Run a stored run's missing ranges; returns the ranges it ran (none if it was complete)."""
    executor.check()
    run = store.run(run_id)
    if NOT_RESUMABLE in run.metadata:
        raise StoreError(f"run {run_id} cannot be resumed: {run.metadata[NOT_RESUMABLE]}")
    store.verify(run_id)  # a damaged file is reported, never written to
    experiment = stored_experiment(run)
    todo = missing_ranges(store, run_id, experiment)
    if not todo and run.row["status"] == "done":
        return []
    with store.holding():
        store.claim(run, executor.describe())
        if started is not None:
            started(run_id, sum(last - first for first, last in todo))
        _finish(store, run_id, experiment, todo, executor, progress)
    return todo


def _finish(
    store: Store, run_id: int, experiment: Experiment, ranges: Sequence[tuple[int, int]], executor: ExecutorSpec,
    progress: Progress | None,
) -> None:
    layout = layout_of(experiment)
    labels = [arm.label for arm in experiment.arms]
    try:
        for result in run_ranges(experiment, ranges, executor):
            store.write_range(run_id, labels, result, layout)
            if progress is not None:
                progress(result.last - result.first)
    except KeyboardInterrupt:
        store.set_status(run_id, "interrupted", "stopped by Ctrl-C")
        raise
    except BaseException as exc:
        with suppress(StoreError):  # the store may be unwritable too: the run then reads 'stopped'
            store.set_status(run_id, "failed", f"{type(exc).__name__}: {exc}")
        raise
    store.set_status(run_id, "done")


@dataclass(frozen=True)
class StoredResult:
    run: StoredRun
    experiment: Experiment
    result: EnsembleResult
    """Series over the stored members (all of them once the run is done)."""
    dates: list[str] | None
    """The months loaded (None: all)."""


def load_result(store: Store, run_id: int, key_dates_only: bool = False) -> StoredResult:
    """A stored run's series, at every month or only at its scenario's key dates."""
    run = store.run(run_id)
    experiment = stored_experiment(run)
    layout = layout_of(experiment)
    dates = key_dates(experiment.scenario) if key_dates_only else None
    members, arrays, times = store.load_series(run, layout, dates)
    return StoredResult(run, experiment, assemble(layout, run.labels, members, arrays, experiment.replicates, times),
                        dates)
