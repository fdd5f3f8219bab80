"""The engines' inner loop, compiled with numba.

Random numbers are counter-based: every draw is a pure function of (seed, replicate, stream, step,
cell), hashed with SplitMix64. So a replicate's numbers do not depend on how replicates are batched
or which worker runs them, and each flow has its own stream: a policy that changes one flow leaves
every other flow's uniforms untouched (common random numbers). Small means are sampled by inversion
from a single uniform, which couples a policy run to its baseline monotonically; large means use
Hörmann's transformed-rejection samplers (BTRS for the binomial, PTRS for the Poisson), as numpy does.

The samplers are total functions: every input gives either a valid draw or the error flag NaN, never
an endless loop. A count or mean that is NaN, infinite or above `MAX_DRAW` (2**53, beyond which a
float no longer holds every whole number and the rejection samplers' arithmetic breaks down) gives
NaN; the engine checks every step for it (and for counts outside [0, its ceiling]) and stops the run
with a message naming the cell (see `first_invalid` and engines/simulate.py).
"""

from __future__ import annotations

import math

import numba
import numpy as np

GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0  # 2**-53
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
INVERSION_LIMIT = 10.0
"""Below this mean, sample by inversion (one uniform); above, by transformed rejection."""
MAX_DRAW = 9007199254740992.0  # 2**53
"""The largest count or mean the samplers take; above it (or for NaN/inf) they return the flag NaN."""
COMPILE = {"cache": True, "error_model": "numpy"}
"""numba options of every kernel: numpy's error model spares a zero test per division (none of these
divides by zero; a NaN or inf would be caught by the kernels' checks)."""


@numba.njit(inline="always", **COMPILE)
def _mix(z: np.uint64) -> np.uint64:
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(inline="always", **COMPILE)
def replicate_key(seed: np.uint64, replicate: np.int64) -> np.uint64:
    """The first part of a draw's key (see `draw_key`), shared by all draws of a replicate."""
    return _mix(_mix(seed + GOLDEN) ^ (np.uint64(replicate) + GOLDEN))


@numba.njit(inline="always", **COMPILE)
def stream_key(replicate_part: np.uint64, stream: np.uint64, step: np.int64) -> np.uint64:
    """The key's part shared by all cells of one stream (flow) at one step of one replicate."""
    return _mix(_mix(replicate_part ^ stream) ^ (np.uint64(step) * GOLDEN))


@numba.njit(inline="always", **COMPILE)
def cell_key(stream_part: np.uint64, cell: np.int64) -> np.uint64:
    """A draw's key from its `stream_key` and its cell."""
    return _mix(stream_part ^ (np.uint64(cell) + GOLDEN * np.uint64(3)))


@numba.njit(inline="always", **COMPILE)
def draw_key(seed: np.uint64, replicate: np.int64, stream: np.uint64, step: np.int64, cell: np.int64) -> np.uint64:
    """The key of one draw: a hash of everything that identifies it, built in three parts so the step
    kernel hashes the parts shared by many draws once (`replicate_key`, `stream_key`, `cell_key`)."""
    return cell_key(stream_key(replicate_key(seed, replicate), stream, step), cell)


@numba.njit(inline="always", **COMPILE)
def uniform(key: np.uint64, index: np.int64) -> float:
    """The index-th uniform of a key's SplitMix64 sequence, in (0, 1)."""
    bits = _mix(key + GOLDEN * np.uint64(index + 1)) >> _S11
    return (float(bits) + 0.5) * _TO_UNIT


@numba.njit(inline="always", **COMPILE)
def _stirling_tail(k: float) -> float:
    """log(k!) - [(k + 1/2) log(k + 1) - (k + 1) + log(2 pi) / 2]."""
    if k < 10.0:
        return math.lgamma(k + 1.0) - (k + 0.5) * math.log(k + 1.0) + (k + 1.0) - _HALF_LOG_2PI
    z = k + 1.0
    z2 = z * z
    return (1.0 / 12.0 - (1.0 / 360.0 - 1.0 / (1260.0 * z2)) / z2) / z


@numba.njit(**COMPILE)
def _binomial_inversion(n: float, p: float, log_q: float, key: np.uint64) -> float:
    """Binomial(n, p) by inversion, for p <= 1/2 and n p < INVERSION_LIMIT; `log_q` is log(1 - p)."""
    q = 1.0 - p
    ratio = p / q
    start = math.exp(n * log_q)
    bound = min(n, n * p + 10.0 * math.sqrt(n * p * q + 1.0))
    attempt = 0
    while True:
        u = uniform(key, attempt)
        x = 0.0
        px = start
        while u > px and x <= bound:
            u -= px
            x += 1.0
            px *= (n - x + 1.0) * ratio / x
        if x <= bound:
            return x
        attempt += 1


