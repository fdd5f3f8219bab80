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
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel

    from aftermath.scenario.expressions import Symbol
    from aftermath.scenario.schema import Scenario

Described = tuple[str, str, str, list[tuple[str, str]]]
"""One named part of a sub-model's section: (kind, name, display label, [(fact, text)])."""


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
    describe: Callable[[Scenario], list[Described]] = field(default=lambda scenario: [])
    """The named parts of its section for `aftermath explain`: (kind, name, label, facts) each."""


_registry: dict[str, SubModel] = {}
_shipped: list[str] = []
"""The modules named by `ship`, in order."""
_pending: list[str] = []


def ship(module: str) -> None:
    """Name a module that registers a sub-model when imported; it is imported when the registry is first read."""
    _shipped.append(module)
    _pending.append(module)


def _import_shipped() -> tuple[SubModel, ...]:
    """Import the shipped sub-models not imported yet; return every registered one: the shipped ones first, in
    the order they were shipped (whichever a program imported first), then the others as they registered."""
    while _pending:
        importlib.import_module(_pending.pop(0))
    return tuple(sorted(_registry.values(), key=_rank))


def _rank(submodel: SubModel) -> int:
    home = submodel.section.__module__
    return next((i for i, module in enumerate(_shipped) if home.startswith(f"{module}.")), len(_shipped))


def register(submodel: SubModel) -> None:
    """Add a sub-model; its section becomes a field of the scenario file. Raises ValueError if the
    section name is a core field or taken by another sub-model."""
    from aftermath.scenario.schema import Scenario

    if submodel.name in Scenario.model_fields or _registry.get(submodel.name, submodel) is not submodel:
        raise ValueError(f"the scenario section {submodel.name!r} is already taken")
    _registry[submodel.name] = submodel
    scenario_class.cache_clear()


def registered() -> tuple[SubModel, ...]:
    """Every registered sub-model: the shipped ones in the order they were shipped, then the others as they
    registered."""
    return _import_shipped()


def present(scenario: Scenario) -> list[SubModel]:
    """The sub-models whose section the scenario has."""
    return [submodel for submodel in _import_shipped() if getattr(scenario, submodel.name, None) is not None]


@cache
def scenario_class() -> type[Scenario]:
    """The Scenario model with one optional field per registered sub-model (after the core's fields)."""
    from pydantic import create_model

    from aftermath.scenario.schema import Scenario

    sections: dict[str, Any] = {submodel.name: (submodel.section | None, None) for submodel in _import_shipped()}
    return create_model("Scenario", __base__=Scenario, __module__=__name__, **sections)
