"""The `home_front` section of a scenario: the home-grown extremist population and plots at home.

Shape and local rules only (as in `aftermath.scenario.schema`); rules relating the section to the rest
of the scenario (parameters, schedules, compartments, flows, dimensions, sources) are in `validate.py`.
Numbers are not written here but named: they are scenario parameters with a unit, a range and sources.
Cohorts only: counts and rates by origin, never a person, and nothing about methods or targets.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from aftermath.scenario.schema import Name, Number, Strict, Text

PERPETRATORS = ("returnee", "remobilised", "home_grown")
"""Who plots: operational returnees at large, disengaged returnees who re-engage, home-grown extremists."""
RESULTS = ("foiled", "failed", "completed")
"""What becomes of a plot (Europol's TE-SAT counts all three as attacks)."""
MOVEMENTS = ("radicalised", "mentored", "arrested", "rehabilitated", "imprisoned", "released_unreformed",
             "released_reformed", "disengaged", "died")
"""The home-grown population's movements, kept cumulatively for the bookkeeping (see coupling.py)."""
MEASURES = ("plots", "completed", "arrests")
"""What an observation counts in a calendar year: plots (foiled, failed and completed), completed plots, arrests."""


class Perpetrators(Strict):
    """Compartments of the core model whose members plot and mentor at home (summed over other strata)."""

    returnee: list[Name] = Field(min_length=1)
    """Operational returnees at large (e.g. returned_operational)."""
    remobilised: list[Name] = Field(min_length=1)
    """Returnees at large who may re-engage (e.g. returned_disengaged, incl. prisoners released unreformed)."""


class Reach(Strict):
    """The group's propaganda reach: media(t) x (strength(t) / reference)^elasticity (Pokalova 2019)."""

    media: Name
    """A dimensionless schedule: the group's media output, 1 at its peak."""
    strength: list[Name] = Field(min_length=1)
    """Compartments whose sum is the group's strength (persons)."""
    reference: Name
    """Parameter (persons): the strength at which reach equals media output."""
    elasticity: Name
    """Parameter (dimensionless): how much reach follows strength (0: not at all)."""
    call: Name | None = None
    """A dimensionless schedule multiplying the home-grown plotting rate: the group's call to act at home."""


class Rates(Strict):
    """Names of the scenario parameters that drive the home front (units checked in validate.py)."""

    radicalisation: Name
    """Home-grown extremists radicalised per unit of time at full reach, by origin (persons per time)."""
    mentoring: Name
    """Extremists recruited per returnee at large per unit of time (per time; Amarasingam and Clarke 2017)."""
    arrest: Name
    """Hazard that a home-grown extremist is arrested, at state capacity 1 and vigilance 1 (per time)."""
    disengagement: Name
    """Hazard of leaving the milieu on one's own (per time)."""
    death: Name
    """Death hazard of a home-grown extremist (per time)."""
    release: Name
    """Hazard of release from prison (per time)."""
    unreformed: Name
    """Share of released prisoners who return to the milieu (fraction)."""
    plot_returnee: Name
    """Plots per operational returnee at large per unit of time (per time)."""
    plot_remobilised: Name
    """Plots per disengaged returnee at large per unit of time (per time)."""
    plot_home_grown: Name
    """Plots per home-grown extremist per unit of time (per time)."""
    foiling: Name
    """Probability that a plot is foiled at state capacity 1 and vigilance 1 (fraction)."""
    failure: Name
    """Share of plots not foiled that fail (fraction)."""


class Levers(Strict):
    """Parameters and schedules through which the state and the policies act (all optional)."""

    capacity: Name | None = None
    """Index parameter by origin (0-1): scales arrests and foiling."""
    vigilance: Name | None = None
    """Dimensionless schedule: scales arrests and foiling over time."""
    effort: list[Name] = Field(default_factory=list)
    """Ratio parameters multiplying arrests and foiling (e.g. border_intelligence)."""
    appeal: Name | None = None
    """Ratio parameter multiplying radicalisation and mentoring (e.g. recruitment_appeal: counter-messaging)."""
    rehabilitation: Name | None = None
    """Fraction parameter: share of arrested extremists sent to rehabilitation rather than prison."""


class HomeObservation(Strict):
    """A yearly count in a region, from a source (a fit target if dated up to the fitted window's end)."""

    measure: Literal["plots", "completed", "arrests"]
    region: Name
    year: int = Field(ge=1900, le=2200)
    value: Number = Field(ge=0)
    low: Number | None = None
    high: Number | None = None
    source: str
    note: Text = ""

    @model_validator(mode="after")
    def _interval(self) -> HomeObservation:
        low = self.value if self.low is None else self.low
        high = self.value if self.high is None else self.high
        if not low <= self.value <= high:
            raise ValueError("expected low <= value <= high")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        """[low, high] the count places the truth in: [value, value] for a point (as `Observation.bounds`)."""
        return (float(self.value if self.low is None else self.low),
                float(self.value if self.high is None else self.high))


def parameter_roles(spec: HomeFrontSpec) -> list[tuple[str, str]]:
    """(role, name) of every parameter and schedule the home front reads, in the section's order."""
    roles = [("initial", spec.initial), ("reach.media", spec.reach.media),
             ("reach.reference", spec.reach.reference), ("reach.elasticity", spec.reach.elasticity)]
    if spec.reach.call is not None:
        roles.append(("reach.call", spec.reach.call))
    roles += [(f"rates.{field}", name) for field, name in spec.rates.model_dump().items()]
    levers = spec.levers
    for field in ("capacity", "vigilance", "appeal", "rehabilitation"):
        if getattr(levers, field) is not None:
            roles.append((f"levers.{field}", getattr(levers, field)))
    roles += [("levers.effort", name) for name in levers.effort]
    return roles


class HomeFrontSpec(Strict):
    """The home front: home-grown extremists by origin, and plots by returnees, remobilised and home-grown."""

    description: Text = ""
    dimension: Name = "origin"
    """The scenario dimension the home front is kept by."""
    initial: Name
    """Parameter (persons, by the dimension or one number): home-grown extremists at the start."""
    reach: Reach
    perpetrators: Perpetrators
    rates: Rates
    levers: Levers = Levers()
    arrests: list[Name] = Field(default_factory=list)
    """Flows of the core model whose movers count as arrests at home (e.g. returnees prosecuted)."""
    regions: dict[Name, list[Name]] = Field(min_length=1)
    """Reporting regions: name -> labels of the dimension (every label in exactly one region)."""
    observations: list[HomeObservation] = Field(default_factory=list)
