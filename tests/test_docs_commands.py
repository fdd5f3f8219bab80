"""Every command the README and the docs show, run as a newcomer would (at small sizes), so none can drift.

Commands are the lines starting with `aftermath` (or `.venv/bin/aftermath`) in the fenced code blocks of
README.md and docs/*.md; Python blocks run too. Sizes shrink (`-n`, `-s`, the report's map runs) and process
pools become one worker, nothing else changes. Each document's commands run in order in a fresh folder of
their own, as on a fresh clone, where `my_scenario.yaml` is a copy of a shipped scenario; each command in its own
process, forked from one that imported aftermath once (tests/isolated.py: the imports were 3-5 s of each command,
about half of this file's time). A command whose
comment starts with "refused" is shown to be refused: it must exit 2 with a one-line error. A document's
Python blocks run as one session, in order, after its commands.
"""

from __future__ import annotations

import inspect
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from aftermath.decisions.discovery import MIN_CASES, MIN_CASES_OF_INTEREST
from aftermath.decisions.optimise import optimise
from aftermath.decisions.sensitivity import MINIMUM
from aftermath.scenario.loader import resolve_scenario_path
from tests.conftest import ROOT
from tests.isolated import Isolated

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIPPED = ("scripts/calibrate_default.sh",)
"""Lines that are not quick commands: the calibration takes minutes (it has its own tests)."""
SERVERS = {"dashboard"}
"""Commands that serve until stopped: their options are checked here, their behaviour by tests/test_dashboard*.py."""
SIZED = {"run", "network", "fit-check", "ensemble", "compare", "report"}
POOLED = {"ensemble", "compare", "report"}
POPULATION = inspect.signature(optimise).parameters["population"].default
ANALYSED = {"ensemble": 12 * MIN_CASES_OF_INTEREST, "compare": MIN_CASES // 2}
"""Samples kept by an ensemble or comparison written to a named --store, which the docs then analyse: enough
cases for scenario discovery's minimum at a 0.9 quantile (ensemble) or over three or more arms (compare). A
search written to a named --store runs one generation (population + 1 policies) on enough samples for
MIN_CASES cases."""


def code_blocks(path: Path) -> list[tuple[str, str]]:
    """(language, text) of each fenced block."""
    return re.findall(r"^```(\w*)\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


def documented_commands() -> list[tuple[str, list[str], bool]]:
    """(file, argv after 'aftermath', shown as refused) of every documented command, in the docs' order."""
    commands = []
    for path in DOCS:
        for language, text in code_blocks(path):
            if language not in ("", "bash", "sh"):
                continue
            for line in text.replace("\\\n", " ").splitlines():  # a line continued with '\' is one command
                words = shlex.split(line, comments=True)
                if words and Path(words[0]).name == "aftermath" and not any(s in line for s in SKIPPED):
                    commands.append((path.name, words[1:], bool(re.search(r"#\s*refused", line))))
    return commands


def small(argv: list[str]) -> list[str]:
    """The same command at small sizes: few runs and samples, one worker where it would start a pool."""
    argv = list(argv)
    command = argv[0] if argv else ""
    samples = MINIMUM["rbd-fast"] if "--sensitivity" in argv else 2
    population = argv[argv.index("--population") + 1] if "--population" in argv else str(POPULATION)
    if command == "sensitivity":
        samples = MINIMUM[argv[argv.index("--method") + 1] if "--method" in argv else "sobol"]
    elif command in ANALYSED and "--store" in argv:
        samples = ANALYSED[command]
    elif command == "optimise" and "--store" in argv:  # a search the docs then discover on: enough cases
        samples = -(-MIN_CASES // (int(population) + 1)) + 1
    for flags, value in ((("-n", "--replicates"), "2"), (("-s", "--samples"), str(samples))):
        for i, word in enumerate(argv[:-1]):
            if word in flags:
                argv[i + 1] = value
    if command in SIZED and not {"-n", "--replicates"} & set(argv):
        argv += ["-n", "2"]
    if command in {"ensemble", "compare", "report", "optimise"} and not {"-s", "--samples"} & set(argv):
        argv += ["-s", str(samples)]
    if command in POOLED and not {"--workers", "--dask"} & set(argv):
        argv += ["--workers", "1"]
    if command == "report":
        argv += ["--map-runs", "2"]
    if command == "optimise":  # one generation: the search, not its length, is under test
        if "--evaluations" in argv:
            argv[argv.index("--evaluations") + 1] = population
        else:
            argv += ["--evaluations", population]
    if command in {"calibrate", "backtest"} and "--steps" not in argv:
        argv += ["--steps", "2"]  # a chain of two steps: the command, not the calibration, is under test
    return [str(ROOT / a) if (ROOT / a).is_file() and "/" in a else a for a in argv]


def test_the_readme_says_how_to_get_aftermath_on_the_path() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = code_blocks(ROOT / "README.md")[0][1]
    assert "pip install -e ." in setup and ".venv/bin/aftermath run" in setup
    assert "source .venv/bin/activate" in readme


def test_docs_name_only_commands_and_options_that_exist() -> None:
    """Cheap check of every documented command line: each subcommand and option is one the CLI knows."""
    helps: dict[str, str] = {}
    for _, argv, _ in documented_commands():
        name = argv[0] if argv and not argv[0].startswith("-") else ""
        if name not in helps:
            done = subprocess.run([sys.executable, "-m", "aftermath", *([name] if name else []), "--help"],
                                  capture_output=True, text=True, timeout=120)
            assert done.returncode == 0, (name, done.stderr)
            helps[name] = done.stdout
        for word in argv[1:]:
            if word.startswith("--"):
                assert word.split("=")[0] in helps[name], (name, word)


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda path: path.name)
def test_every_documented_command_runs_on_a_fresh_folder(
    doc: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, isolated: Isolated
) -> None:
    shutil.copy(resolve_scenario_path("competing_exits"), tmp_path / "my_scenario.yaml")
    captured = tmp_path_factory.mktemp("captured")
    commands = [(argv, refused) for name, argv, refused in documented_commands() if name == doc.name]
    for argv, refused in commands:
        if argv[0] in SERVERS:
            continue
        done = isolated.call("tests.isolated:run_cli", small(argv), str(captured), str(tmp_path), limit=600)
        said = f"{doc.name}: aftermath {' '.join(argv)}\n{done['stderr'][-2000:]}"
        if refused:
            assert done["status"] == 2 and len(done["stderr"].strip().splitlines()) == 1, said
        else:
            assert done["status"] == 0, said
    session = "\n".join(text for language, text in code_blocks(doc) if language == "python")  # one session
    if session:
        code = session.replace("replicates=1000", "replicates=20").replace("scenario, 1000,", "scenario, 20,")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                              timeout=300)
        assert done.returncode == 0, f"{doc.name}: python blocks\n{done.stderr[-2000:]}"
    if doc.name == "README.md":
        assert len(commands) >= 20 and any(argv[:1] == ["report"] for argv, _ in commands)
        assert (tmp_path / "report.html").stat().st_size > 0 and (tmp_path / "network.graphml").exists()
