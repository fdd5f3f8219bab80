"""Mutation testing of the core with cosmic-ray: which small, plausible bugs does the test suite miss?

For each target module (or the named functions in it) cosmic-ray plants one mutant at a time (an operator
swapped, a comparison loosened, a constant nudged, a loop skipped...), runs the fast tests relevant to that
module, and records whether they failed (killed) or passed (survived). Surviving mutants are either gaps in
the tests or equivalent (behaviour-preserving) mutants; the latter are listed in EQUIVALENT below, each with
its reason, and counted apart.

Not a CI step: about 3,300 selected mutants over all targets (kernels 1,418, simulate 818, model-compile 283,
summary 177, ode 120, design 124, diagnose 111, steps 76, report-numbers 73, sampling 58, coupling 41,
store-ranges 32, report-escaping 8, chart-escaping 1; model-effects 136 is a subset of model-compile). Measured
per mutant, on a two-core machine shared with two other jobs (wall, median): 4 s for most targets (a killed mutant
stops at the first failing test, 3 s; a survivor runs the target's whole selection, 5 to 25 s); before the
changes below, 6 s (summary) and 30 s (simulate), 20 s to 3 min in all. Full passes took 10 min (steps, 76
mutants), 19 min (ode, 120), 18 min (diagnose, 111), 6 min (model-coupling, 41), 3 min (report-numbers, 73) and
2 min (sampling, 58); then summary (177) 14 min, design (124) 14 min, store-ranges (32) 7 min and
report-escaping (8) 9 min, their warm-ups 12, 31, 68 and 95 s (a survivor runs that long, a killed mutant
less). Simulate's full pass (818) took about 70 min in two sittings (median 2 s a mutant, 4 s mean), model-compile's
(283) 10 min; the kernels (plain Python: median 5 s, mean 12-24 s, a mutant that loops stopped at 240 s; 1,418)
would take 5-8 h: sample them (--sample, then --widen across sittings). A rerun of the survivors after new tests
(--retest-survivors) takes minutes. Where the time goes, and what is done about it:

- pytest's start with aftermath's imports is 3.5 s, 3 s of it numpy, numba, scipy, xarray, pandas and
  pytest: a server imports those once and forks a child per mutant (see `serve`), which imports the
  (mutated) package afresh;
- the kernels' numba compile is 17 s: the JIT stays on with one cache, filled by an unmutated warm-up run
  that also proves the tests pass; only the kernels' own mutants run as plain Python (see `execute`);
- each target's tests are its fast, focused ones, the most focused file first (with -x a killed mutant
  stops there), and -k leaves out tests that compile uncached numba functions.

Run module by module, under nice:

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python scripts/mutation.py --list
    .venv/bin/python scripts/mutation.py --prepare-only                # count the mutants of every target
    .venv/bin/python scripts/mutation.py summary model-effects         # named targets, every mutant
    .venv/bin/python scripts/mutation.py kernels --sample 40 --seed 1  # a random 40 of the kernels' mutants
    .venv/bin/python scripts/mutation.py kernels --retest-survivors    # after new tests: rerun the survivors
    .venv/bin/python scripts/mutation.py kernels --widen 60 --seed 2   # 60 more of the sample's unsampled mutants
    .venv/bin/python scripts/mutation.py simulate --widen 100000       # the rest: a sample becomes the full pass

Everything runs in a copy of src/ and tests/ in the sessions folder (work/), so an interrupted run never leaves a
mutated file in the working tree. Sessions (cosmic-ray's SQLite files) stay in --sessions (default
.mutation/), so a rerun continues where it stopped; --fresh starts over.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import random
import select
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

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
    timeout: float = 60.0

    def path(self, root: Path) -> str:
        for candidate in self.module:
            if (root / PACKAGE / candidate).exists():
                return candidate
        raise SystemExit(f"none of {', '.join(self.module)} exists under {root / PACKAGE}")

    def test_paths(self, root: Path) -> list[str]:
        return [test for test in self.tests if (root / test.split("::")[0]).exists()]


ENGINE_TESTS = ("tests/test_closed_forms.py", "tests/test_engines.py")
SAMPLER_FLAGS = ("tests/test_engine_stress.py::test_binomial_flags_what_it_cannot_draw_instead_of_looping",
                 "tests/test_engine_stress.py::test_poisson_flags_what_it_cannot_draw_instead_of_overflowing",
                 "tests/test_engine_stress.py::test_binomial_draws_within_its_domain",
                 "tests/test_engine_stress.py::test_poisson_draws_up_to_its_limit")
# the kernel's rate checks reach the user only through simulate's re-check in Python: a run that must stop
KERNEL_RATE_CHECKS = (
    "tests/test_engine_stress.py::test_a_nan_rate_in_a_cell_with_people_still_stops_the_run",
    "tests/test_engine_stress.py::test_rate_errors_name_stratum_replicate_sample_and_the_set_or_policy_behind_them")
# the deterministic engine's replicates side by side: each lane's numbers against the step-by-step engine's
LANE_KERNEL = ("tests/test_engines.py::"
               "test_the_deterministic_stretch_kernel_gives_each_replicate_the_numbers_it_has_alone")
TARGETS = {
    # the samplers' NaN flags, each in a process of its own (a mutant that loops forever is killed by the time limit)
    "kernels": Target(("engines/kernels.py",), ("tests/test_competing_exits.py", "tests/test_closed_forms.py",
                                                "tests/test_samplers.py", "tests/test_boundary_totals.py",
                                                "tests/test_engine_edges.py", "tests/test_run_plumbing.py",
                                                *SAMPLER_FLAGS, *KERNEL_RATE_CHECKS, LANE_KERNEL),
                      timeout=240.0),
    # conformance last: the only fast tests with sub-steps (a sampled pass left every sub-step mutant alive without)
    "simulate": Target(("engines/simulate.py",), (
        "tests/test_run_plumbing.py", "tests/test_boundary_totals.py", "tests/test_engine_edges.py", *ENGINE_TESTS,
        "tests/test_conformance.py",
        "tests/test_submodels.py::test_a_sub_model_sees_each_steps_moved_persons_and_its_starting_counts",
        "tests/test_homefront.py::test_the_home_grown_populations_books_balance",
        "tests/test_network.py::test_weights_by_origin_shape_where_each_origin_goes",
        "tests/test_engine_stress.py::test_a_nan_initial_count_stops_the_run_naming_compartment_stratum_replicate_and_value")),
    "steps": Target(("engines/steps.py",), ("tests/test_coarse_step.py", "tests/test_conformance.py",
                                            "tests/test_engines.py")),
    "ode": Target(("engines/ode.py",), ("tests/test_ode_engine.py", "tests/test_conformance.py",
                                        "tests/test_closed_forms.py")),
    # not the stress file's sampler tests: they compile uncached numba functions (seconds per mutant) and test kernels
    "diagnose": Target(("engines/diagnose.py",), ("tests/test_diagnose.py", "tests/test_engine_stress.py",
                                                  "tests/test_engines.py", "tests/test_coarse_step.py"),
                       keyword="not binomial and not poisson_flags and not poisson_draws and not truncated"),
    "model-compile": Target(("model/compile.py",), (
        "tests/test_stable_ids.py", "tests/test_compile_edges.py", "tests/test_closed_forms.py",
        "tests/test_engines.py", "tests/test_scenario_groups.py",
        "tests/test_shipped_posterior.py::test_the_model_hash_covers_numbers_and_structure_not_prose")),
    "model-effects": Target(("model/compile.py",), ("tests/test_compile_edges.py", "tests/test_closed_forms.py"),
                            functions=("apply_effect", "parameters_at", "_active_steps", "ordered_effects",
                                       "_schedule_arrays", "_policy_strengths")),
    "model-coupling": Target(("model/coupling.py",), ("tests/test_cell_sums.py", "tests/test_network.py",
                                                      "tests/test_submodels.py")),
    "summary": Target(("summary.py",), ("tests/test_summary.py", "tests/test_helpers.py", "tests/test_closed_forms.py",
                                        "tests/test_engines.py", "tests/test_lean.py"),
                      keyword="test_summary or quantile or band or summarise or block"),
    "sampling": Target(("experiments/sampling.py",), ("tests/test_experiments.py",),
                       keyword="latin or sampling or draws or members_of_a_sample or design_does_not"),
    "design": Target(("experiments/design.py",), ("tests/test_design.py", "tests/test_experiments.py",
                                                   "tests/test_store.py")),
    "store-ranges": Target(("store/database.py",), ("tests/test_store.py", "tests/test_store_interrupt.py"),
                           functions=("write_range", "completed", "load_series", "range_table", "transaction",
                                      "interrupts_as_ctrl_c")),
    # report/numbers.py became aftermath/formatting.py (issue 15): the target follows either
    "report-numbers": Target(("report/numbers.py", "formatting.py"), ("tests/test_formatting.py",
                                                                       "tests/test_report.py"),
                             keyword="rounded or sign or formatting or number or band or span"),
    "report-escaping": Target(("report/html.py",), ("tests/test_report.py",),
                              functions=("script_json", "_template", "_labelled")),
    "chart-escaping": Target(("report/svgchart.py",), ("tests/test_report.py",), functions=("esc",),
                             keyword="markup or svg or fan"),
}

# Surviving mutants that cannot change behaviour: (target, function, source line, mutated line), both lines
# stripped -> reason. Keyed by text, not by line number or occurrence, so the list survives edits elsewhere.
WORST = 'worst = {"value": -1.0, "step": 0, "cell": 0, "column": 0}'
SIMULATE_ONCE = 'simulate(model, replicates=1, engine="deterministic", keep_compartments=False, probe=probe)'
STRATUM = ('f"{dim}={labels[i]}" for (dim, labels), i in zip(model.dims.items(), index, strict=True) '
           "if dim in layout.dims")
PLAIN = "decimals = max(0, digits - 1 - math.floor(math.log10(abs(rounded))))"
COUNT = 'text = _plain(whole, digits) if abs(whole) >= 1000 else f"{whole:,d}"'
SHARE = ('text = (f"{percent:.0f}" if abs(percent) >= 10 or round(percent) == percent else _plain(percent, 2)) '
         '+ "%"')
DERIVED = "_derived: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)"
BLOCK = ("block = int(np.clip(BLOCK_BYTES // max(8 * (model.steps + 1) * recorded_numbers(model), 1), 1, "
         "replicates))")
JOIN = ('return {name: xr.concat(pieces, dim="replicate") if len(pieces) > 1 else pieces[0]')
ZIP_DATES = "missing = [str(d) for d, c in zip(dates, chosen, strict=True) if c not in times]"
STRATA = ("strata = sum(math.prod(len(scenario.dimensions.get(d, ())) or 1 for d in o.by) "
          "for o in scenario.outcomes.values())")
NO_STRETCH = ("_NO_STRETCH = (np.empty((0, 0, 0)), np.empty((0, 0, 0)), (np.zeros(1, np.int64), "
              "np.zeros(0, np.int64)),")
FINITE_RATES = "finite = np.where(np.isfinite(rates), rates, 0.0)  # empty cells' 0/0 move no one; others fail below"
SPAN_RECORD = ("stochastic, _fresh_groups(tables, due), COUNT_CEILING, True, np.empty((0, 0, 0)) if record is None "
               "else record,")
FRESH = ("return np.logical_or.reduceat(due[tables.group_flows], tables.group_start[:-1]) if groups else "
         "due[:0]")
EVENT_SHARE = ("fraction = np.broadcast_to(event.fraction(environment), (replicates, *layout.aligned))"
               ".reshape(replicates, -1)")
SCHEDULE_INDEX = 'return values[np.clip(np.searchsorted(at, months, side="right") - 1, 0, len(at) - 1)]'
NO_QUICK_ACCEPTANCE = (
    "v_r bounds the rejection sampler's quick acceptance, a region inside the exact test's (Hormann 1993): a v_r "
    "below 0 sends every draw to the exact test, which accepts the same draws, only slower")
SMALLER_QUICK_ACCEPTANCE = (
    "a smaller v_r shrinks the rejection sampler's quick acceptance, a region inside the exact test's (tested in "
    "test_samplers): every (u, v) still gives the same k, accepted or rejected as before; only slower")
PTRS = "return -0.059 + 0.02483 * b, b, 1.1239 + 1.1328 / (b - 3.4), 0.9277 - 3.6224 / (b - 2.0)"
INVERSION_BOUND = "bound = min(n, n * p + 10.0 * math.sqrt(n * p * q + 1.0))"
RUNAWAY = ("the inversion's runaway path (rounding leaves u above every probability summed up to the bound: below "
           "1e-20 a draw, the terms past 10 sd being smaller)")
SPAN_RESET = "exited[step + 1 : step + length + 1] = 0.0"
AFTER_A_FLAGGED_STRETCH = (
    "after a flagged stretch the step-by-step rerun always raises ModelError at the flagged cell (the same kernel, "
    "the same numbers), so what this resets or where later stretches start is never returned")
SPAN_FROM = "span_from = 0  # spans start at this step or later (after a span that flagged an error, see _span)"
ODE_BLOCK = 'if engine == "ode" and block_size is None:'
BLOCK_CLIP = "return int(np.clip(RECORD_BUDGET_BYTES // max(per_replicate, 1), 16, 1024))"
SOURCE_ORIGIN = ("[model.compartments[f.source].offset if f.source is not None else -1 for f in flows], "
                 "np.int64")
NO_FLOWS = "to_cells = np.concatenate([f.to_cells for f in model.flows]) if model.flows else np.zeros(0, np.int64)"
KERNEL_STATE = ("np.empty((replicates, 2, model.cells)), np.empty((replicates, 2, model.rate_cells)), "
                "np.zeros((replicates, 2)),")
EPOCHS = ('epochs = model.derived("parameter_epochs", lambda: [model.parameter_epoch(s) for s in '
          'range(model.steps + 1)])')
EXPOSURE_MEAN = ("mean = state * np.where(exposure > 1e-9, -np.expm1(-exposure) / np.maximum(exposure, 1e-300), "
                 "1 - exposure / 2)")
JOINED = "data = pieces[0][name] if len(pieces) == 1 else np.concatenate([piece[name] for piece in pieces])"
COUPLED_ZIP = "for coupling, coupling_state in zip(model.couplings, coupled, strict=True):"
EQUIVALENT: dict[tuple[str, str, str, str], str] = {
    **{("steps", "coarse_step", WORST, WORST.replace(old, new)):
       "placeholders: the first probe always overwrites them (every hazard >= 0 > -1)"
       for old, new in (('"value": -1.0', '"value": - 2.0'), ('"step": 0', '"step": 1'), ('"step": 0', '"step": -1'),
                        ('"cell": 0', '"cell": 1'), ('"cell": 0', '"cell": -1'), ('"column": 0', '"column": 1'),
                        ('"column": 0', '"column": -1'))},
    **{("steps", "probe", "total = np.zeros((rates.shape[0], model.cells))",
        f"total = np.zeros((rates.shape[ {axis}], model.cells))"):
       "the check runs one replicate: the extra rows get the same broadcast hazards, the maxima are unchanged"
       for axis in (1, -1)},
    ("steps", "coarse_step", SIMULATE_ONCE, SIMULATE_ONCE.replace("replicates=1", "replicates= 2")):
        "the deterministic engine gives every replicate the same rates: the maxima are unchanged",
    ("steps", "coarse_step", SIMULATE_ONCE, SIMULATE_ONCE.replace("keep_compartments=False", "keep_compartments=True")):
        "the check reads only the probe; keeping the compartments costs memory, changes no figure",
    ("steps", "coarse_step", STRATUM, STRATUM.replace("strict=True", "strict=False")):
        "the cell's index has one entry per model dimension: the lengths always match",
    **{(target, "", "@dataclass(frozen=True)", "@dataclass(frozen=False)"):
       "nothing assigns to these records (CoarseStep, OdeOptions, BlockContext...); frozen guards future misuse"
       for target in ("steps", "ode", "diagnose")},
    ("ode", "flow_system", "return FlowSystem(leaves, np.where(leaves, source_cells, 0), balance)",
     "return FlowSystem(leaves, np.where(leaves, source_cells, -1), balance)"):
        "an inflow's source cell is a placeholder: np.where(per_capita, ..., 1.0) never reads it, and -1 indexes too",
    ("ode", "integrate_step", "end = solution.y[:, 0].reshape(replicates, size)",
     "end = solution.y[:, -1].reshape(replicates, size)"):
        "t_eval=[duration] gives one column: 0 and -1 are the same",
    **{("ode", "integrate_step", 'extra = {"lband": size - 1, "uband": size - 1}', narrower):
       "within tolerance: a band one too narrow only worsens the Newton iteration's Jacobian; the error control "
       "(rtol, atol) still holds the solution"
       for narrower in ('extra = {"lband": size - 2, "uband": size - 1}',
                        'extra = {"lband": size - 1, "uband": size - 2}')},
    **{("ode", function, f"{text}.reshape(-1)", f"{text}.reshape(- 2)"):
       "numpy reads any negative size as 'the rest', as it reads -1"
       for function, text in (("derivative", "return out"),
                              ("integrate_step", "start = np.concatenate([state, np.zeros((replicates, width))], "
                                                 "axis=1)"))},
    ("ode", "derivative", "current = np.maximum(block[:, :cells], 0.0)",
     "current = np.maximum(block[:, :cells], -1.0)"):
        "within tolerance: the solver takes a stock below zero only by round-off of the order of atol, so the "
        "clip at -1 lets a flux of a rate times -atol through, which the error control (rtol, atol) absorbs",
    ("ode", "integrate_step", "return np.maximum(end[:, :cells], 0.0), np.maximum(end[:, cells:], 0.0)",
     "return np.maximum(end[:, :cells], 0.0), np.maximum(end[:, cells:], -1.0)"):
        "within tolerance: the persons moved are integrals from 0 of a flux >= 0 (stocks clipped, rates and "
        "inflows >= 0), below zero only by the solver's round-off (order atol), never by a whole person",
    ("ode", "integrate_step", "if not solution.success or solution.y.shape[1] != 1:",
     "if not solution.success and solution.y.shape[1] != 1:"):
        "a solver fails before the end, where the one t_eval column lies, so a failure always leaves 0 columns",
    **{("ode", "", "JACOBIAN_BUDGET_BYTES = 256_000_000", f"JACOBIAN_BUDGET_BYTES = {budget}"):
       "a batch one run smaller or larger at most; results do not depend on the batch (test_engines checks that)"
       for budget in (255999999, 256000001)},
    ("diagnose", "_involved", "cell = [w if n > 1 else 0 for w, n in zip(where, array.shape[1:], strict=True)]",
     "cell = [w if n > 1 else -1 for w, n in zip(where, array.shape[1:], strict=True)]"):
        "an axis of extent 1 has one element: 0 and -1 index the same",
    ("diagnose", "_involved", "cell = [w if n > 1 else 0 for w, n in zip(where, array.shape[1:], strict=True)]",
     "cell = [w if n > 1 else 0 for w, n in zip(where, array.shape[1:], strict=False)]"):
        "parameter arrays are aligned to the model's dimensions, as `where` is: the lengths always match",
    **{("model-coupling", "cell_sums", "labels: int = 1) -> tuple[np.ndarray, np.ndarray]:",
        f"labels: int = {labels}) -> tuple[np.ndarray, np.ndarray]:"):
       "every caller that sums by a dimension passes its labels; with `by` None the default is not read"
       for labels in (0, 2)},
    ("model-coupling", "cell_sums", "rows[0].append(cells)", "rows[ -1].append(cells)"):
        "with `by` None there is one row: 0 and -1 are the same",
    ("model-coupling", "cell_sums", "label = np.indices(shape).reshape(len(shape), -1)[axis]",
     "label = np.indices(shape).reshape(len(shape), - 2)[axis]"):
        "numpy reads any negative size as 'the rest', as it reads -1",
    **{("ode", "batch_size", "per_run = 8 * size * (3 * size + 22)", larger):
       "a memory estimate changed by up to 12%: other batch sizes, the same results (test_engines: results do not "
       "depend on the block size), and ODEPACK's need still within the budget (test_ode_engine)"
       for larger in ("per_run = 9 * size * (3 * size + 22)", "per_run = 8 * size * (3 * size + 23)",
                      "per_run = 8 * size * (3 * size + 21)")},
    **{("model-compile", "CompiledModel", DERIVED, DERIVED.replace(f"{flag}=False", f"{flag}=True")): reason
       for flag, reason in (("init", "nothing passes the cache to the constructor"),
                            ("repr", "only the text of repr(model) changes; nothing reads it"),
                            ("compare", "no code compares compiled models"))},
    ("model-compile", "", "@dataclass(frozen=True)", "@dataclass(frozen=False)"):
        "nothing assigns to a compartment layout; frozen guards against future misuse",
    ("model-compile", "initial_state",
     "state[:, layout.offset : layout.offset + layout.size] = block.reshape(block.shape[0], -1)",
     "state[:, layout.offset : layout.offset + layout.size] = block.reshape(block.shape[0], - 2)"):
        "numpy reads any negative size as 'the rest', as it reads -1",
    **{("report-numbers", "_plain", PLAIN, more):
       "one decimal more of a value already rounded to `digits` figures: a trailing 0, which _plain strips"
       for more in ("decimals = max(0, digits + 1 - math.floor(math.log10(abs(rounded))))",
                    "decimals = max(0, digits * 1 - math.floor(math.log10(abs(rounded))))",
                    "decimals = max(0, digits - 1 * math.floor(math.log10(abs(rounded))))",
                    "decimals = max(0, digits ** 1 - math.floor(math.log10(abs(rounded))))",
                    "decimals = max( 1, digits - 1 - math.floor(math.log10(abs(rounded))))",
                    "decimals = max(0, digits - 0 - math.floor(math.log10(abs(rounded))))")},
    **{("report-numbers", "number", COUNT, COUNT.replace(">= 1000", edge)):
       "999, 1,000 and 1,001 print the same either way (three significant figures are whole there)"
       for edge in ("> 1000", ">= 1001", ">= 999")},
    **{("report-numbers", "number", SHARE, SHARE.replace(">= 10 ", edge)):
       "from 10% to 11% two significant figures are whole percent, as '.0f' prints"
       for edge in ("> 10 ", ">= 11 ")},
    ("sampling", "expand_draws", "array = draw.reshape(-1, *[1] * values.ndim) * values[None]",
     "array = draw.reshape(- 2, *[1] * values.ndim) * values[None]"):
        "numpy reads any negative size as 'the rest', as it reads -1",
    ("sampling", "unit_samples", "if dimensions == 0:", "if dimensions == -1:"):
        "with no dimension qmc.LatinHypercube(d=0) and rng.random((samples, 0)) give the same empty array",
    **{("summary", function, f"{text}-1{end}", f"{text}- 2{end}"):
       "numpy reads any negative size as 'the rest', as it reads -1"
       for function, text, end in (("quantiles", "flat = moved.reshape(moved.shape[0], ", ")"),
                                   ("bands", "cells = np.indices(data.shape[1:]).reshape(data.ndim - 1, ", ")"))},
    ("summary", "", "if TYPE_CHECKING:", "if not TYPE_CHECKING:"):
        "the import is for annotations only (postponed by `from __future__ import annotations`); at run time it "
        "imports without a cycle and is unused",
    **{("summary", "", "BLOCK_BYTES = 96_000_000", f"BLOCK_BYTES = {budget}"):
       "a block one replicate larger or smaller at most, and only where a replicate's bytes divide 96,000,000; "
       "the numbers do not depend on the block (test_lean, test_summary: blocks equal the whole run)"
       for budget in (95999999, 96000001)},
    **{("summary", "run_in_blocks", BLOCK, BLOCK.replace("), 1), 1,", f"), {floor}), 1,")):
       "a replicate's record is at least 8 * 2 * 2 bytes (two times, two boundary counts): the floor of 1 that "
       "guards the division never binds"
       for floor in (0, 2)},
    **{("summary", "run_in_blocks", JOIN, JOIN.replace(old, new)):
       "with one piece, xr.concat of that piece alone gives the same values, dims and coordinates (a copy)"
       for old, new in (("> 1", ">= 1"), ("> 1", "> 0"))},
    ("summary", "run_in_blocks", JOIN, JOIN.replace("pieces[0]", "pieces[ -1]")):
        "the branch is taken with one piece only: -1 and 0 are the same",
    ("summary", "bands", ZIP_DATES, ZIP_DATES.replace("strict=True", "strict=False")):
        "`chosen` is made from `dates`, one month each: the lengths always match",
    ("summary", "bands", "strict=True)})", "strict=False)})"):
        "data.dims[2:] and cells[1:] both count the outcome's strata dims: the lengths always match",
    ("summary", "at_dates", "return outcomes.sel(time=np.unique(chosen)).copy(deep=True)",
     "return outcomes.sel(time=np.unique(chosen)).copy(deep=False)"):
        "sel with an array of dates already copies every variable's values (numpy fancy indexing; every outcome "
        "has a time axis); a shallow copy shares only small coordinate arrays, never the block's series",
    ("design", "", "@dataclass(frozen=True)", "@dataclass(frozen=False)"):
        "nothing assigns to an Arm, an Experiment or a Layout; frozen guards future misuse",
    **{("design", "_check_size", STRATA, STRATA.replace("or 1 for", f"or {other} for")):
       "validation requires every `by` dimension to be declared with at least one stratum: the fallback is never read"
       for other in (0, 2)},
    ("chart-escaping", "esc", "return escape(text, quote=True)", "return escape(text, quote=False)"):
        "esc writes element text only (tick numbers, legends, titles, tooltips), never an attribute value: a quote "
        "there is plain text",
    ("kernels", "", "@numba.njit(cache=True)", "@numba.njit(cache=False)"):
        "the on-disk cache only saves compile time; the compiled code is the same",
    **{(
        "kernels", "cell_key", "return _mix(stream_part ^ (np.uint64(cell) + GOLDEN * np.uint64(3)))", mutant):
       "another constant offset in the key hash: cells keep distinct keys and uniform draws; only the stream changes"
       for mutant in ("return _mix(stream_part ^ (np.uint64(cell) - GOLDEN * np.uint64(3)))",
                      "return _mix(stream_part ^ (np.uint64(cell) + GOLDEN * np.uint64( 4)))",
                      "return _mix(stream_part ^ (np.uint64(cell) + GOLDEN * np.uint64( 2)))",
                      "return _mix(stream_part ^ (np.uint64(cell) + GOLDEN + np.uint64(3)))")},
    ("simulate", "_fill_rates",
     "mean = state * np.where(exposure > 1e-9, -np.expm1(-exposure) / np.maximum(exposure, 1e-300), 1 - exposure / 2)",
     "mean = state * np.where(exposure >= 1e-9, -np.expm1(-exposure) / np.maximum(exposure, 1e-300), "
     "1 - exposure / 2)"):
        "at exposure 1e-9 both branches agree to 1e-18 (the series 1 - x/2 against (1 - exp(-x)) / x)",
    ("simulate", "rate_epochs",
     'effects = [k for k, e in enumerate(model.effects) if e.kind == "parameter" and e.target in names]',
     'effects = [k for k, e in enumerate(model.effects) if e.kind == "parameter" or e.target in names]'):
        "an effect on another parameter only splits a rate's epochs further: the rate is evaluated again at "
        "more steps and gives the same values",
    ("simulate", "_run_block", SPAN_FROM, SPAN_FROM.replace("= 0", "= -1")):
        "stretches may start at any step from 0 on, and -1 allows the same steps",
    **{("simulate", "simulate", ODE_BLOCK, mutant): "which block size a run uses changes no number "
       "(tests/test_engines.py: any block size gives identical arrays), only its memory"
       for mutant in (ODE_BLOCK.replace("==", "!="), ODE_BLOCK.replace("if engine", "if not engine"),
                      ODE_BLOCK.replace(" and ", " or "))},
    **{("simulate", "_block_size", BLOCK_CLIP, BLOCK_CLIP.replace("per_replicate, 1)", f"per_replicate, {floor})")):
       "per_replicate is at least 8 x 4 bytes, so the floor against a division by 0 never applies"
       for floor in (0, 2)},
    **{("simulate", "", "RECORD_BUDGET_BYTES = 256_000_000", f"RECORD_BUDGET_BYTES = {budget}"):
       "a budget one byte apart: the block size changes by at most one replicate and no number with it "
       "(tests/test_run_plumbing.py pins the block size for any budget)" for budget in (255999999, 256000001)},
    **{("simulate", "", "REPLICATES_PER_THREAD = 32", f"REPLICATES_PER_THREAD = {count}"):
       "how many threads a run uses changes no number (tests/test_engines.py: identical arrays for any thread "
       "count), only its speed" for count in (31, 33)},
    ("simulate", "_substeps", "np.int64(step * substeps + k),", "np.int64(step * substeps - k),"):
        "another numbering of sub-steps, still one key index per sub-step and none shared between steps: the draws "
        "change, their distribution and the run's reproducibility do not",
    **{("simulate", "_substeps", "if substeps > 1:", f"if substeps {mutant}:"):
       "with one sub-step `total` is `moved` itself, so moved[...] = total copies an array onto itself"
       for mutant in (">= 1", "> 0")},
    **{("simulate", "kernel_tables", SOURCE_ORIGIN, SOURCE_ORIGIN.replace("else -1", f"else {mutant}")):
       "a source flow's origin is never read: the kernel draws inflows from `source_offsets` and takes origins "
       "only for groups of outflows" for mutant in ("+1", "- 2", "- 0")},
    ("simulate", "flow_cells", "leaves = np.full(model.rate_cells, -1, dtype=np.int64)",
     "leaves = np.full(model.rate_cells, - 2, dtype=np.int64)"):
        "the ODE system tells a source by leaves < 0 (ode.flow_system), so any negative marks one",
    **{("simulate", function, line, line.replace("np.zeros(0,", f"np.zeros( {size},")):
       "a model without flows cannot be built (validation: flows is a required field), so this branch never runs"
       for function, line in (("kernel_tables", NO_FLOWS), ("flow_cells", NO_FLOWS.replace("to_cells =", "enters =")))
       for size in (1, -1)},
    ("simulate", "matrix", "cell = np.concatenate(cells) if cells else np.zeros(0, np.int64)",
     "cell = np.concatenate(cells) if cells else np.zeros( 1, np.int64)"):
        "with no terms every row of indptr is empty, so no index is read",
    ("simulate", "_fill_rates", "if evaluate and flow.source is not None:", "if evaluate or flow.source is not None:"):
        "a rate that is not due depends only on parameters and schedules of the same epoch (rate_epochs): "
        "evaluating it again gives the value it holds, only slower",
    **{("simulate", "_fill_rates", FINITE_RATES, FINITE_RATES.replace("rates, 0.0)", f"rates, {value})")):
       "a rate that is not finite sits in an empty cell (whose mean occupancy is 0 whatever its exposure) or "
       "stops the run (diagnose.check_rates)" for value in ("-1.0", "1.0")},
    ("simulate", "_spans", "for step in range(model.steps - 2, -1, -1):",
     "for step in range(model.steps - 2, - 2, -1):"):
        "step -1 looks at step 0, where every rate is evaluated (rate_changes), so it never extends a stretch",
    **{("simulate", "_span", SPAN_RECORD, SPAN_RECORD.replace("(0, 0, 0)", shape)):
       "an empty record (no steps) is never written, whatever its other sizes" for shape in ("(0, 1, 0)", "(0, 0, 1)")},
    **{("simulate", "_fresh_groups", FRESH, FRESH.replace("due[:0]", f"due[: {end}]")):
       "with no groups of outflows the kernel reads no entry of `fresh`" for end in ("-1", "1")},
    **{("simulate", "_run_block", KERNEL_STATE, KERNEL_STATE.replace(old, new)):
       "a third row of working space the kernel never touches (it writes rows 0 and 1 only)"
       for old, new in (("(replicates, 2, model.cells)", "(replicates, 3, model.cells)"),
                        ("(replicates, 2, model.rate_cells)", "(replicates, 3, model.rate_cells)"),
                        ("np.zeros((replicates, 2))", "np.zeros((replicates, 3))"))},
    ("simulate", "_run_block", EPOCHS, EPOCHS.replace("model.steps + 1)", "model.steps + 2)")):
        "one epoch more than the steps: the last is never looked up",
    ("simulate", "_run_block", "while step < steps:", "while step <= steps:"):
        "the loop leaves at `if step == steps: break` before the condition is tested again",
    ("simulate", "_fill_rates", EXPOSURE_MEAN, EXPOSURE_MEAN.replace("1e-300)", "-1.0)")):
        "np.where takes the series 1 - x/2 below an exposure of 1e-9, so the guarded division's value is "
        "discarded wherever the guard differs",
    ("simulate", "joined", JOINED, JOINED.replace("pieces[0][name]", "pieces[ -1][name]")):
        "with one piece, pieces[-1] is pieces[0]",
    ("simulate", "joined", JOINED, JOINED.replace("len(pieces) == 1", "len(pieces) == 0")):
        "concatenating one piece gives its values (a copy)",
    ("simulate", "simulate", ODE_BLOCK, ODE_BLOCK.replace("block_size is None", "block_size is not None")):
        "which block size a run uses changes no number (tests/test_engines.py: any block size gives identical "
        "arrays), only its memory",
    ("simulate", "_fill_rates", "for flow, view, evaluate in zip(model.flows, views, due, strict=True):",
     "for flow, view, evaluate in zip(model.flows, views, due, strict=False):"):
        "the views and the due flags are built one per flow: the lengths always match",
    ("simulate", "_run_block", "break", "continue"):
        "at `if step == steps` the loop's own condition (step < steps) ends it as break does",
    ("simulate", "_substeps", "total = moved if substeps == 1 else np.zeros_like(moved)",
     "total = moved if substeps == 0 else np.zeros_like(moved)"):
        "with one sub-step `total` is never read (it is summed into and copied back only for several sub-steps)",
    ("simulate", "_apply_event", EVENT_SHARE,
     EVENT_SHARE.replace("reshape(replicates, -1)", "reshape(replicates, - 2)")):
        "numpy reads any negative size in a reshape as 'the rest', as it reads -1",
    ("simulate", "_apply_event", "if event.to_cells[0] < 0:", "if event.to_cells[ -1] < 0:"):
        "an event's target cells lie all in one compartment (>= 0) or all in a sink (-1)",
    ("simulate", "", "@dataclass(frozen=True)", "@dataclass(frozen=False)"):
        "nothing assigns to these tables; frozen guards against future misuse",
    **{("simulate", function, COUPLED_ZIP, COUPLED_ZIP.replace("strict=True", "strict=False")):
       "model.couplings and their states are built one for one (`start` per coupling): the lengths always match"
       for function in ("_run_block", "_environment")},
    ("kernels", "_ptrs_constants", PTRS, PTRS.replace("0.9277 - 3.6224", "-0.07230000000000003 - 3.6224")):
        NO_QUICK_ACCEPTANCE,
    ("kernels", "_btrs_constants", "v_r = 0.92 - 4.2 / b", "v_r = 0.92 - 4.2 - b"):
        NO_QUICK_ACCEPTANCE,
    ("kernels", "_step", "if leaving <= 0.0:", "if leaving < 0.0:"):
        "with no leaver the split loop moves 0 persons to each flow (binomial(0, share) is 0) and breaks: only slower",
    ("kernels", "_expected_exits", "error[lane] |= 0 if count >= 0.0 and count <= ceiling else COUNT_INVALID",
     "error[lane] |= 0 if count >= 0.0 or count <= ceiling else COUNT_INVALID"):
        "an expected count here is 0, what is left, or leaving x h / H with all three positive: never negative and "
        "never more than the cell's count, which the previous step held within the ceiling; so only NaN fails the "
        "check, and it fails both",
    ("kernels", "_expected_exits", "error[lane] |= 0 if count >= 0.0 and count <= ceiling else COUNT_INVALID",
     "error[lane] |= 0 if count >= -1.0 and count <= ceiling else COUNT_INVALID"):
        "an expected count here is 0, what is left, or leaving x h / H with all three positive: never negative, so "
        "only NaN and counts past the ceiling fail the check, and they fail both",
    ("kernels", "_step", "if remaining <= 0.0:", "if remaining <= -1.0:"):
        "remaining is a whole number (the exits less whole draws, each at most what remains), so never in (-1, 0); "
        "at 0 the later flows each take binomial(0, share) = 0 persons: only slower",
    ("kernels", "_step", "if not (rate >= 0.0 and rate < np.inf):", "if not (rate >= 0.0 and rate <= np.inf):"):
        "an infinite inflow also moves a count past COUNT_CEILING (deterministic: inf; stochastic: Poisson's NaN "
        "flag), so the step is flagged either way, and the diagnosis, which checks rates first, names the same rate "
        "(checked by hand in both engines: the same message)",
    ("kernels", "_expected_exits",
     "remaining[i, lane] = expected if n > 0.0 and p > 0.0 and expected > 0.0 else 0.0",
     "remaining[i, lane] = expected if n > 0.0 and p > 0.0 and expected > 0.0 else -1.0"):
        "remaining only gates `left <= 0.0`: -1 and 0 both mean no exits from the cell",
    ("kernels", "_ptrs_constants", PTRS, PTRS.replace("3.6224 / (b - 2.0)", "3.6224 ** (b - 2.0)")):
        NO_QUICK_ACCEPTANCE,
    ("kernels", "_cache_group", "split_cache[1, cell] = binomial_constant(share) if stochastic else 0.0",
     "split_cache[1, cell] = binomial_constant(share) if stochastic else -1.0"):
        "the deterministic engine never reads split_cache[1] (only the stochastic draws use the share's constant)",
    ("kernels", "advance_span", "if t < steps - 1:", "if t < steps + 1:"):
        "at a stretch's last step the caller records and reduces the same state again at the top of its loop",
    ("kernels", "advance_span", "if record.shape[0]:", "if record.shape[ -1]:"):
        "a record is empty in all its sizes or in none (it holds the compartments' cells, at least one)",
    ("kernels", "poisson", "if k < 0.0 or (us < 0.013 and v > us):", "if k < 0.0 or (us <= 0.013 and v > us):"):
        "us is a multiple of 2^-54 and 0.013 is not: the two never compare equal",
    **{("kernels", function, "if us >= 0.07 and v <= v_r:", "if us > 0.07 and v <= v_r:"):
       "us is a multiple of 2^-54 and 0.07 is not: the two never compare equal"
       for function in ("_binomial_btrs", "poisson")},
    ("kernels", "binomial", "if n <= 0.0 or p <= 0.0:", "if n <= 0.0 or p < 0.0:"):
        "p = 0 then goes to inversion, whose first probability (1 - 0)^n = 1 takes every uniform: 0 again",
    ("kernels", "_expected_step", "scratch, sent = np.empty((2, flow_cells.max(), lanes)), np.empty(lanes)",
     "scratch, sent = np.empty(( 3, flow_cells.max(), lanes)), np.empty(lanes)"):
        "a third row of working space that _expected_exits never touches (it uses rows 0 and 1)",
    ("kernels", "_binomial_inversion", "while u > px and x <= bound:", "while u > px and x < bound:"):
        "x is a whole number: the two differ only where bound is one (bound = n) and the walk reaches n with u still "
        "above the pmf left, which the pmf summing to 1 allows only by rounding (about 1e-16 a draw)",
    **{("kernels", "_binomial_inversion", INVERSION_BOUND, INVERSION_BOUND.replace("10.0", sds)):
       "the walk's runaway cutoff, n p + 10 sd (here 9 or 11): it decides only draws that far out, which the "
       "inversion range (n p < 10) makes rarer than 1e-13 a draw"
       for sds in ("9.0", "11.0")},
    ("kernels", "advance_span", "break", "continue"):
        "a stretch's rates do not change, so a flagged step (an invalid rate, a count past the ceiling that grows "
        "every step) flags again at each later step and the caller reruns the stretch step by step as before; it "
        "differs only if a redraw from the same counts fell back under the ceiling (counts near 1e10)",
    ("kernels", "_step", "if share >= 1.0:", "if share > 1.0:"):
        "at a share of exactly 1 the binomial branch returns its n without a draw (binomial: p >= 1 gives n)",
    **{("model-compile", "schedule_values", SCHEDULE_INDEX, SCHEDULE_INDEX.replace("len(at) - 1)", end)):
       "searchsorted(...) - 1 never exceeds len(at) - 1, so the clip's upper bound never binds"
       for end in ("len(at) + 1)", "len(at) * 1)", "len(at) ** 1)", "len(at) - 0)")},
    **{("model-compile", "CompiledOutcome", "factor: float = 1.0", f"factor: float = {value}"):
       "every compiled outcome is given its factor (_compile_outcome): the default is never used"
       for value in ("2.0", "0.0")},
    **{("model-compile", "CompiledModel", "substeps: int = 1", f"substeps: int = {value}"):
       "compile_model always sets substeps (from --substeps or time.substeps): the default is never used"
       for value in ("2", "0")},
    ("model-compile", "_target_cells", "return np.full(int(np.prod(shape)), -1, dtype=np.int64)",
     "return np.full(int(np.prod(shape)), - 2, dtype=np.int64)"):
        "a sink's cells are told by a negative index (the kernel: target >= 0; events: to_cells[0] < 0)",
    ("model-compile", "_target_cells",
     "return (layout.offset + np.broadcast_to(local, shape)).reshape(-1).astype(np.int64)",
     "return (layout.offset + np.broadcast_to(local, shape)).reshape(- 2).astype(np.int64)"):
        "numpy reads any negative size in a reshape as 'the rest', as it reads -1",
    ("model-compile", "_active_steps", "end = intervention.end if intervention.end is not None else months[-1]",
     "end = intervention.end if intervention.end is not None else months[- 2]"):
        "no step starts at the last reporting date, so an effect there moves nobody",
    ("kernels", "_binomial_inversion", INVERSION_BOUND, INVERSION_BOUND.replace("10.0 * math", "10.0 ** math")):
        f"10^x >= 10 x for x = sqrt(n p q + 1) >= 1, so the bound only rises: it matters only on {RUNAWAY}, which "
        "then sums a few more terms of about 0 before it draws again",
    ("kernels", "_binomial_inversion", "attempt += 1", "attempt += 2"):
        f"only on {RUNAWAY}: the retry takes the key's uniform 2 instead of 1, another independent uniform",
    ("kernels", "binomial", "return x if p <= 0.5 else n - x", "return x if p < 0.5 else n - x"):
        "at p = 1/2 exactly Binomial(n, 1/2) is symmetric: n - x has the distribution of x; only the stream changes",
    ("kernels", "_cache_group", "if f == last - 1 or hazard >= hazard_left:",
     "if f == last - 1 or hazard > hazard_left:"):
        "where hazard equals what is left of the cell's hazard, hazard / hazard_left is exactly 1 too; where both "
        "are 0 an earlier flow's share was 1 and took every leaver, so this share is read for no one",
    ("kernels", "_expected_exits",
     "remaining[i, lane] = expected if n > 0.0 and p > 0.0 and expected > 0.0 else 0.0",
     "remaining[i, lane] = expected if n > 0.0 and p > 0.0 or expected > 0.0 else 0.0"):
        "expected = n x probability, and counts are never negative: it is positive only where both factors are, "
        "and where both are but it underflows to 0 it gives 0 either way",
    ("kernels", "_expected_exits",
     "remaining[i, lane] = expected if n > 0.0 and p > 0.0 and expected > 0.0 else 0.0",
     "remaining[i, lane] = expected if n > 0.0 and p > 0.0 and expected >= 0.0 else 0.0"):
        "at expected = 0 both give 0",
    ("kernels", "_btrs_constants", "v_r = 0.92 - 4.2 / b", "v_r = -0.07999999999999996 - 4.2 / b"):
        NO_QUICK_ACCEPTANCE,
    ("kernels", "first_invalid", "flat = values.reshape(-1)", "flat = values.reshape(- 2)"):
        "numpy reads any negative size as 'the rest', as it reads -1",
    ("kernels", "poisson", "index = 0", "index = -1"):
        "the first try reads the key's uniforms -1 and 0 (uniform's sequence starts at its index + 1), then 1, 2, ...: "
        "distinct, independent uniforms as before; only the stream changes",
    **{("kernels", "_btrs_constants", "v_r = 0.92 - 4.2 / b", smaller): SMALLER_QUICK_ACCEPTANCE
       for smaller in ("v_r = 0.92 - 5.2 / b", "v_r = 0.92 / 4.2 / b")},
    ("kernels", "_step", "if share >= 1.0:", "if share >= 2.0:"):
        "a share is h / (what is left of H), at most 1: a share of exactly 1 then goes to binomial(remaining, 1.0), "
        "which returns remaining too (p >= 1 returns n before any draw)",
    **{("kernels", function, "index += 2", "index += 3"):
       "each try still reads two fresh uniforms of the key (index, index + 1), now skipping one between tries: "
       "independent uniforms as before; only the stream changes"
       for function in ("_binomial_btrs", "poisson")},
    **{("kernels", "replicate_key", "return _mix(_mix(seed + GOLDEN) ^ (np.uint64(replicate) + GOLDEN))", mutant):
       "another constant offset in the key hash: replicates keep distinct keys and uniform draws; only the stream "
       "changes"
       for mutant in ("return _mix(_mix(seed + GOLDEN) ^ (np.uint64(replicate) - GOLDEN))",
                      "return _mix(_mix(seed - GOLDEN) ^ (np.uint64(replicate) + GOLDEN))")},
    **{("kernels", "_ptrs_constants", PTRS, PTRS.replace("3.6224 / (b - 2.0)", smaller)): SMALLER_QUICK_ACCEPTANCE
       for smaller in ("3.6224 / (b / 2.0)", "3.6224 * (b - 2.0)")},
    ("kernels", "_btrs_constants", "v_r = 0.92 - 4.2 / b", "v_r = 0.92 - 4.2 * b"): NO_QUICK_ACCEPTANCE,
    ("kernels", "_binomial_btrs",
     "if math.log(v * alpha / (a / (us * us) + b)) <= _log_ratio_to_mode(k, n, m, r):",
     "if math.log(v * alpha / (a / (us * us) + b)) < _log_ratio_to_mode(k, n, m, r):"):
        "v is a continuous uniform (53-bit grid): the log of its product equals the bound with probability ~0",
    **{("kernels", "advance_span", "if t < steps - 1:", mutant):
       "the stretch's last row (step first_step + steps) is written again by the caller, from the same state, "
       "at the top of its next step (simulate._run_block)"
       for mutant in ("if t <= steps - 1:", "if t < steps - 0:")},
    ("kernels", "_cache_group", "elif hazard <= 0.0:", "elif hazard < 0.0:"):
        "a hazard of 0 (hazard_left > 0 here, or the branch above took it) divides to a share of 0 all the same",
    ("kernels", "_step", "continue", "break"):
        "after an invalid inflow rate the step is void: the kernel's error bit makes simulate check the rates "
        "in Python and raise; the inflows it skips are never read",
    ("kernels", "_step", "flow_keys = np.empty(flow_stream.shape[0], np.uint64)",
     "flow_keys = np.empty(flow_stream.shape[ -1], np.uint64)"):
        "flow_stream is one-dimensional (one stream per flow): its first size is its last",
    ("kernels", "_step", "for s in range(source_offsets.shape[0]):", "for s in range(source_offsets.shape[ -1]):"):
        "source_offsets is one-dimensional (one entry per source flow): its first size is its last",
}

EQUIVALENT_LINES: dict[tuple[str, str, str], str] = {
    ("simulate", "_span", SPAN_RESET): AFTER_A_FLAGGED_STRETCH,
    ("simulate", "_run_block", "span_from = step + length"): AFTER_A_FLAGGED_STRETCH,
    **{("kernels", "", line): "_NO_STRETCH is the placeholder for advance's single step: without a stretch "
       "advance_span stops before reading its matrices and tables (a size that makes numpy refuse fails at import)"
       for line in (NO_STRETCH,
                    "np.empty((0, 0, 0)), (np.zeros(1, np.int64), np.zeros(0, np.int64)), np.empty((0, 0)),",
                    "np.empty((0, 0)))")},
}
"""Lines whose every surviving mutant is equivalent (target, function, line): code that runs only on a path
whose result is never returned, or a placeholder that is never read."""


@dataclass
class Tally:
    killed: int = 0
    survived: list[tuple[str, str, str, int, str, str]] = field(default_factory=list)
    equivalent: list[tuple[str, str]] = field(default_factory=list)
    survivor_jobs: list[str] = field(default_factory=list)
    incompetent: int = 0
    pending: int = 0
    unsampled: int = 0
    """Selected mutants left out of a --sample: when > 0 the share is a sample's, with an interval."""

    @property
    def share(self) -> float:
        tested = self.killed + len(self.survived)
        return self.killed / tested if tested else float("nan")


