"""What a report shows, computed from ensembles: quantile bands over replicates, never raw replicates.

Everything here is plain data (numbers and labels), so the same content renders to HTML, to figure
files, or to a test's assertions. Sizes stay small: a fan is 5 quantiles per month, whatever the
number of replicates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from aftermath.experiments.design import Experiment
from aftermath.experiments.results import EnsembleResult
from aftermath.formatting import Kind
from aftermath.inference.observation import predictive_draws
from aftermath.model.compile import CompiledModel, compile_model
from aftermath.network.describe import group_label
from aftermath.report.decisions import DecisionSection
from aftermath.scenario.describe import outcome_kind, outcome_label, stratum_label
from aftermath.scenario.observation_model import error_of
from aftermath.scenario.schema import Scenario, month_label, parse_month
from aftermath.summary import HIGH, LOW, band, quantiles

if TYPE_CHECKING:
    import networkx as nx
    import pandas as pd

QUANTILES = (LOW, 0.25, 0.5, 0.75, HIGH)
ORIGIN_DIM = "origin"
MAX_SANKEY_ORIGINS = 11
MAX_POLICY_PANELS = 12
MAX_SPLIT = 3
"""Pathways of at most this many compartments get one country-table column per compartment."""
BLOCK_BYTES = 512_000_000
"""Memory for one block of the map's re-run (kept compartments): larger blocks spend less time per run."""


@dataclass(frozen=True)
class Band:
    """Median and 5-95% band of one number over replicates."""

    median: float
    low: float
    high: float


@dataclass(frozen=True)
class Fan:
    """Quantiles (QUANTILES) of one series across replicates, month by month."""

    times: np.ndarray
    """datetime64[M] dates."""
    values: np.ndarray
    """(len(QUANTILES), len(times))."""

    def at(self, date: str) -> Band:
        index = int(np.searchsorted(self.times, np.datetime64(date, "M")))
        column = self.values[:, min(index, len(self.times) - 1)]
        return Band(float(column[2]), float(column[0]), float(column[4]))


@dataclass(frozen=True)
class OutcomeSummary:
    name: str
    description: str
    by: tuple[str, ...]
    fans: dict[str, Fan]
    """One fan per stratum, keyed by its label ('' for an outcome that is one number per date)."""
    subset: bool = False
    """A `select`ed part of another outcome (one country, one cohort): shown in tables, not charted."""
    title: str = ""
    """Its display name (the scenario's `label`); empty: the name, spaced."""
    kind: Kind = "count"
    """How its numbers read (aftermath.formatting): people, a share, or another number."""

    @property
    def main(self) -> bool:
        """One number per date for everyone: the outcomes the report leads with."""
        return not self.by and not self.subset


@dataclass(frozen=True)
class SankeyData:
    """Average persons on each link of origin -> pathway -> destination at one date."""

    date: str
    nodes: list[str]
    columns: list[int]
    """Which layer (0 origin, 1 pathway, 2 destination) each node is drawn in."""
    links: list[tuple[int, int, float]]
    regions: dict[str, list[str]] = field(default_factory=dict)
    """The origins in each region of the first layer (empty when it shows single origins)."""


@dataclass(frozen=True)
class CountryTable:
    date: str
    dimension: str
    columns: list[str]
    rows: list[tuple[str, list[Band]]]
    """(stratum id, one band per column) per origin, largest first."""
    empty: list[str] = field(default_factory=list)
    """Pathway columns left out: nobody from any origin was there at `date` in any run."""


@dataclass(frozen=True)
class PolicyEffect:
    label: str
    strengths: dict[str, float]
    outcomes: dict[str, Fan]
    """The policy's own fan per one-number outcome."""
    differences: dict[str, Fan]
    """Policy minus baseline, replicate by replicate (same random numbers), per one-number outcome."""


@dataclass(frozen=True)
class ObservationRow:
    outcome: str
    date: str
    value: float
    low: float | None
    high: float | None
    source: str
    note: str
    fitted: bool
    model: Band
    """The latent band: the model's outcome."""
    predictive: Band | None = None
    """The predictive band (with the observation's error): what the figure is compared with, when known."""
    bounds: tuple[float, float] | None = None
    """The interval the figure places the truth in (`Observation.bounds`: a bound is open on one side)."""

    @property
    def inside(self) -> bool:
        """Does the observed range (or bound) overlap the model's predictive (else latent) 5-95% band?"""
        low = self.value if self.low is None else self.low
        high = self.value if self.high is None else self.high
        if self.bounds is not None:
            low, high = self.bounds
        band = self.predictive or self.model
        return low <= band.high and high >= band.low


