"""build_report: scenario (or finished content) -> one self-contained HTML file, written atomically."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aftermath.experiments import ExecutorSpec, design_experiment, load_result, read_scenario, run_experiment
from aftermath.files import check_output_path, write_text
from aftermath.inference.calibration import check_matches
from aftermath.report import svgchart
from aftermath.report.calibration import calibration_figure, calibration_payload, calibration_section
from aftermath.report.content import (
    MAX_POLICY_PANELS,
    ObservationRow,
    OutcomeSummary,
    ReportContent,
    baseline_stocks,
    changed_outcomes,
    charted_outcomes,
    content_from_ensemble,
)
from aftermath.report.decisions import decision_figure
from aftermath.report.html import page
from aftermath.scenario.schema import Scenario, month_label, parse_month
from aftermath.store import DEFAULT_STORE, Store
from aftermath.summary import key_dates

if TYPE_CHECKING:
    from aftermath.inference.calibration import Posterior
    from aftermath.report import figures

FIT_UNTIL = "2017-12"


class ReportError(ValueError):
    """A report cannot be made as asked (a date outside the run, an unfinished run): one line for the analyst."""


STOCK_RUNS = 100
"""Baseline runs re-run with their compartments kept, for the map of where fighters went and the country table."""


def _fans(content: ReportContent) -> list[tuple[OutcomeSummary, list[ObservationRow]]]:
    """Every outcome drawn over time, with the recorded figures to draw on it."""
    drawn = [(o, [row for row in content.observations if row.outcome == o.name]) for o in charted_outcomes(content)]
    if content.network is not None:
        drawn.append((OutcomeSummary("active_provinces", "", (), {"": content.network.provinces}), []))
    return drawn


def pictures(content: ReportContent) -> list[figures.Picture]:
    """The figures other than fan charts (the map, the policy effects, the network), drawn with matplotlib."""
    from aftermath.report import figures  # matplotlib: imported when a report is drawn, not at CLI start-up

    drawn = []
    if content.sankey is not None and content.sankey.links:
        drawn.append(figures.sankey_picture(content.sankey))
    changed = changed_outcomes(content, MAX_POLICY_PANELS)
    if content.policies and changed:
        drawn.append(figures.policy_picture(content.policies, changed, content.key_dates[-1]))
    if content.network is not None:
        drawn.append(figures.network_picture(content.network))
    if content.home_front is not None:
        drawn.append(figures.home_front_picture(content.home_front))
    for section in content.decisions:
        calibrated = section.payload.get("kind") == "calibration"
        drawn_figure = calibration_figure(section.payload) if calibrated else decision_figure(section)
        if drawn_figure is not None:
            drawn.append(figures.Picture(section.anchor, section.heading, drawn_figure))
    return drawn


def render(content: ReportContent, figures_dir: Path | None = None, generated: str | None = None) -> str:
    """The report's HTML text; with `figures_dir`, each figure is also written there as PNG and SVG."""
    import matplotlib

    from aftermath import __version__
    from aftermath.report import figures

    stamp = generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    svgs = {f"fan-{o.name}": svgchart.fan_svg(o, rows, content.fit_until) for o, rows in _fans(content)}
    with matplotlib.rc_context(figures.STYLE):
        others = pictures(content)
        svgs.update({picture.stem: figures.svg_markup(picture) for picture in others})
        if figures_dir is not None:
            for outcome, rows in _fans(content):
                figures.save_files(figures.fan_picture(outcome, rows, content.fit_until), figures_dir)
            for picture in others:
                figures.save_files(picture, figures_dir)
    return page(content, svgs, stamp, __version__)


def check_report_path(path: Path) -> None:
    """Refuse a bad output path before any simulation runs."""
    check_output_path(path, (".html", ".htm"), "report")


def collect(
    scenario: str | Path | None = None,
    *,
    samples: int = 50,
    replicates: int = 4,
    seed: int = 1,
    policies: Sequence[Mapping[str, float | None]] = (),
    sampler: str = "lhs",
    at: str | None = None,
    fit_until: str = FIT_UNTIL,
    executor: ExecutorSpec | None = None,
    stock_runs: int = STOCK_RUNS,
    progress: Callable[[int], None] | None = None,
    posterior: Posterior | None = None,
) -> ReportContent:
    """Run the baseline and each policy as one experiment (same seed, same parameter draws: paired runs)
    and summarise it. `samples` parameter draws x `replicates` stochastic runs each, per policy; drawn
    from `posterior` when given (and the report then shows priors against posteriors)."""
    text, file, scenario_ = read_scenario(scenario)
    date = report_date(scenario_, at)
    draws = None
    if posterior is not None:
        check_matches(posterior, scenario_)
        draws, sampler = posterior.parameter_draws(samples, seed), posterior.label
    experiment = design_experiment(text, file, samples=samples, replicates=replicates, arms=[{}, *policies],
                                   sampler=sampler, seed=seed, draws=draws)  # type: ignore[arg-type]
    result = run_experiment(experiment, executor or ExecutorSpec(), progress)
    stocks = baseline_stocks(experiment, min(experiment.members, stock_runs), date, progress)
    content = content_from_ensemble(experiment, result, stocks, date, fit_until)
    if posterior is not None:
        content.decisions = [calibration_section(calibration_payload(scenario_, posterior))]
    return content


def collect_stored(
    store: Store,
    run_id: int,
    *,
    at: str | None = None,
    fit_until: str = FIT_UNTIL,
    stock_runs: int = STOCK_RUNS,
    progress: Callable[[int], None] | None = None,
) -> ReportContent:
    """Summarise a run from the store (its first arm is the reference); refuses an unfinished run."""
    stored = load_result(store, run_id)
    if stored.run.row["status"] != "done":
        status = stored.run.row["status"]
        raise ReportError(f"run {run_id} is {status}; finish it first with 'aftermath resume {run_id}'")
    date = report_date(stored.experiment.scenario, at)
    members = min(stored.experiment.members, stock_runs)
    stocks = baseline_stocks(stored.experiment, members, date, progress)
    return content_from_ensemble(stored.experiment, stored.result, stocks, date, fit_until, run_id=run_id)


def report_date(scenario: Scenario, at: str | None) -> str:
    """`at` as YYYY-MM within the scenario's span (default: its last key date)."""
    if at is None:
        return key_dates(scenario)[-1]
    try:
        month = parse_month(at)
    except ValueError as exc:
        raise ReportError(f"--at {exc}") from None
    if not scenario.time.start <= month <= scenario.time.end:
        raise ReportError(f"--at {at} is outside the scenario's time span ({month_label(scenario.time.start)} to "
                         f"{month_label(scenario.time.end)})")
    return month_label(month)


def build_report(
    output: str | Path,
    scenario: str | Path | None = None,
    *,
    run: int | None = None,
    store: str | Path = DEFAULT_STORE,
    figures_dir: str | Path | None = None,
    **options: Any,
) -> Path:
    """Write the report of a scenario (run now) or of a stored run to `output`; returns the path.

    `options` go to `collect` (samples, replicates, seed, policies, sampler, at, fit_until, executor,
    stock_runs, progress) or, for a stored run, to `collect_stored` (at, fit_until, stock_runs, progress).
    """
    path = Path(output)
    check_report_path(path)
    if run is not None:
        content = collect_stored(Store(store), run, **options)
    else:
        content = collect(scenario, **options)
    return write_text(render(content, Path(figures_dir) if figures_dir else None), path)
