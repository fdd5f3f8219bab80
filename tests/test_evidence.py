"""The package's evidence files are copies of the project's shared evidence, and every id resolves."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from aftermath.scenario.catalogue import shipped_scenarios
from aftermath.scenario.evidence import figures, known_citations, sources
from aftermath.scenario.loader import load_scenario

SHARED = Path(__file__).resolve().parents[2] / "shared" / "evidence"


@pytest.mark.parametrize("name", ["sources.csv", "figures.csv"])
def test_shipped_evidence_is_a_superset_of_the_shared_originals(name):
    """Every shared row is in the project's file, unchanged and in the same order, with the same header;
    the project may add rows (e.g. the home front's figures), never change or drop one."""
    if not SHARED.exists():
        pytest.skip("shared/evidence is not beside this checkout")
    shipped = resources.files("aftermath.evidence").joinpath(name).read_text(encoding="utf-8").splitlines()
    shared = (SHARED / name).read_text(encoding="utf-8").splitlines()
    assert shipped[: len(shared)] == shared, f"src/aftermath/evidence/{name} changed a row of shared/evidence"
    ids = [row.split(",", 1)[0] for row in shipped[1:]]
    assert len(ids) == len(set(ids)), f"an id is used twice in src/aftermath/evidence/{name}"


def test_added_figures_are_dated_within_the_fitted_window_and_graded():
    """Figures the project adds (beyond shared/evidence) are dated up to 2017-12 and carry a grade."""
    if not SHARED.exists():
        pytest.skip("shared/evidence is not beside this checkout")
    shared = {line.split(",", 1)[0] for line in (SHARED / "figures.csv").read_text(encoding="utf-8").splitlines()}
    added = {fid: row for fid, row in figures().items() if fid not in shared}
    assert added, "the home front's figures (HF..) are in the project's file"
    for fid, row in added.items():
        assert row["as_of"] <= "2017-12", fid
        assert row["confidence"] in {"H", "M", "L"}, fid


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
