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
    """One spec per column, levels sorted so the codes do not depend on row order."""
    specs = []
    for name in features.columns:
        if name in categorical:
            levels = sorted(str(v) for v in pd.unique(features[name].dropna()))
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
            text = column.astype(object).where(column.notna(), None)
            if not pd.api.types.is_string_dtype(text):  # numbers used as levels: match as text
                text = text.map(lambda v: v if v is None else str(v))
            # get_indexer: -1 for a level not seen in training (pd.Categorical with unknown
            # values warns in pandas 3 and will raise in pandas 4).
            codes = pd.Index(list(spec.levels), dtype=object).get_indexer(pd.Index(text))
            out[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
    return out