# Imported once by the test server, before it forks a child per mutant: these take about 3 s of the 3.5 s that a
# pytest start with aftermath's imports costs. Nothing of aftermath is imported there, so every child imports the
# (mutated) package afresh from disk.
PRELOAD = ("numpy", "numba", "scipy.integrate", "scipy.optimize", "scipy.stats", "xarray", "pandas", "pyarrow",
           "duckdb", "pydantic", "yaml", "jinja2", "pytest", "_pytest.assertion.rewrite", "_pytest.fixtures")


def serve(address: str) -> None:
    """Answer test requests on a Unix socket: fork (third-party libraries already imported), run pytest, reply.

    A request is one JSON line {"cwd", "args"}; the reply is the exit status on a line, then the run's output.
    A client that goes away (cosmic-ray's timeout kills it) takes its child's whole process group with it.
    Each request's wall seconds are appended to ADDRESS.seconds.
    """
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(address)
    server.listen(1)
    while True:
        connection, _ = server.accept()
        with connection, tempfile.TemporaryFile() as log:
            request = json.loads(connection.makefile("r").readline())
            start = time.perf_counter()
            child = os.fork()
            if child == 0:
                os.setsid()
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                os.chdir(request["cwd"])
                import pytest

                code = pytest.main(request["args"])
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(int(code))
            status = None
            while status is None:
                done, raw = os.waitpid(child, os.WNOHANG)
                if done:
                    status = os.waitstatus_to_exitcode(raw)
                elif select.select([connection], [], [], 0.1)[0] and not connection.recv(1):
                    try:  # the client timed out: stop the child and whatever its tests started
                        os.killpg(child, signal.SIGKILL)
                    except ProcessLookupError:  # the child has not called setsid yet, or has just ended
                        os.kill(child, signal.SIGKILL)
                    os.waitpid(child, 0)
                    break
            if status is not None:
                log.seek(0)
                connection.sendall(f"{status}\n".encode() + log.read()[-4000:])
            with open(f"{address}.seconds", "a", encoding="utf-8") as seconds:
                seconds.write(f"{time.perf_counter() - start:.2f}\n")


