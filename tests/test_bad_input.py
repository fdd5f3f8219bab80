"""Bad input, file by file: one clear line naming file, line, field and what was expected; exit 2; no traceback.

The corpus is tests/bad_scenarios/: each file is base.yaml (valid) with one thing broken, and expected.yaml says
what the error must read. The loader is checked in-process; the CLI in real processes (see `_check_all`).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from aftermath import ScenarioError, compile_model, load_scenario
from tests.isolated import main_status

CORPUS = Path(__file__).resolve().parent / "bad_scenarios"
MANIFEST: dict[str, dict] = YAML(typ="safe").load((CORPUS / "expected.yaml").read_text(encoding="utf-8"))
CASES = sorted(MANIFEST)
ROOT = CORPUS.parents[1]


def _split(text: str, path: Path, entry: dict) -> tuple[str, str]:
    """Check the 'file:line: field: ' prefix of an error line; return its message and expected parts."""
    prefix = f"{path}:{entry['line']}: {entry['field']}: "
    assert text.startswith(prefix), f"\n{text}\ndoes not start with\n{prefix}"
    message, _, expected = text[len(prefix):].partition("; expected ")
    return message, expected


def _check_error_line(text: str, path: Path, entry: dict) -> None:
    assert "\n" not in text and "Traceback" not in text, text
    assert len(text) < len(str(path)) + 400, f"too long to read: {text}"
    message, expected = _split(text, path, entry)
    assert entry["message"] in message, text
    if entry["expected"] is None:
        assert not expected, text
    else:
        assert str(entry["expected"]) in expected, text


def test_the_corpus_is_large_and_every_file_has_its_expected_message():
    files = {p.name for p in CORPUS.iterdir() if p.suffix == ".yaml"} - {"base.yaml", "expected.yaml"}
    assert files == set(MANIFEST)
    assert len(files) >= 40


def test_the_base_every_bad_file_varies_is_valid():
    """The control: each bad file's error comes from its one change, not from a broken base."""
    compile_model(load_scenario(CORPUS / "base.yaml"))


@pytest.mark.parametrize("name", CASES)
def test_loader_gives_one_clear_line(name: str):
    path = CORPUS / name
    started = time.process_time()  # CPU time: wall time on a busy CI machine says nothing
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert time.process_time() - started < 3.0, "bad input must be refused quickly"
    _check_error_line(str(info.value), path, MANIFEST[name])
    assert info.value.line == MANIFEST[name]["line"]


# --- the command line ---------------------------------------------------------------------------------------


def _run_in_forks(jobs: dict[str, list[str]]) -> dict[str, dict]:
    """`aftermath ARGS...` for each job, each in its own process, with aftermath imported once.

    Importing aftermath takes seconds and forking a fraction of one, so each job gets a forked child that runs
    the console entry point exactly as the installed script does (real stdout/stderr, real exit status); an
    exception that escapes prints its traceback and exits 1, as the interpreter would.
    """
    from aftermath.cli import main

    def child(args: list[str], out: int, err: int) -> None:
        os.dup2(out, 1)
        os.dup2(err, 2)
        os._exit(main_status(args))

    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), contextlib.suppress(SystemExit):
        sys.argv = ["aftermath", "check", str(CORPUS / "base.yaml")]
        main()  # warms what the first command loads lazily, so that no child pays for it
    results = {}
    for name, args in jobs.items():
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                child(args, out.fileno(), err.fileno())
            _, status = os.waitpid(pid, 0)
            out.seek(0)
            err.seek(0)
            results[name] = {
                "status": os.waitstatus_to_exitcode(status),
                "stdout": out.read().decode("utf-8", "replace"),
                "stderr": err.read().decode("utf-8", "replace"),
            }
    return results


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every corpus file and a few other bad calls through the CLI, in one subprocess (not 3 s per call)."""
    folder = tmp_path_factory.mktemp("cli")
    (folder / "out").mkdir()
    jobs = {name: ["check", str(CORPUS / name)] for name in CASES}
    jobs["missing file"] = ["check", str(folder / "nowhere.yaml")]
    jobs["folder"] = ["check", str(folder)]
    jobs["run --out"] = ["run", str(CORPUS / "yaml_unclosed_quote.yaml"), "--out", str(folder / "out" / "x.nc")]
    done = subprocess.run(
        [sys.executable, "-m", "tests.test_bad_input"], input=json.dumps(jobs), capture_output=True, text=True,
        timeout=600, cwd=ROOT, check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    results["run --out"]["left in the output folder"] = [p.name for p in (folder / "out").iterdir()]
    return results


def _assert_one_error_line(result: dict, *fragments: str) -> str:
    """Exit 2, nothing on stdout, one line 'error: ...' on stderr, no traceback; return that line's error."""
    assert result["status"] == 2, result
    assert "Traceback" not in result["stdout"] + result["stderr"], result
    assert result["stdout"] == "", result
    lines = result["stderr"].splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result["stderr"]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0].removeprefix("error: ")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the one-process CLI check forks")
@pytest.mark.parametrize("name", CASES)
def test_cli_check_exits_2_with_one_error_line(name: str, cli: dict[str, dict]):
    _check_error_line(_assert_one_error_line(cli[name]), CORPUS / name, MANIFEST[name])


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the one-process CLI check forks")
def test_a_missing_file_or_a_folder_is_one_clear_error(cli: dict[str, dict]):
    _assert_one_error_line(cli["missing file"], "nowhere.yaml: (scenario): no such file", "; expected a path")
    _assert_one_error_line(cli["folder"], "not a file", "; expected a YAML scenario file")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="the one-process CLI check forks")
def test_run_on_a_malformed_file_writes_no_output(cli: dict[str, dict]):
    _assert_one_error_line(cli["run --out"], "yaml_unclosed_quote.yaml:4: (scenario): malformed YAML")
    assert cli["run --out"]["left in the output folder"] == []


def _real(*command: str, cwd: Path = ROOT) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=cwd, check=False)
    return {"status": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def test_the_installed_script_rejects_bad_input_the_same_way():
    """One real process per entry point, beside the forked ones: the console script and `python -m`."""
    script = Path(sys.executable).parent / "aftermath"
    if not script.exists():
        pytest.skip("the console script is not installed beside this interpreter")
    path = CORPUS / "hostile_import.yaml"
    _assert_one_error_line(_real(str(script), "check", str(path)), f"error: {path}:67: flows[2].rate: attribute")


def test_run_on_invalid_scenario_exits_2_and_writes_no_file(tmp_path: Path):
    path = CORPUS / "negative_initial.yaml"
    result = _real(sys.executable, "-m", "aftermath", "run", str(path), "--out", "x.nc", cwd=tmp_path)
    _assert_one_error_line(result, f"{path}:17: compartments.returned.initial: a negative count")
    assert list(tmp_path.iterdir()) == []


if __name__ == "__main__":
    print(json.dumps(_run_in_forks(json.load(sys.stdin))))
