"""The run store: one DuckDB file holding runs, their parameter samples and their outcome series.

Series are stored one row per (arm, member range, outcome): the block (members, steps, *strata) of the
range's series, encoded losslessly by `aftermath.store.encoding` (integer differences or float64,
Zstandard). The default scenario records about 1,100 numbers per member, arm and month; as DOUBLE[]
lists (schema 2) they took about 1,400 bytes per member-month and wrote 8 times the store's size to
disk (the write-ahead log holds what it is given, there uncompressed lists); as blocks about 260 and
under twice (benchmarks/bench_store.py). `Store.outcomes` gives a run's series in long form. Stores of
schema 2 are migrated when first opened (`migrate`), in one transaction.

Crash safety comes from transactions: a run's description is written in one transaction, and each
finished member range (all arms) in one more, together with its row in `ranges`, whose primary key
makes a second copy of a range impossible. A process killed at any point leaves whole ranges only;
resuming runs the ranges that have no row.

DuckDB lets one process at a time open a file for writing. Short operations open the file and
close it again. A run keeps it open while it writes (one open, and DuckDB folds its write-ahead
log into the file every HELD_CHECKPOINT, not at each close); every HOLD_SECONDS
it lets go for a moment if another process is waiting (a waiter touches `<store>.waiting`), so two
runs, or a run and `aftermath runs`, take turns. A process that cannot get the file within
`lock_timeout` seconds is refused with a clear message.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import numpy as np
import pandas as pd
import psutil
import pyarrow as pa

from aftermath.errors import StoreError
from aftermath.store import DEFAULT_STORE
from aftermath.store.encoding import decode_block, encode_block

if TYPE_CHECKING:
    from aftermath.experiments.design import Experiment, Layout
    from aftermath.experiments.worker import TaskResult

SCHEMA_VERSION = 3
MIGRATES_FROM = 2
"""The schema version a store is migrated from when opened (see `migrate`)."""
HOLD_SECONDS = 5.0
"""How long a run keeps the store to itself before letting a waiting process in."""
HANDOVER_SECONDS = 0.4
"""How long a run lets go of the store when another process waits for it."""
WAITER_FRESH_SECONDS = 2.0
PROCESS_START_TOLERANCE = 0.5
"""Seconds: the OS gives a process's creation time in clock ticks; a reused pid starts later than that."""
HELD_CHECKPOINT = "256MB"
"""Write-ahead log size at which DuckDB folds a held store's commits into the file."""
_PACKAGES = ("aftermath", "numpy", "numba", "scipy", "xarray", "duckdb", "dask", "distributed")

CALIBRATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS calibration_chain (
    run_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    walker INTEGER NOT NULL,
    log_posterior DOUBLE NOT NULL,
    position DOUBLE[] NOT NULL
);
CREATE TABLE IF NOT EXISTS calibration_steps (
    run_id INTEGER NOT NULL,
    last_step INTEGER NOT NULL,
    random_state VARCHAR NOT NULL,
    seconds DOUBLE NOT NULL,
    written TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, last_step)
);
CREATE TABLE IF NOT EXISTS calibrations (
    run_id INTEGER PRIMARY KEY,
    settings VARCHAR NOT NULL,
    diagnostics VARCHAR
);
"""
"""A calibration's chain (positions in the sampler's space, one row per step and walker), the sampler's
random state after each stored chunk of steps (its primary key makes a chunk unique), and its settings
and diagnostics. Added to stores of schema 2 when a calibration first writes to one."""

SERIES_TABLE = """
CREATE TABLE {table} (
    run_id INTEGER NOT NULL,
    arm VARCHAR NOT NULL,
    first_replicate INTEGER NOT NULL,
    last_replicate INTEGER NOT NULL,
    outcome VARCHAR NOT NULL,
    strata VARCHAR NOT NULL,
    steps INTEGER NOT NULL,
    encoding VARCHAR NOT NULL,
    data BLOB NOT NULL
);
"""
"""One row per run, arm, stored member range and outcome: the block (members, steps, *strata) of its series,
encoded by `encoding.encode_block` (lossless); `strata` is JSON [[dimension, [labels]], ...] naming the
axes after (member, step)."""

SCHEMA = f"""
CREATE TABLE schema_version (version INTEGER NOT NULL, created TIMESTAMP NOT NULL);
INSERT INTO schema_version VALUES ({SCHEMA_VERSION}, now()::TIMESTAMP);
CREATE SEQUENCE run_ids START 1;
CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY,
    kind VARCHAR NOT NULL,
    scenario VARCHAR NOT NULL,
    scenario_file VARCHAR NOT NULL,
    scenario_hash VARCHAR NOT NULL,
    scenario_text VARCHAR NOT NULL,
    seed BIGINT NOT NULL,
    engine VARCHAR NOT NULL,
    sampler VARCHAR NOT NULL,
    samples INTEGER NOT NULL,
    replicates INTEGER NOT NULL,
    members INTEGER NOT NULL,
    range_size INTEGER NOT NULL,
    first_month DATE NOT NULL,
    step_months INTEGER NOT NULL,
    policies VARCHAR NOT NULL,
    versions VARCHAR NOT NULL,
    executor VARCHAR,
    host VARCHAR,
    pid INTEGER,
    pid_started DOUBLE,
    started TIMESTAMP NOT NULL,
    finished TIMESTAMP,
    status VARCHAR NOT NULL,
    message VARCHAR,
    outcomes VARCHAR
);
CREATE TABLE arms (
    run_id INTEGER NOT NULL,
    arm VARCHAR NOT NULL,
    position INTEGER NOT NULL,
    policies VARCHAR NOT NULL,
    PRIMARY KEY (run_id, arm)
);
CREATE TABLE parameters (
    run_id INTEGER NOT NULL,
    sample INTEGER NOT NULL,
    parameter VARCHAR NOT NULL,
    value DOUBLE NOT NULL,
    relative BOOLEAN NOT NULL,
    unit VARCHAR NOT NULL
);
CREATE TABLE ranges (
    run_id INTEGER NOT NULL,
    first_replicate INTEGER NOT NULL,
    last_replicate INTEGER NOT NULL,
    seconds DOUBLE NOT NULL,
    written TIMESTAMP NOT NULL,
    PRIMARY KEY (run_id, first_replicate)
);
{SERIES_TABLE.format(table='series')}
{CALIBRATION_SCHEMA}
"""


METADATA_TABLE = """
CREATE TABLE IF NOT EXISTS run_metadata (run_id INTEGER PRIMARY KEY, metadata VARCHAR NOT NULL)
"""
"""A run's metadata (a JSON object, e.g. a sensitivity design), made the first time a run has some, so
stores written before it keep their schema version."""


READ_ALL = """
SELECT (SELECT count(*) FROM runs r JOIN arms a USING (run_id)
        WHERE run_id = ? AND hash(r) IS NOT NULL AND hash(a) IS NOT NULL),
       (SELECT count(*) FROM ranges g WHERE run_id = ? AND hash(g) IS NOT NULL),
       (SELECT count(*) FROM series s WHERE run_id = ? AND hash(s) IS NOT NULL)
