"""Units of scenario quantities: two dimensions (time, persons), converted once at compile time.

The model's base units are the month and the person. A value written `per year` is divided by
12 when the scenario is compiled, so engines never see a unit. Only this small vocabulary is
needed, and a hand-written checker names the offending field exactly (pint would need the same
glue for 'per year' and has no persons dimension).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_TIME_WORDS = {
    "month": 1.0,
    "months": 1.0,
    "year": 12.0,
    "years": 12.0,
    "quarter": 3.0,
    "quarters": 3.0,
    "week": 12.0 / 52.1775,
    "weeks": 12.0 / 52.1775,
    "day": 12.0 / 365.25,
    "days": 12.0 / 365.25,
}
_PERSON_WORDS = {"person", "persons", "people"}
_DIMENSIONLESS_WORDS = {"1", "dimensionless", "fraction", "probability", "share", "ratio", "index"}
#: Units whose values must lie in [0, 1].
PROBABILITY_UNITS = {"fraction", "probability", "share"}

VOCABULARY = (
    "'persons', 'per month', 'per year', 'persons per year', 'months', 'years', 'fraction', "
    "'probability', 'ratio' or 'dimensionless' (also written with '/', e.g. 'persons/month')"
)


@dataclass(frozen=True)
class Unit:
    """Exponents of time and persons, and the factor converting a value to base units."""

    time: int = 0
    persons: int = 0
    scale: float = 1.0

    def __mul__(self, other: Unit) -> Unit:
        return Unit(self.time + other.time, self.persons + other.persons, self.scale * other.scale)

    def __truediv__(self, other: Unit) -> Unit:
        return Unit(self.time - other.time, self.persons - other.persons, self.scale / other.scale)

    def __pow__(self, exponent: int) -> Unit:
        return Unit(self.time * exponent, self.persons * exponent, self.scale**exponent)

    def same_dimension(self, other: Unit) -> bool:
        return self.time == other.time and self.persons == other.persons

    @property
    def dimensionless(self) -> bool:
        return self.time == 0 and self.persons == 0

    def describe(self) -> str:
        """A readable name of the dimension, e.g. 'persons per month'."""
        parts = []
        if self.persons:
            parts.append("persons" if self.persons == 1 else f"persons^{self.persons}")
        if self.time > 0:
            parts.append("months" if self.time == 1 else f"months^{self.time}")
        text = " ".join(parts) if parts else ("dimensionless" if self.time >= 0 else "")
        if self.time < 0:
            per = "per month" if self.time == -1 else f"per month^{-self.time}"
            text = f"{text} {per}".strip()
        return text


DIMENSIONLESS = Unit()
PERSONS = Unit(persons=1)
PER_TIME = Unit(time=-1)
PERSONS_PER_TIME = Unit(time=-1, persons=1)
TIME = Unit(time=1)


def _word_unit(word: str) -> Unit | None:
    if word in _TIME_WORDS:
        return Unit(time=1, scale=_TIME_WORDS[word])
    if word in _PERSON_WORDS:
        return PERSONS
    if word in _DIMENSIONLESS_WORDS:
        return DIMENSIONLESS
    return None


def _product(text: str) -> Unit | None:
    unit = DIMENSIONLESS
    for word in text.split():
        part = _word_unit(word)
        if part is None:
            return None
        unit = unit * part
    return unit


def parse_unit(text: str) -> Unit:
    """Parse 'per year', 'persons/month', 'fraction'...; raise ValueError naming the vocabulary."""
    cleaned = re.sub(r"\s+", " ", str(text).strip().lower())
    numerator, _, denominator = cleaned.replace("/", " per ").partition(" per ")
    if cleaned.startswith("per "):
        numerator, denominator = "", cleaned[4:]
    top = _product(numerator) if numerator.strip() else DIMENSIONLESS
    bottom = _product(denominator) if denominator.strip() else DIMENSIONLESS
    if top is None or bottom is None or (" per " in f" {cleaned} " and not denominator.strip()):
        raise ValueError(f"unknown unit {text!r}")
    return top / bottom


def is_probability_unit(text: str) -> bool:
    return str(text).strip().lower() in PROBABILITY_UNITS


def to_base(value: float | np.ndarray, unit: str) -> float | np.ndarray:
    """A value written in `unit` expressed in base units (months, persons): e.g. per year -> per month."""
    return value * parse_unit(unit).scale
