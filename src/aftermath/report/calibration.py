"""The report's calibration section: each parameter's prior against its posterior, and pair plots of
the parameters the data moved most (their posterior draws over the prior's 5-95% box).

Built as a `DecisionSection` (kind 'calibration') so the report renders it like the other sections;
`calibration_payload` makes its JSON-able payload from a Posterior, `calibration_figure` draws it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from aftermath.formatting import band, number
from aftermath.inference.calibration import PARETO_K_LIMIT, Posterior, prior_bands
from aftermath.report.decisions import DecisionSection
from aftermath.scenario.schema import Scenario

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PAIRED = 4
"""Parameters in the pair plot: the ones whose 5-95% interval narrowed most."""
PLOTTED_DRAWS = 400


def calibration_payload(scenario: Scenario, posterior: Posterior) -> dict[str, Any]:
    """Priors, posteriors (median, 5-95%), how much each interval narrowed (1 - posterior width / prior
    width), diagnostics, and the draws of the PAIRED most-narrowed parameters."""
    priors = prior_bands(scenario, posterior.names)
    rows = []
    for name, (median, low, high) in posterior.summary().items():
        prior = priors[name]
        width = prior[2] - prior[1]
        rows.append({
            "parameter": name, "unit": scenario.parameters[name].unit, "prior": prior,
            "posterior": (median, low, high), "narrowed": 1 - (high - low) / width if width > 0 else 0.0,
            "ess": (posterior.diagnostics.get("ess") or {}).get(name) if isinstance(
                posterior.diagnostics.get("ess"), dict) else None,
            "rhat": (posterior.diagnostics.get("rhat") or {}).get(name),
        })
    rows.sort(key=lambda r: -r["narrowed"])
    top = [r["parameter"] for r in rows[:PAIRED]]
    picks = posterior.resample(min(PLOTTED_DRAWS, len(posterior)), 0)
    return {
        "kind": "calibration", "run_id": posterior.run_id, "label": posterior.label, "method": posterior.method,
        "until": posterior.until,
        "observations": posterior.diagnostics.get("observations"), "rows": rows,
        "pairs": {name: posterior.draws[name][picks].tolist() for name in top},
        **_weights(posterior.diagnostics),
    }


def _weights(diagnostics: Mapping[str, Any]) -> dict[str, Any]:
    """The reliability of an importance-sampled posterior (methods laplace and prior): its draws' effective
    sample size over the proposals, and (laplace) the Pareto k of the weights; nothing for an MCMC chain."""
    if isinstance(diagnostics.get("ess"), dict) or "samples" not in diagnostics:
        return {}
    return {"weights": {"ess": diagnostics["ess"], "samples": diagnostics["samples"],
                        "pareto_k": diagnostics.get("pareto_k")}}


def calibration_section(payload: Mapping[str, Any]) -> DecisionSection:
    """The section's text and table."""

    chain = not payload.get("weights")  # per-parameter ESS and R-hat are an MCMC chain's
    rows = [[r["parameter"], r["unit"], band(*r["prior"]), band(*r["posterior"]), number(r["narrowed"], "share"),
             *(("" if r["ess"] is None else number(r["ess"], "count"),
                "" if r["rhat"] is None else number(r["rhat"], digits=4)) if chain else ())]
            for r in payload["rows"]]
    return DecisionSection(
        "calibration", "Calibration: what the data say about the parameters",
        f"The parameters were calibrated ({payload['method']}; {payload.get('label') or payload['run_id']}) to "
        f"{payload['observations']} observations dated up to {payload['until']}; the ensembles in this report draw "
        "from the posterior. Each prior (the declared range) is set against its posterior, median and 5-95%; "
        "'narrowed' is how much of the prior's 5-95% width the data removed."
        + (" ESS is the effective number of independent draws, R-hat near 1 says the sampler's walkers agree."
           if chain else _weights_text(payload["weights"])),
        ["parameter", "unit", "prior median (5-95%)", "posterior median (5-95%)", "narrowed",
         *(("ESS", "R-hat") if chain else ())],
        rows,
        "Posterior draws of the parameters the data narrowed most, in pairs; the grey box is each prior's "
        "5-95% range.", dict(payload),
    )


def _weights_text(weights: Mapping[str, Any]) -> str:
    text = (f" The posterior was importance-sampled: {number(weights['ess'], 'count')} effective draws of "
            f"{number(weights['samples'], 'count')} weighted proposals")
    if weights.get("pareto_k") is not None:
        k = weights["pareto_k"]
        verdict = "reliable" if k <= PARETO_K_LIMIT else "unreliable"
        text += f", Pareto k of the weights {number(k, digits=2)} ({verdict}: below {PARETO_K_LIMIT} is reliable)"
    return text + "."


def calibration_figure(payload: Mapping[str, Any]) -> Figure:
    """Pair plot: histograms on the diagonal, draws below it, each prior's 5-95% range shaded."""
    from matplotlib.figure import Figure

    names = list(payload["pairs"])
    priors = {r["parameter"]: r["prior"] for r in payload["rows"]}
    size = len(names)
    figure = Figure(figsize=(1.9 * size + 1, 1.9 * size + 0.6), layout="constrained")
    axes = np.atleast_2d(figure.subplots(size, size, squeeze=False))
    for row, y_name in enumerate(names):
        for column, x_name in enumerate(names):
            axis = axes[row][column]
            x = np.asarray(payload["pairs"][x_name])
            if column > row:
                axis.set_axis_off()
                continue
            axis.axvspan(priors[x_name][1], priors[x_name][2], color="0.9", zorder=0)
            if row == column:
                axis.hist(x, bins=25, color="#3b6ea8")
                axis.set_yticks([])
            else:
                axis.axhspan(priors[y_name][1], priors[y_name][2], color="0.9", zorder=0)
                axis.scatter(x, payload["pairs"][y_name], s=3, alpha=0.4, color="#3b6ea8")
            if row == size - 1:
                axis.set_xlabel(x_name, fontsize=7)
            if column == 0 and row > 0:
                axis.set_ylabel(y_name, fontsize=7)
            axis.tick_params(labelsize=6)
    return figure
