"""backtest: calibrate up to each cutoff, forecast the observations after it, score them and the baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from aftermath.cli.app import app, console, errors, fail
from aftermath.cli.core import ScenarioArg
from aftermath.cli.decisions import _emit, _saved
from aftermath.cli.options import FIT_END, SeedOption


@app.command("backtest")
def backtest_command(
    scenario: ScenarioArg = None,
    cutoffs: Annotated[str, typer.Option(help="Comma-separated cutoffs (YYYY-MM), ascending.")] = "2015-12,2016-12",
    until: Annotated[str, typer.Option(help="Forecast the observations dated up to this month only.")] = FIT_END,
    runs: Annotated[int, typer.Option("--runs", "-n", min=10, help="Posterior and prior draws per forecast.")] = 200,
    method: Annotated[str, typer.Option(help="Calibration method: laplace, emcee or prior (see aftermath "
                                        "calibrate).")] = "laplace",
    steps: Annotated[int | None, typer.Option(min=2, help="Calibration steps (see aftermath calibrate; default "
                                              "4,000 proposals for laplace, 1,000 steps for emcee, 2,000 draws for "
                                              "prior).")] = None,
    walkers: Annotated[int | None, typer.Option(min=2, help="emcee walkers (see aftermath calibrate).")] = None,
    engine: Annotated[str, typer.Option(help="Engine of the forecasts: stochastic or deterministic.")] = "stochastic",
    ex_ante: Annotated[bool, typer.Option(
        "--ex-ante", help="Forecast with every schedule held at its value at the cutoff (what was known then), "
        "a positive level with the naive forecast's random-walk uncertainty, not as declared after it.")] = False,
    seed: SeedOption = 1,
    save: Annotated[Path | None, typer.Option(help="Write the scores as JSON (for 'aftermath report --with').")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON on stdout.")] = False,
) -> None:
    """Rolling-origin backtest: calibrate to the observations up to each cutoff, forecast those after it
    (up to --until) and score the posterior forecast, the prior-only ensemble and persistence of the last
    observed value: coverage of the 50% and 90% predictive intervals, CRPS, log score, interval score, PIT."""
    from aftermath.inference.backtest import backtest
    from aftermath.inference.calibration import METHODS
    from aftermath.scenario.loader import load_scenario

    if method not in METHODS:
        fail(f"--method {method!r}: expected one of {', '.join(METHODS)}")
    if engine not in ("stochastic", "deterministic"):
        fail(f"--engine {engine!r}: expected stochastic or deterministic")
    loaded = load_scenario(scenario)
    months = [c.strip() for c in cutoffs.split(",") if c.strip()]

    def progress(cutoff: str, done: int, total: int) -> None:
        if not as_json and (done == total or done % max(total // 10, 1) == 0):
            errors.print(f"backtest: calibrating to {cutoff}: {done}/{total}", highlight=False)

    try:
        result = backtest(loaded, months, until=until, runs=runs, seed=seed, engine=engine,  # type: ignore[arg-type]
                          method=method,  # type: ignore[arg-type]
                          calibration={"steps": steps, "walkers": walkers}, progress=progress, ex_ante=ex_ante)
    except ValueError as exc:
        fail(f"backtest: {exc}")
    payload = result.as_payload()
    if _emit(payload, save, as_json):
        return
    print_backtest(loaded.title, payload)
    _saved(save)


def print_backtest(title: str, payload: dict) -> None:
    """The score table: each cutoff and all cutoffs pooled, each forecast."""
    from aftermath.inference.backtest import calibration_text, inputs_text, schedule_sigma_text
    from aftermath.scoring import SCORE_HEAD, SCORE_NOTE, score_rows

    grid = Table(
        *SCORE_HEAD,
        title=f"{title}\nbacktest: forecasts of the observations after each cutoff up to {payload['until']}; "
        f"{payload['runs']} predictive draws, {payload['engine']} engine, seed {payload['seed']}; "
        f"{inputs_text(payload)}",
        title_justify="left",
    )
    for row in score_rows(payload):
        grid.add_row(*row)
    console.print(grid)
    console.print(SCORE_NOTE, highlight=False)
    console.print(calibration_text(payload), highlight=False)
    if sigmas := schedule_sigma_text(payload):
        console.print(sigmas, highlight=False)
