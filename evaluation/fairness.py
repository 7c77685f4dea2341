"""Group fairness of the decision: who is approved, and how the errors fall, per group.

Why this module: a credit model can rank well overall and still decline one group far
more often, or make its mistakes mostly in one group. A model-risk reviewer needs the
per-group numbers (to see *where*) and a few summary numbers a gate can test (to decide
*whether*). fairlearn's :class:`~fairlearn.metrics.MetricFrame` computes the per-group
numbers; this module fixes the conventions around it so every report means the same.

Conventions (shared with :mod:`evaluation.metrics`):

* ``y_true`` is 0/1 with 1 = bad (default); ``y_prob`` is the probability of bad.
* The model **declines when** ``y_prob >= threshold``. The *approval rate* is the share
  not declined.
* TPR / FPR treat "declined" as the predicted positive: TPR = share of bads declined,
  FPR = share of goods declined. Equalized odds asks that both be equal across groups.
* A rate that the data cannot define is ``NaN``, never a silent 0: AUC when a group holds
  one class only, TPR when it has no bads, FPR when it has no goods. (fairlearn's own
  ``true_positive_rate`` returns 0 there; counting that 0 would report a gap the data
  does not show, so such rates are left out of the equalized-odds gap instead.)

Groups:

* Every protected attribute on its own, plus -- when there are two or more -- their
  intersection (attribute ``"sex×age"``, groups like ``"F×25-34"``), because a disparity
  can hide in the marginals (young women treated worse while neither "women" nor
  "the young" look out of line). Only combinations present in the data appear.
* Numeric attributes are banded by ``evaluation.fairness.bins`` (see :func:`band`);
  a numeric attribute without bins is used as-is only if it has at most 20 distinct
  values, since a group per distinct income is no fairness table at all.
* Missing values form their own group ``"missing"``: applicants with an unrecorded
  attribute are people too, and dropping them would hide how they are treated.

Small groups: a group with fewer than ``min_group_size`` rows, or fewer than
``min_group_bads`` bads, or fewer than ``min_group_bads`` goods, is kept in the per-group
table with ``small=True`` but **excluded from the summary numbers**. On 5 rows one
applicant moves the approval rate by 20 points, and on 400 rows with 10 bads one default
moves the TPR by 10 points, so a screen on either would fail or pass on noise; showing
the group (rather than dropping it silently) lets the reviewer see who was not assessed.
:class:`AttributeSummary` lists the excluded groups and why.

Summaries and gates: each attribute (and the intersection) gets
``selection_rate_ratio`` (lowest / highest group approval rate, the four-fifths screen),
``demographic_parity_difference`` (highest - lowest approval rate; the same on the
decline decision) and ``equalized_odds_difference`` (the larger of the TPR gap and the
FPR gap). They equal fairlearn's ``demographic_parity_difference`` and
``equalized_odds_difference`` restricted to the counted groups, and are read off the
same per-group table the reviewer sees. :class:`FairnessResult` holds the worst of each
over the attributes. A summary that cannot be computed is ``NaN`` -- fewer than two
counted groups, nobody approved in any group, or no attribute at all (fraud models have
no protected columns) -- and a gate on ``NaN`` fails: ``NaN`` is never a pass, because
"could not check" must not read as "checked and fine". With ``n_boot > 0`` each summary
also carries a 95% bootstrap interval (:mod:`evaluation.fairness_intervals`).

fairlearn and scikit-learn are imported inside the functions that use them, so
importing this module stays cheap.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from evaluation import fairness_intervals as fi
from evaluation.metrics import check_scores, check_unit_interval

__all__ = [
    "MAX_UNBINNED_VALUES",
    "MIN_GROUP_BADS",
    "MIN_GROUP_SIZE",
    "MISSING",
    "AttributeSummary",
    "FairnessResult",
    "GroupMetrics",
    "assess_fairness",
    "band",
    "check_count",
    "groups_of",
    "protected_groups",
    "small_reason",
]

MISSING = "missing"
"""The group label for rows whose protected attribute is missing."""

MAX_UNBINNED_VALUES = 20
"""A numeric attribute without bins is used as-is only up to this many distinct values."""

INTERSECTION_SEP = "×"

MIN_GROUP_SIZE = 30
"""Default fewest rows a group needs to be judged."""

MIN_GROUP_BADS = 20
"""Default fewest bads -- and fewest goods -- a group needs to be judged."""


@dataclass(frozen=True)
class GroupMetrics:
    """One group's row of the fairness table.

    ``attribute`` is a protected column name, or the names joined by ``"×"`` for the
    intersection. ``small`` means fewer than ``min_group_size`` rows, or fewer than
    ``min_group_bads`` bads or goods: the row is shown but does not enter the summaries.
    """

    attribute: str
    group: str
    count: int
    bads: int
    goods: int
    approval_rate: float
    bad_rate: float
    auc: float
    tpr: float
    fpr: float
    small: bool


@dataclass(frozen=True)
class AttributeSummary:
    """The summary numbers of one attribute (or the intersection), over counted groups.

    ``lowest_group`` / ``highest_group`` are the counted groups with the lowest / highest
    approval rate (the first in table order on ties; ``""`` when no group is counted).
    ``group_sizes`` are the sizes of the groups behind the numbers; ``excluded_small``
    names the groups left out as small, and ``excluded_reasons`` says why for each
    (``"12 bads < 20"``). The ``*_ci`` fields are 95% bootstrap intervals, ``None`` when
    not computed (``n_boot=0``) or when the number itself is ``NaN``.
    """

    attribute: str
    selection_rate_ratio: float
    demographic_parity_difference: float
    equalized_odds_difference: float
    lowest_group: str
    highest_group: str
    group_sizes: Mapping[str, int]
    excluded_small: tuple[str, ...]
    excluded_reasons: Mapping[str, str]
    selection_rate_ratio_ci: fi.Interval | None = None
    demographic_parity_difference_ci: fi.Interval | None = None
    equalized_odds_difference_ci: fi.Interval | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "attribute": self.attribute,
            "selection_rate_ratio": _json_float(self.selection_rate_ratio),
            "demographic_parity_difference": _json_float(self.demographic_parity_difference),
            "equalized_odds_difference": _json_float(self.equalized_odds_difference),
            "lowest_group": self.lowest_group,
            "highest_group": self.highest_group,
            "group_sizes": dict(self.group_sizes),
            "excluded_small": list(self.excluded_small),
            "excluded_reasons": dict(self.excluded_reasons),
            **fi.intervals_json(self),
        }


@dataclass(frozen=True)
class FairnessResult:
    """Per-group table and summaries; the top-level numbers are what gates test.

    ``selection_rate_ratio`` is the minimum over the attributes (intersection included),
    ``demographic_parity_difference`` and ``equalized_odds_difference`` the maximum: the
    worst attribute decides. If any attribute's number is ``NaN`` -- or there are no
    attributes -- the top-level number is ``NaN`` too, so a gate on it fails rather than
    passing on what was not checked. Small groups are in ``groups`` (``small=True``)
    but not in any summary number. The ``*_ci`` fields bootstrap the top-level numbers
    themselves (the worst attribute per resample) over ``n_boot`` resamples.
    """

    groups: tuple[GroupMetrics, ...]
    attributes: tuple[AttributeSummary, ...]
    selection_rate_ratio: float
    demographic_parity_difference: float
    equalized_odds_difference: float
    min_group_size: int
    min_group_bads: int
    n_boot: int = 0
    selection_rate_ratio_ci: fi.Interval | None = None
    demographic_parity_difference_ci: fi.Interval | None = None
    equalized_odds_difference_ci: fi.Interval | None = None

    def table(self) -> pd.DataFrame:
        """The per-group table, one row per group, columns as in :class:`GroupMetrics`."""
        columns = [f.name for f in dataclasses.fields(GroupMetrics)]
        return pd.DataFrame([dataclasses.astuple(g) for g in self.groups], columns=columns)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; undefined numbers are ``None`` (null) so the file is strict JSON."""
        return {
            "min_group_size": self.min_group_size,
            "min_group_bads": self.min_group_bads,
            "n_boot": self.n_boot,
            "selection_rate_ratio": _json_float(self.selection_rate_ratio),
            "demographic_parity_difference": _json_float(self.demographic_parity_difference),
            "equalized_odds_difference": _json_float(self.equalized_odds_difference),
            **fi.intervals_json(self),
            "attributes": [a.to_json() for a in self.attributes],
            "groups": [
                {
                    f.name: _json_float(v) if isinstance(v, float) else v
                    for f, v in zip(dataclasses.fields(g), dataclasses.astuple(g), strict=True)
                }
                for g in self.groups
            ],
        }


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def small_reason(
    count: int, bads: int, goods: int, *, min_group_size: int, min_group_bads: int
) -> str:
    """Why a group is too small to judge (``"12 bads < 20"``), or ``""`` when it is not."""
    limits = (
        (count, min_group_size, "rows"),
        (bads, min_group_bads, "bads"),
        (goods, min_group_bads, "goods"),
    )
    return ", ".join(f"{have} {what} < {need}" for have, need, what in limits if have < need)


