"""The home front: home-grown extremists and plots at home by returnees, remobilised fighters and the
home-grown, a sub-model that plugs into the core through the sub-model protocol
(`aftermath.scenario.submodels`). Importing this package registers it; the core never names it."""

from aftermath.homefront.coupling import HomeFrontCoupling, home_front_symbols
from aftermath.homefront.schema import HomeFrontSpec
from aftermath.homefront.validate import validate_home_front
from aftermath.scenario.submodels import SubModel, register

HOME_FRONT = SubModel(
    name="home_front", section=HomeFrontSpec, validate=validate_home_front, symbols=home_front_symbols,
    couple=HomeFrontCoupling,
)
register(HOME_FRONT)
