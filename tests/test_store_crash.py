"""A run killed with SIGKILL leaves whole ranges; resuming finishes it exactly like an uninterrupted run."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from aftermath.experiments import comparison_table, design_experiment, load_result, read_scenario, run_stored
from aftermath.store import Store
from tests.test_experiments import one_kernel_thread  # noqa: F401  (autouse)
from tests.test_experiments_executors import assert_identical, wait_until_stored
from tests.test_limits import cli

POLICY = "border_and_intelligence"
SAMPLES, REPLICATES = 100, 20


@pytest.mark.slow
def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    path = tmp_path / "runs.duckdb"
    command = [sys.executable, "-m", "aftermath", "compare", "competing_exits", "--policy", POLICY,
               "-s", str(SAMPLES), "-n", str(REPLICATES), "--workers", "1", "--store", str(path)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_until_stored(process, 3 * 32)
    process.send_signal(signal.SIGKILL)
    process.wait()
    killed = Store(path).runs().iloc[0]
    assert killed.status == "stopped" and 0 < killed.stored < SAMPLES * REPLICATES
    with duckdb.connect(str(path), read_only=True) as db:
        ranges, members = db.execute(
            "SELECT (SELECT count(*) FROM ranges), "
            "coalesce(sum(last_replicate - first_replicate) / count(DISTINCT outcome), 0) FROM series"
        ).fetchone()
    assert members == 2 * killed.stored, "only whole ranges, every arm of each"

    done = subprocess.run([sys.executable, "-m", "aftermath", "resume", "1", "--workers", "1", "--store", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    resumed = Store(path).runs().iloc[0]
    assert (resumed.status, resumed.stored) == ("done", SAMPLES * REPLICATES)
    outcomes = Store(path).outcomes(1)  # noqa: F841  (queried by name below)
    with duckdb.connect() as db:
        duplicates = db.execute(
            "SELECT count(*) FROM (SELECT arm, replicate, outcome, time, origin FROM outcomes GROUP BY ALL "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
    with duckdb.connect(str(path), read_only=True) as db:
        covered = db.execute("SELECT sum(last_replicate - first_replicate), count(*) FROM ranges").fetchone()
    assert duplicates == 0 and covered[0] == SAMPLES * REPLICATES and covered[1] > ranges

    text, file, _ = read_scenario("competing_exits")
    experiment = design_experiment(text, file, samples=SAMPLES, replicates=REPLICATES, arms=[{}, {POLICY: None}],
                                   seed=1)
    reference = Store(tmp_path / "reference.duckdb")
    uninterrupted = load_result(reference, run_stored(reference, experiment, "compare"))
    again = load_result(Store(path), 1)
    assert_identical(uninterrupted.result, again.result)
    dates = ["2015-06", "2017-12"]
    assert comparison_table(uninterrupted.result, dates).equals(comparison_table(again.result, dates))


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 3 MiB file system (tmpfs), to meet 'no space left on device' as a user does; skipped where this
    process may not mount one (not root)."""
    folder = tmp_path / "small"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(folder)], capture_output=True,
                             check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_disk_under_the_store_fails_the_run_in_one_line_and_keeps_what_was_stored(
    small_disk: Path, capsys
) -> None:
    path = small_disk / "runs.duckdb"
    (small_disk / "ballast").write_bytes(bytes(int(2.2 * 2**20)))  # 0.8 MiB left: about half the run's blocks
    code, err = cli(capsys, "ensemble", "competing_exits", "-s", "100", "-n", "20", "--workers", "1",
                    "--store", str(path))
    lines = err.splitlines()
    assert code == 2 and lines[-1].startswith("error: ") and "Traceback" not in err, err
    assert "no space left on the device holding the run store" in lines[-1]
    assert all(line.startswith("run 1: ") for line in lines[:-1]), "progress lines, then the one error"
    run = Store(path).runs().iloc[0]
    assert run.status == "failed" and 0 < run.stored < 2000
    with duckdb.connect(str(path), read_only=True) as db:
        message, members = db.execute(
            "SELECT message, (SELECT coalesce(sum(last_replicate - first_replicate) / count(DISTINCT outcome), 0) "
            "FROM series) "
            "FROM runs").fetchone()
    assert "no space left" in message and "rollback" not in message, message
    assert members == run.stored, "whole ranges only"
    stored = load_result(Store(path), 1)
    assert stored.result.arms["baseline"].sizes["replicate"] == run.stored
    assert not list(small_disk.glob(".*partial"))


def _fill(folder: Path) -> None:
    with open(folder / "ballast", "wb") as ballast, contextlib.suppress(OSError):
        while True:
            ballast.write(b"\0" * 65536)
            ballast.flush()


@pytest.mark.parametrize("args", [["run", "competing_exits", "-n", "20", "--out", "{}/x.nc"],
                                  ["run", "competing_exits", "-n", "20", "--out", "{}/x.parquet"],
                                  ["report", "competing_exits", "-s", "4", "-n", "2", "--map-runs", "2",
                                   "--workers", "1", "-o", "{}/r.html"]])
def test_a_full_disk_under_an_output_file_is_one_line_and_leaves_nothing(small_disk: Path, capsys, args) -> None:
    _fill(small_disk)
    code, err = cli(capsys, *[a.format(small_disk) for a in args])
    *progress, error = err.splitlines()
    assert code == 2 and error.startswith("error: ") and "Traceback" not in err, err
    assert not any(line.startswith("error") for line in progress), "progress lines, then one error"
    assert "no space left on the device holding" in error and "nothing was written" in error
    assert [p.name for p in small_disk.iterdir()] == ["ballast"]
