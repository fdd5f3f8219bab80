"""Report groupings in a scenario: named groups of strata and compartment pathways."""

from __future__ import annotations

import pytest

from aftermath import ScenarioError
from tests.conftest import cohort_scenario, scenario_from


def test_groups_and_pathways_are_kept():
    data = cohort_scenario(groups={"origin": {"first": ["A"], "second": ["B"]}})
    data["compartments"]["gone"]["pathway"] = "left the group"
    scenario = scenario_from(data)
    assert scenario.groups == {"origin": {"first": ["A"], "second": ["B"]}}
    assert scenario.compartments["gone"].pathway == "left the group"


@pytest.mark.parametrize(
    ("groups", "message"),
    [
        ({"region": {"x": ["A"]}}, "groups.region: unknown dimension 'region'"),
        ({"origin": {"x": ["Z"]}}, "groups.origin.x[0]: 'Z' is not a stratum of 'origin'"),
        ({"origin": {"x": ["A"], "y": ["B", "A"]}}, "groups.origin.y[1]: 'A' is already in the group 'x'"),
    ],
)
def test_bad_groups_are_refused_with_their_field(groups, message):
    with pytest.raises(ScenarioError, match=message.replace("[", r"\[").replace("]", r"\]")):
        scenario_from(cohort_scenario(groups=groups))
