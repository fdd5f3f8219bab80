"""calibrate: Bayesian calibration of a scenario to its observations, stored as a run; and the
`--posterior RUN` option the other commands share."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from aftermath.cli.app import app, console, errors, fail
from aftermath.cli.core import ScenarioArg
from aftermath.cli.options import FIT_END, SeedOption
from aftermath.errors import ResourceError, StoreError
from aftermath.files import check_output_path
from aftermath.formatting import SIGNIFICANT, Kind, band, number
from aftermath.store import DEFAULT_STORE

if TYPE_CHECKING:
    from aftermath.inference.calibration import Posterior
    from aftermath.scenario.schema import Scenario

RHAT_LIMIT = 1.1
ESS_LIMIT = 100
"""Below these the calibration warns that its chain may not have converged (Gelman et al. BDA3, 11.5), or
(ESS) that its importance weights rest on too few draws."""


@app.command("calibrate")
def calibrate_command(
    scenario: ScenarioArg = None,
    until: Annotated[str, typer.Option(help="Use the observations dated up to this month (YYYY-MM).")] = FIT_END,
    method: Annotated[str, typer.Option(
        help="laplace (importance sampling from the Gaussian approximation at the posterior mode; minutes), "
        "emcee (ensemble MCMC over the deterministic engine; slow to mix in many dimensions) or prior (prior "
        "draws weighted by likelihood).",
    )] = "laplace",
    draws: Annotated[int, typer.Option(min=1, help="Posterior draws kept.")] = 1000,
    steps: Annotated[int | None, typer.Option(
        min=2, help="laplace: proposals weighed (default 4000); emcee: MCMC steps (default 1000); prior: draws "
        "weighed (default 2000).")] = None,
    walkers: Annotated[int | None, typer.Option(min=2, help="emcee walkers (default: 2 x parameters + 2).")] = None,
    seed: SeedOption = 1,
    store: Annotated[Path, typer.Option("--store", help="The DuckDB run store.")] = DEFAULT_STORE,
    resume: Annotated[int | None, typer.Option(
        help="Continue this killed calibration run (with --steps: to that many steps in all; as many as are "
        "stored ends it with what it has).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the posterior summary as JSON on stdout.")] = False,
    draws_file: Annotated[Path | None, typer.Option(
        "--draws-file", help="Also write the posterior draws to this file (with the scenario's hash and the "
        "draws' SHA-256). As NAME.posterior.csv beside the scenario NAME.yaml it is the posterior that run, "
        "ensemble, compare, fit-check and report draw from by default.")] = None,
) -> None:
    """Calibrate the uncertain parameters to the observations up to --until; the posterior is stored as a run.

    The priors are the declared distributions; the likelihood is the observation model (ranges and
    bounds as censored data). A killed calibration continues with --resume RUN.
    """
    from aftermath.experiments.design import read_scenario
    from aftermath.inference.calibration import METHODS, calibrate
    from aftermath.scenario.schema import parse_month
    from aftermath.store.database import Store

    if draws_file is not None:
        try:
            check_output_path(draws_file, (".csv",), "posterior draws")
        except ValueError as exc:
            fail(f"--draws-file {exc}")
    if method not in METHODS:
        fail(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    try:
        parse_month(until)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--until") from None
    text, _, loaded = read_scenario(scenario)
    opened = Store(store)
    unit = {"laplace": "proposals", "emcee": "steps", "prior": "draws"}[method]
    with Progress(
        TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True,
        disable=as_json or not console.is_terminal,
    ) as bar:
        task = bar.add_task(f"{loaded.name}: calibrating ({method})", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            if not console.is_terminal and not as_json:
                errors.print(f"calibration: {done}/{total} {unit}", highlight=False)

        try:
            posterior = calibrate(
                loaded, until=until, method=method, draws=draws, seed=seed,  # type: ignore[arg-type]
                store=opened, progress=progress, walkers=walkers, steps=steps, resume=resume, scenario_text=text,
            )
        except (StoreError, ValueError) as exc:
            fail(str(exc))
        except KeyboardInterrupt:
            errors.print("interrupted: the calibration keeps its stored steps; 'aftermath runs' lists it, and "
                         "'aftermath calibrate --resume RUN' continues it")
            raise SystemExit(130) from None
    if draws_file is not None:
        _write_draws(draws_file, loaded, posterior, scenario, store)
    show_posterior(loaded, posterior, store, as_json)
    if not as_json:
        named = f" {scenario}" if scenario else ""
        console.print(f"next: aftermath run{named} --posterior {posterior.run_id} --store {store}", highlight=False,
                      soft_wrap=True)


def show_posterior(scenario: Scenario, posterior: Posterior, store: Path, as_json: bool) -> None:
    """A calibration's posterior: the table of `print_posterior`, or (as_json) its summary and diagnostics."""
    if as_json:
        typer.echo(json.dumps({
            "run_id": posterior.run_id, "store": str(store), "scenario": scenario.name, "method": posterior.method,
            "until": posterior.until, "draws": len(posterior), "diagnostics": posterior.diagnostics,
            "posterior": {name: dict(zip(("median", "low", "high"), band, strict=True))
                          for name, band in posterior.summary().items()},
        }, indent=2))
        return
    print_posterior(scenario, posterior)


