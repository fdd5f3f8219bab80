"""The sub-model protocol: how a model that runs beside the compartments plugs into the core.

A sub-model (the alliance network, or a prison-camp population, an online-propaganda model...) owns
one top-level section of the scenario file. It gives the core:
- `section`: the pydantic model of that section (shape and local rules);
- `validate(scenario)`: the rules relating the section to the rest of the scenario (raise ScenarioError);
- `symbols(scenario)`: the names it adds to rate expressions, each with its unit and dimensions;
- `couple(scenario, model)`: the object that runs it in both engines, an
  `aftermath.model.coupling.Coupling` (its state, values at each step, per-step advance, outputs).

A sub-model calls `register` when its package is imported; the `aftermath` package names the shipped
ones with `ship`, and they are imported when the registry is first read (so `import aftermath` stays
light); the core then reads `registered()` and never names a sub-model. This module is
in the scenario layer, the lowest that needs the registry, so it cannot import the model layer:
`couple` is typed loosely here and precisely in `aftermath.model.coupling`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from aftermath.scenario.expressions import Symbol
    from aftermath.scenario.schema import Scenario


@dataclass(frozen=True)
class SubModel:
    name: str
    """The scenario section it owns (a top-level key of the file, e.g. `network`)."""
    section: type[BaseModel]
    validate: Callable[[Scenario], None]
    """Called only when the scenario has the section, after compartments, before flows are checked."""
    symbols: Callable[[Scenario], dict[str, Symbol]]
    couple: Callable[[Scenario, Any], Any]
    """(scenario, compiled model) -> an `aftermath.model.coupling.Coupling`."""


_registry: dict[str, SubModel] = {}
_shipped: list[str] = []


def ship(module: str) -> None:
    """Name a module that registers a sub-model when imported; it is imported when the registry is first read."""
    _shipped.append(module)


def _import_shipped() -> None:
    while _shipped:
        importlib.import_module(_shipped.pop(0))


def register(submodel: SubModel) -> None:
    """Add a sub-model; its section becomes a field of the scenario file. Raises ValueError if the
    section name is a core field or taken by another sub-model."""
    from aftermath.scenario.schema import Scenario

    if submodel.name in Scenario.model_fields or _registry.get(submodel.name, submodel) is not submodel:
        raise ValueError(f"the scenario section {submodel.name!r} is already taken")
    _registry[submodel.name] = submodel
    scenario_class.cache_clear()


def registered() -> tuple[SubModel, ...]:
    """Every registered sub-model, in the order they registered."""
    _import_shipped()
    return tuple(_registry.values())


def present(scenario: Scenario) -> list[SubModel]:
    """The sub-models whose section the scenario has."""
    _import_shipped()
    return [submodel for submodel in _registry.values() if getattr(scenario, submodel.name, None) is not None]


@cache
def scenario_class() -> type[Scenario]:
    """The Scenario model with one optional field per registered sub-model (after the core's fields)."""
    from pydantic import create_model

    from aftermath.scenario.schema import Scenario

    _import_shipped()
    sections: dict[str, Any] = {name: (submodel.section | None, None) for name, submodel in _registry.items()}
    return create_model("Scenario", __base__=Scenario, __module__=__name__, **sections)
