"""run, check, scenarios, explain."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from aftermath.cli.app import app, console, errors, fail
from aftermath.cli.options import SeedOption, parse_assignments, parse_policies, posterior_for
from aftermath.engines.ode import METHODS, OdeOptions
from aftermath.engines.simulate import ENGINES, check_result_memory, simulate
from aftermath.engines.steps import coarse_step
from aftermath.experiments.sampling import per_run_parameters
from aftermath.homefront.schema import parameter_roles
from aftermath.homefront.summary import home_front_of, home_front_table, home_front_years, row_name
from aftermath.inference.observation import predictive
from aftermath.model.compile import compile_model
from aftermath.results import check_output_path, write_results
from aftermath.scenario.describe import citations, initial_text, parameter_rows
from aftermath.scenario.loader import load_scenario, resolve_scenario_path, shipped_scenarios
from aftermath.store import DEFAULT_STORE
from aftermath.summary import bands, key_dates

ScenarioArg = Annotated[
    str | None, typer.Argument(help="A scenario file, or the name of a shipped scenario (default: the default one).")
]


def band_text(median: float, low: float, high: float, separator: str = " ") -> str:
    """'1,234 (1,100-1,380)': counts rounded to persons, small numbers to 3 significant digits; 'undefined'
    for an outcome undefined in every replicate (e.g. a ratio with an empty denominator)."""
    if median != median:
        return "undefined"
    if max(abs(high), abs(low)) >= 10:
        return f"{median:,.0f}{separator}({low:,.0f}-{high:,.0f})"
    return f"{median:.3g}{separator}({low:.3g}-{high:.3g})"


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
    rtol: Annotated[float, typer.Option(min=0, help="--engine ode: relative tolerance.")] = OdeOptions.rtol,
    atol: Annotated[float, typer.Option(min=0, help="--engine ode: absolute tolerance, in persons.")] = OdeOptions.atol,
    ode_method: Annotated[
        str, typer.Option(help=f"--engine ode: the solve_ivp method, one of {', '.join(METHODS)}.")
    ] = OdeOptions.method,
    set_: Annotated[list[str] | None, typer.Option("--set", help="PARAM=VALUE, in the parameter's unit.")] = None,
    policy: Annotated[list[str] | None, typer.Option(help="An intervention: NAME, NAME=STRENGTH, or A+B.")] = None,
    out: Annotated[Path | None, typer.Option(help="Write full results to FILE.nc or FILE.parquet.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
    fixed_parameters: Annotated[
        bool,
        typer.Option(
            "--fixed-parameters",
            help="Keep every parameter at its value (the bands then show chance alone). By default each "
            "replicate draws its parameters from their distributions (Latin hypercube).",
        ),
    ] = False,
    posterior: Annotated[int | None, typer.Option(
        "--posterior", help="Draw parameters from the posterior of this stored calibration run "
        "(see 'aftermath calibrate') instead of their declared distributions.")] = None,
    store: Annotated[Path, typer.Option("--store", help="The DuckDB run store holding --posterior.")] = DEFAULT_STORE,
) -> None:
    """Run a scenario and show each outcome at key dates: median and 5-95% band.

    The bands cover both sources of uncertainty: the parameters' declared ranges (one draw per replicate)
    and chance (the stochastic engine). `aftermath ensemble` separates the two.
    """
    if engine not in ENGINES:
        fail(f"--engine {engine!r}: expected one of {', '.join(ENGINES)}")
    try:
        ode = OdeOptions(ode_method, rtol, atol)
    except ValueError as exc:
        fail(str(exc))
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
    check_result_memory(model, runs, keep_compartments=out is not None)
    if posterior is not None and fixed_parameters:
        fail("--posterior draws the parameters: give it without --fixed-parameters")
    fitted = posterior_for(loaded, posterior, store)
    if fixed_parameters:
        drawn = {}
    elif fitted is not None:
        drawn = fitted.per_run_parameters(loaded, runs, seed, fixed=overrides)
    else:
        drawn = per_run_parameters(loaded, runs, seed, fixed=overrides)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=as_json or not console.is_terminal,  # no bar (nor its stray newline) in a pipe
    ) as progress:
        task = progress.add_task(f"{loaded.name}: {engine}", total=runs)
        dataset = simulate(
            model,
            replicates=runs,
            seed=seed,
            engine=engine,  # type: ignore[arg-type]
            parameters=drawn,
            keep_compartments=out is not None,
            progress=lambda done: progress.advance(task, done),
            ode=ode,
        )
    table = bands(dataset, key_dates(loaded))
    spec = home_front_of(loaded)
    home = home_front_table(dataset, spec, home_front_years(loaded, spec)) if spec is not None else None
    reported = predictive(loaded, dataset, seed)
    predictive_table = bands(reported, key_dates(loaded)) if reported.data_vars else None
    if out is not None:
        write_results(dataset, out)
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
            "bands": json.loads(table.to_json(orient="records")),
            "band": "latent: the model's state; predictive_bands add each observed outcome's observation error",
            "predictive_bands": [] if predictive_table is None else json.loads(
                predictive_table.to_json(orient="records")),
            "posterior": posterior,
        }
        if home is not None:
            payload["home_front"] = json.loads(home.to_json(orient="records"))
        typer.echo(json.dumps(payload, indent=2))
        return
    uncertainty = "chance only" if fixed_parameters else "parameter uncertainty and chance"
    if engine != "stochastic":
        uncertainty = "no uncertainty" if fixed_parameters else "parameter uncertainty"
    method = f"{engine}, {model.substeps} sub-steps" if engine != "ode" and model.substeps > 1 else engine
    units = {o.name: o.unit for o in model.outcomes}
    if posterior is not None:
        uncertainty += f" (posterior of run {posterior})"
    _print_bands(
        loaded.title, table, f"{method}, {runs} run(s), seed {seed}, {uncertainty}; latent band (the model's state)",
        model.interventions, units,
    )
    if predictive_table is not None:
        _print_bands(
            "Predictive band: what a report would say (the model plus the observation error), observed outcomes",
            predictive_table, "compare these with recorded figures", {}, units,
        )
    if home is not None:
        _print_home_front(home)
    if out is not None:
        console.print(f"full results written to {out}")


def _print_home_front(table) -> None:
    """The home front's yearly counts (median and 5-95% band over runs) as one table."""
    years = sorted(set(table["year"]))
    grid = Table(title="Home front: plots and arrests per year, home-grown extremists at the end of the year",
                 title_justify="left")
    grid.add_column("median (5-95%)", no_wrap=True)
    for year in years:
        grid.add_column(str(year), justify="right")
    for (measure, group, label), rows in table.groupby(["measure", "group", "label"], sort=False):
        cells = {r.year: band_text(r.median, r.low, r.high, "\n") for r in rows.itertuples()}
        grid.add_row(row_name(measure, group, label), *[cells.get(year, "") for year in years])
    console.print(grid)