@numba.njit(inline="always", **COMPILE)
def _binomial_mode(n: float, p: float) -> float:
    """The mode of Binomial(n, p), floor((n + 1) p)."""
    return math.floor((n + 1.0) * p)


@numba.njit(inline="always", **COMPILE)
def _log_ratio_to_mode(k: float, n: float, m: float, r: float) -> float:
    """log f(k) - log f(m) for the Binomial(n, p) pmf f, its mode m (`_binomial_mode`) and r = p / (1 - p):
    BTRS's exact test (Hörmann 1993, 'The generation of binomial random variates', step 3.2), from Stirling's
    series. m and r are the caller's, computed once per draw."""
    return (
        (m + 0.5) * math.log((m + 1.0) / (r * (n - m + 1.0)))
        + (n + 1.0) * math.log((n - m + 1.0) / (n - k + 1.0))
        + (k + 0.5) * math.log(r * (n - k + 1.0) / (k + 1.0))
        + _stirling_tail(m)
        + _stirling_tail(n - m)
        - _stirling_tail(k)
        - _stirling_tail(n - k)
    )


@numba.njit(inline="always", **COMPILE)
def _btrs_constants(n: float, p: float) -> tuple[float, float, float, float, float]:
    """BTRS's constants for Binomial(n, p), p <= 1/2, n p >= 10 (Hörmann 1993, 'The generation of binomial
    random variates', algorithm BTRS): a, b and c of the transformation k = floor((2 a / us + b) u + c), the
    hat's scale alpha and v_r, the bound of the quick acceptance region."""
    spread = math.sqrt(n * p * (1.0 - p))
    b = 1.15 + 2.53 * spread
    v_r = 0.92 - 4.2 / b
    return -0.0873 + 0.0248 * b + 0.01 * p, b, n * p + 0.5, (2.83 + 5.1 / b) * spread, v_r


@numba.njit(**COMPILE)
def _binomial_btrs(n: float, p: float, key: np.uint64) -> float:
    """Binomial(n, p) by transformed rejection with squeeze (Hörmann 1993, algorithm BTRS), for p <= 1/2, n p >= 10."""
    a, b, c, alpha, v_r = _btrs_constants(n, p)
    r = p / (1.0 - p)
    m = _binomial_mode(n, p)
    index = 0
    while True:
        u = uniform(key, index) - 0.5
        v = uniform(key, index + 1)
        index += 2
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + c)
        if k < 0.0 or k > n:
            continue
        if us >= 0.07 and v <= v_r:
            return k
        if math.log(v * alpha / (a / (us * us) + b)) <= _log_ratio_to_mode(k, n, m, r):
            return k


@numba.njit(**COMPILE)
def binomial(n: float, p: float, key: np.uint64, log_keep: float = np.nan) -> float:
    """Binomial(n, p) from the key's uniforms; n is a whole number held in a float.

    `log_keep`, if given, is log(1 - min(p, 1 - p)), which the step kernel computes once per cell and
    rate (`binomial_constant`) instead of once per draw. Returns NaN (the error flag) for n or p NaN, or
    n above MAX_DRAW (infinity included).
    """
    if not (n <= MAX_DRAW) or p != p:
        return np.nan
    if n <= 0.0 or p <= 0.0:
        return 0.0
    if p >= 1.0:
        return n
    small = min(p, 1.0 - p)
    if n * small < INVERSION_LIMIT:
        x = _binomial_inversion(n, small, log_keep if log_keep == log_keep else binomial_constant(p), key)
    else:
        x = _binomial_btrs(n, small, key)
    return x if p <= 0.5 else n - x


@numba.njit(inline="always", **COMPILE)
def binomial_constant(p: float) -> float:
    """log(1 - min(p, 1 - p)): what a binomial draw with probability p computes from p alone."""
    return math.log(1.0 - min(p, 1.0 - p))


@numba.njit(inline="always", **COMPILE)
def _ptrs_constants(mean: float) -> tuple[float, float, float, float]:
    """PTRS's constants for a Poisson mean of at least 10 (Hörmann 1993, 'The transformed rejection method for
    generating Poisson random variables', algorithm PTRS): a and b of the transformation
    k = floor((2 a / us + b) u + mean + 0.43), the hat's scale 1/alpha and v_r, the bound of the quick
    acceptance region."""
    b = 0.931 + 2.53 * math.sqrt(mean)
    return -0.059 + 0.02483 * b, b, 1.1239 + 1.1328 / (b - 3.4), 0.9277 - 3.6224 / (b - 2.0)


