"""The shape of a scenario file, validated with pydantic v2.

Only shape and local rules live here (types, required fields, one-of choices, value ranges that a
field can check alone). Rules that relate fields to each other (names, dimensions, units, dates)
are in `validate.py`, so each error can name the field it is about.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

FORMAT_VERSION = 1
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
_MONTH = re.compile(r"^(\d{4})-(\d{1,2})(?:-(\d{1,2}))?$")


def parse_month(value: Any) -> int:
    """'2017-07' (or a date on the first of a month) as a month index: year * 12 + month - 1.

    Time is counted in months: a day other than the 1st ('2020-03-31') is refused with ValueError,
    never dropped, since the engines cannot act on it.
    """
    if isinstance(value, (dt.date, dt.datetime)):
        year, month, day = value.year, value.month, value.day
    else:
        match = _MONTH.match(str(value).strip()) if isinstance(value, str) else None
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValueError(f"not a date: {value!r}; expected a month as YYYY-MM, e.g. 2017-07")
        year, month, day = int(match.group(1)), int(match.group(2)), int(match.group(3) or 1)
        if match.group(3) is not None:
            try:
                dt.date(year, month, day)
            except ValueError as exc:
                raise ValueError(f"not a date: {value!r} ({exc}); expected a month as YYYY-MM, e.g. 2017-07") from None
    if day != 1:
        raise ValueError(
            f"not a month: {value!s} names a day; expected a month as YYYY-MM (time is counted in months)"
        )
    return year * 12 + month - 1


def month_label(index: int) -> str:
    """Month index back to 'YYYY-MM'."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _not_boolean(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{str(value).lower()} is not a number")
    return value


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    return value


Month = Annotated[
    int,
    BeforeValidator(parse_month),
    WithJsonSchema({"type": "string", "pattern": r"^\d{4}-\d{1,2}$", "description": "a month, YYYY-MM"}),
]


def _date_keys_as_text(value: Any) -> Any:
    """A schedule point written `2015-06-01:` is a YAML date key: read it as the text '2015-06-01'."""
    if isinstance(value, dict):
        return {k.isoformat() if isinstance(k, dt.date) else k: v for k, v in value.items()}
    return value
