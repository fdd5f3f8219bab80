"""The report's decision sections (sensitivity, feature scores, scenario discovery, policy search).

Each section is built from the JSON payload the decision commands save (`--save FILE`), in two
separate steps: `decision_section` makes its content (text, a table as plain strings, a figure)
and the report's template renders it (through `report.html.decisions`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aftermath.formatting import number, span

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PAYLOAD_KINDS = ("sensitivity", "feature_scores", "discovery", "optimisation", "backtest")
TOP_PARAMETERS = 6
MAX_ROWS = 40


class PayloadError(ValueError):
    """A saved decision result cannot be read: one line naming the file and what was expected."""


@dataclass(frozen=True)
class DecisionSection:
    """One section's content: plain strings, no markup."""

    anchor: str
    heading: str
    summary: str
    head: list[str]
    rows: list[list[str]]
    figure_caption: str = ""
    payload: dict = field(default_factory=dict, repr=False)


def read_payload(path: str | Path) -> dict:
    """A saved decision result; raises PayloadError for a missing, unreadable or foreign file."""
    path = Path(path)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"{path}: cannot read a saved decision result ({exc})") from None
    if not isinstance(payload, dict) or payload.get("kind") not in PAYLOAD_KINDS:
        raise PayloadError(f"{path}: expected a file saved by 'aftermath sensitivity|feature-scores|discover|optimise"
                           "|backtest --save'")
    return payload


