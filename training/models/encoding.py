"""How a feature table becomes the numeric matrix a model sees.

Categorical levels are fixed from the training split and stored with the model, so
the served model maps a level to the same code years later; a level it never saw
becomes missing rather than a crash. `registry/scoring_model.py` repeats this mapping
(it may import nothing of ours); a test pins the two to the same predictions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["FeatureSpec", "encode", "feature_specs"]


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    kind: Literal["numeric", "categorical"]
    levels: tuple[str, ...] = ()
    dtype: Literal["double", "long", "string"] = "double"  # the column type serving expects

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "dtype": self.dtype}
        if self.kind == "categorical":
            out["levels"] = list(self.levels)
        return out


def feature_specs(
    features: pd.DataFrame, categorical: Sequence[str], integer: Sequence[str] = ()
) -> tuple[FeatureSpec, ...]:
    """One spec per column, levels sorted so the codes do not depend on row order.

    A kind computes them once from the train split (`ModelKind.inputs`) and every later
    step reads them from the `ModelInputs` or the fitted model it is handed.
    """
    specs = []
    for name in features.columns:
        if name in categorical:
            _, uniques = pd.factorize(features[name], use_na_sentinel=True)
            levels = sorted({str(v) for v in uniques})
            specs.append(FeatureSpec(name, "categorical", tuple(levels), dtype="string"))
        else:
            specs.append(
                FeatureSpec(name, "numeric", dtype="long" if name in integer else "double")
            )
    return tuple(specs)


def encode(frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> NDArray[np.float64]:
    """Column-major float matrix: numbers as they are, levels as codes, unknown as NaN."""
    out = np.empty((len(frame), len(specs)), dtype=np.float64, order="F")
    for j, spec in enumerate(specs):
        column = frame[spec.name]
        if spec.kind == "categorical":
            # Look up each distinct value once: factorize the column, find each distinct
            # value's level as text (numbers used as levels match as text; get_indexer
            # gives -1 for a level not seen in training), then index by row. A trailing -1
            # serves missing rows, whose factorize code -1 picks the last entry.
            rows, uniques = pd.factorize(column, use_na_sentinel=True)
            known = pd.Index(list(spec.levels), dtype=object)
            level_of = known.get_indexer(pd.Index([str(v) for v in uniques], dtype=object))
            codes = np.append(level_of, -1)[rows]
            out[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
    return out
