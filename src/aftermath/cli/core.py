"""run, check, scenarios, explain."""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from aftermath.cli.app import app, console, errors, fail
from aftermath.cli.options import (
    ENGINES,
    ODE_ATOL,
    ODE_METHOD,
    ODE_METHODS,
    ODE_RTOL,
    PosteriorOption,
    PriorOption,
    SeedOption,
    parameters_for,
    parse_assignments,
    parse_policies,
)
from aftermath.cli.progress import progress
from aftermath.formatting import span
from aftermath.store import DEFAULT_STORE

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from aftermath.model.compile import CompiledModel
    from aftermath.scenario.schema import Scenario

ScenarioArg = Annotated[
    str | None, typer.Argument(help="A scenario file, or the name of a shipped scenario (default: the default one).")
]


@app.command()
def run(
    scenario: ScenarioArg = None,
    replicates: Annotated[int, typer.Option("--replicates", "-n", min=1, help="Stochastic replicates.")] = 200,
    seed: SeedOption = 1,
    engine: Annotated[
        str, typer.Option(help="stochastic, deterministic (its expectation) or ode (the continuous-time limit).")
    ] = "stochastic",
    substeps: Annotated[
        int | None,
        typer.Option(min=1, help="Sub-steps per reporting step for the step engines (default: time.substeps)."),
    ] = None,
    rtol: Annotated[float, typer.Option(min=0, help="--engine ode: relative tolerance.")] = ODE_RTOL,
    atol: Annotated[float, typer.Option(min=0, help="--engine ode: absolute tolerance, in persons.")] = ODE_ATOL,
    ode_method: Annotated[
        str, typer.Option(help=f"--engine ode: the solve_ivp method, one of {', '.join(ODE_METHODS)}.")
    ] = ODE_METHOD,
    set_: Annotated[list[str] | None, typer.Option("--set", help="PARAM=VALUE, in the parameter's unit.")] = None,
    policy: Annotated[list[str] | None, typer.Option(help="An intervention: NAME, NAME=STRENGTH, or A+B.")] = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Show every outcome and stratum, not only the scenario's headline set.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(help="Write the outcomes of every run to FILE.nc (compressed) or FILE.parquet."),
    ] = None,
    compartments: Annotated[
        bool,
        typer.Option("--compartments", "--keep-compartments", help="With --out, also write every compartment "
                     "(much larger)."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    fixed_parameters: Annotated[
        bool,
        typer.Option(
            "--fixed-parameters",
            help="Keep every parameter at its value (the bands then show chance alone). By default each "
            "replicate draws its parameters from their distributions (Latin hypercube).",
        ),
    ] = False,
    posterior: PosteriorOption = None,
    prior: PriorOption = False,
    store: Annotated[Path, typer.Option("--store", help="The DuckDB run store holding --posterior.")] = DEFAULT_STORE,
) -> None:
    """Run a scenario and show its headline outcomes at key dates: median and 5-95% band.

    The bands cover both sources of uncertainty: the parameters (one draw per replicate from the posterior
    shipped beside the scenario, or with --prior from their declared ranges) and chance (the stochastic
    engine). `aftermath ensemble` separates the two.
    """
    from aftermath.cli.display import outcome_metadata, print_bands, strata_metadata
    from aftermath.engines.ode import OdeOptions
    from aftermath.engines.simulate import check_result_memory, simulate
    from aftermath.experiments.sampling import per_run_parameters
    from aftermath.homefront.summary import home_front_of, home_front_table, home_front_years
    from aftermath.inference.observation import predictive
    from aftermath.model.compile import compile_model
    from aftermath.results import check_output_path, file_size, write_results
    from aftermath.scenario.describe import headline_outcomes
    from aftermath.scenario.loader import load_scenario
    from aftermath.summary import bands, check_banded_memory, key_dates

    if engine not in ENGINES:
        fail(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    try:
        ode = OdeOptions(ode_method, rtol, atol)
    except ValueError as exc:
        fail(str(exc))
    if compartments and out is None:
        fail("--compartments: expected --out FILE with it (compartments are only written to a file)")
    if out is not None:
        try:
            check_output_path(out)
        except ValueError as exc:
            fail(f"--out {exc}")
    loaded = load_scenario(scenario)
    overrides = parse_assignments(set_)
    model = compile_model(loaded, overrides=overrides, policies=parse_policies(policy), substeps=substeps)
    warnings = _step_warnings(model) if engine != "ode" else []
    if not as_json:
        for warning in warnings:
            errors.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    runs = 1 if engine != "stochastic" and fixed_parameters else replicates
    if out is not None or engine == "ode":  # every run's series is held (written, or integrated as one system)
        check_result_memory(model, runs, keep_compartments=compartments)
    else:  # only what is shown is kept
        check_banded_memory(model, runs, key_dates(loaded))
    source = parameters_for(loaded, posterior, store, prior, fixed_parameters)
    if fixed_parameters:
        drawn = {}
    elif source.posterior is not None:
        drawn = source.posterior.per_run_parameters(loaded, runs, seed, fixed=overrides)
    else:
        drawn = per_run_parameters(loaded, runs, seed, fixed=overrides)
    run_options = {"seed": seed, "engine": engine, "parameters": drawn, "ode": ode}
    dates, spec = key_dates(loaded), home_front_of(loaded)
    written = None
    with progress(f"{loaded.name}: {engine}", total=runs, quiet=as_json) as tracker:
        if out is None:  # only what is shown is kept, block by block
            table, home, reported = _shown_in_blocks(loaded, model, runs, tracker.advance, **run_options)
        else:
            dataset = simulate(model, replicates=runs, keep_compartments=compartments, progress=tracker.advance,
                               **run_options)
    if out is not None:
        table = bands(dataset, dates)
        home = home_front_table(dataset, spec, home_front_years(loaded, spec)) if spec is not None else None
        reported = predictive(loaded, dataset, seed)
        written = write_results(dataset, out)
    predictive_table = bands(reported, dates) if reported.data_vars else None
    if as_json:
        payload = {
            "scenario": loaded.name,
            "scenario_hash": model.scenario_hash,
            "engine": engine,
            "substeps": model.substeps,
            "seed": seed,
            "replicates": runs,
            "policies": model.interventions,
            "overrides": overrides,
            "parameter_uncertainty": not fixed_parameters,
            "warnings": warnings,
            "units": {o.name: o.unit for o in model.outcomes},
            "headline": headline_outcomes(loaded),
            "outcomes": outcome_metadata(loaded, list(dict.fromkeys(table["outcome"]))),
            "strata": strata_metadata(loaded),
            "bands": json.loads(table.to_json(orient="records")),
            "band": "latent: the model's state; predictive_bands add each observed outcome's observation error",
            "predictive_bands": [] if predictive_table is None else json.loads(
                predictive_table.to_json(orient="records")),
            "posterior": posterior,
            "parameters": {"from": source.kind, "label": source.label, "warning": source.warning},
        }
        if home is not None:
            payload["home_front"] = json.loads(home.to_json(orient="records"))
        typer.echo(json.dumps(payload, indent=2))
        return
    chance = " and chance" if engine == "stochastic" else ""
    uncertainty = f"parameters drawn from the {source.label}{chance}"
    if fixed_parameters:
        uncertainty = "chance only" if chance else "no uncertainty"
    method = f"{engine}, {model.substeps} sub-steps" if engine != "ode" and model.substeps > 1 else engine
    units = {o.name: o.unit for o in model.outcomes}
    print_bands(loaded, table, f"{method}, {runs} run(s), seed {seed}, {uncertainty}; latent band (the model's state)",
                model.interventions, everything, units=units)
    if predictive_table is not None:
        print_bands(loaded, predictive_table, "predictive band of the observed outcomes: what a report would say "
                    "(the model plus the observation error); compare these with recorded figures", {}, True, units)
    if home is not None:
        _print_home_front(home)
    if written is not None:
        what = "outcomes and compartments" if compartments else "outcomes (add --compartments for every compartment)"
        console.print(f"{what} of {runs} run(s) written to {written} ({file_size(written.stat().st_size)})",
                      markup=False, highlight=False, soft_wrap=True)


def _shown_in_blocks(loaded: Scenario, model: CompiledModel, runs: int, advance: Callable[[int], None], seed: int,
                     **run_options: Any) -> tuple[pd.DataFrame, pd.DataFrame | None, xr.Dataset]:
    """What `run` shows (latent bands at the key dates, the home front's yearly bands, the observed outcomes'
    predictive draws at the key dates), the same numbers as from the whole run, from blocks of runs of which
    only the key dates, the home front's yearly counts and (for negative binomial errors) the observed
    series are kept (`summary.run_in_blocks`)."""
    from aftermath.homefront.summary import home_front_bands, home_front_counts, home_front_of, home_front_years
    from aftermath.inference.observation import needs_series, predictive
    from aftermath.summary import at_dates, bands, key_dates, run_in_blocks, time_grid

    dates, spec = key_dates(loaded), home_front_of(loaded)
    years = home_front_years(loaded, spec) if spec is not None else []
    series = [name for name in needs_series(loaded) if name in {o.name for o in model.outcomes}]

    def keep(block: xr.Dataset) -> dict[str, xr.Dataset]:
        kept = {"outcomes": at_dates(block, dates)}
        if series:
            kept["series"] = block[series]
        if spec is not None:
            kept["home_front"] = home_front_counts(block, spec, years)
        return kept

    kept = run_in_blocks(model, runs, seed, keep, progress=advance, **run_options)
    home = home_front_bands(kept["home_front"]) if spec is not None else None
    reported = predictive(loaded, kept["outcomes"], seed, grid=time_grid(model), series=kept.get("series"))
    return bands(kept["outcomes"], dates), home, reported


def _print_home_front(table) -> None:
    """The home front's yearly counts (median and 5-95% band over runs) as one table."""
    from aftermath.cli.display import cell
    from aftermath.homefront.summary import row_name

    years = sorted(set(table["year"]))
    grid = Table(title="Home front: plots and arrests per year, home-grown extremists at the end of the year",
                 title_justify="left")
    grid.add_column("median (5-95%)", no_wrap=True)
    for year in years:
        grid.add_column(str(year), justify="right")
    for (measure, group, label), rows in table.groupby(["measure", "group", "label"], sort=False):
        cells = {r.year: cell(r.median, r.low, r.high, "count") for r in rows.itertuples()}
        grid.add_row(row_name(measure, group, label), *[cells.get(year, "") for year in years])
    console.print(grid, highlight=False)


def _step_warnings(model) -> list[str]:
    """The coarse-step warning, if the step engines' step is too coarse for the model's rates."""
    from aftermath.engines.steps import coarse_step

    check = coarse_step(model)
    return [check.message()] if check is not None and check.coarse else []


@app.command()
def check(file: Annotated[str, typer.Argument(help="A scenario file or shipped name.")]) -> None:
    """Validate a scenario file, and warn if its step is too coarse for its rates."""
    from aftermath.model.compile import compile_model
    from aftermath.scenario.loader import load_scenario, resolve_scenario_path

    scenario = load_scenario(file)
    model = compile_model(scenario)
    for warning in _step_warnings(model):
        errors.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    console.print(
        f"ok: {resolve_scenario_path(file)}: {scenario.name}: {len(scenario.compartments)} compartments "
        f"({model.cells} cells), {len(scenario.flows)} flows, {len(scenario.parameters)} parameters, "
        f"{len(scenario.interventions)} interventions, {len(scenario.outcomes)} outcomes, "
        f"{len(scenario.observations)} observations",
        markup=False,
        highlight=False,
    )


@app.command()
def scenarios() -> None:
    """List the shipped scenarios."""
    from aftermath.scenario.catalogue import scenario_title, shipped_scenarios

    shipped = sorted(shipped_scenarios().items())
    grid = Table("name", "title", "file")
    grid.columns[0].no_wrap = grid.columns[2].no_wrap = True
    for name, path in shipped:
        title = scenario_title(path)
        if title is None:
            from aftermath.scenario.loader import load_scenario

            title = load_scenario(path).title
        grid.add_row(name, title, path.name)
    console.print(grid, highlight=False)
    # The folder goes on a line of its own, never wrapped, so that it can be copied whole at any width.
    folders = sorted({str(path.parent) for _, path in shipped})
    console.print(f"in {', '.join(folders)}", highlight=False, soft_wrap=True)


@app.command()
def explain(
    scenario: Annotated[
        str | None,
        typer.Argument(help="A scenario (file or shipped name; default: the default one), or the NAME of one of "
                       "its parts to explain just that."),
    ] = None,
    name: Annotated[str | None, typer.Argument(help="The name of one part of the scenario to explain.")] = None,
) -> None:
    """Show every part of a scenario: strata, compartments, flows, parameters (units, ranges, sources),
    schedules, events, interventions, outcomes, network groups and sources; or one part by NAME."""
    from aftermath.homefront.summary import home_front_of
    from aftermath.model.compile import compile_model
    from aftermath.scenario.describe import elements, spaced
    from aftermath.scenario.loader import load_scenario

    if name is None and scenario is not None and not _is_scenario(scenario):
        scenario, name = None, scenario
    loaded = load_scenario(scenario)
    found = elements(loaded)
    if name is not None:
        if name not in found:
            close = difflib.get_close_matches(name, list(found), n=3)
            fail(f"{name!r} is not a part of the scenario {loaded.name!r}; expected the name of a compartment, flow, "
                 "parameter, schedule, event, intervention, outcome, stratum, group or source"
                 + (f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""))
        element = found[name]
        grid = Table.grid(padding=(0, 2))
        for key, value in element.facts:
            grid.add_row(f"[bold]{key}[/bold]", value)
        heading = element.name + (f" ({element.label})" if element.label not in (element.name, spaced(name)) else "")
        console.print(f"[bold]{element.kind}[/bold] {heading}", highlight=False, markup=True)
        console.print(grid, highlight=False)
        return
    console.print(f"[bold]{loaded.title}[/bold] ({loaded.name})\n{loaded.description.strip()}", highlight=False)
    by_kind: dict[str, list] = {}
    for element in found.values():
        by_kind.setdefault(element.kind, []).append(element)
    units = {o.name: o.unit for o in compile_model(loaded).outcomes}
    for kind, columns, title in EXPLAINED:
        items = by_kind.get(kind, [])
        if not items:
            continue
        labelled = any(e.label not in (e.name, spaced(e.name)) for e in items)
        grid = Table(kind, *(["label"] if labelled else []), *columns, title=title, title_justify="left")
        for element in items:
            facts = dict(element.facts)
            if kind == "outcome":
                facts["unit"] = units.get(element.name, "")
            grid.add_row(element.name, *([element.label] if labelled else []), *[facts.get(c, "") for c in columns])
        console.print(grid, highlight=False)
    spec = home_front_of(loaded)
    if spec is not None:
        _explain_home_front(loaded, spec)
    console.print("'aftermath explain NAME' shows one part in full.", highlight=False)


def _explain_home_front(loaded, spec) -> None:
    """The parameters and schedules the home front reads, by role, with units, ranges and sources."""
    from aftermath.homefront.schema import parameter_roles
    from aftermath.scenario.describe import parameter_rows

    rows = {row.name: row for row in parameter_rows(loaded)}
    grid = Table("role", "parameter or schedule", "value", "unit", "5-95% range", "sources / assumption",
                 title="Home front (sub-model): what it reads", title_justify="left")
    for role, name in parameter_roles(spec):
        row = rows.get(name)
        if row is not None:
            provenance = ", ".join(row.sources) + (f" (assumption: {row.assumption})" if row.assumption else "")
            grid.add_row(role, name, row.value, row.unit, span(row.low, row.high), provenance)
        else:
            schedule = loaded.schedules[name]
            provenance = ", ".join(schedule.sources) + (
                f" (assumption: {schedule.assumption.strip()})" if schedule.assumption else "")
            grid.add_row(role, name, "schedule", schedule.unit, "-", provenance)
    console.print(grid, highlight=False)


EXPLAINED = (
    ("dimension", ("strata",), "Dimensions (strata) and the display names of their strata"),
    ("compartment", ("strata", "initial", "description"), "Compartments (stocks of people)"),
    ("boundary", ("kind", "description"), "Boundaries (sources and sinks)"),
    ("flow", ("from -> to", "rate"), "Flows (rates are hazards per capita, or inflows from a source)"),
    ("parameter", ("value", "unit", "5-95% range", "uncertainty", "sources", "assumption"), "Parameters"),
    ("schedule", ("unit", "interpolation", "points", "sources"), "Schedules (dated series)"),
    ("event", ("date", "from -> to", "fraction", "sources"), "Events (a share moves at a date)"),
    ("intervention", ("from", "strength", "effects", "description"), "Interventions (policies)"),
    ("outcome", ("quantity", "unit", "headline", "description"),
     "Outcomes (what runs report; rates are the mean over the step ending at each date)"),
    ("network group", ("family", "description"), "Network groups"),
    ("source", ("citation",), "Sources"),
)


def _is_scenario(reference: str) -> bool:
    """Whether an argument names a scenario (a shipped name or an existing path) rather than a part of one."""
    from aftermath.scenario.catalogue import shipped_scenarios

    return reference in shipped_scenarios() or Path(reference).exists() or reference.endswith((".yaml", ".yml"))
