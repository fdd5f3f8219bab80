"""Display names and `aftermath explain` entries of the network section's groups."""

from __future__ import annotations

from aftermath.scenario.describe import provenance, spaced
from aftermath.scenario.schema import Scenario
from aftermath.scenario.submodels import Described


def group_label(scenario: Scenario, name: str) -> str:
    """A network group's display name (its `label`), else its id spaced."""
    network = getattr(scenario, "network", None)
    group = network.groups.get(name) if network is not None else None
    return group.label if group is not None and group.label else spaced(name)


def network_elements(scenario: Scenario) -> list[Described]:
    """Each network group as (kind, name, label, facts) for `aftermath explain`."""
    return [
        ("network group", name, group_label(scenario, name),
         [("description", group.description.strip()), ("family", group.family), *provenance(group)])
        for name, group in scenario.network.groups.items()  # type: ignore[attr-defined]
    ]
