"""The `network` section of a scenario: alliance groups, their ties, dynamics and events.

Shape and local rules only (as in `aftermath.scenario.schema`); rules relating the section to the
rest of the scenario (parameters, schedules, dimensions, flows, sources) are in `validate.py`.
Numbers that drive the dynamics are not written here but named: they are scenario parameters, so
they carry a unit, a range and their sources like every other number.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aftermath.scenario.schema import Label, Month, Name, Number, Provenance, Strict, Text

CAPACITIES = ("training", "safe_haven", "infrastructure", "cachet")
"""What a hub can give an ally (Bacon 2018); material ones depend on territory, cachet does not."""
MATERIAL = ("training", "safe_haven", "infrastructure")


class Capacities(Strict):
    """What a group can give allies, each an index from 0 (none) to 1 (the most any group gives)."""

    training: Number = Field(ge=0, le=1)
    safe_haven: Number = Field(ge=0, le=1)
    infrastructure: Number = Field(ge=0, le=1)
    cachet: Number = Field(ge=0, le=1)


class Group(Provenance):
    """An armed group. Its capacities are those it has when it holds all its territory."""

    label: Label | None = None
    """Its name for people, e.g. 'Hay'at Tahrir al-Sham' for hts (default: the id, spaced)."""
    description: Text = ""
    family: Name
    """Ideology family; new ties form only within a family (declared ties may cross it)."""
    capacities: Capacities
    strength: Number = Field(ge=0)
    """Members (persons) at the start."""
    territory: Number | Name | None = None
    """Share of its peak territory held (0-1): a number, or the name of a schedule; none: not modelled."""

    @model_validator(mode="after")
    def _territory_share(self) -> Group:
        if isinstance(self.territory, float) and not 0 <= self.territory <= 1:
            raise ValueError("territory is a share of the peak territory held, between 0 and 1")
        return self


class Tie(Provenance):
    groups: tuple[Name, Name]
    type: Literal["province", "affiliate", "cooperation", "rivalry"]
    start: Month
    """When the tie was made; a tie dated before the scenario starts exists from its start."""
    description: Text = ""


class Dynamics(Strict):
    """Names of the scenario parameters that drive the network (each scalar; units checked)."""

    formation: Name
    """Hazard that a group seeks a new ally (per time); the partner is drawn by its capacities."""
    dissolution: Name
    """Hazard that an alliance tie ends (per time); the alliance-disruption lever raises it."""
    termination: Name
    """Hazard that a group with no allies ends (per time)."""
    ally_hazard_ratio: Name
    """Factor on the termination hazard per ally (ratio < 1: allies prolong survival)."""
    lethality_per_tie: Name
    """Factor on a group's lethality per alliance tie (ratio)."""
    territorial_dependence: Name | None = None
    """Share of material capacities lost with all territory (fraction); needed if a group has territory."""
    decapitation_termination: Name | None = None
    """Probability that a group with no allies ends when its leader is killed (fraction)."""
    decapitation_capacity_loss: Name | None = None
    """Share of its capacities a group loses when its leader is killed (fraction)."""
    strength_elasticity: Name | None = None
    """Exponent of (strength / initial strength) in an affiliate's attraction (dimensionless)."""
    endings: dict[Name, Name] = Field(default_factory=dict)
    """How groups end: ending name -> parameter holding its share (normalised to sum to 1)."""


class NetworkEvent(Provenance):
    name: Name
    type: Literal["decapitation", "tie_cut"]
    date: Month
    group: Name | None = None
    """The group whose leader is killed (decapitation)."""
    groups: tuple[Name, Name] | None = None
    """The two groups whose tie is cut (tie_cut)."""
    probability: Number | Name = 1.0
    """Chance the event happens: a number or a parameter (fraction), e.g. a policy lever."""
    description: Text = ""

    @model_validator(mode="after")
    def _target(self) -> NetworkEvent:
        if self.type == "decapitation" and (self.group is None or self.groups is not None):
            raise ValueError("a decapitation names one 'group' (and no 'groups')")
        if self.type == "tie_cut" and (self.groups is None or self.group is not None):
            raise ValueError("a tie_cut names the two 'groups' of the tie (and no 'group')")
        if isinstance(self.probability, float) and not 0 <= self.probability <= 1:
            raise ValueError("probability must lie between 0 and 1")
        return self


class Theatre(Strict):
    """An affiliate theatre: where free agents go, the group(s) they join there, and the flows that bring them."""

    groups: list[Name] = Field(min_length=1)
    weight: Name | None = None
    """Optional parameter (dimensionless, any dimensions, e.g. by origin): the pull of the theatre
    beyond the network (routes, languages); attraction is proportional to weight x network pull."""
    arrivals: list[Name] = Field(default_factory=list)
    """Flows whose movers join the theatre's groups (their strength grows with them)."""


class Affiliates(Strict):
    """How the network meets the fighter flows: the theatres free agents of the `hub` choose among."""

    hub: Name
    """The core whose free agents the theatres draw; an affiliate without a tie to it draws none."""
    theatres: dict[Name, Theatre] = Field(min_length=1)


class NetworkSpec(Strict):
    """The alliance network: groups, ties, what drives them, dated events, and the coupling to flows."""

    description: Text = ""
    groups: dict[Name, Group] = Field(min_length=2)
    ties: list[Tie] = Field(default_factory=list)
    dynamics: Dynamics
    dynamics_from: Month | None = None
    """Before this month the network follows the record only (declared ties and events)."""
    events: list[NetworkEvent] = Field(default_factory=list)
    affiliates: Affiliates | None = None
