"""Alliance-network dynamics on the model's clock, vectorised over replicates x groups (x groups).

State, for R replicates and G groups: `alive` (R, G) and symmetric alliance `ties` (R, G, G). In the
stochastic engine they are 0/1; in the deterministic one they are probabilities (`ties[g, h]`: the
tie exists and both groups are alive), advanced by their expected changes. Per step of dt months:

- capacities: c_gk(t) = c_gk * damage_g * (1 - d (1 - tau_g(t))) for k in training, safe haven,
  infrastructure (tau: share of peak territory, d: territorial dependence); cachet only * damage_g.
  The capacity index C_g is the mean of the four.
- termination: a group with a_g allies ends with probability 1 - exp(-mu rho^a_g dt) (Phillips 2014:
  rho < 1); the end is split among the endings by their shares (Jones & Libicki 2008).
- dissolution: each tie ends with probability 1 - exp(-delta dt) (the disruption lever raises delta).
- formation (preferential attachment, Bacon 2018): each group seeks an ally with probability
  q = 1 - exp(-lambda dt) and picks partner h with probability C_h / sum of C_k over the partners it
  may join: alive, untied, same ideology family (or a declared pair), no rivals between their camps
  (the groups each is linked to through alliances), and not a pair whose declared tie is still to come.
- lethality index: ell^a_g (BAAD: ell ~ 1.25 per tie).
- dated events: declared ties start (if the two camps are rivals, the side with fewer allies leaves
  its allies); a tie is cut; a leader is killed (capacities * (1 - loss), the group ends with
  probability q_d rho^a_g).

The deterministic engine uses the expected number of allies inside the hazards (a mean-field
approximation) and treats groups as independent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numba
import numpy as np

from aftermath.engines.kernels import draw_key, uniform
from aftermath.model.compile import stable_id
from aftermath.network.schema import CAPACITIES, MATERIAL, NetworkSpec
from aftermath.scenario.schema import Scenario

MATERIAL_COLUMNS = np.array([k in MATERIAL for k in CAPACITIES])
"""(len(CAPACITIES),) which capacities shrink with territory."""
SAFE_HAVEN = CAPACITIES.index("safe_haven")
LEADER_KILLED = "leader_killed"
STREAMS = {name: np.uint64(stable_id(f"network:{name}")) for name in ("end", "ending", "dissolve", "seek", "pick")}


@numba.njit(cache=True)
def uniforms(seed: np.uint64, first_replicate: np.int64, stream: np.uint64, step: np.int64,
             replicates: np.int64, cells: np.int64) -> np.ndarray:
    """(replicates, cells) uniforms keyed like the engine's draws: batch- and worker-independent."""
    out = np.empty((replicates, cells))
    for r in range(replicates):
        for i in range(cells):
            out[r, i] = uniform(draw_key(seed, first_replicate + r, stream, step, i), 0)
    return out


@dataclass(frozen=True)
class EventRow:
    kind: str
    first: int
    second: int
    """The other group of a cut tie (-1 for a decapitation)."""
    probability: float | str
    stream: np.uint64


@dataclass(frozen=True)
class NetworkTables:
    """The network section as arrays, for one compiled model (its months and schedules)."""

    groups: tuple[str, ...]
    capacities: np.ndarray
    """(G, 4) at full territory, in the order of CAPACITIES."""
    strength: np.ndarray
    territory: np.ndarray
    """(steps + 1, G) share of peak territory held; 1 where territory is not modelled."""
    has_territory: np.ndarray
    allowed: np.ndarray
    """(G, G) the pair may hold an alliance tie: same family or declared, not rivals, not itself."""
    rival: np.ndarray
    province: np.ndarray
    opens: np.ndarray
    """(G, G) step from which dynamics may form the pair's tie (its declared start, else 0)."""
    starts: dict[int, list[tuple[int, int]]]
    events: dict[int, list[EventRow]]
    dynamics_from: int
    pairs: tuple[np.ndarray, np.ndarray]
    """Upper-triangle indices of the pairs that may ever be allied (the recorded ties)."""
    endings: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.groups)

    def pair_labels(self) -> list[str]:
        return [f"{self.groups[g]}--{self.groups[h]}" for g, h in zip(*self.pairs, strict=True)]