@numba.njit(**COMPILE)
def poisson(mean: float, key: np.uint64) -> float:
    """Poisson(mean) from the key's uniforms; NaN (the error flag) for a mean that is NaN or above MAX_DRAW."""
    if not (mean <= MAX_DRAW):
        return np.nan
    if mean <= 0.0:
        return 0.0
    if mean < INVERSION_LIMIT:
        u = uniform(key, 0)
        x = 0.0
        term = math.exp(-mean)
        total = term
        while u > total and x < 1000.0:
            x += 1.0
            term *= mean / x
            total += term
        return x
    log_mean = math.log(mean)
    a, b, inverse_alpha, v_r = _ptrs_constants(mean)
    index = 0
    while True:
        u = uniform(key, index) - 0.5
        v = uniform(key, index + 1)
        index += 2
        us = 0.5 - abs(u)
        k = math.floor((2.0 * a / us + b) * u + mean + 0.43)
        if us >= 0.07 and v <= v_r:
            return k
        if k < 0.0 or (us < 0.013 and v > us):
            continue
        if math.log(v) + math.log(inverse_alpha) - math.log(a / (us * us) + b) <= -mean + k * log_mean - math.lgamma(
            k + 1.0
        ):
            return k


@numba.njit(**COMPILE)
def binomial_array(
    counts: np.ndarray,
    probabilities: np.ndarray,
    seed: np.uint64,
    first_replicate: np.int64,
    stream: np.uint64,
    step: np.int64,
) -> np.ndarray:
    """Binomial draws over an (R, cells) array, keyed like the step kernel's draws."""
    out = np.empty_like(counts)
    for r in range(counts.shape[0]):
        for i in range(counts.shape[1]):
            key = draw_key(seed, first_replicate + r, stream, step, i)
            out[r, i] = binomial(counts[r, i], probabilities[r, i], key)
    return out


RATE_INVALID = 1
"""`advance`'s error bit: a rate is not a finite number >= 0 in a cell with people in it (or an inflow)."""
COUNT_INVALID = 2
"""`advance`'s error bit: a flow moved, or a cell holds, a count outside [0, ceiling] or NaN."""


_NO_STRETCH = (np.empty((0, 0, 0)), np.empty((0, 0, 0)), (np.zeros(1, np.int64), np.zeros(0, np.int64)),
               np.empty((0, 0, 0)), (np.zeros(1, np.int64), np.zeros(0, np.int64)), np.empty((0, 0)),
               np.empty((0, 0)))
"""The span kernels' series arguments when they run a single step for `advance` (which fills none of them)."""


def advance(
    state: np.ndarray,
    rates: np.ndarray,
    next_state: np.ndarray,
    moved: np.ndarray,
    exit_cache: np.ndarray,
    split_cache: np.ndarray,
    boundary: np.ndarray,
    errors: np.ndarray,
    tables: tuple,
    dt: float,
    seed: np.uint64,
    first_replicate: np.int64,
    step: np.int64,
    stochastic: bool,
    fresh: np.ndarray,
    ceiling: float,
) -> None:
    """One step of every replicate: competing exits per compartment cell, then inflows.

    Flows are grouped by the compartment they leave (`group_start` delimits the groups in flow
    order; groups are contiguous). For a cell with count n and outflow hazards h_1..h_k (total H),
    exits ~ Binomial(n, 1 - exp(-H dt)), split among the outflows by conditional binomials with
    shares h_i / (h_i + ... + h_k); the deterministic engine takes the expectations instead. Inflows
    from sources are Poisson(rate dt). `rates` holds per-capita hazards (or inflows) per context cell;
    `moved` receives the persons each flow moved, per context cell.

    What the draws compute from the rates alone is cached, and recomputed only for the groups marked
    in `fresh` (groups,) (a rate of one of their flows may have changed since the last call), so a step
    with the same rates as the one before costs no transcendental call outside the samplers:
    `exit_cache` (R, 2, cells) holds per compartment cell 1 - exp(-H dt) (NaN where a rate is not a
    finite number >= 0) and its `binomial_constant` (deterministic: H); `split_cache` (R, 2, rate cells)
    per outflow cell the share of the exits left by the flows before it that it takes (1 for the last,
    0 for a zero hazard) and the share's `binomial_constant` (stochastic only). The deterministic
    engine moves exits x h_i / H from a flow with a share in (0, 1).
    `boundary` (R, 2) receives the persons who entered from sources and left to sinks in the step.
    The structure comes as `tables`, a tuple of the arrays (flow_source, flow_offset, flow_cells,
    flow_stream, to_cells, group_start, group_stream, source_offsets) of simulate.KernelTables.
    Validity checks are fused in: `errors` (R,) receives, per replicate, RATE_INVALID if a rate of a
    non-empty cell or an inflow is not a finite number >= 0, and COUNT_INVALID if a moved count or a
    new count is outside [0, `ceiling`] or NaN (the caller then names the cell, see engines/diagnose.py).
    Compiled as `advance_span` (stochastic, which also runs stretches) and `expected_advance`
    (deterministic; `expected_span` runs its stretches).
    """
    if stochastic:
        advance_span(state, rates, next_state, moved, exit_cache, split_cache, boundary, errors, tables, dt, seed,
                     first_replicate, step, np.int64(1), fresh, ceiling, False, *_NO_STRETCH)
    else:
        expected_advance(state, rates, next_state, moved, exit_cache, split_cache, boundary, errors, tables, dt, fresh,
                         ceiling)