def _write_draws(path: Path, scenario: Scenario, posterior: Posterior, reference: str | None, store: Path) -> None:
    """Write the draws file, with the command that makes it again (the settings this calibration used)."""
    from aftermath.inference.shipped import write_draws

    d = posterior.diagnostics
    settings = (f"--walkers {d['walkers']} --steps {d['steps']}" if posterior.method == "emcee"
                else f"--steps {d['samples']}")
    command = (f"aftermath calibrate {reference or scenario.name} --until {posterior.until} --method "
               f"{posterior.method} {settings} --draws {len(posterior)} --seed {_seed(posterior, store)} "
               f"--draws-file {path}")
    try:
        written = write_draws(path, scenario, posterior, command)
    except ResourceError as exc:
        fail(f"--draws-file {exc}")
    errors.print(f"posterior draws written to {written}", highlight=False, soft_wrap=True)


def _seed(posterior: Posterior, store: Path) -> int:
    """The seed the calibration ran with (kept in its stored settings)."""
    from aftermath.store.database import Store

    settings, _ = Store(store, lock_timeout=10).calibration(posterior.run_id)  # type: ignore[arg-type]
    return int(settings["seed"])


def print_posterior(scenario: Scenario, posterior: Posterior) -> None:
    """Prior against posterior for each parameter, and the diagnostics."""
    from aftermath.inference.calibration import prior_bands

    priors = prior_bands(scenario, posterior.names)
    d = posterior.diagnostics
    chain = posterior.method == "emcee"  # per-parameter ESS and R-hat are a chain's; weights have one ESS
    grid = Table(
        "parameter", "unit", "prior median (5-95%)", "posterior median (5-95%)", "narrowed",
        *(("ESS", "R-hat") if chain else ("informed by the data",)),
        title=f"{scenario.title}\ncalibrated to {d.get('observations')} observations up to {posterior.until} "
        f"({posterior.method}; run {posterior.run_id})", title_justify="left",
    )
    ess = d.get("ess") if isinstance(d.get("ess"), dict) else {}
    rhat = d.get("rhat", {})
    inert = set(d.get("inert", []))
    for name, (median, low, high) in posterior.summary().items():
        prior = priors[name]
        width = prior[2] - prior[1]
        narrowed = 1 - (high - low) / width if width > 0 else 0.0
        figures = ((_figure(ess.get(name), name in inert, "count"), _figure(rhat.get(name), name in inert, digits=4))
                   if chain else ("no: prior" if name in inert else "yes",))
        grid.add_row(
            name, scenario.parameters[name].unit, band(*prior), band(median, low, high), number(narrowed, "share"),
            *figures,
        )
    console.print(grid)
    console.print(
        "narrowed: the share of the prior's 5-95% width the posterior's has lost; near 0, or below it, where the "
        f"data say little (the posterior's quantiles are those of {len(posterior):,} draws, the prior's exact)",
        highlight=False)
    if posterior.method == "emcee":
        console.print(
            f"{d['walkers']} walkers x {d['steps']} steps (first {d['burn_in']} burn-in), acceptance "
            f"{_figure(d['acceptance'], False, 'share')}, {number(d['seconds'], 'count')} s; "
            f"{len(posterior):,} draws kept; "
            f"{len(inert)} parameters change no observed outcome and keep their prior",
            highlight=False,
        )
        worst = max((v for v in rhat.values() if v is not None), default=None)
        fewest = min((v for v in ess.values() if v is not None), default=None)
        if worst is None or worst > RHAT_LIMIT or (fewest or 0) < ESS_LIMIT:
            errors.print(
                f"warning: the chain may not have converged (largest R-hat {_figure(worst, False, digits=3)}, "
                f"smallest ESS {_figure(fewest, False, 'count')}; aim for R-hat < {RHAT_LIMIT} and "
                f"ESS > {ESS_LIMIT}): run more --steps", markup=False, highlight=False, soft_wrap=True,
            )
    elif posterior.method == "laplace":
        from aftermath.inference.calibration import PARETO_K_LIMIT

        console.print(
            f"mode found in {d['iterations']} iterations (log posterior {number(d['mode_log_posterior'])}); "
            f"{number(d['samples'], 'count')} proposals from the Laplace approximation (x{d['inflation']:g} "
            f"covariance) weighted by posterior / proposal, Pareto-smoothed: ESS {number(d['ess'], 'count')}, "
            f"Pareto k {_figure(d['pareto_k'], False, digits=2)}; {number(d['evaluations'], 'count')} model runs, "
            f"{number(d['seconds'], 'count')} s; "
            f"{len(posterior):,} draws kept; {len(inert)} parameters change no observed outcome and keep their prior",
            highlight=False,
        )
        if d["pareto_k"] is None or d["pareto_k"] > PARETO_K_LIMIT or d["ess"] < ESS_LIMIT:
            errors.print(
                f"warning: the importance weights are unreliable (Pareto k {_figure(d['pareto_k'], False, digits=2)}, "
                f"aim below {PARETO_K_LIMIT}; ESS {number(d['ess'], 'count')}, aim above {ESS_LIMIT}): run more "
                "--steps, or, if that does not help, the posterior is far from the Gaussian at its mode: use "
                "--method emcee", markup=False,
                highlight=False, soft_wrap=True,
            )
    else:
        console.print(f"{number(d['samples'], 'count')} prior draws weighted by likelihood: ESS "
                      f"{number(d['ess'], 'count')}, "
                      f"{number(d['seconds'], 'count')} s",
                      highlight=False)


def _figure(value: float | None, inert: bool, kind: Kind = "number", digits: int = SIGNIFICANT) -> str:
    """A diagnostic as text (aftermath.formatting): 'prior' for a parameter the data cannot inform, '-' where
    undefined."""
    if inert:
        return "prior"
    return "-" if value is None else number(value, kind, digits=digits)
