"""`aftermath network`: the alliance network of a scenario, as bands, and its export at a date."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from aftermath.cli.app import app, console, fail
from aftermath.cli.core import ScenarioArg
from aftermath.cli.display import cell
from aftermath.cli.options import ENGINES, SeedOption, parse_assignments, parse_policies
from aftermath.cli.progress import progress
from aftermath.formatting import Kind, number

COLUMN_KINDS: dict[str, Kind] = {"allies": "count", "centrality": "number", "capacity": "number",
                                 "lethality": "number", "strength": "count", "arrivals": "count"}


@app.command()
def network(
    scenario: ScenarioArg = None,
    at: Annotated[str | None, typer.Option("--at", help="The date (YYYY-MM) of the group table and export; "
                                           "default: the end of the horizon.")] = None,
    export: Annotated[Path | None, typer.Option(help="Write the network at --at to FILE.graphml or FILE.json.")] = None,
    replicates: Annotated[int, typer.Option("--replicates", "-n", min=1, help="Stochastic replicates.")] = 200,
    seed: SeedOption = 1,
    engine: Annotated[str, typer.Option(help="stochastic or deterministic.")] = "stochastic",
    set_: Annotated[list[str] | None, typer.Option("--set", help="PARAM=VALUE, in the parameter's unit.")] = None,
    policy: Annotated[list[str] | None, typer.Option(help="An intervention: NAME, NAME=STRENGTH, or A+B.")] = None,
) -> None:
    """Run a scenario and show its alliance network: provinces, hubs, survival, lethality, arrivals."""
    from aftermath.engines.simulate import simulate
    from aftermath.model.compile import compile_model
    from aftermath.network.describe import group_label
    from aftermath.network.export import GRAPH_FORMATS, group_table, network_graph, network_summary, write_graph
    from aftermath.scenario.loader import load_scenario
    from aftermath.scenario.schema import month_label, parse_month
    from aftermath.summary import key_dates

    if engine not in ENGINES:
        fail(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if export is not None and (export.suffix not in GRAPH_FORMATS or not export.parent.exists()):
        fail(f"--export {export}: expected a file ending in {' or '.join(GRAPH_FORMATS)} in an existing folder")
    loaded = load_scenario(scenario)
    if loaded.network is None:
        fail(f"the scenario {loaded.name!r} has no network section; expected a scenario with 'network:' "
             "(e.g. alliance_network)")
    date = month_label(loaded.time.end)
    if at is not None:
        try:
            month = parse_month(at)
        except ValueError:
            raise typer.BadParameter(f"{at!r}: expected a month as YYYY-MM", param_hint="--at") from None
        if not loaded.time.start <= month <= loaded.time.end:
            raise typer.BadParameter(
                f"{at} is outside the horizon ({month_label(loaded.time.start)} to {date})", param_hint="--at"
            )
        date = month_label(month)
    model = compile_model(loaded, overrides=parse_assignments(set_), policies=parse_policies(policy))
    runs = 1 if engine == "deterministic" else replicates
    with progress(f"{loaded.name}: network, {engine}", total=runs) as tracker:
        dataset = simulate(model, replicates=runs, seed=seed, engine=engine,  # type: ignore[arg-type]
                           keep_compartments=False, progress=tracker.advance)
    dates = sorted({*key_dates(loaded), date})
    grid = Table(title=f"{loaded.title}\nnetwork, {engine}, {runs} replicate(s), seed {seed}"
                 + (f", policies {model.interventions}" if model.interventions else ""), title_justify="left")
    grid.add_column("(median, 5-95%)")
    for day in dates:
        grid.add_column(day, justify="right")
    for label, cells in network_summary(dataset, dates, lambda group: group_label(loaded, group)):
        kind = "number" if label.startswith("centrality") else "count"
        grid.add_row(label, *[cell(*values, kind) for values in cells])
    console.print(grid, highlight=False)
    groups = Table("group", "active (share of runs)", "allies", "centrality", "capacity", "lethality index",
                   "strength", "arrivals", title=f"Groups in {date} (median, 5-95%)", title_justify="left")
    for row in group_table(dataset, date).itertuples():
        groups.add_row(
            group_label(loaded, row.group), number(row.active, "share"),
            *[cell(getattr(row, c), getattr(row, f"{c}_low"), getattr(row, f"{c}_high"), kind)
              for c, kind in COLUMN_KINDS.items()],
        )
    console.print(groups, highlight=False)
    if export is not None:
        write_graph(network_graph(dataset, loaded, date), export)
        console.print(f"network in {date} written to {export}")
