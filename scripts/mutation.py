"""Mutation testing of the core with cosmic-ray: which small, plausible bugs does the test suite miss?

For each target module (or the named functions in it) cosmic-ray plants one mutant at a time (an operator
swapped, a comparison loosened, a constant nudged, a loop skipped...), runs the fast tests relevant to that
module, and records whether they failed (killed) or passed (survived). Surviving mutants are either gaps in
the tests or equivalent (behaviour-preserving) mutants; the latter are listed in EQUIVALENT below, each with
its reason, and counted apart.

Not a CI step: about 2,600 mutants over all targets, each a pytest start and a run of the target's fast
tests (20 s to 3 min on a loaded two-core machine). Run module by module, under nice:

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python scripts/mutation.py --list
    .venv/bin/python scripts/mutation.py --prepare-only                # count the mutants of every target
    .venv/bin/python scripts/mutation.py summary model-effects         # named targets, every mutant
    .venv/bin/python scripts/mutation.py kernels --sample 40 --seed 1  # a random 40 of the kernels' mutants
    .venv/bin/python scripts/mutation.py kernels --retest-survivors    # after new tests: rerun the survivors

Everything runs in a copy of src/ and tests/ under a temporary folder, so an interrupted run never leaves a
mutated file in the working tree. Sessions (cosmic-ray's SQLite files) stay in --sessions (default
.mutation/), so a rerun continues where it stopped; --fresh starts over.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path("src/aftermath")

# A selective set of cosmic-ray's operators (Offutt et al., "An experimental determination of sufficient
# mutant operators", 1996: arithmetic, relational, logical, unary and constant replacement). Bit-shift,
# bitwise, modulo and floor-division swaps, decorator removal (numba.njit: equivalent, and slow) and the
# random variable inserters are left out.
ARITHMETIC = ("Add", "Sub", "Mul", "Div", "Pow")
OPERATORS = (
    [f"core/ReplaceBinaryOperator_{a}_{b}" for a in ARITHMETIC for b in ARITHMETIC if a != b]
    + [f"core/ReplaceComparisonOperator_{a}_{b}" for a, b in (
        ("Lt", "LtE"), ("LtE", "Lt"), ("Gt", "GtE"), ("GtE", "Gt"), ("Lt", "Gt"), ("Gt", "Lt"), ("LtE", "GtE"),
        ("GtE", "LtE"), ("Eq", "NotEq"), ("NotEq", "Eq"), ("Is", "IsNot"), ("IsNot", "Is"))]
    + ["core/ReplaceUnaryOperator_USub_UAdd", "core/ReplaceUnaryOperator_Delete_Not", "core/AddNot",
       "core/ReplaceTrueWithFalse", "core/ReplaceFalseWithTrue", "core/ReplaceAndWithOr", "core/ReplaceOrWithAnd",
       "core/ReplaceBreakWithContinue", "core/ReplaceContinueWithBreak", "core/NumberReplacer",
       "core/ZeroIterationForLoop", "core/ExceptionReplacer"]
)

FAST = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-m", "'not slow'"]


@dataclass(frozen=True)
class Target:
    """A module (optionally only some of its functions) and the fast tests that should catch its mutants.

    `module` lists candidate paths under src/aftermath, first existing wins (a module renamed on a branch keeps
    its target); `tests` are test files or node ids, those that do not exist are dropped; `keyword` is a
    pytest -k expression narrowing them to the tests that exercise the module (cheaper survivors).
    """

    module: tuple[str, ...]
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()
    keyword: str = ""
    timeout: float = 240.0

    def path(self, root: Path) -> str:
        for candidate in self.module:
            if (root / PACKAGE / candidate).exists():
                return candidate
        raise SystemExit(f"none of {', '.join(self.module)} exists under {root / PACKAGE}")

    def test_paths(self, root: Path) -> list[str]:
        return [test for test in self.tests if (root / test.split("::")[0]).exists()]


ENGINE_TESTS = ("tests/test_closed_forms.py", "tests/test_engines.py")
TARGETS = {
    "kernels": Target(("engines/kernels.py",), ("tests/test_closed_forms.py", "tests/test_samplers.py")),
    "simulate": Target(("engines/simulate.py",), ENGINE_TESTS),
    "steps": Target(("engines/steps.py",), ("tests/test_conformance.py", "tests/test_engines.py")),
    "ode": Target(("engines/ode.py",), ("tests/test_conformance.py", "tests/test_closed_forms.py")),
    "diagnose": Target(("engines/diagnose.py",), ("tests/test_engine_stress.py", "tests/test_engines.py")),
    "model-compile": Target(("model/compile.py",), ("tests/test_closed_forms.py", "tests/test_engines.py",
                                                    "tests/test_scenario_groups.py")),
    "model-effects": Target(("model/compile.py",), ("tests/test_closed_forms.py",),
                            functions=("apply_effect", "parameters_at", "_active_steps", "_parameter_effects",
                                       "_schedule_arrays", "_policy_strengths")),
    "model-coupling": Target(("model/coupling.py",), ("tests/test_network.py", "tests/test_submodels.py")),
    "summary": Target(("summary.py",), ("tests/test_helpers.py", "tests/test_closed_forms.py", "tests/test_engines.py"),
                      keyword="quantile or band or summarise"),
    "sampling": Target(("experiments/sampling.py",), ("tests/test_experiments.py",),
                       keyword="latin or sampling or draws or members_of_a_sample or design_does_not"),
    "design": Target(("experiments/design.py",), ("tests/test_experiments.py", "tests/test_store.py")),
    "store-ranges": Target(("store/database.py",), ("tests/test_store.py", "tests/test_store_interrupt.py"),
                           functions=("write_range", "completed", "load_series", "range_table", "transaction",
                                      "interrupts_as_ctrl_c")),
    # report/numbers.py became aftermath/formatting.py (issue 15): the target follows either
    "report-numbers": Target(("report/numbers.py", "formatting.py"), ("tests/test_formatting.py",
                                                                       "tests/test_report.py"),
                             keyword="rounded or sign or formatting or number or band or span"),
    "report-escaping": Target(("report/html.py",), ("tests/test_report.py",),
                              functions=("script_json", "_template", "_labelled")),
}

# Surviving mutants that cannot change behaviour: (target, function, source line, mutated line), both lines
# stripped -> reason. Keyed by text, not by line number or occurrence, so the list survives edits elsewhere.
EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    ("report-numbers", "rounded", "if size >= 100:", "if size > 100:"):
        "at exactly 100 both rules print '100'",
    ("report-numbers", "rounded", "if size >= 100:", "if size >= 101:"):
        "from 100 to 101 three significant figures are whole numbers, as the next rule prints",
    ("report-numbers", "rounded", "if size >= 10:", "if size > 10:"):
        "at exactly 10 both ',.0f' and '.2g' print '10'",
    ("report-numbers", "rounded", "if size >= 10:", "if size >= 11:"):
        "from 10 to 11 two significant figures are whole numbers, as ',.0f' prints",
    ("kernels", "draw_key", "return _mix(key ^ (np.uint64(cell) + GOLDEN * np.uint64(3)))",
     "return _mix(key ^ (np.uint64(cell) - GOLDEN * np.uint64(3)))"):
        "another odd offset in the key hash: cells keep distinct keys and uniform draws; only the stream changes",
    ("simulate", "_fill_rates",
     "mean = state * np.where(exposure > 1e-9, -np.expm1(-exposure) / np.maximum(exposure, 1e-300), 1 - exposure / 2)",
     "mean = state * np.where(exposure >= 1e-9, -np.expm1(-exposure) / np.maximum(exposure, 1e-300), "
     "1 - exposure / 2)"):
        "at exposure 1e-9 both branches agree to 1e-18 (the series 1 - x/2 against (1 - exp(-x)) / x)",
}


@dataclass
class Tally:
    killed: int = 0
    survived: list[tuple[str, str, str, int, str]] = field(default_factory=list)
    equivalent: list[tuple[str, str]] = field(default_factory=list)
    incompetent: int = 0
    pending: int = 0

    @property
    def share(self) -> float:
        tested = self.killed + len(self.survived)
        return self.killed / tested if tested else float("nan")


def function_spans(path: Path, names: tuple[str, ...]) -> list[tuple[int, int]]:
    """Line spans (1-based, inclusive) of the named functions (any nesting) in a module."""
    spans = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in names:
            spans.append((node.lineno, node.end_lineno or node.lineno))
    missing = set(names) - {n.name for n in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    if missing:
        raise SystemExit(f"{path}: no function named {', '.join(sorted(missing))}")
    return spans


def config_text(module: Path, target: Target, work: Path) -> str:
    tests = " ".join(target.test_paths(work))
    keyword = f" -k '{target.keyword}'" if target.keyword else ""
    command = f"{sys.executable} -m pytest {' '.join(FAST)}{keyword} {tests}"
    return (
        "[cosmic-ray]\n"
        f'module-path = "{module}"\n'
        f"timeout = {target.timeout}\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )


def write_config(name: str, target: Target, work: Path) -> Path:
    config = work / f"{name}.toml"
    config.write_text(config_text(work / PACKAGE / target.path(work), target, work), encoding="utf-8")
    return config


def prepare(name: str, target: Target, work: Path, session: Path, sample: int | None, seed: int) -> None:
    """cosmic-ray init, then skip mutants outside the operator set, the named functions or the sample."""
    module = work / PACKAGE / target.path(work)
    config = write_config(name, target, work)
    subprocess.run([sys.executable, "-m", "cosmic_ray.cli", "init", str(config), str(session)], cwd=work,
                   check=True)
    spans = function_spans(module, target.functions) if target.functions else None
    with use_db(str(session), WorkDB.Mode.open) as db:
        items = list(db.pending_work_items)
        keep = []
        for item in items:
            mutation = item.mutations[0]
            line = mutation.start_pos[0]
            wanted = mutation.operator_name in OPERATORS and (
                spans is None or any(first <= line <= last for first, last in spans))
            (keep if wanted else []).append(item)
            if not wanted:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not selected"))
        if sample is not None and sample < len(keep):
            chosen = {item.job_id for item in random.Random(seed).sample(keep, sample)}
            for item in keep:
                if item.job_id not in chosen:
                    db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not sampled"))
        print(f"{name}: {len(items)} mutants, {len(keep)} selected"
              + (f", {min(sample, len(keep))} sampled" if sample is not None else ""), flush=True)


def mutated_line(diff: str) -> str:
    """The mutant's changed source line, from cosmic-ray's unified diff."""
    added = [row[1:].strip() for row in diff.splitlines() if row.startswith("+") and not row.startswith("+++")]
    return added[0] if added else ""


def tally(name: str, target: Target, work: Path, session: Path) -> Tally:
    lines = (work / PACKAGE / target.path(work)).read_text(encoding="utf-8").splitlines()
    result = Tally()
    with use_db(str(session), WorkDB.Mode.open) as db:
        result.pending = sum(1 for _ in db.pending_work_items)
        for item, outcome in db.completed_work_items:
            if outcome.worker_outcome == WorkerOutcome.SKIPPED or outcome.worker_outcome == WorkerOutcome.NO_TEST:
                continue
            if outcome.test_outcome == TestOutcome.INCOMPETENT:
                result.incompetent += 1
                continue
            if outcome.test_outcome == TestOutcome.KILLED:
                result.killed += 1
                continue
            mutation = item.mutations[0]
            line = mutation.start_pos[0]
            text = lines[line - 1].strip()
            key = (name, mutation.definition_name or "", text, mutated_line(outcome.diff or ""))
            if key in EQUIVALENT:
                result.equivalent.append((f"{mutation.definition_name}:{line} {mutation.operator_name}",
                                          EQUIVALENT[key]))
            else:
                result.survived.append((mutation.definition_name or "", mutation.operator_name,
                                        str(mutation.occurrence), line, text))
    return result


def forget_survivors(session: Path) -> None:
    """Drop the results of surviving mutants, so `exec` runs only them again (killed ones stay killed)."""
    with sqlite3.connect(session) as connection:
        connection.execute("DELETE FROM work_results WHERE worker_outcome = 'NORMAL' AND test_outcome = 'SURVIVED'")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", help=f"targets to run (default: all): {', '.join(TARGETS)}")
    parser.add_argument("--list", action="store_true", help="list the targets and their tests, then exit")
    parser.add_argument("--sample", type=int, help="run a random sample of this many mutants per target")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sample")
    parser.add_argument("--sessions", type=Path, default=ROOT / ".mutation", help="where sessions are kept")
    parser.add_argument("--fresh", action="store_true", help="discard earlier sessions of these targets")
    parser.add_argument("--report-only", action="store_true", help="print the sessions' results, run nothing")
    parser.add_argument("--prepare-only", action="store_true", help="make the sessions and count mutants, run none")
    parser.add_argument("--retest-survivors", action="store_true",
                        help="forget the survivors' results (after adding tests) so only they run again")
    args = parser.parse_args()
    if args.list:
        for name, target in TARGETS.items():
            scope = f" ({', '.join(target.functions)})" if target.functions else ""
            keyword = f" -k '{target.keyword}'" if target.keyword else ""
            print(f"{name}: {target.path(ROOT)}{scope} <- {' '.join(target.test_paths(ROOT))}{keyword}")
        return
    names = args.targets or list(TARGETS)
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        raise SystemExit(f"unknown target(s) {', '.join(unknown)}; see --list")
    args.sessions.mkdir(exist_ok=True)
    work = args.sessions / "work"
    if not args.report_only:
        # a fresh copy of the code and tests for every invocation: mutants are written only there
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        for part in ("src", "tests", "pyproject.toml"):
            source = ROOT / part
            if source.is_dir():
                shutil.copytree(source, work / part, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, work / part)
    # NUMBA_DISABLE_JIT: the kernels run as plain Python. A mutant of engines/kernels.py otherwise costs a full
    # numba recompile (measured: 56 s of a 85 s run of the kernels' tests, against 15 s CPU for the whole run
    # without the JIT); numba compiles the same Python semantics, so a mutant's effect is the same either way.
    # No plugin autoload: the dashboard's and browser plugins cost seconds at every start and no target needs them.
    environment = {"PYTHONPATH": f"{work / 'src'}:{work}", "NUMBA_CACHE_DIR": tempfile.mkdtemp(prefix="numba-"),
                   "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NUMBA_DISABLE_JIT": "1",
                   "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    os.environ.update(environment)
    summaries = {}
    for name in names:
        target = TARGETS[name]
        session = args.sessions / f"{name}.sqlite"
        if args.fresh:
            session.unlink(missing_ok=True)
        if args.report_only and not session.exists():
            print(f"{name}: no session yet")
            continue
        if args.retest_survivors and session.exists():
            forget_survivors(session)
        if not args.report_only:
            if not session.exists():
                prepare(name, target, work, session, args.sample, args.seed)
            if args.prepare_only:
                continue
            subprocess.run([sys.executable, "-m", "cosmic_ray.cli", "exec",
                            str(write_config(name, target, work)), str(session)], cwd=work, check=True)
        summaries[name] = tally(name, target, work, session)
    print("\nkilled share per target (equivalent mutants listed apart):")
    for name, result in summaries.items():
        tested = result.killed + len(result.survived)
        print(f"  {name:16s} {TARGETS[name].path(work):24s} killed {result.killed}/{tested} = {result.share:.0%}"
              f"  equivalent {len(result.equivalent)}  incompetent {result.incompetent}  pending {result.pending}")
    modules: dict[str, list[Tally]] = {}
    for name, result in summaries.items():
        if not TARGETS[name].functions:  # a function subset is counted in its module's own target
            modules.setdefault(TARGETS[name].path(work).split("/")[0], []).append(result)
    print("killed share per package/module (whole-module targets only):")
    for module, results in modules.items():
        killed = sum(r.killed for r in results)
        tested = killed + sum(len(r.survived) for r in results)
        print(f"  {module:24s} killed {killed}/{tested} = {killed / tested if tested else float('nan'):.0%}")
    for name, result in summaries.items():
        for function, operator, occurrence, line, text in result.survived:
            print(f"SURVIVED {name} {function}:{line} {operator} #{occurrence}: {text}")
        for where, reason in result.equivalent:
            print(f"EQUIVALENT {name} {where}: {reason}")


if __name__ == "__main__":
    main()
