"""Proper scores: coverage, CRPS, log score, interval score and PIT behave as their definitions say."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binom, chisquare, norm

from aftermath.scoring import Target, score_ensemble, summarise


def point(value: float, kind: str = "point", lower: float | None = None, upper: float | None = None) -> Target:
    return Target("x", "2016-12", "S", kind, value, value if lower is None else lower,
                  value if upper is None else upper)


def test_crps_and_log_score_match_the_normal_closed_forms() -> None:
    """On log(1 + x) an ensemble of expm1(N(mu, s)) is N(mu, s): CRPS = s (z (2 Phi(z) - 1) + 2 phi(z) - 1/sqrt(pi))."""
    mu, s, y = 7.0, 0.3, 7.4
    samples = np.expm1(norm.ppf((np.arange(4000) + 0.5) / 4000, mu, s))
    score = score_ensemble(point(math.expm1(y)), samples, "model")
    z = (y - mu) / s
    crps = s * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / math.sqrt(math.pi))
    assert score.crps == pytest.approx(crps, rel=0.01)
    assert score.log_score == pytest.approx(-norm.logpdf(y, mu, s), rel=0.05)
    assert score.pit == pytest.approx(norm.cdf(z), abs=0.002)
    assert score.covered90 and not score.covered50


def test_the_interval_score_is_width_plus_the_penalty_outside() -> None:
    samples = np.expm1(np.linspace(1.0, 3.0, 2001))  # log1p-uniform on [1, 3]: 90% interval [1.1, 2.9]
    score = score_ensemble(point(math.expm1(3.5)), samples, "model")
    assert score.interval90 == pytest.approx((2.9 - 1.1) + 2 / 0.1 * (3.5 - 2.9), rel=1e-3)
    assert score.interval50 == pytest.approx((2.5 - 1.5) + 2 / 0.5 * (3.5 - 2.5), rel=1e-3)
    assert score.covered90 is False and score.pit == 1.0


def test_a_calibrated_forecast_covers_nominally_and_a_narrow_one_does_not() -> None:
    rng = np.random.default_rng(5)
    truths = rng.normal(8.0, 0.4, size=300)
    calibrated, narrow = [], []
    for i, truth in enumerate(truths):
        target = Target("x", "2016-12", f"S{i}", "point", float(np.expm1(truth)), float(np.expm1(truth)),
                        float(np.expm1(truth)))
        calibrated.append(score_ensemble(target, np.expm1(rng.normal(8.0, 0.4, 400)), "calibrated"))
        narrow.append(score_ensemble(target, np.expm1(rng.normal(8.0, 0.1, 400)), "narrow"))
    good, bad = summarise(calibrated, "calibrated"), summarise(narrow, "narrow")
    for level, nominal in (("90%", 0.9), ("50%", 0.5)):
        coverage = good.coverage[level]
        # the flag is the 95% range of a binomial(300, nominal) share (scipy), whatever this draw's share
        low, high = binom.interval(0.95, 300, nominal)
        assert (coverage.expected_low, coverage.expected_high) == pytest.approx((low / 300, high / 300))
        assert coverage.within_sampling_error == (low / 300 <= coverage.share <= high / 300)
        # the calibrated share at 5 binomial SE: exact tails 3.9e-6 (90%) and 4.2e-7 (50%); measured over 150
        # seeds its sd is the binomial one (0.0174 and 0.0282)
        assert coverage.share == pytest.approx(nominal, abs=5 * math.sqrt(nominal * (1 - nominal) / 300))
    # the narrow forecast covers P(|Z| < 1.645 / 4) = 0.32 at 90% (measured 0.321, sd 0.027): 0.5 is 6.7 sd off
    assert not bad.coverage["90%"].within_sampling_error and bad.coverage["90%"].share < 0.5
    assert chisquare(good.pit_histogram).pvalue > 1e-6  # a flat PIT histogram: a false failure 1 in 10^6
    assert chisquare(bad.pit_histogram).pvalue < 1e-6  # U-shaped: measured at most 4e-88 over 150 seeds
    # measured over 150 seeds, the differences are 10 sd (CRPS) and 11 sd (interval score) below zero
    assert good.crps < bad.crps and good.log_score < bad.log_score and good.interval90 < bad.interval90


def test_bounds_are_censored_and_not_counted_as_coverage() -> None:
    samples = np.linspace(4000.0, 7000.0, 500)
    up_to = score_ensemble(point(3000.0, "up_to", 0.0, 3000.0), samples, "model")
    assert up_to.consistent is False and up_to.covered90 is None
    assert up_to.log_score == pytest.approx(-math.log(1 / 502))
    at_least = score_ensemble(point(5600.0, "at_least", 5600.0, math.inf), samples, "model")
    assert at_least.consistent is True and at_least.log_score < up_to.log_score
    summary = summarise([up_to, at_least], "model")
    assert (summary.scored, summary.bounds, summary.bounds_met) == (0, 2, 1)
    assert summary.coverage["90%"].targets == 0


def test_a_vacuous_range_is_scored_as_vacuous_not_as_a_hit() -> None:
    samples = np.linspace(230.0, 440.0, 200)
    libya = score_ensemble(point(3500.0, "range", 0.0, 4000.0), samples, "model")
    assert libya.target.scored_as == "vacuous" and libya.covered90 is None and libya.crps is None
    summary = summarise([libya], "model")
    assert (summary.vacuous, summary.vacuous_overlapping, summary.coverage["90%"].inside) == (1, 1, 0)


def test_a_range_is_scored_at_its_value_and_a_bad_ensemble_is_refused() -> None:
    score = score_ensemble(point(29000.0, "range", 27000.0, 31000.0), np.full(50, 40000.0), "model")
    assert score.target.scored_as == "value" and score.covered90 is False and np.isfinite(score.log_score)
    with pytest.raises(ValueError, match="no finite samples"):
        score_ensemble(point(1.0), np.array([np.nan]), "model")


@pytest.mark.parametrize("nominal", [0.5, 0.9])
def test_the_calibrated_range_of_figures_scored_once_is_the_binomials(nominal: float) -> None:
    from aftermath.scoring import calibrated_range

    for n in (1, 2, 7, 14, 36, 53, 133, 400):
        assert calibrated_range(nominal, [1] * n) == tuple(int(x) for x in binom.interval(0.95, n, nominal))


def test_the_calibrated_range_of_repeated_figures_is_their_exact_distributions() -> None:
    """By enumeration of every hit-or-miss of 12 figures scored 1, 2 or 3 times (4,096 outcomes): the range's
    ends are the smallest counts whose cumulative probability reaches 2.5% and 97.5%."""
    import itertools

    from aftermath.scoring import calibrated_range

    repeats, nominal = [3, 3, 3, 3, 2, 2, 2, 1, 1, 1, 1, 1], 0.9
    probability = np.zeros(sum(repeats) + 1)
    for hits in itertools.product((0, 1), repeat=len(repeats)):
        count = sum(r * h for r, h in zip(repeats, hits, strict=True))
        probability[count] += np.prod([nominal if h else 1 - nominal for h in hits])
    cumulative = np.cumsum(probability)
    expected = (int(np.argmax(cumulative >= 0.025)), int(np.argmax(cumulative >= 0.975)))
    assert calibrated_range(nominal, repeats) == expected
    assert calibrated_range(nominal, repeats)[0] < calibrated_range(nominal, [1] * sum(repeats))[0]


def test_a_figure_scored_from_several_cutoffs_counts_once_in_the_pooled_range() -> None:
    """Twenty figures each forecast from three cutoffs: 60 scores, but the range is that of 20 figures x 3."""
    from aftermath.scoring import calibrated_range

    rng = np.random.default_rng(2)
    scores = []
    for i in range(20):
        target = point(1000.0 + i)
        scores += [score_ensemble(target, rng.normal(1000.0, 50.0, 200), "model") for _ in range(3)]
    coverage = summarise(scores, "model").coverage["90%"]
    low, high = calibrated_range(0.9, [3] * 20)
    assert coverage.targets == 60 and (coverage.expected_low, coverage.expected_high) == (low / 60, high / 60)
    assert low / 60 < binom.interval(0.95, 60, 0.9)[0] / 60
