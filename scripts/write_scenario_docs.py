"""Rewrite docs/scenario-format.md and the shipped JSON Schema from the pydantic schema.

Run after changing src/aftermath/scenario/schema.py (or a section's example in scenario/reference.py):
    .venv/bin/python scripts/write_scenario_docs.py
tests/test_scenario_docs.py fails while either file is out of date.
"""

from __future__ import annotations

from pathlib import Path

from aftermath.scenario.reference import SCHEMA_FILE, reference_markdown, schema_text

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    (ROOT / "docs" / "scenario-format.md").write_text(reference_markdown(), encoding="utf-8")
    (ROOT / "src" / "aftermath" / "scenario" / SCHEMA_FILE).write_text(schema_text(), encoding="utf-8")
    print("wrote docs/scenario-format.md and src/aftermath/scenario/" + SCHEMA_FILE)
