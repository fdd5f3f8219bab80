"""The report as one self-contained HTML page: inline CSS and SVG, no script that runs, no network request.

Every piece of text that comes from a scenario file goes through `esc` (HTML) or `script_json`
(JSON inside a <script> element), so a title holding markup is shown as text, never run.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import Any

from aftermath.report.content import (
    MAX_POLICY_PANELS,
    Band,
    ReportContent,
    changed_outcomes,
    charted_outcomes,
    label,
    main_outcomes,
)
from aftermath.report.numbers import band_text, rounded
from aftermath.scenario.describe import ParameterRow, citations, parameter_rows
from aftermath.scenario.schema import month_label

MAX_INLINE_SOURCES = 3
CSS = """
:root { --ink: #1d2733; --muted: #5c6b7a; --line: #dfe4ea; --accent: #2f6690; --bad: #d1495b; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
  color: var(--ink); background: #fbfcfd; }
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 60px; }
header h1 { font-size: 1.7em; line-height: 1.2; margin: 0.2em 0; }
.lead { font-size: 1.05em; color: #33414f; max-width: 48em; }
.run { color: var(--muted); font-size: 0.88em; }
nav { margin: 18px 0 8px; padding: 10px 14px; background: #eef2f6; border-radius: 6px; font-size: 0.92em;
  display: flex; flex-wrap: wrap; gap: 4px 16px; }
nav a { color: var(--accent); text-decoration: none; white-space: nowrap; }
section { margin-top: 40px; }
h2 { font-size: 1.3em; border-bottom: 2px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.3em; }
p.caption, figcaption { color: #3d4b59; font-size: 0.93em; max-width: 52em; }
figure { margin: 18px 0 26px; }
figure svg { width: 100%; height: auto; display: block; background: #fff; border: 1px solid var(--line);
  border-radius: 6px; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; background: #fff; }
table { border-collapse: collapse; font-size: 0.88em; width: 100%; }
td:first-child { min-width: 13em; }
th, td { padding: 6px 9px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: #f3f6f9; font-weight: 600; }
td.num, th.num { text-align: right; white-space: nowrap; }
td.date { white-space: nowrap; }
td.num b { font-size: 1.05em; }
td.num small, td small { display: block; color: var(--muted); font-size: 0.82em; }
.sticky th:first-child, .sticky td:first-child { position: sticky; left: 0; background: #fff; }
.sticky th:first-child { background: #f3f6f9; }
.tag { display: inline-block; padding: 0 6px; border-radius: 8px; font-size: 0.8em; white-space: nowrap; }
.fit { background: #e3ecf5; color: #1f4d75; }
.later { background: #fbe5e8; color: #8c1f31; }
.no { color: var(--bad); font-weight: 600; }
ul.assumptions li { margin-bottom: 6px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; font-size: 0.9em; }
dl.meta dt { color: var(--muted); }
dl.meta dd { margin: 0; font-family: ui-monospace, "DejaVu Sans Mono", monospace; word-break: break-all; }
.cite { font-size: 0.85em; color: #3d4b59; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(430px, 1fr)); gap: 4px 18px; }
.grid .wide { grid-column: 1 / -1; }
table.provenance { table-layout: fixed; }
table.provenance th:nth-child(1) { width: 24%; } table.provenance th:nth-child(2) { width: 15%; }
table.provenance th:nth-child(3) { width: 10%; } table.provenance th:nth-child(4) { width: 12%; }
table.provenance td { overflow-wrap: anywhere; }
details summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
@media print { nav { display: none; } section { break-inside: avoid-page; } }
"""


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def script_json(value: Any) -> str:
    """JSON safe inside <script>: no '</' or '<!--' can end or bend the element."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                         ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def band_cell(band: Band, sign: bool = False) -> str:
    middle, spread = band_text(band, sign)
    return f'<td class="num"><b>{esc(middle)}</b><small>{esc(spread)}</small></td>'


def table(head: Sequence[str], rows: Iterable[str], sticky: bool = False, numeric_from: int = 1,
          kind: str = "") -> str:
    cells = "".join(
        f'<th{" class=num" if i >= numeric_from else ""}>{esc(h)}</th>' for i, h in enumerate(head)
    )
    body = "".join(f"<tr>{row}</tr>" for row in rows)
    classes = " ".join(c for c in ("sticky" if sticky else "", kind) if c)
    return f'<div class="scroll"><table{f" class={chr(34)}{classes}{chr(34)}" if classes else ""}><thead><tr>' \
           f"{cells}</tr></thead><tbody>{body}</tbody></table></div>"


def figure(svg: str, caption: str, name: str) -> str:
    """An inline SVG (drawn by us, its text escaped by matplotlib) with a plain-language caption."""
    labelled = svg.replace("<svg ", f'<svg role="img" aria-label="{esc(name)}" ', 1)
    below = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure data-chart="{esc(name)}">{labelled}{below}</figure>'


def outcome_cell_label(content: ReportContent, name: str) -> str:
    description = next((o.description for o in content.outcomes if o.name == name), "")
    return f"<td>{esc(label(name))}" + (f"<small>{esc(description)}</small>" if description else "") + "</td>"


def headline(content: ReportContent) -> str:
    rows = [outcome_cell_label(content, o.name) + "".join(band_cell(o.fans[""].at(d)) for d in content.key_dates)
            for o in main_outcomes(content)]
    caption = (
        f"Each figure is the middle value of {content.members:,} model runs; the smaller line below it "
        "is the range that 9 in 10 runs fall within. Numbers are rounded."
        + (f" Every run includes: {content.reference}." if content.reference else "")
    )
    body = f'<p class="caption">{esc(caption)}</p>' + table(["", *content.key_dates], rows)
    parts = [o for o in content.outcomes if o.subset and not o.by]
    if parts:
        more = [outcome_cell_label(content, o.name) + "".join(band_cell(o.fans[""].at(d)) for d in content.key_dates)
                for o in parts]
        body += (f"<details><summary>{len(parts)} more numbers for single countries, regions or groups</summary>"
                 f"{table(['', *content.key_dates], more)}</details>")
    return section("headline", "What the model expects", body)


def section(anchor: str, heading: str, body: str) -> str:
    return f'<section id="{esc(anchor)}"><h2>{esc(heading)}</h2>{body}</section>'


def fans(content: ReportContent, svgs: dict[str, str]) -> str:
    parts = []
    for outcome in charted_outcomes(content):
        part = figure(svgs[f"fan-{outcome.name}"], outcome.description, label(outcome.name))
        if outcome.by:
            head = [" / ".join(label(d) for d in outcome.by), *content.key_dates]
            final = content.key_dates[-1]
            order = sorted(outcome.fans, key=lambda key: -outcome.fans[key].at(final).median)
            rows = [f"<td>{esc(key)}</td>" + "".join(band_cell(outcome.fans[key].at(d)) for d in content.key_dates)
                    for key in order]
            part = (f'<div class="wide">{part}<details><summary>All {len(order)} groups as a table</summary>'
                    f"{table(head, rows, sticky=True)}</details></div>")
        parts.append(part)
    caption = (
        "The line is the middle run; the darker band holds half of the runs and the lighter band 9 in 10. "
        "Dots are recorded figures: filled ones were used to set the model up, open ones came later and test it."
    )
    return section("over-time", "How the numbers change over time",
                   f'<p class="caption">{esc(caption)}</p><div class="grid">{"".join(parts)}</div>')


def sankey(content: ReportContent, svgs: dict[str, str]) -> str:
    if content.sankey is None:
        return ""
    layers = len(set(content.sankey.columns))
    caption = (
        f"Where the fighters the model follows were in {content.at}: where they came from (left), "
        + ("the pathway they took (middle) and where it led them (right). " if layers == 3 else
           "and where they were (right). ")
        + f"The width of each band is the average number of persons over {content.facts.stock_members:,} runs."
        + (" Regions: " + "; ".join(f"{region}: {', '.join(members)}" for region, members in
                                    content.sankey.regions.items()) + "." if content.sankey.regions else "")
    )
    heading = "Where the fighters went"
    return section("where", heading, figure(svgs["where-they-went"], caption, heading))


def countries(content: ReportContent) -> str:
    data = content.countries
    if data is None:
        return ""
    rows = [f"<td>{esc(origin)}</td>" + "".join(band_cell(b) for b in cells) for origin, cells in data.rows]
    caption = (
        f"Persons by country of origin in {data.date}, from {content.facts.stock_members:,} runs. Departed is "
        "everyone from that country the model follows (the sum of the other columns). Each cell: middle value, "
        "and below it the range of 9 in 10 runs."
    )
    return section("countries", "Country by country",
                   f'<p class="caption">{esc(caption)}</p>' + table(["Country", *data.columns], rows, sticky=True))


def policies(content: ReportContent, svgs: dict[str, str]) -> str:
    if not content.policies:
        return ""
    scenario = content.scenario
    described = {
        name: f"<li><b>{esc(label(name))}</b> (from {esc(month_label(scenario.interventions[name].start))}): "
        f"{esc(scenario.interventions[name].description.strip())}</li>"
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
    parts = [f"<ul>{''.join(described.values())}</ul>"]
    if changed:
        parts.append(figure(svgs["policy-effects"], caption, "What the policies change"))
    else:
        parts.append(f'<p class="caption">{esc(caption)}</p>')
    baseline = {o.name: o.fans[""] for o in main_outcomes(content)}
    rows = [outcome_cell_label(content, name) + band_cell(baseline[name].at(final))
            + "".join(band_cell(e.differences[name].at(final), sign=True) for e in content.policies)
            for name in baseline]
    parts.append(f"<h3>In {esc(final)}: without a new policy, and the change each policy makes</h3>"
                 + table(["", "Without a new policy", *[f"Change with {e.label}" for e in content.policies]], rows))
    for effect in content.policies:
        rows = [outcome_cell_label(content, name)
                + "".join(band_cell(effect.differences[name].at(d), sign=True) for d in content.key_dates)
                for name in baseline]
        parts.append(f"<details><summary>Change with {esc(effect.label)} at every date</summary>"
                     + table(["", *content.key_dates], rows) + "</details>")
    return section("policies", "What the policies change", "".join(parts))


def network(content: ReportContent, svgs: dict[str, str]) -> str:
    data = content.network
    if data is None:
        return ""
    caption = (
        "The groups allied with the hubs at each date. A line is drawn when the tie exists in at least one "
        "run; the darker and thicker it is, the more runs hold it; its colour is the kind of tie. Circles are "
        "sized by the group's strength; faded circles are groups that had ended in most runs."
    )
    rows = [f"<td>{esc(label(text))}</td>" + "".join(band_cell(b) for b in bands) for text, bands in data.summary]
    return section("network", "The alliance network",
                   figure(svgs["alliance-network"], caption, "The alliance network")
                   + '<div class="grid">' + figure(svgs["fan-active_provinces"],
                                                   "Provinces: groups tied to the core as its provinces.",
                                                   "Active provinces") + "</div>"
                   + table(["", *data.dates], rows))


def observations(content: ReportContent) -> str:
    if not content.observations:
        return ""
    rows = []
    for row in content.observations:
        low = row.value if row.low is None else row.low
        high = row.value if row.high is None else row.high
        spread = f"<small>{esc(rounded(low))} to {esc(rounded(high))}</small>" if low != high else ""
        window = ('<span class="tag fit">used to fit</span>' if row.fitted
                  else '<span class="tag later">later check</span>')
        match = "yes" if row.inside else '<span class="no">no</span>'
        rows.append(
            f"<td>{esc(label(row.outcome))}<small>{esc(row.note)}</small></td><td class=date>{esc(row.date)}</td>"
            f'<td class="num"><b>{esc(rounded(row.value))}</b>{spread}</td>{band_cell(row.model)}<td>{match}</td>'
            f"<td>{window}</td><td>{esc(row.source)}</td>"
        )
    counts = []
    for fitted, words in ((True, "used to fit"), (False, "later checks")):
        chosen = [row for row in content.observations if row.fitted == fitted]
        if chosen:
            counts.append(f"{sum(row.inside for row in chosen)} of {len(chosen)} figures {words}")
    caption = (
        f"Recorded figures set against the model. Figures dated up to {content.fit_until} were used to set the "
        "model up; later ones were not, so they test its forecasts honestly. 'Within range' means the recorded "
        f"range overlaps the range of 9 in 10 runs. Within range: {'; '.join(counts)}."
    )
    head = ["What", "Date", "Recorded", "Model", "Within range", "Window", "Source"]
    return section("record", "How well the model matches the record",
                   f'<p class="caption">{esc(caption)}</p>' + table(head, rows, numeric_from=2))


def provenance(content: ReportContent) -> str:
    cited = citations(content.scenario)
    rows = [_parameter_row(row, cited) for row in parameter_rows(content.scenario)]
    caption = ("Every number the model starts from: its value and unit, the range it may take (5 to 95%), "
               "and where it comes from.")
    sources = "".join(f"<li><b>{esc(sid)}</b>: {esc(text)}</li>" for sid, text in cited.items())
    head = ["Parameter", "Value", "Unit", "Range", "Source"]
    return section("sources", "Where each number comes from",
                   f'<p class="caption">{esc(caption)}</p>'
                   + table(head, rows, numeric_from=len(head), kind="provenance")
                   + f"<h3>Sources</h3><ul class=cite>{sources}</ul>")


def _parameter_row(row: ParameterRow, cited: dict[str, str]) -> str:
    sources = "".join(f"<div class=cite><b>{esc(s)}</b>: {esc(cited.get(s, 'citation not found'))}</div>"
                      for s in row.sources)
    if len(row.sources) > MAX_INLINE_SOURCES:
        sources = (f"<details><summary>{len(row.sources)} sources: {esc(', '.join(row.sources))}</summary>"
                   f"{sources}</details>")
    if row.assumption:
        sources += f"<div class=cite><b>Assumption:</b> {esc(row.assumption)}</div>"
    return (
        f"<td>{esc(label(row.name))}<small>{esc(row.description)}</small></td>"
        f"<td>{esc(row.value)}<small>{esc(row.uncertainty)}</small></td><td>{esc(row.unit)}</td>"
        f'<td>{esc(f"{row.low:.3g} to {row.high:.3g}")}</td><td>{sources}</td>'
    )


def assumptions(content: ReportContent) -> str:
    scenario = content.scenario
    groups = (("Parameter", scenario.parameters), ("Group", scenario.compartments),
              ("Timeline", scenario.schedules), ("Policy", scenario.interventions))
    items = [
        f"<li><b>{esc(kind)} {esc(label(name))}:</b> {esc(part.assumption.strip())}</li>"
        for kind, parts in groups for name, part in parts.items() if part.assumption and part.assumption.strip()
    ]
    items += [f"<li><b>Event {esc(label(e.name))}:</b> {esc(e.assumption.strip())}</li>"
              for e in scenario.events if e.assumption and e.assumption.strip()]
    items.append(f"<li>{esc(uncertainty_note(content))}</li>")
    caption = "Where the record is silent, the model rests on these judgements. Change them in the scenario file."
    return section("assumptions", "What we assumed",
                   f'<p class="caption">{esc(caption)}</p><ul class="assumptions">{"".join(items)}</ul>')


def uncertainty_note(content: ReportContent) -> str:
    facts = content.facts
    if facts.samples > 1 and facts.uncertain_parameters:
        how = "Latin hypercube" if facts.sampler == "lhs" else "plain Monte Carlo"
        return (f"Ranges combine what we do not know about {facts.uncertain_parameters} parameters ({facts.samples:,} "
                f"draws from their stated ranges, {how}) with chance ({facts.replicates:,} runs per draw).")
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


def about(meta: dict[str, Any]) -> str:
    rows = "".join(
        f"<dt>{esc(k)}</dt><dd>{esc(', '.join(v) if isinstance(v, list) else v) or 'none'}</dd>"
        for k, v in meta.items()
    )
    caption = "The same scenario, seed and version give the same numbers."
    return section("about", "About this run", f'<p class="caption">{esc(caption)}</p><dl class="meta">{rows}</dl>')


def machine_readable(content: ReportContent, meta: dict[str, Any]) -> dict[str, Any]:
    """The headline bands and run metadata, for anyone who wants the numbers out of the page."""
    bands = [
        {"outcome": o.name, "date": d, **vars(o.fans[""].at(d))}
        for o in content.outcomes if not o.by for d in content.key_dates
    ]
    return {"title": content.scenario.title, "metadata": meta, "bands": bands}


def page(content: ReportContent, svgs: dict[str, str], generated: str, version: str) -> str:
    """The whole document."""
    scenario = content.scenario
    meta = metadata(content, generated, version)
    bodies = [
        ("headline", "What the model expects", headline(content)),
        ("over-time", "Over time", fans(content, svgs)),
        ("where", "Where they went", sankey(content, svgs)),
        ("countries", "By country", countries(content)),
        ("policies", "Policies", policies(content, svgs)),
        ("network", "Alliances", network(content, svgs)),
        ("record", "Against the record", observations(content)),
        ("sources", "Sources", provenance(content)),
        ("assumptions", "Assumptions", assumptions(content)),
        ("about", "About this run", about(meta)),
    ]
    nav = "".join(f'<a href="#{esc(a)}">{esc(h)}</a>' for a, h, body in bodies if body)
    run_line = (f"{content.members:,} runs, seed {content.facts.seed}, scenario {scenario.name} "
                f"({content.scenario_hash}), made {generated} with aftermath {version}")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; "
        "img-src data:\">"
        f"<title>{esc(scenario.title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>{esc(scenario.title)}</h1><p class=\"lead\">{esc(scenario.description.strip())}</p>"
        f"<p class=\"run\">{esc(run_line)}</p></header><nav>{nav}</nav>"
        + "".join(body for _, _, body in bodies)
        + f'<script type="application/json" id="report-data">{script_json(machine_readable(content, meta))}'
        "</script></main></body></html>\n"
    )
