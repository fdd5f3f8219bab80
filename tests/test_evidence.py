"""The package's evidence files are copies of the project's shared evidence, and every id resolves."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from aftermath.scenario.evidence import figures, known_citations, sources
from aftermath.scenario.loader import load_scenario, shipped_scenarios

SHARED = Path(__file__).resolve().parents[2] / "shared" / "evidence"


@pytest.mark.parametrize("name", ["sources.csv", "figures.csv"])
def test_shipped_evidence_matches_the_shared_originals(name):
    if not SHARED.exists():
        pytest.skip("shared/evidence is not beside this checkout")
    shipped = resources.files("aftermath.evidence").joinpath(name).read_bytes()
    assert shipped == (SHARED / name).read_bytes(), f"refresh src/aftermath/evidence/{name} from shared/evidence"


def test_every_figure_cites_a_known_source():
    known = known_citations()
    for fid, row in figures().items():
        assert row["source"] in known, fid
    assert "soufan2017" in sources()


def test_every_shipped_scenario_loads_and_cites_known_ids():
    known = known_citations()
    for name in shipped_scenarios():
        scenario = load_scenario(name)
        cited = {s for p in scenario.parameters.values() for s in p.sources}
        assert cited <= set(known) | {entry.id for entry in scenario.sources}, name