@dataclass(frozen=True)
class NetworkContent:
    """The alliance network at a few dates (ties with the share of runs that hold them) and its key numbers."""

    graphs: list[tuple[str, nx.Graph]]
    summary: list[tuple[str, list[Band]]]
    dates: list[str]
    provinces: Fan


@dataclass(frozen=True)
class HomeFrontContent:
    """The home front by year: plots, arrests and home-grown extremists (bands), the record, policy effects."""

    years: list[int]
    rows: list[tuple[str, list[Band | None]]]
    """(row text, a band per year or None where the year is not in the run)."""
    observed: list[tuple[str, int, float, Band]]
    """(what and where, year, the recorded count, the model's band for it)."""
    effects: list[tuple[str, list[Band | None]]]
    """(policy, the paired change in plots per year, all regions)."""
    regions: dict[str, np.ndarray]
    """Region -> (3, years) low, median and high plots per year, for the figure."""
    record: dict[str, list[tuple[int, float]]]
    """Region -> recorded plots (year, count), drawn on the figure."""


@dataclass(frozen=True)
class RunFacts:
    """What produced the numbers, for the report's metadata."""

    seed: int
    samples: int
    replicates: int
    """Stochastic replicates per parameter sample."""
    engine: str
    sampler: str
    uncertain_parameters: int
    run_id: int | None = None
    stock_members: int = 0
    """Baseline members the stocks (map, country table) come from."""


@dataclass
class ReportContent:
    scenario: Scenario
    scenario_hash: str
    facts: RunFacts
    reference: str
    """Policies already applied in the reference arm ('' for the baseline)."""
    key_dates: list[str]
    at: str
    fit_until: str
    outcomes: list[OutcomeSummary]
    sankey: SankeyData | None
    countries: CountryTable | None
    policies: list[PolicyEffect]
    observations: list[ObservationRow]
    network: NetworkContent | None = None
    home_front: HomeFrontContent | None = None
    decisions: list[DecisionSection] = field(default_factory=list)
    """Sections from saved decision results (sensitivity, discovery, policy search), in the order given."""

    @property
    def members(self) -> int:
        return self.facts.samples * self.facts.replicates


def label(name: str) -> str:
    """A machine name as a heading: 'returned_operational' -> 'Returned operational'."""
    text = name.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def strata_title(outcome: OutcomeSummary, shown: int) -> str:
    """'Returned by origin: the 6 largest', or 'Detained by cohort' when every stratum is shown
    (the 'by' is not repeated when the outcome's name already says it)."""
    title = outcome.title or label(outcome.name)
    if not outcome.by:
        return title
    by = f"by {', '.join(outcome.by)}"
    if by not in title.lower():
        title = f"{title} {by}"
    return title if shown == len(outcome.fans) else f"{title}: the {shown} largest"


def policy_label(scenario: Scenario, strengths: Mapping[str, float]) -> str:
    """'Border and intelligence + Military pressure (strength 0.5)': strengths shown where not the default."""
    return " + ".join(
        label(name) + ("" if value == scenario.interventions[name].strength else f" (strength {value:g})")
        for name, value in strengths.items()
    )


def fan(data: np.ndarray, times: np.ndarray) -> Fan:
    """Quantiles over the leading (replicate) axis of a (replicate, time) array; months where the outcome
    is undefined in every run (a share of nobody) stay NaN and are left out of charts."""
    return Fan(times, quantiles(data, QUANTILES))


def largest_strata(outcome: OutcomeSummary, count: int) -> list[str]:
    """The strata with the largest middle value at the end, for small multiples."""
    final = {key: float(np.nan_to_num(f.values[2, -1], nan=-np.inf)) for key, f in outcome.fans.items()}
    return sorted(final, key=lambda key: -final[key])[:count]


