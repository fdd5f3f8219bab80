"""report: one self-contained HTML file for a policymaker, and optionally the figures as PNG and SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aftermath.cli.app import app, console, fail
from aftermath.cli.options import (
    FIT_END,
    REPORT_RUNS,
    SAMPLERS,
    PosteriorOption,
    PriorOption,
    SeedOption,
    parameters_for,
    parse_policy,
)
from aftermath.cli.progress import progress
from aftermath.errors import StoreError
from aftermath.files import write_text
from aftermath.store import DEFAULT_STORE


@app.command()
def report(
    scenario: Annotated[
        str | None, typer.Argument(help="A scenario file or the name of a shipped scenario (default: the default one).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("report.html"),
    run: Annotated[int | None, typer.Option(help="Report a stored run (see 'aftermath runs') instead.")] = None,
    store: Annotated[Path, typer.Option(help="The DuckDB run store, with --run or --posterior.")] = DEFAULT_STORE,
    policy: Annotated[
        list[str] | None,
        typer.Option(help="A policy to compare with the baseline: NAME, NAME=STRENGTH or A+B. Repeat for more."),
    ] = None,
    samples: Annotated[int, typer.Option("--samples", "-s", min=1, help="Parameter samples.")] = 50,
    replicates: Annotated[int, typer.Option("--replicates", "-n", min=1, help="Stochastic runs per sample.")] = 4,
    sampler: Annotated[str | None, typer.Option(
        help="How to sample the priors (with --prior, or a scenario with no shipped posterior): lhs (Latin "
        "hypercube, the default) or mc (plain Monte Carlo).")] = None,
    seed: SeedOption = 1,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: one per core; 1 runs in this process).")
    ] = None,
    dask: Annotated[str | None, typer.Option(help="Run on Dask: 'local' or tcp://HOST:PORT.")] = None,
    at: Annotated[
        str | None, typer.Option(help="Date (YYYY-MM) of the 'where they went' picture and the country table.")
    ] = None,
    fit_until: Annotated[str, typer.Option(help="Last month of the data the scenario was fitted to.")] = FIT_END,
    map_runs: Annotated[
        int, typer.Option(min=1, help="Baseline runs re-run for the map and the country table.")
    ] = REPORT_RUNS,
    figures: Annotated[Path | None, typer.Option(help="Also write every figure to this folder as PNG and SVG.")] = None,
    posterior: PosteriorOption = None,
    prior: PriorOption = False,
    with_: Annotated[list[Path] | None, typer.Option(
        "--with", help="Add a section from a result saved by 'aftermath sensitivity|feature-scores|discover|optimise|"
                       "backtest --save FILE'. Repeat for more.")] = None,
) -> None:
    """Write a report: headline numbers with ranges, charts over time, where the fighters went, by country,
    policy effects, the alliance network, the record, and the source of every number."""
    from aftermath.experiments import ExecutorError, ExecutorSpec
    from aftermath.report.build import ReportError, check_report_path, collect, collect_stored, render
    from aftermath.report.decisions import PayloadError, decision_section, read_payload
    from aftermath.scenario.loader import load_scenario
    from aftermath.scenario.schema import parse_month
    from aftermath.store.database import Store

    try:
        check_report_path(out)
    except ValueError as exc:
        fail(f"--out {exc}")
    for option, value in (("--at", at), ("--fit-until", fit_until)):
        if value is not None:
            try:
                parse_month(value)
            except ValueError as exc:
                fail(f"{option}: {exc}")
    if sampler is not None and sampler not in SAMPLERS:
        fail(f"--sampler {sampler!r}: expected one of {', '.join(SAMPLERS)}")
    if run is not None and (scenario is not None or policy or posterior is not None or prior):
        fail("--run reports a stored run as it is: give no SCENARIO, --policy, --posterior or --prior with it")
    fitted = None
    if run is None:
        fitted = parameters_for(load_scenario(scenario), posterior, store, prior).posterior
        if fitted is not None and sampler is not None:
            fail(f"--sampler {sampler}: it samples the priors, but the parameters are drawn from the "
                 f"{fitted.label}; add --prior to sample the priors")
    arms = [parse_policy(item) for item in policy or []]
    try:
        sections = [decision_section(read_payload(path), i) for i, path in enumerate(with_ or [])]
    except PayloadError as exc:
        fail(f"--with {exc}")
    with progress("report: running", unit="runs") as tracker:
        try:
            if run is not None:
                content = collect_stored(Store(store), run, at=at, fit_until=fit_until, stock_runs=map_runs,
                                         progress=tracker.advance)
            else:
                members = samples * replicates
                tracker.update(total=members * (1 + len(arms)) + min(members, map_runs))
                content = collect(scenario, samples=samples, replicates=replicates, seed=seed, policies=arms,
                                  sampler=sampler or "lhs", at=at, fit_until=fit_until,
                                  executor=ExecutorSpec(workers, dask), stock_runs=map_runs,
                                  progress=tracker.advance, posterior=fitted)
        except (ReportError, StoreError, ExecutorError) as exc:
            fail(str(exc))
    content.decisions = [*content.decisions, *sections]
    with progress("report: drawing the charts and writing the page", unit="steps"):
        page = render(content, figures)
    written = write_text(page, out)
    console.print(f"report written to {written}" + (f"; figures in {figures}" if figures else ""),
                  markup=False, highlight=False)