def client(address: str, args: list[str]) -> int:
    """The test command cosmic-ray runs: hand pytest's arguments to the server, echo its output, exit as it did.
    Without a server (it could not start, or died) the tests run in a process of their own: slower, but a
    mutant is never counted as killed because the server was missing."""
    try:
        connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        connection.connect(address)
        connection.sendall(json.dumps({"cwd": os.getcwd(), "args": args}).encode() + b"\n")
        reply = connection.makefile("rb").read()
    except OSError:
        reply = b""
    status, _, output = reply.partition(b"\n")
    if not status:
        return subprocess.call([sys.executable, "-m", "pytest", *args])
    sys.stdout.write(output.decode(errors="replace"))
    return int(status)


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


def pytest_args(target: Target, work: Path) -> str:
    keyword = f" -k '{target.keyword}'" if target.keyword else ""
    return f"{' '.join(FAST)}{keyword} {' '.join(target.test_paths(work))}"


def config_text(module: Path, target: Target, work: Path) -> str:
    runner = f"{Path(__file__).resolve()} --client {work / 'tests.sock'}"
    command = f"{sys.executable} {runner} -- {pytest_args(target, work)}"
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
    from cosmic_ray.work_db import WorkDB, use_db  # not at the top: the --client start stays light
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    module = work / PACKAGE / target.path(work)
    config = write_config(name, target, work)
    spans = function_spans(module, target.functions) if target.functions else None
    # made under another name, renamed when complete: a half-made session would otherwise be taken as made
    partial = session.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-m", "cosmic_ray.cli", "init", str(config), str(partial)], cwd=work,
                   check=True)
    with use_db(str(partial), WorkDB.Mode.open) as db:
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
            # in source order first: the session lists mutants in an arbitrary order, the sample must not depend on it
            keep.sort(key=lambda item: (item.mutations[0].start_pos, item.mutations[0].operator_name,
                                        item.mutations[0].occurrence))
            chosen = {item.job_id for item in random.Random(seed).sample(keep, sample)}
            for item in keep:
                if item.job_id not in chosen:
                    db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not sampled"))
        print(f"{name}: {len(items)} mutants, {len(keep)} selected"
              + (f", {min(sample, len(keep))} sampled" if sample is not None else ""), flush=True)
    partial.rename(session)


