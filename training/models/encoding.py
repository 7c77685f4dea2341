"""How a feature table becomes the numeric matrix a model sees.

Categorical levels are fixed from the training split and stored with the model, so
the served model maps a level to the same code years later; a level it never saw
becomes missing rather than a crash. `registry/scoring_model.py` repeats this mapping
(it may import nothing of ours); a test pins the two to the same predictions.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["FeatureSpec", "encode", "encoded", "feature_specs"]


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


#: Specs by the id of the frame they came from, then by the (categorical, integer) names.
_SPECS: dict[int, dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[FeatureSpec, ...]]] = {}


def feature_specs(
    features: pd.DataFrame, categorical: Sequence[str], integer: Sequence[str] = ()
) -> tuple[FeatureSpec, ...]:
    """One spec per column, levels sorted so the codes do not depend on row order.

    Remembered for as long as `features` lives, as `encoded` remembers matrices: the
    job asks for the train split's specs while preparing, tuning and fitting, and a
    Dataset's frames are never changed after loading.
    """
    key = (tuple(categorical), tuple(integer))
    per_frame = _per_frame(_SPECS, features)
    specs = per_frame.get(key)
    if specs is None:
        specs = per_frame[key] = _feature_specs(features, categorical, integer)
    return specs


def _feature_specs(
    features: pd.DataFrame, categorical: Sequence[str], integer: Sequence[str]
) -> tuple[FeatureSpec, ...]:
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


#: Encoded matrices by the id of the frame they came from, then by the specs used.
_ENCODED: dict[int, dict[tuple[FeatureSpec, ...], NDArray[np.float64]]] = {}


def encoded(frame: pd.DataFrame, specs: Sequence[FeatureSpec]) -> NDArray[np.float64]:
    """`encode(frame, specs)`, computed once for as long as `frame` lives.

    A job encodes the same split many times: every tuning trial, the final fit, then
    scoring each split for the evidence. The frames of a Dataset are never changed after
    loading, so the matrix is remembered (read-only) and dropped with the frame.
    """
    key = tuple(specs)
    per_frame = _per_frame(_ENCODED, frame)
    matrix = per_frame.get(key)
    if matrix is None:
        matrix = encode(frame, key)
        matrix.flags.writeable = False
        per_frame[key] = matrix
    return matrix


_K = TypeVar("_K")
_V = TypeVar("_V")


def _per_frame(store: dict[int, dict[_K, _V]], frame: pd.DataFrame) -> dict[_K, _V]:
    """`store`'s entries for `frame` (by id), removed from `store` when `frame` is freed."""
    per_frame = store.get(id(frame))
    if per_frame is None:
        per_frame = store[id(frame)] = {}
        weakref.finalize(frame, store.pop, id(frame), None)
    return per_frame
