"""The dependency floors: every direct dependency declares the lowest version the code needs, and
constraints/floors.txt pins exactly those floors (CI installs it: scripts/test-floors.sh)."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def declared() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    texts = [*project["dependencies"], *project["optional-dependencies"]["netcdf"],
             *project["optional-dependencies"]["dask"]]
    return {canonicalize_name(r.name): r for r in map(Requirement, texts)}


def floor(requirement: Requirement) -> Version:
    lows = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
    assert len(lows) == 1, f"{requirement}: give one floor (>=)"
    return lows[0]


def pinned() -> dict[str, Version]:
    lines = (ROOT / "constraints" / "floors.txt").read_text(encoding="utf-8").splitlines()
    pins = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(r.name): Version(next(iter(r.specifier)).version) for r in pins}


def test_the_constraints_file_pins_each_declared_floor():
    pins = pinned()
    floors = {name: floor(requirement) for name, requirement in declared().items()}
    floors["distributed"] = floors["dask"]  # dask[distributed] pulls distributed of the same release
    assert pins == floors


def test_the_installed_packages_satisfy_the_floors():
    for name, requirement in declared().items():
        installed = Version(metadata.version(name))
        assert installed >= floor(requirement), f"{name} {installed} is below its floor {floor(requirement)}"