"""
"""Reads every column of a run's rows, so that DuckDB checks each block's checksum."""




def package_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        with suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    return versions


def _now() -> dt.datetime:
    """UTC, without a zone (what a TIMESTAMP column holds)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def process_started(pid: int | None = None) -> float:
    """When a process (default: this one) was created, seconds since the epoch, as the OS records it."""
    return float(psutil.Process(pid).create_time())


def process_alive(pid: int, started: float | None) -> bool:
    """Whether process `pid` created at `started` (process_started) still runs on this host. A new
    process that got the same id after it ended is another one: its creation time differs."""
    try:
        created = process_started(pid)
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return started is None or abs(created - started) < PROCESS_START_TOLERANCE


@dataclass(frozen=True)
class StoredRun:
    """A run as the store holds it: its row, arms in order, parameter draws, and metadata."""

    row: dict
    arms: list[tuple[str, dict[str, float]]]
    draws: dict[str, np.ndarray]
    metadata: dict = field(default_factory=dict)
    """What the layer that made the run recorded with it (e.g. {'design': ...}); empty if nothing."""

    @property
    def run_id(self) -> int:
        return int(self.row["run_id"])

    @property
    def labels(self) -> list[str]:
        return [label for label, _ in self.arms]


class Store:
    """A DuckDB run store at `path`."""

    def __init__(self, path: str | Path = DEFAULT_STORE, lock_timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self._held: duckdb.DuckDBPyConnection | None = None
        self._held_since = 0.0

    @contextmanager
    def connect(self, write: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """The held connection, or the file opened (waiting for another process's lock), checked and
        closed after."""
        if self._held is not None:
            with interrupts_as_ctrl_c(), self._intact():
                yield self._held
            return
        with interrupts_as_ctrl_c():
            connection = self._open_checked(write)
            try:
                with self._intact():
                    yield connection
            finally:
                connection.close()

    @contextmanager
    def _intact(self) -> Iterator[None]:
        """A read that meets a damaged file (truncated, a block failing its checksum) as one StoreError."""
        try:
            yield
        except duckdb.Error as exc:
            if damage(exc) is None:
                raise
            raise self._damaged(exc) from None

    def _damaged(self, exc: duckdb.Error) -> StoreError:
        """The error for a damaged store: what is wrong and how much can still be read (nothing is written)."""
        return StoreError(
            f"{self.path}: the run store is damaged ({damage(exc)}); {self._readable()}. It was left as it is: "
            "restore it from a backup, or start a new store with --store"
        )

    def _readable(self) -> str:
        """Which runs can still be read whole, trying each run's series on its own (read-only)."""
        try:  # this process's own write connection if it holds one (DuckDB allows no second, read-only one)
            with nullcontext(self._held) if self._held is not None else closing(
                duckdb.connect(str(self.path), read_only=True)
            ) as connection:
                ids = [row[0] for row in connection.execute("SELECT run_id FROM runs ORDER BY run_id").fetchall()]
                whole = []
                for run_id in ids:
                    with suppress(duckdb.Error):
                        connection.execute(READ_ALL, [run_id, run_id, run_id]).fetchall()
                        whole.append(run_id)
        except duckdb.Error:
            return "not even the list of runs can be read"
        if len(whole) == len(ids):
            return f"the {len(ids)} run(s) it lists read whole, but other parts of the file do not"
        readable = ", ".join(map(str, whole)) or "none"
        return f"{len(whole)} of its {len(ids)} runs can still be read whole (runs: {readable})"

    def verify(self, run_id: int) -> None:
        """Read every stored number of run `run_id` (StoreError if the file is damaged), before writing to it."""
        with self.connect() as connection:
            connection.execute(READ_ALL, [run_id, run_id, run_id]).fetchall()

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Keep the file open for writing while the block runs (a run's writes), see `breathe`."""
        with interrupts_as_ctrl_c():
            self._held = self._open_checked(write=True)
            self._held.execute(f"SET checkpoint_threshold = '{HELD_CHECKPOINT}'")
        self._held_since = time.monotonic()
        try:
            with interrupts_as_ctrl_c():
                yield
        finally:
            held, self._held = self._held, None
            if held is not None:
                held.close()

    @property
    def _waiting_marker(self) -> Path:
        return self.path.with_name(self.path.name + ".waiting")

    def breathe(self) -> None:
        """After HOLD_SECONDS, let go of the file for a moment if another process is waiting for it
        (it touches the `.waiting` marker while it waits); alone, keep it."""
        if self._held is None or time.monotonic() - self._held_since < HOLD_SECONDS:
            return
        try:
            waiting = time.time() - self._waiting_marker.stat().st_mtime < WAITER_FRESH_SECONDS
        except FileNotFoundError:
            waiting = False
        self._held_since = time.monotonic()
        if not waiting:
            return
        held, self._held = self._held, None
        held.close()
        time.sleep(HANDOVER_SECONDS)
        self._held = self._open_checked(write=True)
        self._held.execute(f"SET checkpoint_threshold = '{HELD_CHECKPOINT}'")
        self._held_since = time.monotonic()

    def _open_checked(self, write: bool) -> duckdb.DuckDBPyConnection:
        if not write and not self.path.exists():
            raise StoreError(
                f"{self.path}: no run store here; 'aftermath ensemble' and 'aftermath compare' create one "
                "(or pass --store PATH)"
            )
        connection = self._open(write)
        try:
            with self._intact():
                version = self._check_schema(connection, write)
                if version == MIGRATES_FROM and write:
                    migrate(connection)
        except BaseException:
            connection.close()
            raise
        if version == MIGRATES_FROM and not write:  # migrate once, under the write lock, then read
            connection.close()
            self._open_checked(write=True).close()
            return self._open_checked(write=False)
        return connection

    def _open(self, write: bool) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + self.lock_timeout
        pause = 0.02
        while True:
            try:
                connection = duckdb.connect(str(self.path), read_only=not write)
                with suppress(OSError):
                    self._waiting_marker.unlink(missing_ok=True)
                return connection
            except duckdb.IOException as exc:
                text = str(exc)
                if damage(exc) is not None:
                    raise self._damaged(exc) from None
                if "lock" not in text.lower():
                    raise StoreError(f"{self.path}: cannot open the run store ({text.splitlines()[0]})") from None
                if time.monotonic() >= deadline:
                    holder = re.search(r"PID (\d+)", text)
                    who = f"process {holder.group(1)}" if holder else "another process"
                    raise StoreError(
                        f"{self.path}: the run store is in use by {who} (a run writing, or a DuckDB session) and "
                        f"stayed locked for {self.lock_timeout:g} s; wait for it to finish, or use another --store"
                    ) from None
                with suppress(OSError):
                    self._waiting_marker.touch()
                time.sleep(pause)
                pause = min(pause * 2, HANDOVER_SECONDS / 4)
            except duckdb.Error as exc:
                if damage(exc) is not None:
                    raise self._damaged(exc) from None
                raise StoreError(f"{self.path}: cannot open the run store ({str(exc).splitlines()[0]})") from None

    def _check_schema(self, connection: duckdb.DuckDBPyConnection, write: bool) -> int:
        """The store's schema version (made now if the file is new); StoreError if this aftermath cannot
        read it (another kind of file, a version it does not know and cannot migrate)."""
        tables = {row[0] for row in connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
        ).fetchall()}
        if not tables and write:
            with transaction(connection):
                connection.execute(SCHEMA)
            return SCHEMA_VERSION
        if "schema_version" not in tables:
            raise StoreError(f"{self.path}: this DuckDB file is not an aftermath run store (no schema_version table)")
        version = connection.execute("SELECT max(version) FROM schema_version").fetchall()[0][0]
        if version not in (SCHEMA_VERSION, MIGRATES_FROM):
            age = "an older" if (version or 0) < SCHEMA_VERSION else "a newer"
            raise StoreError(
                f"{self.path}: the run store has schema version {version}, written by {age} aftermath; this "
                f"version reads version {SCHEMA_VERSION} (and migrates {MIGRATES_FROM}). Open it with the aftermath "
                "that wrote it, or start a new store with --store"
            )
        return int(version)

    # writing

    @contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """A write DuckDB refuses (a full disk, an I/O error) as one StoreError naming what was not written;
        the transaction it was in is rolled back, so the store keeps everything written before."""
        try:
            yield
        except duckdb.ConstraintException:
            raise
        except duckdb.Error as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if "KeyboardInterrupt" in str(exc):
                # Ctrl-C while DuckDB read the rows from Python: it reports the interrupt as its own error;
                # the transaction is rolled back as for any error, and the caller sees the interrupt it was
                raise KeyboardInterrupt from None
            if "no space left" in text.lower():
                raise StoreError(
                    f"{self.path}: no space left on the device holding the run store; {what} not written "
                    "(everything stored before is kept)"
                ) from None
            raise StoreError(f"{self.path}: cannot write {what} ({text})") from None

    def create_run(self, experiment: Experiment, layout: Layout, kind: str, executor: str,
                   metadata: dict | None = None) -> int:
        """Record a new run (description, arms, parameter draws, JSON-ready `metadata` if any) in one
        transaction; returns its id."""
        with self._writing("the run's description"), self.connect(write=True) as connection, transaction(connection):
            run_id = connection.execute("SELECT nextval('run_ids')").fetchall()[0][0]
            connection.execute(
                f"INSERT INTO runs VALUES ({', '.join(['?'] * 22)}, NULL, 'running', NULL, ?)",
                [
                    run_id, kind, experiment.scenario.name, experiment.scenario_file, experiment.scenario_hash,
                    experiment.scenario_text, experiment.seed, experiment.engine, experiment.sampler,
                    experiment.samples, experiment.replicates, experiment.members, experiment.range_size,
                    layout.times[0].astype("datetime64[D]").item(), layout.step_months,
                    ", ".join(arm.label for arm in experiment.arms), json.dumps(package_versions()), executor,
                    socket.gethostname(), os.getpid(), process_started(), _now(),
                    None if experiment.outcomes is None else json.dumps(list(experiment.outcomes)),
                ],
            )
            connection.executemany(
                "INSERT INTO arms VALUES (?, ?, ?, ?)",
                [[run_id, arm.label, i, json.dumps(arm.policies)] for i, arm in enumerate(experiment.arms)],
            )
            rows = [
                [run_id, sample, name, float(value), bool(experiment.scenario.parameters[name].distribution.relative),
                 experiment.scenario.parameters[name].unit]
                for name, values in experiment.draws.items()
                for sample, value in enumerate(values)
            ]
            if rows:
                frame = pd.DataFrame(rows, columns=["run_id", "sample", "parameter", "value", "relative", "unit"])
                connection.register("draws", frame)
                connection.execute("INSERT INTO parameters BY NAME SELECT * FROM draws")
            if metadata:
                connection.execute(METADATA_TABLE)
                connection.execute("INSERT INTO run_metadata VALUES (?, ?)", [run_id, json.dumps(metadata)])
        return int(run_id)

    def write_range(self, run_id: int, labels: Sequence[str], result: TaskResult, layout: Layout) -> bool:
        """Store one finished range of every arm atomically; False if it was already stored."""
        batch = range_table(run_id, labels, result, layout)
        if not self._insert_claimed(
            f"members {result.first}-{result.last - 1} of run {run_id}", "INSERT INTO ranges VALUES (?, ?, ?, ?, ?)",
            [run_id, result.first, result.last, result.seconds, _now()], "series", batch,
        ):
            return False
        self.breathe()
        return True

    def add_arms(self, run_id: int, arms: Sequence[tuple[str, dict[str, float]]], results: Sequence[TaskResult],
                 layout: Layout) -> None:
        """Add arms (label, {policy: strength}) to a run, with their series over every stored range, in one
        transaction: a run that grows arms as it goes (a policy search) never lists an arm whose series are
        not all there. `results` must cover exactly the run's stored ranges (StoreError otherwise)."""
        stored = self.completed(run_id)
        given = sorted((result.first, result.last) for result in results)
        if given != stored:
            raise StoreError(f"{self.path}: run {run_id} stores the member ranges {stored}; the new arms' results "
                             f"cover {given}, expected the same")
        labels = [label for label, _ in arms]
        batch = pa.concat_tables([range_table(run_id, labels, result, layout) for result in results])
        with self._writing(f"{len(arms)} arm(s) of run {run_id}"), self.connect(write=True) as connection, \
                _registered(connection, "added_rows", batch), transaction(connection):
            first = connection.execute("SELECT count(*) FROM arms WHERE run_id = ?", [run_id]).fetchall()[0][0]
            connection.executemany(
                "INSERT INTO arms VALUES (?, ?, ?, ?)",
                [[run_id, label, first + i, json.dumps(policies)] for i, (label, policies) in enumerate(arms)],
            )
            connection.execute("INSERT INTO series BY NAME SELECT * FROM added_rows")
            connection.execute("UPDATE runs SET policies = policies || ? WHERE run_id = ?",
                               ["".join(f", {label}" for label in labels), run_id])
        self.breathe()

    def _insert_claimed(self, what: str, claim: str, parameters: list, table: str, rows: pa.Table) -> bool:
        """Insert the claim row (`claim` with `parameters`, into a table whose primary key makes it unique)
        and `rows` into `table` in one transaction; False, writing nothing, if the claim was already made."""
        claimed = False
        with self._writing(what), self.connect(write=True) as connection, _registered(connection, "claimed_rows", rows):
            try:
                with transaction(connection):
                    connection.execute(claim, parameters)
                    claimed = True
                    connection.execute(f"INSERT INTO {table} BY NAME SELECT * FROM claimed_rows")
            except duckdb.ConstraintException:
                if claimed:
                    raise
                return False
        return True

    def set_status(self, run_id: int, status: str, message: str | None = None) -> None:
        finished = _now() if status != "running" else None
        with self._writing(f"the status of run {run_id}"), self.connect(write=True) as connection:
            connection.execute(
                "UPDATE runs SET status = ?, message = ?, finished = ? WHERE run_id = ?",
                [status, message, finished, run_id],
            )

    def claim(self, run: StoredRun, executor: str) -> None:
        """Mark a run as being finished by this process; refuse while its own process still runs it."""
        row = run.row
        if (row["status"] == "running" and row["host"] == socket.gethostname() and row["pid"] != os.getpid()
                and process_alive(int(row["pid"]), _started(row))):
            raise StoreError(
                f"run {run.run_id} is still running (process {row['pid']}); wait for it, or stop it and resume"
            )
        with self._writing(f"the status of run {run.run_id}"), self.connect(write=True) as connection:
            connection.execute(
                "UPDATE runs SET status = 'running', message = NULL, finished = NULL, executor = ?, host = ?, "
                "pid = ?, pid_started = ? WHERE run_id = ?",
                [executor, socket.gethostname(), os.getpid(), process_started(), run.run_id],
            )

    def create_calibration(
        self, scenario_name: str, scenario_file: str, scenario_text: str, scenario_hash: str, seed: int,
        method: str, first_month: np.datetime64, step_months: int, settings: dict,
    ) -> int:
        """Record a new calibration run (kind 'calibration', deterministic engine) and its settings in one
        transaction; returns its id. `settings` (JSON-able) must hold 'walkers', 'steps', 'draws', 'chunk'."""
        with self._writing("the calibration's description"), self.connect(write=True) as connection, \
                transaction(connection):
            connection.execute(CALIBRATION_SCHEMA)
            run_id = connection.execute("SELECT nextval('run_ids')").fetchall()[0][0]
            connection.execute(
                f"INSERT INTO runs VALUES ({', '.join(['?'] * 22)}, NULL, 'running', NULL, NULL)",
                [
                    run_id, "calibration", scenario_name, scenario_file, scenario_hash, scenario_text, seed,
                    "deterministic", method, settings["draws"], settings["walkers"], settings["steps"],
                    settings["chunk"], first_month.astype("datetime64[D]").item(), step_months, "",
                    json.dumps(package_versions()), "serial", socket.gethostname(), os.getpid(),
                    process_started(), _now(),
                ],
            )
            connection.execute("INSERT INTO arms VALUES (?, ?, 0, '{}')", [run_id, "baseline"])
            connection.execute("INSERT INTO calibrations VALUES (?, ?, NULL)", [run_id, json.dumps(settings)])
        return int(run_id)

    def write_chain(self, run_id: int, first_step: int, positions: np.ndarray, log_posterior: np.ndarray,
                    random_state: str, seconds: float) -> bool:
        """Store steps first_step.. of a calibration's chain ((steps, walkers, parameters) positions and
        (steps, walkers) log posteriors) with the sampler's random state after them, atomically; False if
        these steps were already stored."""
        steps, walkers, _ = positions.shape
        frame = pa.table({
            "run_id": pa.array(np.full(steps * walkers, run_id, np.int32)),
            "step": pa.array(np.repeat(np.arange(first_step, first_step + steps, dtype=np.int32), walkers)),
            "walker": pa.array(np.tile(np.arange(walkers, dtype=np.int32), steps)),
            "log_posterior": pa.array(log_posterior.reshape(-1).astype(float)),
            "position": pa.array(list(positions.reshape(steps * walkers, -1).astype(float))),
        })
        return self._insert_claimed(
            f"steps {first_step}-{first_step + steps - 1} of calibration {run_id}",
            "INSERT INTO calibration_steps VALUES (?, ?, ?, ?, ?)",
            [run_id, first_step + steps - 1, random_state, seconds, _now()], "calibration_chain", frame,
        )

    def write_posterior(self, run_id: int, draws: dict[str, np.ndarray], relative: dict[str, bool],
                        units: dict[str, str], diagnostics: dict) -> None:
        """Store a finished calibration's posterior draws (as the run's parameter samples) and its
        diagnostics, and mark it done, in one transaction."""
        rows = [
            [run_id, sample, name, float(value), relative[name], units[name]]
            for name, values in draws.items()
            for sample, value in enumerate(values)
        ]
        with self._writing(f"the posterior of calibration {run_id}"), self.connect(write=True) as connection, \
                transaction(connection):
            connection.execute("DELETE FROM parameters WHERE run_id = ?", [run_id])
            if rows:
                frame = pd.DataFrame(rows, columns=["run_id", "sample", "parameter", "value", "relative", "unit"])
                connection.register("draws", frame)
                connection.execute("INSERT INTO parameters BY NAME SELECT * FROM draws")
                connection.unregister("draws")
            connection.execute(
                "UPDATE calibrations SET diagnostics = ? WHERE run_id = ?", [json.dumps(diagnostics), run_id]
            )
            connection.execute(
                "UPDATE runs SET status = 'done', message = NULL, finished = ? WHERE run_id = ?", [_now(), run_id]
            )

    # reading

    def calibration(self, run_id: int) -> tuple[dict, dict | None]:
        """(settings, diagnostics or None while unfinished) of a calibration run; StoreError if the run is
        not a calibration."""
        with self.connect() as connection:
            tables = {row[0] for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()}
            found = connection.execute(
                "SELECT settings, diagnostics FROM calibrations WHERE run_id = ?", [run_id]
            ).fetchall() if "calibrations" in tables else []
        if not found:
            raise StoreError(f"{self.path}: run {run_id} is not a calibration (see 'aftermath runs')")
        settings, diagnostics = found[0]
        return json.loads(settings), None if diagnostics is None else json.loads(diagnostics)

    def chain(self, run_id: int) -> tuple[np.ndarray, np.ndarray, str | None]:
        """A calibration's stored chain: positions (steps, walkers, parameters), log posteriors (steps,
        walkers) and the sampler's random state after the last stored step (None if no step is stored)."""
        with self.connect() as connection:
            state = connection.execute(
                "SELECT last_step, random_state FROM calibration_steps WHERE run_id = ? ORDER BY last_step DESC "
                "LIMIT 1", [run_id]
            ).fetchall()
            table = connection.execute(
                "SELECT step, walker, log_posterior, position FROM calibration_chain WHERE run_id = ? "
                "ORDER BY step, walker", [run_id]
            ).to_arrow_table()
        if not state:
            return np.zeros((0, 0, 0)), np.zeros((0, 0)), None
        steps = int(state[0][0]) + 1
        walkers = table.num_rows // steps
        positions = table.column("position").combine_chunks().flatten().to_numpy().reshape(steps, walkers, -1)
        log_posterior = table.column("log_posterior").to_numpy().reshape(steps, walkers)
        return positions, log_posterior, str(state[0][1])

    def calibration_seconds(self, run_id: int) -> float:
        """Seconds spent on a calibration's stored steps, over every session that ran some (0 if none)."""
        with self.connect() as connection:
            return float(connection.execute(
                "SELECT COALESCE(SUM(seconds), 0) FROM calibration_steps WHERE run_id = ?", [run_id]
            ).fetchone()[0])

    def completed(self, run_id: int) -> list[tuple[int, int]]:
        with self.connect() as connection:
            return [tuple(row) for row in connection.execute(  # type: ignore[misc]
                "SELECT first_replicate, last_replicate FROM ranges WHERE run_id = ? ORDER BY first_replicate",
                [run_id],
            ).fetchall()]

    def runs(self) -> pd.DataFrame:
        """One row per run, newest first, with how many members are stored and the run's state."""
        with self.connect() as connection:
            table = connection.execute(
                """
                SELECT r.run_id, r.kind, r.scenario, r.scenario_hash, r.seed, r.engine, r.sampler, r.samples,
                       r.replicates, r.members, coalesce(sum(g.last_replicate - g.first_replicate), 0) AS stored,
                       r.policies, r.status, r.host, r.pid, r.pid_started, r.started, r.finished, r.executor
                FROM runs r LEFT JOIN ranges g USING (run_id)
                GROUP BY ALL ORDER BY r.run_id DESC
                """
            ).df()
        table["stored"] = table["stored"].astype(int)
        table["status"] = [effective_status(row) for row in table.to_dict("records")]
        return table.drop(columns=["host", "pid", "pid_started"])

    def run(self, run_id: int) -> StoredRun:
        with self.connect() as connection:
            found = connection.execute("SELECT * FROM runs WHERE run_id = ?", [run_id]).df()
            if found.empty:
                raise StoreError(f"{self.path}: no run {run_id} (see 'aftermath runs')")
            row = found.to_dict("records")[0]
            arms = [
                (label, json.loads(policies))
                for label, policies in connection.execute(
                    "SELECT arm, policies FROM arms WHERE run_id = ? ORDER BY position", [run_id]
                ).fetchall()
            ]
            draws_table = connection.execute(
                "SELECT parameter, sample, value FROM parameters WHERE run_id = ? ORDER BY parameter, sample", [run_id]
            ).df()
            has_metadata = connection.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'run_metadata'"
            ).fetchall()[0][0]
            recorded = connection.execute(
                "SELECT metadata FROM run_metadata WHERE run_id = ?", [run_id]
            ).fetchall() if has_metadata else []
        row["status"] = effective_status(row)
        draws = {str(name): group["value"].to_numpy() for name, group in draws_table.groupby("parameter", sort=False)}
        return StoredRun(row, arms, draws, json.loads(recorded[0][0]) if recorded else {})

    def outcomes(self, run_id: int, names: Sequence[str] | None = None) -> pa.Table:
        """Run `run_id`'s series (those in `names`, default all) in long form, one row per arm, member,
        outcome, stratum and month (a large run's whole set is large: name the outcomes): columns
        run_id, arm, replicate, sample, outcome, one per stratum dimension (null where an outcome is not
        broken down by it), time (DATE) and value; what schema 2's `outcomes` view gave, for pandas or a
        DuckDB query (`duckdb.sql("SELECT ... FROM frame")`)."""
        run = self.run(run_id)
        with self.connect() as connection:
            blocks = connection.execute(
                "SELECT arm, first_replicate, last_replicate, outcome, strata, steps, encoding, data FROM series "
                "WHERE run_id = ? AND (? OR list_contains(?, outcome)) ORDER BY outcome, arm, first_replicate",
                [run_id, names is None, list(names or ())],
            ).fetchall()
        first_month = np.datetime64(run.row["first_month"], "M")
        step = int(run.row["step_months"])
        parts: list[dict[str, np.ndarray]] = []
        dims: dict[str, None] = {}
        for arm, first, last, name, strata_text, steps, encoding, data in blocks:
            strata = json.loads(strata_text)
            block = decode_block(encoding, data, (last - first, steps, *[len(labels) for _, labels in strata]))
            index = np.indices(block.shape).reshape(block.ndim, -1)
            part = {"arm": np.full(block.size, arm, object), "replicate": first + index[0],
                    "outcome": np.full(block.size, name, object),
                    "time": (first_month + index[1] * step).astype("datetime64[D]"), "value": block.reshape(-1)}
            for axis, (dim, labels) in enumerate(strata, start=2):
                dims[dim] = None
                part[dim] = np.asarray(labels, object)[index[axis]]
            parts.append(part)
        types = {"arm": pa.string(), "replicate": pa.int32(), "outcome": pa.string(),
                 **dict.fromkeys(dims, pa.string()), "time": pa.date32(), "value": pa.float64()}
        columns = {
            key: pa.array(np.concatenate([part.get(key, np.full(len(part["value"]), None, object)) for part in parts])
                          if parts else [], kind)
            for key, kind in types.items()
        }
        replicate = columns["replicate"].to_numpy()
        return pa.table({"run_id": pa.array(np.full(len(replicate), run_id, np.int32)), "arm": columns["arm"],
                         "replicate": columns["replicate"],
                         "sample": pa.array(replicate // int(run.row["replicates"]), pa.int32()),
                         "outcome": columns["outcome"], **{d: columns[d] for d in dims},
                         "time": columns["time"], "value": columns["value"]})

    def load_series(
        self, run: StoredRun, layout: Layout, dates: Sequence[str] | None = None
    ) -> tuple[np.ndarray, list[dict[str, np.ndarray]], np.ndarray]:
        """(stored member indices, per-arm arrays (members, time, *strata) of `layout`'s series, months) of
        a run; NaN where nothing is stored."""
        months = layout.times
        if dates is None:
            times, picks = months, slice(None)
        else:
            times = np.array([np.datetime64(d, "M") for d in dates])
            picks = np.searchsorted(months, times)
        members = np.concatenate(
            [np.arange(first, last) for first, last in self.completed(run.run_id)] or [np.zeros(0, np.int64)]
        )
        arrays = [
            {name: np.full((len(members), len(times), *[len(labels) for _, labels in strata]), np.nan)
             for name, strata in layout.series.items()}
            for _ in run.labels
        ]
        with self.connect() as connection:
            blocks = connection.execute(
                "SELECT arm, first_replicate, last_replicate, outcome, strata, steps, encoding, data FROM series "
                "WHERE run_id = ? AND list_contains(?, outcome) AND list_contains(?, arm)",
                [run.run_id, list(layout.series), run.labels],
            ).fetchall()
        for arm, first, last, name, strata_text, steps, encoding, data in blocks:
            strata = json.loads(strata_text)
            block = decode_block(encoding, data, (last - first, steps, *[len(labels) for _, labels in strata]))
            wanted = dict(layout.series[name])
            if [dim for dim, _ in strata] != list(wanted):
                raise StoreError(f"{self.path}: run {run.run_id} stores {name!r} by {[d for d, _ in strata]}, "
                                 f"not by {list(wanted)} as its scenario says")
            into = [np.searchsorted(members, np.arange(first, last)), np.arange(len(times))]
            into += [[wanted[dim].index(label) for label in labels] for dim, labels in strata]
            arrays[run.labels.index(arm)][name][np.ix_(*into)] = block[:, picks]
        return members, arrays, times


SCHEMA_2_COLUMNS = ("run_id", "arm", "replicate", "sample", "outcome", "values_by_step")
SCHEMA_2_CLASHES = (*SCHEMA_2_COLUMNS, "time", "value", "step")
"""Schema 2's fixed `series` columns, and the names a stratum column got the suffix `_stratum` for."""


def migrate(connection: duckdb.DuckDBPyConnection) -> None:
    """Turn a schema-2 store into the current schema in one transaction: each (arm, member, outcome,
    stratum) row of DOUBLE[] becomes part of its range's encoded block, values unchanged; a failure (a
    damaged block, a full disk, Ctrl-C) rolls back and leaves the schema-2 store as it was."""
    with transaction(connection):
        columns = [row[0] for row in connection.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'series' ORDER BY ordinal_position"
        ).fetchall()]
        strata_columns = [c for c in columns if c not in SCHEMA_2_COLUMNS]
        dims = {c: c.removesuffix("_stratum") if c.removesuffix("_stratum") in SCHEMA_2_CLASHES else c
                for c in strata_columns}
        connection.execute(SERIES_TABLE.format(table="series_blocks"))
        old_rows = connection.execute("SELECT count(*) FROM series").fetchall()[0][0]
        moved = 0
        for run_id, first, last in connection.execute(
            "SELECT run_id, first_replicate, last_replicate FROM ranges ORDER BY run_id, first_replicate"
        ).fetchall():
            frame = connection.execute(
                f"SELECT arm, outcome, replicate, {''.join(f'{_quoted(c)}, ' for c in strata_columns)}values_by_step "
                "FROM series WHERE run_id = ? AND replicate >= ? AND replicate < ?", [run_id, first, last],
            ).df()
            moved += len(frame)
            blocks = _schema_2_blocks(frame, dims, first, last)
            if blocks:
                table = pa.Table.from_pylist([{"run_id": run_id, "first_replicate": first, "last_replicate": last,
                                               **block} for block in blocks])
                connection.register("migrated", table)
                connection.execute("INSERT INTO series_blocks BY NAME SELECT * FROM migrated")
                connection.unregister("migrated")
        if moved != old_rows:
            raise StoreError(f"cannot migrate the run store: {old_rows - moved} series rows lie outside every stored "
                             "range; it was left at schema version 2 (open it with the aftermath that wrote it)")
        connection.execute("DROP VIEW IF EXISTS outcomes")
        connection.execute("DROP TABLE series")
        connection.execute("ALTER TABLE series_blocks RENAME TO series")
        connection.execute("ALTER TABLE runs ADD COLUMN outcomes VARCHAR")
        connection.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [SCHEMA_VERSION])
    connection.execute("CHECKPOINT")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _schema_2_blocks(frame: pd.DataFrame, dims: dict[str, str], first: int, last: int) -> list[dict]:
    """The encoded blocks (rows of the current `series` table, without run and range) of one range's
    schema-2 rows (arm, outcome, replicate, stratum columns, values_by_step)."""
    blocks = []
    for (arm, outcome), group in frame.groupby(["arm", "outcome"], sort=False):
        own = [c for c in dims if group[c].notna().any()]
        labels = [sorted(group[c].unique()) for c in own]
        values = np.stack(group["values_by_step"].to_numpy())
        block = np.full((last - first, values.shape[1], *[len(found) for found in labels]), np.nan)
        index = [group["replicate"].to_numpy() - first, slice(None)]
        index += [np.searchsorted(found, group[c].to_numpy()) for c, found in zip(own, labels, strict=True)]
        block[tuple(index)] = values
        encoding, data = encode_block(block)
        blocks.append({"arm": arm, "outcome": outcome, "steps": values.shape[1], "encoding": encoding, "data": data,
                       "strata": json.dumps([[dims[c], [str(x) for x in found]] for c, found in zip(own, labels,
                                                                                                     strict=True)])})
    return blocks


