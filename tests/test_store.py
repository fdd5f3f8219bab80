"""The DuckDB run store: round trip, no duplicate ranges, schema versions, locks and concurrent writers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest

from aftermath.experiments import design_experiment, load_result, read_scenario, run_experiment, run_stored
from aftermath.experiments.design import layout_of
from aftermath.experiments.worker import WorkerContext, make_task, run_task
from aftermath.store import SCHEMA_VERSION, Store, StoreError, database
from tests.conftest import run_cli
from tests.test_experiments import one_kernel_thread  # noqa: F401  (autouse)

POLICY = "border_and_intelligence"


@pytest.fixture(scope="module")
def experiment():
    text, file, _ = read_scenario("competing_exits")
    return design_experiment(text, file, samples=3, replicates=4, arms=[{}, {POLICY: None}], seed=2, range_size=5)


@pytest.fixture(scope="module")
def stored(tmp_path_factory, experiment) -> tuple[Store, int]:
    """One finished run; tests that change the file work on a copy."""
    store = Store(tmp_path_factory.mktemp("store") / "runs.duckdb")
    return store, run_stored(store, experiment, "compare")


def copy_of(stored: tuple[Store, int], folder: Path) -> Path:
    path = folder / "runs.duckdb"
    shutil.copy(stored[0].path, path)
    return path


def test_a_stored_run_reads_back_exactly_as_it_ran(stored, experiment) -> None:
    store, run_id = stored
    memory = run_experiment(experiment)
    stored = load_result(store, run_id)
    assert list(stored.result.arms) == ["baseline", POLICY]
    for label, dataset in memory.arms.items():
        for name in memory.series:
            assert np.array_equal(dataset[name].values, stored.result.arms[label][name].values, equal_nan=True)
    listed = store.runs().iloc[0]
    assert (listed.run_id, listed.status, listed.stored, listed.members) == (run_id, "done", 12, 12)
    outcomes = store.outcomes(run_id)  # noqa: F841  (queried by name below)
    with duckdb.connect(str(store.path), read_only=True) as db:
        draws = db.execute("SELECT count(*), count(DISTINCT sample) FROM parameters WHERE run_id = ?",
                           [run_id]).fetchone()
        versions = db.execute("SELECT versions FROM runs").fetchone()[0]
    with duckdb.connect() as db:
        origins = db.execute("SELECT DISTINCT origin FROM outcomes WHERE outcome = 'returned_by_origin' "
                             "ORDER BY origin").fetchall()
        one = db.execute("SELECT value FROM outcomes WHERE arm = ? AND replicate = 7 "
                         "AND outcome = 'returned_by_origin' "
                         "AND origin = 'GB' AND time = DATE '2016-12-01'", [POLICY]).fetchone()[0]
    expected = memory.arms[POLICY]["returned_by_origin"].sel(replicate=7, origin="GB", time="2016-12-01")
    assert one == float(expected)
    assert draws == (3 * 4, 3)
    assert [o for (o,) in origins] == ["BE", "DE", "FR", "GB"]
    assert '"duckdb"' in versions and '"aftermath"' in versions


def test_key_dates_load_only_those_months(stored) -> None:
    loaded = load_result(*stored, key_dates_only=True)
    months = [str(t)[:7] for t in loaded.result.arms["baseline"]["time"].values]
    assert months == loaded.dates and len(months) == 5
    assert not np.isnan(loaded.result.arms[POLICY]["returned_by_origin"].values).any()


def test_a_range_is_stored_once(tmp_path: Path, experiment) -> None:
    store = Store(tmp_path / "runs.duckdb")
    layout = layout_of(experiment)
    run_id = store.create_run(experiment, layout, "compare", "serial")
    result = run_task(WorkerContext.of(experiment), make_task(experiment, 0, 5))
    labels = [arm.label for arm in experiment.arms]
    assert store.write_range(run_id, labels, result, layout)
    assert not store.write_range(run_id, labels, result, layout)
    with duckdb.connect(str(store.path), read_only=True) as db:
        blocks = db.execute("SELECT count(*) FROM series").fetchone()[0]
    per_member = 2 * (6 + 4)  # arms x (scalar outcomes + one by origin)
    assert (blocks, store.outcomes(run_id).num_rows) == (2 * 7, 5 * per_member * 60)  # arms x outcomes
    assert store.completed(run_id) == [(0, 5)]


def test_a_refused_range_write_names_its_members_and_keeps_nothing(tmp_path: Path, experiment, monkeypatch) -> None:
    """A result short of an arm is refused before anything is written; a write DuckDB refuses names the
    range (members 0-4: the first five) and rolls back its claim, so the run loads with no member."""
    store = Store(tmp_path / "runs.duckdb")
    layout = layout_of(experiment)
    run_id = store.create_run(experiment, layout, "compare", "serial")
    result = run_task(WorkerContext.of(experiment), make_task(experiment, 0, 5))
    labels = [arm.label for arm in experiment.arms]
    with pytest.raises(ValueError, match="zip"):
        store.write_range(run_id, [*labels, "another arm"], result, layout)
    monkeypatch.setattr(database, "range_table", lambda *_: pa.table({"arm": ["baseline"], "no_such_column": [1]}))
    with pytest.raises(StoreError, match=rf"cannot write members 0-4 of run {run_id} \(Binder Error"):
        store.write_range(run_id, labels, result, layout)
    assert store.completed(run_id) == []
    members, arrays, _ = store.load_series(store.run(run_id), layout)
    assert members.shape == (0,)
    assert all(array.shape[0] == 0 for arm in arrays for array in arm.values())


def test_ctrl_c_while_duckdb_reads_the_rows_is_an_interrupt_and_keeps_nothing(tmp_path: Path, experiment,
                                                                                monkeypatch) -> None:
    """DuckDB reports a KeyboardInterrupt raised while it reads the rows from Python as its own error; the store
    raises the interrupt (the CLI then exits 130, 'interrupted'), not a refused write, and keeps no member."""
    store = Store(tmp_path / "runs.duckdb")
    layout = layout_of(experiment)
    run_id = store.create_run(experiment, layout, "compare", "serial")
    result = run_task(WorkerContext.of(experiment), make_task(experiment, 0, 5))
    labels = [arm.label for arm in experiment.arms]
    real = database.range_table

    def interrupted(*args):
        table = real(*args)

        def batches():
            yield from table.to_batches(max_chunksize=1)[:1]
            raise KeyboardInterrupt

        return pa.RecordBatchReader.from_batches(table.schema, batches())

    monkeypatch.setattr(database, "range_table", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.write_range(run_id, labels, result, layout)
    assert store.completed(run_id) == []


def _set_version(path: Path, version: int) -> None:
    with duckdb.connect(str(path)) as db:
        db.execute("UPDATE schema_version SET version = ?", [version])


@pytest.mark.parametrize(("version", "age"), [(1, "older"), (SCHEMA_VERSION + 1, "newer")])
def test_another_schema_version_gets_a_clear_message(tmp_path: Path, stored, version: int, age: str) -> None:
    path = copy_of(stored, tmp_path)
    _set_version(path, version)
    with pytest.raises(StoreError, match=f"schema version {version}, written by an? {age} aftermath"):
        Store(path).runs()
    done = run_cli("runs", "--store", str(path))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "schema version" in done.stderr and "Traceback" not in done.stderr


def test_files_that_are_not_stores_are_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as db:
        db.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(StoreError, match="not an aftermath run store"):
        Store(other).runs()
    text = tmp_path / "notes.duckdb"
    text.write_text("not a database\n" * 100)
    with pytest.raises(StoreError, match="cannot open the run store"):
        Store(text).runs()
    with pytest.raises(StoreError, match="no run store here"):
        Store(tmp_path / "missing.duckdb").runs()
    done = run_cli("show", "7", "--store", str(tmp_path / "missing.duckdb"))
    assert done.returncode == 2 and "no run store here" in done.stderr


def test_unknown_run_is_a_clear_error(stored) -> None:
    with pytest.raises(StoreError, match="no run 99"):
        stored[0].run(99)


def test_a_store_locked_by_another_process_is_refused_after_the_wait(tmp_path: Path, stored) -> None:
    path = copy_of(stored, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({str(path)!r}); print('held', "
         "flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with pytest.raises(StoreError, match=rf"in use by process {holder.pid} .* another --store"):
            Store(path, lock_timeout=0.5).runs()
        assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait()
    assert Store(path, lock_timeout=5).runs().iloc[0].status == "done"


def test_a_run_holding_the_store_lets_a_waiting_process_in(tmp_path: Path, stored) -> None:
    path = copy_of(stored, tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from aftermath.store import Store\n"
         f"store = Store({str(path)!r})\n"
         "with store.holding():\n"
         "    print('held', flush=True)\n"
         "    end = time.monotonic() + 60\n"
         "    while time.monotonic() < end:\n"
         "        time.sleep(0.1)\n"
         "        store.breathe()\n"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        assert Store(path, lock_timeout=30).runs().iloc[0].status == "done"
        assert time.monotonic() - started < 20
        assert holder.poll() is None, "the holder let the reader in while it still ran"
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow
def test_two_processes_writing_one_store_take_turns(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    arguments = ["competing_exits", "-s", "40", "-n", "5", "--workers", "1", "--store", str(path), "--json"]
    command = [sys.executable, "-m", "aftermath"]
    first = subprocess.Popen([*command, "ensemble", *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    second = subprocess.Popen([*command, "compare", *arguments, "--policy", POLICY], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    outputs = [process.communicate(timeout=600) for process in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], [err for _, err in outputs]
    runs = Store(path).runs().set_index("run_id")
    assert set(runs["status"]) == {"done"} and list(runs["stored"]) == [200, 200]
    outcomes = pa.concat_tables([Store(path).outcomes(run_id) for run_id in runs.index])  # noqa: F841
    with duckdb.connect() as db:
        duplicates = db.execute(
            "SELECT count(*) FROM (SELECT run_id, arm, replicate, outcome, time, origin, count(*) AS n "
            "FROM outcomes GROUP BY ALL HAVING n > 1)"
        ).fetchone()[0]
        members = db.execute("SELECT run_id, count(DISTINCT (arm, replicate)) FROM outcomes GROUP BY run_id "
                             "ORDER BY run_id").fetchall()
    assert duplicates == 0
    assert sorted(n for _, n in members) == [200, 400]


def test_a_reused_pid_does_not_make_a_dead_run_look_alive() -> None:
    """A run reads 'running' only while the very process that runs it lives: a live process that got
    the same pid later (another creation time) does not count, and neither does a pid that is gone."""
    import os
    import socket

    from aftermath.store.database import effective_status, process_started

    row = {"status": "running", "host": socket.gethostname(), "pid": os.getpid(), "pid_started": process_started()}
    assert effective_status(row) == "running"
    assert effective_status({**row, "pid_started": process_started() - 3600.0}) == "stopped"
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert effective_status({**row, "pid": child.pid, "pid_started": None}) == "stopped"


def _series_block(path: Path) -> int:
    """The byte offset of the first block holding series (after the file's three 4 KiB headers)."""
    with duckdb.connect(str(path), read_only=True) as db:
        block = db.execute("SELECT min(block_id) FROM pragma_storage_info('series') WHERE block_id >= 0").fetchone()[0]
        size = db.execute("SELECT block_size FROM pragma_database_size()").fetchone()[0]
    return 3 * 4096 + block * size


@pytest.mark.parametrize("harm", ["truncated", "bit-flipped"])
def test_a_damaged_store_is_one_clear_line_and_is_never_written(tmp_path: Path, stored, harm: str, capsys) -> None:
    from tests.test_limits import cli

    path = copy_of(stored, tmp_path)
    offset = _series_block(path) + 100
    if harm == "truncated":
        os.truncate(path, offset)
    else:
        data = bytearray(path.read_bytes())
        data[offset] ^= 0x01
        path.write_bytes(bytes(data))
    before = path.read_bytes()
    for command in (["show", "1"], ["resume", "1", "--workers", "1"], ["runs"]):
        code, err = cli(capsys, *command, "--store", str(path))
        assert "Traceback" not in err, err
        if command[0] == "runs" and code == 0:
            continue  # the list of runs lies in blocks that are intact
        assert code == 2 and err.count("\n") == 1, err
        assert "the run store is damaged" in err and "0 of its 1 runs can still be read whole" in err, err
        assert ("truncated" if harm == "truncated" else "checksum") in err
    assert path.read_bytes() == before, "a damaged store is never written to"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs.duckdb"]
