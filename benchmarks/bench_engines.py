"""Benchmark aftermath's engines on a synthetic model of 12 compartments x 60 strata x 27 flows.

Prints the stochastic engine's replicate-months per second, peak memory, deterministic runs per
second for a batch of sampled parameters (and the cost of a sub-step), the ODE engine's runs per second
for the same batch (explicit RK45 on the whole batch; LSODA on 20, its banded Jacobian limits the
batch), the same deterministic batch written by hand as a numpy loop (speed ratio and a check that it
gives the same counts), the raw numpy binomial rate on the same counts (the ceiling of this approach,
and the array layout it assumes), the same model written in Mesa 3 (speed ratio and a check that it is
the same model), and each target with PASS or MISS.

    .venv/bin/python benchmarks/bench_engines.py            # full run (several minutes)
    .venv/bin/python benchmarks/bench_engines.py --quick    # smoke run, small sizes
    .venv/bin/python benchmarks/bench_engines.py --profile  # also where simulate() spends its time
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version

import numba
import numpy as np

import aftermath
from aftermath.engines.ode import OdeOptions, batch_size
from aftermath.scenario.checks import stratum_array
from aftermath.scenario.validate import frozen_distribution
from synthetic import CAMPAIGN, COHORTS, COMPARTMENTS, MONTHS_PER, ORIGINS, SyntheticModel, synthetic_model

STOCHASTIC_TARGET = 12_000.0
"""Replicate-months per CPU-second of the stochastic engine (issue 12)."""
MESA_RATIO_TARGET = 300.0
DETERMINISTIC_TARGET = 2_000.0
"""Deterministic runs per second on one core when a batch of parameter samples runs together (issue 12)."""
MESA_TOLERANCE = 0.03
"""Largest relative difference between Mesa's mean and aftermath's deterministic compartment totals."""


@dataclass(frozen=True)
class Sizes:
    small: int
    large: int
    repeats: int
    batch: int
    mesa_replicates: int
    mesa_months: int
    ode_batch: int
    lsoda_batch: int


FULL = Sizes(small=1_000, large=10_000, repeats=3, batch=1_000, mesa_replicates=1, mesa_months=120, ode_batch=1_000,
             lsoda_batch=20)
QUICK = Sizes(small=10, large=50, repeats=3, batch=20, mesa_replicates=1, mesa_months=2, ode_batch=1, lsoda_batch=0)


@dataclass(frozen=True)
class Timing:
    """Median wall-clock and CPU seconds of an action. On a shared machine the CPU time shows what
    the code would take with a core to itself; the targets are judged on wall-clock time."""

    wall: float
    cpu: float

    def rates(self, amount: float, unit: str) -> str:
        return f"{amount / self.wall:,.0f} {unit} ({amount / self.cpu:,.0f} per CPU-second)"


def timed(action: Callable[[], object], repeats: int = 1) -> Timing:
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return Timing(statistics.median(walls), statistics.median(cpus))


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine_load() -> str:
    """Cores and load average: figures measured on a shared, loaded machine are lower bounds."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.1f} (1 min), {five:.1f} (5 min)"


def verdict(value: float, target: float) -> str:
    return "PASS" if value >= target else "MISS"


def sample_parameters(model: aftermath.CompiledModel, runs: int, seed: int) -> dict[str, np.ndarray]:
    """`runs` draws of every uncertain parameter from its declared distribution, in declared units."""
    rng = np.random.default_rng(seed)
    samples = {}
    for name, parameter in model.scenario.parameters.items():
        if parameter.distribution is None:
            continue
        draws = frozen_distribution(parameter.distribution).rvs(size=runs, random_state=rng)
        if parameter.distribution.relative:
            base = _declared_value(model, name)
            samples[name] = draws.reshape(runs, *[1] * base.ndim) * base
        else:
            samples[name] = draws
    return samples


def _declared_value(model: aftermath.CompiledModel, name: str) -> np.ndarray:
    """A parameter's values over its own dims, in its declared unit."""
    parameter = model.scenario.parameters[name]
    return stratum_array(model.scenario, parameter.value, list(parameter.dims), parameter.default, ())


def stochastic_timing(model: aftermath.CompiledModel, replicates: int, repeats: int) -> Timing:
    return timed(lambda: aftermath.simulate(model, replicates, seed=11, keep_compartments=False), repeats)