def execute(name: str, target: Target, work: Path, session: Path) -> None:
    """Run the unmutated tests once (they must pass), then let cosmic-ray test every pending mutant via the server.

    The JIT stays on, except for the kernels' own mutants: kernels.py is not mutated then, so the warm-up compiles
    the kernels into numba's cache and every mutant loads them from there (about 1 s, against 20 s of compiling).
    A mutant of kernels.py would cost a full recompile (measured: 56 s of an 85 s run of the kernels' tests), so
    those run with NUMBA_DISABLE_JIT as plain Python: numba compiles the same semantics, the verdict is the same.
    """
    environment = dict(os.environ)
    if target.path(work) == "engines/kernels.py":
        environment["NUMBA_DISABLE_JIT"] = "1"
    start = time.perf_counter()
    warm = subprocess.run([sys.executable, "-m", "pytest", *shlex.split(pytest_args(target, work))], cwd=work,
                          env=environment, capture_output=True, text=True)
    if warm.returncode:
        raise SystemExit(f"{name}: the unmutated tests fail, every mutant would count as killed:\n{warm.stdout}")
    print(f"{name}: warm-up (unmutated tests) {time.perf_counter() - start:.1f} s", flush=True)
    address = work / "tests.sock"
    address.unlink(missing_ok=True)
    Path(f"{address}.seconds").unlink(missing_ok=True)
    # no bytecode from the children: a mutant written in the same second as the last would reuse a stale .pyc
    server = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve", str(address)], cwd=work,
                              env={**environment, "PYTHONDONTWRITEBYTECODE": "1"})
    try:
        while not address.exists():
            if server.poll() is not None:
                raise SystemExit(f"{name}: the test server did not start")
            time.sleep(0.1)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cosmic_ray.cli", "exec", str(write_config(name, target, work)),
                        str(session)], cwd=work, env=environment, check=True)
    finally:
        server.kill()
        server.wait()
    record = Path(f"{address}.seconds")
    seconds = sorted(float(row) for row in record.read_text().split()) if record.exists() else []
    if seconds:
        print(f"{name}: {len(seconds)} mutants tested in {time.perf_counter() - start:.0f} s wall; per mutant median "
              f"{seconds[len(seconds) // 2]:.1f} s, longest {seconds[-1]:.1f} s", flush=True)


