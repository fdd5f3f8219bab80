"""aftermath: what happens to a militant organisation's foreign fighters after it loses its territory."""

import aftermath.homefront
import aftermath.network  # noqa: F401  (registers the alliance network, a sub-model)
from aftermath.engines.simulate import parameter_batch, simulate
from aftermath.errors import ModelError, ScenarioError
from aftermath.experiments.sampling import per_run_parameters as draw_parameters
from aftermath.model.compile import CompiledModel, compile_model
from aftermath.scenario.loader import load_scenario, parse_scenario, shipped_scenarios
from aftermath.scenario.schema import Scenario

__version__ = "0.1.0"

__all__ = [
    "CompiledModel",
    "ModelError",
    "Scenario",
    "ScenarioError",
    "__version__",
    "compile_model",
    "draw_parameters",
    "load_scenario",
    "parameter_batch",
    "parse_scenario",
    "shipped_scenarios",
    "simulate",
]
