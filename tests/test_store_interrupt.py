"""Ctrl-C while the store talks to DuckDB: exit 130, the finished ranges kept, no traceback.

DuckDB checks for a pending SIGINT while it runs a statement; when one arrives it stops and raises
`RuntimeError("Query interrupted")` instead of Python's KeyboardInterrupt. Arriving
during the `BEGIN` of a range write, that used to end the CLI with exit 1 and a traceback. The first test
shows, with a real signal, that DuckDB raises that exception and that the store turns it back into
KeyboardInterrupt; the second makes the store's connection raise it at a controlled point (the BEGIN of
the fourth range write) in a real CLI run, so it is deterministic and needs no timing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from aftermath.store import Store
from aftermath.store.database import INTERRUPTED

POLICY = "border_and_intelligence"

# Run the CLI with the store's connections wrapped: once the run is created and `ranges_before` ranges are
# written, the next BEGIN raises what DuckDB raises when Ctrl-C reaches it mid-statement.
CHILD = """
import sys
from aftermath.store import database

ranges_before = int(sys.argv[1])
written = 0
created = False


class Interrupting:
    def __init__(self, connection):
        self._connection = connection

    def __getattr__(self, name):
        return getattr(self._connection, name)

    def execute(self, query, *args, **kwargs):
        global written, created
        if query == "BEGIN" and created and written == ranges_before:
            written += 1  # once
            raise RuntimeError("Query interrupted")  # exactly what DuckDB raises (see the first test)
        result = self._connection.execute(query, *args, **kwargs)
        created = created or query.startswith("INSERT INTO runs")
        written += query.startswith("INSERT INTO ranges")
        return result


opened = database.Store._open
database.Store._open = lambda self, write: Interrupting(opened(self, write))
sys.argv = ["aftermath", *sys.argv[2:]]
from aftermath.cli import main
main()
"""


# A real SIGINT, sent from a thread while the main thread runs a long statement (tens of seconds; DuckDB checks
# for it often), first on a plain connection, then through the store's. In a child process, so that a signal
# never reaches pytest; a signal that arrives before the statement has started (a loaded machine) surfaces as
# Python's own KeyboardInterrupt, without DuckDB's exception as its context, and is tried again, later.
REAL_SIGNAL = """
import signal, sys, threading, time
import duckdb
from aftermath.store import Store
from aftermath.store.database import INTERRUPTED

LONG_QUERY = "SELECT sum(hash(i)) FROM generate_series(1, 3000000000) t(i)"


def interrupt_after(delay):
    time.sleep(delay)
    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)


def interrupted(connect):
    for delay in (0.3, 1.0, 3.0, 10.0):
        sender = threading.Thread(target=interrupt_after, args=(delay,))
        try:
            with connect() as connection:
                sender.start()
                connection.execute(LONG_QUERY)
        except BaseException as exc:
            sender.join()
            context = exc.__context__
            if isinstance(exc, KeyboardInterrupt) and context is None:
                continue  # Python's, before the statement started
            return f"{type(exc).__name__}({exc}) in {type(context).__name__}({context})"
    return "the statement never got the signal"


print(interrupted(duckdb.connect))
print(interrupted(lambda: Store(sys.argv[1]).connect(write=True)))
"""


def test_duckdb_reports_ctrl_c_as_its_own_exception_and_the_store_restores_it(tmp_path: Path) -> None:
    """A real SIGINT during a long statement: DuckDB raises RuntimeError('Query interrupted'); through the
    store's connection the caller sees KeyboardInterrupt (what the CLI handles with exit 130)."""
    done = subprocess.run([sys.executable, "-c", REAL_SIGNAL, str(tmp_path / "runs.duckdb")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    plain, through_store = done.stdout.splitlines()
    assert plain == f"RuntimeError({INTERRUPTED}) in NoneType(None)"
    assert through_store == f"KeyboardInterrupt() in RuntimeError({INTERRUPTED})"


@pytest.mark.parametrize("ranges_before", [0, 3])
def test_ctrl_c_during_begin_of_a_range_write_exits_130_and_keeps_finished_ranges(
    tmp_path: Path, ranges_before: int
) -> None:
    path = tmp_path / "runs.duckdb"
    args = ["compare", "competing_exits", "--policy", POLICY, "-s", "40", "-n", "2", "--workers", "1",
            "--store", str(path)]
    done = subprocess.run([sys.executable, "-c", CHILD, str(ranges_before), *args], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr and "Interrupt" not in done.stderr, done.stderr
    assert "interrupted: run 1 keeps its finished ranges; 'aftermath resume 1' finishes it" in done.stderr
    run = Store(path).runs().iloc[0]
    assert run.status == "interrupted"
    ranges = Store(path).completed(1)
    assert len(ranges) == ranges_before
    with duckdb.connect(str(path), read_only=True) as db:
        rows = db.execute("SELECT coalesce(sum(last_replicate - first_replicate) / count(DISTINCT outcome), 0) "
                          "FROM series").fetchone()[0]
    assert rows == 2 * sum(last - first for first, last in ranges), "whole ranges only, every arm of each"