def damage(exc: duckdb.Error) -> str | None:
    """What DuckDB's error says is wrong with the file, in words; None if it is not damage."""
    text = str(exc)
    if "Could not read enough bytes" in text:
        return "the file is shorter than its contents say: truncated"
    if "Corrupt database file" in text or "checksum" in text:
        return "a block fails its checksum: bytes changed on disk"
    return None


INTERRUPTED = "Query interrupted"
"""What DuckDB's Python client raises (as RuntimeError) when Ctrl-C arrives while a statement runs."""


@contextmanager
def interrupts_as_ctrl_c() -> Iterator[None]:
    """Ctrl-C while DuckDB runs a statement (even BEGIN) surfaces as RuntimeError('Query interrupted'), or
    InterruptException in other versions; turn it back into the KeyboardInterrupt it is, which callers
    handle (exit 130, finished ranges kept)."""
    try:
        yield
    except duckdb.InterruptException:
        raise KeyboardInterrupt from None
    except RuntimeError as exc:
        if str(exc) != INTERRUPTED:
            raise
        raise KeyboardInterrupt from None


@contextmanager
def _registered(connection: duckdb.DuckDBPyConnection, name: str, rows: pa.Table) -> Iterator[None]:
    """`rows` as the view `name` for the block. Registered and unregistered outside any transaction: an
    unregister inside a failed transaction raises 'transaction is aborted' and hides the failure's cause
    (a full disk would then not be named as one)."""
    connection.register(name, rows)
    try:
        yield
    finally:
        connection.unregister(name)


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN, the block, COMMIT; on any exception (Ctrl-C included, at any statement) ROLLBACK, so a
    held connection is never left inside a half-done transaction."""
    try:
        connection.execute("BEGIN")
        yield
        connection.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):  # e.g. BEGIN itself was interrupted: no transaction to roll back
            connection.execute("ROLLBACK")
        raise


def effective_status(row: dict) -> str:
    """'running' only while its process lives (on this host); a killed run reads 'stopped'."""
    if (row["status"] == "running" and row.get("host") == socket.gethostname() and row.get("pid") is not None
            and not process_alive(int(row["pid"]), _started(row))):
        return "stopped"
    return str(row["status"])


def _started(row: dict) -> float | None:
    value = row.get("pid_started")
    return None if value is None or pd.isna(value) else float(value)


def range_table(run_id: int, labels: Sequence[str], result: TaskResult, layout: Layout) -> pa.Table:
    """A range's series as rows (arm, outcome), each holding the block (members, steps, *strata) encoded."""
    rows: dict[str, list] = {key: [] for key in ("arm", "outcome", "strata", "steps", "encoding", "data")}
    for label, series in zip(labels, result.series, strict=True):
        for name, strata in layout.series.items():
            encoding, data = encode_block(series[name])
            rows["arm"].append(label)
            rows["outcome"].append(name)
            rows["strata"].append(json.dumps([[dim, list(values)] for dim, values in strata]))
            rows["steps"].append(series[name].shape[1])
            rows["encoding"].append(encoding)
            rows["data"].append(data)
    count = len(rows["arm"])
    return pa.table({
        "run_id": pa.array(np.full(count, run_id, np.int32)),
        "arm": pa.array(rows["arm"]),
        "first_replicate": pa.array(np.full(count, result.first, np.int32)),
        "last_replicate": pa.array(np.full(count, result.last, np.int32)),
        "outcome": pa.array(rows["outcome"]),
        "strata": pa.array(rows["strata"]),
        "steps": pa.array(rows["steps"], pa.int32()),
        "encoding": pa.array(rows["encoding"]),
        "data": pa.array(rows["data"], pa.binary()),
    })
