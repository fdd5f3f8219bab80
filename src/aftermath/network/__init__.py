"""The alliance network: a sub-model that plugs into the core through the sub-model protocol
(`aftermath.scenario.submodels`). Importing this package registers it; the core never names it.

Registering is light (the section's schema and checks); the dynamics (numba, the model layer) are imported
when a model with a network is compiled, so loading a scenario does not pay for them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aftermath.network.describe import network_elements
from aftermath.network.schema import NetworkSpec
from aftermath.network.validate import network_symbols, validate_network
from aftermath.scenario.submodels import SubModel, register

if TYPE_CHECKING:
    from aftermath.network.coupling import NetworkCoupling
    from aftermath.scenario.schema import Scenario


def couple(scenario: Scenario, model: Any) -> NetworkCoupling:
    """The network's `aftermath.network.coupling.NetworkCoupling` for a compiled model."""
    from aftermath.network.coupling import NetworkCoupling

    return NetworkCoupling(scenario, model)


ALLIANCE_NETWORK = SubModel(
    name="network", section=NetworkSpec, validate=validate_network, symbols=network_symbols, couple=couple,
    describe=network_elements,
)
register(ALLIANCE_NETWORK)