def compile_tables(scenario: Scenario, months: np.ndarray, schedules: Mapping[str, np.ndarray]) -> NetworkTables:
    network: NetworkSpec = scenario.network  # type: ignore[assignment]
    names = tuple(network.groups)
    index = {name: i for i, name in enumerate(names)}
    size = len(names)
    groups = list(network.groups.values())

    def step_of(month: int) -> int:
        return int(np.searchsorted(months, month))

    territory = np.ones((len(months), size))
    for g, group in enumerate(groups):
        if isinstance(group.territory, str):
            territory[:, g] = schedules[group.territory]
        elif group.territory is not None:
            territory[:, g] = group.territory
    family = np.array([group.family for group in groups])
    declared = np.zeros((size, size), bool)
    rival = np.zeros((size, size))
    province = np.zeros((size, size), bool)
    opens = np.zeros((size, size), np.int64)
    starts: dict[int, list[tuple[int, int]]] = {}
    for tie in network.ties:
        g, h = index[tie.groups[0]], index[tie.groups[1]]
        if tie.type == "rivalry":
            rival[g, h] = rival[h, g] = 1.0
            continue
        declared[g, h] = declared[h, g] = True
        province[g, h] = province[h, g] = tie.type == "province"
        opens[g, h] = opens[h, g] = step_of(tie.start)
        starts.setdefault(step_of(tie.start), []).append((g, h))
    allowed = (declared | (family[:, None] == family[None, :])) & (rival == 0) & ~np.eye(size, dtype=bool)
    events: dict[int, list[EventRow]] = {}
    for event in network.events:
        first, second = (event.group, None) if event.type == "decapitation" else event.groups  # type: ignore[misc]
        events.setdefault(step_of(event.date), []).append(EventRow(
            event.type, index[first], index[second] if second else -1,  # type: ignore[index]
            event.probability, np.uint64(stable_id(f"network:event:{event.name}")),
        ))
    endings = tuple(network.dynamics.endings) or ("ended",)
    if any(event.type == "decapitation" for event in network.events):
        endings = (*endings, LEADER_KILLED)
    return NetworkTables(
        groups=names,
        capacities=np.array([[getattr(group.capacities, k) for k in CAPACITIES] for group in groups]),
        strength=np.array([group.strength for group in groups], dtype=float),
        territory=territory,
        has_territory=np.array([group.territory is not None for group in groups]),
        allowed=allowed,
        rival=rival,
        province=province,
        opens=opens,
        starts=starts,
        events=events,
        dynamics_from=step_of(network.dynamics_from) if network.dynamics_from is not None else 0,
        pairs=np.nonzero(np.triu(allowed, 1)),
        endings=endings,
    )


def scalar(parameters: Mapping[str, np.ndarray], name: str | None, default: float = 0.0) -> np.ndarray:
    """A scalar parameter in force as an (R or 1, 1) column, to broadcast over groups."""
    if name is None:
        return np.full((1, 1), default)
    value = np.asarray(parameters[name], dtype=float)
    return value.reshape(value.shape[0], -1)[:, :1]


@dataclass
class NetworkState:
    """One block of replicates: the network and what the coupling records about it."""

    stochastic: bool
    seed: np.uint64
    first_replicate: int
    base: Mapping[str, np.ndarray]
    alive: np.ndarray
    ties: np.ndarray
    damage: np.ndarray
    """(R, G) share of capacities left after decapitations."""
    strength: np.ndarray
    arrivals: np.ndarray
    endings: np.ndarray
    exposed: dict[str, np.ndarray] = field(default_factory=dict)
    """What the last `values` call computed (attraction, pull...), for records and arrivals."""
    epoch: tuple[Mapping[str, np.ndarray], dict[str, np.ndarray]] | None = None
    """The parameters in force and what the coupling takes from them (`NetworkCoupling._epoch`)."""

    @property
    def replicates(self) -> int:
        return self.alive.shape[0]

    def draws(self, stream: np.uint64, step: int, cells: int) -> np.ndarray:
        return uniforms(self.seed, np.int64(self.first_replicate), stream, np.int64(step),
                        np.int64(self.replicates), np.int64(cells))


def new_state(tables: NetworkTables, replicates: int, first_replicate: int, seed: int, stochastic: bool,
              base: Mapping[str, np.ndarray]) -> NetworkState:
    size = tables.size
    return NetworkState(
        stochastic=stochastic,
        seed=np.uint64(seed & ((1 << 64) - 1)),
        first_replicate=first_replicate,
        base=base,
        alive=np.ones((replicates, size)),
        ties=np.zeros((replicates, size, size)),
        damage=np.ones((replicates, size)),
        strength=np.broadcast_to(tables.strength, (replicates, size)).copy(),
        arrivals=np.zeros((replicates, size)),
        endings=np.zeros((replicates, len(tables.endings))),
    )


