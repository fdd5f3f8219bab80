"""Executors give identical arrays (serial, local processes, a real Dask LocalCluster); Ctrl-C keeps work."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aftermath.experiments import (
    ExecutorError,
    ExecutorSpec,
    design_experiment,
    load_result,
    read_scenario,
    run_experiment,
    run_stored,
)
from aftermath.store import Store
from tests.test_experiments import one_kernel_thread  # noqa: F401  (autouse)

POLICY = "border_and_intelligence"


@pytest.fixture(scope="module")
def experiment():
    text, file, _ = read_scenario("competing_exits")
    # 7 does not divide 5: ranges cut through samples, which must not matter.
    return design_experiment(text, file, samples=6, replicates=5, arms=[{}, {POLICY: 0.5}], seed=11, range_size=7)


def assert_identical(first, second) -> None:
    assert list(first.arms) == list(second.arms)
    for label, dataset in first.arms.items():
        assert np.array_equal(dataset["replicate"].values, second.arms[label]["replicate"].values)
        for name in first.series:
            assert np.array_equal(dataset[name].values, second.arms[label][name].values, equal_nan=True), (
                label, name)


@pytest.mark.slow
def test_serial_processes_and_dask_give_identical_arrays(experiment) -> None:
    serial = run_experiment(experiment)
    assert_identical(serial, run_experiment(experiment, ExecutorSpec(workers=2)))
    assert_identical(serial, run_experiment(experiment, ExecutorSpec(workers=3)))
    assert_identical(serial, run_experiment(experiment, ExecutorSpec(workers=2, dask="local")))


@pytest.mark.slow
def test_dask_sends_a_cancelled_range_again_and_gives_up_after_a_few_tries(experiment) -> None:
    """Dask cancels tasks whose scattered context a dead worker held (dask/distributed#3149); here the
    cancellation is forced, so the resubmission is tested on every run, not only when a kill races."""
    from aftermath.experiments.design import layout_of
    from aftermath.experiments.executors import RESUBMITS_PER_TASK, DaskExecutor
    from aftermath.experiments.results import from_ranges
    from aftermath.experiments.worker import WorkerContext, make_task

    def tasks():
        return [make_task(experiment, first, last) for first, last in experiment.ranges()]

    executor = DaskExecutor(WorkerContext.of(experiment), "local", 1)
    try:
        submit = executor._submit
        cancelled = []

        def cancel_first_tries(task, resubmits=0):
            future = submit(task, resubmits)
            if resubmits == 0 and len(cancelled) < 2:
                executor.client.cancel(future)
                cancelled.append(task.first)
            return future

        executor._submit = cancel_first_tries
        results = list(executor.results(tasks()))
        assert len(cancelled) == 2 and sorted(r.first for r in results) == [first for first, _ in experiment.ranges()]
        labels = [arm.label for arm in experiment.arms]
        assert_identical(
            run_experiment(experiment), from_ranges(layout_of(experiment), labels, results, experiment.replicates)
        )

        def cancel_always(task, resubmits=0):
            future = submit(task, resubmits)
            executor.client.cancel(future)
            return future

        executor._submit = cancel_always
        tries = RESUBMITS_PER_TASK + 1
        with pytest.raises(ExecutorError, match=rf"cancelled the range of members \d+-\d+ {tries} times"):
            list(executor.results(tasks()))
    finally:
        executor.close()


def test_bad_executor_requests_are_clear(experiment) -> None:
    with pytest.raises(ExecutorError, match="expected 'local' or a scheduler address"):
        run_experiment(experiment, ExecutorSpec(dask="somewhere"))
    with pytest.raises(ExecutorError, match="cannot reach the scheduler"):
        run_experiment(experiment, ExecutorSpec(dask="tcp://127.0.0.1:9"))


def wait_until_stored(process: subprocess.Popen, members: int) -> None:
    """Follow a run's progress lines (stderr, not a terminal: one per stored range) up to `members`."""
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"(\d+)/\d+ members stored", line)
        if found and int(found.group(1)) >= members:
            return
    raise AssertionError(f"the run ended before {members} members were stored: {process.wait()}")


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_and_keeps_finished_ranges(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    command = [sys.executable, "-m", "aftermath", "compare", "competing_exits", "--policy", POLICY, "-s", "100",
               "-n", "10", "--workers", "2", "--store", str(path)]
    # As from a terminal: SIGINT at its default even when this test runs as a background job (which a
    # non-interactive shell starts with SIGINT ignored, and Python then never raises KeyboardInterrupt).
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_until_stored(process, 1)
    os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "aftermath resume 1" in stderr and "Traceback" not in stderr
    run = Store(path).runs().iloc[0]
    assert run.status == "interrupted" and 0 < run.stored < 1000
    done = subprocess.run([sys.executable, "-m", "aftermath", "resume", "1", "--workers", "1", "--store",
                           str(path), "--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert Store(path).runs().iloc[0].stored == 1000
    text, file, _ = read_scenario("competing_exits")
    fresh = design_experiment(text, file, samples=100, replicates=10, arms=[{}, {POLICY: None}], seed=1)
    reference = Store(tmp_path / "reference.duckdb")
    assert_identical(load_result(reference, run_stored(reference, fresh, "compare")).result,
                     load_result(Store(path), 1).result)


@pytest.mark.slow
def test_workers_forkserver_and_resource_tracker_die_with_a_killed_parent(tmp_path: Path) -> None:
    """SIGKILL runs no cleanup in the parent: its pool's processes must notice and go on their own."""
    import psutil

    command = [sys.executable, "-m", "aftermath", "ensemble", "competing_exits", "-s", "400", "-n", "20",
               "--workers", "2", "--store", str(tmp_path / "runs.duckdb")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_until_stored(process, 1)
    family = psutil.Process(process.pid).children(recursive=True)
    kinds = " ".join(" ".join(child.cmdline()) for child in family)
    assert "forkserver" in kinds and "resource_tracker" in kinds and len(family) >= 4, kinds
    process.kill()
    process.wait()
    _, alive = psutil.wait_procs(family, timeout=60)
    for leftover in alive:  # do not leave them behind even when the test fails
        leftover.kill()
    assert not alive, [" ".join(p.cmdline())[:80] for p in alive]


@pytest.mark.slow
def test_a_real_scheduler_and_two_workers_with_one_killed_mid_run_equal_the_serial_run(tmp_path: Path) -> None:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, as a deployment runs them: a worker
    SIGKILLed mid-run loses its tasks, Dask runs them again elsewhere, and the store holds each range once."""
    import json
    import time

    import duckdb

    dask = Path(sys.executable).with_name("dask")
    if not dask.exists():
        pytest.skip("the dask command is not installed beside this interpreter")
    text, file, _ = read_scenario("competing_exits")
    experiment = design_experiment(text, file, samples=24, replicates=5, arms=[{}, {POLICY: None}], seed=5,
                                   range_size=4)
    info = tmp_path / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [subprocess.Popen([str(dask), "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--scheduler-file", str(info)], **quiet)]
    try:
        deadline = time.monotonic() + 120
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = [subprocess.Popen([str(dask), "worker", address, "--nthreads", "1", "--no-dashboard",
                                     "--host", "127.0.0.1"], **quiet) for _ in range(2)]
        processes += workers
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
        store = Store(tmp_path / "runs.duckdb")
        stored = [0]

        def progress(members: int) -> None:
            stored[0] += members
            if workers[0].poll() is None:
                workers[0].kill()  # mid-run: after the first range, with others in flight on it

        run_id = run_stored(store, experiment, "compare", ExecutorSpec(dask=address), progress=progress)
        assert workers[0].poll() is not None and workers[1].poll() is None
    finally:
        for process in processes:
            process.kill()
            process.wait()
    assert stored[0] == experiment.members
    assert_identical(run_experiment(experiment), load_result(store, run_id).result)
    with duckdb.connect(str(store.path), read_only=True) as db:
        ranges, covered, lists, distinct = db.execute(
            "SELECT (SELECT count(*) FROM ranges), (SELECT sum(last_replicate - first_replicate) FROM ranges), "
            "count(*), count(DISTINCT (arm, first_replicate, outcome)) FROM series").fetchone()
    assert (ranges, covered) == (len(experiment.ranges()), experiment.members)
    assert lists == distinct, "no series stored twice"
    assert Store(store.path).runs().iloc[0].status == "done"
