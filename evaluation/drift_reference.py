"""Reference profiles: the training population, summarised to travel with its model.

Why a profile and not the training rows: the model registry keeps what a model needs to be
checked later, and raw applications must not travel with a model (they are personal data and
they are large). So :func:`build_reference` summarises the training split once into a
:class:`ReferenceProfile` -- per numeric feature the inner bin edges from reference quantiles,
the share of rows per bin and 101 percentiles; per categorical feature the share of every
level; the missing share of each; the same for the model's score -- and that JSON is stored
with the model. Its size depends on ``bins`` and the number of levels, never on the rows.
No number in it is a column's exact smallest or largest value, which is usually one
applicant's: the 0th and 100th percentiles are stored rounded outward, past the data,
unless at least a percent of the rows share that value (:func:`_outside_the_ends`).

:mod:`evaluation.drift` measures a batch against a profile. Building the profile, reading
it back from its JSON and the binning that building and measuring share all live here, so
the measuring module imports this one and never the other way round.

Speed: every numeric column is binned once, against the union of its PSI edges and its
percentiles; PSI bin counts (sums of those fine bins) and the batch CDF (their cumulative sum)
both come from that one count. The binning itself avoids a binary search per value: see
:class:`_Buckets`. ``benchmarks/drift.py`` measures it against a bare numpy PSI.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "FeatureProfile",
    "Grid",
    "ReferenceProfile",
    "build_reference",
    "check_frame",
    "frame_column",
    "level_counts",
    "numeric_values",
    "score_values",
]

#: Percentiles 0, 1, ..., 100 of each numeric feature: enough for KS to within 0.01.
N_QUANTILES = 101
#: Name of the score's profile, and how it is labelled in messages.
SCORE = "score"
#: Version of the profile JSON layout; a loader refuses layouts it does not know.
PROFILE_FORMAT = 1
#: How far shares may sum away from 1 and still count as a distribution.
SHARE_TOLERANCE = 1e-6
#: Buckets of the constant-time binning; 16k keeps the lookup tables inside the L2 cache.
_BUCKETS = 1 << 14
#: Up to this many fine-bin points, numpy's binary search is as cheap as the buckets.
_SMALL_GRID = 16
#: Below this many values, building the bucket tables costs more than it saves.
_BUCKET_MIN_ROWS = 10_000

_Floats = NDArray[np.float64]
_Counts = NDArray[np.int64]


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True)
class FeatureProfile:
    """What the reference looked like for one feature (or the score): bins, shares, percentiles.

    ``shares`` are shares of *all* reference rows, so ``sum(shares) + missing_share == 1``:
    the PSI vector is ``shares`` followed by the missing bin. The invariants are checked on
    construction, so a profile read back from a hand-edited JSON cannot be inconsistent.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    edges: tuple[float, ...]  # numeric: inner bin edges from reference quantiles (deduplicated)
    shares: tuple[float, ...]  # numeric: share per bin (len(edges)+1); categorical: per level
    levels: tuple[str, ...]  # categorical: reference levels
    missing_share: float
    quantiles: tuple[float, ...]  # numeric: 101 reference percentiles, for KS without raw rows

    def __post_init__(self) -> None:
        where = f"profile of {self.name!r}"
        if self.kind == "numeric":
            if len(self.shares) != len(self.edges) + 1 or self.levels:
                raise ValueError(f"{where}: a numeric profile has len(edges) + 1 shares, no levels")
            if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
                raise ValueError(f"{where}: edges must be strictly increasing")
            if len(self.quantiles) not in (0, N_QUANTILES):
                raise ValueError(f"{where}: needs {N_QUANTILES} percentiles (or none)")
            if any(b < a for a, b in zip(self.quantiles, self.quantiles[1:], strict=False)):
                raise ValueError(f"{where}: percentiles must be non-decreasing")
        elif self.kind == "categorical":
            if len(self.shares) != len(self.levels) or self.edges or self.quantiles:
                raise ValueError(f"{where}: a categorical profile has one share per level only")
            if len(set(self.levels)) != len(self.levels):
                raise ValueError(f"{where}: levels must be distinct")
        else:
            raise ValueError(f"{where}: kind must be 'numeric' or 'categorical', not {self.kind!r}")
        values = (*self.edges, *self.shares, *self.quantiles, self.missing_share)
        if not all(math.isfinite(v) for v in values):
            raise ValueError(f"{where}: edges, shares and percentiles must be finite")
        if min((*self.shares, self.missing_share)) < 0:
            raise ValueError(f"{where}: shares must not be negative")
        total = math.fsum(self.shares) + self.missing_share
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(f"{where}: shares and missing_share sum to {total:.6g}, not 1")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "edges": list(self.edges),
            "shares": list(self.shares),
            "levels": list(self.levels),
            "missing_share": self.missing_share,
            "quantiles": list(self.quantiles),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeatureProfile:
        try:
            return cls(
                name=str(data["name"]),
                kind=data["kind"],
                edges=tuple(float(v) for v in data["edges"]),
                shares=tuple(float(v) for v in data["shares"]),
                levels=tuple(str(v) for v in data["levels"]),
                missing_share=float(data["missing_share"]),
                quantiles=tuple(float(v) for v in data["quantiles"]),
            )
        except KeyError as err:
            raise ValueError(f"reference profile JSON: a feature lacks the key {err}") from None
        except TypeError as err:
            raise ValueError(f"reference profile JSON: malformed feature ({err})") from None


