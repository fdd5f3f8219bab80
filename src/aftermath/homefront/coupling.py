"""The home front as a coupling: it runs beside the compartments in both engines.

Per origin o (the section's `dimension`), each step of dt months, with hazards in base units (per month):

- home-grown extremists H_o are radicalised at radicalisation_o x reach x appeal (reach = media(t) x
  (strength / reference)^elasticity, strength the sum of the named compartments: Pokalova 2019) and
  mentored at mentoring x (returnees at large)_o x appeal (Amarasingam and Clarke 2017); they leave by
  arrest (hazard arrest x capacity_o
  x vigilance(t) x efforts), disengagement and death, competing: P(leave) = 1 - exp(-(sum of hazards) dt),
  split by hazard share (DESIGN, Time and units). The arrested go to rehabilitation (share `rehabilitation`,
  leaving the milieu) or to prison P_o; prisoners are released at hazard `release`, a share `unreformed`
  back into H_o, the rest out of the milieu.
- plots in the step, by perpetrator: plot_returnee x returnees_o, plot_remobilised x remobilised_o and
  plot_home_grown x call(t) x H_o (per month, times dt; call: the group's call to act at home), each
  foiled with probability min(foiling x capacity_o x vigilance x efforts, 1), else failed with
  probability `failure`, else completed.
- arrests in the step: home-grown arrests plus the persons the section's `arrests` flows moved.

The stochastic engine draws Poisson counts for inflows and plots and binomial splits, keyed like the
engine's draws (seed, replicate, stream, step, cell), so runs are the same in any batch or worker; the
deterministic and ODE engines take expectations. Populations are read at the start of each step.
The home front exposes nothing to rate expressions: switching it off leaves every other array unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from aftermath.engines.kernels import binomial, draw_key, poisson, reduce_columns
from aftermath.homefront.schema import MOVEMENTS, PERPETRATORS, RESULTS, HomeFrontSpec
from aftermath.homefront.validate import home_front_symbols
from aftermath.model.compile import stable_id
from aftermath.model.coupling import cell_sums, joined_sums
from aftermath.scenario.validate import flow_context

if TYPE_CHECKING:
    from aftermath.model.compile import CompiledModel
    from aftermath.model.coupling import Environment, Moved
    from aftermath.scenario.schema import Scenario

STREAM_NAMES = ("radicalised", "mentored", "leave", "arrested", "disengaged", "rehabilitated", "released",
                "unreformed", "plots", "foiled", "failed")
STREAMS = np.array([stable_id(f"home_front:{name}") for name in STREAM_NAMES], dtype=np.uint64)
"""One keyed random stream per kind of draw, in the order of STREAM_NAMES (the names are hashed as the
engine's flows are)."""
(_RADICALISED, _MENTORED, _LEAVE, _ARRESTED, _DISENGAGED, _REHABILITATED, _RELEASED, _UNREFORMED, _PLOTS,
 _FOILED, _FAILED) = range(len(STREAM_NAMES))
HAZARDS = ("radicalisation", "mentoring", "plot_returnee", "plot_remobilised", "plot_home_grown", "appeal",
           "reference", "elasticity")
"""The columns of `_Levels.hazards`, in this order."""
CHANCES = ("leave", "arrested", "disengaged", "rehabilitated", "released", "unreformed")
"""The columns of `_Levels.chances` (probabilities per step), in this order."""


@numba.njit(inline="always", cache=True)
def _poisson(stochastic: bool, mean: float, seed: np.uint64, replicate: np.int64, stream: np.uint64,
             step: np.int64, cell: np.int64) -> float:
    """A keyed Poisson draw of max(mean, 0), or that mean in an expectation run."""
    mean = 0.0 if mean < 0.0 else mean  # NaN stays NaN: the draw flags it
    return poisson(mean, draw_key(seed, replicate, stream, step, cell)) if stochastic else mean


@numba.njit(inline="always", cache=True)
def _binomial(stochastic: bool, n: float, p: float, seed: np.uint64, replicate: np.int64, stream: np.uint64,
              step: np.int64, cell: np.int64) -> float:
    """A keyed Binomial(n, p) draw (p in [0, 1]), or its expectation n p."""
    return binomial(n, p, draw_key(seed, replicate, stream, step, cell)) if stochastic else n * p


@numba.njit(cache=True)
def home_front_step(stochastic: bool, seed: np.uint64, first_replicate: np.int64, streams: np.ndarray,
                    step: np.int64, dt: float, media: float, call: float, stocks: np.ndarray, moved_arrests: np.ndarray,
                    hazards: np.ndarray, chances: np.ndarray, foiled: np.ndarray, failed: np.ndarray,
                    home_grown: np.ndarray, imprisoned: np.ndarray, movements: np.ndarray, plots: np.ndarray,
                    arrests: np.ndarray, window: np.ndarray, slot: np.int64) -> None:
    """One step of the home front (see the module's docstring) for R replicates and O origins, in place.

    stocks (R, 2 O + 1): returnees, remobilised by origin, then the group's strength (at the start of the
    step); moved_arrests (R, O) persons the section's arrest flows moved; hazards (len(HAZARDS), R, O) per
    month (appeal, reference and elasticity as they are); chances (len(CHANCES), R, O) and foiled, failed
    (R, O, perpetrators) probabilities per step. Updates home_grown, imprisoned (R, O), movements (R, O,
    movements), plots (R, O, perpetrators, results), arrests (R, O) and window[:, slot] (R, year, 2).
    Draws are keyed by (seed, replicate, stream, step, cell) with cell the flat index over (O,) or
    (O, perpetrators), so a replicate's numbers do not depend on its block."""
    origins = home_grown.shape[1]
    for r in range(home_grown.shape[0]):
        replicate = first_replicate + r
        strength = stocks[r, 2 * origins]
        all_plots = 0.0
        completed_plots = 0.0
        for o in range(origins):
            returnees, remobilised, before = stocks[r, o], stocks[r, origins + o], home_grown[r, o]
            reference = hazards[6, r, o]
            reach = media * (strength / reference if reference > 0 else 0.0) ** hazards[7, r, o]
            appeal = hazards[5, r, o]
            radicalised = _poisson(stochastic, hazards[0, r, o] * reach * appeal * dt, seed, replicate,
                                   streams[_RADICALISED], step, o)
            mentored = _poisson(stochastic, hazards[1, r, o] * (returnees + remobilised) * appeal * dt, seed,
                                replicate, streams[_MENTORED], step, o)
            leaving = _binomial(stochastic, before, chances[0, r, o], seed, replicate, streams[_LEAVE], step, o)
            arrested = _binomial(stochastic, leaving, chances[1, r, o], seed, replicate, streams[_ARRESTED], step, o)
            rest = leaving - arrested
            disengaged = _binomial(stochastic, rest, chances[2, r, o], seed, replicate, streams[_DISENGAGED], step, o)
            rehabilitated = _binomial(stochastic, arrested, chances[3, r, o], seed, replicate,
                                      streams[_REHABILITATED], step, o)
            released = _binomial(stochastic, imprisoned[r, o], chances[4, r, o], seed, replicate,
                                 streams[_RELEASED], step, o)
            unreformed = _binomial(stochastic, released, chances[5, r, o], seed, replicate, streams[_UNREFORMED],
                                   step, o)
            home_grown[r, o] = before + radicalised + mentored + unreformed - leaving
            imprisoned[r, o] = imprisoned[r, o] + arrested - rehabilitated - released
            movements[r, o, 0] += radicalised
            movements[r, o, 1] += mentored
            movements[r, o, 2] += arrested
            movements[r, o, 3] += rehabilitated
            movements[r, o, 4] += arrested - rehabilitated
            movements[r, o, 5] += unreformed
            movements[r, o, 6] += released - unreformed
            movements[r, o, 7] += disengaged
            movements[r, o, 8] += rest - disengaged
            arrests[r, o] = arrested + moved_arrests[r, o]
            # plots by perpetrator (from the stocks at the start of the step), then what becomes of them
            means = (hazards[2, r, o] * returnees * dt, hazards[3, r, o] * remobilised * dt,
                     hazards[4, r, o] * call * before * dt)
            for p in range(3):
                cell = o * 3 + p
                count = _poisson(stochastic, means[p], seed, replicate, streams[_PLOTS], step, cell)
                foil = _binomial(stochastic, count, foiled[r, o, p], seed, replicate, streams[_FOILED], step, cell)
                fail = _binomial(stochastic, count - foil, failed[r, o, p], seed, replicate, streams[_FAILED],
                                 step, cell)
                plots[r, o, p, 0] = foil
                plots[r, o, p, 1] = fail
                plots[r, o, p, 2] = count - foil - fail
                all_plots += count
                completed_plots += count - foil - fail
        window[r, slot, 0] = all_plots
        window[r, slot, 1] = completed_plots


@dataclass
class HomeFrontState:
    """The home front of a block of replicates: (R, origins) arrays unless noted."""

    home_grown: np.ndarray
    imprisoned: np.ndarray
    plots: np.ndarray
    """(R, origins, perpetrators, results): plots in the last step."""
    arrests: np.ndarray
    """Arrests in the last step."""
    movements: np.ndarray
    """(R, origins, movements): cumulative movements of the home-grown population (MOVEMENTS)."""
    window: np.ndarray
    """(R, steps per year, 2): all plots and completed plots of the last year's steps (a ring)."""
    seed: np.uint64
    first_replicate: int
    stochastic: bool
    levels: _Levels | None = None
    """What the last steps' hazards were, from parameters and schedules alone (`HomeFrontCoupling._levels`)."""

    @property
    def replicates(self) -> int:
        return self.home_grown.shape[0]


class HomeFrontCoupling:
    """Implements aftermath.model.coupling.Coupling for a scenario's `home_front` section."""

    name = "home_front"

    def __init__(self, scenario: Scenario, model: CompiledModel) -> None:
        spec: HomeFrontSpec = scenario.home_front  # type: ignore[attr-defined]
        self.spec = spec
        self.model = model
        self.symbols = home_front_symbols(scenario)
        self.axis = list(model.dims).index(spec.dimension)
        # (R, *model dims) -> the home front's dimension last (np.moveaxis, without its per-call cost)
        self.origin_last = (0, *[1 + d for d in range(len(model.dims)) if d != self.axis], 1 + self.axis)
        self.labels = list(model.dims[spec.dimension])
        flows = [flow.name for flow in scenario.flows]
        dims, origins = list(model.dims), len(self.labels)
        stocks = [[(model.layout(name).offset, model.layout(name).aligned) for name in names]
                  for names in (spec.perpetrators.returnee, spec.perpetrators.remobilised)]
        strength = [(model.layout(name).offset, model.layout(name).aligned) for name in spec.reach.strength]
        rows = [*(cell_sums(stock, dims, spec.dimension, origins) for stock in stocks), cell_sums(strength, dims, None)]
        self.stock_rows = joined_sums(rows)
        """Sums of the state's cells: returnees and remobilised by origin, then the group's strength."""
        self.arrest_flows = [(name, model.aligned_shape(flow_context(scenario, flows.index(name))))
                             for name in spec.arrests]
        self.per_year = max(1, round(12 / model.dt))
        origin = (spec.dimension, self.labels)
        self.outputs: dict[str, tuple[tuple[str, list[str]], ...]] = {
            "home_grown": (origin,),
            "home_grown_imprisoned": (origin,),
            "home_plots": (origin, ("perpetrator", list(PERPETRATORS)), ("result", list(RESULTS))),
            "home_arrests": (origin,),
            "home_movements": (origin, ("movement", list(MOVEMENTS))),
            "home_grown_total": (),
            "home_plots_year": (),
            "home_completed_year": (),
        }

    def _by_origin(self, array: np.ndarray) -> np.ndarray:
        """An aligned (R or 1, *model dims) array summed over every dimension but the home front's: (R or 1, O)."""
        moved = np.asarray(array, dtype=float).transpose(self.origin_last)
        summed = moved.reshape(moved.shape[0], -1, moved.shape[-1]).sum(axis=1)
        if summed.shape[1] == len(self.labels):
            return summed
        return np.broadcast_to(summed, (summed.shape[0], len(self.labels)))

    def _parameter(self, parameters: Mapping[str, np.ndarray], name: str | None, default: float = 1.0) -> np.ndarray:
        """A parameter (one number or by the home front's dimension) as (R or 1, O), in base units."""
        if name is None:
            return np.full((1, len(self.labels)), default)
        return self._by_origin(parameters[name])

    def _levels(self, state: HomeFrontState, parameters: Mapping[str, np.ndarray], vigilance: float) -> _Levels:
        """The step's parameter columns and the hazards' probabilities and shares, which depend only on the
        parameters and the vigilance schedule: kept while the engine passes the same parameters (one dict
        per epoch) and vigilance holds its value."""
        if state.levels is None or state.levels.parameters is not parameters:
            state.levels = _Levels(self, parameters, state.home_grown.shape)
        return state.levels.at(vigilance)

    def _arrest_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """Sums of the moved cells: persons the section's arrest flows moved, by origin (the model's flows
        are compiled after its couplings, so this is built at the first run)."""
        def build() -> tuple[np.ndarray, np.ndarray]:
            offsets = {flow.name: flow.rate_offset for flow in self.model.flows}
            blocks = [(offsets[name], shape) for name, shape in self.arrest_flows]
            return cell_sums(blocks, list(self.model.dims), self.spec.dimension, len(self.labels))
        return self.model.derived("home_front_arrest_rows", build)

    def start(self, replicates: int, first_replicate: int, seed: int, stochastic: bool,
              parameters: Mapping[str, np.ndarray]) -> HomeFrontState:
        initial = np.broadcast_to(self._parameter(parameters, self.spec.initial), (replicates, len(self.labels)))
        size = (replicates, len(self.labels))
        return HomeFrontState(
            home_grown=np.rint(initial) if stochastic else initial.copy(),
            imprisoned=np.zeros(size),
            plots=np.zeros((*size, len(PERPETRATORS), len(RESULTS))),
            arrests=np.zeros(size),
            movements=np.zeros((*size, len(MOVEMENTS))),
            window=np.zeros((replicates, self.per_year, 2)),
            seed=np.uint64(seed),
            first_replicate=first_replicate,
            stochastic=stochastic,
        )

    def values(self, state: HomeFrontState, step: int, parameters: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {}

    def update(self, state: HomeFrontState, step: int, environment: Environment, moved: Moved) -> None:
        spec, levers = self.spec, self.spec.levers
        replicates = state.replicates
        vigilance = environment.schedules[levers.vigilance] if levers.vigilance is not None else 1.0
        level = self._levels(state, environment.parameters, vigilance)
        stocks = np.empty((replicates, len(self.stock_rows[0]) - 1))
        reduce_columns(environment.counts, *self.stock_rows, stocks)
        moved_arrests = np.empty((replicates, len(self.labels)))
        reduce_columns(moved.cells, *self._arrest_rows(), moved_arrests)
        home_front_step(
            state.stochastic, state.seed, np.int64(state.first_replicate), STREAMS, np.int64(step), self.model.dt,
            float(environment.schedules[spec.reach.media]),
            float(environment.schedules[spec.reach.call]) if spec.reach.call is not None else 1.0,
            stocks, moved_arrests, level.hazards, level.chances, level.foiled, level.failed, state.home_grown,
            state.imprisoned, state.movements, state.plots, state.arrests, state.window, np.int64(step % self.per_year),
        )

    def record(self, state: HomeFrontState) -> dict[str, np.ndarray]:
        return {
            "home_grown": state.home_grown.copy(),
            "home_grown_imprisoned": state.imprisoned.copy(),
            "home_plots": state.plots.copy(),
            "home_arrests": state.arrests.copy(),
            "home_movements": state.movements.copy(),
            "home_grown_total": state.home_grown.sum(axis=1),
            "home_plots_year": state.window[:, :, 0].sum(axis=1),
            "home_completed_year": state.window[:, :, 1].sum(axis=1),
        }


class _Levels:
    """A home front's parameters as (R, origins) columns and what follows from them and the vigilance
    schedule alone, for the steps that share one parameters dict (an epoch)."""

    def __init__(self, coupling: HomeFrontCoupling, parameters: Mapping[str, np.ndarray], size: tuple[int, ...]):
        self.coupling, self.parameters, self.size = coupling, parameters, size
        self.columns: dict[tuple[str | None, float], np.ndarray] = {}
        self.vigilance: float | None = None
        spec = coupling.spec
        names = {"appeal": spec.levers.appeal, "reference": spec.reach.reference, "elasticity": spec.reach.elasticity}
        self.hazards = np.stack([self.rate(names[h] if h in names else getattr(spec.rates, h)) for h in HAZARDS])
        """(len(HAZARDS), R, origins) what `home_front_step` reads from the parameters alone."""

    def rate(self, name: str | None, default: float = 1.0) -> np.ndarray:
        """A parameter (or `default` where the section names none) as (R, origins), in base units."""
        if (name, default) not in self.columns:
            column = self.coupling._parameter(self.parameters, name, default)
            self.columns[name, default] = np.broadcast_to(column, self.size)
        return self.columns[name, default]

    def at(self, vigilance: float) -> _Levels:
        """Set the probabilities of leaving, being arrested, disengaging, being released, and of a plot being
        foiled or failing, at this vigilance (kept when it has not changed)."""
        if vigilance == self.vigilance:
            return self
        rates, levers = self.coupling.spec.rates, self.coupling.spec.levers
        dt, size, rate = self.coupling.model.dt, self.size, self.rate
        pressure = rate(levers.capacity) * vigilance
        for name in levers.effort:
            pressure = pressure * rate(name)
        hazards = np.stack([rate(rates.arrest) * pressure, rate(rates.disengagement), rate(rates.death)])
        total = hazards.sum(axis=0)
        share = np.divide(hazards, total, out=np.zeros_like(hazards), where=total > 0)
        others = share[1] + share[2]
        plots = (*size, len(PERPETRATORS))
        foil = np.minimum(rate(rates.foiling)[..., None] * pressure[..., None], 1.0)
        self.chances = _share(np.stack([  # in the order of CHANCES
            1.0 - np.exp(-total * dt),
            share[0],
            np.divide(share[1], others, out=np.zeros(size), where=others > 0),
            rate(levers.rehabilitation, 0.0),
            1.0 - np.exp(-rate(rates.release) * dt),
            rate(rates.unreformed),
        ]))
        self.foiled = np.ascontiguousarray(np.broadcast_to(_share(foil), plots))
        self.failed = np.ascontiguousarray(np.broadcast_to(_share(rate(rates.failure)[..., None]), plots))
        self.vigilance = vigilance
        return self


def _share(probability: np.ndarray) -> np.ndarray:
    """A probability clipped to [0, 1] (a share that rounding or a parameter put outside it)."""
    return np.clip(probability, 0.0, 1.0)