# --------------------------------------------------------------------------- banding


def _check_edges(attribute: str, edges: Sequence[float]) -> list[float]:
    try:
        cuts = [float(e) for e in edges]
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"evaluation.fairness.bins.{attribute} must be a list of numbers, got {edges!r}"
        ) from exc
    if not cuts or not all(math.isfinite(c) for c in cuts):
        raise ValueError(
            f"evaluation.fairness.bins.{attribute} must be a non-empty list of finite numbers, "
            f"got {edges!r}"
        )
    if any(b <= a for a, b in itertools.pairwise(cuts)):
        raise ValueError(
            f"evaluation.fairness.bins.{attribute} must be strictly increasing, got {edges!r}"
        )
    return cuts


def _number(x: float) -> str:
    return str(int(x)) if x.is_integer() else f"{x:g}"


def _band_labels(cuts: Sequence[float]) -> list[str]:
    labels = [f"<{_number(cuts[0])}"]
    for lo, hi in itertools.pairwise(cuts):
        if lo.is_integer() and hi.is_integer():
            top = int(hi) - 1
            labels.append(str(int(lo)) if top == int(lo) else f"{int(lo)}-{top}")
        else:
            labels.append(f"{_number(lo)}-<{_number(hi)}")
    labels.append(f"{_number(cuts[-1])}+")
    return labels


