"""Pins the metric registry against independent computations and the config contract."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray
from scipy import stats
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from evaluation import metrics as m
from evaluation.bands import score_bands

SEEDS = [0, 1, 2, 3, 4]

SCORE_NAMES = {
    "auc",
    "gini",
    "ks",
    "brier",
    "log_loss",
    "ece",
    "average_precision",
    "recall_at_1pct_fpr",
    "precision_at_top_1pct",
}
DECISION_NAMES = {
    "approval_rate",
    "bad_rate_approved",
    "decline_rate",
    "true_positives",
    "false_positives",
    "true_negatives",
    "false_negatives",
    "precision",
    "recall",
    "expected_cost",
}
EVIDENCE_NAMES = {
    "psi_max",
    "score_psi",
    "selection_rate_ratio",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "monotonicity_violations",
    "monotonicity_violation_share",
    "scorecard_sign_violations",
    "reason_text_coverage",
    "reason_faithfulness",
    "reason_stability",
    "proxy_max",
}


def make_data(
    seed: int, n: int = 2000, *, ties: bool = False
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Bads score higher on average; `ties=True` rounds scores so many rows share one."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.15).astype(np.int64)
    logit = -2.0 + 1.5 * y + rng.normal(0.0, 1.0, n)
    p = 1.0 / (1.0 + np.exp(-logit))
    if ties:
        p = np.round(p, 2)
    return y, p


# --------------------------------------------------------------------------- score metrics


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_auc_gini_ks_match_mann_whitney_and_ks_2samp(seed: int, ties: bool) -> None:
    y, p = make_data(seed, ties=ties)
    got = m.score_metrics(y, p)
    bads, goods = p[y == 1], p[y == 0]
    u = stats.mannwhitneyu(bads, goods).statistic
    auc = u / (bads.size * goods.size)
    assert got["auc"] == pytest.approx(auc, abs=1e-12)
    assert got["auc"] == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert got["gini"] == pytest.approx(2.0 * auc - 1.0, abs=1e-12)
    assert got["ks"] == pytest.approx(stats.ks_2samp(bads, goods).statistic, abs=1e-12)
    assert m.ks_statistic(y, p) == got["ks"]


def test_ks_is_two_sided_so_inverted_scores_keep_their_ks() -> None:
    y, p = make_data(7)
    assert m.ks_statistic(y, 1.0 - p) == pytest.approx(m.ks_statistic(y, p), abs=1e-12)
    assert m.score_metrics(y, 1.0 - p)["auc"] < 0.5


@pytest.mark.parametrize("seed", SEEDS)
def test_probability_metrics_match_their_formulas(seed: int) -> None:
    y, p = make_data(seed)
    got = m.score_metrics(y, p)
    assert got["brier"] == pytest.approx(np.mean((p - y) ** 2), rel=1e-12)
    manual_log_loss = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert got["log_loss"] == pytest.approx(manual_log_loss, rel=1e-9)

    # Continuous scores: AP is the mean, over bads, of the precision at each bad's rank.
    ranked = y[np.argsort(-p)]
    precision_at_rank = np.cumsum(ranked) / np.arange(1, ranked.size + 1)
    assert got["average_precision"] == pytest.approx(
        precision_at_rank[ranked == 1].mean(), rel=1e-12
    )

    # ECE from scikit-learn's uniform calibration curve plus per-bin counts.
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    counts, _ = np.histogram(p, bins=np.linspace(0.0, 1.0, 11))
    weights = counts[counts > 0] / p.size
    assert got["ece"] == pytest.approx(np.sum(weights * np.abs(prob_pred - prob_true)), rel=1e-9)

    top = np.argsort(-p)[: math.ceil(0.01 * p.size)]
    assert got["precision_at_top_1pct"] == pytest.approx(y[top].mean(), abs=1e-12)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", SEEDS)
def test_recall_at_1pct_fpr_matches_brute_force_over_thresholds(seed: int, ties: bool) -> None:
    y, p = make_data(seed, ties=ties)
    thresholds = np.append(np.unique(p), np.inf)
    flagged = p[None, :] >= thresholds[:, None]
    tpr = (flagged & (y == 1)).sum(axis=1) / (y == 1).sum()
    fpr = (flagged & (y == 0)).sum(axis=1) / (y == 0).sum()
    expected = tpr[fpr <= 0.01].max()
    assert m.score_metrics(y, p)["recall_at_1pct_fpr"] == pytest.approx(expected, abs=1e-12)


def test_ece_hand_worked_six_rows() -> None:
    p = [0.05, 0.15, 0.18, 0.55, 0.62, 0.95]
    y = [0, 0, 1, 1, 0, 1]
    # bins: 0.0-0.1 {0.05}: |0.05-0|; 0.1-0.2 {0.15, 0.18}: |0.165-0.5|; 0.5-0.6 {0.55}:
    # |0.55-1|; 0.6-0.7 {0.62}: |0.62-0|; 0.9-1.0 {0.95}: |0.95-1|
    expected = (0.05 + 2 * 0.335 + 0.45 + 0.62 + 0.05) / 6
    assert m.expected_calibration_error(y, p) == pytest.approx(expected, abs=1e-12)


def test_ece_bins_are_closed_on_the_left_and_the_last_bin_holds_one() -> None:
    # 0.5 belongs to the upper bin, 1.0 to the last: bins {0.25} and {0.5, 1.0}.
    assert m.expected_calibration_error([0, 1, 1], [0.25, 0.5, 1.0], n_bins=2) == pytest.approx(
        (0.25 + 2 * 0.25) / 3, abs=1e-12
    )


def test_ece_is_zero_for_perfect_calibration_within_bins() -> None:
    assert m.expected_calibration_error([0, 1, 0, 0], [0.25, 0.25, 0.25, 0.25]) == 0.0


# ten goods, then four bads
RECALL_Y = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
RECALL_P = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.95, 0.9, 0.88, 0.75, 0.3]


@pytest.mark.parametrize(
    ("fpr", "expected"),
    [
        (0.0, 0.0),  # the best good scores 0.95, above every bad
        (0.1, 0.5),  # one good allowed: flag >= 0.88 catches 0.9 and 0.88
        (0.2, 0.5),  # a second good (0.85) buys no extra bad
        (0.3, 0.75),  # third good (0.8), then the bad at 0.75
        (1.0, 1.0),
    ],
)
def test_recall_at_fpr_hand_worked(fpr: float, expected: float) -> None:
    assert m.recall_at_fpr(RECALL_Y, RECALL_P, fpr=fpr) == pytest.approx(expected, abs=1e-12)


PAK_P = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
PAK_Y = [1, 0, 1, 1, 0, 0, 1, 0, 0, 0]


@pytest.mark.parametrize(
    ("k", "expected"),
    [(1, 1.0), (2, 0.5), (4, 0.75), (10, 0.4), (0.3, 2 / 3), (0.25, 2 / 3), (0.01, 1.0)],
)
def test_precision_at_k_hand_worked(k: int | float, expected: float) -> None:
    # a float k is a share of rows rounded up: 0.25 * 10 -> 3 rows, 0.01 * 10 -> 1 row
    assert m.precision_at_k(PAK_Y, PAK_P, k=k) == pytest.approx(expected, abs=1e-12)


def test_precision_at_k_counts_ties_at_the_cut_by_their_mean() -> None:
    # top 2: the 0.9 bad, then one of three rows tied at 0.7 of which one is bad
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.7, 0.7, 0.7, 0.1])
    assert m.precision_at_k(y, p, k=2) == pytest.approx((1 + 1 / 3) / 2, abs=1e-12)
    order = np.array([4, 2, 0, 3, 1])
    assert m.precision_at_k(y[order], p[order], k=2) == pytest.approx((1 + 1 / 3) / 2, abs=1e-12)


@pytest.mark.parametrize("k", [0, 11, 1.0, 1.5, -0.2, True])
def test_precision_at_k_rejects_impossible_k(k: Any) -> None:
    with pytest.raises(ValueError, match="k"):
        m.precision_at_k(PAK_Y, PAK_P, k=k)


def test_precision_at_k_accepts_numpy_integers() -> None:
    k: Any = np.int64(4)  # what len() arithmetic on arrays often produces
    assert m.precision_at_k(PAK_Y, PAK_P, k=k) == pytest.approx(0.75)


# --------------------------------------------------------------------------- decision metrics


@pytest.mark.parametrize("threshold", [0.05, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("seed", SEEDS)
def test_decision_counts_match_sklearn_confusion_matrix(seed: int, threshold: float) -> None:
    y, p = make_data(seed, ties=True)
    got = m.decision_metrics(y, p, threshold=threshold)
    flagged = (p >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, flagged, labels=[0, 1]).ravel()
    assert (got["true_negatives"], got["false_positives"]) == (tn, fp)
    assert (got["false_negatives"], got["true_positives"]) == (fn, tp)
    expected_precision = skm.precision_score(y, flagged, zero_division=np.nan)
    assert got["precision"] == pytest.approx(expected_precision, nan_ok=True)
    assert got["recall"] == pytest.approx(skm.recall_score(y, flagged))
    assert got["approval_rate"] == pytest.approx(np.mean(p < threshold))
    assert got["decline_rate"] == pytest.approx(1.0 - got["approval_rate"])
    if tn + fn:
        assert got["bad_rate_approved"] == pytest.approx(y[p < threshold].mean())
    assert all(isinstance(v, float) for v in got.values())


def test_decision_metrics_hand_worked_with_costs() -> None:
    y = [1, 1, 0, 0, 0]
    p = [0.9, 0.2, 0.7, 0.1, 0.5]
    # flagged (p >= 0.5): rows 0, 2, 4 -> TP=1, FP=2, FN=1, TN=1
    got = m.decision_metrics(y, p, threshold=0.5, cost_false_negative=10, cost_false_positive=1)
    assert got == {
        "approval_rate": pytest.approx(2 / 5),
        "bad_rate_approved": pytest.approx(1 / 2),
        "decline_rate": pytest.approx(3 / 5),
        "true_positives": 1.0,
        "false_positives": 2.0,
        "true_negatives": 1.0,
        "false_negatives": 1.0,
        "precision": pytest.approx(1 / 3),
        "recall": pytest.approx(1 / 2),
        "expected_cost": pytest.approx((10 * 1 + 1 * 2) / 5),
    }


def test_expected_cost_is_nan_without_costs_and_needs_both() -> None:
    assert math.isnan(m.decision_metrics([0, 1], [0.2, 0.8], threshold=0.5)["expected_cost"])
    with pytest.raises(ValueError, match="both"):
        m.decision_metrics([0, 1], [0.2, 0.8], threshold=0.5, cost_false_negative=5.0)
    with pytest.raises(ValueError, match="cost_false_positive"):
        m.decision_metrics(
            [0, 1], [0.2, 0.8], threshold=0.5, cost_false_negative=5.0, cost_false_positive=-1
        )


def test_undefined_decision_ratios_are_nan_not_zero() -> None:
    # nothing flagged -> precision undefined; no bads -> recall undefined
    got = m.decision_metrics([0, 0], [0.1, 0.2], threshold=0.5)
    assert math.isnan(got["precision"]) and math.isnan(got["recall"])
    assert got["bad_rate_approved"] == 0.0
    # everything declined -> no approved rows
    assert math.isnan(m.decision_metrics([0, 1], [0.6, 0.7], threshold=0.5)["bad_rate_approved"])


def test_a_probability_equal_to_the_threshold_is_declined() -> None:
    got = m.decision_metrics([1, 0], [0.5, 0.4999], threshold=0.5)
    assert got["true_positives"] == 1.0 and got["approval_rate"] == 0.5


@pytest.mark.parametrize("threshold", [-0.1, 1.1, math.nan, "0.5"])
def test_decision_metrics_reject_bad_thresholds(threshold: Any) -> None:
    with pytest.raises(ValueError, match="threshold"):
        m.decision_metrics([0, 1], [0.2, 0.8], threshold=threshold)


# --------------------------------------------------------------------------- score bands


def test_score_bands_match_pandas_qcut_on_distinct_scores() -> None:
    y, p = make_data(3, n=1000)
    bands = score_bands(y, p)
    expected_band = pd.qcut(p, 10, labels=False) + 1
    frame = pd.DataFrame({"band": expected_band, "y": y, "p": p})
    grouped = frame.groupby("band")
    assert bands["band"].tolist() == list(range(1, 11))
    assert bands["count"].tolist() == grouped.size().tolist() == [100] * 10
    assert bands["bads"].tolist() == grouped["y"].sum().tolist()
    np.testing.assert_allclose(bands["predicted_pd"], grouped["p"].mean(), rtol=1e-12)
    np.testing.assert_allclose(bands["min_pd"], grouped["p"].min())
    np.testing.assert_allclose(bands["max_pd"], grouped["p"].max())
    np.testing.assert_allclose(bands["observed_bad_rate"], grouped["y"].mean())


@pytest.mark.parametrize("seed", SEEDS)
def test_score_bands_totals_and_monotone_cumulatives(seed: int) -> None:
    y, p = make_data(seed, n=1234, ties=True)
    bands = score_bands(y, p)
    assert list(bands.columns) == [
        "band",
        "count",
        "min_pd",
        "max_pd",
        "predicted_pd",
        "observed_bad_rate",
        "bads",
        "cumulative_bad_capture",
        "cumulative_population",
    ]
    assert 1 <= len(bands) <= 10
    assert bands["count"].sum() == y.size
    assert bands["bads"].sum() == y.sum()
    # counted from the riskiest band down: band 1 (lowest risk) closes at 1.0
    assert bands["cumulative_bad_capture"].iloc[0] == pytest.approx(1.0)
    assert bands["cumulative_population"].iloc[0] == pytest.approx(1.0)
    assert bands["cumulative_bad_capture"].iloc[-1] == pytest.approx(
        bands["bads"].iloc[-1] / y.sum()
    )
    assert bands["cumulative_population"].iloc[-1] == pytest.approx(
        bands["count"].iloc[-1] / y.size
    )
    assert bands["cumulative_bad_capture"].is_monotonic_decreasing
    assert bands["cumulative_population"].is_monotonic_decreasing
    # ties never straddle bands: every band's scores lie strictly above the previous band's
    assert (bands["min_pd"].to_numpy()[1:] > bands["max_pd"].to_numpy()[:-1]).all()
    assert bands["predicted_pd"].is_monotonic_increasing


def test_score_bands_keep_tied_scores_together_and_drop_empty_bands() -> None:
    # 600 rows tie at the lowest score: they fill one band; the other 400 make 4 bands
    p = np.concatenate([np.full(600, 0.02), np.linspace(0.1, 0.9, 400)])
    y = np.zeros(1000, dtype=int)
    y[[0, 700, 800, 900, 950, 999]] = 1
    bands = score_bands(y, p)
    assert bands["band"].tolist() == [1, 2, 3, 4, 5]
    assert bands["count"].tolist() == [600, 100, 100, 100, 100]
    assert bands["bads"].tolist() == [1, 0, 1, 1, 3]
    np.testing.assert_allclose(bands["cumulative_bad_capture"], [6 / 6, 5 / 6, 5 / 6, 4 / 6, 3 / 6])
    np.testing.assert_allclose(bands["cumulative_population"], [1.0, 0.4, 0.3, 0.2, 0.1])


def test_score_bands_hand_worked_small_table() -> None:
    bands = score_bands([0, 1, 0, 1], [0.4, 0.1, 0.3, 0.2], n_bands=2)
    expected = pd.DataFrame(
        {
            "band": [1, 2],
            "count": [2, 2],
            "min_pd": [0.1, 0.3],
            "max_pd": [0.2, 0.4],
            "predicted_pd": [0.15, 0.35],
            "observed_bad_rate": [1.0, 0.0],
            "bads": [2, 0],
            "cumulative_bad_capture": [1.0, 0.0],
            "cumulative_population": [1.0, 0.5],
        }
    )
    pd.testing.assert_frame_equal(bands, expected, check_dtype=False)


def test_score_bands_without_bads_have_nan_capture() -> None:
    bands = score_bands([0, 0, 0], [0.1, 0.2, 0.3], n_bands=3)
    assert bands["cumulative_bad_capture"].isna().all()
    assert bands["count"].tolist() == [1, 1, 1]


@pytest.mark.parametrize("n_bands", [0, -3, 2.5, True])
def test_score_bands_reject_bad_band_counts(n_bands: Any) -> None:
    with pytest.raises(ValueError, match="n_bands"):
        score_bands([0, 1], [0.1, 0.9], n_bands=n_bands)


# --------------------------------------------------------------------------- the registry


def test_registry_holds_exactly_the_contracted_names_by_kind() -> None:
    by_kind = {
        kind: {name for name, metric in m.METRICS.items() if metric.kind == kind}
        for kind in ("score", "decision", "evidence")
    }
    assert by_kind == {"score": SCORE_NAMES, "decision": DECISION_NAMES, "evidence": EVIDENCE_NAMES}
    assert m.metric_names() == sorted(SCORE_NAMES | DECISION_NAMES | EVIDENCE_NAMES)
    assert set(m.score_metrics(*make_data(0))) == SCORE_NAMES
    assert set(m.decision_metrics(*make_data(0), threshold=0.3)) == DECISION_NAMES


@pytest.mark.parametrize(
    ("name", "greater_is_better"),
    [
        ("auc", True),
        ("gini", True),
        ("ks", True),
        ("brier", False),
        ("log_loss", False),
        ("ece", False),
        ("recall_at_1pct_fpr", True),
        ("bad_rate_approved", False),
        ("expected_cost", False),
        ("psi_max", False),
        ("score_psi", False),
        ("selection_rate_ratio", True),
        ("equalized_odds_difference", False),
    ],
)
def test_greater_is_better_flags(name: str, greater_is_better: bool) -> None:
    assert m.get_metric(name).greater_is_better is greater_is_better


def test_registry_is_read_only_and_metrics_frozen() -> None:
    with pytest.raises(TypeError):
        m.METRICS["auc"] = m.METRICS["brier"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.METRICS["auc"].greater_is_better = False  # type: ignore[misc]


def test_only_evidence_metrics_lack_a_function() -> None:
    assert {n for n, metric in m.METRICS.items() if metric.fn is None} == EVIDENCE_NAMES
    with pytest.raises(ValueError, match="evidence"):
        m.Metric("x", True, "evidence", "one line", fn=lambda: 0.0)
    with pytest.raises(ValueError, match="one non-empty line"):
        m.Metric("x", True, "evidence", "two\nlines", fn=None)


def test_registered_functions_agree_with_the_batch_functions() -> None:
    y, p = make_data(5)
    scores = m.score_metrics(y, p)
    for name in SCORE_NAMES:
        fn = m.get_metric(name).fn
        assert fn is not None
        assert fn(list(y), list(p)) == pytest.approx(scores[name], abs=1e-12), name
    decisions = m.decision_metrics(
        y, p, threshold=0.25, cost_false_negative=5.0, cost_false_positive=1.0
    )
    for name in DECISION_NAMES:
        fn = m.get_metric(name).fn
        assert fn is not None
        got = fn(y, p, threshold=0.25, cost_false_negative=5.0, cost_false_positive=1.0)
        assert got == pytest.approx(decisions[name], abs=1e-12), name


def test_unknown_name_raises_key_error_with_did_you_mean_and_valid_names() -> None:
    with pytest.raises(KeyError) as excinfo:
        m.get_metric("acu")
    message = str(excinfo.value)
    assert "'acu'" in message
    assert "Did you mean 'auc'" in message
    assert "brier" in message and "psi_max" in message


def test_unknown_name_far_from_everything_lists_names_without_a_guess() -> None:
    with pytest.raises(KeyError) as excinfo:
        m.get_metric("zzzzzz")
    assert "Did you mean" not in str(excinfo.value)
    assert "auc" in str(excinfo.value)


def test_objective_direction() -> None:
    assert m.objective_direction("auc") == "maximize"
    assert m.objective_direction("brier") == "minimize"
    with pytest.raises(ValueError, match="score metrics"):
        m.objective_direction("psi_max")
    with pytest.raises(ValueError, match="decision"):
        m.objective_direction("precision")
    with pytest.raises(KeyError, match="auc"):
        m.objective_direction("acu")


def test_importing_the_registry_does_not_import_sklearn_or_pandas() -> None:
    # `creditgov validate` loads the registry to check names; it must stay fast.
    code = (
        "import sys, evaluation.metrics; "
        "print(sorted(k for k in ('sklearn', 'pandas', 'scipy') if k in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --------------------------------------------------------------------------- bad inputs

ENTRY_POINTS: list[Callable[[Any, Any], object]] = [
    m.score_metrics,
    lambda y, p: m.decision_metrics(y, p, threshold=0.5),
    score_bands,
    m.ks_statistic,
    m.expected_calibration_error,
    m.recall_at_fpr,
    lambda y, p: m.precision_at_k(y, p, k=1),
]
ENTRY_IDS = ["score", "decision", "bands", "ks", "ece", "recall_at_fpr", "precision_at_k"]


@pytest.mark.parametrize("entry", ENTRY_POINTS, ids=ENTRY_IDS)
@pytest.mark.parametrize(
    ("y_true", "y_prob", "match"),
    [
        ([0, 1, 0], [0.1, 0.9], "differ in length"),
        ([0, 1], [0.1, 1.2], r"\[0, 1\]"),
        ([0, 1], [-0.1, 0.9], r"\[0, 1\]"),
        ([0, 1], [0.1, math.nan], "NaN"),
        ([0, 1], [0.1, math.inf], "NaN/inf"),
        ([0, 1, 2], [0.1, 0.5, 0.9], "binary"),
        ([0, 1, math.nan], [0.1, 0.5, 0.9], "y_true contains 1 NaN"),
        (["good", "bad"], [0.1, 0.9], "positive_label"),
        ([], [], "empty"),
        ([0, 1], [[0.9, 0.1], [0.2, 0.8]], r"\[:, 1\]"),
        ([0, 1], ["low", "high"], "numeric"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_problem(
    entry: Callable[[Any, Any], object], y_true: Any, y_prob: Any, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        entry(y_true, y_prob)


@pytest.mark.parametrize(
    "call",
    [
        lambda: m.score_metrics([0, 0, 0], [0.1, 0.2, 0.3]),
        lambda: m.ks_statistic([1, 1], [0.1, 0.2]),
        lambda: m.get_metric("auc").fn([0, 0], [0.1, 0.2]),  # type: ignore[misc]
    ],
    ids=["score_metrics", "ks", "auc"],
)
def test_ranking_metrics_refuse_a_single_class(call: Callable[[], object]) -> None:
    with pytest.raises(ValueError, match="only class"):
        call()


def test_probability_metrics_work_on_a_single_class() -> None:
    brier = m.get_metric("brier").fn
    assert brier is not None
    assert brier([0, 0], [0.1, 0.3]) == pytest.approx((0.01 + 0.09) / 2)
    assert m.decision_metrics([0, 0], [0.1, 0.6], threshold=0.5)["false_positives"] == 1.0


def test_bool_labels_and_pandas_inputs_are_accepted() -> None:
    y, p = make_data(2)
    expected = m.score_metrics(y, p)
    got = m.score_metrics(pd.Series(y.astype(bool)), pd.Series(p))
    assert got == pytest.approx(expected)