@numba.njit(parallel=True, **COMPILE)
def advance_span(
    state: np.ndarray,
    rates: np.ndarray,
    next_state: np.ndarray,
    moved: np.ndarray,
    exit_cache: np.ndarray,
    split_cache: np.ndarray,
    boundary: np.ndarray,
    errors: np.ndarray,
    tables: tuple,
    dt: float,
    seed: np.uint64,
    first_replicate: np.int64,
    first_step: np.int64,
    steps: np.int64,
    fresh: np.ndarray,
    ceiling: float,
    stretch: bool,
    record: np.ndarray,
    state_terms: np.ndarray,
    state_matrix: tuple,
    moved_terms: np.ndarray,
    moved_matrix: tuple,
    entered: np.ndarray,
    exited: np.ndarray,
) -> None:
    """`steps` steps of `advance` in one call, from `first_step`, for a stretch where the rates stay as
    they are and nothing else happens between steps (no event, sub-model or probe): each replicate runs
    the whole stretch while its numbers are in the core's cache, and the per-step bookkeeping of
    simulate._run_block is done here (with `stretch`; without, one step as `advance` describes). The
    same numbers as `steps` calls of `advance`.

    Fills, for each step s after `first_step` up to the last, `record[s]` (R, cells) (if `record` is not
    empty), `state_terms[s]` and `moved_terms[s]` (the outcome reductions, `reduce_columns` with the
    (indptr, indices) of `state_matrix` and `moved_matrix`) and `entered[s]`, `exited[s]` (R,) (running
    totals); `state` holds the state after the stretch, `moved` and `boundary` those of its last step.
    A replicate whose step sets error bits stops there with them in `errors`; the caller then runs the
    stretch again step by step to name the cell.
    """
    unchanged = np.zeros_like(fresh)
    for r in numba.prange(state.shape[0]):
        current, following = state[r], next_state[r]
        for t in range(steps):
            step = first_step + t
            error, inflow, outflow = _step(
                current, rates[r], following, moved[r], exit_cache[r], split_cache[r], tables, dt, seed,
                first_replicate + r, step, fresh if t == 0 else unchanged, ceiling)
            errors[r] = error
            boundary[r, 0] = inflow
            boundary[r, 1] = outflow
            if error or not stretch:
                break
            current, following = following, current
            entered[step + 1, r] = entered[step, r] + inflow
            exited[step + 1, r] += exited[step, r] + outflow
            _reduce_row(moved[r], moved_matrix[0], moved_matrix[1], moved_terms[step + 1, r])
            if t < steps - 1:
                if record.shape[0]:
                    record[step + 1, r] = current
                _reduce_row(current, state_matrix[0], state_matrix[1], state_terms[step + 1, r])
        if stretch and steps % 2 and errors[r] == 0:
            state[r] = next_state[r]


LANES = 32
"""Replicates that `expected_span` runs side by side, the innermost axis of its working arrays."""
NARROW_LANES = 8
"""The width of `expected_span`'s blocks for the replicates past its last block of LANES."""


