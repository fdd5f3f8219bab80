"""The scenarios that ship with the package, listed without loading them."""

from __future__ import annotations

from contextlib import suppress
from importlib import resources
from pathlib import Path

from aftermath.scenario.fastyaml import top_level_text

DEFAULT_SCENARIO = "isis_after_caliphate"


def shipped_scenarios() -> dict[str, Path]:
    """Scenario files that come with the package, by name."""
    folder = resources.files("aftermath.scenarios")
    return {
        Path(item.name).stem: Path(str(item))
        for item in folder.iterdir()
        if item.name.endswith((".yaml", ".yml"))
    }


def scenario_title(path: Path) -> str | None:
    """A scenario file's title, read from the top of the file without reading or validating the rest (for
    listings); None where the fast reader cannot read it (load the file for its title, or its error)."""
    with suppress(OSError, UnicodeDecodeError):
        return top_level_text(path.read_text(encoding="utf-8"), "title")
    return None