def _number(value: Any) -> str:
    """A saved value through aftermath.formatting; empty where there is none (a side a box does not restrict)."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    if isinstance(value, float):
        return number(value)
    return str(value)


def decision_section(payload: Mapping[str, Any], position: int = 0) -> DecisionSection:
    """The content of one saved result's section."""
    kind = payload["kind"]
    anchor = f"decisions-{position}"
    if kind == "sensitivity":
        main = _main_index(payload["indices"])
        rows = [r for r in payload["indices"] if r["index"] == main]
        rows.sort(key=lambda r: (r["outcome"], r["date"], -r["value"]))
        return DecisionSection(
            anchor, f"Which uncertainties matter ({payload['method']})",
            f"{payload['method']} with {payload['samples']} samples ({payload['runs']} runs, {payload['engine']} "
            f"engine) on scenario {payload['scenario']}. The {main} index with its 95% bootstrap interval; "
            "'no' marks a parameter whose index is not significantly above zero (or a dummy input).",
            ["outcome", "date", "parameter", main, "95% interval", "significant"],
            _sensitivity_rows(rows),
            f"Share of each outcome's variance explained by each parameter alone ({main}), at each date; "
            "the top parameters are stacked, the rest grouped.", dict(payload))
    if kind == "backtest":
        from aftermath.inference.backtest import inputs_text, schedule_sigma_text
        from aftermath.scoring import SCORE_HEAD, SCORE_NOTE, score_rows

        cutoffs = ", ".join(fold["cutoff"] for fold in payload["folds"])
        return DecisionSection(
            anchor, f"Backtest: forecasts of later observations ({payload['scenario']})",
            f"Calibrated ({payload['method']}) to the observations up to each cutoff ({cutoffs}), then forecast the "
            f"observations after it up to {payload['until']}: the posterior forecast against two naive baselines, "
            f"the prior-only ensemble and persistence of the last observed value ({payload['runs']} predictive "
            f"draws each, with the observation error; {payload['engine']} engine; {inputs_text(payload)}). "
            f"{SCORE_NOTE} {schedule_sigma_text(payload)}".rstrip(),
            SCORE_HEAD, score_rows(payload),
            "PIT histograms of all cutoffs pooled: flat when the forecast is calibrated, U-shaped when its "
            "intervals are too narrow, humped when too wide.", dict(payload))
    if kind == "feature_scores":
        rows = sorted(payload["scores"], key=lambda r: (r["output"], -r["score"]))
        return DecisionSection(
            anchor, f"Feature scores (run {payload['run_id']})",
            f"Extra-trees importance of each uncertain parameter on stored run {payload['run_id']}, a quick "
            "ranking; parameters scoring no higher than a dummy input of random numbers are noise.",
            ["outcome at date", "parameter", "score", "above dummy"],
            [[r["output"], r["parameter"], number(r["score"]), "yes" if r["above_dummy"] else "no"]
             for r in rows if r["above_dummy"] or r["parameter"] == "(dummy)"],
            payload=dict(payload))
    if kind == "discovery":
        chosen = payload["chosen"]
        return DecisionSection(
            anchor, f"When {payload['outcome']} {payload['condition']} in {payload['date']}",
            f"PRIM on run {payload['run_id']}: {payload['of_interest']} of {payload['cases']} parameter samples "
            f"have {payload['outcome']} {payload['condition']} in {payload['date']}. The chosen box holds "
            f"{number(chosen['coverage'], 'share')} of them (coverage) and {number(chosen['density'], 'share')} of the "
            f"samples in it are of interest (density), in {number(chosen['mass'], 'share')} of the space. CART's best "
            "leaf: "
            f"{payload['cart'][0]['rule'] if payload['cart'] else '(none)'}.",
            ["parameter", "from", "to", "quasi-p (low side)", "quasi-p (high side)", "range in the ensemble"],
            [[r["parameter"], _number(r["low"]), _number(r["high"]), _number(r["qp_low"]), _number(r["qp_high"]),
              span(r["full_low"], r["full_high"])] for r in chosen["limits"]],
            "The peeling trajectory: each point a box, from the whole space (right) inward; the chosen box ringed.",
            dict(payload))
    levers = [lever["name"] for lever in payload["levers"]]
    scored = [c for c in payload["pareto"][0] if c not in (*levers, "cost")] if payload["pareto"] else []
    return DecisionSection(
        anchor, f"Robust policies within a budget of {payload['budget']:g}",
        f"NSGA-II over {', '.join(levers)} ({payload['evaluations']} policies run on {payload['samples']} "
        f"parameter samples each, {payload['engine']} engine); robustness: {payload['metric']}. The Pareto set: "
        "no other policy within the budget does better on every objective.",
        [*levers, "cost", *scored],
        [[_number(row[c]) for c in (*levers, "cost", *scored)] for row in payload["pareto"]],
        "Each line one policy of the Pareto set: lever strengths and robustness scores, each axis from its "
        "smallest to its largest value.", dict(payload))


def _main_index(rows: Sequence[Mapping[str, Any]]) -> str:
    present = {r["index"] for r in rows}
    return next((i for i in ("ST", "mu_star", "delta", "S1") if i in present), "S1")


