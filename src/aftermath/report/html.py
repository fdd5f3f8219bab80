"""The report as one self-contained HTML page: inline CSS and SVG, no script that runs, no network request.

The page is the Jinja2 template `templates/report.html.j2`, rendered with autoescaping on, so every
piece of text that comes from a scenario file is shown as text, never run. The only markup passed
in unescaped is our own: the SVG figures (drawn by matplotlib, which escapes their text) and the
JSON data block (`script_json`, safe inside a <script> element). This module turns the report's
content into plain values for the template: captions, table rows of rounded numbers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from markupsafe import Markup

from aftermath.formatting import Kind, number, span
from aftermath.report.content import (
    MAX_POLICY_PANELS,
    Band,
    OutcomeSummary,
    ReportContent,
    changed_outcomes,
    charted_outcomes,
    label,
    main_outcomes,
)
from aftermath.scenario.describe import (
    ParameterRow,
    citations,
    headline_outcomes,
    observation_error_rows,
    parameter_rows,
    stratum_label,
)
from aftermath.scenario.evidence import short_citation
from aftermath.scenario.schema import month_label

MAX_INLINE_SOURCES = 3
MAX_SUMMARY_ROWS = 10
"""Headline outcomes on the summary page, so that it stays one screen (1280 x 900) with three policies."""
MAX_SUMMARY_MISSES = 3
MAX_TABLE_COLUMNS = 7
"""Band columns a table holds at most beside its labels, so that it fits a 1000 px page (no sideways scroll);
the country table is split into tables of even width."""


def script_json(value: Any) -> str:
    """JSON safe inside <script>: no '</' or '<!--' can end or bend the element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


@dataclass(frozen=True)
class Cell:
    """A band as the table shows it: the rounded median, and 'low to high' below it (aftermath.formatting,
    as in the terminal)."""

    middle: str
    spread: str

    @classmethod
    def of(cls, band: Band, sign: bool = False, kind: Kind = "count") -> Cell:
        return cls(number(band.median, kind, sign), span(band.low, band.high, kind, sign))


@dataclass(frozen=True)
class Row:
    """A table row: a label (with an optional note below it), then one band per column."""

    label: str
    cells: list[Cell]
    note: str = ""


def outcome_row(content: ReportContent, name: str, bands: Sequence[Band], sign: bool = False) -> Row:
    """An outcome's display name and description, then its bands (formatted by the outcome's kind)."""
    kind = kind_of(content, name)
    return Row(outcome_title(content, name), [Cell.of(b, sign, kind) for b in bands], _note(content, name))


def _note(content: ReportContent, name: str) -> str:
    """The outcome's description, shown below its label."""
    outcome = outcome_named(content, name)
    return outcome.description if outcome else ""


def outcome_named(content: ReportContent, name: str) -> OutcomeSummary | None:
    return next((o for o in content.outcomes if o.name == name), None)


def outcome_title(content: ReportContent, name: str) -> str:
    """An outcome's display name: its label, else its name in words."""
    outcome = outcome_named(content, name)
    return outcome.title if outcome and outcome.title else label(name)


def kind_of(content: ReportContent, name: str) -> Kind:
    """How an outcome's numbers read (count, share or number; aftermath.formatting)."""
    outcome = outcome_named(content, name)
    return outcome.kind if outcome else "count"


def headline(content: ReportContent) -> dict[str, Any]:
    def rows(outcomes: Sequence[Any]) -> list[Row]:
        return [outcome_row(content, o.name, [o.fans[""].at(d) for d in content.key_dates]) for o in outcomes]

    caption = (
        f"Each figure is the middle value of {content.members:,} model runs; the smaller line below it "
        "is the range that 9 in 10 runs fall within. Numbers are rounded."
        + (f" Every run includes: {content.reference}." if content.reference else "")
    )
    return {"caption": caption, "rows": rows(main_outcomes(content)),
            "more": rows([o for o in content.outcomes if o.subset and not o.by])}


def summary_outcomes(content: ReportContent) -> list[OutcomeSummary]:
    """The outcomes the summary page shows: the scenario's `headline` set (one number per date), else the
    main outcomes; at most MAX_SUMMARY_ROWS."""
    declared = [outcome_named(content, name) for name in headline_outcomes(content.scenario)]
    chosen = [o for o in declared if o is not None and not o.by] or main_outcomes(content)
    return chosen[:MAX_SUMMARY_ROWS]


