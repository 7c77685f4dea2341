"""The pieces the risk functions are built of: smooth on the logit, strict about levels.

`credit_risk` and `fraud_risk` are sums of these on the logit scale: soft hinges instead of
kinks, so gradient boosting can get close to the Bayes AUC without cliffs to chase, and
categorical offsets that refuse a level the table does not know (a generator bug, never
data to guess at). Columns are read as floats with NaN for missing, as a model sees them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datasets.base import FloatArray

__all__ = ["expit", "float_column", "level_offsets", "soft_hinge"]


def expit(x: FloatArray) -> FloatArray:
    """The logistic function, via tanh so that no large |x| overflows."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), dtype=float)


def soft_hinge(x: FloatArray, width: float) -> FloatArray:
    """A hinge max(0, x) rounded over about `width`: learnable by trees without a cliff."""
    return np.asarray(width * np.logaddexp(0.0, x / width), dtype=float)


def float_column(frame: pd.DataFrame, name: str) -> FloatArray:
    """Column `name` as floats, missing values as NaN."""
    return frame[name].to_numpy(dtype=float, na_value=np.nan)


def level_offsets(frame: pd.DataFrame, name: str, logits: dict[str, float]) -> FloatArray:
    """Map a categorical column to logit offsets; an unknown level would be a bug, so raise.

    Factorising first means the dictionary is consulted once per level, not once per row.
    """
    codes, levels = pd.factorize(frame[name], use_na_sentinel=False)
    unknown = sorted(str(level) for level in levels if level not in logits)
    if unknown:
        raise ValueError(f"column {name!r} has levels the risk function does not know: {unknown}")
    return np.asarray([logits[level] for level in levels], dtype=float)[codes]