@dataclass(frozen=True)
class ReferenceProfile:
    """The training split's distribution, stored with the model as JSON; never any raw rows."""

    features: tuple[FeatureProfile, ...]
    score: FeatureProfile | None  # distribution of the model's score/probability
    n_rows: int
    bins: int

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PROFILE_FORMAT,
            "n_rows": self.n_rows,
            "bins": self.bins,
            "features": [f.to_json() for f in self.features],
            "score": None if self.score is None else self.score.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Read what :meth:`to_json` wrote (after a trip through ``json``); checks the layout."""
        if not isinstance(data, Mapping):
            raise ValueError("reference profile JSON must be an object")
        if data.get("format") != PROFILE_FORMAT:
            raise ValueError(
                f"reference profile JSON has format {data.get('format')!r}; this version of "
                f"creditgov reads format {PROFILE_FORMAT}: rebuild the profile with build_reference"
            )
        missing = [k for k in ("n_rows", "bins", "features", "score") if k not in data]
        if missing:
            raise ValueError(f"reference profile JSON lacks {', '.join(map(repr, missing))}")
        score = data["score"]
        return cls(
            features=tuple(FeatureProfile.from_json(f) for f in data["features"]),
            score=None if score is None else FeatureProfile.from_json(score),
            n_rows=int(data["n_rows"]),
            bins=int(data["bins"]),
        )


# --------------------------------------------------------------------------- binning


class _Buckets:
    """Place values among sorted points with a few vectorised passes instead of a binary search.

    ``np.searchsorted`` costs one unpredictable branch per level of its binary search, per
    value; with ~100 points that is the whole cost of a drift check. Here a value first gets a
    bucket by arithmetic, ``trunc(clip((x - lo) * scale, 0, B))`` over ``B`` equal buckets
    spanning the reference's 1st-99th percentiles (so one outlier cannot squeeze every point
    into one bucket). That map is monotone in floating point (subtraction, multiplication by a
    positive number, clipping and truncation all are), and the points get their buckets from
    the same map; so every point in an earlier bucket than a value's is below it and every
    point in a later bucket is above it. Exact, not approximate:

    * bucket without a point: the value's position is the number of points in earlier buckets;
    * bucket with one point: that, plus one if the value is above the point -- one compare,
      which also settles the common case of a value *equal* to a point (integer counts, a mass
      at zero);
    * bucket with two or more points (the clipped tails, points closer than a bucket width):
      those few values go through ``np.searchsorted``.
    """

    def __init__(self, points: _Floats, low: float, high: float) -> None:
        width = (high - low) / (_BUCKETS - 2)
        self.lo = low - width
        self.scale = _BUCKETS / ((high + width) - self.lo)
        self.points = points
        where = self._bucket(points)
        per_bucket = np.bincount(where, minlength=_BUCKETS + 2)
        # position of the first point of each bucket = points in earlier buckets
        self.base = np.searchsorted(where, np.arange(_BUCKETS + 2), side="left")
        self.threshold = np.full(_BUCKETS + 2, np.inf)
        single = per_bucket[where] == 1
        self.threshold[where[single]] = points[single]
        shared = per_bucket > 1
        self.shared_codes = np.repeat(shared, 2)  # indexed by 2 * bucket + above
        self.has_shared = bool(shared.any())
        keep = ~shared
        keep[_BUCKETS + 1] = False  # the missing values' bucket: counted apart
        self.keep = keep
        self.keep_base = self.base[keep]

    @staticmethod
    def usable(low: float, high: float) -> bool:
        if not (math.isfinite(low) and math.isfinite(high) and high > low):
            return False
        width = (high - low) / (_BUCKETS - 2)
        span = (high + width) - (low - width)
        return math.isfinite(span) and span > 0 and math.isfinite(_BUCKETS / span)

    def _position(self, values: _Floats) -> _Floats:
        t = np.subtract(values, self.lo)
        t *= self.scale
        np.clip(t, 0, _BUCKETS, out=t)  # NaN stays NaN
        return t

    def _bucket(self, values: _Floats) -> NDArray[np.intp]:
        return self._position(values).astype(np.intp)

    def counts(self, values: _Floats, missing: NDArray[np.bool_]) -> _Counts:
        n_points = self.points.size
        t = self._position(values)
        np.copyto(t, _BUCKETS + 1, where=missing)
        code = t.astype(np.intp)
        del t
        above = np.take(self.threshold, code) < values  # NaN compares False
        code <<= 1
        code += above
        del above
        per_code = np.bincount(code, minlength=2 * (_BUCKETS + 2)).reshape(_BUCKETS + 2, 2)
        base = self.keep_base
        fine = np.bincount(base, weights=per_code[self.keep, 0], minlength=n_points + 2)
        fine += np.bincount(base + 1, weights=per_code[self.keep, 1], minlength=n_points + 2)
        out = np.rint(fine[: n_points + 1]).astype(np.int64)
        if self.has_shared:
            crowded = values[np.take(self.shared_codes, code)]
            if crowded.size:
                at = np.searchsorted(self.points, crowded, side="left")
                out += np.bincount(at, minlength=n_points + 1)
        return out


class Grid:
    """The fine bins of one numeric profile: the union of its PSI edges and its percentiles.

    One count per fine bin gives both the PSI bins (sums of fine bins) and the batch CDF at
    every reference percentile (cumulative sums), so PSI and KS cost one pass together.
    Fine bin ``j`` holds ``points[j-1] < x <= points[j]`` (right-closed, like the PSI bins).
    """

    def __init__(self, edges: Sequence[float], quantiles: Sequence[float]) -> None:
        edge_array = np.asarray(edges, dtype=np.float64)
        q = np.asarray(quantiles, dtype=np.float64)
        self.points: _Floats = np.union1d(edge_array, q)
        n_points = self.points.size
        edge_at = np.searchsorted(self.points, edge_array)
        # PSI bin of each fine bin = number of edges below it
        self.coarse = np.searchsorted(edge_at, np.arange(n_points + 1), side="left")
        self.n_coarse = edge_array.size + 1
        self.quantiles = q
        # Reference CDF at each distinct percentile value: the highest percentile equal to it
        # (a mass point such as 0 spans several percentiles).
        last = np.r_[q[1:] != q[:-1], True] if q.size else np.zeros(0, dtype=bool)
        self.ks_at = np.searchsorted(self.points, q[last])
        self.ks_ref = np.flatnonzero(last) / max(q.size - 1, 1)
        low, high = (q[1], q[-2]) if q.size else (math.nan, math.nan)
        if q.size and not high > low:
            low, high = q[0], q[-1]
        self._range = (
            (float(low), float(high))
            if n_points > _SMALL_GRID and _Buckets.usable(low, high)
            else None
        )
        self._buckets: _Buckets | None = None

    def buckets(self, n_values: int) -> _Buckets | None:
        """The bucket tables, when they pay for themselves on this many values (built once)."""
        if self._range is None or n_values < _BUCKET_MIN_ROWS:
            return None
        if self._buckets is None:
            self._buckets = _Buckets(self.points, *self._range)
        return self._buckets

    def fine_counts(self, values: _Floats) -> tuple[_Counts, int]:
        """Non-missing values per fine bin, and the number of missing values."""
        missing = np.isnan(values)
        n_missing = int(np.count_nonzero(missing))
        buckets = self.buckets(values.size)
        if buckets is not None:
            return buckets.counts(values, missing), n_missing
        at = np.searchsorted(self.points, values, side="left")  # NaN sorts last: bin n_points
        fine = np.bincount(at, minlength=self.points.size + 1).astype(np.int64)
        fine[-1] -= n_missing
        return fine, n_missing

    def coarse_counts(self, fine: _Counts) -> _Counts:
        counts = np.bincount(self.coarse, weights=fine, minlength=self.n_coarse)
        return np.rint(counts).astype(np.int64)

    def ks(self, fine: _Counts, values: _Floats) -> float:
        """Largest gap between the reference CDF (at its percentiles) and the batch CDF."""
        n_known = int(fine.sum())
        if not self.quantiles.size or n_known == 0:
            return math.nan
        cdf = np.cumsum(fine)[self.ks_at] / n_known
        gap = float(np.max(np.abs(cdf - self.ks_ref)))
        # Below the reference minimum the reference CDF is 0: batch values there are all gap.
        below = int(np.count_nonzero(values < self.quantiles[0])) / n_known
        return max(gap, below)


# --------------------------------------------------------------------------- columns


def numeric_values(column: pd.Series, name: str, role: str) -> _Floats:
    if column.dtype == np.float64:
        return column.to_numpy()
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    if column.isna().all():
        return np.full(len(column), np.nan)
    raise ValueError(
        f"column {name!r} is numeric in the reference but holds {column.dtype} values in the "
        f"{role}; pass the features as the model was trained on them"
    )


def level_counts(column: pd.Series) -> tuple[dict[str, int], int]:
    """Rows per level (compared as text, as ``load_dataset`` stores them) and missing rows."""
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    counts = np.bincount(codes + 1, minlength=len(uniques) + 1)
    levels: dict[str, int] = {}
    for level, count in zip(uniques, counts[1:].tolist(), strict=True):
        key = str(level)
        levels[key] = levels.get(key, 0) + count
    return levels, int(counts[0])


def frame_column(features: pd.DataFrame, name: str) -> pd.Series:
    column = features[name]
    if isinstance(column, pd.DataFrame):
        raise ValueError(f"column {name!r} appears more than once; column names must be unique")
    return column


def check_frame(features: object, role: str) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame):
        raise ValueError(f"the {role} must be a pandas DataFrame, got {type(features).__name__}")
    if len(features) == 0:
        raise ValueError(f"the {role} is empty; drift needs at least one row")
    return features


def score_values(scores: ArrayLike, n_rows: int) -> _Floats:
    try:
        arr = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError("scores must be numbers, one per row") from err
    if arr.ndim != 1 or arr.size != n_rows:
        raise ValueError(f"scores must be 1-D with one value per row ({n_rows}), got {arr.shape}")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(f"scores contain {bad} NaN/inf values; score every row")
    return arr


# --------------------------------------------------------------------------- build


def build_reference(
    features: pd.DataFrame,
    *,
    categorical: Sequence[str],
    scores: ArrayLike | None = None,
    bins: int = 10,
) -> ReferenceProfile:
    """Summarise the training split (and the model's scores on it) into a reference profile.

    Every column of ``features`` is profiled: numeric columns by ``bins`` equal-count bins and
    101 percentiles, the ``categorical`` ones by level. Infinite values are refused, as in
    ``load_dataset``: a percentile of ``inf`` would make every later bin meaningless.
    """
    frame = check_frame(features, "reference")
    if isinstance(bins, bool) or not isinstance(bins, numbers.Integral) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    if frame.shape[1] == 0:
        raise ValueError("the reference has no feature columns")
    if isinstance(categorical, str):
        raise ValueError("categorical must be a sequence of column names, not one string")
    cats = set(categorical)
    unknown = [c for c in categorical if c not in frame.columns]
    if unknown:
        raise ValueError(
            f"categorical names {', '.join(map(repr, unknown))}, not a column of the reference"
        )
    profiles = []
    for name in frame.columns:
        column = frame_column(frame, name)
        if name in cats:
            profiles.append(_categorical_profile(str(name), column))
        else:
            values = numeric_values(column, str(name), "reference")
            profiles.append(_numeric_profile(str(name), values, int(bins)))
    score = None
    if scores is not None:
        score = _numeric_profile(SCORE, score_values(scores, len(frame)), int(bins))
    return ReferenceProfile(
        features=tuple(profiles), score=score, n_rows=len(frame), bins=int(bins)
    )


def _numeric_profile(name: str, values: _Floats, bins: int) -> FeatureProfile:
    known = values[~np.isnan(values)]
    if np.isinf(known).any():
        raise ValueError(
            f"column {name!r} has {int(np.isinf(known).sum())} infinite values; replace ±inf "
            f"with a number or leave the cell empty (missing)"
        )
    if known.size:
        percent = np.arange(N_QUANTILES) / (N_QUANTILES - 1)
        cuts = np.arange(1, bins) / bins
        probs = np.union1d(percent, cuts)  # one partial sort for both
        at = np.quantile(known, probs)
        # Interpolation can wobble in the last bit; the CDF reading needs them monotone.
        at = np.maximum.accumulate(at)
        quantiles = _outside_the_ends(at[np.searchsorted(probs, percent)])
        edges = np.unique(at[np.searchsorted(probs, cuts)])
    else:
        quantiles = edges = np.empty(0)
    grid = Grid(edges.tolist(), quantiles.tolist())
    fine, n_missing = grid.fine_counts(values)
    shares = grid.coarse_counts(fine) / values.size
    return FeatureProfile(
        name=name,
        kind="numeric",
        edges=tuple(edges.tolist()),
        shares=tuple(shares.tolist()),
        levels=(),
        missing_share=n_missing / values.size,
        quantiles=tuple(quantiles.tolist()),
    )


def _outside_the_ends(quantiles: _Floats) -> _Floats:
    """The 0th and 100th percentiles moved just outside the reference's values.

    They are the smallest and largest value, each usually one applicant's (the top income,
    a phone number kept as a feature), and a profile travels with the model. Each end is
    rounded outward to a power of ten between a hundredth and a tenth of the 1st-99th
    percentile range (one step further when it lies on that grid), so it is never a value
    a row holds and tells that value only to a step of the spread. KS reads the
    ends as "the reference CDF is 0 here" and "1 here", which stays true; PSI does not
    use them. An end equal to its neighbour (the 1st or 99th percentile) is a value at
    least a percent of the rows share, a mass point such as 0 delinquencies, and stays:
    it is nobody's own, and KS needs it to see a batch below it. The percentiles between
    are left exact for the same reason.
    """
    q = quantiles.copy()
    if q.size < 3:
        return q
    low, high = float(q[0]), float(q[-1])
    spread = float(q[-2] - q[1])
    if not spread > 0:
        spread = high - low if high > low else max(abs(low), abs(high), 1.0)
    step = 10.0 ** math.floor(math.log10(spread / 10))
    if low < q[1]:
        q[0] = _rounded_past(low, step, -1)
    if high > q[-2]:
        q[-1] = _rounded_past(high, step, +1)
    return q


def _rounded_past(value: float, step: float, direction: int) -> float:
    """`value` rounded away from the data (down for -1, up for +1) to a multiple of `step`,
    strictly past it; the step grows where floating point cannot tell it from `value`."""
    step = max(step, 10.0 ** (math.floor(math.log10(abs(value))) - 12) if value else step)
    while math.isfinite(step):
        digits = -math.floor(math.log10(step))
        ratio = value / step
        grid = math.floor(ratio) if direction < 0 else math.ceil(ratio)
        out = round(grid * step, digits)
        if (out >= value) if direction < 0 else (out <= value):
            out = round((grid + direction) * step, digits)
        if math.isfinite(out) and ((out < value) if direction < 0 else (out > value)):
            return out
        step *= 10.0
    return value  # beyond the largest float: nothing to round to


def _categorical_profile(name: str, column: pd.Series) -> FeatureProfile:
    counts, n_missing = level_counts(column)
    levels = tuple(sorted(counts))
    n_rows = len(column)
    return FeatureProfile(
        name=name,
        kind="categorical",
        edges=(),
        shares=tuple(counts[level] / n_rows for level in levels),
        levels=levels,
        missing_share=n_missing / n_rows,
        quantiles=(),
    )