def lead(description: str) -> tuple[str, str]:
    """(first sentence, the rest) of a scenario's description: the header shows the first, folds the rest."""
    first, _, rest = re.sub(r"\s+", " ", description).strip().partition(". ")
    return (f"{first}." if rest else first), rest


def summary(content: ReportContent) -> dict[str, Any]:
    """The one-page summary a policymaker reads first: headline outcomes at the last key date with their
    bands, each policy's paired change, and what the comparison with the record says."""
    final = content.key_dates[-1]
    rows = [
        Row(outcome_title(content, o.name), [Cell.of(o.fans[""].at(final), kind=o.kind)]
            + [Cell.of(e.differences[o.name].at(final), sign=True, kind=o.kind) for e in content.policies])
        for o in summary_outcomes(content)
    ]
    caption = (
        f"In {final}: the middle value of {content.members:,} model runs, and in brackets the range 9 in 10 runs "
        "fall within."
        + (" A policy's change is paired run by run (same random draws), so it is the policy's effect, not chance."
           if content.policies else "")
        + (f" Every run includes: {content.reference}." if content.reference else "")
    )
    return {"caption": caption, "head": ["", f"In {final}", *[f"Change with {e.label}" for e in content.policies]],
            "rows": rows, "fit": fit_sentence(content)}


def fit_sentence(content: ReportContent) -> str:
    """How many recorded figures the model's 5-95% band holds, fitted and later ones apart, and the misses."""
    if not content.observations:
        return "No recorded figures to compare with: this scenario declares no observations."
    parts = []
    for fitted, words in ((True, "used to fit the model"), (False, f"dated after {content.fit_until} (later checks)")):
        chosen = [row for row in content.observations if row.fitted == fitted]
        if chosen:
            parts.append(f"{sum(row.inside for row in chosen)} of {len(chosen)} recorded figures {words}")
    misses = [f"{outcome_title(content, row.outcome)} ({row.date})" for row in content.observations if not row.inside]
    shown = "; ".join(misses[:MAX_SUMMARY_MISSES]) + (f"; and {len(misses) - MAX_SUMMARY_MISSES} more"
                                                     if len(misses) > MAX_SUMMARY_MISSES else "")
    return ("Against the record: the range of 9 in 10 runs holds " + ", and ".join(parts) + "."
            + (f" Outside it: {shown}." if misses else ""))


def over_time(content: ReportContent, svgs: dict[str, str]) -> dict[str, Any]:
    """Fan charts: the summary's outcomes first ('charts'), every other charted outcome folded ('more')."""
    front = {o.name for o in summary_outcomes(content)}
    charts, more = [], []
    for outcome in charted_outcomes(content):
        chart = {"svg": svgs[f"fan-{outcome.name}"], "caption": outcome.description,
                 "name": outcome.title or label(outcome.name), "rows": []}
        if outcome.by:
            final = content.key_dates[-1]
            order = sorted(outcome.fans, key=lambda key: -outcome.fans[key].at(final).median)
            chart["head"] = [" / ".join(label(d) for d in outcome.by), *content.key_dates]
            chart["rows"] = [Row(key, [Cell.of(outcome.fans[key].at(d), kind=outcome.kind) for d in content.key_dates])
                             for key in order]
        (charts if outcome.name in front else more).append(chart)
    caption = (
        "The line is the middle run; the darker band holds half of the runs and the lighter band 9 in 10. "
        "Dots are recorded figures: filled ones were used to set the model up, open ones came later and test it."
    )
    return {"caption": caption, "charts": charts or more, "more": more if charts else []}


def where(content: ReportContent, svgs: dict[str, str]) -> dict[str, Any] | None:
    if content.sankey is None:
        return None
    layers = len(set(content.sankey.columns))
    caption = (
        f"Where the fighters the model follows were in {content.at}: where they came from (left), "
        + ("the pathway they took (middle) and where it led them (right). " if layers == 3 else
           "and where they were (right). ")
        + f"The width of each band is the average number of persons over {content.facts.stock_members:,} runs."
        + (" Regions: " + "; ".join(f"{region}: {', '.join(members)}" for region, members in
                                    content.sankey.regions.items()) + "." if content.sankey.regions else "")
    )
    return {"heading": "Where the fighters went", "svg": svgs["where-they-went"], "caption": caption}