def band(values: pd.Series, edges: Sequence[float]) -> pd.Series:
    """Band a numeric attribute: each band is closed below and open above.

    With edges ``[25, 35, 50, 65]`` the bands are ``"<25"`` (x < 25), ``"25-34"``
    (25 <= x < 35), ``"35-49"``, ``"50-64"`` and ``"65+"`` (x >= 65): the first and last
    bands are open-ended, so every value lands somewhere, and an edge value belongs to
    the band it starts. Labels of whole-number edges are written as inclusive whole-number
    ranges (``"25-34"``), which is exact for whole-number attributes such as age in
    years; for other values read ``"25-34"`` as 25 <= x < 35. Non-integer edges are
    written ``"0.5-<1.5"``. Missing values (NaN / NA) get the group ``"missing"``.

    Returns an ordered categorical Series (same index and name as ``values``) whose
    categories are the bands in order followed by ``"missing"``, so tables sort by age
    rather than alphabetically.
    """
    name = str(values.name) if values.name is not None else "values"
    cuts = _check_edges(name, edges)
    if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(values.dtype):
        raise ValueError(
            f"protected attribute {name!r} has bins but is not numeric (dtype {values.dtype}); "
            f"remove evaluation.fairness.bins.{name}"
        )
    x = values.to_numpy(dtype=np.float64, na_value=np.nan)
    labels = _band_labels(cuts)
    codes = np.searchsorted(np.asarray(cuts), x, side="right")
    codes = np.where(np.isnan(x), len(labels), codes)
    categorical = pd.Categorical.from_codes(
        codes, categories=pd.Index([*labels, MISSING]), ordered=True
    )
    return pd.Series(categorical, index=values.index, name=values.name)


# --------------------------------------------------------------------------- grouping


