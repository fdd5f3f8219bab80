"""docs/scenario-format.md and the shipped JSON Schema are generated from the pydantic schema and up to date;
the reference's examples and the tutorial's scenario are valid."""

from __future__ import annotations

import json
import re
from importlib import resources

from aftermath.scenario.loader import load_scenario, parse_scenario
from aftermath.scenario.reference import SCHEMA_FILE, example_scenario, json_schema, reference_markdown, schema_text
from aftermath.scenario.schema import Scenario
from tests.conftest import ROOT

REGENERATE = "run .venv/bin/python scripts/write_scenario_docs.py"


def test_reference_and_schema_are_generated_from_the_current_schema() -> None:
    assert (ROOT / "docs" / "scenario-format.md").read_text(encoding="utf-8") == reference_markdown(), REGENERATE
    shipped = resources.files("aftermath.scenario").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    assert shipped == schema_text(), REGENERATE


def test_the_reference_names_every_field_of_every_section() -> None:
    text = reference_markdown()
    schema = json_schema()
    for name, model in {"Scenario": schema, **schema["$defs"]}.items():
        assert f"## {name}" in text
        for field in model["properties"]:
            assert f"| `{field}` |" in text, (name, field)
    assert schema["properties"]["time"]["$ref"].endswith("TimeAxis")
    month = schema["$defs"]["TimeAxis"]["properties"]["start"]
    assert month["type"] == "string" and "YYYY-MM" in month["description"]  # editors see a month, not an int


def test_the_json_schema_accepts_the_shipped_scenarios_keys() -> None:
    """Every top-level key of every shipped scenario is a property of the JSON Schema (editor completion)."""
    properties = set(json_schema()["properties"])
    for path in (ROOT / "src" / "aftermath" / "scenarios").glob("*.yaml"):
        keys = set(re.findall(r"^([a-z_]+):", path.read_text(encoding="utf-8"), re.M))
        assert keys <= properties, (path.name, keys - properties)
    assert set(Scenario.model_fields) - {"format"} <= properties | {"from_"}


def test_the_examples_form_a_valid_scenario() -> None:
    scenario = parse_scenario(example_scenario(), "examples")
    assert scenario.labels["origin"]["FR"] == "France" and scenario.headline == ["returned_total", "still_there"]


def test_the_tutorial_file_is_the_tutorial_steps_and_is_valid() -> None:
    tutorial = (ROOT / "docs" / "tutorial.md").read_text(encoding="utf-8")
    steps = "".join(re.findall(r"```yaml\n(.*?)```", tutorial, re.S))
    file = ROOT / "docs" / "tutorial" / "returnees.yaml"
    assert file.read_text(encoding="utf-8").split("\n", 1)[1] == steps
    scenario = load_scenario(file)
    assert scenario.interventions and scenario.observations and scenario.headline
    assert json.loads(json.dumps(json_schema()))  # plain JSON