@numba.njit(cache=True)
def exposed_values(ties: np.ndarray, alive: np.ndarray, damage: np.ndarray, strength: np.ndarray,
                   base: np.ndarray, initial: np.ndarray, loss: np.ndarray, material: np.ndarray, safe_haven: np.int64,
                   dependence: np.ndarray, per_tie: np.ndarray, elasticity: np.ndarray, grows: bool, hub: np.int64,
                   membership: np.ndarray, in_theatre: np.ndarray, members: np.ndarray, weights: np.ndarray):
    """What the network gives the step, for R replicates, G groups and T theatres of the hub (see the module's
    docstring and `NetworkCoupling`); a parameter column (R or 1, 1) is read at row min(r, rows - 1).

    ties (R, G, G), alive, damage, strength (R, G); base (G, 4) capacities at full territory, initial (G,)
    strengths, loss (G,) share of peak territory lost now (0 where not modelled), material (4,) which
    capacities shrink with territory; membership (T, G), in_theatre (G,), members (T,); weights (T, R or 1, W)
    each theatre's weight. Returns the capacity index C (R, G), the lethality index (R, G), the pull on the
    hub's free agents (R, G), the attraction of each theatre (R, T), and by theatre (T, R, W) attraction
    weighted by `weights`, (T, R) the share of groups active and (T, R) their mean lethality."""
    replicates, size = alive.shape
    theatres, width = weights.shape[0], weights.shape[2]
    index = np.empty((replicates, size))
    lethal = np.empty((replicates, size))
    pull = np.zeros((replicates, size))
    share = np.zeros((replicates, theatres))
    attraction = np.zeros((theatres, replicates, width))
    active = np.zeros((theatres, replicates))
    deadliness = np.zeros((theatres, replicates))
    theatre = np.zeros(theatres)
    for r in range(replicates):
        shrink = dependence[min(r, dependence.shape[0] - 1), 0]
        tie_gain = per_tie[min(r, per_tie.shape[0] - 1), 0]
        for g in range(size):
            total = 0.0
            haven = 0.0
            for k in range(base.shape[1]):
                capacity = base[g, k] * (1.0 - shrink * loss[g] if material[k] else 1.0) * damage[r, g]
                total += capacity
                if k == safe_haven:
                    haven = capacity
            index[r, g] = total / base.shape[1]
            degree = 0.0
            for h in range(size):
                degree += ties[r, g, h]
            lethal[r, g] = tie_gain ** (degree / alive[r, g] if alive[r, g] > 0 else 0.0) * alive[r, g]
            if hub >= 0:
                pull[r, g] = ties[r, g, hub] * index[r, g] * haven
                if grows:
                    growth = strength[r, g] / initial[g] if initial[g] > 0 else 1.0
                    pull[r, g] *= growth ** elasticity[min(r, elasticity.shape[0] - 1), 0]
        if hub < 0:
            continue
        untied = 1.0
        for g in range(size):
            if in_theatre[g]:
                untied *= 1.0 - ties[r, g, hub]
        available = 1.0 - untied
        overall = 0.0
        for t in range(theatres):
            theatre[t] = 0.0
            present = 0.0
            lethality_sum = 0.0
            for g in range(size):
                theatre[t] += pull[r, g] * membership[t, g]
                present += alive[r, g] * membership[t, g]
                lethality_sum += lethal[r, g] * membership[t, g]
            overall += theatre[t]
            active[t, r] = present / members[t] if members[t] > 0 else 0.0
            deadliness[t, r] = lethality_sum / present if present > 0 else 0.0
        for t in range(theatres):
            share[r, t] = available * (theatre[t] / overall if overall > 0 else 0.0)
        row = min(r, weights.shape[1] - 1)
        for w in range(width):
            weighted_total = 0.0
            for t in range(theatres):
                weighted_total += weights[t, row, w] * theatre[t]
            for t in range(theatres):
                weighted = weights[t, row, w] * theatre[t]
                attraction[t, r, w] = available * (weighted / weighted_total if weighted_total > 0 else 0.0)
    return index, lethal, pull, share, attraction, active, deadliness


