"""Parsing of the command-line forms shared by several commands."""

from __future__ import annotations

from typing import Annotated

import typer

from aftermath.resources import MAX_SEED

# What option definitions show, so that `aftermath --help` need not import the engines (scipy, numba) or
# the decision methods: each equals the library's own constant (tests/test_startup.py checks).
ENGINES = ("stochastic", "deterministic", "ode")  # aftermath.engines.simulate.ENGINES
ODE_METHODS = ("LSODA", "RK45", "DOP853", "Radau", "BDF")  # aftermath.engines.ode.METHODS
ODE_METHOD, ODE_RTOL, ODE_ATOL = "LSODA", 1e-7, 1e-6  # aftermath.engines.ode.OdeOptions()'s defaults
SENSITIVITY_METHODS = ("sobol", "morris", "rbd-fast", "delta")  # aftermath.decisions.sensitivity.METHODS
RBD_FAST_MINIMUM = 200  # aftermath.decisions.sensitivity.MINIMUM["rbd-fast"]
ROBUSTNESS_METRICS = ("mean", "p90", "regret", "satisficing")  # aftermath.decisions.optimise.METRICS
FIT_END = "2017-12"  # aftermath.fitcheck.FIT_END and aftermath.report.build.FIT_UNTIL
REPORT_RUNS = 100  # aftermath.report.build.STOCK_RUNS
SAMPLERS = ("lhs", "mc")  # aftermath.experiments.sampling.SAMPLERS

SeedOption = Annotated[
    int, typer.Option(min=0, max=MAX_SEED, help="Random seed, 0 to 2^63-1; the same seed gives the same numbers.")
]


def parse_assignments(items: list[str] | None) -> dict[str, float]:
    """'--set name=value' options as a mapping."""
    values: dict[str, float] = {}
    for item in items or []:
        name, sep, text = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            values[name.strip()] = float(text)
        except ValueError:
            raise typer.BadParameter(f"{item!r}: expected PARAMETER=NUMBER, e.g. return_hazard=0.2") from None
    return values


def parse_policy(text: str) -> dict[str, float | None]:
    """'A', 'A=0.5' or a combination 'A+B=0.5' as {policy: strength or None for its default}."""
    policies: dict[str, float | None] = {}
    for part in text.split("+"):
        name, sep, strength = part.partition("=")
        if not name.strip():
            raise typer.BadParameter(f"{text!r}: expected NAME, NAME=STRENGTH or A+B")
        try:
            policies[name.strip()] = float(strength) if sep else None
        except ValueError:
            raise typer.BadParameter(f"{text!r}: the strength {strength!r} is not a number") from None
    return policies


def parse_policies(items: list[str] | None) -> dict[str, float | None]:
    """Several --policy options applied together."""
    combined: dict[str, float | None] = {}
    for item in items or []:
        combined.update(parse_policy(item))
    return combined