def countries(content: ReportContent) -> dict[str, Any] | None:
    data = content.countries
    if data is None:
        return None
    caption = (
        f"Persons by country of origin in {data.date}, from {content.facts.stock_members:,} runs. Departed is "
        "everyone from that country the model follows (the sum of the other columns). Each cell: middle value, "
        "and below it the range of 9 in 10 runs."
        + (f" Nobody was in: {', '.join(data.empty)}." if data.empty else "")
    )
    names = [stratum_label(content.scenario, data.dimension, origin) for origin, _ in data.rows]
    parts = -(-len(data.columns) // MAX_TABLE_COLUMNS)
    width = -(-len(data.columns) // parts)
    tables = [
        {"columns": data.columns[first:first + width],
         "rows": [Row(name, [Cell.of(b) for b in cells[first:first + width]])
                  for name, (_, cells) in zip(names, data.rows, strict=True)]}
        for first in range(0, len(data.columns), width)
    ]
    return {"caption": caption, "tables": tables}


def policies(content: ReportContent, svgs: dict[str, str]) -> dict[str, Any] | None:
    if not content.policies:
        return None
    scenario = content.scenario
    described = {
        name: {"name": label(name), "start": month_label(scenario.interventions[name].start),
               "description": scenario.interventions[name].description.strip()}
        for effect in content.policies for name in effect.strengths
    }
    final = content.key_dates[-1]
    changed = changed_outcomes(content)
    drawn = changed_outcomes(content, MAX_POLICY_PANELS)
    unchanged = [label(o.name) for o in main_outcomes(content) if o.name not in changed]
    caption = (
        "Each policy was run with the same random draws as the run without it, so the change shown is the "
        f"policy's effect, not chance. Dot: middle change in {final}; thick bar: half of runs; thin line: 9 in 10."
        + (f" Shown: the {len(drawn)} numbers the policies change most; the table has all." if len(drawn) < len(
            changed) else "")
        + (f" No policy changes: {', '.join(unchanged)}." if unchanged else "")
    )
    baseline = {o.name: o.fans[""] for o in main_outcomes(content)}
    rows = [
        Row(outcome_title(content, name), [Cell.of(baseline[name].at(final), kind=kind_of(content, name))]
            + [Cell.of(e.differences[name].at(final), sign=True, kind=kind_of(content, name))
               for e in content.policies],
            _note(content, name))
        for name in baseline
    ]
    effects = [
        {"label": effect.label,
         "rows": [outcome_row(content, name, [effect.differences[name].at(d) for d in content.key_dates], sign=True)
                  for name in baseline]}
        for effect in content.policies
    ]
    return {
        "described": list(described.values()), "caption": caption, "final": final,
        "svg": svgs["policy-effects"] if changed else None,
        "head": ["", "Without a new policy", *[f"Change with {e.label}" for e in content.policies]],
        "rows": rows, "effects": effects,
    }


def network(content: ReportContent, svgs: dict[str, str]) -> dict[str, Any] | None:
    data = content.network
    if data is None:
        return None
    caption = (
        "The groups allied with the hubs at each date. A line is drawn when the tie exists in at least one "
        "run; the darker and thicker it is, the more runs hold it; its colour is the kind of tie. Circles are "
        "sized by the group's strength; faded circles are groups that had ended in most runs."
    )
    return {
        "svg": svgs["alliance-network"], "provinces_svg": svgs["fan-active_provinces"], "caption": caption,
        "dates": list(data.dates),
        "rows": [Row(label(text), [Cell.of(b, kind="number" if text.startswith("centrality") else "count")
                                   for b in bands]) for text, bands in data.summary],
    }


def home_front(content: ReportContent, svgs: dict[str, str]) -> dict[str, Any] | None:
    data = content.home_front
    if data is None:
        return None
    empty = Cell("", "")

    def cells(bands: list, sign: bool = False) -> list[Cell]:
        return [Cell.of(b, sign) if b is not None else empty for b in bands]

    caption = (
        "Plots (foiled, failed and completed) per year by the region of the perpetrators' origin, median and "
        "5-95% band over runs; diamonds are Europol's counts for the EU (TE-SAT, up to 2017: the fit targets). "
        "Counts and rates only: the model holds nothing about methods or targets."
    )
    return {
        "svg": svgs["home-front"], "caption": caption, "head": ["", *[str(y) for y in data.years]],
        "rows": [Row(text, cells(bands)) for text, bands in data.rows],
        "observed": [Row(f"{what} in {year}", [Cell(number(value, "count"), ""), Cell.of(model)])
                     for what, year, value, model in data.observed],
        "effects": [Row(f"Change in plots with {policy}", cells(bands, sign=True)) for policy, bands in data.effects],
    }


def decisions(content: ReportContent, svgs: dict[str, str]) -> list[dict[str, Any]] | None:
    """Sections from saved sensitivity, discovery and policy-search results (None when there are none)."""
    if not content.decisions:
        return None
    return [{"anchor": part.anchor, "heading": part.heading, "summary": part.summary, "svg": svgs.get(part.anchor),
             "caption": part.figure_caption, "head": part.head, "rows": part.rows} for part in content.decisions]


def record(content: ReportContent) -> dict[str, Any] | None:
    if not content.observations:
        return None
    rows = []
    for row in content.observations:
        low = row.value if row.low is None else row.low
        high = row.value if row.high is None else row.high
        kind = kind_of(content, row.outcome)
        rows.append({
            "label": outcome_title(content, row.outcome), "note": row.note, "date": row.date,
            "value": number(row.value, kind), "spread": span(low, high, kind) if low != high else "",
            "model": Cell.of(row.predictive or row.model, kind=kind),
            "inside": row.inside, "fitted": row.fitted, "source": short_citation(row.source),
        })
    counts = []
    for fitted, words in ((True, "used to fit"), (False, "dated later (checks)")):
        chosen = [row for row in content.observations if row.fitted == fitted]
        if chosen:
            counts.append(f"{sum(row.inside for row in chosen)} of {len(chosen)} figures {words}")
    caption = (
        f"Recorded figures set against the model. Figures dated up to {content.fit_until} were used to set the "
        "model up; later ones were not, so they test its forecasts honestly. 'Within range' means the recorded "
        "range (or bound, for an 'at least' or 'up to' figure) overlaps the range in which 9 in 10 runs' reports "
        "would fall: the predictive band, the model's value with the figure's observation error (the charts show "
        f"the latent band, the model's own state). Within range: {'; '.join(counts)}."
    )
    return {"caption": caption, "rows": rows}


def sources(content: ReportContent) -> dict[str, Any]:
    cited = citations(content.scenario)
    return {"rows": [_parameter_row(row, cited) for row in parameter_rows(content.scenario)],
            "errors": [_parameter_row(row, cited) for row in observation_error_rows(content.scenario)],
            "cited": [(short_citation(sid), text) for sid, text in cited.items()]}


def _parameter_row(row: ParameterRow, cited: dict[str, str]) -> dict[str, Any]:
    return {
        "label": label(row.name), "description": row.description, "value": row.value,
        "uncertainty": row.uncertainty, "unit": row.unit, "range": span(row.low, row.high),
        "cites": [(short_citation(s), cited.get(s, "citation not found")) for s in row.sources],
        "folded": len(row.sources) > MAX_INLINE_SOURCES, "assumption": row.assumption,
    }


def assumptions(content: ReportContent) -> list[tuple[str, str]]:
    """(what, the judgement) for every assumption of the scenario, then how uncertainty was handled."""
    scenario = content.scenario
    groups = (("Parameter", scenario.parameters), ("Group", scenario.compartments),
              ("Timeline", scenario.schedules), ("Policy", scenario.interventions))
    items = [
        (f"{kind} {label(name)}", part.assumption.strip())
        for kind, parts in groups for name, part in parts.items() if part.assumption and part.assumption.strip()
    ]
    items += [(f"Event {label(e.name)}", e.assumption.strip())
              for e in scenario.events if e.assumption and e.assumption.strip()]
    items.append(("", uncertainty_note(content)))
    return items


def uncertainty_note(content: ReportContent) -> str:
    facts = content.facts
    if facts.samples > 1 and facts.uncertain_parameters:
        if "posterior" in facts.sampler:
            drawn = f"draws from the {facts.sampler}, what the observations left of their stated ranges"
        else:
            how = {"lhs": "Latin hypercube", "mc": "plain Monte Carlo"}.get(facts.sampler, "a sensitivity design")
            drawn = f"draws from their stated ranges, {how}"
        return (f"Ranges combine what we do not know about {facts.uncertain_parameters} parameters ({facts.samples:,} "
                f"{drawn}) with chance ({facts.replicates:,} runs per draw).")
    return (f"Ranges show chance only ({facts.replicates:,} runs with the parameters at their stated values); "
            "what we do not know about the parameters is not included.")


def metadata(content: ReportContent, generated: str, version: str) -> dict[str, Any]:
    facts = content.facts
    return {
        "aftermath version": version,
        "scenario": content.scenario.name,
        "scenario hash": content.scenario_hash,
        "seed": facts.seed,
        "runs (replicates)": content.members,
        "parameter samples": facts.samples,
        "runs per sample": facts.replicates,
        "sampler": facts.sampler,
        "engine": facts.engine,
        "reference": content.reference or "baseline (no new policy)",
        "policies compared": [e.label for e in content.policies],
        "stored run": facts.run_id if facts.run_id is not None else "not stored",
        "generated (UTC)": generated,
    }


def machine_readable(content: ReportContent, meta: dict[str, Any]) -> dict[str, Any]:
    """The headline bands and run metadata, for anyone who wants the numbers out of the page."""
    bands = [
        {"outcome": o.name, "date": d, **vars(o.fans[""].at(d))}
        for o in content.outcomes if not o.by for d in content.key_dates
    ]
    return {"title": content.scenario.title, "metadata": meta, "bands": bands}


def page(content: ReportContent, svgs: dict[str, str], generated: str, version: str) -> str:
    """The whole document. `svgs`: figure stem -> inline <svg> markup (ours, trusted)."""
    scenario = content.scenario
    meta = metadata(content, generated, version)
    values: dict[str, Any] = {
        "summary": summary(content), "headline": headline(content), "over_time": over_time(content, svgs),
        "where": where(content, svgs), "countries": countries(content), "policies": policies(content, svgs),
        "network": network(content, svgs), "home_front": home_front(content, svgs),
        "decisions": decisions(content, svgs), "record": record(content), "sources": sources(content),
        "assumptions": assumptions(content),
    }
    shown = {"where": values["where"], "countries": values["countries"], "policies": values["policies"],
             "network": values["network"], "home_front": values["home_front"],
             "decisions": values["decisions"], "record": values["record"]}
    nav = [(anchor, heading) for anchor, heading in NAV if shown.get(anchor, True) is not None]
    run_line = (f"{content.members:,} runs, seed {content.facts.seed}, scenario {scenario.name} "
                f"({content.scenario_hash}), made {generated} with aftermath {version}")
    about = [(key, ", ".join(value) if isinstance(value, list) else str(value)) for key, value in meta.items()]
    return _template().render(
        title=scenario.title, lead=lead(scenario.description), run_line=run_line, nav=nav,
        key_dates=list(content.key_dates), about=[(key, value or "none") for key, value in about],
        data=Markup(script_json(machine_readable(content, meta))), **values,
    ) + "\n"


NAV = (
    ("headline", "What the model expects"), ("over-time", "Over time"), ("where", "Where they went"),
    ("countries", "By country"), ("policies", "Policies"), ("network", "Alliances"),
    ("home_front", "Home front"),
    ("decisions", "Decisions under uncertainty"), ("record", "Against the record"), ("sources", "Sources"),
    ("assumptions", "Assumptions"), ("about", "About this run"),
)
"""The detail sections in page order (anchor, link text), listed below the summary; those with nothing to show
are left out."""


@cache
def _template() -> Any:
    from jinja2 import Environment, PackageLoader, StrictUndefined  # imported when a report is drawn

    environment = Environment(
        loader=PackageLoader("aftermath.report", "templates"), autoescape=True, undefined=StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
    )
    environment.filters["labelled"] = _labelled
    return environment.get_template("report.html.j2")


def _labelled(svg: str, name: str) -> Markup:
    """Our inline SVG with its accessible name (escaped) on the root element."""
    return Markup(svg.replace("<svg ", Markup('<svg role="img" aria-label="{}" ').format(name), 1))
