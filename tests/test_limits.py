"""Requests beyond what the machine or the store can hold are refused up front, in one line, exit 2.

Huge -n/-s (memory, with the figure), seeds outside one range (0 to 2^63-1, at the CLI and the API),
--out naming a folder or an unwritable place, and a malformed --dask address: all before any work.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from aftermath.cli import main
from aftermath.engines.simulate import simulate
from aftermath.errors import ResourceError
from aftermath.experiments import ExecutorError, ExecutorSpec, design_experiment, read_scenario
from aftermath.experiments.sampling import sample_draws
from aftermath.resources import MAX_SEED, check_seed

HUGE = "1000000000000"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`aftermath ARGS` in this process: (exit status, stderr)."""
    argv, sys.argv = sys.argv, ["aftermath", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = argv
    return code, capsys.readouterr().err


def one_line(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["run", "competing_exits", "-n", HUGE], ["1,000,000,000,000 replicates needs about", "iB of memory"]),
        (["run", "competing_exits", "-n", HUGE, "--out", "r.nc"], ["1,000,000,000,000 replicates needs about",
                                                                    "PiB of memory"]),
        (["ensemble", "competing_exits", "-s", HUGE], ["members (samples x replicates) is more than a run can hold"]),
        (["ensemble", "competing_exits", "-s", "1000000000", "-n", "2"], ["of memory and this machine has"]),
        (["compare", "competing_exits", "--policy", "border_and_intelligence", "-n", HUGE], ["more than a run"]),
        (["run", "competing_exits", "--seed", str(2**64)], ["--seed", str(MAX_SEED)]),
        (["ensemble", "competing_exits", "--seed", str(2**64)], ["--seed", str(MAX_SEED)]),
        (["report", "competing_exits", "--seed", str(2**63)], ["--seed", str(MAX_SEED)]),
    ],
)
def test_huge_requests_and_seeds_are_refused_at_once(capsys, tmp_path: Path, monkeypatch, args, fragments) -> None:
    monkeypatch.chdir(tmp_path)
    started = time.monotonic()
    one_line(*cli(capsys, *args, *(["--store", "s.duckdb"] if args[0] in ("ensemble", "compare") else [])),
             *fragments)
    assert time.monotonic() - started < 120, "refused up front (the run itself would take hours)"
    assert list(tmp_path.iterdir()) == [], "nothing written"


def test_one_seed_range_for_the_api(competing_model) -> None:
    assert check_seed(MAX_SEED) == MAX_SEED
    for bad in (-1, 2**63, 2**64, 2**64 + 1):
        with pytest.raises(ResourceError, match="outside 0 to 9223372036854775807"):
            check_seed(bad)
        with pytest.raises(ResourceError):
            simulate(competing_model, replicates=2, seed=bad)
        with pytest.raises(ResourceError):
            sample_draws(competing_model.scenario, 2, seed=bad)
    text, file, _ = read_scenario("competing_exits")
    with pytest.raises(ResourceError):
        design_experiment(text, file, samples=2, replicates=2, seed=2**64)
    # Before, 2^64 was masked to 0: the largest seed now gives other numbers than seed 0.
    top = simulate(competing_model, replicates=3, seed=MAX_SEED)
    zero = simulate(competing_model, replicates=3, seed=0)
    assert any(not top[name].equals(zero[name]) for name in top.data_vars)


def test_the_api_refuses_a_result_beyond_memory(competing_model) -> None:
    with pytest.raises(ResourceError, match="of memory and this machine has"):
        simulate(competing_model, replicates=10**12)


def test_out_naming_a_folder_or_an_unwritable_place_is_refused_before_running(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "results.nc"
    folder.mkdir()
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    started = time.monotonic()
    one_line(*cli(capsys, "run", "competing_exits", "--out", str(folder)), "this is a folder")
    one_line(*cli(capsys, "run", "competing_exits", "--out", str(not_a_folder / "x.parquet")),
             "cannot write in", "Not a directory")
    (tmp_path / "page.html").mkdir()
    one_line(*cli(capsys, "report", "competing_exits", "-o", str(tmp_path / "page.html")), "this is a folder")
    assert time.monotonic() - started < 120, "refused before any simulation"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "page.html", "results.nc"]


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://:8786", "tcp://host",
                                     "tcp://host:port", "http://host:8786", "somewhere"])
def test_a_malformed_dask_address_is_refused_at_once(capsys, tmp_path: Path, address: str) -> None:
    with pytest.raises(ExecutorError, match="expected 'local' or a scheduler address"):
        ExecutorSpec(dask=address).check()
    started = time.monotonic()
    one_line(*cli(capsys, "ensemble", "competing_exits", "-s", "2", "-n", "2", "--dask", address,
                  "--store", str(tmp_path / "s.duckdb")), "--dask", "port 1 to 65535")
    assert time.monotonic() - started < 5, "not after the connect timeout"
    assert not (tmp_path / "s.duckdb").exists()


def test_right_to_left_scripts_without_controls_are_accepted() -> None:
    from aftermath import parse_scenario

    base = (Path(__file__).parent / "bad_scenarios" / "base.yaml").read_text(encoding="utf-8")
    title = "title: العائدون من سوريا — returnees"
    assert parse_scenario(base.replace("title: A small cohort leaves the theatre", title)).title.startswith("العائدون")


BASE = Path(__file__).parent / "bad_scenarios" / "base.yaml"


def test_a_megabyte_of_comments_loads_in_under_a_second_and_keeps_line_numbers(tmp_path: Path) -> None:
    from aftermath import ScenarioError, load_scenario

    base = BASE.read_text(encoding="utf-8")
    comments = "".join(f"  # comment {i}: " + "x" * 64 + "\n" for i in range(12_500))
    block = "description: |\n  kept text\n  # a '#' line inside a block text is text, not a comment\n"
    path = tmp_path / "commented.yaml"
    path.write_text(comments + block + base, encoding="utf-8")
    assert path.stat().st_size > 1_000_000
    load_scenario(BASE)  # imports and caches warmed, as for any but the first file
    started = time.process_time()
    scenario = load_scenario(path)
    assert time.process_time() - started < 1.0
    assert "# a '#' line inside a block text" in scenario.description
    bad = tmp_path / "bad.yaml"
    bad.write_text(comments + base.replace("value: 0.15", "value: fifteen"), encoding="utf-8")
    with pytest.raises(ScenarioError) as info:
        load_scenario(bad)
    assert info.value.line == 12_500 + 33, "base.yaml's line 33, after the comments"
    assert info.value.path == ("parameters", "return_hazard", "value")


def test_a_million_strata_in_an_unused_dimension_are_refused_quickly(tmp_path: Path) -> None:
    from aftermath import ScenarioError, load_scenario

    labels = ", ".join(f"s{i}" for i in range(1_000_000))
    path = tmp_path / "strata.yaml"
    path.write_text(BASE.read_text(encoding="utf-8").replace(
        "  cohort: [men, women]\n", f"  cohort: [men, women]\n  unused: [{labels}]\n"), encoding="utf-8")
    started = time.process_time()
    with pytest.raises(ScenarioError, match=r"more than 50,000 values; expected a smaller scenario") as info:
        load_scenario(path)
    assert time.process_time() - started < 3.0 and info.value.line == 11
