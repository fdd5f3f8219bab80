"""Decision results as JSON-ready dicts: what `--json` prints, `--save` writes and the report reads."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from aftermath.decisions.discovery import Discovery
from aftermath.decisions.optimise import SearchResult, compare_command
from aftermath.decisions.sensitivity import ScenarioSensitivity
from aftermath.files import atomic_path


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    rows = table.to_dict(orient="records")
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows]


def sensitivity_payload(result: ScenarioSensitivity) -> dict[str, Any]:
    return {"kind": "sensitivity", "scenario": result.scenario, "method": result.method, "samples": result.samples,
            "runs": result.runs, "engine": result.engine, "run_id": result.run_id,
            "targets": [t.label for t in result.targets], "indices": _records(result.table)}


def feature_payload(run_id: int, scenario: str, table: pd.DataFrame) -> dict[str, Any]:
    return {"kind": "feature_scores", "run_id": run_id, "scenario": scenario, "scores": _records(table)}


def discovery_payload(run_id: int, scenario: str, outcome: str, date: str, condition: str,
                      found: Discovery) -> dict[str, Any]:
    chosen = found.chosen
    return {
        "kind": "discovery", "run_id": run_id, "scenario": scenario, "outcome": outcome, "date": date,
        "condition": condition, "cases": found.cases, "of_interest": found.of_interest,
        "trajectory": _records(found.trajectory),
        "chosen": {"index": chosen.index, "coverage": chosen.coverage, "density": chosen.density,
                   "mass": chosen.mass, "limits": _records(chosen.limits), "freed": chosen.freed},
        "cart": _records(found.cart),
    }


def search_payload(result: SearchResult) -> dict[str, Any]:
    return {
        "kind": "optimisation", "run_id": result.run_id, "scenario": result.scenario, "metric": result.metric,
        "budget": result.budget,
        "samples": result.samples, "engine": result.engine, "evaluations": result.evaluations,
        "levers": [{"name": lever.name, "low": lever.low, "high": lever.high, "cost": lever.cost, "unit": lever.unit}
                   for lever in result.levers],
        "objectives": [o.label for o in result.objectives],
        "pareto": _records(result.pareto),
        "compare": [compare_command(result, row) for _, row in result.pareto.iterrows()],
    }


def save_payload(payload: dict[str, Any], path: str | Path) -> Path:
    """Write the payload as JSON through the one atomic writer: never a half-written file."""
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    return Path(path)