@numba.njit(cache=True)
def arrive(arriving: np.ndarray, pull: np.ndarray, alive: np.ndarray, membership: np.ndarray,
           same_theatre: np.ndarray, strength: np.ndarray, arrivals: np.ndarray) -> None:
    """Persons moved into each theatre (arriving, (R, T)) join its groups, split by their pull (R, G) among
    the theatre's groups (membership (T, G), same_theatre (G, G) = membership.T @ membership), else evenly
    among those alive; adds them to strength and arrivals (R, G) in place."""
    replicates, size = alive.shape
    for r in range(replicates):
        for g in range(size):
            theatre_pull = 0.0
            theatre_alive = 0.0
            for h in range(size):
                theatre_pull += pull[r, h] * same_theatre[h, g]
                theatre_alive += alive[r, h] * same_theatre[h, g]
            if theatre_pull > 0:
                share = pull[r, g] / theatre_pull
            else:
                share = alive[r, g] / theatre_alive if theatre_alive > 0 else 0.0
            incoming = 0.0
            for t in range(membership.shape[0]):
                incoming += arriving[r, t] * membership[t, g]
            strength[r, g] += incoming * share
            arrivals[r, g] += incoming * share


def allies(state: NetworkState) -> np.ndarray:
    """(R, G) alliance ties of each group, given it is alive (expected, in the deterministic engine)."""
    total = state.ties.sum(axis=2)
    return np.divide(total, state.alive, out=np.zeros_like(total), where=state.alive > 0)


def conflict(ties: np.ndarray, rival: np.ndarray) -> np.ndarray:
    """(R, G, G) 1 where a group of g's camp is a rival of a group of h's camp; a camp is all the groups
    linked to one through alliance ties. 0/1 ties (always, in the stochastic engine) are labelled by camp;
    expected ties (probabilities) find reachability by squaring, clipped to 1."""
    if not ((ties == 0) | (ties == 1)).all():
        camp = ties + np.eye(ties.shape[1])
        for _ in range(int(np.ceil(np.log2(max(ties.shape[1], 2))))):
            camp = np.minimum(1.0, camp @ camp)
        return np.minimum(1.0, camp @ rival @ camp.transpose(0, 2, 1))
    return _camp_conflict(ties, rival)


@numba.njit(cache=True)
def _camp_conflict(ties: np.ndarray, rival: np.ndarray) -> np.ndarray:
    """conflict() for 0/1 ties: label each camp by its smallest member, then compare camps' rivals."""
    replicates, size = ties.shape[0], ties.shape[1]
    out = np.zeros((replicates, size, size))
    label = np.empty(size, np.int64)
    for r in range(replicates):
        for g in range(size):
            label[g] = g
        changed = True
        while changed:
            changed = False
            for g in range(size):
                for h in range(size):
                    if ties[r, g, h] > 0 and label[h] < label[g]:
                        label[g] = label[h]
                        changed = True
        hostile = np.zeros((size, size), np.bool_)
        for a in range(size):
            for b in range(size):
                if rival[a, b] > 0:
                    hostile[label[a], label[b]] = True
        for g in range(size):
            for h in range(size):
                if hostile[label[g], label[h]]:
                    out[r, g, h] = 1.0
    return out


def terminate(state: NetworkState, step: int, dt: float, hazard: np.ndarray, ratio: np.ndarray,
              shares: np.ndarray) -> None:
    """Stochastic engine: groups end at hazard mu rho^allies; ends are tallied by how groups end (shares,
    (R or 1, M)). (The deterministic engine's expected step is `expected_step`.)"""
    probability = -np.expm1(-hazard * ratio ** allies(state) * dt)
    ended = (state.alive > 0) & (state.draws(STREAMS["end"], step, state.alive.shape[1]) < probability)
    if not ended.any():
        return
    cumulative = np.cumsum(shares, axis=1)[:, None, :]
    pick = state.draws(STREAMS["ending"], step, state.alive.shape[1])[:, :, None] * cumulative[:, :, -1:]
    mode = np.minimum((cumulative < pick).sum(axis=2), shares.shape[1] - 1)
    counted = (mode[:, :, None] == np.arange(shares.shape[1])) & ended[:, :, None]
    state.endings[:, : shares.shape[1]] += counted.sum(axis=1)
    _survive(state, 1.0 - ended)


def _survive(state: NetworkState, survive: np.ndarray) -> None:
    state.alive *= survive
    state.ties *= survive[:, :, None] * survive[:, None, :]


def dissolve(state: NetworkState, step: int, dt: float, hazard: np.ndarray) -> None:
    """Stochastic engine: each tie ends with probability 1 - exp(-delta dt)."""
    probability = -np.expm1(-hazard * dt)[:, :, None]
    size = state.ties.shape[1]
    draws = state.draws(STREAMS["dissolve"], step, size * size).reshape(-1, size, size)
    cut = np.triu(draws < probability, 1)
    state.ties[cut | cut.transpose(0, 2, 1)] = 0.0


