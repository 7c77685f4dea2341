"""Population drift: PSI per feature and for the score, KS for numerics, new levels.

The profile measured against -- what the training split looked like, built once by
:func:`evaluation.drift_reference.build_reference` and stored with the model, never its
rows -- lives in :mod:`evaluation.drift_reference`; this module only compares.
:func:`compare` measures any batch (valid / test inside the job, a new month of
applications in ``creditgov drift``; no labels needed) against that profile:

* **PSI** (population stability index) per feature and for the score,
  ``sum((a - e) * ln(a / e))`` over the bins, with ``e`` the reference share and ``a`` the
  batch share. Conventional bands, used by credit-risk validation teams:

  - ``< 0.10``       stable
  - ``0.10 - 0.25``  moderate shift: look at it
  - ``> 0.25``       significant shift: the model is scoring a population it was not built on

  ``psi_max`` (the largest feature PSI) is the gate metric; a feature over ``threshold``
  (default 0.25) is listed in ``drifted``.
* **Bins.** Numeric features use ``bins`` equal-count bins of the reference (deciles by
  default; edges deduplicated, so a feature with many ties gets fewer bins), right-closed:
  bin ``i`` holds ``edges[i-1] < x <= edges[i]``. Categorical features use one bin per
  reference level plus one "unseen" bin for levels the reference never had (reference share 0,
  counted per level in ``new_levels``; ``to_json`` names them only for the features in
  ``named_levels``, and gives the others a count of levels, since a text column's "level"
  may be a name someone typed). Both kinds add a bin for missing values, so a rise in
  missingness is drift like any other; a batch column that is entirely missing is allowed and
  shows as a very large PSI.
* **Empty bins.** A share of 0 makes ``ln(a / e)`` infinite, so both share vectors are floored
  at :data:`PSI_FLOOR` (``1e-4``, one row in ten thousand) before the sum, without
  renormalising. Identical vectors still give exactly 0; a bin that only one side uses
  contributes about ``share * ln(share / 1e-4)`` (0.2 * ln 2000 = 1.5 for a 20 % bin).
* **KS** (two-sample Kolmogorov-Smirnov distance) for numeric features, without the reference
  rows: the reference CDF is known at its 101 percentiles, the batch CDF is counted exactly at
  those points, and the largest gap between them is reported (plus the batch share below the
  reference minimum). Between two adjacent percentiles the reference CDF rises by 0.01, so for
  a continuous reference this is within about 0.01 of ``scipy.stats.ks_2samp`` on the raw rows.
  Missing values are left out of KS (the missing bin of the PSI covers them). KS is NaN when
  either side has no non-missing value.

Speed: PSI and KS of a numeric column come from one binning pass
(:class:`evaluation.drift_reference.Grid`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from evaluation.drift_reference import SHARE_TOLERANCE as _SHARE_TOLERANCE
from evaluation.drift_reference import FeatureProfile, ReferenceProfile
from evaluation.drift_reference import Grid as _Grid
from evaluation.drift_reference import check_frame as _check_frame
from evaluation.drift_reference import frame_column as _frame_column
from evaluation.drift_reference import level_counts as _level_counts
from evaluation.drift_reference import numeric_values as _numeric_values
from evaluation.drift_reference import score_values as _score_values

__all__ = [
    "PSI_FLOOR",
    "PSI_MODERATE",
    "PSI_SIGNIFICANT",
    "DriftResult",
    "compare",
    "psi",
]

#: Shares below this count as this in PSI, so an empty bin adds a large finite term, not inf.
PSI_FLOOR = 1e-4
#: PSI from here up is a moderate shift.
PSI_MODERATE = 0.1
#: PSI above this is a significant shift; the default drift threshold.
PSI_SIGNIFICANT = 0.25

_Floats = NDArray[np.float64]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class DriftResult:
    """A batch measured against a reference profile. See the module docstring for the bands."""

    psi: Mapping[str, float]  # every feature, in the reference's order
    ks: Mapping[str, float]  # numeric features only; NaN where a side has no values
    score_psi: float | None  # None when no scores were given or the profile has none
    new_levels: Mapping[str, Mapping[str, int]]  # feature -> unseen level -> rows
    missing: Mapping[str, tuple[float, float]]  # feature -> (reference share, batch share)
    psi_max: float
    threshold: float
    drifted: tuple[str, ...]  # psi > threshold, largest psi first
    n_rows: int
    #: features whose unseen levels `to_json` lists by name (declared categoricals, whose
    #: levels are codes); any other gets the number of its unseen levels, never the texts
    named_levels: frozenset[str] = frozenset()

    def to_json(self) -> dict[str, Any]:
        """The ``creditgov drift --json`` shape (CLI.md); NaN is written as null.

        ``new_levels`` maps a feature to ``{level: rows}`` when it is in ``named_levels``,
        else to how many distinct unseen levels it had: a free-text column's new "levels"
        are whatever people typed (names, phone numbers), and must not be copied out.
        """
        return {
            "psi": {k: _json_float(v) for k, v in self.psi.items()},
            "ks": {k: _json_float(v) for k, v in self.ks.items()},
            "score_psi": None if self.score_psi is None else _json_float(self.score_psi),
            "new_levels": {
                k: dict(v) if k in self.named_levels else len(v) for k, v in self.new_levels.items()
            },
            "missing": {k: [ref, new] for k, (ref, new) in self.missing.items()},
            "psi_max": _json_float(self.psi_max),
            "threshold": self.threshold,
            "drifted": list(self.drifted),
            "n_rows": self.n_rows,
        }

    def table(self) -> pd.DataFrame:
        """One row per feature, largest PSI first: what a reviewer reads in the report."""
        rows = [
            {
                "feature": name,
                "kind": "numeric" if name in self.ks else "categorical",
                "psi": value,
                "ks": self.ks.get(name, math.nan),
                "missing_ref": self.missing[name][0],
                "missing_new": self.missing[name][1],
                "new_levels": len(self.new_levels.get(name, {})),
                "drifted": value > self.threshold,
            }
            for name, value in self.psi.items()
        ]
        table = pd.DataFrame(
            rows,
            columns=[
                "feature",
                "kind",
                "psi",
                "ks",
                "missing_ref",
                "missing_new",
                "new_levels",
                "drifted",
            ],
        )
        return table.sort_values("psi", ascending=False, kind="stable").reset_index(drop=True)


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


# --------------------------------------------------------------------------- PSI


def psi(expected: ArrayLike, actual: ArrayLike) -> float:
    """Population stability index of two share vectors over the same bins.

    Each vector holds the share of rows in every bin (missing bin included) and sums to 1.
    Shares are floored at :data:`PSI_FLOOR` so that an empty bin gives a large but finite term.
    Bands: < 0.1 stable, 0.1-0.25 moderate, > 0.25 significant.
    """
    e = _shares("expected", expected)
    a = _shares("actual", actual)
    if e.shape != a.shape:
        raise ValueError(f"expected and actual have different bin counts: {e.size} != {a.size}")
    return _psi(e, a)


def _shares(name: str, values: ArrayLike) -> _Floats:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numeric shares") from err
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D vector of shares, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or arr.min() < 0:
        raise ValueError(f"{name} shares must be finite and non-negative")
    total = float(arr.sum())
    if abs(total - 1.0) > _SHARE_TOLERANCE:
        raise ValueError(
            f"{name} shares sum to {total:.6g}, not 1; pass the share of every bin, missing included"
        )
    return arr


def _psi(expected: _Floats, actual: _Floats) -> float:
    e = np.maximum(expected, PSI_FLOOR)
    a = np.maximum(actual, PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


# --------------------------------------------------------------------------- compare


def compare(
    reference: ReferenceProfile,
    features: pd.DataFrame,
    *,
    scores: ArrayLike | None = None,
    threshold: float = PSI_SIGNIFICANT,
) -> DriftResult:
    """Measure a batch (no labels needed) against a reference profile.

    ``features`` must hold every feature of the profile (extra columns are ignored).
    ``scores`` are the model's scores on the batch; they give ``score_psi``.
    """
    frame = _check_frame(features, "batch")
    if not reference.features:
        raise ValueError("the reference profile has no features; rebuild it with build_reference")
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    if not (math.isfinite(threshold) and threshold > 0):
        raise ValueError(f"threshold must be a positive PSI such as 0.25, got {threshold!r}")
    absent = [f.name for f in reference.features if f.name not in frame.columns]
    if len(absent) == 1:
        raise ValueError(
            f"column {absent[0]!r} is missing from the batch; drift needs every model feature"
        )
    if absent:
        raise ValueError(
            f"columns {', '.join(map(repr, absent))} are missing from the batch; drift needs "
            f"every model feature"
        )
    score_values = None
    if scores is not None:
        if reference.score is None:
            raise ValueError(
                "scores were given but the reference profile has no score distribution; "
                "build the reference with the model's scores on the training split"
            )
        score_values = _score_values(scores, len(frame))

    n_rows = len(frame)
    psis: dict[str, float] = {}
    ks: dict[str, float] = {}
    new_levels: dict[str, dict[str, int]] = {}
    missing: dict[str, tuple[float, float]] = {}
    for profile in reference.features:
        column = _frame_column(frame, profile.name)
        if profile.kind == "numeric":
            values = _numeric_values(column, profile.name, "batch")
            psis[profile.name], ks[profile.name], n_missing = _numeric_drift(profile, values)
        else:
            psis[profile.name], unseen, n_missing = _categorical_drift(profile, column)
            if unseen:
                new_levels[profile.name] = unseen
        missing[profile.name] = (profile.missing_share, n_missing / n_rows)

    score_psi = None
    if score_values is not None and reference.score is not None:
        score_psi = _numeric_drift(reference.score, score_values)[0]
    drifted = sorted((name for name, v in psis.items() if v > threshold), key=lambda n: -psis[n])
    return DriftResult(
        psi=psis,
        ks=ks,
        score_psi=score_psi,
        new_levels=new_levels,
        missing=missing,
        psi_max=max(psis.values()),
        threshold=float(threshold),
        drifted=tuple(drifted),
        n_rows=n_rows,
    )


def _numeric_drift(profile: FeatureProfile, values: _Floats) -> tuple[float, float, int]:
    """PSI, KS and missing count of one numeric column: one binning pass."""
    grid = _Grid(profile.edges, profile.quantiles)
    fine, n_missing = grid.fine_counts(values)
    actual = np.append(grid.coarse_counts(fine), n_missing) / values.size
    expected = np.array([*profile.shares, profile.missing_share])
    return _psi(expected, actual), grid.ks(fine, values), n_missing


def _categorical_drift(
    profile: FeatureProfile, column: pd.Series
) -> tuple[float, dict[str, int], int]:
    """PSI over reference levels + one unseen bin + the missing bin; unseen levels by rows."""
    counts, n_missing = _level_counts(column)
    known = set(profile.levels)
    unseen = {level: n for level, n in counts.items() if level not in known}
    rows = np.array(
        [*(counts.get(level, 0) for level in profile.levels), sum(unseen.values()), n_missing],
        dtype=np.float64,
    )
    expected = np.array([*profile.shares, 0.0, profile.missing_share])
    ordered = dict(sorted(unseen.items(), key=lambda kv: (-kv[1], kv[0])))
    return _psi(expected, rows / len(column)), ordered, n_missing
