"""Feature scoring: a quick ranking of uncertain parameters on any ensemble, as the EMA Workbench does.

Extra-trees importance (Geurts et al. 2006, scikit-learn's ExtraTreesRegressor, impurity-based)
with the EMA Workbench's settings (Jaxa-Rozen & Kwakkel 2018: 250 trees, a third of the features
tried at each split). A dummy column of random numbers is scored with the parameters: a parameter
scoring no higher than the dummy is indistinguishable from noise in this sample.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from aftermath.decisions.evaluate import DecisionError

TREES = 250
MIN_CASES = 20


def feature_scores(
    inputs: Mapping[str, np.ndarray], outputs: np.ndarray, labels: Sequence[str], seed: int = 0
) -> pd.DataFrame:
    """Importance of each input for each output column.

    `inputs` {parameter: (cases,)}, `outputs` (cases, len(labels)). Returns output, parameter,
    score (importances sum to 1 per output, the dummy included), above_dummy. Raises
    DecisionError with fewer than MIN_CASES cases.
    """
    from sklearn.ensemble import ExtraTreesRegressor

    names = list(inputs)
    outputs = np.asarray(outputs, dtype=float).reshape(len(next(iter(inputs.values()))), -1)
    if len(outputs) < MIN_CASES:
        raise DecisionError(f"feature scoring needs at least {MIN_CASES} parameter samples (have {len(outputs)})")
    dummy = np.random.default_rng([seed, 11]).random(len(outputs))
    x = np.column_stack([*[np.asarray(inputs[n], dtype=float) for n in names], dummy])
    rows = []
    for column, label in enumerate(labels):
        y = outputs[:, column]
        if np.ptp(y) == 0 or not np.isfinite(y).all():
            continue
        forest = ExtraTreesRegressor(n_estimators=TREES, max_features=max(1, x.shape[1] // 3), random_state=seed,
                                     n_jobs=1)
        scores = forest.fit(x, y).feature_importances_
        rows += [{"output": label, "parameter": name, "score": float(scores[i]),
                  "above_dummy": bool(scores[i] > scores[-1])} for i, name in enumerate(names)]
        rows.append({"output": label, "parameter": "(dummy)", "score": float(scores[-1]), "above_dummy": False})
    table = pd.DataFrame(rows, columns=["output", "parameter", "score", "above_dummy"])
    return table.sort_values(["output", "score"], ascending=[True, False], ignore_index=True)
