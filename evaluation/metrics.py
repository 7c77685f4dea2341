"""The one named metric registry: every metric a config, the tuner or a gate may name.

Why a registry: a gate or ``tuning.metric`` naming an unknown metric must fail when
the config is loaded, with the valid names listed, not after an hour of training.
So every name lives in :data:`METRICS` together with its direction
(``greater_is_better``) and what it needs (``kind``):

* ``"score"``    -- needs only ``y_true`` and ``y_prob``; the only kind the tuner can optimise.
* ``"decision"`` -- also needs a decision threshold (and, for ``expected_cost``, the costs).
* ``"evidence"`` -- computed elsewhere (drift, fairness, explain); registered here by
  name only, so gates can refer to it. ``fn`` is ``None``.

Conventions shared by every function here:

* ``y_true`` is binary 0/1 (or bool) with 1 = the positive class: bad / default / fraud.
  Map ``data.positive_label`` to 1 before calling.
* ``y_prob`` is the predicted probability of the positive class, finite, in [0, 1].
* A decision at ``threshold`` declines / flags a row when ``y_prob >= threshold``;
  approved rows are those with ``y_prob < threshold``. "Positive" in the confusion
  counts means declined / flagged.
* Inputs are checked once where they enter (the public functions); a bad input is a
  ``ValueError`` that names the problem. Ratios that are undefined on the data given
  (precision when nothing is flagged, ...) are ``NaN``, never a silent 0.

scikit-learn and pandas are imported inside the functions that use them, so
loading a config (which only needs the names) stays fast.
"""

from __future__ import annotations

import difflib
import math
import numbers
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

if TYPE_CHECKING:
    from training.tuning import Objective

__all__ = [
    "METRICS",
    "Metric",
    "MetricKind",
    "check_scores",
    "check_unit_interval",
    "decision_metrics",
    "expected_calibration_error",
    "get_metric",
    "ks_statistic",
    "metric_names",
    "objective_direction",
    "precision_at_k",
    "recall_at_fpr",
    "score_metrics",
    "tuning_objective",
]

MetricKind = Literal["score", "decision", "evidence"]

_Labels = NDArray[np.int64]
_Probs = NDArray[np.float64]


@dataclass(frozen=True)
class Metric:
    """One registered metric.

    ``fn`` is the callable to compute it on raw array-likes (it validates its inputs):
    ``fn(y_true, y_prob)`` for ``"score"`` metrics and
    ``fn(y_true, y_prob, *, threshold, cost_false_negative=None, cost_false_positive=None)``
    for ``"decision"`` metrics. It is ``None`` exactly when ``kind == "evidence"``.
    """

    name: str
    greater_is_better: bool
    kind: MetricKind
    description: str
    fn: Callable[..., float] | None
    #: Score metrics: LightGBM's per-round metric that moves with this one, which early
    #: stopping and the median pruner watch while tuning on it ("auc", "binary_logloss" …).
    early_stopping: str | None = None

    def __post_init__(self) -> None:
        # Invariants the gates and the tuner rely on; checked when the registry is built.
        if (self.fn is None) != (self.kind == "evidence"):
            raise ValueError(f"metric {self.name!r}: fn must be None exactly for evidence metrics")
        if (self.early_stopping is None) != (self.kind != "score"):
            raise ValueError(
                f"metric {self.name!r}: a score metric names its early_stopping metric, "
                "and only a score metric does"
            )
        if "\n" in self.description or not self.description:
            raise ValueError(f"metric {self.name!r}: description must be one non-empty line")


# --------------------------------------------------------------------------- input checks


def _as_labels(y_true: ArrayLike) -> _Labels:
    arr = np.asarray(y_true)
    if arr.ndim != 1:
        raise ValueError(f"y_true must be 1-D, got shape {arr.shape}")
    if arr.dtype.kind in "USO" and any(isinstance(v, str) for v in arr.tolist()):
        raise ValueError(
            "y_true has string labels; map data.positive_label to 1 and the other label to 0"
        )
    if arr.dtype.kind == "b":
        return arr.astype(np.int64)
    try:
        values = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y_true must be binary 0/1 numbers, got dtype {arr.dtype}") from exc
    if not np.all(np.isfinite(values)):
        raise ValueError(f"y_true contains {int(np.sum(~np.isfinite(values)))} NaN/inf values")
    labels = np.unique(values)
    if not np.all(np.isin(labels, (0.0, 1.0))):
        shown = ", ".join(repr(v) for v in labels[:5].tolist())
        raise ValueError(f"y_true must be binary 0/1 (1 = bad / fraud), found values: {shown}")
    return values.astype(np.int64)


