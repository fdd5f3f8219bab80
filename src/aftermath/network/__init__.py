"""The alliance network: a sub-model that plugs into the core through the sub-model protocol
(`aftermath.scenario.submodels`). Importing this package registers it; the core never names it."""

from aftermath.network.coupling import NetworkCoupling, network_symbols
from aftermath.network.describe import network_elements
from aftermath.network.schema import NetworkSpec
from aftermath.network.validate import validate_network
from aftermath.scenario.submodels import SubModel, register

ALLIANCE_NETWORK = SubModel(
    name="network", section=NetworkSpec, validate=validate_network, symbols=network_symbols, couple=NetworkCoupling,
    describe=network_elements,
)
register(ALLIANCE_NETWORK)
