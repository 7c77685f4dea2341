"""What every generator returns: `SyntheticData`, a table and the truth its labels came from.

Every table is made the same way: draw the features, compute the true probability from the
finished feature columns, draw the label from it last (`draw_label`), and return the truth
beside the table, never in it, because a user never has it. `check_rows` is the one check
of the size argument both generators take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

__all__ = [
    "TRUTH_COLUMN",
    "FloatArray",
    "IntArray",
    "SyntheticData",
    "check_rows",
    "draw_label",
]

FloatArray = np.ndarray
IntArray = np.ndarray

TRUTH_COLUMN: Final = "true_probability"


@dataclass(frozen=True)
class SyntheticData:
    """A synthetic table and the probability each of its labels was drawn from.

    `truth` is kept out of `frame` because a user never has it: it exists to measure how
    close a model comes to the best possible (the Bayes AUC / log-loss on the same rows).
    """

    frame: pd.DataFrame
    truth: pd.Series
    id_column: str


def check_rows(rows: int) -> int:
    """`rows` as an int, or a ValueError for a bool, a non-integer or fewer than one row."""
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1:
        raise ValueError(f"rows must be a positive integer, got {rows!r}")
    return int(rows)


def draw_label(
    frame: pd.DataFrame, truth: FloatArray, target: str, id_column: str, rng: np.random.Generator
) -> SyntheticData:
    """Draw the label from the truth, last, so the truth is a function of the final table."""
    frame[target] = (rng.random(len(frame)) < truth).astype(np.int64)
    return SyntheticData(
        frame=frame,
        truth=pd.Series(truth, index=frame.index, name=TRUTH_COLUMN),
        id_column=id_column,
    )
