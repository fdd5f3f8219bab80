"""Progress for every command that can take more than a couple of seconds.

On a terminal: a rich bar with counts, elapsed time and time left (a spinner while the total is
unknown). Otherwise (a log, a pipe, CI): a line on stderr when the first unit of work is done, at most
every `period` seconds while it advances (0: at every advance, e.g. each stored range of an ensemble,
which is what resuming needs to know), and when it ends, so a batch job's log shows it is alive. The
first line waits for real progress so that input refused before any work (exit 2) prints its one error
line alone.
`quiet` (e.g. --json) prints nothing on stdout's side; lines go to stderr in any case.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from aftermath.cli.app import console, errors

PERIOD = 10.0
"""Seconds between two progress lines when stderr is not a terminal."""


class Tracker:
    """What a command tells about its progress: `advance(n)` units done; `update(...)` a new total or stage."""

    def __init__(self, description: str, total: int | None, unit: str, bar: Progress | None, quiet: bool,
                 period: float = PERIOD) -> None:
        self.description, self.total, self.unit, self.period = description, total, unit, period
        self.done = 0
        self.start = self.last = time.monotonic()
        self._bar, self._quiet = bar, quiet
        self._task = bar.add_task(description, total=total, unit=unit) if bar is not None else None
        self._announced = False

    def advance(self, done: int = 1) -> None:
        if self._bar is not None:
            self.done += done
            self._bar.advance(self._task, done)  # type: ignore[arg-type]
            return
        if not self._announced:
            self._say("started")
        self.done += done
        if time.monotonic() - self.last >= self.period:
            self._say()

    def update(self, description: str | None = None, total: int | None = None) -> None:
        """A new stage (`description`) or a total learnt late; a new stage restarts the count and clock."""
        if total is not None:
            self.total = total
            if self._bar is not None:
                self._bar.update(self._task, total=total)  # type: ignore[arg-type]
        if description is not None and description != self.description:
            self.description, self.done, self.start = description, 0, time.monotonic()
            if self._bar is not None:
                self._bar.reset(self._task, description=description)  # type: ignore[arg-type]
            else:
                self._say("started")

    def stage(self, description: str, total: int | None, unit: str) -> None:
        """A new phase of the work with its own count, unit and clock (e.g. analysing after running);
        `total` None: unknown (a spinner)."""
        if self._bar is None and self._announced:
            self._say("done")
        self.description, self.total, self.unit = description, total, unit
        self.done, self.start = 0, time.monotonic()
        if self._bar is not None:
            self._bar.update(self._task, visible=False)  # type: ignore[arg-type]
            self._task = self._bar.add_task(description, total=total, unit=unit)
        self._announced = False  # a log says it once the phase makes progress (a refusal stays one line)

    def finish(self) -> None:
        if self._bar is None:
            self._say("done")

    def _say(self, state: str | None = None) -> None:
        self.last = time.monotonic()
        self._announced = True
        if self._bar is not None or self._quiet:
            return
        elapsed = self.last - self.start
        count = f"{self.done}/{self.total} {self.unit}" if self.total else (f"{self.done} {self.unit}" if self.done
                                                                            else "")
        rate = self.done / elapsed if elapsed > 0 else 0.0
        left = f", about {(self.total - self.done) / rate:.0f} s left" if self.total and rate > 0 and not state else ""
        parts = [p for p in (state, count, f"{elapsed:.0f} s{left}") if p]
        errors.print(f"{self.description}: {', '.join(parts)}", highlight=False, markup=False, soft_wrap=True)


@contextmanager
def progress(description: str, total: int | None = None, unit: str = "runs", quiet: bool = False,
             period: float = PERIOD) -> Iterator[Tracker]:
    """Show the progress of a piece of work (see the module docstring); yields its Tracker."""
    if quiet or not console.is_terminal:
        tracker = Tracker(description, total, unit, None, quiet, period)
        yield tracker
        tracker.finish()
        return
    columns = [SpinnerColumn(), TextColumn("[progress.description]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as bar:
        yield Tracker(description, total, unit, bar, quiet)