@numba.njit(parallel=True, **COMPILE)
def expected_span(
    state: np.ndarray,
    rates: np.ndarray,
    next_state: np.ndarray,
    moved: np.ndarray,
    exit_cache: np.ndarray,
    split_cache: np.ndarray,
    boundary: np.ndarray,
    errors: np.ndarray,
    tables: tuple,
    dt: float,
    first_step: np.int64,
    steps: np.int64,
    fresh: np.ndarray,
    ceiling: float,
    record: np.ndarray,
    state_terms: np.ndarray,
    state_matrix: tuple,
    moved_terms: np.ndarray,
    moved_matrix: tuple,
    entered: np.ndarray,
    exited: np.ndarray,
) -> None:
    """The deterministic engine's `advance_span` with `stretch` (the same arguments less the random
    numbers', the same numbers), run on LANES replicates at a time side by side (`_expected_step`), so
    its loops vectorise: twice the runs per CPU-second of one replicate at a time on the synthetic model
    (benchmarks/bench_speed.py). The replicates past the last block of LANES run in blocks of NARROW_LANES, then one
    lane each, so a small batch pays for no idle lanes. A block in which a step sets error bits stops there
    with its replicates' bits in `errors`, and the caller runs the stretch again step by step. A
    replicate's numbers do not depend on its block: each lane runs the same operations on its own numbers.
    """
    replicates = state.shape[0]
    for r in numba.prange(replicates):
        _refresh_caches(rates[r], exit_cache[r], split_cache[r], tables, dt, False, fresh)
    wide = replicates // LANES
    narrow = replicates % LANES // NARROW_LANES
    rest = wide * LANES + narrow * NARROW_LANES
    for block in numba.prange(wide + narrow + replicates - rest):
        arrays = (state, rates, moved, exit_cache, split_cache, boundary, errors)
        series = (record, state_terms, state_matrix, moved_terms, moved_matrix, entered, exited)
        if block < wide:
            _expected_block(block * LANES, arrays, tables, dt, first_step, steps, ceiling, series, LANES)
        elif block < wide + narrow:
            _expected_block(wide * LANES + (block - wide) * NARROW_LANES, arrays, tables, dt, first_step, steps,
                            ceiling, series, NARROW_LANES)
        else:
            _expected_block(rest + block - wide - narrow, arrays, tables, dt, first_step, steps, ceiling, series, 1)


@numba.njit(**COMPILE)
def _expected_block(
    first_replicate: np.int64,
    arrays: tuple,
    tables: tuple,
    dt: float,
    first_step: np.int64,
    steps: np.int64,
    ceiling: float,
    series: tuple,
    lanes: int,
) -> None:
    """`expected_span`'s stretch for the `lanes` replicates from first_replicate (`arrays` holds its state,
    rates, moved, exit_cache, split_cache, boundary and errors, `series` its record, state_terms,
    state_matrix, moved_terms, moved_matrix, entered and exited)."""
    numba.literally(lanes)
    state, rates, moved, exit_cache, split_cache, boundary, errors = arrays
    record, state_terms, state_matrix, moved_terms, moved_matrix, entered, exited = series
    cells, rate_cells = state.shape[1], rates.shape[1]
    current, following = np.empty((cells, lanes)), np.empty((cells, lanes))
    lane_rates, lane_moved = np.empty((rate_cells, lanes)), np.empty((rate_cells, lanes))
    probability, total = np.empty((cells, lanes)), np.empty((cells, lanes))
    share = np.empty((rate_cells, lanes))
    for lane in range(lanes):
        r = first_replicate + lane
        current[:, lane] = state[r]
        lane_rates[:, lane] = rates[r]
        probability[:, lane] = exit_cache[r, 0]
        total[:, lane] = exit_cache[r, 1]
        share[:, lane] = split_cache[r, 0]
    error, inflow, outflow = np.zeros(lanes, np.int64), np.zeros(lanes), np.zeros(lanes)
    state_sums = np.zeros((state_matrix[0].shape[0] - 1, lanes))
    moved_sums = np.zeros((moved_matrix[0].shape[0] - 1, lanes))
    for t in range(steps):
        step = first_step + t
        _expected_step(current, lane_rates, following, lane_moved, probability, total, share, tables, dt, ceiling,
                       error, inflow, outflow, lanes)
        if error.any():
            errors[first_replicate : first_replicate + lanes] = error
            return
        current, following = following, current
        _reduce_lanes(lane_moved, moved_matrix[0], moved_matrix[1], moved_sums)
        keep = t < steps - 1
        if keep:
            _reduce_lanes(current, state_matrix[0], state_matrix[1], state_sums)
        for lane in range(lanes):
            r = first_replicate + lane
            entered[step + 1, r] = entered[step, r] + inflow[lane]
            exited[step + 1, r] += exited[step, r] + outflow[lane]
            moved_terms[step + 1, r] = moved_sums[:, lane]
            if keep:
                if record.shape[0]:
                    record[step + 1, r] = current[:, lane]
                state_terms[step + 1, r] = state_sums[:, lane]
    for lane in range(lanes):
        r = first_replicate + lane
        errors[r] = 0
        state[r] = current[:, lane]
        moved[r] = lane_moved[:, lane]
        boundary[r, 0] = inflow[lane]
        boundary[r, 1] = outflow[lane]


