"""The shipped evidence catalogue: source ids and dated figures, each citable from a scenario.

`evidence/` holds copies of the project's `shared/evidence/*.csv` so that an installed package works
offline; a test checks that the copies match the originals when those are present.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

SEED_FILES = (
    "000_0c3171b756b2bd4c.txt",
    "001_fd2c25ceb1b6fcbd.txt",
    "002_0cb5010c1364d5f6.txt",
    "003_10eaacf1158f0fab.txt",
    "004_82ee856f8d35ed6b.txt",
)


@dataclass(frozen=True)
class Citation:
    id: str
    text: str


def _rows(filename: str) -> list[dict[str, str]]:
    with resources.files("aftermath.evidence").joinpath(filename).open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@cache
def sources() -> dict[str, dict[str, str]]:
    """Bibliography rows of sources.csv by id."""
    return {row["id"]: row for row in _rows("sources.csv")}


@cache
def figures() -> dict[str, dict[str, str]]:
    """Dated figures of figures.csv by id (G01, C04, ...)."""
    return {row["id"]: row for row in _rows("figures.csv")}


def known_citations() -> dict[str, Citation]:
    """Every id a scenario may cite without defining it: sources, figures and seed files."""
    known: dict[str, Citation] = {}
    for sid, row in sources().items():
        known[sid] = Citation(sid, f"{row['author']} ({row['year']}). {row['title']}. {row['where']}.")
    for fid, row in figures().items():
        origin = known.get(row["source"]) or Citation(row["source"], row["source"])
        measure = f"{row['geography']} {row['population']}, {row['measure']} {row['as_of']}"
        known[fid] = Citation(fid, f"Figure {fid}: {measure} = {row['value']} {row['unit']}; {origin.text}")
    for seed in SEED_FILES:
        text = f"Seed article {seed} (shared/seeds/)"
        known[seed] = Citation(seed, text)
        known[f"seed:{seed}"] = Citation(f"seed:{seed}", text)
    return known
