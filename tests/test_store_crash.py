"""A run killed with SIGKILL leaves whole ranges; resuming finishes it exactly like an uninterrupted run."""

from __future__ import annotations

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
            "SELECT (SELECT count(*) FROM ranges), count(DISTINCT (arm, replicate)) FROM outcomes"
        ).fetchone()
    assert members == 2 * killed.stored, "only whole ranges, every arm of each"

    done = subprocess.run([sys.executable, "-m", "aftermath", "resume", "1", "--workers", "1", "--store", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    resumed = Store(path).runs().iloc[0]
    assert (resumed.status, resumed.stored) == ("done", SAMPLES * REPLICATES)
    with duckdb.connect(str(path), read_only=True) as db:
        duplicates = db.execute(
            "SELECT count(*) FROM (SELECT arm, replicate, outcome, time, origin FROM outcomes GROUP BY ALL "
            "HAVING count(*) > 1)"
        ).fetchone()[0]
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
