"""Shared fixtures: small scenarios written as dicts, and a way to run the CLI.

Stochastic assertions state their tolerance in standard errors and their false-failure chance where they
are made; the suite's total is kept below 1 in 1,000 per run (the budget, file by file: docs/testing.md).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from aftermath import compile_model, load_scenario, parse_scenario
from tests.isolated import Isolated

ROOT = Path(__file__).resolve().parents[1]


def scenario_from(data: dict[str, Any], file: str = "<test>"):
    """Validate a scenario written as a dict (JSON is YAML)."""
    return parse_scenario(json.dumps(data), file)


@functools.cache
def _cli_server() -> Isolated:
    """One process per test process that imported aftermath once; each `run_cli` runs in a child forked from it."""
    return Isolated()


@pytest.fixture(scope="session")
def isolated() -> Isolated:
    """The test process's server of forked children (tests/isolated.py): a call that hangs fails its test."""
    return _cli_server()


def run_cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`aftermath ARGS` from the repository root, in its own process as the installed script runs (a child forked
    from `_cli_server`, without 3-5 s of imports per call); AssertionError if it runs past `timeout` s."""
    with tempfile.TemporaryDirectory() as folder:
        done = _cli_server().call("tests.isolated:run_cli", list(args), folder, str(ROOT), limit=timeout)
    return subprocess.CompletedProcess([sys.executable, "-m", "aftermath", *args], done["status"], done["stdout"],
                                       done["stderr"])


def pytest_sessionfinish() -> None:
    if _cli_server.cache_info().currsize:
        _cli_server().close()


@pytest.fixture(scope="session")
def competing_exits():
    return load_scenario("competing_exits")


@pytest.fixture(scope="session")
def competing_model(competing_exits):
    return compile_model(competing_exits)


def cohort_scenario(per: str = "month", scale: float = 1.0, **extra: Any) -> dict[str, Any]:
    """A two-stratum cohort with three exits, an inflow, a sink and an event: every engine feature."""
    data: dict[str, Any] = {
        "name": "cohort",
        "title": "test cohort",
        "time": {"start": "2015-01", "end": "2016-12"},
        "dimensions": {"origin": ["A", "B"]},
        "compartments": {
            "active": {"dims": ["origin"], "initial": {"A": 500, "B": 300}, "assumption": "test"},
            "gone": {"dims": ["origin"]},
            "home": {"dims": []},
        },
        "boundaries": {"recruits": {"kind": "source"}, "dead": {"kind": "sink"}},
        "parameters": {
            "leave": {"unit": f"per {per}", "value": 0.03 * scale, "fixed": "test", "assumption": "test"},
            "die": {
                "unit": f"per {per}",
                "dims": ["origin"],
                "value": {"A": 0.01 * scale, "B": 0.02 * scale},
                "fixed": "test",
                "assumption": "test",
            },
            "inflow": {"unit": f"persons per {per}", "value": 20 * scale, "fixed": "test", "assumption": "test"},
            "share": {"unit": "fraction", "value": 0.25, "fixed": "test", "assumption": "test"},
        },
        "schedules": {
            "surge": {"interpolation": "linear", "points": {"2015-01": 1.0, "2016-01": 2.0}, "assumption": "test"}
        },
        "flows": [
            {"name": "leaving", "from": "active", "to": "gone", "rate": "leave * surge"},
            {"name": "dying", "from": "active", "to": "dead", "rate": "die"},
            {"name": "going_home", "from": "gone", "to": "home", "rate": "leave"},
            {"name": "recruiting", "from": "recruits", "to": "active", "rate": "inflow"},
        ],
        "events": [{"name": "amnesty", "date": "2016-01", "from": "active", "to": "home", "fraction": "share"}],
        "outcomes": {
            "active_total": {"expr": "active"},
            "home_total": {"expr": "home"},
            "leavers": {"expr": "leaving", "cumulative": True},
        },
    }
    data.update(extra)
    return data
