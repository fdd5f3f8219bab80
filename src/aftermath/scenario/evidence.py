"""The shipped evidence catalogue: source ids and dated figures, each citable from a scenario.

`evidence/` holds copies of the project's `shared/evidence/*.csv` so that an installed package works
offline; a test checks that the copies match the originals when those are present.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources


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
def seeds() -> dict[str, dict[str, str]]:
    """The seed articles (shared/seeds/) by file name: author, title, outlet, date, and what each rests on.

    seeds.csv is the project's own table (not a copy of shared/evidence): the articles are cited by what
    they are, never by their file names.
    """
    return {row["file"]: row for row in _rows("seeds.csv")}


def seed_citation(row: dict[str, str]) -> str:
    """'Elena Pokalova (2019-10-02). Mission Accomplished? ... Small Wars Journal ...'."""
    return f"{row['author']} ({row['date']}). {row['title']}. {row['outlet']}."


@cache
def figures() -> dict[str, dict[str, str]]:
    """Dated figures of figures.csv by id (G01, C04, ...)."""
    return {row["id"]: row for row in _rows("figures.csv")}


def known_citations() -> dict[str, Citation]:
    """Every id a scenario may cite without defining it: sources, seed articles (by file name, with or
    without 'seed:') and figures (whose text cites their source, never a file name)."""
    known: dict[str, Citation] = {}
    for sid, row in sources().items():
        known[sid] = Citation(sid, f"{row['author']} ({row['year']}). {row['title']}. {row['where']}.")
    for seed, row in seeds().items():
        text = seed_citation(row)
        known[seed] = Citation(seed, text)
        known[f"seed:{seed}"] = Citation(f"seed:{seed}", text)
    for fid, row in figures().items():
        origin = known.get(row["source"]) or Citation(row["source"], row["source"])
        measure = f"{row['geography']} {row['population']}, {row['measure']} {row['as_of']}"
        known[fid] = Citation(fid, f"Figure {fid}: {measure} = {row['value']} {row['unit']}; {origin.text}")
    return known


def short_citation(source_id: str) -> str:
    """How a table names a source in a few words: a seed article as 'Author (date)', other ids as they are."""
    row = seeds().get(source_id.removeprefix("seed:"))
    if row is None:
        return source_id
    author = row["author"].split(" (")[0]
    return f"{author} ({row['date']})"