@numba.njit(parallel=True, **COMPILE)
def expected_advance(
    state: np.ndarray,
    rates: np.ndarray,
    next_state: np.ndarray,
    moved: np.ndarray,
    exit_cache: np.ndarray,
    split_cache: np.ndarray,
    boundary: np.ndarray,
    errors: np.ndarray,
    tables: tuple,
    dt: float,
    fresh: np.ndarray,
    ceiling: float,
) -> None:
    """`advance` for the deterministic engine (the same arguments less the random numbers'): each replicate
    on its own, as one lane of `_expected_step`, its results written even where a check failed (the
    caller's checks then name the cell)."""
    for r in numba.prange(state.shape[0]):
        _refresh_caches(rates[r], exit_cache[r], split_cache[r], tables, dt, False, fresh)
        error, inflow, outflow = np.zeros(1, np.int64), np.zeros(1), np.zeros(1)
        _expected_step(_lane(state[r]), _lane(rates[r]), _lane(next_state[r]), _lane(moved[r]),
                       _lane(exit_cache[r, 0]), _lane(exit_cache[r, 1]), _lane(split_cache[r, 0]), tables, dt, ceiling,
                       error, inflow, outflow, 1)
        errors[r] = error[0]
        boundary[r, 0] = inflow[0]
        boundary[r, 1] = outflow[0]


@numba.njit(**COMPILE)
def _refresh_caches(
    rates: np.ndarray,
    exit_cache: np.ndarray,
    split_cache: np.ndarray,
    tables: tuple,
    dt: float,
    stochastic: bool,
    fresh: np.ndarray,
) -> None:
    """Fill one replicate's caches (see `advance`) for the groups marked in `fresh`."""
    flow_source, flow_offset, flow_cells, group_start = tables[0], tables[1], tables[2], tables[5]
    for g in range(group_start.shape[0] - 1):
        if fresh[g]:
            first, last = group_start[g], group_start[g + 1]
            _cache_group(rates, exit_cache, split_cache, flow_offset, flow_cells, first, last, flow_source[first], dt,
                         stochastic)


@numba.njit(**COMPILE)
def _step(
    state: np.ndarray,
    rates: np.ndarray,
    next_state: np.ndarray,
    moved: np.ndarray,
    exit_cache: np.ndarray,
    split_cache: np.ndarray,
    tables: tuple,
    dt: float,
    seed: np.uint64,
    replicate: np.int64,
    step: np.int64,
    fresh: np.ndarray,
    ceiling: float,
) -> tuple[np.int64, float, float]:
    """One step of one replicate (the rows of `advance`'s arrays); returns its error bits and the persons
    who entered from sources and left to sinks."""
    flow_source, flow_offset, flow_cells, flow_stream, to_cells, group_start, group_stream, source_offsets = tables
    groups = group_start.shape[0] - 1
    _refresh_caches(rates, exit_cache, split_cache, tables, dt, True, fresh)
    # the keys' parts shared by a stream's cells, hashed once per step (see `draw_key`)
    base = replicate_key(seed, replicate)
    group_keys = np.empty(groups, np.uint64)
    flow_keys = np.empty(flow_stream.shape[0], np.uint64)
    for g in range(groups):
        group_keys[g] = stream_key(base, group_stream[g], step)
    for f in range(flow_stream.shape[0]):
        flow_keys[f] = stream_key(base, flow_stream[f], step)
    error = 0
    entered = 0.0
    exited = 0.0
    next_state[:] = state
    moved[:] = 0.0
    for g in range(groups):
        first, last = group_start[g], group_start[g + 1]
        origin = flow_source[first]
        for i in range(flow_cells[first]):
            n = state[origin + i]
            if n <= 0.0:
                continue
            probability = exit_cache[0, origin + i]
            if probability != probability:
                error |= RATE_INVALID
                continue
            if probability <= 0.0:
                continue
            leaving = binomial(n, probability, cell_key(group_keys[g], i), exit_cache[1, origin + i])
            if leaving <= 0.0:
                continue
            remaining = leaving
            for f in range(first, last):
                cell = flow_offset[f] + i
                share = split_cache[0, cell]
                if share >= 1.0:
                    count = remaining
                elif share <= 0.0:
                    count = 0.0
                else:
                    count = binomial(remaining, share, cell_key(flow_keys[f], i), split_cache[1, cell])
                if not (count >= 0.0 and count <= ceiling):
                    error |= COUNT_INVALID
                remaining -= count
                moved[cell] = count
                next_state[origin + i] -= count
                target = to_cells[cell]
                if target >= 0:
                    next_state[target] += count
                else:
                    exited += count
                if remaining <= 0.0:
                    break
    for s in range(source_offsets.shape[0]):
        f = source_offsets[s]
        for i in range(flow_cells[f]):
            rate = rates[flow_offset[f] + i]
            if not (rate >= 0.0 and rate < np.inf):
                error |= RATE_INVALID
                continue
            count = poisson(rate * dt, cell_key(flow_keys[f], i))
            if not (count >= 0.0 and count <= ceiling):
                error |= COUNT_INVALID
            moved[flow_offset[f] + i] = count
            entered += count
            next_state[to_cells[flow_offset[f] + i]] += count
    for c in range(next_state.shape[0]):
        if not (next_state[c] >= 0.0 and next_state[c] <= ceiling):
            error |= COUNT_INVALID
    return error, entered, exited