def _as_probs(y_prob: ArrayLike) -> _Probs:
    try:
        arr = np.asarray(y_prob, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError("y_prob must be numeric probabilities of the positive class") from exc
    if arr.ndim != 1:
        hint = " (for predict_proba output pass [:, 1])" if arr.ndim == 2 else ""
        raise ValueError(f"y_prob must be 1-D, got shape {arr.shape}{hint}")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"y_prob contains {int(bad.sum())} NaN/inf values")
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValueError(f"y_prob must lie in [0, 1], got min={arr.min():.6g}, max={arr.max():.6g}")
    return arr


def check_scores(
    y_true: ArrayLike, y_prob: ArrayLike, *, need_both_classes: bool
) -> tuple[_Labels, _Probs]:
    """Convert and check once, at the boundary; the private helpers then trust their inputs."""
    y = _as_labels(y_true)
    p = _as_probs(y_prob)
    if y.shape[0] != p.shape[0]:
        raise ValueError(f"y_true and y_prob differ in length: {y.shape[0]} != {p.shape[0]}")
    if y.shape[0] == 0:
        raise ValueError("y_true and y_prob are empty")
    if need_both_classes:
        n_pos = int(y.sum())
        if n_pos == 0 or n_pos == y.shape[0]:
            only = 1 if n_pos else 0
            raise ValueError(
                f"y_true holds only class {only}; ranking metrics (auc, gini, ks, "
                "average_precision, recall_at_fpr) need both bads and goods"
            )
    return y, p


