"""aftermath: what happens to a militant organisation's foreign fighters after it loses its territory.

The names below are imported when first used (PEP 562), so `import aftermath` (and `aftermath --help`)
does not pay for numba, xarray or scipy until a model is compiled or run."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aftermath.scenario.submodels import ship

# the shipped sub-models, registered when the registry is first read (in this order)
ship("aftermath.homefront")  # the home front
ship("aftermath.network")  # the alliance network

if TYPE_CHECKING:
    from aftermath.engines.simulate import parameter_batch, simulate  # noqa: F401
    from aftermath.errors import ModelError, ScenarioError  # noqa: F401
    from aftermath.experiments.sampling import per_run_parameters as draw_parameters  # noqa: F401
    from aftermath.model.compile import CompiledModel, compile_model  # noqa: F401
    from aftermath.scenario.catalogue import shipped_scenarios  # noqa: F401
    from aftermath.scenario.loader import load_scenario, parse_scenario  # noqa: F401
    from aftermath.scenario.schema import Scenario  # noqa: F401

__version__ = "0.1.0"

_EXPORTS = {
    "CompiledModel": ("aftermath.model.compile", "CompiledModel"),
    "ModelError": ("aftermath.errors", "ModelError"),
    "Scenario": ("aftermath.scenario.schema", "Scenario"),
    "ScenarioError": ("aftermath.errors", "ScenarioError"),
    "compile_model": ("aftermath.model.compile", "compile_model"),
    "draw_parameters": ("aftermath.experiments.sampling", "per_run_parameters"),
    "load_scenario": ("aftermath.scenario.loader", "load_scenario"),
    "parameter_batch": ("aftermath.engines.simulate", "parameter_batch"),
    "parse_scenario": ("aftermath.scenario.loader", "parse_scenario"),
    "shipped_scenarios": ("aftermath.scenario.catalogue", "shipped_scenarios"),
    "simulate": ("aftermath.engines.simulate", "simulate"),
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    """Import a public name on first use (`aftermath.simulate`, `from aftermath import simulate`)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'aftermath' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
