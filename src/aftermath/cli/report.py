"""report: one self-contained HTML file for a policymaker, and optionally the figures as PNG and SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from aftermath.cli.app import app, console, fail
from aftermath.cli.options import parse_policy
from aftermath.report.build import check_report_path, render, write_atomically
from aftermath.report.content import collect
from aftermath.scenario.loader import load_scenario
from aftermath.scenario.schema import parse_month


@app.command()
def report(
    scenario: Annotated[
        str | None, typer.Argument(help="A scenario file or the name of a shipped scenario (default: the default one).")
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path("report.html"),
    policy: Annotated[
        list[str] | None,
        typer.Option(help="A policy to compare with the baseline: NAME, NAME=STRENGTH or A+B. Repeat for more."),
    ] = None,
    replicates: Annotated[int, typer.Option("--replicates", "-n", min=1, help="Stochastic runs per policy.")] = 200,
    seed: Annotated[int, typer.Option(min=0, help="Random seed; the same seed gives the same numbers.")] = 1,
    at: Annotated[
        str | None, typer.Option(help="Date (YYYY-MM) of the 'where they went' picture and the country table.")
    ] = None,
    fit_until: Annotated[str, typer.Option(help="Last month of the data the scenario was fitted to.")] = "2017-12",
    figures: Annotated[
        Path | None, typer.Option(help="Also write every figure to this folder as PNG and SVG.")
    ] = None,
) -> None:
    """Write a report: headline numbers with ranges, charts over time, where the fighters went, by country,
    policy effects, the record, and the source of every number."""
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
    arms = [parse_policy(item) for item in policy or []]
    loaded = load_scenario(scenario)
    if at is not None and not loaded.time.start <= parse_month(at) <= loaded.time.end:
        fail(f"--at {at}: outside the scenario's time span")
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=console, transient=True,
    ) as progress:
        task = progress.add_task(f"{loaded.name}: {1 + len(arms)} run set(s)", total=replicates * (1 + len(arms)))
        content = collect(loaded, replicates, seed, arms, at=at, fit_until=fit_until,
                          progress=lambda done: progress.advance(task, done))
    written = write_atomically(render(content, figures), out)
    console.print(f"report written to {written}" + (f"; figures in {figures}" if figures else ""),
                  markup=False, highlight=False)
