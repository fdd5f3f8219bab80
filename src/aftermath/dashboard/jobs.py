"""Long runs (ensembles, comparisons) on a server thread, with progress the page polls.

Dash's background callbacks need a cache service (diskcache or Celery) and, with diskcache, a process per
job; an ensemble already reports progress through a callback, so a thread that records it is all the
dashboard needs. One job runs at a time: the machine's cores go to the run, and a second click is refused
with a message rather than queued behind it. A job that fails keeps its error for the page; the server
carries on.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aftermath.errors import ModelError, ScenarioError
from aftermath.experiments import ExecutorError
from aftermath.store import StoreError

log = logging.getLogger(__name__)
EXPECTED_ERRORS = (ScenarioError, ModelError, StoreError, ExecutorError, ValueError)
"""Failures that are the input's fault: shown as their message. Anything else is also shown, with its
type, and logged with its traceback on the server."""


def error_text(exc: BaseException) -> str:
    """One line for the page: the message of an expected error, 'Type: message' of another."""
    if isinstance(exc, EXPECTED_ERRORS):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


@dataclass
class Job:
    """One run: its progress in members and, once over, its result or error."""

    job_id: int
    label: str
    total: int
    done: int = 0
    state: str = "running"
    """running, done or failed."""
    result: Any = None
    error: str | None = None
    started: float = 0.0
    seconds: float = 0.0


class Jobs:
    """The server's jobs, by id."""

    def __init__(self) -> None:
        self._jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def start(self, label: str, total: int, work: Callable[[Callable[[int], None]], Any]) -> Job:
        """Run `work(advance)` on a thread; `advance(n)` adds n finished members. Raises RuntimeError if
        another job is still running."""
        with self._lock:
            busy = [job for job in self._jobs.values() if job.state == "running"]
            if busy:
                raise RuntimeError(f"{busy[0].label} is still running ({busy[0].done}/{busy[0].total} members)")
            job = Job(next(self._ids), label, total, started=time.monotonic())
            self._jobs[job.job_id] = job

        def advance(members: int) -> None:
            job.done += members

        def target() -> None:
            try:
                job.result = work(advance)
                job.state = "done"
            except Exception as exc:
                log.exception("%s failed", label)
                job.error = error_text(exc)
                job.state = "failed"
            finally:
                job.seconds = time.monotonic() - job.started

        threading.Thread(target=target, name=f"aftermath-job-{job.job_id}", daemon=True).start()
        return job

    def get(self, job_id: int | None) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id) if job_id is not None else None