def form(tables: NetworkTables, state: NetworkState, step: int, dt: float, rate: np.ndarray,
         index: np.ndarray) -> None:
    """Stochastic engine: each group seeks an ally with probability q and picks one in proportion to
    capacity `index` among the partners it may join (alive, untied, allowed, open, no rival camps)."""
    seek = -np.expm1(-rate * dt)  # (R or 1, 1)
    size = tables.size
    seeking = state.draws(STREAMS["seek"], step, size) < seek
    target = state.draws(STREAMS["pick"], step, size)
    rows = np.flatnonzero(seeking.any(axis=1))  # few replicates have a seeker in a month
    if rows.size == 0:
        return
    ties, alive, index = state.ties[rows], state.alive[rows], index[rows]
    both = alive[:, :, None] * alive[:, None, :]
    open_pairs = tables.allowed & (tables.opens <= step)
    weight = np.clip(both - ties, 0.0, None) * (1.0 - conflict(ties, tables.rival)) * open_pairs * index[:, None, :]
    total = weight.sum(axis=2)
    pick = np.minimum((np.cumsum(weight, axis=2) < (target[rows] * total)[:, :, None]).sum(axis=2), size - 1)
    chosen = (pick[:, :, None] == np.arange(size)) & (seeking[rows] & (total > 0))[:, :, None] & (weight > 0)
    new = chosen | chosen.transpose(0, 2, 1)
    new &= conflict(ties + new, tables.rival) == 0
    state.ties[rows] += new


@numba.njit(cache=True)
def _product(a: np.ndarray, b: np.ndarray, out: np.ndarray, clip: bool) -> None:
    """out = a @ b for (G, G) arrays (clipped to 1 if `clip`); row by row, skipping a's zeros (ties are sparse)."""
    size = a.shape[0]
    out[:, :] = 0.0
    for g in range(size):
        for k in range(size):
            if a[g, k] != 0.0:
                for h in range(size):
                    out[g, h] += a[g, k] * b[k, h]
        if clip:
            for h in range(size):
                out[g, h] = min(1.0, out[g, h])


@numba.njit(cache=True)
def expected_step(ties: np.ndarray, alive: np.ndarray, endings: np.ndarray, step: np.int64, dt: float,
                  termination: np.ndarray, ratio: np.ndarray, shares: np.ndarray, dissolution: np.ndarray,
                  formation: np.ndarray, index: np.ndarray, allowed: np.ndarray, opens: np.ndarray,
                  rival: np.ndarray) -> None:
    """The deterministic engine's step of the dynamics, in place: `terminate`, `dissolve`, then `form`, by
    their expected changes (the module's docstring). ties (R, G, G), alive (R, G), endings (R, endings);
    parameter columns (R or 1, 1) are read at row min(r, rows - 1); shares (R or 1, M) the endings' shares;
    index (R, G) the capacity index; allowed (G, G) bool, opens (G, G) the step each pair may form from,
    rival (G, G). Rival camps are found by squaring the expected ties (clipped to 1), which for 0/1 ties
    gives `conflict`'s camps exactly."""
    replicates, size = alive.shape
    modes = shares.shape[1]
    survive = np.empty(size)
    camp = np.empty((size, size))
    square = np.empty((size, size))
    hostile = np.empty((size, size))
    picks = np.empty((size, size))
    weight = np.empty((size, size))
    free = np.empty((size, size))
    rounds = 1
    while 2 ** rounds < max(size, 2):
        rounds += 1
    for r in range(replicates):
        hazard = termination[min(r, termination.shape[0] - 1), 0]
        gain = ratio[min(r, ratio.shape[0] - 1), 0]
        row = min(r, shares.shape[0] - 1)
        # termination at hazard mu rho^allies
        ending = 0.0
        for g in range(size):
            degree = 0.0
            for h in range(size):
                degree += ties[r, g, h]
            allies = degree / alive[r, g] if alive[r, g] > 0 else 0.0
            probability = -math.expm1(-hazard * gain ** allies * dt)
            ending += alive[r, g] * probability
            survive[g] = 1.0 - probability
        total_share = 0.0
        for m in range(modes):
            total_share += shares[row, m]
        for m in range(modes):
            endings[r, m] += ending * (shares[row, m] / total_share)
        kept = 1.0 - -math.expm1(-dissolution[min(r, dissolution.shape[0] - 1), 0] * dt)  # 1 - P(dissolve)
        for g in range(size):
            alive[r, g] *= survive[g]
        for g in range(size):
            for h in range(size):
                ties[r, g, h] *= survive[g] * survive[h]
                ties[r, g, h] *= kept
        # formation: rival camps, then who may join whom and the chance each pair allies
        for g in range(size):
            for h in range(size):
                camp[g, h] = ties[r, g, h] + (1.0 if g == h else 0.0)
        for _ in range(rounds):
            _product(camp, camp, square, True)
            camp[:, :] = square
        _product(camp, rival, square, False)
        _product(square, camp.T.copy(), hostile, True)  # min(1, camp @ rival @ camp.T)
        seek = -math.expm1(-formation[min(r, formation.shape[0] - 1), 0] * dt)
        for g in range(size):
            for h in range(size):
                both = alive[r, g] * alive[r, h]
                open_pair = 1.0 if allowed[g, h] and opens[g, h] <= step else 0.0
                free[g, h] = max(both - ties[r, g, h], 0.0) * (1.0 - hostile[g, h]) * open_pair
                weight[g, h] = free[g, h] * index[r, h]
        for g in range(size):
            total = 0.0
            for h in range(size):
                total += weight[g, h]
            others = total / alive[r, g] if alive[r, g] > 0 else 0.0
            for h in range(size):
                own = index[r, h]
                denominator = own + max(others - weight[g, h] / max(alive[r, g], 1e-300), 0.0)
                picks[g, h] = seek * (own / denominator if denominator > 0 else 0.0)
        for g in range(size):
            for h in range(size):
                ties[r, g, h] += free[g, h] * (1.0 - (1.0 - picks[g, h]) * (1.0 - picks[h, g]))