def _print_bands(title: str, table, subtitle: str, policies: dict, units: dict[str, str] | None = None) -> None:
    scalar = (
        table[[c for c in table.columns if c not in ("outcome", "date", "median", "low", "high")]].isna().all(axis=1)
        if len(table.columns) > 5
        else table["outcome"].notna()
    )
    plain = table[scalar]
    dates = list(dict.fromkeys(plain["date"]))
    grid = Table(
        title=f"{title}\n{subtitle}" + (f", policies {policies}" if policies else ""),
        title_justify="left",
    )
    grid.add_column("outcome\nmedian (5-95%)", no_wrap=True)
    for date in dates:
        grid.add_column(date, justify="right")
    for outcome, rows in plain.groupby("outcome", sort=False):
        cells = {r.date: band_text(r.median, r.low, r.high, "\n") for r in rows.itertuples()}
        unit = (units or {}).get(str(outcome))
        grid.add_row(f"{outcome} ({unit})" if unit else str(outcome), *[cells.get(d, "") for d in dates])
    console.print(grid)
    stratified = sorted(set(table["outcome"]) - set(plain["outcome"]))
    if stratified:
        console.print(f"stratified outcomes (see --json or --out): {', '.join(stratified)}")


def _step_warnings(model) -> list[str]:
    """The coarse-step warning, if the step engines' step is too coarse for the model's rates."""
    check = coarse_step(model)
    return [check.message()] if check is not None and check.coarse else []