def check_unit_interval(name: str, value: float, *, open_interval: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    v = float(value)
    inside = 0.0 < v < 1.0 if open_interval else 0.0 <= v <= 1.0
    if not inside:
        bounds = "(0, 1)" if open_interval else "[0, 1]"
        raise ValueError(f"{name} must lie in {bounds}, got {value!r}")
    return v


# --------------------------------------------------------------------------- score metrics
# Private helpers take checked arrays; public functions check, then call them.


def _roc(y: _Labels, p: _Probs) -> tuple[_Probs, _Probs]:
    from sklearn.metrics import roc_curve

    # drop_intermediate=False keeps every distinct threshold, so FPR-constrained lookups
    # see every achievable operating point, not only the hull's corners.
    fpr, tpr, _ = roc_curve(y, p, pos_label=1, drop_intermediate=False)
    return np.asarray(fpr, dtype=np.float64), np.asarray(tpr, dtype=np.float64)


def _auc(y: _Labels, p: _Probs) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _gini(y: _Labels, p: _Probs) -> float:
    return 2.0 * _auc(y, p) - 1.0


def _ks(y: _Labels, p: _Probs) -> float:
    # At threshold t, TPR = share of bads with score >= t = 1 - CDF_bad(t-) and likewise FPR
    # for goods, so |TPR - FPR| over all thresholds is the two-sample KS distance.
    fpr, tpr = _roc(y, p)
    return float(np.max(np.abs(tpr - fpr)))


def _brier(y: _Labels, p: _Probs) -> float:
    from sklearn.metrics import brier_score_loss

    return float(brier_score_loss(y, p, pos_label=1, labels=[0, 1]))


def _log_loss(y: _Labels, p: _Probs) -> float:
    from sklearn.metrics import log_loss

    # labels= keeps it defined on a split that happens to hold one class.
    return float(log_loss(y, p, labels=[0, 1]))


def _ece(y: _Labels, p: _Probs, n_bins: int) -> float:
    # Bin k holds k/n_bins <= p < (k+1)/n_bins; the last bin also holds p == 1.
    idx = np.minimum(np.floor(p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(idx, minlength=n_bins).astype(np.float64)
    sum_pred = np.bincount(idx, weights=p, minlength=n_bins)
    sum_obs = np.bincount(idx, weights=y.astype(np.float64), minlength=n_bins)
    filled = count > 0
    gap = np.abs(sum_pred[filled] - sum_obs[filled]) / count[filled]
    return float(np.sum(count[filled] / p.shape[0] * gap))


def _average_precision(y: _Labels, p: _Probs) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(y, p, pos_label=1))


def _recall_at_fpr(y: _Labels, p: _Probs, fpr_max: float) -> float:
    fpr, tpr = _roc(y, p)
    # roc_curve always starts at (0, 0), so the mask is never empty.
    return float(np.max(tpr[fpr <= fpr_max]))


def _rows_for_k(k: int | float, n: int) -> int:
    if isinstance(k, bool):
        raise ValueError(f"k must be a row count (int) or a share in (0, 1), got {k!r}")
    if isinstance(k, numbers.Integral):
        rows = int(k)
        if not 1 <= rows <= n:
            raise ValueError(f"k={rows} rows is outside 1..{n} (the number of rows)")
        return rows
    if isinstance(k, numbers.Real) and 0.0 < float(k) < 1.0:
        # ceil: the top 1% of 150 rows is 2 rows, never 0. round() first so that
        # 0.01 * 300 == 3.0000000000000004 does not become 4.
        return max(1, math.ceil(round(float(k) * n, 9)))
    raise ValueError(f"k must be a row count (int) or a share in (0, 1), got {k!r}")


def _precision_at_k(y: _Labels, p: _Probs, k: int | float) -> float:
    rows = _rows_for_k(k, p.shape[0])
    cut = np.partition(p, p.shape[0] - rows)[p.shape[0] - rows]  # rows-th highest score
    above = p > cut
    at_cut = p == cut
    n_above = int(above.sum())
    # Rows tied at the cut share the remaining slots: count their expected positives, so
    # the answer does not depend on the row order of the input.
    pos = float(y[above].sum()) + (rows - n_above) * float(y[at_cut].mean())
    return pos / rows


def _precision_at_top_1pct(y: _Labels, p: _Probs) -> float:
    return _precision_at_k(y, p, 0.01)


def _recall_at_1pct_fpr(y: _Labels, p: _Probs) -> float:
    return _recall_at_fpr(y, p, 0.01)


def _ece_10(y: _Labels, p: _Probs) -> float:
    return _ece(y, p, 10)


# name -> (implementation on checked arrays, needs both classes)
_SCORE_IMPLS: dict[str, tuple[Callable[[_Labels, _Probs], float], bool]] = {
    "auc": (_auc, True),
    "gini": (_gini, True),
    "ks": (_ks, True),
    "brier": (_brier, False),
    "log_loss": (_log_loss, False),
    "ece": (_ece_10, False),
    "average_precision": (_average_precision, True),
    "recall_at_1pct_fpr": (_recall_at_1pct_fpr, True),
    "precision_at_top_1pct": (_precision_at_top_1pct, False),
}


def ks_statistic(y_true: ArrayLike, y_prob: ArrayLike) -> float:
    """Kolmogorov-Smirnov distance between the score distributions of bads and goods.

    This is the two-sided statistic (``scipy.stats.ks_2samp``): a model whose scores
    are inverted gets the same KS; ``auc`` tells the two apart.
    """
    y, p = check_scores(y_true, y_prob, need_both_classes=True)
    return _ks(y, p)


def expected_calibration_error(y_true: ArrayLike, y_prob: ArrayLike, *, n_bins: int = 10) -> float:
    """Row-weighted mean of |mean predicted PD - observed bad rate| over probability bins.

    Bins are equal-width in predicted probability (``[k/n_bins, (k+1)/n_bins)``, the last
    one closed at 1), not equal-count: a PD is a promise about a probability level, and
    equal width asks whether every level the model uses keeps that promise.
    """
    if isinstance(n_bins, bool) or not isinstance(n_bins, numbers.Integral) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive int, got {n_bins!r}")
    y, p = check_scores(y_true, y_prob, need_both_classes=False)
    return _ece(y, p, int(n_bins))


def recall_at_fpr(y_true: ArrayLike, y_prob: ArrayLike, *, fpr: float = 0.01) -> float:
    """Largest recall (TPR) among the ROC points whose false-positive rate is <= ``fpr``.

    Fraud teams size an alert queue by how many good customers they may bother; this is
    the share of fraud caught within that allowance.
    """
    fpr_max = check_unit_interval("fpr", fpr)
    y, p = check_scores(y_true, y_prob, need_both_classes=True)
    return _recall_at_fpr(y, p, fpr_max)


def precision_at_k(y_true: ArrayLike, y_prob: ArrayLike, *, k: int | float) -> float:
    """Precision among the ``k`` highest-risk rows.

    ``k`` is a row count (int, 1..n) or, as a float in (0, 1), a share of rows rounded up
    to whole rows. Rows tied with the k-th score are counted by their mean bad rate
    (the expectation over random tie-breaking), so the result is order-independent.
    """
    y, p = check_scores(y_true, y_prob, need_both_classes=False)
    return _precision_at_k(y, p, k)


def score_metrics(y_true: ArrayLike, y_prob: ArrayLike) -> dict[str, float]:
    """Every ``"score"`` metric of the registry, keyed by name.

    Raises ``ValueError`` if ``y_true`` holds one class only, because AUC, KS and the
    other ranking metrics are then undefined and a gate must not pass on a NaN.
    """
    y, p = check_scores(y_true, y_prob, need_both_classes=True)
    return {name: impl(y, p) for name, (impl, _) in _SCORE_IMPLS.items()}


def _score_fn(name: str) -> Callable[[ArrayLike, ArrayLike], float]:
    impl, need_both = _SCORE_IMPLS[name]

    def fn(y_true: ArrayLike, y_prob: ArrayLike) -> float:
        y, p = check_scores(y_true, y_prob, need_both_classes=need_both)
        return impl(y, p)

    fn.__name__ = name
    fn.__doc__ = f"Compute the registered score metric {name!r} (inputs are checked)."
    return fn


# --------------------------------------------------------------------------- decision metrics


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def _check_costs(
    cost_false_negative: float | None, cost_false_positive: float | None
) -> tuple[float, float] | None:
    if cost_false_negative is None and cost_false_positive is None:
        return None
    if cost_false_negative is None or cost_false_positive is None:
        raise ValueError("give both cost_false_negative and cost_false_positive, or neither")
    costs: list[float] = []
    for name, value in (
        ("cost_false_negative", cost_false_negative),
        ("cost_false_positive", cost_false_positive),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be a number, got {value!r}")
        if not math.isfinite(float(value)) or float(value) < 0:
            raise ValueError(f"{name} must be finite and >= 0, got {value!r}")
        costs.append(float(value))
    return costs[0], costs[1]


def decision_metrics(
    y_true: ArrayLike,
    y_prob: ArrayLike,
    *,
    threshold: float,
    cost_false_negative: float | None = None,
    cost_false_positive: float | None = None,
) -> dict[str, float]:
    """Every ``"decision"`` metric at one threshold: decline / flag when ``y_prob >= threshold``.

    Counts are floats so the result is one ``dict[str, float]`` for logging. Undefined
    ratios are NaN: ``precision`` when nothing is flagged, ``recall`` when there are no
    bads, ``bad_rate_approved`` when nothing is approved. ``expected_cost`` is the cost
    per row, ``(cost_fn * FN + cost_fp * FP) / n``, and NaN when no costs are given.
    """
    t = check_unit_interval("threshold", threshold)
    costs = _check_costs(cost_false_negative, cost_false_positive)
    y, p = check_scores(y_true, y_prob, need_both_classes=False)
    flagged = p >= t
    bad = y == 1
    tp = float(np.sum(flagged & bad))
    fp = float(np.sum(flagged & ~bad))
    fn = float(np.sum(~flagged & bad))
    tn = float(np.sum(~flagged & ~bad))
    n = float(p.shape[0])
    approved = tn + fn
    return {
        "approval_rate": approved / n,
        "bad_rate_approved": _ratio(fn, approved),
        "decline_rate": (tp + fp) / n,
        "true_positives": tp,
        "false_positives": fp,
        "true_negatives": tn,
        "false_negatives": fn,
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "expected_cost": math.nan if costs is None else (costs[0] * fn + costs[1] * fp) / n,
    }


def _decision_fn(name: str) -> Callable[..., float]:
    def fn(
        y_true: ArrayLike,
        y_prob: ArrayLike,
        *,
        threshold: float,
        cost_false_negative: float | None = None,
        cost_false_positive: float | None = None,
    ) -> float:
        return decision_metrics(
            y_true,
            y_prob,
            threshold=threshold,
            cost_false_negative=cost_false_negative,
            cost_false_positive=cost_false_positive,
        )[name]

    fn.__name__ = name
    fn.__doc__ = f"Compute the registered decision metric {name!r} at a threshold."
    return fn


# --------------------------------------------------------------------------- the registry


def _score(name: str, greater_is_better: bool, early_stopping: str, description: str) -> Metric:
    return Metric(name, greater_is_better, "score", description, _score_fn(name), early_stopping)


def _decision(name: str, greater_is_better: bool, description: str) -> Metric:
    return Metric(name, greater_is_better, "decision", description, _decision_fn(name))


def _evidence(name: str, greater_is_better: bool, description: str) -> Metric:
    return Metric(name, greater_is_better, "evidence", description, None)


_ALL: tuple[Metric, ...] = (
    _score("auc", True, "auc", "area under the ROC curve (scikit-learn)"),
    _score("gini", True, "auc", "Gini coefficient, 2 * auc - 1"),
    _score(
        "ks", True, "auc", "two-sample KS distance between score distributions of bads and goods"
    ),
    _score(
        "brier",
        False,
        "binary_logloss",
        "Brier score: mean squared error of the predicted probability",
    ),
    _score(
        "log_loss",
        False,
        "binary_logloss",
        "binary cross-entropy of the predicted probability (scikit-learn)",
    ),
    _score(
        "ece",
        False,
        "binary_logloss",
        "expected calibration error over 10 equal-width probability bins",
    ),
    _score(
        "average_precision",
        True,
        "average_precision",
        "area under the precision-recall curve (scikit-learn)",
    ),
    _score("recall_at_1pct_fpr", True, "auc", "largest recall with false-positive rate <= 1%"),
    _score(
        "precision_at_top_1pct",
        True,
        "average_precision",
        "precision among the 1% highest-risk rows",
    ),
    # approval_rate / decline_rate are policy choices; their direction is nominal and
    # gates should bound them with explicit min / max.
    _decision("approval_rate", True, "share of rows approved (y_prob < threshold)"),
    _decision("bad_rate_approved", False, "observed bad rate among approved rows"),
    _decision("decline_rate", False, "share of rows declined / flagged (y_prob >= threshold)"),
    _decision("true_positives", True, "bads declined / flagged (count)"),
    _decision("false_positives", False, "goods declined / flagged (count)"),
    _decision("true_negatives", True, "goods approved (count)"),
    _decision("false_negatives", False, "bads approved (count)"),
    _decision("precision", True, "share of declined / flagged rows that are bad"),
    _decision("recall", True, "share of bads that are declined / flagged"),
    _decision("expected_cost", False, "(cost_fn * FN + cost_fp * FP) per row; NaN without costs"),
    _evidence("psi_max", False, "largest population stability index over the features (drift)"),
    _evidence("score_psi", False, "population stability index of the model score (drift)"),
    _evidence("selection_rate_ratio", True, "lowest / highest group approval rate (fairness)"),
    _evidence("demographic_parity_difference", False, "largest gap in selection rate (fairness)"),
    _evidence("equalized_odds_difference", False, "largest gap in TPR or FPR (fairness)"),
    _evidence(
        "monotonicity_violations",
        False,
        "held-fixed steps moving against a declared monotone direction (count of steps)",
    ),
    _evidence(
        "monotonicity_violation_share",
        False,
        "monotonicity_violations over the steps checked (rows x grid steps x features)",
    ),
    _evidence(
        "scorecard_sign_violations",
        False,
        "scorecard characteristics whose points contradict their WOE (coefficient sign)",
    ),
    _evidence(
        "reason_text_coverage", True, "share of features that can be a reason with a written text"
    ),
    _evidence(
        "reason_faithfulness", True, "declines whose score rises when the first reason is undone"
    ),
    _evidence(
        "reason_stability", True, "declines keeping their first reason after a bootstrap refit"
    ),
    _evidence("proxy_max", False, "largest AUC of one feature predicting a protected attribute"),
)

METRICS: Mapping[str, Metric] = types.MappingProxyType({m.name: m for m in _ALL})
"""Every metric by name; read-only so no import can change what a gate means."""


def metric_names() -> list[str]:
    """All registered names, sorted, for error messages and ``--help``."""
    return sorted(METRICS)


def get_metric(name: str) -> Metric:
    """The metric called ``name``; a ``KeyError`` listing the valid names if there is none."""
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        pass
    names = metric_names()
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
    hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise KeyError(f"unknown metric {name!r}.{hint} Valid names: {', '.join(names)}")


def objective_direction(name: str) -> Literal["maximize", "minimize"]:
    """The Optuna study direction for tuning on ``name``.

    Only ``"score"`` metrics qualify: decision metrics depend on a threshold chosen after
    tuning, and evidence metrics are not computed during trials.
    """
    metric = get_metric(name)
    if metric.kind != "score":
        scores = ", ".join(n for n in metric_names() if METRICS[n].kind == "score")
        raise ValueError(
            f"metric {name!r} is a {metric.kind} metric; tuning can only optimise "
            f"score metrics: {scores}"
        )
    return "maximize" if metric.greater_is_better else "minimize"


def tuning_objective(name: str) -> Objective:
    """What the tuner optimises for ``tuning.metric: name`` (a score metric only)."""
    from training.tuning import Objective

    metric = get_metric(name)
    direction = objective_direction(name)
    assert metric.fn is not None and metric.early_stopping is not None
    return Objective(name, direction, metric.fn, metric.early_stopping)
