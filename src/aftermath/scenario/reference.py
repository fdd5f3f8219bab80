"""The scenario file format's reference, generated from the pydantic schema so it can never drift.

`json_schema()` is the JSON Schema of a scenario file (shipped as `scenario.schema.json` for editors' YAML
completion); `reference_markdown()` renders it as docs/scenario-format.md: every section and field with its
type, default and meaning (the fields' docstrings in schema.py), and a short example per section.
`python scripts/write_scenario_docs.py` rewrites both files; a test checks they are up to date.
"""

from __future__ import annotations

import json
from typing import Any

from aftermath.scenario.schema import Scenario
from aftermath.scenario.submodels import registered, scenario_class

SCHEMA_FILE = "scenario.schema.json"
SCHEMA_ID = "https://aftermath.invalid/scenario.schema.json"

#: A short example of each section, as it is written under its key. Together they form a valid scenario
#: (tests/test_scenario_docs.py checks that), so the examples cannot drift from the schema either.
EXAMPLES: dict[str, str] = {
    "Scenario": """\
format: 1
name: returnees
title: Returnees to two countries (2015-2020)
description: A cohort of foreign fighters in Syria and Iraq leaves by death or return home.
time: {start: 2015-01, end: 2020-12}
key_dates: [2016-12, 2018-12, 2020-12]
dimensions:
  origin: [FR, BE]
labels:
  origin: {FR: France, BE: Belgium}
headline: [returned_total, still_there]
""",
    "TimeAxis": "time: {start: 2015-01, end: 2020-12, step: month}\n",
    "Compartment": """\
compartments:
  in_theatre:
    label: In Syria/Iraq
    description: Foreign fighters still in Syria or Iraq.
    dims: [origin]
    initial: {FR: 700, BE: 200}
    sources: [C04]
  returned:
    label: Returned home
    dims: [origin]
  killed:
    dims: [origin]
""",
    "Boundary": """\
boundaries:
  recruitment: {kind: source, description: New arrivals from outside the model.}
""",
    "Parameter": """\
parameters:
  return_hazard:
    description: Hazard of returning home.
    unit: per year
    dims: [origin]
    value: {FR: 0.12, BE: 0.15}
    distribution: {type: uniform, low: 0.8, high: 1.2, relative: true}
    assumption: Judged from returns to 2017.
  death_hazard:
    unit: per year
    value: 0.08
    distribution: {type: triangular, low: 0.06, mode: 0.08, high: 0.1}
    sources: [E05]
  arrivals_rate:
    unit: persons per month
    value: 5
    fixed: Constant inflow for the example.
    assumption: A small steady inflow.
""",
    "Distribution": "distribution: {type: lognormal, median: 0.1, sigma: 0.3}\n",
    "Schedule": """\
schedules:
  border_checks:
    description: Share of returnees stopped at the border.
    unit: fraction
    interpolation: linear
    points: {2015-01: 0.0, 2017-01: 0.3}
    assumption: Checks tightened after 2015.
""",
    "Flow": """\
flows:
  - {name: returning, from: in_theatre, to: returned, rate: return_hazard * (1 - border_checks)}
  - {name: dying, from: in_theatre, to: killed, rate: death_hazard}
  - {name: arriving, from: recruitment, to: in_theatre, rate: arrivals_rate}
""",
    "Event": """\
events:
  - name: offensive
    date: 2017-07
    from: in_theatre
    to: killed
    fraction: 0.05
    assumption: The battle of Mosul, judged.
""",
    "Intervention": """\
interventions:
  tighter_borders:
    description: Stop more returnees at the border.
    start: 2016-01
    strength: 1.0
    effects:
      - {schedule: border_checks, add: 0.2}
    assumption: A lever for the example.
""",
    "Effect": "effects:\n  - {parameter: return_hazard, multiply: 0.5}\n",
    "Outcome": """\
outcomes:
  returned_total:
    label: Returned home
    description: Everyone back home.
    expr: returned
  returned_by_origin:
    expr: returned
    by: [origin]
  returned_france:
    expr: returned
    select: {origin: [FR]}
  returns_per_month:
    expr: returning
  still_there:
    label: Still in Syria/Iraq
    expr: in_theatre
""",
    "Observation": """\
observations:
  - {outcome: returned_france, date: 2017-10, value: 271, source: C05}
""",
    "SourceEntry": """\
sources:
  - {id: my_note, citation: "A. Analyst (2017). Notes on returns. Internal memo."}
""",
}

