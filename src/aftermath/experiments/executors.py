"""Where ranges run: in this process, in local worker processes, or on a Dask cluster.

Every executor sends the experiment's small context once per worker and then one range
descriptor per task, keeps a bounded window of tasks in flight (never the whole queue), and
yields results as they finish. Results do not depend on the executor: each range's random
numbers are keyed by its members' global indices.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from aftermath.experiments.worker import Task, TaskResult, WorkerContext, run_task

WINDOW_PER_WORKER = 2
"""Tasks in flight per worker: one running, one queued so no worker waits for the next."""


class ExecutorError(Exception):
    """An executor could not start or lost its workers."""


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass(frozen=True)
class ExecutorSpec:
    """How to run: `workers` processes (1: in this process), or on Dask (`dask`: 'local' or tcp://HOST:PORT)."""

    workers: int | None = None
    dask: str | None = None

    def describe(self) -> str:
        if self.dask == "local":
            return f"dask LocalCluster, {self.resolved_workers()} workers"
        if self.dask:
            return f"dask {self.dask}"
        workers = self.resolved_workers()
        return "serial" if workers == 1 else f"{workers} processes"

    def check(self) -> None:
        """Refuse a malformed request before any run is recorded."""
        if self.workers is not None and self.workers < 1:
            raise ExecutorError("--workers must be at least 1")
        if self.dask and self.dask != "local":
            scheduler_address(self.dask)

    def resolved_workers(self) -> int:
        """The worker count asked for, else one per available core."""
        return self.workers if self.workers else available_cores()


def scheduler_address(text: str) -> tuple[str, int]:
    """(host, port) of 'tcp://HOST:PORT'; raises ExecutorError for anything else (a port outside
    1..65535, no host), so a bad address is refused at once instead of after the connect timeout."""
    wanted = "expected 'local' or a scheduler address tcp://HOST:PORT (port 1 to 65535)"
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "tcp" or not parts.hostname or port is None or port == 0 or parts.path or parts.query:
        raise ExecutorError(f"--dask {text!r}: {wanted}")
    return parts.hostname, port


def _windowed(
    submit: Callable[[Task], Any],
    wait_first: Callable[[set], set],
    tasks: Iterable[Task],
    window: int,
    resubmit: Callable[[Any], Any | None] = lambda future: None,
) -> Iterator[TaskResult]:
    """Results of `tasks`, at most `window` in flight; a finished future for which `resubmit` returns a
    new future (a task the cluster lost) is replaced by it instead of being yielded."""
    pending: set = set()
    queue = iter(tasks)

    def fill() -> None:
        for task in queue:
            pending.add(submit(task))
            if len(pending) >= window:
                return

    fill()
    while pending:
        done = wait_first(pending)
        pending.difference_update(done)
        for future in done:
            again = resubmit(future)
            if again is not None:
                pending.add(again)
            else:
                yield future.result()
        fill()


class SerialExecutor:
    """Runs every range in this process, in order."""

    def __init__(self, context: WorkerContext) -> None:
        self.context = context

    def results(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        for task in tasks:
            yield run_task(self.context, task)

    def close(self, interrupted: bool = False) -> None:
        """Nothing to release."""


_installed: WorkerContext | None = None


PARENT_POLL_SECONDS = 0.5
"""How often a worker process checks that the process that started its pool still lives."""


def _install(context: WorkerContext, parent: int) -> None:
    """Worker initializer: keep the context; leave Ctrl-C to the main process, which stops the pool;
    exit when the main process `parent` is gone (see `_exit_with`)."""
    global _installed
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _installed = context
    threading.Thread(target=_exit_with, args=(parent,), name="exit-with-parent", daemon=True).start()


def _exit_with(parent: int) -> None:
    """Exit this worker as soon as `parent` no longer runs.

    A worker's own parent is the forkserver, not the main process, so a death signal (prctl) would
    not fire when the main process is killed (SIGKILL runs no cleanup). A worker left behind blocks on
    its queue for ever and, holding their pipes, keeps the forkserver and the resource tracker alive
    too; once the workers are gone those two see end-of-file and exit on their own.
    """
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:  # pragma: no cover - a pid reused by another user's process
            os._exit(1)


def _run_installed(task: Task) -> TaskResult:
    assert _installed is not None, "the worker initializer did not run"
    return run_task(_installed, task)


class ProcessExecutor:
    """Local worker processes, started by 'forkserver' (or 'spawn') on this executor only."""

    def __init__(self, context: WorkerContext, workers: int) -> None:
        methods = multiprocessing.get_all_start_methods()
        method = "forkserver" if "forkserver" in methods else "spawn"
        self.workers = workers
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context(method),
            initializer=_install, initargs=(context, os.getpid()),
        )

    def results(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        def wait_first(pending: set) -> set:
            return set(wait_futures(pending, return_when=FIRST_COMPLETED).done)

        try:
            yield from _windowed(
                lambda task: self.pool.submit(_run_installed, task), wait_first, tasks, WINDOW_PER_WORKER * self.workers
            )
        except BrokenProcessPool as exc:
            raise ExecutorError(f"a worker process died ({exc}); finished ranges are kept") from None

    def close(self, interrupted: bool = False) -> None:
        """On interruption, drop the queued ranges and let the running ones end (a range is short);
        killing a worker mid-task would leave the pool's queue locks behind."""
        self.pool.shutdown(wait=True, cancel_futures=interrupted)


RESUBMITS_PER_TASK = 3
"""How often a range whose task Dask cancelled is sent again before the run stops with an error."""


class DaskExecutor:
    """A Dask cluster: a LocalCluster of `workers` single-threaded processes, or an existing scheduler.

    Scattered data has no lineage: when a worker dies, Dask may cancel the tasks that depend on the
    context it held even though other workers hold replicas (dask/distributed#3149). Such a range is
    sent again with a freshly scattered context, at most RESUBMITS_PER_TASK times; its random numbers
    are keyed by its members, so a resubmitted range gives the same arrays.
    """

    def __init__(self, context: WorkerContext, address: str, workers: int) -> None:
        try:
            from distributed import Client, LocalCluster
        except ImportError:  # pragma: no cover - a dependency of the package
            raise ExecutorError("--dask needs the 'distributed' package (pip install 'aftermath[dask]')") from None
        self.cluster = None
        try:
            if address == "local":
                self.cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                    silence_logs=logging.ERROR,
                )
                self.client = Client(self.cluster)
            else:
                self.client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            if self.cluster is not None:
                self.cluster.close()
            raise ExecutorError(f"--dask {address}: cannot reach the scheduler ({exc})") from None
        threads = sum(self.client.nthreads().values()) or 1
        self.window = WINDOW_PER_WORKER * threads
        self.plain_context = context
        self.context = self._scatter()
        self.submitted: dict[str, tuple[Task, int]] = {}

    def _scatter(self) -> Any:
        return self.client.scatter(self.plain_context, broadcast=True, hash=False)

    def _submit(self, task: Task, resubmits: int = 0) -> Any:
        future = self.client.submit(run_task, self.context, task, pure=False)
        self.submitted[future.key] = (task, resubmits)
        return future

    def _resubmit(self, future: Any) -> Any | None:
        """A new future for a cancelled task; None for one that finished or failed (its result says)."""
        task, resubmits = self.submitted.pop(future.key)
        if not future.cancelled():
            return None
        if resubmits >= RESUBMITS_PER_TASK:
            raise ExecutorError(
                f"Dask cancelled the range of members {task.first}-{task.last - 1} {resubmits + 1} times "
                "(workers lost?); finished ranges are kept"
            )
        self.context = self._scatter()
        return self._submit(task, resubmits + 1)

    def results(self, tasks: Iterable[Task]) -> Iterator[TaskResult]:
        from distributed import wait
        from distributed.client import FuturesCancelledError

        def wait_first(pending: set) -> set:
            try:
                return set(wait(list(pending), return_when="FIRST_COMPLETED").done)
            except FuturesCancelledError:  # wait raises when one is cancelled; _resubmit sends those again
                return {future for future in pending if future.status != "pending"}

        yield from _windowed(self._submit, wait_first, tasks, self.window, self._resubmit)

    def close(self, interrupted: bool = False) -> None:
        """Closing the client releases its queued and running tasks."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


Executor = SerialExecutor | ProcessExecutor | DaskExecutor


def open_executor(spec: ExecutorSpec, context: WorkerContext) -> Executor:
    """The executor `spec` asks for; one worker without Dask runs in this process."""
    spec.check()
    workers = spec.resolved_workers()
    one_core_each = replace(context, kernel_threads=1)
    if spec.dask:
        return DaskExecutor(one_core_each, spec.dask, workers)
    if workers == 1:
        return SerialExecutor(context)
    return ProcessExecutor(one_core_each, workers)