def _value_label(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def groups_of(
    attribute: str, column: pd.Series, edges: Sequence[float] | None
) -> tuple[NDArray[np.object_], list[str]]:
    """Group label of every row, and the labels present in display order."""
    if edges is not None:
        banded = band(column, edges)
        present = set(banded.astype(object))
        order = [c for c in banded.cat.categories if c in present]
        return banded.astype(object).to_numpy(dtype=object), order

    is_numeric = pd.api.types.is_numeric_dtype(column.dtype) and not pd.api.types.is_bool_dtype(
        column.dtype
    )
    distinct = column.dropna().unique()
    if is_numeric and len(distinct) > MAX_UNBINNED_VALUES:
        raise ValueError(
            f"protected attribute {attribute!r} is numeric with {len(distinct)} distinct values "
            f"and no bands; add evaluation.fairness.bins.{attribute} (band edges, e.g. "
            f"[25, 35, 50, 65]) so its groups are large enough to compare"
        )
    if isinstance(column.dtype, pd.CategoricalDtype):
        ordered_values = [c for c in column.cat.categories if c in set(distinct)]
    elif is_numeric:
        ordered_values = sorted(distinct)
    else:
        ordered_values = sorted(distinct, key=str)
    to_label = {v: _value_label(v) for v in ordered_values}
    missing = column.isna().to_numpy()
    labels = np.array(
        [MISSING if m else to_label[v] for v, m in zip(column.tolist(), missing, strict=True)],
        dtype=object,
    )
    order = list(dict.fromkeys(to_label.values()))
    if missing.any():
        order.append(MISSING)
    return labels, order


# --------------------------------------------------------------------------- per attribute


def _per_group(
    attribute: str,
    labels: NDArray[np.object_],
    order: Sequence[str],
    y: NDArray[np.int64],
    p: NDArray[np.float64],
    declined: NDArray[np.int64],
    min_group_size: int,
    min_group_bads: int,
) -> tuple[list[GroupMetrics], dict[str, str]]:
    """The attribute's rows of the table, in display order, and why each small one is small.

    The decision rates come from one fairlearn MetricFrame (``y_pred`` = declined), fed
    the distinct (group, outcome, decision) rows weighted by their counts.
    Count, bad rate and AUC do not depend on the decision -- AUC needs the scores, which
    MetricFrame's ``y_pred`` does not carry -- so they come from a plain group-by.
    """
    from fairlearn.metrics import (
        MetricFrame,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import roc_auc_score

    def approval_rate(y_true: NDArray[Any], y_pred: NDArray[Any], sample_weight: Any) -> float:
        # y_pred is "declined"; approval is its 0 outcome.
        return float(selection_rate(y_true, y_pred, pos_label=0, sample_weight=sample_weight))

    def tpr(y_true: NDArray[Any], y_pred: NDArray[Any], sample_weight: Any) -> float:
        if not np.any(y_true == 1):
            return math.nan
        return float(true_positive_rate(y_true, y_pred, pos_label=1, sample_weight=sample_weight))

    def fpr(y_true: NDArray[Any], y_pred: NDArray[Any], sample_weight: Any) -> float:
        if not np.any(y_true == 0):
            return math.nan
        return float(false_positive_rate(y_true, y_pred, pos_label=1, sample_weight=sample_weight))

    def auc(rows: NDArray[np.intp]) -> float:
        yg = y[rows]
        if yg.min() == yg.max():
            return math.nan
        return float(roc_auc_score(yg, p[rows]))

    # The three rates are weighted means of (outcome, decision) pairs, so MetricFrame gets
    # one row per distinct (group, outcome, decision) with its row count as the sample
    # weight: the same rates as on every row, but fairlearn's per-row conversions then
    # cost a few dozen rows instead of hundreds of thousands (tests pin the equality).
    combos = pd.DataFrame({"group": labels, "y": y, "declined": declined})
    counted = combos.groupby(["group", "y", "declined"], sort=False).size().reset_index()
    weight = {"sample_weight": counted[0].to_numpy(dtype=np.float64)}
    frame = MetricFrame(
        metrics={"approval_rate": approval_rate, "tpr": tpr, "fpr": fpr},
        y_true=counted["y"].to_numpy(),
        y_pred=counted["declined"].to_numpy(),
        sensitive_features=pd.Series(counted["group"].to_numpy(), name=attribute, dtype=object),
        sample_params={"approval_rate": weight, "tpr": weight, "fpr": weight},
    )
    by_group = frame.by_group
    row_sets = pd.Series(labels, dtype=object).groupby(labels, sort=False).indices
    rows = []
    why_small: dict[str, str] = {}
    for group in order:
        idx = np.asarray(row_sets[group], dtype=np.intp)
        n, bads = int(idx.size), int(y[idx].sum())
        reason = small_reason(
            n, bads, n - bads, min_group_size=min_group_size, min_group_bads=min_group_bads
        )
        rows.append(
            GroupMetrics(
                attribute=attribute,
                group=group,
                count=n,
                bads=bads,
                goods=n - bads,
                approval_rate=float(by_group.loc[group, "approval_rate"]),
                bad_rate=float(y[idx].mean()),
                auc=auc(idx),
                tpr=float(by_group.loc[group, "tpr"]),
                fpr=float(by_group.loc[group, "fpr"]),
                small=bool(reason),
            )
        )
        if reason:
            why_small[group] = reason
    return rows, why_small


def _gap(values: Sequence[float]) -> float:
    """Largest minus smallest defined value; NaN when fewer than two groups define it."""
    defined = [v for v in values if not math.isnan(v)]
    return max(defined) - min(defined) if len(defined) >= 2 else math.nan


def _summary(
    attribute: str,
    groups: Sequence[GroupMetrics],
    why_small: Mapping[str, str],
    intervals: fi.SummaryIntervals,
) -> AttributeSummary:
    """``why_small`` holds the reason of each small group, in table order."""
    counted = [g for g in groups if not g.small]
    ratio = dpd = eod = math.nan
    lowest = highest = ""
    if counted:
        low = min(counted, key=lambda g: g.approval_rate)
        high = max(counted, key=lambda g: g.approval_rate)
        lowest, highest = low.group, high.group
        if len(counted) >= 2:  # one group compared with nothing is not evidence of parity
            hi, lo = high.approval_rate, low.approval_rate
            ratio = lo / hi if hi > 0 else math.nan
            dpd = hi - lo
            tpr_gap, fpr_gap = _gap([g.tpr for g in counted]), _gap([g.fpr for g in counted])
            eod = math.nan if math.isnan(tpr_gap) or math.isnan(fpr_gap) else max(tpr_gap, fpr_gap)
    return AttributeSummary(
        attribute=attribute,
        selection_rate_ratio=ratio,
        demographic_parity_difference=dpd,
        equalized_odds_difference=eod,
        lowest_group=lowest,
        highest_group=highest,
        group_sizes=types.MappingProxyType({g.group: g.count for g in counted}),
        excluded_small=tuple(why_small),
        excluded_reasons=types.MappingProxyType(dict(why_small)),
        **intervals.fields(),
    )


def _worst(values: Sequence[float], pick: Callable[[Sequence[float]], float]) -> float:
    if not values or any(math.isnan(v) for v in values):
        return math.nan
    return float(pick(values))


# --------------------------------------------------------------------------- entry point


def check_count(name: str, value: int, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def protected_groups(
    protected: pd.DataFrame, bins: Mapping[str, Sequence[float]] | None, n_rows: int
) -> list[tuple[str, NDArray[np.object_], list[str]]]:
    """Each attribute's group label per row and its groups in display order, intersection last.

    Checks ``protected`` once for every caller, so all group the same frame the same way.
    """
    if not isinstance(protected, pd.DataFrame):
        raise TypeError(f"protected must be a pandas DataFrame, got {type(protected).__name__}")
    names = [str(c) for c in protected.columns]
    if len(set(names)) != len(names):
        raise ValueError(f"protected has duplicate column names: {names}")
    if names and len(protected) != n_rows:
        raise ValueError(
            f"protected has {len(protected)} rows but y_true has {n_rows}; they must be row-aligned"
        )
    bins = bins or {}
    columns = protected.reset_index(drop=True)
    grouping: list[tuple[str, NDArray[np.object_], list[str]]] = []
    for name, column_name in zip(names, columns.columns, strict=True):
        labels, order = groups_of(name, columns[column_name], bins.get(name))
        grouping.append((name, labels, order))
    if len(grouping) >= 2:
        # Only combinations present, ordered as the cartesian product of the attributes'
        # own orders (without enumerating the product, which can be huge).
        tuples = list(zip(*(g[1] for g in grouping), strict=True))
        ranks = [{label: i for i, label in enumerate(g[2])} for g in grouping]
        present = sorted(set(tuples), key=lambda t: [r[v] for r, v in zip(ranks, t, strict=True)])
        combined = np.array([INTERSECTION_SEP.join(t) for t in tuples], dtype=object)
        order = [INTERSECTION_SEP.join(t) for t in present]
        grouping.append((INTERSECTION_SEP.join(names), combined, order))
    return grouping


def assess_fairness(
    *,
    y_true: ArrayLike,
    y_prob: ArrayLike,
    threshold: float,
    protected: pd.DataFrame,
    bins: Mapping[str, Sequence[float]] | None = None,
    min_group_size: int = MIN_GROUP_SIZE,
    min_group_bads: int = MIN_GROUP_BADS,
    n_boot: int = 200,
    seed: int = 0,
) -> FairnessResult:
    """Per-group metrics and fairness summaries of the decision ``y_prob >= threshold``.

    ``protected`` holds the protected attributes, one column each, row-aligned with
    ``y_true`` / ``y_prob`` (its index is ignored). ``bins`` maps numeric attributes to
    band edges (:func:`band`); entries for attributes not in ``protected`` are ignored,
    because the configured default (``age``) also applies to jobs without that column.
    Groups with fewer than ``min_group_size`` rows or ``min_group_bads`` bads or goods
    are ``small``: shown, not summarised. ``n_boot`` resamples (``0`` = none) drawn from
    ``seed`` give each summary a 95% bootstrap interval.

    With no protected columns (fraud models) the result has no groups and ``NaN``
    summaries, so a fairness gate configured for such a job fails, not passes on nothing.

    Raises ``ValueError`` for bad labels / probabilities / threshold / counts, a length
    mismatch, duplicate column names, bins on a non-numeric attribute, or a numeric
    attribute with more than 20 distinct values and no bins (the message names the key).
    """
    t = check_unit_interval("threshold", threshold)
    y, p = check_scores(y_true, y_prob, need_both_classes=False)
    min_size = check_count("min_group_size", min_group_size, 1)
    min_bads = check_count("min_group_bads", min_group_bads, 0)
    boots = check_count("n_boot", n_boot, 0)
    rng_seed = check_count("seed", seed, 0)
    grouping = protected_groups(protected, bins, y.shape[0])
    declined = (p >= t).astype(np.int64)

    tables = [
        (name, *_per_group(name, labels, order, y, p, declined, min_size, min_bads))
        for name, labels, order in grouping
    ]
    codes = [pd.Categorical(labels, categories=order).codes for _, labels, order in grouping]
    counted = [np.array([not g.small for g in rows], dtype=bool) for _, rows, _ in tables]
    intervals = fi.bootstrap_intervals(
        codes=codes, counted=counted, y=y, declined=declined, n_boot=boots, seed=rng_seed
    )
    summaries = [
        _summary(name, rows, why_small, ci)
        for (name, rows, why_small), ci in zip(tables, intervals.attributes, strict=True)
    ]
    return FairnessResult(
        groups=tuple(g for _, rows, _ in tables for g in rows),
        attributes=tuple(summaries),
        selection_rate_ratio=_worst([s.selection_rate_ratio for s in summaries], min),
        demographic_parity_difference=_worst(
            [s.demographic_parity_difference for s in summaries], max
        ),
        equalized_odds_difference=_worst([s.equalized_odds_difference for s in summaries], max),
        min_group_size=min_size,
        min_group_bads=min_bads,
        n_boot=intervals.n_boot,
        **intervals.worst.fields(),
    )
