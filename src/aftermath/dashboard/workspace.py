"""What the dashboard shows, without the browser: scenarios, the explorer's settings, cached deterministic
runs, series with strata filters, bands, experiments, stored runs and the alliance network.

Everything here calls the package's public functions (load, compile, simulate, design and run
experiments, the store, the network export); the Dash app only lays it out. Nothing here writes a
file: runs go to the store only through `run_stored`, when the analyst asks for it.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import xarray as xr
from ruamel.yaml import YAML

from aftermath import compile_model, parse_scenario, shipped_scenarios, simulate
from aftermath.errors import ScenarioError
from aftermath.experiments import Experiment, design_experiment, load_result, read_scenario
from aftermath.experiments.runner import StoredResult
from aftermath.inference.shipped import ParameterSource, parameter_source
from aftermath.scenario.describe import outcome_label, parameter_range
from aftermath.scenario.schema import Scenario, month_label
from aftermath.scenario.validate import outcome_unit
from aftermath.store import Store, StoreError
from aftermath.summary import quantiles

UPLOAD = "upload:"
"""Prefix of the key of an uploaded scenario (kept in memory; nothing lies beside it)."""
OUTCOME, STOCK = "outcome:", "stock:"
"""Prefixes of the series choices: a scenario outcome, or a compartment (a stock of persons)."""
GROUP = "group:"
"""Prefix of a strata filter choice that names a group of strata (the scenario's `groups`)."""
CACHED_RUNS = 32
"""Deterministic runs kept in memory (a slider moved back to a position it had is answered at once)."""
DASHBOARD_FIXED = "set in the dashboard"


@dataclass(frozen=True)
class Settings:
    """The explorer's levers: policy strengths (policies at 0 are off), policy start months (month
    index, see `scenario.schema.parse_month`) where moved, and parameter values in their declared unit."""

    strengths: tuple[tuple[str, float], ...] = ()
    starts: tuple[tuple[str, int], ...] = ()
    overrides: tuple[tuple[str, float], ...] = ()

    @classmethod
    def of(
        cls,
        strengths: Mapping[str, float] | None = None,
        starts: Mapping[str, int] | None = None,
        overrides: Mapping[str, float] | None = None,
    ) -> Settings:
        return cls(
            tuple(sorted((k, float(v)) for k, v in (strengths or {}).items() if v and v > 0)),
            tuple(sorted((k, int(v)) for k, v in (starts or {}).items())),
            tuple(sorted((k, float(v)) for k, v in (overrides or {}).items())),
        )

    @property
    def policies(self) -> dict[str, float]:
        return dict(self.strengths)


@dataclass(frozen=True)
class Entry:
    """A scenario the dashboard offers: its text (what a stored run keeps), file name and validated form."""

    key: str
    text: str
    file: str
    scenario: Scenario

    @cached_property
    def levers(self) -> tuple[Lever, ...]:
        """The scenario's parameter sliders (`levers`), found once: every slider move reads them, and their
        ranges (each distribution's 5-95%) cost about 85 ms of CPU on the default scenario."""
        return tuple(levers(self.scenario))


@dataclass(frozen=True)
class Lever:
    """A parameter slider: the parameter's declared value and its 5-95% range, in its unit."""

    name: str
    value: float
    low: float
    high: float
    unit: str
    description: str


def levers(scenario: Scenario) -> list[Lever]:
    """The scalar uncertain parameters, which the explorer can move within their declared 5-95% range."""
    found = []
    for name, parameter in scenario.parameters.items():
        if parameter.dims or parameter.distribution is None or not isinstance(parameter.value, int | float):
            continue
        low, high = parameter_range(scenario, parameter)
        value = float(parameter.value)
        found.append(Lever(name, value, min(low, value), max(high, value), parameter.unit,
                           parameter.description.strip()))
    return found


def with_starts(scenario: Scenario, starts: Mapping[str, int]) -> Scenario:
    """The scenario with some interventions starting at other months (month indices within the horizon).

    Raises ScenarioError for an unknown policy or a month outside the scenario's time span.
    """
    if not starts:
        return scenario
    changed = dict(scenario.interventions)
    for name, month in starts.items():
        if name not in changed:
            raise ScenarioError(f"unknown policy {name!r}", ("interventions",),
                                expected=f"one of: {', '.join(changed) or '(none)'}")
        if not scenario.time.start <= month <= scenario.time.end:
            raise ScenarioError(f"policy {name!r} cannot start in {month_label(month)}", ("interventions", name),
                                expected=f"a month from {month_label(scenario.time.start)} to "
                                         f"{month_label(scenario.time.end)}")
        changed[name] = changed[name].model_copy(update={"start": month})
    return scenario.model_copy(update={"interventions": changed})


def variant_text(text: str, settings: Settings) -> str:
    """The scenario file's text with the settings' start months written in and the moved parameters fixed
    at their value (as `aftermath run --set` keeps them), so an experiment stores exactly what it ran."""
    if not settings.starts and not settings.overrides:
        return text
    yaml = YAML(typ="rt")
    document = yaml.load(text)
    for name, month in settings.starts:
        document["interventions"][name]["start"] = month_label(month)
    for name, value in settings.overrides:
        parameter = document["parameters"][name]
        parameter.pop("distribution", None)
        parameter["value"] = value
        parameter["fixed"] = DASHBOARD_FIXED
    out = io.StringIO()
    yaml.dump(document, out)
    return out.getvalue()


def series_choices(scenario: Scenario) -> list[tuple[str, str]]:
    """(value, label) of every series the explorer can draw: the outcomes (label, name and unit), then the
    compartments."""
    choices = [(f"{OUTCOME}{name}", f"{outcome_label(scenario, name)} ({name}, {series_unit(scenario, name)})")
               for name in scenario.outcomes]
    choices += [(f"{STOCK}{name}", f"stock {name} (persons)") for name in scenario.compartments]
    return choices


def series_unit(scenario: Scenario, outcome: str) -> str:
    """An outcome's unit as the charts name it: 'persons', 'persons per month', a declared unit, or 'share'
    for a ratio of people."""
    unit, _ = outcome_unit(scenario, outcome)
    return "share" if unit == "dimensionless" else unit


def series_dims(scenario: Scenario, choice: str) -> list[str]:
    """The strata a series is split by (an outcome's `by`, a compartment's `dims`)."""
    if choice.startswith(STOCK):
        return list(scenario.compartments[choice.removeprefix(STOCK)].dims)
    return list(scenario.outcomes[choice.removeprefix(OUTCOME)].by)


def filter_choices(scenario: Scenario, dim: str) -> list[tuple[str, str]]:
    """(value, label) of a strata filter: the dimension's groups (e.g. regions), then its labels."""
    groups = [(f"{GROUP}{group}", f"{group} (group)") for group in scenario.groups.get(dim, {})]
    return groups + [(label, label) for label in scenario.dimensions[dim]]


def expand_filter(scenario: Scenario, dim: str, picked: Sequence[str]) -> list[str]:
    """The labels a filter selects (groups expanded), in the dimension's order; empty: all."""
    wanted: set[str] = set()
    for item in picked:
        if item.startswith(GROUP):
            wanted.update(scenario.groups.get(dim, {}).get(item.removeprefix(GROUP), []))
        else:
            wanted.add(item)
    return [label for label in scenario.dimensions[dim] if label in wanted]


def select_series(
    dataset: xr.Dataset, scenario: Scenario, choice: str, filters: Mapping[str, Sequence[str]] | None = None
) -> xr.DataArray:
    """A series as (replicate, time): the chosen strata of each dimension (all when none is picked),
    summed over the strata (counts of persons add up)."""
    name = choice.removeprefix(STOCK).removeprefix(OUTCOME)
    data = dataset[name]
    for dim in series_dims(scenario, choice):
        labels = expand_filter(scenario, dim, (filters or {}).get(dim, []))
        if labels:
            data = data.sel({dim: labels})
        data = data.sum(dim)
    return data


def band(data: xr.DataArray) -> dict[str, np.ndarray]:
    """Median and 5-95% band over replicates of a (replicate, time) series: {median, low, high}: (time,)
    (`summary.quantiles`, the one place bands are computed)."""
    low, median, high = quantiles(data.values, axis=0)
    return {"median": median, "low": low, "high": high}


def observations_for(scenario: Scenario, choice: str) -> list[tuple[str, float, float | None, float | None, str]]:
    """(month, value, low, high, source) of the recorded figures of an outcome."""
    if not choice.startswith(OUTCOME):
        return []
    name = choice.removeprefix(OUTCOME)
    return [(month_label(o.date), o.value, o.low, o.high, o.source) for o in scenario.observations
            if o.outcome == name]


def value_table(data: xr.DataArray, dates: Sequence[str]) -> list[tuple[str, float]]:
    """(month, value) of a one-run series at the given months (those within the run)."""
    times = data["time"].values
    rows = []
    for date in dates:
        wanted = np.datetime64(date, "M").astype(times.dtype)
        if wanted in times:
            rows.append((date, float(data.sel(time=wanted).values.reshape(-1)[0])))
    return rows


@dataclass
class Workspace:
    """The scenarios on offer (shipped ones, files named on the command line, uploads) and a cache of
    deterministic runs. Thread-safe: the server answers requests on several threads."""

    files: Sequence[str | Path] = ()
    store: Path | None = None
    _entries: dict[str, Entry] = field(default_factory=dict)
    _uploads: dict[str, tuple[str, str]] = field(default_factory=dict)
    _runs: OrderedDict = field(default_factory=OrderedDict)
    _stored: dict[int, StoredResult] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def offered(self) -> list[str]:
        """Files given first (the first is the one shown at start), then shipped names, then uploads."""
        return [*[str(f) for f in self.files], *sorted(shipped_scenarios()), *self._uploads]

    def add_upload(self, text: str, filename: str) -> str:
        """Validate an uploaded scenario (kept in memory, never written) and offer it; returns its key."""
        key = f"{UPLOAD}{Path(filename).name}:{hashlib.sha256(text.encode()).hexdigest()[:8]}"
        scenario = parse_scenario(text, Path(filename).name)
        with self._lock:
            self._uploads[key] = (text, Path(filename).name)
            self._entries[key] = Entry(key, text, Path(filename).name, scenario)
        return key

    def entry(self, key: str) -> Entry:
        """The scenario behind a key (read and validated once; ScenarioError for a bad or unknown one)."""
        with self._lock:
            if key in self._entries:
                return self._entries[key]
        if key not in self.offered():
            raise ScenarioError("not offered by this dashboard", expected=f"one of: {', '.join(self.offered())}",
                                file=key)
        text, file, scenario = read_scenario(key)
        with self._lock:
            return self._entries.setdefault(key, Entry(key, text, file, scenario))

    def explore(self, key: str, settings: Settings, keep_compartments: bool = False) -> xr.Dataset:
        """The deterministic run of a scenario at the given settings (cached)."""
        cache_key = (key, settings, keep_compartments)
        with self._lock:
            if cache_key in self._runs:
                self._runs.move_to_end(cache_key)
                return self._runs[cache_key]
        scenario = with_starts(self.entry(key).scenario, dict(settings.starts))
        model = compile_model(scenario, overrides=dict(settings.overrides), policies=settings.policies)
        dataset = simulate(model, replicates=1, engine="deterministic", keep_compartments=keep_compartments)
        with self._lock:
            self._runs[cache_key] = dataset
            while len(self._runs) > CACHED_RUNS:
                self._runs.popitem(last=False)
        return dataset

    def stored(self, run_id: int) -> StoredResult:
        """A stored run's series (kept in memory once the run is done)."""
        if self.store is None:
            raise StoreError("no run store: start the dashboard with --store PATH")
        with self._lock:
            if run_id in self._stored:
                return self._stored[run_id]
        stored = load_result(Store(self.store, lock_timeout=10), run_id)
        if stored.run.row["status"] == "done":
            with self._lock:
                self._stored[run_id] = stored
        return stored

    def parameters(self, key: str, prior: bool = False) -> ParameterSource:
        """Where an ensemble's or comparison's parameter draws come from, as on the command line
        (`inference.shipped.parameter_source`): the posterior shipped beside the scenario's file if there
        is a current one, else (or with `prior`) the declared priors, with a warning if the shipped draws
        are stale. An uploaded scenario has no file beside it: its priors. Raises ShippedPosteriorError
        for a changed or unreadable draws file."""
        return parameter_source(self.entry(key).scenario, prior=prior or key.startswith(UPLOAD))

    def experiment(
        self, key: str, settings: Settings, arms: Sequence[Mapping[str, float | None]], samples: int,
        replicates: int, seed: int, prior: bool = False,
    ) -> tuple[Experiment, ParameterSource]:
        """A stochastic experiment of the scenario with the settings' start months and fixed parameters,
        and where its parameter draws come from (`parameters`; the moved parameters keep their value);
        `arms` are policy mixes ({} is the baseline). All arms share seed and samples (paired runs)."""
        entry = self.entry(key)
        with_starts(entry.scenario, dict(settings.starts))  # refuse a bad month before parsing the text
        unknown = [name for name, _ in settings.overrides if name not in entry.scenario.parameters]
        if unknown:
            raise ScenarioError(f"unknown parameter {unknown[0]!r}", ("parameters",),
                                expected=f"one of: {', '.join(entry.scenario.parameters)}")
        source = self.parameters(key, prior)
        experiment = design_experiment(
            variant_text(entry.text, settings), entry.file, samples=samples, replicates=replicates, arms=arms,
            seed=seed, sampler="lhs" if source.posterior is None else source.label,  # type: ignore[arg-type]
            draws=source.draws(samples, seed, fixed=dict(settings.overrides)),
        )
        return experiment, source