Number = Annotated[float, BeforeValidator(_not_boolean), AfterValidator(_finite)]
"""A finite float that refuses YAML's true/false (which pydantic would read as 1 and 0), .nan and .inf."""
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=64)]
Text = Annotated[str, Field(max_length=20_000)]
Label = Annotated[str, Field(min_length=1, max_length=120)]
"""A display name for people (a country's name, a group's name); machine names stay as they are."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, use_attribute_docstrings=True)


class Provenance(Strict):
    """Where numbers come from: source ids, or an explicit assumption with its reason."""

    sources: list[str] = []
    """Ids of the sources the numbers come from (evidence/sources.csv, figures.csv, seed articles, `sources:`)."""
    assumption: Text | None = None
    """Where no source gives the number: the assumption made, with its reason."""

    @property
    def has_provenance(self) -> bool:
        return bool(self.sources) or bool(self.assumption and self.assumption.strip())


MAX_SUBSTEPS = 1000


class TimeAxis(Strict):
    start: Month
    """The first month (YYYY-MM)."""
    end: Month
    """The last month (YYYY-MM), inclusive."""
    step: Literal["month", "quarter", "year"] = "month"
    """The reporting step: results, dates, events and interventions live on this grid."""
    substeps: Annotated[int, BeforeValidator(_not_boolean)] = Field(default=1, ge=1, le=MAX_SUBSTEPS)
    """Equal sub-steps the step engines take inside each reporting step (finer time, same results grid)."""


class Compartment(Provenance):
    label: Label | None = None
    """How reports and the terminal name it (default: the name, spaced)."""
    description: Text = ""
    dims: list[Name] = []
    """The dimensions it is stratified by (each a key of `dimensions`)."""
    initial: Number | str | dict[str, Any] = 0.0
    """Persons at the start: a number, the name of a parameter, or values by stratum."""
    pathway: Annotated[str, Field(max_length=80)] | None = None
    """A plain-language group of compartments for reports (e.g. 'returned' for three returnee types)."""


class Boundary(Strict):
    kind: Literal["source", "sink"]
    """A source (people enter the model from it) or a sink (people leave the model into it)."""
    description: Text = ""


class Flow(Strict):
    name: Name
    from_: Name = Field(alias="from")
    """The compartment (or source boundary) people leave."""
    to: Name
    """The compartment (or sink boundary) people enter."""
    rate: str | Number
    """An expression: a per-capita hazard (per unit time) out of a compartment, or persons per unit time from
    a source."""
    description: Text = ""


class Distribution(Strict):
    """Uncertainty of a parameter; with `relative: true` it multiplies the value(s).

    A normal or a lognormal may have `low` and/or `high`: it is then truncated to [low, high], and
    every draw lies there (needed when its tails leave the parameter's domain, e.g. a normal hazard).
    """

    type: Literal["uniform", "triangular", "normal", "lognormal", "beta"]
    low: Number | None = None
    high: Number | None = None
    mode: Number | None = None
    mean: Number | None = None
    sd: Number | None = Field(default=None, gt=0)
    median: Number | None = Field(default=None, gt=0)
    sigma: Number | None = Field(default=None, gt=0)
    alpha: Number | None = Field(default=None, gt=0)
    beta: Number | None = Field(default=None, gt=0)
    relative: bool = False

    _REQUIRED = {
        "uniform": ("low", "high"),
        "triangular": ("low", "mode", "high"),
        "normal": ("mean", "sd"),
        "lognormal": ("median", "sigma"),
        "beta": ("alpha", "beta"),
    }
    _TRUNCATABLE = ("normal", "lognormal")

    @model_validator(mode="after")
    def _fields_for_type(self) -> Distribution:
        needed = self._REQUIRED[self.type]
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.type} distribution needs {', '.join(needed)}")
        extra = [
            name
            for name in ("low", "high", "mode", "mean", "sd", "median", "sigma", "alpha", "beta")
            if name not in needed and getattr(self, name) is not None
            and not (self.type in self._TRUNCATABLE and name in ("low", "high"))
        ]
        if extra:
            truncation = " (and low, high to truncate it)" if self.type in self._TRUNCATABLE else ""
            raise ValueError(
                f"a {self.type} distribution takes only {', '.join(needed)}{truncation}, not {', '.join(extra)}"
            )
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError("low must be smaller than high")
        if self.mode is not None and not (self.low <= self.mode <= self.high):  # type: ignore[operator]
            raise ValueError("mode must lie between low and high")
        return self


class Parameter(Provenance):
    description: Text = ""
    unit: str
    """Its unit, e.g. 'per year', 'per month', 'persons', 'fraction', 'dimensionless'."""
    dims: list[Name] = []
    """The dimensions its value varies over."""
    value: Number | dict[str, Any]
    """A number, or values by stratum (nested mappings in the order of `dims`)."""
    default: Number | None = None
    """The value of strata `value` does not list."""
    distribution: Distribution | None = None
    """Its uncertainty (one of `distribution` or `fixed` is required)."""
    fixed: Text | None = None
    """Why it has no uncertainty."""

    @model_validator(mode="after")
    def _uncertainty_declared(self) -> Parameter:
        if self.distribution is None and not (self.fixed and self.fixed.strip()):
            raise ValueError(
                "a parameter needs its uncertainty: a 'distribution', or 'fixed' with the reason "
                "it has none"
            )
        if self.distribution is not None and self.fixed:
            raise ValueError("give either 'distribution' or 'fixed', not both")
        return self


class Schedule(Provenance):
    description: Text = ""
    unit: str = "dimensionless"
    interpolation: Literal["step", "linear"] = "step"
    """Between points: hold the last value (step) or interpolate (linear)."""
    points: Annotated[dict[str, Number], BeforeValidator(_date_keys_as_text)] = Field(min_length=1)
    """Values by month, e.g. {2014-06: 1.0, 2017-07: 0.2}."""


class Event(Provenance):
    name: Name
    date: Month
    """The month it happens."""
    from_: Name = Field(alias="from")
    to: Name
    fraction: str | Number
    """The share (0-1) of the `from` compartment that moves: a number or an expression."""
    description: Text = ""


class Effect(Strict):
    """One change an intervention makes, scaled by its strength s.

    multiply m -> value * (1 + s * (m - 1)); add a -> value + s * a; set v -> (1 - s) * value + s * v.
    """

    parameter: Name | None = None
    schedule: Name | None = None
    multiply: Number | None = None
    add: Number | None = None
    set: Number | None = None

    @model_validator(mode="after")
    def _one_target_one_change(self) -> Effect:
        if (self.parameter is None) == (self.schedule is None):
            raise ValueError("an effect changes exactly one 'parameter' or one 'schedule'")
        changes = [c for c in ("multiply", "add", "set") if getattr(self, c) is not None]
        if len(changes) != 1:
            raise ValueError("an effect has exactly one of 'multiply', 'add' or 'set'")
        return self

    @property
    def operation(self) -> tuple[str, float]:
        for name in ("multiply", "add", "set"):
            value = getattr(self, name)
            if value is not None:
                return name, float(value)
        raise AssertionError("validated to have one change")


class Cost(Provenance):
    """What a policy costs at strength 1, in a declared unit (e.g. 'relative budget'); the cost of a
    strength s is s * value. Needs sources or an assumption, like every number."""

    value: Number = Field(ge=0)
    """The cost at strength 1 (>= 0)."""
    unit: Annotated[str, Field(min_length=1, max_length=80)]
    """Its unit, e.g. 'relative budget'; every policy of a search must use the same one."""

    @model_validator(mode="after")
    def _provenance_declared(self) -> Cost:
        if not self.has_provenance:
            raise ValueError("a cost needs 'sources' or an 'assumption' saying where the number comes from")
        return self


class Intervention(Provenance):
    description: Text = ""
    start: Month
    """The month it starts."""
    end: Month | None = None
    """The last month it is active, inclusive (none: the horizon): the step that starts in it is the last one
    changed; `start` itself for a single step."""
    strength: Number = Field(default=1.0, ge=0)
    """How strongly it is applied by default (scales every effect)."""
    strength_range: tuple[Number, Number] = (0.0, 1.0)
    """The strengths a policy search may choose from."""
    cost: Cost | None = None
    """Needed by `aftermath optimise --budget`."""
    effects: list[Effect] = Field(min_length=1)

    @field_validator("strength_range")
    @classmethod
    def _range_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 <= value[0] <= value[1]:
            raise ValueError("strength_range must be [low, high] with 0 <= low <= high")
        return value


class Outcome(Strict):
    """A stock (compartments: persons), a rate (flows: persons per month, the mean over the step that ends
    at each date, whatever the step), or with `cumulative` the persons moved since the start. `unit`
    may restate a rate in another time unit, e.g. 'persons per year'."""

    label: Label | None = None
    """How reports and the terminal name it (default: the name, spaced)."""
    description: Text = ""
    expr: str | Number
    """An expression of compartments (people at a date) or flows (persons per month, the mean over the step)."""
    select: dict[Name, list[str]] = {}
    """Only these strata, by dimension, e.g. {origin: [FR, BE]}."""
    by: list[Name] = []
    """Keep these dimensions (one series per stratum) instead of summing over them."""
    cumulative: bool = False
    """Sum over time from the start (for flows: everyone who has moved so far)."""
    unit: Annotated[str, Field(max_length=80)] | None = None
    """Restates a rate in another time unit, e.g. 'persons per year' (default: persons, or persons per month)."""


class ObservationError(Provenance):
    """How a reported figure scatters around the model's value m (the observation error), with the
    source or assumption of its spread:

    - lognormal: log(figure) ~ Normal(log m, sigma), so the figure's median is m;
    - negative_binomial: a count with mean m and variance m + m^2 / dispersion (persons only);
    - normal: Normal(m, cv * m), an error proportional to the value.
    """

    distribution: Literal["lognormal", "negative_binomial", "normal"]
    sigma: Number | None = Field(default=None, gt=0, le=5)
    """The lognormal's spread: the standard deviation of log(figure), dimensionless."""
    dispersion: Number | None = Field(default=None, gt=0)
    """The negative binomial's dispersion (persons; larger is closer to Poisson)."""
    cv: Number | None = Field(default=None, gt=0, le=5)
    """The normal's coefficient of variation (sd / m), dimensionless."""
    range: tuple[Number, Number]
    """The range [low, high] the spread (sigma, dispersion or cv, in its unit) may take given the evidence,
    like every number's range; it must contain the spread."""

    _SPREAD = {"lognormal": "sigma", "negative_binomial": "dispersion", "normal": "cv"}

    @field_validator("range")
    @classmethod
    def _range_ordered(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not 0 < value[0] <= value[1]:
            raise ValueError("range must be [low, high] with 0 < low <= high")
        return value

    @model_validator(mode="after")
    def _one_spread(self) -> ObservationError:
        needed = self._SPREAD[self.distribution]
        if getattr(self, needed) is None:
            raise ValueError(f"a {self.distribution} error needs '{needed}'")
        extra = [name for name in self._SPREAD.values() if name != needed and getattr(self, name) is not None]
        if extra:
            raise ValueError(f"a {self.distribution} error takes '{needed}', not {', '.join(extra)}")
        return self

    @property
    def spread_name(self) -> str:
        """The name of the distribution's one spread parameter: sigma, dispersion or cv."""
        return self._SPREAD[self.distribution]

    @property
    def spread(self) -> float:
        """The distribution's one spread parameter (sigma, dispersion or cv)."""
        return float(getattr(self, self.spread_name))


ObservationKind = Literal["point", "range", "at_least", "up_to"]
"""What a figure says: a point (value), a range (the truth lies in [low, high]), a lower bound
("at least" / "over": low, or the value) or an upper bound ("up to" / "under": high, or the value).
Ranges and bounds are censored data: their likelihood is the probability of the interval."""


class Observation(Strict):
    outcome: Name
    """The outcome it observes."""
    date: Month
    value: Number
    low: Number | None = None
    """The low end of the source's own range, if it gives one."""
    high: Number | None = None
    kind: ObservationKind | None = None
    """Default: 'range' when low or high is given, else 'point'."""
    error: ObservationError | None = None
    """Default: the scenario's observation model for the figure's evidence grade."""
    source: str
    """The id of its source."""
    note: Text = ""

    @model_validator(mode="after")
    def _band_contains_value(self) -> Observation:
        if self.low is not None and self.low > self.value:
            raise ValueError("low must not exceed value")
        if self.high is not None and self.high < self.value:
            raise ValueError("high must not be below value")
        if self.kind == "at_least" and self.high is not None:
            raise ValueError("an 'at_least' figure has no 'high' (its bound is 'low', or the value)")
        if self.kind == "up_to" and self.low is not None:
            raise ValueError("an 'up_to' figure has no 'low' (its bound is 'high', or the value)")
        if self.kind == "point" and (self.low is not None or self.high is not None):
            raise ValueError("a 'point' figure has no 'low' or 'high'; use kind 'range'")
        if self.kind == "range" and self.low is None and self.high is None:
            raise ValueError("a 'range' figure needs 'low' and/or 'high'")
        return self

    @property
    def figure_kind(self) -> ObservationKind:
        """The kind, with its default applied."""
        if self.kind is not None:
            return self.kind
        return "range" if self.low is not None or self.high is not None else "point"

    @property
    def bounds(self) -> tuple[float, float]:
        """[lower, upper] the figure places the truth in: a point is [value, value]; a bound is open
        on its other side (0 below an 'up_to', infinity above an 'at_least')."""
        kind = self.figure_kind
        low = self.value if self.low is None else self.low
        high = self.value if self.high is None else self.high
        if kind == "at_least":
            return float(low), math.inf
        if kind == "up_to":
            return 0.0, float(high)
        return float(low), float(high)


Grade = Literal["H", "M", "L"]


class ObservationModel(Strict):
    """Observation errors by the evidence grade of a figure's source (figures.csv `confidence`), and a
    default for figures without a grade; an observation's own `error` overrides both."""

    grades: dict[Grade, ObservationError] = {}
    default: ObservationError


class SourceEntry(Strict):
    id: str = Field(min_length=1, max_length=200)
    citation: Text
    url: str | None = None


class Scenario(Strict):
    """A whole scenario file. Keys are names; lists keep the order they were written in.

    The core's fields only: files are read with `submodels.scenario_class()`, this class plus one
    optional section per registered sub-model (e.g. `network`)."""

    _source: str = PrivateAttr(default="<scenario>")
    """The file it was read from, to name it in errors found after loading (e.g. a bad --set)."""

    format: Literal[1] = FORMAT_VERSION
    """The version of this file format."""
    name: Name
    """A short machine name (letters, digits, '_')."""
    title: Text
    """The title reports show."""
    description: Text = ""
    """What the scenario is about, in a few sentences."""
    time: TimeAxis
    """The horizon and the step."""
    key_dates: list[Month] = []
    """Dates the summary table shows (default: evenly spaced over the horizon)."""
    dimensions: dict[Name, list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]+$")]]] = {}
    """Strata by dimension, e.g. {origin: [FR, BE], cohort: [men, women]}."""
    labels: dict[Name, dict[str, Label]] = {}
    """Display names of strata by dimension, e.g. {origin: {FR: France, MENA_rest: other Middle East}}."""
    groups: dict[Name, dict[Annotated[str, Field(min_length=1, max_length=80)], list[str]]] = {}
    """Named groups of a dimension's strata for reports, e.g. {origin: {Western Europe: [FR, GB]}}."""
    compartments: dict[Name, Compartment] = Field(min_length=1)
    """Stocks of people, by name."""
    boundaries: dict[Name, Boundary] = {}
    """Sources and sinks: where people come from and go to outside the model."""
    parameters: dict[Name, Parameter] = {}
    """Numbers the rates use, each with unit, uncertainty and provenance."""
    schedules: dict[Name, Schedule] = {}
    """Dated series (e.g. territory held), usable in expressions like parameters."""
    flows: list[Flow] = Field(min_length=1)
    """Movements of people between compartments, each at a rate."""
    events: list[Event] = []
    """One-off moves of a share of a compartment at a date."""
    interventions: dict[Name, Intervention] = {}
    """Policies: changes of parameters or schedules from a date, scaled by a strength."""
    outcomes: dict[Name, Outcome] = {}
    """What runs report: sums of compartments or flows."""
    headline: list[Name] = []
    """The outcomes `aftermath run` and the report's summary show first (default: every unstratified one)."""
    observation_model: ObservationModel | None = None
    """Default observation errors (see aftermath.inference.observation for the built-in one)."""
    observations: list[Observation] = []
    """Dated evidence to compare runs with (fit-check, the report)."""
    sources: list[SourceEntry] = []
    """Sources this file defines itself, beyond the shipped evidence."""
