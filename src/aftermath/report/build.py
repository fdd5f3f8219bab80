"""build_report: scenario (or finished content) -> one self-contained HTML file, written atomically."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib

from aftermath.report import figures
from aftermath.report.content import ReportContent, changed_outcomes, collect
from aftermath.report.html import page
from aftermath.scenario.loader import load_scenario
from aftermath.scenario.schema import Scenario


def pictures(content: ReportContent) -> list[figures.Picture]:
    """Every figure the report shows, in page order."""
    drawn = []
    for outcome in content.outcomes:
        chosen = [o for o in content.observations if o.outcome == outcome.name]
        drawn.append(figures.fan_picture(outcome, chosen, content.fit_until))
    if content.sankey is not None and content.sankey.links:
        drawn.append(figures.sankey_picture(content.sankey))
    changed = changed_outcomes(content)
    if content.policies and changed:
        drawn.append(figures.policy_picture(content.policies, changed, content.key_dates[-1]))
    return drawn


def render(content: ReportContent, figures_dir: Path | None = None, generated: str | None = None) -> str:
    """The report's HTML text; with `figures_dir`, each figure is also written there as PNG and SVG."""
    from aftermath import __version__

    stamp = generated or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")
    svgs = {}
    with matplotlib.rc_context(figures.STYLE):
        for picture in pictures(content):
            svgs[picture.stem] = figures.svg_markup(picture)
            if figures_dir is not None:
                figures.save_files(picture, figures_dir)
    return page(content, svgs, [], stamp, __version__)


def write_atomically(text: str, path: Path) -> Path:
    """Write beside `path`, then rename: a failure never leaves a half-written report."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def check_report_path(path: Path) -> None:
    """Refuse a bad output path before any simulation runs."""
    if path.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"{path}: expected a file ending in .html")
    if not path.parent.exists():
        raise ValueError(f"{path}: the folder {path.parent} does not exist")


def build_report(
    scenario: Scenario | str | Path | None,
    output: str | Path,
    *,
    replicates: int = 200,
    seed: int = 1,
    policies: Sequence[Mapping[str, float | None]] = (),
    at: str | None = None,
    fit_until: str = "2017-12",
    figures_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> Path:
    """Run the scenario (baseline and each policy, paired by seed) and write the report to `output`.

    `scenario`: a Scenario, a file, a shipped name, or None for the default. `policies`: one mapping
    {intervention: strength or None} per policy arm. `at`: the date of the map of where fighters went
    and of the country table (default: the last key date). Returns the path written.
    """
    path = Path(output)
    check_report_path(path)
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    content = collect(loaded, replicates, seed, policies, at=at, fit_until=fit_until, progress=progress)
    return write_atomically(render(content, Path(figures_dir) if figures_dir else None), path)
