"""Parsing of the command-line forms shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from aftermath.cli.app import errors, fail
from aftermath.errors import StoreError
from aftermath.resources import MAX_SEED

if TYPE_CHECKING:
    from aftermath.inference.shipped import ParameterSource
    from aftermath.scenario.schema import Scenario

# What option definitions show, so that `aftermath --help` need not import the engines (scipy, numba) or
# the decision methods: each equals the library's own constant (tests/test_startup.py checks).
ENGINES = ("stochastic", "deterministic", "ode")  # aftermath.engines.simulate.ENGINES
ODE_METHODS = ("LSODA", "RK45", "DOP853", "Radau", "BDF")  # aftermath.engines.ode.METHODS
ODE_METHOD, ODE_RTOL, ODE_ATOL = "LSODA", 1e-7, 1e-6  # aftermath.engines.ode.OdeOptions()'s defaults
SENSITIVITY_METHODS = ("sobol", "morris", "rbd-fast", "delta")  # aftermath.decisions.sensitivity.METHODS
RBD_FAST_MINIMUM = 200  # aftermath.decisions.sensitivity.MINIMUM["rbd-fast"]
ROBUSTNESS_METRICS = ("mean", "p90", "regret", "satisficing")  # aftermath.decisions.optimise.METRICS
FIT_END = "2017-12"  # aftermath.fitcheck.FIT_END, aftermath.report.build.FIT_UNTIL, inference.calibration.DEFAULT_UNTIL
REPORT_RUNS = 100  # aftermath.report.build.STOCK_RUNS
SAMPLERS = ("lhs", "mc")  # aftermath.experiments.sampling.SAMPLERS
ALL_ARMS = "all"  # aftermath.decisions.stored.ALL_ARMS

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


PosteriorOption = Annotated[
    int | None,
    typer.Option("--posterior", help="Draw parameters from the posterior of this stored calibration run "
                 "(see 'aftermath calibrate') instead of the scenario's shipped posterior or the priors."),
]
PriorOption = Annotated[bool, typer.Option(
    "--prior", help="Draw parameters from their declared distributions (the priors), not from the posterior "
    "shipped beside the scenario (NAME.posterior.csv), which is used by default when there is one.")]


def parameters_for(scenario: Scenario, run_id: int | None, store: Path, prior: bool = False,
                   fixed: bool = False, fixed_option: str = "--fixed-parameters") -> ParameterSource:
    """Where a command's parameter draws come from (`aftermath.inference.shipped.parameter_source`):
    the stored calibration `run_id`, the priors with `prior`, fixed values with `fixed` (the option
    `fixed_option`), else the posterior shipped beside the scenario. Prints a warning if the shipped
    draws are stale; exits 2 with one line if the options conflict or the draws cannot be used."""
    from aftermath.inference.calibration import load_posterior
    from aftermath.inference.shipped import ShippedPosteriorError, parameter_source
    from aftermath.store.database import Store

    given = [name for name, on in (("--posterior", run_id is not None), ("--prior", prior),
                                   (fixed_option, fixed)) if on]
    if len(given) > 1:
        fail(f"{' and '.join(given)}: give only one of them (each says where the parameters come from)")
    stored = None
    try:
        if run_id is not None:
            stored = load_posterior(Store(store, lock_timeout=10), run_id)
        source = parameter_source(scenario, stored, prior=prior, fixed=fixed)
    except ShippedPosteriorError as exc:  # only without --posterior
        fail(str(exc))
    except (StoreError, ValueError) as exc:
        fail(f"--posterior {run_id}: {exc}")
    if source.warning:
        errors.print(f"warning: {source.warning}; the parameters are drawn from the priors", markup=False,
                     highlight=False, soft_wrap=True)
    return source

