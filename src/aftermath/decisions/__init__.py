"""Decisions under deep uncertainty: global sensitivity, scenario discovery and robust policy search.

Sits above experiments (it runs designs through them) and below the CLI and the report.
"""

from aftermath.decisions.discovery import Discovery, classify, discover
from aftermath.decisions.evaluate import DecisionError, Target, evaluate_targets, parse_target
from aftermath.decisions.features import feature_scores
from aftermath.decisions.optimise import Objective, SearchResult, optimise, parse_objective
from aftermath.decisions.sensitivity import (
    METHODS,
    ScenarioSensitivity,
    function_sensitivity,
    given_data_sensitivity,
    scenario_sensitivity,
    stored_sensitivity,
)
from aftermath.decisions.stored import ALL_ARMS, Cases, stored_cases

__all__ = [
    "ALL_ARMS",
    "METHODS",
    "Cases",
    "DecisionError",
    "Discovery",
    "Objective",
    "ScenarioSensitivity",
    "SearchResult",
    "Target",
    "classify",
    "discover",
    "evaluate_targets",
    "feature_scores",
    "function_sensitivity",
    "given_data_sensitivity",
    "optimise",
    "parse_objective",
    "parse_target",
    "scenario_sensitivity",
    "stored_cases",
    "stored_sensitivity",
]