def mutated_line(diff: str) -> str:
    """The mutant's changed source line, from cosmic-ray's unified diff."""
    added = [row[1:].strip() for row in diff.splitlines() if row.startswith("+") and not row.startswith("+++")]
    return added[0] if added else ""


def tally(name: str, target: Target, work: Path, session: Path) -> Tally:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    lines = (work / PACKAGE / target.path(work)).read_text(encoding="utf-8").splitlines()
    result = Tally()
    with use_db(str(session), WorkDB.Mode.open) as db:
        result.pending = sum(1 for _ in db.pending_work_items)
        for item, outcome in db.completed_work_items:
            if outcome.worker_outcome == WorkerOutcome.SKIPPED or outcome.worker_outcome == WorkerOutcome.NO_TEST:
                result.unsampled += outcome.output == "not sampled"
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
            reason = EQUIVALENT.get(key) or EQUIVALENT_LINES.get(key[:3])
            if reason:
                result.equivalent.append((f"{mutation.definition_name}:{line} {mutation.operator_name}", reason))
            else:
                result.survived.append((mutation.definition_name or "", mutation.operator_name,
                                        str(mutation.occurrence), line, text, key[3]))
                result.survivor_jobs.append(item.job_id)
    return result


def wilson(killed: int, tested: int) -> str:
    """The 95% Wilson score interval of a sampled killed share (scipy's binomtest), as 'low-high' in percent."""
    from scipy.stats import binomtest

    interval = binomtest(killed, tested).proportion_ci(confidence_level=0.95, method="wilson")
    return f"{interval.low:.0%}-{interval.high:.0%}"