ORDER = ("Scenario", "TimeAxis", "Compartment", "Boundary", "Parameter", "Distribution", "Schedule", "Flow",
         "Event", "Intervention", "Effect", "Cost", "Outcome", "Observation", "SourceEntry", "NetworkSpec", "Group",
         "Capacities", "Tie", "Dynamics", "NetworkEvent", "Affiliates", "Theatre")


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a scenario file, with field descriptions from schema.py: the
    core's fields and one section per registered sub-model (`aftermath.scenario.submodels`)."""
    schema = scenario_class().model_json_schema(by_alias=True, mode="validation")
    schema["description"] = (Scenario.__doc__ or "").split("\n\n")[0]
    for submodel in registered():
        schema["properties"][submodel.name].setdefault(
            "description", f"The {submodel.name} sub-model's section (optional; see {submodel.section.__name__}).")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    """The shipped schema file's text."""
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


def _type(spec: dict[str, Any]) -> str:
    """A property's type in words: 'text', 'number', 'list of Flow', 'mapping of name to Parameter'..."""
    if "$ref" in spec:
        name = spec["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in spec:
        kinds = [_type(s) for s in spec["anyOf"] if s.get("type") != "null"]
        return " or ".join(dict.fromkeys(kinds))
    if "const" in spec:
        return json.dumps(spec["const"])
    if "enum" in spec:
        return " \\| ".join(json.dumps(v) for v in spec["enum"])
    kind = spec.get("type")
    if kind == "array":
        if "prefixItems" in spec:
            return f"pair of {_type(spec['prefixItems'][0])}"
        return f"list of {_type(spec.get('items', {}))}"
    if kind == "object":
        patterns = spec.get("patternProperties") or {}
        if patterns:
            return f"mapping of name to {_type(next(iter(patterns.values())))}"
        inner = spec.get("additionalProperties")
        return f"mapping of text to {_type(inner)}" if isinstance(inner, dict) and inner else "mapping"
    if spec.get("pattern") == r"^\d{4}-\d{1,2}$":
        return "month (YYYY-MM)"
    words = {"string": "text", "number": "number", "integer": "whole number", "boolean": "true or false"}
    return words.get(str(kind), "any")


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _section(name: str, model: dict[str, Any]) -> list[str]:
    lines = [f"## {name}", ""]
    if model.get("description"):
        lines += [_cell(model["description"]), ""]
    required = set(model.get("required", []))
    lines += ["| field | type | required / default | meaning |", "|---|---|---|---|"]
    for field, spec in model.get("properties", {}).items():
        need = "required" if field in required else f"default `{json.dumps(spec.get('default'))}`"
        lines.append(f"| `{field}` | {_type(spec)} | {need} | {_cell(spec.get('description', ''))} |")
    lines.append("")
    if name in EXAMPLES:
        lines += ["```yaml", EXAMPLES[name].rstrip("\n"), "```", ""]
    return lines


def reference_markdown() -> str:
    """docs/scenario-format.md: every section of a scenario file and every field, with examples."""
    schema = json_schema()
    models = {"Scenario": schema, **schema["$defs"]}
    lines = [
        "# The scenario file format",
        "",
        "<!-- Generated by scripts/write_scenario_docs.py from src/aftermath/scenario/schema.py: do not edit. -->",
        "",
        "A scenario is a YAML file; this is every field it may hold. Unknown fields are errors (with a",
        "did-you-mean), so a misspelt key never passes silently. `aftermath check FILE` validates a file; the",
        "cross-field rules (names, dimensions, units, dates, sources) are checked there too and are described",
        "in [the tutorial](tutorial.md). Expressions (rates, fractions, outcomes) use arithmetic, comparisons,",
        "`and`/`or`/`not`, `min`, `max`, `exp`, `log`, `sqrt`, `abs`, `where`, and the names of parameters,",
        "schedules, compartments and flows, and `t` (months since the start).",
        "",
        "**Editor completion**: the JSON Schema is shipped as `src/aftermath/scenario/scenario.schema.json`.",
        "With the YAML language server (VS Code's YAML extension, and others), put this first line in a file:",
        "",
        "```yaml",
        "# yaml-language-server: $schema=PATH/TO/aftermath/scenario/scenario.schema.json",
        "```",
        "",
        "Sections: " + ", ".join(f"[{n}](#{n.lower()})" for n in ORDER if n in models) + ".",
        "",
    ]
    for name in ORDER:
        if name in models:
            lines += _section(name, models[name])
    for name in models:
        if name not in ORDER:
            lines += _section(name, models[name])
    return "\n".join(lines).rstrip("\n") + "\n"


def example_scenario() -> str:
    """The sections' examples joined into one scenario file (the examples of sub-parts are left out)."""
    parts = ("Scenario", "Compartment", "Boundary", "Parameter", "Schedule", "Flow", "Event", "Intervention",
             "Outcome", "Observation", "SourceEntry")
    return "".join(EXAMPLES[p] for p in parts)