def outcome_fans(scenario: Scenario, dataset: xr.Dataset, names: Sequence[str]) -> list[OutcomeSummary]:
    times = dataset["time"].values.astype("datetime64[M]")
    summaries = []
    for name in names:
        variable = dataset[name]
        by = tuple(d for d in variable.dims if d not in ("replicate", "time"))
        data = variable.transpose("replicate", "time", *by).values
        if by:
            flat = data.reshape(*data.shape[:2], -1)
            labels = [" / ".join(stratum_label(scenario, d, str(variable[d].values[i]))
                                 for d, i in zip(by, combo, strict=True))
                      for combo in np.ndindex(*data.shape[2:])]
            fans = {lab: fan(flat[:, :, k], times) for k, lab in enumerate(labels)}
        else:
            fans = {"": fan(data, times)}
        declared = scenario.outcomes.get(name)
        description = declared.description.strip() if declared else ""
        if variable.attrs.get("units"):
            description = f"{description} Unit: {variable.attrs['units']}.".strip()
        summaries.append(OutcomeSummary(
            name, description, by, fans, bool(declared and declared.select),
            title=outcome_label(scenario, name) if declared else "",
            kind=outcome_kind(scenario, name) if declared else "count",
        ))
    return summaries


def block_size(model: CompiledModel) -> int:
    """Replicates per simulate() call so one block's full record stays within BLOCK_BYTES."""
    per_replicate = 8 * (2 * model.cells + model.rate_cells) * (model.steps + 1)
    return int(np.clip(BLOCK_BYTES // max(per_replicate, 1), 8, 1000))


def fighter_compartments(scenario: Scenario) -> list[str]:
    """Compartments that hold the fighters followed by origin (all of them without an origin dimension)."""
    if ORIGIN_DIM not in scenario.dimensions:
        return list(scenario.compartments)
    return [name for name, c in scenario.compartments.items() if ORIGIN_DIM in c.dims]


def entry_dims(scenario: Scenario) -> set[str]:
    """Dimensions people have when they enter the model (from a source or initially)."""
    entering = {f.to for f in scenario.flows if f.from_ in scenario.boundaries}
    entering |= {n for n, c in scenario.compartments.items() if c.initial not in (0, 0.0)}
    return {d for name in entering if name in scenario.compartments for d in scenario.compartments[name].dims}


def pathway(scenario: Scenario, name: str) -> str:
    """The pathway a compartment belongs to: its declared `pathway`, else its own name."""
    declared = scenario.compartments[name].pathway
    return label(declared) if declared else label(name)


def pathway_members(scenario: Scenario) -> dict[str, list[str]]:
    """Followed compartments by pathway, in the file's order."""
    members: dict[str, list[str]] = {}
    for name in fighter_compartments(scenario):
        members.setdefault(pathway(scenario, name), []).append(name)
    return members


def member_label(names: Sequence[str], name: str) -> str:
    """A compartment's label within its pathway, without the prefix its members share
    (affiliate_libya among affiliate_* -> 'Libya')."""
    words = [n.split("_") for n in names]
    shared = 0
    while len(names) > 1 and all(len(w) > shared + 1 and w[shared] == words[0][shared] for w in words):
        shared += 1
    return label("_".join(name.split("_")[shared:]))


def origin_regions(scenario: Scenario) -> dict[str, list[str]]:
    """The scenario's groups of origins (its `groups: {origin: ...}`); origins in no group form 'Other origins'."""
    declared = {group: list(labels) for group, labels in scenario.groups.get(ORIGIN_DIM, {}).items()}
    grouped = {o for labels in declared.values() for o in labels}
    rest = [o for o in scenario.dimensions.get(ORIGIN_DIM, []) if o not in grouped]
    return {**declared, "Other origins": rest} if declared and rest else declared


@dataclass
class Stocks:
    """Per-replicate stocks at one date: compartment -> (replicate, origin or 1, destination strata...)."""

    date: str
    arrays: dict[str, list[np.ndarray]] = field(default_factory=dict)
    destination_dims: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def members(self) -> int:
        return sum(len(part) for part in next(iter(self.arrays.values()), []))

    def add(self, scenario: Scenario, dataset: xr.Dataset) -> None:
        entry = entry_dims(scenario)
        when = np.datetime64(self.date, "M").astype(dataset["time"].dtype)
        for name in fighter_compartments(scenario):
            variable = dataset[name].sel(time=when)
            extra = tuple(d for d in variable.dims if d not in ("replicate", ORIGIN_DIM) and d not in entry)
            keep = (ORIGIN_DIM,) if ORIGIN_DIM in variable.dims else ()
            summed = variable.sum([d for d in variable.dims if d not in ("replicate", *keep, *extra)])
            values = summed.transpose("replicate", *keep, *extra).values
            if not keep:
                values = values[:, None]
            self.destination_dims[name] = extra
            self.arrays.setdefault(name, []).append(values.astype(float))

    def joined(self) -> dict[str, np.ndarray]:
        return {name: np.concatenate(parts) for name, parts in self.arrays.items()}


def sankey_data(scenario: Scenario, stocks: Stocks) -> SankeyData | None:
    """Origin (or region) -> pathway -> destination, average persons over replicates."""
    arrays = {name: values.mean(axis=0) for name, values in stocks.joined().items()}
    if not arrays:
        return None
    origins = scenario.dimensions.get(ORIGIN_DIM, ["All"])
    totals = sum(values.reshape(len(origins), -1).sum(axis=1) for values in arrays.values())
    regions = origin_regions(scenario)
    if ORIGIN_DIM not in scenario.dimensions:
        sources = ["All fighters"]
    elif regions:
        sources = [next(region for region, members in regions.items() if o in members) for o in origins]
    else:
        largest = set(np.argsort(-totals)[:MAX_SANKEY_ORIGINS]) if len(origins) > MAX_SANKEY_ORIGINS + 1 else None
        sources = [o if largest is None or i in largest else "Other origins" for i, o in enumerate(origins)]
    order = sorted(set(sources), key=lambda s: (s == "Other origins", -sum(
        t for t, src in zip(totals, sources, strict=True) if src == s)))
    nodes: list[str] = []
    columns: list[int] = []
    index: dict[tuple[int, str], int] = {}

    def node(column: int, text: str) -> int:
        if (column, text) not in index:
            index[(column, text)] = len(nodes)
            nodes.append(text)
            columns.append(column)
        return index[(column, text)]

    for source in order:
        node(0, source)
    members = pathway_members(scenario)
    weights: dict[tuple[int, int], float] = {}
    for name, values in arrays.items():
        path = pathway(scenario, name)
        per_origin = values.reshape(len(origins), -1)
        destinations = _destinations(scenario, name, stocks.destination_dims[name], members[path])
        for i, source in enumerate(sources):
            amount = float(per_origin[i].sum())
            if amount > 0:
                key = (node(0, source), node(1, path))
                weights[key] = weights.get(key, 0.0) + amount
        if destinations:
            for k, destination in enumerate(destinations):
                amount = float(per_origin[:, k].sum())
                if amount > 0:
                    key = (node(1, path), node(2, destination))
                    weights[key] = weights.get(key, 0.0) + amount
    links = [(a, b, value) for (a, b), value in weights.items()]
    return SankeyData(stocks.date, nodes, columns, links, regions)


def _destinations(scenario: Scenario, name: str, dims: tuple[str, ...], members: list[str]) -> list[str]:
    """Destination labels of a compartment's cells (flattened), or [] when it is its own end point."""
    strata = [" / ".join(combo) for combo in _label_product([scenario.dimensions[d] for d in dims])]
    if len(members) > 1:
        own = member_label(members, name)
        return [own + (f": {s}" if s else "") for s in strata]
    return strata if dims else []


def _label_product(lists: list[list[str]]) -> list[tuple[str, ...]]:
    combos: list[tuple[str, ...]] = [()]
    for labels in lists:
        combos = [(*c, lab) for c in combos for lab in labels]
    return combos


def country_table(scenario: Scenario, stocks: Stocks) -> CountryTable | None:
    """Per origin: all who went, then each pathway (small pathways by type, e.g. returnees), as bands; a pathway
    nobody is on at the date (in any run) is listed in `empty` instead of being a column of zeros."""
    if ORIGIN_DIM not in scenario.dimensions:
        return None
    arrays = stocks.joined()
    members = pathway_members(scenario)
    columns: dict[str, np.ndarray] = {}
    for name, values in arrays.items():
        per_origin = values.reshape(*values.shape[:2], -1).sum(axis=2)
        path = pathway(scenario, name)
        if 1 < len(members[path]) <= MAX_SPLIT:
            path = f"{path}: {member_label(members[path], name).lower()}"
        columns[path] = columns.get(path, 0) + per_origin
    total = sum(columns.values())
    empty = [name for name, values in columns.items() if not np.any(values)]
    shown = {name: values for name, values in columns.items() if name not in empty}
    origins = scenario.dimensions[ORIGIN_DIM]
    order = np.argsort(-np.median(total, axis=0), kind="stable")
    rows = []
    for i in order:
        cells = [Band(*band(total[:, i]))] + [Band(*band(values[:, i])) for values in shown.values()]
        rows.append((origins[i], cells))
    return CountryTable(stocks.date, ORIGIN_DIM, ["Departed (all followed)", *shown], rows, empty)


def observation_rows(
    scenario: Scenario, outcomes: list[OutcomeSummary], fit_until: str, dataset: xr.Dataset | None = None
) -> list[ObservationRow]:
    """Each observation beside the model's latent band and, with the ensemble's `dataset`, its predictive
    band (the observation's error drawn around every member's value, seed 0)."""
    fans = {o.name: o.fans[""] for o in outcomes if not o.by}
    cutoff = parse_month(fit_until)
    rng = np.random.default_rng(0)
    rows = []
    for observation in scenario.observations:
        date = month_label(observation.date)
        predictive = None
        if dataset is not None:
            series = dataset[observation.outcome].sel(time=np.datetime64(date, "M")).values.reshape(-1)
            predictive = Band(*band(predictive_draws(error_of(scenario, observation), series, rng)))
        rows.append(
            ObservationRow(
                outcome=observation.outcome, date=date, value=observation.value, low=observation.low,
                high=observation.high, source=observation.source, note=observation.note.strip(),
                fitted=observation.date <= cutoff, model=fans[observation.outcome].at(date), predictive=predictive,
                bounds=observation.bounds,
            )
        )
    return rows


def content_from_ensemble(
    experiment: Experiment, result: EnsembleResult, stocks: Stocks | None, at: str, fit_until: str,
    run_id: int | None = None,
) -> ReportContent:
    """Summarise an ensemble whose first arm is the reference: bands, paired differences, observations."""
    from aftermath.experiments import paired_differences
    from aftermath.summary import key_dates

    scenario = experiment.scenario
    reference = result.arms[result.reference]
    names = [name for name in scenario.outcomes if name in reference.data_vars]
    outcomes = outcome_fans(scenario, reference, names)
    scalar = [o.name for o in outcomes if not o.by]
    arms = dict(experiment_arms(experiment))
    effects = []
    for arm_label, difference in paired_differences(result).items():
        effects.append(
            PolicyEffect(
                label=policy_label(scenario, arms[arm_label]),
                strengths=arms[arm_label],
                outcomes={o.name: o.fans[""] for o in outcome_fans(scenario, result.arms[arm_label], scalar)},
                differences={o.name: o.fans[""] for o in outcome_fans(scenario, difference, scalar)},
            )
        )
    facts = RunFacts(
        seed=experiment.seed, samples=experiment.samples, replicates=experiment.replicates, engine=experiment.engine,
        sampler=experiment.sampler, uncertain_parameters=len(experiment.draws), run_id=run_id,
        stock_members=stocks.members if stocks is not None else 0,
    )
    return ReportContent(
        scenario=scenario,
        scenario_hash=experiment.scenario_hash,
        facts=facts,
        reference=policy_label(scenario, arms[result.reference]) if arms[result.reference] else "",
        key_dates=key_dates(scenario),
        at=at,
        fit_until=fit_until,
        outcomes=outcomes,
        sankey=sankey_data(scenario, stocks) if stocks is not None else None,
        countries=country_table(scenario, stocks) if stocks is not None else None,
        policies=effects,
        observations=observation_rows(scenario, outcomes, fit_until, reference),
        network=network_content(scenario, reference, key_dates(scenario)),
        home_front=home_front_content(
            scenario, reference,
            {policy_label(scenario, arms[name]): data for name, data in paired_differences(result).items()},
        ),
    )


def experiment_arms(experiment: Experiment) -> list[tuple[str, dict[str, float]]]:
    return [(arm.label, dict(arm.policies)) for arm in experiment.arms]


def baseline_stocks(
    experiment: Experiment, members: int, at: str, progress: Callable[[int], None] | None = None
) -> Stocks:
    """Compartment stocks at `at` of the reference arm's first `members` members, re-run with their draws.

    Same seed, member numbers and parameter draws as the ensemble, so these are the same runs.
    """
    from aftermath.engines.simulate import simulate
    from aftermath.experiments.sampling import expand_draws

    reference = experiment.arms[0]
    model = compile_model(experiment.scenario, policies=reference.policies)
    values = expand_draws(experiment.scenario, experiment.draws)
    stocks = Stocks(at)
    size = block_size(model)
    for first in range(0, members, size):
        last = min(first + size, members)
        rows = np.arange(first, last) // experiment.replicates
        dataset = simulate(
            model, replicates=last - first, seed=experiment.seed, engine=experiment.engine,  # type: ignore[arg-type]
            parameters={name: array[rows] for name, array in values.items()}, keep_compartments=True,
            first_replicate=first,
        )
        stocks.add(experiment.scenario, dataset)
        if progress is not None:
            progress(last - first)
    return stocks


def main_outcomes(content: ReportContent) -> list[OutcomeSummary]:
    """The outcomes the report leads with (every one-number outcome if the scenario only has parts)."""
    return [o for o in content.outcomes if o.main] or [o for o in content.outcomes if not o.by]


def charted_outcomes(content: ReportContent) -> list[OutcomeSummary]:
    """Outcomes drawn over time: the main ones, the stratified ones, and any with recorded figures."""
    observed = {o.outcome for o in content.observations}
    return [o for o in content.outcomes if o.main or o.by or o.name in observed]


def changed_outcomes(content: ReportContent, limit: int | None = None) -> list[str]:
    """Main outcomes that some policy changes. Ranked by relative change of the median at the last key date,
    taking each policy's largest changes in turn, so that every policy's main effects are among the first."""
    final = content.key_dates[-1]
    rankings = []
    for effect in content.policies:
        sizes = {}
        for outcome in main_outcomes(content):
            difference = effect.differences[outcome.name]
            if np.any(difference.values != 0):
                scale = max(abs(outcome.fans[""].at(final).median), 1e-9)
                sizes[outcome.name] = abs(difference.at(final).median) / scale
        rankings.append(sorted(sizes, key=lambda name: -sizes[name]))
    ranked: list[str] = []
    for position in range(max((len(r) for r in rankings), default=0)):
        for ranking in rankings:
            if position < len(ranking) and ranking[position] not in ranked:
                ranked.append(ranking[position])
    return ranked[:limit] if limit else ranked


def network_content(scenario: Scenario, dataset: xr.Dataset, dates: Sequence[str]) -> NetworkContent | None:
    """The network at the key dates, when the scenario has one and the run recorded it."""
    if scenario.network is None or "network_ties" not in dataset.data_vars:
        return None
    from aftermath.network.export import network_graph, network_summary

    times = dataset["time"].values.astype("datetime64[M]")
    named = network_summary(dataset, list(dates), lambda group: group_label(scenario, group))
    summary = [(text, [Band(*band) for band in bands]) for text, bands in named]
    return NetworkContent(
        graphs=[(date, network_graph(dataset, scenario, date)) for date in dates],
        summary=summary,
        dates=list(dates),
        provinces=fan(dataset["network_provinces"].transpose("replicate", "time").values, times),
    )


def home_front_content(
    scenario: Scenario, dataset: xr.Dataset, differences: Mapping[str, xr.Dataset]
) -> HomeFrontContent | None:
    """The home front's yearly bands, its record and each policy's paired change in plots, when the scenario
    has a home front and the run recorded it. `differences`: policy label -> that arm minus the reference."""
    from aftermath.homefront.summary import (
        counts,
        home_front_of,
        home_front_table,
        home_front_years,
        observed_runs,
        row_name,
    )

    spec = home_front_of(scenario)
    if spec is None or "home_plots" not in dataset.data_vars:
        return None
    table = home_front_table(dataset, spec, home_front_years(scenario, spec))
    years = sorted(set(table["year"]))

    def per_year(rows: pd.DataFrame) -> list[Band | None]:
        found = {r.year: Band(r.median, r.low, r.high) for r in rows.itertuples()}
        return [found.get(year) for year in years]

    rows = []
    for (measure, group, text), part in table.groupby(["measure", "group", "label"], sort=False):
        rows.append((label(row_name(measure, group, text)), per_year(part)))
    observed = [
        (f"{observation.measure}, {label(observation.region)}", observation.year, observation.value,
         Band(*band(observed_runs(dataset, spec, observation))))
        for observation in spec.observations
    ]
    effects = []
    for policy, difference in differences.items():
        change = counts(difference, spec, "plots").sum("region")
        chosen = [y for y in years if y in change["year"].values]
        levels = quantiles(change.sel(year=chosen).transpose("replicate", "year").values)
        bands_by_year = {y: Band(levels[1, i], levels[0, i], levels[2, i]) for i, y in enumerate(chosen)}
        effects.append((policy, [bands_by_year.get(y) for y in years]))
    plots = counts(dataset, spec, "plots")
    regions = {str(region): quantiles(plots.sel(region=region).transpose("replicate", "year").values)
               for region in plots["region"].values}
    record: dict[str, list[tuple[int, float]]] = {}
    for observation in spec.observations:
        if observation.measure == "plots":
            record.setdefault(observation.region, []).append((observation.year, observation.value))
    return HomeFrontContent(years, rows, observed, effects, regions, record)
