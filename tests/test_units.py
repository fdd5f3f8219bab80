"""Units: parsing, dimension algebra, conversion to base units (months, persons)."""

from __future__ import annotations

import pytest

from aftermath.units import PER_TIME, PERSONS, PERSONS_PER_TIME, TIME, parse_unit, to_base


@pytest.mark.parametrize(
    ("text", "dimension", "factor"),
    [
        ("per month", PER_TIME, 1.0),
        ("per year", PER_TIME, 1 / 12),
        ("1/year", PER_TIME, 1 / 12),
        ("per day", PER_TIME, 365.25 / 12),
        ("persons per year", PERSONS_PER_TIME, 1 / 12),
        ("persons/month", PERSONS_PER_TIME, 1.0),
        ("persons", PERSONS, 1.0),
        ("years", TIME, 12.0),
        ("months", TIME, 1.0),
    ],
)
def test_units_parse_to_dimension_and_base_factor(text, dimension, factor):
    unit = parse_unit(text)
    assert unit.same_dimension(dimension)
    assert to_base(1.0, text) == pytest.approx(factor)


@pytest.mark.parametrize("text", ["fraction", "probability", "dimensionless", "ratio", "1"])
def test_dimensionless_units(text):
    assert parse_unit(text).dimensionless


@pytest.mark.parametrize("text", ["furlongs", "per", "persons per", "per fortnight", "kg"])
def test_unknown_units_are_refused(text):
    with pytest.raises(ValueError, match="unknown unit"):
        parse_unit(text)


def test_hazard_per_year_times_years_is_dimensionless_and_scales_cancel():
    product = parse_unit("per year") * parse_unit("years")
    assert product.dimensionless
    assert product.scale == pytest.approx(1.0)
