"""fit-check: every observation of a scenario against the model's band at its date."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from aftermath.cli.app import app, console
from aftermath.cli.core import ScenarioArg
from aftermath.cli.display import cell
from aftermath.cli.options import FIT_END, PosteriorOption, PriorOption, parameters_for
from aftermath.cli.progress import progress
from aftermath.formatting import Kind, band, number, span
from aftermath.scenario.evidence import short_citation
from aftermath.store import DEFAULT_STORE

if TYPE_CHECKING:
    from aftermath.fitcheck import ObservationCheck


@app.command("fit-check")
def fit_check_command(
    scenario: ScenarioArg = None,
    replicates: Annotated[int, typer.Option("--replicates", "-n", min=1, help="Runs in the ensemble.")] = 200,
    seed: Annotated[int, typer.Option(min=0, help="Random seed; the same seed gives the same numbers.")] = 1,
    uncertainty: Annotated[
        bool, typer.Option("--uncertainty/--no-uncertainty", help="Draw parameters from their distributions.")
    ] = True,
    fitted_until: Annotated[str, typer.Option(help="Last month of the fitted window (YYYY-MM).")] = FIT_END,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON on stdout.")] = False,
    posterior: PosteriorOption = None,
    prior: PriorOption = False,
    store: Annotated[Path, typer.Option("--store", help="The DuckDB run store holding --posterior.")] = DEFAULT_STORE,
) -> None:
    """Show each observation against the model band: in band, within tolerance, in- or out-of-sample."""
    from aftermath.fitcheck import VACUOUS_RATIO, fit_check, fit_summary
    from aftermath.scenario.loader import load_scenario
    from aftermath.scenario.schema import parse_month

    try:
        parse_month(fitted_until)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--fitted-until") from None
    loaded = load_scenario(scenario)
    source = parameters_for(loaded, posterior, store, prior, not uncertainty, "--no-uncertainty")
    with progress(f"{loaded.name}: fit-check", total=replicates, quiet=as_json) as tracker:
        checks = fit_check(loaded, replicates=replicates, seed=seed, uncertainty=uncertainty,
                           fitted_until=fitted_until, posterior=source.posterior, progress=tracker.advance)
    summary = fit_summary(checks)
    if as_json:
        payload = {
            "scenario": loaded.name,
            "replicates": replicates,
            "seed": seed,
            "uncertainty": uncertainty,
            "fitted_until": fitted_until,
            "posterior": posterior,
            "parameters": {"from": source.kind, "label": source.label, "warning": source.warning},
            "band": "predictive (model with observation error); latent_* is the model's state",
            "summary": summary,
            "observations": [check.as_dict() for check in checks],
        }
        typer.echo(json.dumps(payload, indent=2))
        return
    grid = Table(
        "", "source", "outcome", "date", "observed", "predictive band (median, 5-95%)", "latent 5-95%", "verdict",
        "value vs band", "error", "tolerance",
        title=f"{loaded.title}\nobservations against the model's predictive band (with observation error): "
        f"{replicates} runs, seed {seed}, "
        f"{f'parameters drawn from the {source.label} and chance' if uncertainty else 'chance only'}; "
        f"fitted to {fitted_until}",
        title_justify="left",
    )
    for check in checks:
        kind = check.quantity
        grid.add_row(
            "in-sample" if check.in_sample else "out-of-sample",
            short_citation(check.source),
            check.label or check.outcome,
            check.date,
            _observed(check, kind),
            cell(check.median, check.band_low, check.band_high, kind),
            span(check.latent_low, check.latent_high, kind),
            check.verdict,
            distance_text(check.distance),
            "-" if check.vacuous else number(check.error, "share"),
            f"{number(check.tolerance, 'share')} "
            f"{'vacuous' if check.vacuous else 'ok' if check.within_tolerance else 'OUT'}",
        )
    console.print(grid)
    for label, counts in summary.items():
        console.print(
            f"{label.replace('_', '-')}: {counts['observations']} observations: {counts['hits']} hits, "
            f"{counts['misses']} {'miss' if counts['misses'] == 1 else 'misses'}, "
            f"{counts['vacuous']} vacuous (interval from 0 or spanning "
            f"{number(VACUOUS_RATIO)}x: not counted as hits), {counts['bounds']} one-sided bounds met; "
            f"{counts['within_tolerance']} within tolerance",
            highlight=False,
        )


def distance_text(log_ratio: float) -> str:
    """The distance of a value from a band as a factor: 'in band', '8x above', '1.3x below'."""
    import numpy as np

    if log_ratio == 0:
        return "in band"
    return f"{number(float(np.exp(abs(log_ratio))))}x {'above' if log_ratio > 0 else 'below'}"


def _observed(check: ObservationCheck, kind: Kind) -> str:
    """The observation as written: its value, and its interval where the source gives one."""
    if check.high == float("inf"):
        return f"at least {number(check.low, kind)}"
    if check.kind == "up_to":
        return f"up to {number(check.high, kind)}"
    if check.low != check.high:
        return band(check.value, check.low, check.high, kind)
    return number(check.value, kind)
