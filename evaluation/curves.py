"""The curves of one split a reviewer reads: calibration bins, ROC, expected cost by cut-off.

Each is a small table (the report draws it, evidence.json stores it) computed from the
labels and the model's probabilities alone, so it is the same whatever the model kind.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["calibration_table", "cost_curve", "roc_table"]


def calibration_table(y: NDArray[np.int8], p: NDArray[np.float64], bins: int = 10) -> pd.DataFrame:
    """Observed vs predicted by equal-count bins of predicted probability."""
    order = np.argsort(p, kind="stable")
    rows = []
    for i, chunk in enumerate(np.array_split(order, bins)):
        if len(chunk):
            rows.append(
                {
                    "bin": i + 1,
                    "predicted": float(p[chunk].mean()),
                    "observed": float(y[chunk].mean()),
                    "count": len(chunk),
                }
            )
    return pd.DataFrame(rows)


def roc_table(y: NDArray[np.int8], p: NDArray[np.float64], points: int = 200) -> pd.DataFrame:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    return pd.DataFrame({"fpr": fpr[keep], "tpr": tpr[keep]})


def cost_curve(
    y: NDArray[np.int8], p: NDArray[np.float64], costs: tuple[float, float], chosen: float
) -> pd.DataFrame:
    """Expected cost per row at 100 thresholds across the split's PDs, and at the chosen one.

    Flag at p >= t: false negatives are the bads below t, false positives the goods at or
    above it; one sort gives every threshold's counts.
    """
    grid = np.unique(np.r_[np.quantile(p, np.linspace(0.0, 1.0, 101)), chosen])
    order = np.sort(p)
    y_sorted = np.asarray(y)[np.argsort(p, kind="stable")]
    below = np.searchsorted(order, grid, side="left")  # rows with p < t
    bads_below = np.r_[0, np.cumsum(y_sorted)][below]
    goods_above = (len(p) - below) - (int(y_sorted.sum()) - bads_below)
    cost = (costs[0] * bads_below + costs[1] * goods_above) / max(1, len(p))
    return pd.DataFrame({"threshold": grid, "expected_cost": cost, "chosen": grid == chosen})
