"""The coarse-step check on models whose hazards are constant: every figure is worked out by hand.

Stratum B of `active` dies at 0.01 and leaves at 0.10 per month, 0.11 in all; stratum A 0.03 in all. So the
worst cell is active[origin=B], at every month alike (the check names the first), its largest outflow is
'leaving' (listed after 'dying', so the largest is picked, not the first), H dt = 0.11 per monthly step, and
the recommended sub-steps are ceil(0.11 / 0.004) = 28. 'recruiting' (an inflow, not a hazard) comes first.
"""

from __future__ import annotations

from typing import Any

from aftermath import compile_model
from aftermath.engines.steps import TARGET_HAZARD_STEP, WARN_HAZARD_STEP, coarse_step
from tests.conftest import scenario_from


def _constant(leave_b: float = 0.10, die: float = 0.01, scale: float = 1.0, substeps: int = 1, initial_b: float = 300,
              inflow: float = 5.0) -> Any:
    fixed = {"fixed": "test", "assumption": "test"}
    return scenario_from({
        "name": "coarse",
        "title": "constant hazards",
        "time": {"start": "2015-01", "end": "2015-06", "substeps": substeps},
        "dimensions": {"origin": ["A", "B"]},
        "compartments": {"active": {"dims": ["origin"], "initial": {"A": 500, "B": initial_b}, "assumption": "test"},
                         "gone": {"dims": ["origin"]}},
        "boundaries": {"recruits": {"kind": "source"}, "dead": {"kind": "sink"}},
        "parameters": {
            "leave": {"unit": "per month", "dims": ["origin"], "value": {"A": 0.02 * scale, "B": leave_b * scale},
                      **fixed},
            "die": {"unit": "per month", "value": die * scale, **fixed},
            "inflow": {"unit": "persons per month", "value": inflow, **fixed},
        },
        "flows": [{"name": "recruiting", "from": "recruits", "to": "active", "rate": "inflow"},
                  {"name": "dying", "from": "active", "to": "dead", "rate": "die"},
                  {"name": "leaving", "from": "active", "to": "gone", "rate": "leave"}],
    })


def test_worst_cell_its_first_month_largest_outflow_and_recommendation():
    check = coarse_step(compile_model(_constant()))
    assert check is not None
    assert (check.compartment, check.stratum, check.date, check.flow) == ("active", "origin=B", "2015-01", "leaving")
    assert abs(check.hazard_step - 0.11) < 1e-12
    assert (check.substeps, check.recommended) == (1, 28)  # ceil(0.11 / 0.004)
    assert TARGET_HAZARD_STEP == 0.004 and check.hazard_step > WARN_HAZARD_STEP and check.coarse
    assert "of active[origin=B] times the step is 0.11 (above 0.05; largest outflow 'leaving')" in check.message()
    assert "use --substeps 28 (or time.substeps: 28) or --engine ode" in check.message()


def test_sub_steps_divide_the_hazard_step_but_not_the_recommendation():
    check = coarse_step(compile_model(_constant(substeps=2)))
    assert check is not None
    assert abs(check.hazard_step - 0.055) < 1e-12 and (check.substeps, check.recommended) == (2, 28)
    assert "times the sub-step is 0.055" in check.message()


def test_fine_steps_recommend_one_sub_step_and_the_threshold_itself_is_not_coarse():
    """Scaled by 1/50: H dt = 0.0022, below the target 0.004: one sub-step. 0.04 + 0.01 is 0.05 exactly
    in binary floating point: not above WARN_HAZARD_STEP, so not coarse."""
    fine = coarse_step(compile_model(_constant(scale=0.02)))
    assert fine is not None and abs(fine.hazard_step - 0.0022) < 1e-12 and fine.recommended == 1 and not fine.coarse
    edge = coarse_step(compile_model(_constant(leave_b=0.04)))
    assert edge is not None and edge.hazard_step == WARN_HAZARD_STEP and not edge.coarse


def test_no_hazard_at_all_still_recommends_one_sub_step_and_names_an_outflow():
    check = coarse_step(compile_model(_constant(scale=0.0)))
    assert check is not None
    assert (check.hazard_step, check.recommended, check.coarse) == (0.0, 1, False)
    assert (check.compartment, check.stratum, check.date, check.flow) == ("active", "origin=A", "2015-01", "dying")


def test_a_stratum_empty_all_run_is_still_named_by_its_hazard():
    """The check reads hazards, not who is exposed to them: one run at the parameters' values leaves
    active[origin=B] empty (no one at the start, no recruits), but another sample, or an edited scenario,
    fills it, and its 0.11 per month is what the step must resolve."""
    check = coarse_step(compile_model(_constant(initial_b=0, inflow=0.0)))
    assert check is not None
    assert (check.compartment, check.stratum, check.flow) == ("active", "origin=B", "leaving")
    assert abs(check.hazard_step - 0.11) < 1e-12