def _sensitivity_rows(rows: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Significant parameters one per row (largest first), then one row per outcome and date counting the rest."""
    shown = [[r["outcome"], r["date"], r["parameter"], _number(r["value"]),
              span(r["low"], r["high"]), "yes"] for r in rows if r["significant"]][:MAX_ROWS]
    quiet: dict[tuple[str, str], int] = {}
    for r in rows:
        if not r["significant"]:
            quiet[(r["outcome"], r["date"])] = quiet.get((r["outcome"], r["date"]), 0) + 1
    counted = [[outcome, date, f"{count} other parameters", "", "", "no"] for (outcome, date), count in quiet.items()]
    return shown + counted


def decision_figure(section: DecisionSection) -> Figure | None:
    """The section's matplotlib figure (None: no figure), drawn from its payload."""
    from matplotlib.figure import Figure  # imported when a report is drawn, not at CLI start-up

    payload = section.payload
    kind = payload.get("kind")
    if kind == "sensitivity":
        return _stacked(payload)
    if kind == "discovery":
        figure = Figure(figsize=(6.4, 4.2), layout="constrained")
        axis = figure.subplots()
        trajectory = payload["trajectory"]
        coverage = [r["coverage"] for r in trajectory]
        density = [r["density"] for r in trajectory]
        points = axis.scatter(coverage, density, c=[r["restricted"] for r in trajectory], cmap="viridis", s=18)
        chosen = payload["chosen"]
        axis.scatter([chosen["coverage"]], [chosen["density"]], s=120, facecolors="none", edgecolors="#d1495b")
        axis.set_xlabel("coverage")
        axis.set_ylabel("density")
        figure.colorbar(points, ax=axis, label="restricted dimensions")
        return figure
    if kind == "optimisation" and payload["pareto"]:
        return _parallel(payload)
    if kind == "backtest":
        pooled = payload["pooled"]
        figure = Figure(figsize=(3.0 * len(pooled), 2.8), layout="constrained")
        for axis, (forecast, summary) in zip(figure.subplots(1, len(pooled), squeeze=False)[0], pooled.items(),
                                             strict=True):
            counts = summary["pit_histogram"]
            axis.bar((np.arange(len(counts)) + 0.5) / len(counts), counts, width=1 / len(counts), edgecolor="white")
            axis.axhline(sum(counts) / len(counts), color="#d1495b", linewidth=1)
            axis.set_title(f"{forecast} ({summary['scored']} scored)", fontsize=9)
            axis.set_xlabel("PIT")
        return figure
    return None


def _stacked(payload: Mapping[str, Any]) -> Figure:
    from matplotlib.figure import Figure

    main = _main_index(payload["indices"])
    rows = [r for r in payload["indices"] if r["index"] == main]
    outcomes = list(dict.fromkeys(r["outcome"] for r in rows))
    figure = Figure(figsize=(max(6.4, 3.6 * len(outcomes)), 4.0), layout="constrained")
    axes = figure.subplots(1, len(outcomes), squeeze=False)
    for axis, outcome in zip(axes[0], outcomes, strict=True):
        mine = [r for r in rows if r["outcome"] == outcome]
        dates = sorted({r["date"] for r in mine})
        totals: dict[str, float] = {}
        for r in mine:
            totals[r["parameter"]] = totals.get(r["parameter"], 0.0) + max(r["value"], 0.0)
        top = sorted(totals, key=totals.__getitem__, reverse=True)[:TOP_PARAMETERS]
        bottom = np.zeros(len(dates))
        for name in [*top, "other parameters"]:
            heights = np.array([
                sum(max(r["value"], 0.0) for r in mine if r["date"] == d
                    and (r["parameter"] == name or (name == "other parameters" and r["parameter"] not in top)))
                for d in dates
            ])
            axis.bar(dates, heights, bottom=bottom, label=name)
            bottom += heights
        axis.set_title(outcome, fontsize=9)
        axis.set_ylabel(main)
        axis.tick_params(axis="x", labelrotation=45, labelsize=8)
        axis.legend(fontsize=7)
    return figure


def _parallel(payload: Mapping[str, Any]) -> Figure:
    from matplotlib.figure import Figure

    columns = [c for c in payload["pareto"][0] if c != "cost"]
    data = np.array([[row[c] for c in columns] for row in payload["pareto"]], dtype=float)
    low, high = data.min(axis=0), data.max(axis=0)
    scaled = (data - low) / np.where(high > low, high - low, 1.0)
    figure = Figure(figsize=(max(6.4, 1.3 * len(columns)), 4.0), layout="constrained")
    axis = figure.subplots()
    for line in scaled:
        axis.plot(range(len(columns)), line, alpha=0.6)
    axis.set_xticks(range(len(columns)), [c.replace(" ", "\n") for c in columns], fontsize=7)
    axis.set_yticks([0, 1], ["lowest", "highest"])
    for x in range(len(columns)):
        axis.axvline(x, color="#b0b8c0", linewidth=0.8)
    return figure