@numba.njit(inline="always", **COMPILE)
def _lane(values: np.ndarray) -> np.ndarray:
    """A replicate's row as a (length, 1) block of lanes: one replicate in the lane-wise kernels."""
    return values.reshape((values.shape[0], 1))


@numba.njit(**COMPILE)
def _expected_step(
    state: np.ndarray,
    rates: np.ndarray,
    next_state: np.ndarray,
    moved: np.ndarray,
    probability: np.ndarray,
    total: np.ndarray,
    share: np.ndarray,
    tables: tuple,
    dt: float,
    ceiling: float,
    error: np.ndarray,
    entered: np.ndarray,
    exited: np.ndarray,
    lanes: int,
) -> None:
    """One step of the deterministic engine for a block of replicates side by side (lanes, the innermost
    axis, so the loops over them vectorise): the expectations of `advance`'s draws.

    `state`, `next_state` (cells, lanes); `rates`, `moved` (rate cells, lanes); `probability` and `total`
    (cells, lanes) each cell's 1 - exp(-H dt) and H, `share` (rate cells, lanes) each outflow's share (the
    rows of `advance`'s exit_cache and split_cache, see `_cache_group`). Fills `error` (lanes,) with the
    error bits and `entered`, `exited` (lanes,) with the persons who entered from sources and left to sinks.
    Each lane's numbers are those of the replicate run on its own, whatever the lane count.
    """
    numba.literally(lanes)
    flow_source, flow_offset, flow_cells, to_cells, group_start, source_offsets = (
        tables[0], tables[1], tables[2], tables[4], tables[5], tables[7])
    scratch, sent = np.empty((2, flow_cells.max(), lanes)), np.empty(lanes)
    next_state[:] = state  # every flow's every cell is written below: `moved` needs no clearing
    error[:] = 0
    entered[:] = 0.0
    exited[:] = 0.0
    for g in range(group_start.shape[0] - 1):
        first, last = group_start[g], group_start[g + 1]
        _expected_exits(state, rates, next_state, moved, probability, total, share, scratch, flow_offset, to_cells,
                        first, last, flow_source[first], flow_cells[first], ceiling, error, sent, lanes)
        exited += sent
    for s in range(source_offsets.shape[0]):
        f = source_offsets[s]
        for i in range(flow_cells[f]):
            cell = flow_offset[f] + i
            target = to_cells[cell]
            for lane in range(lanes):
                rate = rates[cell, lane]
                valid = rate >= 0.0 and rate < np.inf
                count = rate * dt if valid else 0.0
                error[lane] |= (0 if valid else RATE_INVALID) | (0 if count <= ceiling else COUNT_INVALID)
                moved[cell, lane] = count
                entered[lane] += count
                next_state[target, lane] += count
    for c in range(next_state.shape[0]):
        for lane in range(lanes):
            error[lane] |= 0 if next_state[c, lane] >= 0.0 and next_state[c, lane] <= ceiling else COUNT_INVALID