@app.command()
def check(file: Annotated[str, typer.Argument(help="A scenario file or shipped name.")]) -> None:
    """Validate a scenario file, and warn if its step is too coarse for its rates."""
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
    grid = Table("name", "title", "file")
    for name, path in sorted(shipped_scenarios().items()):
        grid.add_row(name, load_scenario(path).title, str(path))
    console.print(grid)


@app.command()
def explain(scenario: ScenarioArg = None) -> None:
    """Show compartments, flows, parameters with units, ranges and sources."""
    loaded = load_scenario(scenario)
    console.print(f"[bold]{loaded.title}[/bold] ({loaded.name})\n{loaded.description.strip()}", highlight=False)
    compartments = Table("compartment", "strata", "initial", "description", title="Compartments", title_justify="left")
    for name, c in loaded.compartments.items():
        compartments.add_row(name, ", ".join(c.dims) or "-", initial_text(loaded, name), c.description.strip())
    console.print(compartments)
    flows = Table(
        "flow",
        "from -> to",
        "rate",
        title="Flows (rates are hazards per capita, or inflows from a source)",
        title_justify="left",
    )
    for flow in loaded.flows:
        flows.add_row(flow.name, f"{flow.from_} -> {flow.to}", str(flow.rate))
    console.print(flows)
    parameters = Table(
        "parameter",
        "value",
        "unit",
        "5-95% range",
        "uncertainty",
        "sources / assumption",
        title="Parameters",
        title_justify="left",
    )
    for row in parameter_rows(loaded):
        provenance = ", ".join(row.sources) + (f" (assumption: {row.assumption})" if row.assumption else "")
        parameters.add_row(
            row.name, row.value, row.unit, f"{row.low:.4g} to {row.high:.4g}", row.uncertainty, provenance
        )
    console.print(parameters)
    if loaded.outcomes:
        outcomes = Table(
            "outcome",
            "kind",
            "unit",
            "expression",
            title="Outcomes (rates are the mean over the step ending at each date)",
            title_justify="left",
        )
        for outcome in compile_model(loaded).outcomes:
            written = loaded.outcomes[outcome.name]
            kind = "cumulative" if written.cumulative else ("stock" if "flow" not in outcome.terms.values() else "rate")
            outcomes.add_row(outcome.name, kind, outcome.unit, str(written.expr))
        console.print(outcomes)
    if loaded.interventions:
        policies = Table("policy", "from", "effects", "description", title="Interventions", title_justify="left")
        for name, item in loaded.interventions.items():
            effects = "; ".join(
                f"{e.parameter or e.schedule} {e.operation[0]} {e.operation[1]:g}" for e in item.effects
            )
            from aftermath.scenario.schema import month_label

            policies.add_row(name, month_label(item.start), effects, item.description.strip())
        console.print(policies)
    spec = home_front_of(loaded)
    if spec is not None:
        _explain_home_front(loaded, spec)
    sources = Table("id", "citation", title="Sources", title_justify="left")
    for sid, text in citations(loaded).items():
        sources.add_row(sid, text)
    console.print(sources)


def _explain_home_front(loaded, spec) -> None:
    """The parameters and schedules the home front reads, by role, with units, ranges and sources."""
    rows = {row.name: row for row in parameter_rows(loaded)}
    grid = Table("role", "parameter or schedule", "value", "unit", "5-95% range", "sources / assumption",
                 title="Home front (sub-model): what it reads", title_justify="left")
    for role, name in parameter_roles(spec):
        row = rows.get(name)
        if row is not None:
            provenance = ", ".join(row.sources) + (f" (assumption: {row.assumption})" if row.assumption else "")
            grid.add_row(role, name, row.value, row.unit, f"{row.low:.4g} to {row.high:.4g}", provenance)
        else:
            schedule = loaded.schedules[name]
            provenance = ", ".join(schedule.sources) + (
                f" (assumption: {schedule.assumption.strip()})" if schedule.assumption else "")
            grid.add_row(role, name, "schedule", schedule.unit, "-", provenance)
    console.print(grid)
