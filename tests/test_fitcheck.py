"""fit-check's verdicts: a miss is a miss, a vacuous interval is no hit, and distances are shown as ratios."""

from __future__ import annotations

import math

import pytest

from aftermath import compile_model, load_scenario, simulate
from aftermath.cli.fitcheck import distance_text
from aftermath.fitcheck import ObservationCheck, check_observations, fit_summary, is_vacuous, log_ratio


def check(value: float, low: float, high: float, band: tuple[float, float, float], kind: str = "range"):
    median, band_low, band_high = band
    return ObservationCheck("x", "2018-08", value, low, high, "A07", "", False, 0.35, median, band_low, band_high,
                            median, band_low, band_high, kind)


def test_an_interval_from_zero_around_the_band_is_vacuous_not_a_hit() -> None:
    libya = check(3500.0, 0.0, 4000.0, (326.0, 231.0, 436.0))
    assert libya.in_band and libya.vacuous and libya.verdict == "vacuous"
    assert not libya.within_tolerance
    assert libya.distance == pytest.approx(math.log(3500 / 436))
    summary = fit_summary([libya])["out_of_sample"]
    assert summary["hits"] == 0 and summary["vacuous"] == 1


def test_a_vacuous_interval_the_band_lies_above_is_a_miss() -> None:
    remnant = check(3000.0, 0.0, 3000.0, (5418.0, 4451.0, 7427.0))
    assert remnant.verdict == "miss"
    assert remnant.distance == pytest.approx(math.log(3000 / 4451))
    assert distance_text(remnant.distance) == f"{4451 / 3000:.3g}x below"


def test_an_interval_spanning_an_order_of_magnitude_is_vacuous() -> None:
    assert is_vacuous(100.0, 1000.0) and is_vacuous(0.0, 5.0)
    assert not is_vacuous(2926.0, 6000.0) and not is_vacuous(27000.0, 31000.0)
    assert check(500.0, 100.0, 1000.0, (400.0, 300.0, 450.0)).verdict == "vacuous"
    assert check(29000.0, 27000.0, 31000.0, (30000.0, 28000.0, 33000.0)).verdict == "hit"


def test_a_value_ten_times_above_the_band_shows_its_distance_not_zero_error() -> None:
    far = check(10_000.0, 10_000.0, 10_000.0, (800.0, 700.0, 1000.0), kind="point")
    assert far.verdict == "miss"
    assert far.distance == pytest.approx(math.log(10))
    assert distance_text(far.distance) == "10x above"
    assert far.error == pytest.approx(0.92)
    assert distance_text(log_ratio(5.0, 1.0, 10.0)) == "in band"


def test_one_sided_bounds_are_met_not_hit() -> None:
    under = check(500.0, 0.0, 500.0, (450.0, 400.0, 520.0), kind="up_to")
    assert under.verdict == "bound" and not under.vacuous
    assert check(500.0, 0.0, 500.0, (650.0, 600.0, 700.0), kind="up_to").verdict == "miss"


def test_the_default_scenarios_fractional_affiliate_counts_are_not_hits() -> None:
    """A07-A10 count all fighters of a theatre from 0 up: whatever the model says below them is no hit."""
    scenario = load_scenario()
    data = simulate(compile_model(scenario), replicates=1, engine="deterministic", keep_compartments=False)
    checks = {c.source: c for c in check_observations(scenario, data)}
    for source in ("A07", "A08", "A09", "A10", "X02"):
        assert checks[source].verdict in ("vacuous", "miss"), (source, checks[source].verdict)
    assert all(checks[source].distance > 1.0 for source in ("A07", "A08", "A09", "A10"))  # e x above the band
    out = fit_summary(list(checks.values()))["out_of_sample"]
    assert out["hits"] + out["misses"] + out["vacuous"] + out["bounds"] == out["observations"]


def test_the_home_fronts_counts_are_checked_against_their_predictive_band() -> None:
    """400 deterministic runs of one parameter set: the latent band is one value, and the predictive band that
    value times exp(sigma Z) at Z's 5% and 95% points, sigma the error of the figure's evidence grade (as for
    every other observation). The 95% point of 400 standard normals has sd 0.106 (sqrt(0.05 x 0.95 / 400) /
    phi(1.645)), so 0.55 is 5.2 sd (2e-7 per end; 36 ends)."""
    from aftermath.scenario.observation_model import error_of

    scenario = load_scenario()
    data = simulate(compile_model(scenario), replicates=400, engine="deterministic", keep_compartments=False)
    checks = [c for c in check_observations(scenario, data) if c.source.startswith("HF")]
    observations = {o.source: o for o in scenario.home_front.observations}
    assert len(checks) == len(observations) == 9
    for c in checks:
        sigma = error_of(scenario, observations[c.source]).sigma
        assert sigma in (0.2, 0.3, 0.5)
        assert c.latent_low == pytest.approx(c.latent_high)
        assert math.log(c.band_high / c.latent_median) / sigma == pytest.approx(1.645, abs=0.55)
        assert math.log(c.latent_median / c.band_low) / sigma == pytest.approx(1.645, abs=0.55)


def test_one_sided_figures_read_as_written() -> None:
    from aftermath.cli.fitcheck import _observed

    assert _observed(check(3000, 0, 3000, (5000, 3500, 8000), kind="up_to"), "count") == "up to 3,000"
    assert _observed(check(300, 300, math.inf, (500, 300, 800), kind="at_least"), "count") == "at least 300"
    assert _observed(check(3500, 3000, 4000, (500, 300, 800)), "count").startswith("3,500")