@numba.njit(**COMPILE)
def _expected_exits(
    state: np.ndarray,
    rates: np.ndarray,
    next_state: np.ndarray,
    moved: np.ndarray,
    probability: np.ndarray,
    total: np.ndarray,
    share: np.ndarray,
    scratch: np.ndarray,
    flow_offset: np.ndarray,
    to_cells: np.ndarray,
    first: np.int64,
    last: np.int64,
    origin: np.int64,
    cells: np.int64,
    ceiling: float,
    error: np.ndarray,
    sent: np.ndarray,
    lanes: int,
) -> None:
    """The deterministic engine's exits from the cells of the group of flows first..last - 1, for the lanes
    of `_expected_step` (same arrays); adds error bits to `error` and fills `sent` (lanes,) with the persons
    sent to sinks.

    The same numbers as the stochastic engine's loop with expectations for draws, computed flow by flow
    over the group's cells: a cell's exits go to its flows in order until none remain, the last flow taking
    what is left. `scratch` (2, cells or more, lanes) is working space.
    """
    numba.literally(lanes)
    leaving, remaining = scratch[0], scratch[1]
    sent[:] = 0.0
    for i in range(cells):
        for lane in range(lanes):
            n = state[origin + i, lane]
            p = probability[origin + i, lane]
            error[lane] |= RATE_INVALID if n > 0.0 and p != p else 0
            expected = n * p
            leaving[i, lane] = expected
            remaining[i, lane] = expected if n > 0.0 and p > 0.0 and expected > 0.0 else 0.0
    for f in range(first, last):
        offset = flow_offset[f]
        for i in range(cells):
            for lane in range(lanes):
                fraction = share[offset + i, lane]
                left = remaining[i, lane]
                if left <= 0.0 or fraction <= 0.0:
                    count = 0.0
                elif fraction >= 1.0:
                    count = left
                else:
                    count = leaving[i, lane] * rates[offset + i, lane] / total[origin + i, lane]
                error[lane] |= 0 if count >= 0.0 and count <= ceiling else COUNT_INVALID
                remaining[i, lane] = left - count
                moved[offset + i, lane] = count
        for i in range(cells):
            for lane in range(lanes):
                next_state[origin + i, lane] -= moved[offset + i, lane]
            target = to_cells[offset + i]
            if target >= 0:
                for lane in range(lanes):
                    next_state[target, lane] += moved[offset + i, lane]
            else:
                for lane in range(lanes):
                    sent[lane] += moved[offset + i, lane]


@numba.njit(**COMPILE)
def _cache_group(
    rates: np.ndarray,
    exit_cache: np.ndarray,
    split_cache: np.ndarray,
    flow_offset: np.ndarray,
    flow_cells: np.ndarray,
    first: np.int64,
    last: np.int64,
    origin: np.int64,
    dt: float,
    stochastic: bool,
) -> None:
    """Fill one replicate's caches (see `advance`) for the cells of the group of flows first..last - 1."""
    for i in range(flow_cells[first]):
        total = 0.0
        valid = True
        for f in range(first, last):
            hazard = rates[flow_offset[f] + i]
            valid = valid and hazard >= 0.0 and hazard < np.inf
            total += hazard
        probability = -math.expm1(-total * dt) if valid else np.nan
        exit_cache[0, origin + i] = probability
        exit_cache[1, origin + i] = binomial_constant(probability) if stochastic else total
        hazard_left = total
        for f in range(first, last):
            cell = flow_offset[f] + i
            hazard = rates[cell]
            if f == last - 1 or hazard >= hazard_left:
                share = 1.0
            elif hazard <= 0.0:
                share = 0.0
            else:
                share = hazard / hazard_left
            split_cache[0, cell] = share
            split_cache[1, cell] = binomial_constant(share) if stochastic else 0.0
            hazard_left -= hazard


@numba.njit(**COMPILE)
def first_invalid(values: np.ndarray, ceiling: float = np.inf) -> np.int64:
    """Flat index of the first value that is not a number in [0, ceiling] (NaN and inf included), or -1."""
    flat = values.reshape(-1)
    for i in range(flat.size):
        if not (flat[i] >= 0.0 and flat[i] <= ceiling and flat[i] < np.inf):
            return i
    return -1


@numba.njit(**COMPILE)
def reduce_columns(values: np.ndarray, indptr: np.ndarray, indices: np.ndarray, out: np.ndarray) -> None:
    """out[r, k] = sum of values[r, indices[indptr[k]:indptr[k + 1]]]: a 0/1 sparse product, row by row."""
    for r in range(values.shape[0]):
        _reduce_row(values[r], indptr, indices, out[r])


@numba.njit(**COMPILE)
def _reduce_lanes(values: np.ndarray, indptr: np.ndarray, indices: np.ndarray, out: np.ndarray) -> None:
    """`_reduce_row` for lanes side by side: out[k, lane] = sum of values[indices[indptr[k]:indptr[k + 1]], lane]."""
    lanes = values.shape[1]
    for k in range(indptr.shape[0] - 1):
        total = out[k]
        total[:] = 0.0
        for j in range(indptr[k], indptr[k + 1]):
            row = values[indices[j]]
            for lane in range(lanes):
                total[lane] += row[lane]


@numba.njit(**COMPILE)
def _reduce_row(values: np.ndarray, indptr: np.ndarray, indices: np.ndarray, out: np.ndarray) -> None:
    for k in range(indptr.shape[0] - 1):
        total = 0.0
        for j in range(indptr[k], indptr[k + 1]):
            total += values[indices[j]]
        out[k] = total