def numpy_binomial_timing(model: aftermath.CompiledModel, spec: SyntheticModel, replicates: int) -> tuple[Timing, int]:
    """Time numpy's Generator.binomial over (internal flows, strata, replicates) arrays; returns the draw count.

    Each flow's count is the initial count of the cell it leaves, its probability 1 - exp(-h dt)
    with its month-0 hazard: one step of the model's flows, drawn independently, without any
    bookkeeping. That is the most a binomial chain on numpy can do on this machine.
    """
    rates = spec.monthly_rates(0)
    internal = [i for i, flow in enumerate(spec.flows) if flow.source in COMPARTMENTS]
    counts = np.stack([spec.initial[COMPARTMENTS.index(spec.flows[i].source)] for i in internal])
    probabilities = -np.expm1(-rates[internal] * model.dt)
    shape = (len(internal), counts[0].size, replicates)
    n = np.ascontiguousarray(np.broadcast_to(counts.reshape(*shape[:2], 1), shape)).astype(np.int64)
    p = np.ascontiguousarray(np.broadcast_to(probabilities.reshape(*shape[:2], 1), shape))
    rng = np.random.default_rng(5)
    rng.binomial(n, p)
    return timed(lambda: rng.binomial(n, p), 5), n.size


def numpy_loop(spec: SyntheticModel, samples: dict[str, np.ndarray], months: int) -> np.ndarray:
    """The synthetic model's deterministic engine written by hand in numpy, replicates innermost.

    State is (compartment, origin, cohort, run); each month every flow's rate is the product of its
    factors (sampled parameters, per month, and the campaign schedule), a compartment's people leave
    with probability 1 - exp(-H) for its total outflow hazard H, split by h / H, and recruits arrive at
    their rate. Returns the state after `months` months. This is the fair numpy peer of the deterministic
    engine: no expression language, no checks, no outcomes, the model's structure hard-coded.
    """
    runs = next(iter(samples.values())).shape[0]
    factors = {}
    for name, parameter in spec.parameters.items():
        values = np.asarray(samples.get(name, np.broadcast_to(parameter.value, (runs, *np.shape(parameter.value)))))
        shape = [len(ORIGINS) if "origin" in parameter.dims else 1, len(COHORTS) if "cohort" in parameter.dims else 1]
        factors[name] = np.moveaxis(values.reshape(runs, *shape), 0, -1) / MONTHS_PER[parameter.unit]
    constant = [functools.reduce(np.multiply, [factors[f] for f in flow.factors if f != "campaign"])
                for flow in spec.flows]
    seasonal = [("campaign" in flow.factors) for flow in spec.flows]
    source = [COMPARTMENTS.index(f.source) if f.source in COMPARTMENTS else -1 for f in spec.flows]
    target = [COMPARTMENTS.index(f.target) if f.target in COMPARTMENTS else -1 for f in spec.flows]
    state = np.repeat(spec.initial[..., None], runs, axis=-1).astype(float)
    for step in range(months):
        campaign = CAMPAIGN[max(k for k in CAMPAIGN if k <= step)]
        rates = [c * campaign if s else c for c, s in zip(constant, seasonal, strict=True)]
        total = np.zeros_like(state)
        for rate, leaves in zip(rates, source, strict=True):
            if leaves >= 0:
                total[leaves] += rate
        leaving = state * -np.expm1(-total)
        per_hazard = np.divide(leaving, total, out=np.zeros_like(leaving), where=total > 0)
        following = state - leaving
        for rate, leaves, enters in zip(rates, source, target, strict=True):
            if enters < 0:
                continue
            following[enters] += rate * (per_hazard[leaves] if leaves >= 0 else 1.0)
        state = following
    return state


def mesa_run(spec: SyntheticModel, replicates: int, months: int) -> tuple[Timing, np.ndarray]:
    """Time of all replicates (set-up included, as for aftermath) and mean compartment totals after `months`."""
    from mesa_model import FlowModel

    totals = []

    def run() -> None:
        for replicate in range(replicates):
            model = FlowModel(spec, seed=replicate + 1)
            for _ in range(months):
                model.step()
            totals.append(model.totals())

    return timed(run), np.mean(totals, axis=0)


def deterministic_totals(model: aftermath.CompiledModel, month: int) -> np.ndarray:
    result = aftermath.simulate(model, 1, engine="deterministic")
    return np.array([float(result[name].isel(replicate=0, time=month).sum()) for name in COMPARTMENTS])


