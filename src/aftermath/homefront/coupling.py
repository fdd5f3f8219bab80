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

from aftermath.engines.kernels import binomial_array, draw_key, poisson
from aftermath.homefront.schema import MOVEMENTS, PERPETRATORS, RESULTS, HomeFrontSpec
from aftermath.homefront.validate import home_front_symbols
from aftermath.model.compile import stable_id
from aftermath.scenario.validate import flow_context

if TYPE_CHECKING:
    from aftermath.model.compile import CompiledModel
    from aftermath.model.coupling import Environment
    from aftermath.scenario.schema import Scenario

STREAMS = {name: np.uint64(stable_id(f"home_front:{name}"))
           for name in ("radicalised", "mentored", "leave", "arrested", "disengaged", "rehabilitated", "released",
                        "unreformed", "plots", "foiled", "failed")}
"""One keyed random stream per kind of draw (the names are hashed as the engine's flows are)."""


@numba.njit(cache=True)
def poisson_array(means: np.ndarray, seed: np.uint64, first_replicate: np.int64, stream: np.uint64,
                  step: np.int64) -> np.ndarray:
    """Poisson draws over an (R, cells) array of means, keyed like the step kernel's draws."""
    out = np.empty_like(means)
    for r in range(means.shape[0]):
        for i in range(means.shape[1]):
            out[r, i] = poisson(means[r, i], draw_key(seed, first_replicate + r, stream, step, i))
    return out


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

    def update(self, state: HomeFrontState, step: int, environment: Environment,
               moved: Mapping[str, np.ndarray]) -> None:
        spec, rates, levers = self.spec, self.spec.rates, self.spec.levers
        dt = self.model.dt
        size = state.home_grown.shape

        def stock(names: list[str]) -> np.ndarray:
            return sum((self._by_origin(environment.compartments[n]) for n in names), np.zeros(size))

        vigilance = environment.schedules[levers.vigilance] if levers.vigilance is not None else 1.0
        level = self._levels(state, environment.parameters, vigilance)
        returnees, remobilised = stock(spec.perpetrators.returnee), stock(spec.perpetrators.remobilised)
        strength = sum(environment.compartments[n].reshape(size[0], -1).sum(axis=1) for n in spec.reach.strength)
        reference = level.rate(spec.reach.reference)
        reach = environment.schedules[spec.reach.media] * np.divide(
            strength[:, None], reference, out=np.zeros(size), where=reference > 0
        ) ** level.rate(spec.reach.elasticity)
        call = environment.schedules[spec.reach.call] if spec.reach.call is not None else 1.0
        appeal = level.rate(levers.appeal)
        draw = _Draws(state, step)
        before = state.home_grown
        # the home-grown population: inflows, competing exits, prison
        radicalised = draw.poisson("radicalised", level.rate(rates.radicalisation) * reach * appeal * dt)
        mentored = draw.poisson("mentored", level.rate(rates.mentoring) * (returnees + remobilised) * appeal * dt)
        leaving = draw.binomial("leave", state.home_grown, level.leave)
        arrested = draw.binomial("arrested", leaving, level.arrested)
        rest = leaving - arrested
        disengaged = draw.binomial("disengaged", rest, level.disengaged)
        rehabilitated = draw.binomial("rehabilitated", arrested, level.rehabilitated)
        released = draw.binomial("released", state.imprisoned, level.released)
        unreformed = draw.binomial("unreformed", released, level.unreformed)
        state.home_grown = state.home_grown + radicalised + mentored + unreformed - leaving
        state.imprisoned = state.imprisoned + arrested - rehabilitated - released
        state.movements += np.stack([radicalised, mentored, arrested, rehabilitated, arrested - rehabilitated,
                                     unreformed, released - unreformed, disengaged, rest - disengaged], axis=-1)
        # plots by perpetrator (from the stocks at the start of the step), then what becomes of them
        means = np.stack([level.rate(rates.plot_returnee) * returnees, level.rate(rates.plot_remobilised) * remobilised,
                          level.rate(rates.plot_home_grown) * call * before], axis=-1) * dt
        plots = draw.poisson("plots", means)
        foiled = draw.binomial("foiled", plots, level.foiled)
        failed = draw.binomial("failed", plots - foiled, level.failed)
        state.plots = np.stack([foiled, failed, plots - foiled - failed], axis=-1)
        state.arrests = arrested + sum(
            (self._by_origin(moved[name].reshape(size[0], *shape)) for name, shape in self.arrest_flows),
            np.zeros(size),
        )
        slot = step % self.per_year
        state.window[:, slot, 0] = plots.sum(axis=(1, 2))
        state.window[:, slot, 1] = state.plots[..., 2].sum(axis=(1, 2))

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
        self.leave = _share(1.0 - np.exp(-total * dt))
        self.arrested = _share(share[0])
        self.disengaged = _share(np.divide(share[1], others, out=np.zeros(size), where=others > 0))
        self.rehabilitated = _share(rate(levers.rehabilitation, 0.0))
        self.released = _share(1.0 - np.exp(-rate(rates.release) * dt))
        self.unreformed = _share(rate(rates.unreformed))
        self.foiled = np.broadcast_to(_share(foil), plots)
        self.failed = np.broadcast_to(_share(rate(rates.failure)[..., None]), plots)
        self.vigilance = vigilance
        return self


def _share(probability: np.ndarray) -> np.ndarray:
    """A probability clipped to [0, 1] (a share that rounding or a parameter put outside it)."""
    return np.clip(probability, 0.0, 1.0)


class _Draws:
    """Random counts in the stochastic engine, expectations in the others, for one step of a block."""

    def __init__(self, state: HomeFrontState, step: int) -> None:
        self.state, self.step = state, step

    def _keyed(self, kind: str, values: np.ndarray, sampler, *extra: np.ndarray) -> np.ndarray:
        shape = values.shape
        flat = [np.ascontiguousarray(np.broadcast_to(a, shape).reshape(shape[0], -1), dtype=float)
                for a in (values, *extra)]
        drawn = sampler(*flat, self.state.seed, np.int64(self.state.first_replicate), STREAMS[kind],
                        np.int64(self.step))
        return drawn.reshape(shape)

    def poisson(self, kind: str, means: np.ndarray) -> np.ndarray:
        means = np.maximum(means, 0.0)
        return self._keyed(kind, means, poisson_array) if self.state.stochastic else means

    def binomial(self, kind: str, counts: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """Binomial(counts, probabilities) draws, or their expectation; probabilities in [0, 1] (`_share`)."""
        if not self.state.stochastic:
            return counts * probabilities
        return self._keyed(kind, counts, binomial_array, np.broadcast_to(probabilities, counts.shape))
