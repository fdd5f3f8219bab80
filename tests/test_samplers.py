"""The engine's binomial and Poisson samplers against scipy's distributions (chi-square tests).

False-failure budget (a correct sampler failing with a new seed or stream): each mean is tested at 5 standard
errors (P(|Z| > 5) = 5.7e-7) and each goodness-of-fit test at p > 1e-5; 17 distributions and one KS test
-> at most 18 x (1e-5 + 5.7e-7) = 1.9e-4 per run, plus the quick check of the two rejection samplers (two
chi-square tests, two means and two variances: 2.3e-5), of BTRS near p = 1/2 (two chi-square tests and two
means: 2.1e-5) and of PTRS at a mean of 10 (a chi-square test and a mean: 1.1e-5), 2.4e-4 in all. Seeds are
fixed, so a run is reproducible.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from scipy import stats

from aftermath.engines import kernels
from aftermath.engines.kernels import binomial_array, draw_key, poisson, uniform

DRAWS = 200_000


@numba.njit
def _poisson_array(mean: float, size: int, seed: np.uint64) -> np.ndarray:
    out = np.empty(size)
    for i in range(size):
        out[i] = poisson(mean, draw_key(seed, 0, np.uint64(99), 0, i))
    return out


@numba.njit
def _uniforms(size: int) -> np.ndarray:
    out = np.empty(size)
    for i in range(size):
        out[i] = uniform(draw_key(np.uint64(1), i, np.uint64(2), 3, 4), 0)
    return out


def _chi_square_p(samples: np.ndarray, pmf) -> float:
    """Chi-square goodness of fit, pooling the tails so every bin expects at least 5."""
    values, counts = np.unique(samples.astype(np.int64), return_counts=True)
    low, high = int(values.min()), int(values.max())
    support = np.arange(low, high + 1)
    observed = np.zeros(len(support))
    observed[values - low] = counts
    expected = pmf(support) * len(samples)
    expected[0] += pmf(np.arange(0, low)).sum() * len(samples) if low > 0 else 0.0
    bins_o, bins_e, acc_o, acc_e = [], [], 0.0, 0.0
    for o, e in zip(observed, expected, strict=True):
        acc_o, acc_e = acc_o + o, acc_e + e
        if acc_e >= 5:
            bins_o.append(acc_o)
            bins_e.append(acc_e)
            acc_o = acc_e = 0.0
    bins_o[-1] += acc_o
    bins_e[-1] += acc_e
    bins_e = np.array(bins_e) * sum(bins_o) / sum(bins_e)
    return float(stats.chisquare(bins_o, bins_e).pvalue)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n", "p"),
    [(1, 0.3), (7, 0.2), (50, 0.1), (400, 0.02), (1000, 0.05), (2000, 0.4), (30000, 0.3), (100, 0.93), (5, 0.5)],
)
def test_binomial_matches_scipy(n, p):
    counts = np.full((1, DRAWS), float(n))
    probabilities = np.full((1, DRAWS), p)
    samples = binomial_array(counts, probabilities, np.uint64(12345), np.int64(0), np.uint64(7), np.int64(0))[0]
    assert samples.min() >= 0 and samples.max() <= n
    assert np.all(samples == np.round(samples))
    mean, var = stats.binom.stats(n, p)
    assert abs(samples.mean() - mean) < 5 * np.sqrt(var / DRAWS) + 1e-12
    if var > 0:
        assert _chi_square_p(samples, lambda k: stats.binom.pmf(k, n, p)) > 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("mean", [0.05, 0.9, 4.0, 9.99, 10.0, 37.5, 800.0, 25000.0])
def test_poisson_matches_scipy(mean):
    samples = _poisson_array(mean, DRAWS, np.uint64(54321))
    assert samples.min() >= 0
    assert abs(samples.mean() - mean) < 5 * np.sqrt(mean / DRAWS)
    assert _chi_square_p(samples, lambda k: stats.poisson.pmf(k, mean)) > 1e-5


@pytest.mark.parametrize("case", ["binomial", "poisson"])
def test_rejection_samplers_match_scipy_quickly(case):
    """The transformed-rejection paths (BTRS for n p >= 10, PTRS for a mean >= 10) with 20,000 draws, not
    marked slow, so every run (and every mutant of the kernels) meets them: mean and variance at 5 standard
    errors (the variance's SE is sigma^2 sqrt((2 + excess kurtosis) / N), scipy's moments), chi-square at
    p > 1e-5."""
    draws = 20_000
    if case == "binomial":
        n, p = 1000.0, 0.05  # n p = 50: BTRS
        samples = binomial_array(np.full((1, draws), n), np.full((1, draws), p), np.uint64(777), np.int64(0),
                                 np.uint64(5), np.int64(0))[0]
        distribution = stats.binom(n, p)
    else:
        samples = _poisson_array(37.5, draws, np.uint64(778))  # PTRS
        distribution = stats.poisson(37.5)
    mean, var, _, kurtosis = (float(m) for m in distribution.stats(moments="mvsk"))
    assert abs(samples.mean() - mean) < 5 * np.sqrt(var / draws)
    assert abs(samples.var(ddof=1) - var) < 5 * var * np.sqrt((2 + kurtosis) / draws)
    assert _chi_square_p(samples, distribution.pmf) > 1e-5


def test_ptrs_matches_scipy_at_its_lowest_mean():
    """PTRS's hat is tightest against the Poisson pmf at its lowest mean, 10 (Hörmann 1993, 'The transformed
    rejection method for generating Poisson random variables'): 200,000 draws there (not marked slow) detect
    a hat constant off by a tenth (measured on that mutant); chi-square at p > 1e-5, the mean at 5 standard
    errors."""
    samples = _poisson_array(10.0, 200_000, np.uint64(4242))
    assert abs(samples.mean() - 10.0) < 5 * np.sqrt(10.0 / 200_000)
    assert _chi_square_p(samples, lambda k: stats.poisson.pmf(k, 10.0)) > 1e-5


@pytest.mark.parametrize("mean", [10.0, 10.5, 12.0, 15.0, 20.0, 30.0, 50.0, 100.0, 1e3, 1e5, 1e7])
def test_ptrs_hat_covers_the_poisson_pmf_and_its_quick_acceptance_lies_inside_the_exact_test(mean):
    """PTRS draws u uniform on (-1/2, 1/2), sets us = 1/2 - |u| and k = floor((2 a / us + b) u + mean + 0.43), and
    accepts k with probability f(k) (a / us^2 + b) / (1/alpha), f the Poisson pmf (scipy), since a / us^2 + b is
    dk/du (Hörmann 1993, 'The transformed rejection method for generating Poisson random variables'): the
    accepted k then follow f exactly where that ratio stays at most 1, and the quick acceptance (us >= 0.07 and
    v <= v_r) is exact where the ratio there stays at least v_r. On a grid of 400,000 u the kernel's constants
    give a largest ratio of 0.9942-1.0051 (1.0051 at mean 10: the published hat falls 0.5% short on a sliver,
    a total variation distance from Poisson below 1e-6 by integrating over u) and a smallest quick-region ratio
    at least 1.0015 v_r; 1.01 bounds the first (a hat constant off by 1 in b - 3.4: 1.029), 0.99 the hat's
    tightness (a looser hat only wastes draws)."""
    a, b, inverse_alpha, v_r = kernels._ptrs_constants(mean)
    u = (np.arange(400_000) + 0.5) / 400_000 - 0.5
    us = 0.5 - np.abs(u)
    k = np.floor((2 * a / us + b) * u + mean + 0.43)
    ratio = stats.poisson.pmf(k, mean) * (a / us**2 + b) / inverse_alpha
    assert 0.99 < ratio.max() < 1.01
    assert ratio[us >= 0.07].min() > v_r


@pytest.mark.parametrize(("n", "p"), [(25, 0.5), (30, 0.4), (50, 0.2), (100, 0.1), (200, 0.05), (1000, 0.3),
                                    (10_000, 0.5), (1e6, 0.01)])
def test_btrs_hat_covers_the_binomial_pmf_and_its_quick_acceptance_lies_inside_the_exact_test(n, p):
    """BTRS draws u and us as PTRS does, k = floor((2 a / us + b) u + c), and accepts k when
    v alpha / (a / us^2 + b) <= f(k) / f(m), f the Binomial(n, p) pmf (scipy) and m its mode (Hörmann 1993,
    'The generation of binomial random variates', step 3.2): exact where the ratio
    f(k) / f(m) (a / us^2 + b) / alpha stays at most 1, and the quick acceptance (us >= 0.07 and v <= v_r)
    exact where the ratio there stays at least v_r. On a grid of 400,000 u the kernel's constants give a
    largest ratio of 0.964-0.993 and a smallest quick-region ratio 0.005-0.12 above v_r (a v_r of
    0.92 - 3.2 / b, one 1/b higher, passes it at six of these eight)."""
    a, b, c, alpha, v_r = kernels._btrs_constants(n, p)
    mode = np.floor((n + 1) * p)
    u = (np.arange(400_000) + 0.5) / 400_000 - 0.5
    us = 0.5 - np.abs(u)
    k = np.floor((2 * a / us + b) * u + c)
    inside = (k >= 0) & (k <= n)
    log_pmf_ratio = stats.binom.logpmf(k[inside], n, p) - stats.binom.logpmf(mode, n, p)
    ratio = np.exp(log_pmf_ratio) * (a / us[inside] ** 2 + b) / alpha
    assert 0.95 < ratio.max() < 1.0
    assert ratio[us[inside] >= 0.07].min() > v_r


@pytest.mark.parametrize(("n", "p"), [(25, 0.5), (60, 0.4)])
def test_btrs_matches_scipy_where_p_is_near_a_half(n, p):
    """BTRS's hat and squeeze depend on sqrt(n p (1 - p)) and on the mode: near p = 1/2 (not 0.05, where
    1 - p is close to 1) 200,000 draws (not marked slow) detect a wrong spread or bound term at p < 1e-200
    (measured on those mutants); chi-square at p > 1e-5 and the mean at 5 standard errors."""
    draws = 200_000
    samples = binomial_array(np.full((1, draws), float(n)), np.full((1, draws), p), np.uint64(99), np.int64(0),
                             np.uint64(3), np.int64(0))[0]
    mean, var = stats.binom.stats(n, p)
    assert abs(samples.mean() - mean) < 5 * np.sqrt(var / draws)
    assert _chi_square_p(samples, lambda k: stats.binom.pmf(k, n, p)) > 1e-5


def test_uniforms_are_uniform_and_keys_are_distinct():
    values = _uniforms(100_000)
    assert values.min() > 0 and values.max() < 1
    assert stats.kstest(values, "uniform").pvalue > 1e-5
    assert len(np.unique(values)) == len(values)


def test_a_replicates_draws_do_not_depend_on_the_block_it_is_drawn_in():
    """Replicate r draws with the key of its own number, first_replicate + row: a worker drawing replicates
    2-5 gives them the same numbers as one drawing 0-5 (what makes results identical on any executor)."""
    counts = np.tile([3.0, 40.0, 500.0, 1e6], (6, 1))  # inversion and BTRS
    probabilities = np.tile([0.3, 0.5, 0.1, 0.02], (6, 1))
    whole = binomial_array(counts, probabilities, np.uint64(5), np.int64(0), np.uint64(2), np.int64(7))
    part = binomial_array(counts[2:], probabilities[2:], np.uint64(5), np.int64(2), np.uint64(2), np.int64(7))
    np.testing.assert_array_equal(part, whole[2:])
    assert len({tuple(row) for row in whole}) == 6  # and replicates differ


def test_edge_cases_of_the_binomial():
    counts = np.array([[0.0, 10.0, 10.0, 10.0]])
    probabilities = np.array([[0.5, 0.0, 1.0, 0.5]])
    samples = binomial_array(counts, probabilities, np.uint64(1), np.int64(0), np.uint64(1), np.int64(0))
    assert samples[0, 0] == 0 and samples[0, 1] == 0 and samples[0, 2] == 10
    assert 0 <= samples[0, 3] <= 10


def test_a_poisson_with_mean_zero_draws_nobody():
    assert (_poisson_array(0.0, 1000, np.uint64(8)) == 0).all()


def test_inversion_at_a_uniform_equal_to_the_first_probability_returns_zero(monkeypatch):
    """The quantile is the smallest x with F(x) >= u: at u = F(0) = (1 - p)^n exactly (the float the sampler
    computes as exp(n log(1 - p))) the draw is 0, not 1."""
    inversion = getattr(kernels._binomial_inversion, "py_func", kernels._binomial_inversion)
    n, p = 5.0, 0.1
    log_q = np.log1p(-p)
    first = float(np.exp(n * log_q))
    monkeypatch.setattr(kernels, "uniform", lambda key, attempt: first if attempt == 0 else 0.5)
    assert inversion(n, p, log_q, np.uint64(0)) == 0.0


def test_inversion_couples_draws_monotonically_in_p():
    """Common random numbers: the same uniform with a larger p never gives fewer successes."""
    counts = np.full((1, 20_000), 30.0)
    low = binomial_array(counts, np.full((1, 20_000), 0.10), np.uint64(3), np.int64(0), np.uint64(5), np.int64(0))
    high = binomial_array(counts, np.full((1, 20_000), 0.12), np.uint64(3), np.int64(0), np.uint64(5), np.int64(0))
    assert np.all(high >= low)


@pytest.mark.parametrize("n, p", [(20.0, 0.5), (200.0, 0.05), (1000.0, 0.3), (1e6, 0.02), (37.0, 0.45)])
def test_btrs_exact_test_is_the_log_pmf_ratio_to_the_mode(n, p):
    """BTRS accepts k when the hat's uniform lies under log f(k) - log f(mode) (Hörmann 1993, step 3.2); the
    Stirling-series form in the kernel is checked against scipy's log pmf, the mode found by scipy's argmax
    (not from floor((n + 1) p)), over mean +- 8 standard deviations. Stirling's series with three terms errs
    by under 1/(1680 z^7) < 2e-10 at z >= 11; lgamma below: the tolerance 1e-8 is far above both."""
    spread = np.sqrt(n * p * (1 - p))
    k = np.arange(max(0.0, np.floor(n * p - 8 * spread)), min(n, np.ceil(n * p + 8 * spread)) + 1)
    log_pmf = stats.binom.logpmf(k, n, p)
    expected = log_pmf - log_pmf.max()
    ratio = getattr(kernels._log_ratio_to_mode, "py_func", kernels._log_ratio_to_mode)
    mode = getattr(kernels._binomial_mode, "py_func", kernels._binomial_mode)(n, p)
    actual = np.array([ratio(float(x), n, mode, p / (1 - p)) for x in k])
    np.testing.assert_allclose(actual, expected, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("n, p", [(1000.0, 0.009), (40.0, 0.2), (7.0, 0.5), (3.0, 0.01)])
def test_inversion_returns_the_binomial_quantile_of_its_uniform_out_to_the_far_tail(n, p, monkeypatch):
    """Inversion (Devroye 1986, 'Non-uniform random variate generation', X.4) returns the smallest x with
    F(x) >= u for its one uniform u: checked against scipy's quantile function, from the lower tail to
    1 - u = 1e-13 (x = 38 for n = 1000, p = 0.009: 9.7 standard deviations above the mean), where the
    search's safety bound (mean + 10 standard deviations, retried beyond) must not cut in. The uniform is set
    through the module's `uniform`, which the plain-Python function looks up when called. The running sum of
    the pmf rounds by ~1e-16 a term, so u is kept 1e-6 (relative) away from every value of F where the answer
    would change."""
    inversion = getattr(kernels._binomial_inversion, "py_func", kernels._binomial_inversion)
    support = np.arange(0, n + 1)
    cdf = stats.binom.cdf(support, n, p)
    for tail in (0.9, 0.5, 0.1, 1e-3, 1e-6, 1e-9, 1e-11, 1e-13):
        u = 1.0 - tail
        if np.any(np.abs(cdf - u) < 1e-6 * tail):
            continue
        monkeypatch.setattr(kernels, "uniform", lambda key, attempt, u=u: u if attempt == 0 else 0.0)
        expected = stats.binom.ppf(u, n, p)
        assert inversion(n, p, np.log1p(-p), np.uint64(0)) == expected, (tail, expected)


@pytest.mark.parametrize("mean", [0.05, 0.9, 4.0, 9.99])
def test_poisson_below_the_inversion_limit_returns_the_quantile_of_its_uniform(mean, monkeypatch):
    """Below INVERSION_LIMIT the Poisson sampler inverts its one uniform (Devroye 1986, X.3): the smallest x
    with F(x) >= u, checked against scipy's quantile function from the lower tail to 1 - u = 1e-12 (the
    transformed-rejection sampler, valid from a mean of 10 on, returns other values for the same uniforms).
    u is kept 1e-6 (relative) away from every value of F where the answer would change."""
    from aftermath.engines.kernels import INVERSION_LIMIT

    assert mean < INVERSION_LIMIT
    sampler = getattr(poisson, "py_func", poisson)
    cdf = stats.poisson.cdf(np.arange(0, 200), mean)
    checked = 0
    for u in (0.01, 0.2, 0.5, 0.8, 0.99, 1 - 1e-6, 1 - 1e-9, 1 - 1e-12):
        if np.any(np.abs(cdf - u) < 1e-6 * (1 - u)):
            continue
        monkeypatch.setattr(kernels, "uniform", lambda key, index, u=u: u if index == 0 else 0.5)
        assert sampler(mean, np.uint64(0)) == stats.poisson.ppf(u, mean), u
        checked += 1
    assert checked >= 6


def _splitmix64(state: int, outputs: int) -> list[int]:
    """SplitMix64 (Steele, Lea & Flood 2014; Vigna's reference splitmix64.c) in Python's integers."""
    mask, values = (1 << 64) - 1, []
    for _ in range(outputs):
        state = (state + 0x9E3779B97F4A7C15) & mask
        z = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        values.append(z ^ (z >> 31))
    return values


def test_uniforms_are_the_splitmix64_sequence_of_their_key():
    """A key's index-th uniform is the (index + 1)-th SplitMix64 output from state = key, its top 53 bits
    centred in (0, 1): the published first outputs from state 0 (0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4,
    0x06C45D188009454F), then a Python-integer version of the reference algorithm for other keys."""
    assert _splitmix64(0, 3) == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    rng = np.random.default_rng(5)
    for key in [0, 1, 2**63 + 12345, *rng.integers(0, 2**63, 5, dtype=np.uint64).tolist()]:
        expected = [((bits >> 11) + 0.5) * 2.0**-53 for bits in _splitmix64(key, 4)]
        assert [uniform(np.uint64(key), index) for index in range(4)] == expected, key


@pytest.mark.parametrize("n, p", [(30.0, 0.8), (7.0, 0.97), (300.0, 0.99)])
def test_a_binomial_with_p_above_a_half_mirrors_the_quantile_of_its_complement(n, p, monkeypatch):
    """For p > 1/2 and n (1 - p) below INVERSION_LIMIT the sampler draws the failures, Binomial(n, 1 - p), by
    inversion and returns n minus them: n - F^-1(u; n, 1 - p) with scipy's quantile function (still monotone
    in p, so common random numbers keep coupling a policy run to its baseline). The inversion and its
    uniform are set to their plain-Python forms so the uniform can be chosen."""
    monkeypatch.setattr(kernels, "_binomial_inversion",
                        getattr(kernels._binomial_inversion, "py_func", kernels._binomial_inversion))
    sampler = getattr(kernels.binomial, "py_func", kernels.binomial)
    for u in (0.03, 0.3, 0.6, 0.9):
        monkeypatch.setattr(kernels, "uniform", lambda key, attempt, u=u: u if attempt == 0 else 0.0)
        assert sampler(n, p, np.uint64(0), np.nan) == n - stats.binom.ppf(u, n, 1 - p), u


def _btrs_published(n: float, p: float) -> dict[str, float]:
    """Algorithm BTRS's constants as published (Hörmann 1993, 'The generation of binomial random variates',
    J. Statist. Comput. Simul. 46, table 1 / algorithm BTRS), for the tests below to check the sampler against."""
    spread = math.sqrt(n * p * (1 - p))
    b = 1.15 + 2.53 * spread
    return {"a": -0.0873 + 0.0248 * b + 0.01 * p, "b": b, "c": n * p + 0.5, "v_r": 0.92 - 4.2 / b,
            "alpha": (2.83 + 5.1 / b) * spread, "m": math.floor((n + 1) * p)}


def _btrs_at(n: float, p: float, uniforms: list[float], monkeypatch) -> float:
    """BTRS (plain Python) fed these uniforms in turn."""
    monkeypatch.setattr(kernels, "uniform", lambda key, index: uniforms[index])
    return getattr(kernels._binomial_btrs, "py_func", kernels._binomial_btrs)(n, p, np.uint64(0))


@pytest.mark.parametrize(("n", "p", "first"), [(25.0, 0.5, 0.97), (1000.0, 0.0101, None), (400.0, 0.2, 0.02)])
def test_btrs_accepts_exactly_below_the_published_acceptance_bound(n, p, first, monkeypatch):
    """Outside the quick-acceptance region (us < 0.07), BTRS accepts k = floor((2a/us + b) u + c) when
    v <= f(k) / f(m) (a / us^2 + b) / alpha, from the published constants and scipy's pmf: v a millionth
    below that bound returns k, a millionth above rejects and the next pair (u = 0, v = 0.01: quick
    acceptance at floor(c)) decides. `first` None picks the first uniform that gives k = 0, the lower end
    of the support (reachable only through this test)."""
    constants = _btrs_published(n, p)
    a, b, c, alpha, m = (constants[name] for name in ("a", "b", "c", "alpha", "m"))

    def k_of(first: float) -> float:
        u = first - 0.5
        return math.floor((2 * a / (0.5 - abs(u)) + b) * u + c)

    if first is None:
        first = next(x for x in np.linspace(1e-4, 0.2, 20_000) if k_of(x) == 0)
    u = first - 0.5
    us = 0.5 - abs(u)
    k = k_of(first)
    assert us < 0.07 and 0 <= k <= n and k != math.floor(c)
    bound = math.exp(stats.binom.logpmf(k, n, p) - stats.binom.logpmf(m, n, p)) * (a / us**2 + b) / alpha
    assert bound < 0.999
    assert _btrs_at(n, p, [first, bound * (1 - 1e-6), 0.5, 0.01], monkeypatch) == k
    assert _btrs_at(n, p, [first, bound * (1 + 1e-6), 0.5, 0.01], monkeypatch) == math.floor(c)