def profile(model: aftermath.CompiledModel, replicates: int, engine: str) -> None:
    """Where simulate() spends its time: rate expressions, the numba kernel, recording and outcomes."""
    profiler = cProfile.Profile()
    profiler.enable()
    aftermath.simulate(model, replicates, seed=11, engine=engine, keep_compartments=False)  # type: ignore[arg-type]
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]

    def timing(function: str, own: bool = False) -> float:
        return sum(v[2] if own else v[3] for (_, _, name), v in stats.items() if name == function)

    total = timing("simulate")
    parts = {
        "numba kernels (advance, advance_span, expected_span)": sum(
            timing(kernel, own=True) for kernel in ("advance", "advance_span", "expected_advance", "expected_span")),
        "rate expressions (_fill_rates)": timing("_fill_rates"),
        "expression environment (_environment)": timing("_environment"),
        "outcomes and assembly (_outcome, _assemble)": timing("_outcome") + timing("_assemble"),
    }
    parts["recording and the rest of the step loop"] = total - sum(parts.values())
    print(f"  profile, {engine}, {replicates:,} replicates: {total:.2f} s under cProfile")
    for label, value in parts.items():
        print(f"    {label:<46} {1000 * value:9.1f} ms  {100 * value / total:5.1f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run with small sizes")
    parser.add_argument("--profile", action="store_true", help="also profile simulate() with cProfile")
    parser.add_argument("--mesa-replicates", type=int, help="Mesa replicates (default: 1)")
    parser.add_argument("--mesa-months", type=int, help="months of each Mesa run (default: 120; quick: 2)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    mesa_replicates = args.mesa_replicates or sizes.mesa_replicates
    mesa_months = args.mesa_months or sizes.mesa_months

    print(f"machine: {machine_load()}")
    spec = synthetic_model()
    model = spec.compiled()
    flows, strata = len(model.flows), model.cells // len(model.compartments)
    draws_per_month = flows * strata
    print(f"model: {len(model.compartments)} compartments x {strata} strata x {flows} flows, "
          f"{model.steps} monthly steps, {int(spec.initial.sum()):,} persons at start "
          f"(cells of {int(spec.initial.min())} to {int(spec.initial.max()):,})")
    warm = timed(lambda: [aftermath.simulate(model, 2, engine=e, keep_compartments=False)
                          for e in ("stochastic", "deterministic")])
    print(f"warm-up (numba compile or cache load, excluded below): {warm.wall:.1f} s")
    rss_before = peak_rss_mib()

    small = stochastic_timing(model, sizes.small, sizes.repeats)
    small_rate = sizes.small * model.steps / small.wall
    small_cpu_rate = sizes.small * model.steps / small.cpu
    print(f"stochastic, {sizes.small:,} replicates: {small.rates(sizes.small * model.steps, 'replicate-months/s')}, "
          f"median of {sizes.repeats} runs of {small.wall:.2f} s")
    large = stochastic_timing(model, sizes.large, 1)
    large_cpu_rate = sizes.large * model.steps / large.cpu
    print(f"stochastic, {sizes.large:,} replicates: {large.rates(sizes.large * model.steps, 'replicate-months/s')}, "
          f"1 run of {large.wall:.2f} s")
    print(f"peak memory: {peak_rss_mib():,.0f} MiB resident (resource.getrusage ru_maxrss, whole process; "
          f"{rss_before:,.0f} MiB before the engine runs)")

    samples = sample_parameters(model, sizes.batch, seed=3)
    batch = timed(lambda: aftermath.simulate(model, sizes.batch, engine="deterministic", parameters=samples,
                                             keep_compartments=False, threads=1), sizes.repeats)
    deterministic_rate = sizes.batch / batch.wall
    print(f"deterministic, batch of {sizes.batch:,} parameter samples ({len(samples)} parameters), one thread: "
          f"{batch.rates(sizes.batch, 'runs/s')}, median of {sizes.repeats} batches of {batch.wall:.2f} s")
    threads = numba.get_num_threads()
    every = timed(lambda: aftermath.simulate(model, sizes.batch, engine="deterministic", parameters=samples,
                                             keep_compartments=False, threads=threads), sizes.repeats)
    print(f"deterministic, batch of {sizes.batch:,} parameter samples, {threads} threads: "
          f"{every.rates(sizes.batch, 'runs/s')}, median of {sizes.repeats} batches of {every.wall:.2f} s")

    loop = timed(lambda: numpy_loop(spec, samples, model.steps), sizes.repeats)
    by_hand = numpy_loop(spec, samples, model.steps)
    engine_end = aftermath.simulate(model, sizes.batch, engine="deterministic", parameters=samples)
    ours = np.stack([engine_end[name].isel(time=-1).transpose("origin", "cohort", "replicate").values
                     for name in COMPARTMENTS])
    print(f"numpy loop (hand-written, state as (compartment, origin, cohort, run), runs innermost), same batch: "
          f"{loop.rates(sizes.batch, 'runs/s')}; aftermath is {loop.wall / batch.wall:.2f}x its speed "
          f"({loop.cpu / batch.cpu:.2f}x per CPU-second); largest difference of the final counts "
          f"{np.max(np.abs(ours - by_hand) / np.maximum(by_hand, 1)):.1e} (relative)")

    substeps = 4
    fine = aftermath.compile_model(model.scenario, substeps=substeps)
    sub = timed(lambda: aftermath.simulate(fine, sizes.batch, engine="deterministic", parameters=samples,
                                           keep_compartments=False), sizes.repeats)
    per_substep = (sub.wall - batch.wall) / (substeps - 1) / (sizes.batch * model.steps)
    print(f"deterministic with {substeps} sub-steps, same batch: {sub.rates(sizes.batch, 'runs/s')}, "
          f"{sub.wall / batch.wall:.2f}x the time of 1 sub-step; each extra sub-step costs "
          f"{1e6 * per_substep:,.2f} us per run-month")
    for method, runs in (("RK45", sizes.ode_batch), ("LSODA", sizes.lsoda_batch)):
        if not runs:
            continue
        options = OdeOptions(method=method)
        rows = {name: values[:runs] for name, values in samples.items()}
        ode = timed(lambda options=options, runs=runs, rows=rows: aftermath.simulate(
            model, runs, engine="ode", parameters=rows, keep_compartments=False, ode=options))
        print(f"ode ({method}, rtol {options.rtol:g}, atol {options.atol:g}), batch of {runs:,} parameter samples, "
              f"{batch_size(options, model.cells, model.rate_cells, runs)} per solve_ivp system: "
              f"{runs / ode.wall:.3g} runs/s ({runs / ode.cpu:.3g} per CPU-second), 1 batch of {ode.wall:.2f} s")

    binomials, count = numpy_binomial_timing(model, spec, sizes.small)
    print(f"numpy binomial ceiling: {binomials.rates(count, 'draws/s')} from Generator.binomial over {count:,} "
          "flow x stratum x replicate cells (one call on C-contiguous (flow, stratum, replicate) arrays, replicates "
          "innermost, int64 counts and float64 probabilities precomputed, no bookkeeping), i.e. "
          f"{count / binomials.wall / draws_per_month:,.0f} "
          f"replicate-months/s at {draws_per_month:,} draws per replicate-month")
    print(f"engine: {small.rates(sizes.small * model.steps * draws_per_month, 'binomial-equivalent draws/s')} "
          f"({flows} flows x {strata} strata per replicate-month), "
          f"{100 * (sizes.small * model.steps * draws_per_month / small.cpu) / (count / binomials.cpu):.0f}% "
          "of the numpy ceiling per CPU-second")

    if args.profile:
        profile(model, sizes.small, "stochastic")
        profile(model, sizes.batch, "deterministic")

    mesa, mesa_totals = mesa_run(spec, mesa_replicates, mesa_months)
    mesa_rate = mesa_replicates * mesa_months / mesa.wall
    ratio = small_rate / mesa_rate
    print(f"Mesa {version('mesa')}, one agent per person: "
          f"{mesa_rate:,.2f} replicate-months/s ({mesa_replicates * mesa_months / mesa.cpu:,.2f} per CPU-second), "
          f"{mesa_replicates} replicate(s) x {mesa_months} months in {mesa.wall:.1f} s; "
          f"peak memory now {peak_rss_mib():,.0f} MiB")
    print(f"ratio aftermath/Mesa: {ratio:,.0f}x (per CPU-second: "
          f"{(sizes.small * model.steps / small.cpu) / (mesa_replicates * mesa_months / mesa.cpu):,.0f}x)")
    expected = deterministic_totals(model, mesa_months)
    difference = np.abs(mesa_totals / expected - 1)
    print(f"same model? compartment totals at month {mesa_months}: Mesa mean of {mesa_replicates} vs "
          "aftermath deterministic")
    for name, mesa_total, total, diff in zip(COMPARTMENTS, mesa_totals, expected, difference, strict=True):
        print(f"    {name:<10} {mesa_total:10,.0f} {total:12,.1f}  {100 * diff:5.2f}%")
    agree = bool(difference.max() <= MESA_TOLERANCE)
    print(f"Mesa model {'agrees' if agree else 'DISAGREES'} with aftermath: largest difference "
          f"{100 * difference.max():.2f}% (tolerance {100 * MESA_TOLERANCE:.0f}%)")

    print(f"machine at the end: {machine_load()}")
    print("targets:")
    print(f"  {verdict(small_cpu_rate, STOCHASTIC_TARGET)} stochastic {small_cpu_rate:,.0f} replicate-months per "
          f"CPU-second at {sizes.small:,} replicates (target >= {STOCHASTIC_TARGET:,.0f})")
    print(f"  {verdict(large_cpu_rate, STOCHASTIC_TARGET)} stochastic {large_cpu_rate:,.0f} replicate-months per "
          f"CPU-second at {sizes.large:,} replicates (target >= {STOCHASTIC_TARGET:,.0f})")
    print(f"  {verdict(ratio, MESA_RATIO_TARGET)} {ratio:,.0f}x Mesa, wall-clock (target >= {MESA_RATIO_TARGET:,.0f}x)")
    print(f"  {verdict(deterministic_rate, DETERMINISTIC_TARGET)} deterministic {deterministic_rate:,.0f} runs/s "
          f"in a batch on one thread (target >= {DETERMINISTIC_TARGET:,.0f})")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
