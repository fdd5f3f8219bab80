"""The home front: home-grown extremists and plots at home by returnees, remobilised fighters and the
home-grown, a sub-model that plugs into the core through the sub-model protocol
(`aftermath.scenario.submodels`). Importing this package registers it; the core never names it.

Registering is light (the section's schema and checks); the dynamics (numba, the engines' kernels) are
imported when a model with a home front is compiled, so loading a scenario does not pay for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aftermath.homefront.schema import HomeFrontSpec
from aftermath.homefront.validate import home_front_symbols, validate_home_front
from aftermath.scenario.submodels import SubModel, register

if TYPE_CHECKING:
    from aftermath.homefront.coupling import HomeFrontCoupling
    from aftermath.scenario.schema import Scenario


def couple(scenario: Scenario, model: Any) -> HomeFrontCoupling:
    """The home front's `aftermath.homefront.coupling.HomeFrontCoupling` for a compiled model."""
    from aftermath.homefront.coupling import HomeFrontCoupling

    return HomeFrontCoupling(scenario, model)


HOME_FRONT = SubModel(
    name="home_front", section=HomeFrontSpec, validate=validate_home_front, symbols=home_front_symbols,
    couple=couple,
)
register(HOME_FRONT)