def widen_sample(session: Path, more: int, seed: int) -> None:
    """Put `more` of a sampled session's unsampled mutants (all, if fewer are left) back in the queue, chosen at
    random with `seed` in source order, so a sample grows (or becomes a full pass) without rerunning what it has."""
    from cosmic_ray.work_db import WorkDB, use_db

    with use_db(str(session), WorkDB.Mode.open) as db:
        unsampled = [item for item, result in db.completed_work_items if result.output == "not sampled"]
    unsampled.sort(key=lambda item: (item.mutations[0].start_pos, item.mutations[0].operator_name,
                                     item.mutations[0].occurrence))
    chosen = random.Random(seed).sample(unsampled, min(more, len(unsampled)))
    with sqlite3.connect(session) as connection:
        connection.executemany("DELETE FROM work_results WHERE job_id = ?", [(item.job_id,) for item in chosen])
    print(f"{session.stem}: {len(chosen)} more mutants queued, {len(unsampled) - len(chosen)} left unsampled",
          flush=True)


def forget_survivors(session: Path, jobs: list[str]) -> None:
    """Drop the results of these surviving mutants, so `exec` runs only them again (killed ones stay killed,
    listed equivalents stay as they are: they would only survive again, each at the cost of a full test run)."""
    with sqlite3.connect(session) as connection:
        connection.executemany("DELETE FROM work_results WHERE job_id = ?", [(job,) for job in jobs])


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
    parser.add_argument("--widen", type=int, metavar="N",
                        help="queue N more of a sampled session's unsampled mutants (a large N: the full pass)")
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
    # No plugin autoload: the dashboard's and browser plugins cost seconds at every start and no target needs them.
    # One numba cache for the invocation: filled by the warm-up, read by every mutant (see execute).
    os.environ.update({"PYTHONPATH": f"{work / 'src'}:{work}", "NUMBA_CACHE_DIR": str(args.sessions / "numba-cache"),
                       "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    summaries = {}
    for name in names:
        target = TARGETS[name]
        session = args.sessions / f"{name}.sqlite"
        if args.fresh:
            session.unlink(missing_ok=True)
        if args.report_only and not session.exists():
            print(f"{name}: no session yet")
            continue
        if args.widen and session.exists():
            widen_sample(session, args.widen, args.seed)
        if args.retest_survivors and session.exists():
            forget_survivors(session, tally(name, target, work, session).survivor_jobs)
        if not args.report_only:
            if not session.exists():
                prepare(name, target, work, session, args.sample, args.seed)
            if args.prepare_only:
                continue
            execute(name, target, work, session)
        summaries[name] = tally(name, target, work, session)
    print("\nkilled share per target (equivalent mutants listed apart):")
    for name, result in summaries.items():
        tested = result.killed + len(result.survived)
        print(f"  {name:16s} {TARGETS[name].path(work):24s} killed {result.killed}/{tested} = {result.share:.0%}"
              f"  equivalent {len(result.equivalent)}  incompetent {result.incompetent}  pending {result.pending}"
              + (f"  SAMPLE ({result.unsampled} not sampled), 95% Wilson interval {wilson(result.killed, tested)}"
                 if result.unsampled and tested else ""))
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
        for function, operator, occurrence, line, text, mutant in result.survived:
            print(f"SURVIVED {name} {function}:{line} {operator} #{occurrence}: {text}\n    -> {mutant}")
        for where, reason in result.equivalent:
            print(f"EQUIVALENT {name} {where}: {reason}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(sys.argv[2])
    elif sys.argv[1:2] == ["--client"]:  # --client ADDRESS -- PYTEST ARGUMENTS
        sys.exit(client(sys.argv[2], sys.argv[4:]))
    else:
        main()