def start_tie(tables: NetworkTables, state: NetworkState, first: int, second: int) -> None:
    """A declared tie begins. If it would join rival camps, the side with fewer allies switches: it
    leaves all its allies first (in expectation: with the probability of the clash)."""
    clash = conflict(state.ties, tables.rival)[:, first, second]
    degree = state.ties.sum(axis=2)
    joiner = np.where(degree[:, first] <= degree[:, second], first, second)
    rows = np.arange(state.replicates)
    state.ties[rows, joiner, :] *= (1.0 - clash)[:, None]
    state.ties[rows, :, joiner] *= (1.0 - clash)[:, None]
    state.ties[:, first, second] = state.ties[:, second, first] = state.alive[:, first] * state.alive[:, second]


def apply_event(state: NetworkState, event: EventRow, step: int, parameters: Mapping[str, np.ndarray],
                dynamics: Mapping[str, str | None]) -> None:
    """A dated event; its probability may be a parameter (an intervention can switch it on)."""
    chance = (np.full((1, 1), event.probability) if isinstance(event.probability, float)
              else scalar(parameters, event.probability))[:, 0]
    draws = state.draws(event.stream, step, 2) if state.stochastic else None
    happens = (draws[:, 0] < chance).astype(float) if draws is not None else chance
    g = event.first
    if event.kind == "tie_cut":
        h = event.second
        state.ties[:, g, h] *= 1.0 - happens
        state.ties[:, h, g] = state.ties[:, g, h]
        return
    loss = scalar(parameters, dynamics["decapitation_capacity_loss"])[:, 0]
    ending = scalar(parameters, dynamics["decapitation_termination"])[:, 0]
    ratio = scalar(parameters, dynamics["ally_hazard_ratio"])[:, 0]
    state.damage[:, g] *= 1.0 - happens * loss
    end_probability = ending * ratio ** allies(state)[:, g]
    if draws is not None:
        ends = happens * (draws[:, 1] < end_probability) * state.alive[:, g]
        state.endings[:, -1] += ends
    else:
        ends = happens * end_probability
        state.endings[:, -1] += ends * state.alive[:, g]
    survive = np.ones_like(state.alive)
    survive[:, g] = 1.0 - ends
    _survive(state, survive)


def advance_dated(tables: NetworkTables, state: NetworkState, step: int, parameters: Mapping[str, np.ndarray],
                  dynamics: Mapping[str, str | None]) -> None:
    """What the record dates at `step`: declared ties that start, then the section's events."""
    for first, second in tables.starts.get(step, []):
        start_tie(tables, state, first, second)
    for event in tables.events.get(step, []):
        apply_event(state, event, step, parameters, dynamics)
