"""Scenario discovery: where in the space of uncertain parameters does an outcome of interest happen?

PRIM (Friedman & Fisher 1999, as adapted for scenario discovery by Bryant & Lempert 2010) and CART
come from the EMA Workbench (`ema_workbench.analysis`, Kwakkel 2017), the reference implementation
of both in exploratory modelling: PRIM peels (drops the 5% slice of one dimension that raises the
box's density most per point removed), then pastes (adds slices back while density does not fall),
and reports quasi-p-values of each restricted dimension (a one-sided binomial test of whether the
restriction raises the density: Bryant & Lempert 2010). CART is scikit-learn's decision tree with
leaves of at least 5% of the cases, read as boxes.

A case is one parameter sample (a stored ensemble's replicates are averaged first). Coverage =
cases of interest in the box / all cases of interest; density = cases of interest in the box /
cases in the box; mass = cases in the box / all cases.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aftermath.decisions.evaluate import DecisionError

PEEL_ALPHA = 0.05
MASS_MIN = 0.05
MIN_CASES_OF_INTEREST = 10
MIN_CASES = 50
QP_LIMIT = 0.05


@dataclass(frozen=True)
class Box:
    """The chosen box: trajectory entry `index`, with its chance restrictions freed; its statistics and
    its restricted dimensions."""

    index: int
    coverage: float
    density: float
    mass: float
    limits: pd.DataFrame
    """One row per restricted dimension: parameter, low, high (None: unrestricted side),
    qp_low, qp_high (quasi-p-values of each restricted side), full_low, full_high (the data's range)."""
    freed: list[str]
    """Dimensions the peeling restricted on chance variation (quasi-p > QP_LIMIT), freed again."""


@dataclass(frozen=True)
class Discovery:
    """PRIM's peeling-and-pasting trajectory (coverage-density trade-off), the chosen box, and CART's boxes."""

    cases: int
    of_interest: int
    trajectory: pd.DataFrame
    """index, coverage, density, mass, restricted (dimensions) per box, from the whole space inward."""
    chosen: Box
    cart: pd.DataFrame
    """CART's leaves that hold mostly cases of interest: coverage, density, mass, rule."""


def classify(values: np.ndarray, above: float | None = None, below: float | None = None) -> np.ndarray:
    """Cases of interest: value > above, or value < below (exactly one of the two)."""
    if (above is None) == (below is None):
        raise DecisionError("give exactly one of --above and --below (or --quantile)")
    values = np.asarray(values, dtype=float)
    return values > above if above is not None else values < below  # type: ignore[operator]


def discover(
    inputs: Mapping[str, np.ndarray], of_interest: np.ndarray, min_density: float = 0.8, seed: int = 0
) -> Discovery:
    """Find the box of `inputs` {parameter: (cases,)} where `of_interest` (cases,) bools are concentrated.

    The chosen box is the one of highest coverage among those of density >= `min_density` (else
    the densest). Raises DecisionError with too few cases or cases of interest (at least
    MIN_CASES and MIN_CASES_OF_INTEREST) or when every case is of interest.
    """
    frame = pd.DataFrame({name: np.asarray(v, dtype=float) for name, v in inputs.items()})
    y = np.asarray(of_interest, dtype=bool)
    if len(frame) != len(y):
        raise ValueError(f"{len(frame)} cases of inputs but {len(y)} of the outcome")
    hits = int(y.sum())
    if len(y) < MIN_CASES or hits < MIN_CASES_OF_INTEREST:
        raise DecisionError(f"scenario discovery needs at least {MIN_CASES} cases and {MIN_CASES_OF_INTEREST} "
                            f"cases of interest (have {len(y)} cases, {hits} of interest); expected a larger "
                            "ensemble or a threshold more cases pass")
    if hits == len(y):
        raise DecisionError(f"all {hits} cases are of interest: nothing to tell apart; expected a stricter threshold")
    varying = [c for c in frame.columns if np.ptp(frame[c].to_numpy()) > 0]
    frame = frame[varying]
    prim_box = _prim(frame, y, min_density)
    trajectory = prim_box.peeling_trajectory
    table = pd.DataFrame({
        "index": np.arange(len(trajectory)), "coverage": trajectory["coverage"].to_numpy(float),
        "density": trajectory["density"].to_numpy(float), "mass": trajectory["mass"].to_numpy(float),
        "restricted": trajectory["res_dim"].to_numpy(int),
    })
    dense = table[table["density"] >= min_density]
    chosen = int(dense.sort_values(["coverage", "density"]).index[-1]) if len(dense) else int(table["density"].idxmax())
    final, freed = _drop_insignificant(prim_box, chosen, min_density)
    return Discovery(len(y), hits, table, _box(prim_box, frame, chosen, final, freed), _cart(frame, y, seed))


def _drop_insignificant(prim_box, index: int, min_density: float) -> tuple[int, list[str]]:
    """Free, one at a time from the weakest, the restricted dimensions whose every restricted side has a
    quasi-p-value above QP_LIMIT (peeling on chance variation, common with many dimensions: Bryant &
    Lempert 2010), as long as the box keeps its density (or `min_density`, if lower). Each freed box
    is appended to PRIM's trajectory with its statistics recomputed. Returns (final box, freed names)."""
    target = min(float(prim_box.peeling_trajectory["density"].iloc[index]), min_density)
    weak = sorted(((max(sides), name) for name, sides in prim_box.qp[index].items()
                   if all(qp < 0 or qp > QP_LIMIT for qp in sides) and any(qp >= 0 for qp in sides)), reverse=True)
    current, freed = index, []
    for _, name in weak:
        prim_box.select(current)
        prim_box.drop_restriction(name)
        last = len(prim_box.box_lims) - 1
        if float(prim_box.peeling_trajectory["density"].iloc[last]) >= target:
            current = last
            freed.append(name)
    return current, freed


def _quiet_import():
    """ema_workbench warns at import about optional plotting extras and logs at INFO; silence both."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ema_workbench.analysis import cart, prim
    logging.getLogger("EMA").setLevel(logging.WARNING)
    return prim, cart


def _prim(frame: pd.DataFrame, y: np.ndarray, min_density: float):
    prim, _ = _quiet_import()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        algorithm = prim.Prim(frame, y.astype(int), threshold=min_density, peel_alpha=PEEL_ALPHA,
                              paste_alpha=PEEL_ALPHA, mass_min=MASS_MIN)
        box = algorithm.find_box()
        if box is None or len(box.peeling_trajectory) < 2:
            raise DecisionError("PRIM found no box that raises the share of cases of interest")
        return box


def _box(prim_box, frame: pd.DataFrame, chosen: int, index: int, freed: list[str]) -> Box:
    limits = prim_box.box_lims[index]
    qp = prim_box.qp[index]
    rows = []
    for name in frame.columns:
        full_low, full_high = float(frame[name].min()), float(frame[name].max())
        low, high = float(limits.loc[0, name]), float(limits.loc[1, name])
        if low <= full_low and high >= full_high:
            continue
        qp_low, qp_high = qp.get(name, [-1, -1])
        rows.append({
            "parameter": name,
            "low": low if low > full_low else None, "high": high if high < full_high else None,
            "qp_low": qp_low if qp_low >= 0 else None, "qp_high": qp_high if qp_high >= 0 else None,
            "full_low": full_low, "full_high": full_high,
        })
    row = prim_box.peeling_trajectory.iloc[index]
    return Box(chosen, float(row["coverage"]), float(row["density"]), float(row["mass"]), pd.DataFrame(
        rows, columns=["parameter", "low", "high", "qp_low", "qp_high", "full_low", "full_high"]), freed)


def _cart(frame: pd.DataFrame, y: np.ndarray, seed: int) -> pd.DataFrame:
    _, cart = _quiet_import()
    algorithm = cart.CART(frame, y.astype(int), mass_min=MASS_MIN)
    from sklearn import tree

    algorithm.clf = tree.DecisionTreeClassifier(min_samples_leaf=max(1, int(MASS_MIN * len(frame))),
                                                random_state=seed)
    algorithm.clf.fit(algorithm._x, y.astype(int))
    full = frame.agg(["min", "max"])
    rows = []
    for limits, stats in zip(algorithm.boxes, algorithm.stats, strict=True):
        if stats["density"] < 0.5:
            continue
        rule = [_rule(name, float(limits.loc[0, name]), float(limits.loc[1, name]), full[name])
                for name in frame.columns]
        rows.append({"coverage": float(stats["coverage"]), "density": float(stats["density"]),
                     "mass": float(stats["mass"]), "rule": " and ".join(r for r in rule if r) or "(everywhere)"})
    return pd.DataFrame(rows, columns=["coverage", "density", "mass", "rule"]).sort_values(
        "coverage", ascending=False, ignore_index=True)


def _rule(name: str, low: float, high: float, full: pd.Series) -> str:
    lower, upper = low > full["min"], high < full["max"]
    if lower and upper:
        return f"{low:.3g} < {name} <= {high:.3g}"
    if lower:
        return f"{name} > {low:.3g}"
    if upper:
        return f"{name} <= {high:.3g}"
    return ""
