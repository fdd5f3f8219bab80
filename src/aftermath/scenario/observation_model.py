"""Which error distribution each observation carries: its own, its evidence grade's, or a default.

Kept in the scenario layer so validation can check a figure against the error it will be scored with;
the likelihood and predictive draws are in `aftermath.inference.observation`.
"""

from __future__ import annotations

from typing import Protocol

from aftermath.scenario.evidence import figures
from aftermath.scenario.schema import ObservationError, ObservationModel, Scenario


class Sourced(Protocol):
    """A recorded figure: an Observation (which may carry its own `error`), or a sub-model's (the home front's)."""

    source: str

_ASSUMPTION = (
    "built-in default: a figure's log scatters around the model's value with sigma 0.15 (grade H), 0.3 "
    "(grade M), 0.5 (grade L or ungraded); the fit-check tolerances (20/35/50%) read as about 1.3 sd, "
    "widened for the disagreement between sources seen in figures.csv; each sigma's range, two thirds to "
    "twice its value, is judged"
)
BUILTIN_MODEL = ObservationModel(
    grades={
        "H": ObservationError(distribution="lognormal", sigma=0.15, range=(0.1, 0.3), assumption=_ASSUMPTION),
        "M": ObservationError(distribution="lognormal", sigma=0.3, range=(0.2, 0.6), assumption=_ASSUMPTION),
        "L": ObservationError(distribution="lognormal", sigma=0.5, range=(0.33, 1.0), assumption=_ASSUMPTION),
    },
    default=ObservationError(distribution="lognormal", sigma=0.5, range=(0.33, 1.0), assumption=_ASSUMPTION),
)
"""Used when a scenario declares no `observation_model`."""
FLOOR = 1e-9
"""Model values below this are taken as this (a lognormal needs m > 0); in the outcome's unit."""


def observation_model(scenario: Scenario) -> ObservationModel:
    """The scenario's observation model, or BUILTIN_MODEL."""
    return scenario.observation_model or BUILTIN_MODEL


def grade_of(source: str) -> str | None:
    """The evidence grade (H, M, L) figures.csv gives a figure id, or None."""
    row = figures().get(source)
    return row["confidence"] if row and row["confidence"] in ("H", "M", "L") else None


def error_of(scenario: Scenario, observation: Sourced) -> ObservationError:
    """The error distribution of one observation: its own (an Observation's `error`), its grade's, or the model's
    default."""
    own = getattr(observation, "error", None)
    if own is not None:
        return own
    model = observation_model(scenario)
    grade = grade_of(observation.source)
    return model.grades.get(grade, model.default) if grade else model.default  # type: ignore[call-overload]
