"""Pins the bootstrap intervals of evaluation.fairness against fairlearn's own bootstrap.

fairlearn's MetricFrame resamples rows; evaluation.fairness_intervals draws the cell counts
from a multinomial instead. The two must agree in distribution (within Monte-Carlo error)
and, resample for resample, in the statistic computed (exactly).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    selection_rate,
)
from numpy.typing import NDArray

from evaluation.fairness import FairnessResult, assess_fairness, protected_groups
from evaluation.fairness_intervals import Interval, bootstrap_intervals, resample_statistics

THRESHOLD = 0.25


def risk_data(n: int, seed: int) -> tuple[NDArray[np.int64], NDArray[np.float64], pd.DataFrame]:
    """Three groups of rising risk, so their approval rates differ (ratio about 0.53)."""
    rng = np.random.default_rng(seed)
    g = rng.choice(np.array(["a", "b", "c"], dtype=object), n, p=[0.4, 0.35, 0.25])
    shift = pd.Series(g).map({"a": 0.0, "b": 0.4, "c": 0.8}).to_numpy(dtype=float)
    p = 1 / (1 + np.exp(-(-1.5 + shift + rng.normal(0, 1, n))))
    y = (rng.random(n) < p).astype(np.int64)
    return y, p, pd.DataFrame({"g": g})


def ends(interval: Interval | None) -> tuple[float, float]:
    assert interval is not None
    return interval.low, interval.high


def width(interval: Interval | None) -> float:
    low, high = ends(interval)
    return high - low


@pytest.fixture(scope="module")
def fairlearn_case() -> tuple[MetricFrame, FairnessResult]:
    """fairlearn's bootstrap of the approval rate (1000 row resamples) and ours (1000 draws)."""
    y, p, protected = risk_data(2000, seed=5)
    declined = (p >= THRESHOLD).astype(np.int64)

    def approval(y_true: Any, y_pred: Any) -> float:
        return float(selection_rate(y_true, y_pred, pos_label=0))

    frame = MetricFrame(
        metrics={"approval": approval},
        y_true=y,
        y_pred=declined,
        sensitive_features=protected["g"],
        n_boot=1000,
        ci_quantiles=[0.025, 0.975],
        random_state=0,
    )
    result = assess_fairness(
        y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected, n_boot=1000, seed=0
    )
    assert not any(g.small for g in result.groups)  # the comparison is over all groups
    return frame, result


def test_approval_ratio_interval_agrees_with_fairlearn_ratio_ci(
    fairlearn_case: tuple[MetricFrame, FairnessResult],
) -> None:
    frame, result = fairlearn_case
    (summary,) = result.attributes
    low, high = (float(q["approval"]) for q in frame.ratio_ci(method="between_groups"))
    assert summary.selection_rate_ratio == pytest.approx(
        frame.ratio(method="between_groups")["approval"], abs=1e-12
    )
    ours = ends(summary.selection_rate_ratio_ci)
    assert ours == pytest.approx((low, high), abs=0.015)
    assert ours[0] < summary.selection_rate_ratio < ours[1]


def test_parity_difference_interval_agrees_with_fairlearn_difference_ci(
    fairlearn_case: tuple[MetricFrame, FairnessResult],
) -> None:
    frame, result = fairlearn_case
    (summary,) = result.attributes
    low, high = (float(q["approval"]) for q in frame.difference_ci(method="between_groups"))
    assert summary.demographic_parity_difference == pytest.approx(
        frame.difference(method="between_groups")["approval"], abs=1e-12
    )
    ours = ends(summary.demographic_parity_difference_ci)
    assert ours == pytest.approx((low, high), abs=0.015)
    assert ours[0] < summary.demographic_parity_difference < ours[1]
    # Equalized odds has no fairlearn interval to compare with; it must still hold the point.
    eod_low, eod_high = ends(summary.equalized_odds_difference_ci)
    assert eod_low < summary.equalized_odds_difference < eod_high


def test_each_resample_statistic_equals_fairlearn_on_the_resampled_rows() -> None:
    """A row resample, reduced to its cell counts, gives fairlearn's numbers on those rows."""
    y, p, protected = risk_data(1500, seed=8)
    declined = (p >= THRESHOLD).astype(np.int64)
    codes = pd.Categorical(protected["g"], categories=["a", "b", "c"]).codes.astype(np.intp)

    def counts(rows: NDArray[np.int64]) -> NDArray[np.float64]:
        cell = codes[rows] * 4 + y[rows] * 2 + declined[rows]
        return np.bincount(cell, minlength=12).reshape(3, 2, 2).astype(np.float64)

    rng = np.random.default_rng(42)
    full = counts(np.arange(y.shape[0]))
    draws = [
        np.asarray(rng.integers(0, y.shape[0], size=y.shape[0]), dtype=np.int64) for _ in range(5)
    ]
    ratio, dpd, eod = resample_statistics(np.stack([counts(r) for r in draws]), full)
    for i, rows in enumerate(draws):
        yr, dr, sf = y[rows], declined[rows], protected["g"].to_numpy()[rows]
        assert ratio[i] == pytest.approx(
            demographic_parity_ratio(yr, 1 - dr, sensitive_features=sf), abs=1e-12
        )
        assert dpd[i] == pytest.approx(
            demographic_parity_difference(yr, 1 - dr, sensitive_features=sf), abs=1e-12
        )
        assert eod[i] == pytest.approx(
            equalized_odds_difference(yr, dr, sensitive_features=sf), abs=1e-12
        )


def test_a_resample_where_a_counted_group_lacks_rows_or_bads_is_nan() -> None:
    # Two groups; rows are counts[(y, d)] with y 0 good / 1 bad and d 0 approved / 1 declined.
    full = np.array([[[60, 20], [5, 15]], [[50, 30], [4, 16]]], dtype=np.float64)
    resamples = np.array(
        [
            full,  # as the data: ratio (69/100 vs 54/100), DPD, EOD defined
            [[[60, 20], [5, 15]], [[50, 30], [0, 0]]],  # group 2 without bads
            [[[60, 20], [5, 15]], [[0, 0], [0, 0]]],  # group 2 without rows
        ],
        dtype=np.float64,
    )
    ratio, dpd, eod = resample_statistics(resamples, full)
    # Group 1: approved 65/100, TPR 15/20, FPR 20/80; group 2: approved 54/100, TPR 16/20,
    # FPR 30/80 -> ratio 54/65, DPD .11, EOD max(.05, .125)
    assert ratio[0] == pytest.approx(54 / 65) and dpd[0] == pytest.approx(0.11)
    assert eod[0] == pytest.approx(0.125)
    # Without bads group 2 approves 50/80: the approval numbers stand, equalized odds does not.
    assert ratio[1] == pytest.approx((50 / 80) / 0.65) and math.isnan(eod[1])
    assert math.isnan(ratio[2]) and math.isnan(dpd[2]) and math.isnan(eod[2])


def test_resamples_losing_a_thin_groups_bads_are_dropped_not_counted() -> None:
    # "thin" has 1 bad in 60 rows: about 37% of resamples hold none of it (e^-1).
    y, p, protected = risk_data(2000, seed=2)
    thin_y = np.zeros(60, dtype=np.int64)
    thin_y[0] = 1
    y = np.concatenate([y, thin_y])
    p = np.concatenate([p, np.linspace(0.05, 0.5, 60)])
    protected = pd.concat([protected, pd.DataFrame({"g": ["thin"] * 60})], ignore_index=True)
    result = assess_fairness(
        y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected, min_group_bads=1, n_boot=400
    )
    (summary,) = result.attributes
    assert "thin" in summary.group_sizes
    low, high = ends(summary.equalized_odds_difference_ci)
    # thin's one bad is approved (p = .05 < .25: TPR 0), so EOD is about the others' TPR
    # (~.8). Judging a resample without thin's bad over the other groups would give a much
    # smaller gap in over a third of the resamples and pull the low end far down.
    assert math.isfinite(low) and low <= summary.equalized_odds_difference <= high
    assert low > 0.5


def test_all_attributes_are_read_off_the_same_draws() -> None:
    # "b" is "a" relabelled, and a×b is the same partition again: in every resample the
    # three attributes have the same numbers, so their intervals -- and the worst -- coincide.
    y, p, protected = risk_data(3000, seed=4)
    protected = protected.assign(b=protected["g"].map({"a": "x", "b": "y", "c": "z"}))
    result = assess_fairness(y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected)
    first = result.attributes[0]
    assert [a.attribute for a in result.attributes] == ["g", "b", "g×b"]
    for attribute in result.attributes[1:]:
        assert attribute.selection_rate_ratio_ci == first.selection_rate_ratio_ci
        assert attribute.equalized_odds_difference_ci == first.equalized_odds_difference_ci
    assert result.selection_rate_ratio_ci == first.selection_rate_ratio_ci
    assert result.demographic_parity_difference_ci == first.demographic_parity_difference_ci


def test_the_worst_interval_bootstraps_the_worst_number_per_resample() -> None:
    y, p, protected = risk_data(3000, seed=9)
    rng = np.random.default_rng(1)
    protected = protected.assign(region=rng.choice(["n", "s"], size=len(protected)))
    result = assess_fairness(y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected)
    assert len(result.attributes) == 3
    # The minimum over attributes is below each attribute in every resample, and quantiles
    # keep that order; the maximum differences stay above each attribute's.
    ratio = [ends(a.selection_rate_ratio_ci) for a in result.attributes]
    low, high = ends(result.selection_rate_ratio_ci)
    assert low <= min(r[0] for r in ratio) and high <= min(r[1] for r in ratio)
    eod = [ends(a.equalized_odds_difference_ci) for a in result.attributes]
    low, high = ends(result.equalized_odds_difference_ci)
    assert low >= max(e[0] for e in eod) and high >= max(e[1] for e in eod)
    assert low <= result.equalized_odds_difference <= high


def test_intervals_narrow_as_one_over_root_n() -> None:
    small = risk_data(2000, seed=5)
    large = risk_data(32000, seed=6)  # 16x the rows: intervals about 1/4 as wide
    results = [
        assess_fairness(
            y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected, n_boot=1000, seed=0
        ).attributes[0]
        for y, p, protected in (small, large)
    ]
    for field in (
        "selection_rate_ratio_ci",
        "demographic_parity_difference_ci",
        "equalized_odds_difference_ci",
    ):
        shrink = width(getattr(results[1], field)) / width(getattr(results[0], field))
        assert 0.15 < shrink < 0.4, (field, shrink)


def test_the_seed_makes_the_intervals_reproducible() -> None:
    y, p, protected = risk_data(2000, seed=3)
    kwargs: dict[str, Any] = {"y_true": y, "y_prob": p, "threshold": THRESHOLD}
    one = assess_fairness(protected=protected, seed=7, **kwargs).attributes[0]
    again = assess_fairness(protected=protected, seed=7, **kwargs).attributes[0]
    other = assess_fairness(protected=protected, seed=8, **kwargs).attributes[0]
    assert one.selection_rate_ratio_ci == again.selection_rate_ratio_ci
    assert one.equalized_odds_difference_ci == again.equalized_odds_difference_ci
    assert one.selection_rate_ratio_ci != other.selection_rate_ratio_ci


def test_no_resamples_or_no_comparison_give_no_interval() -> None:
    y, p, protected = risk_data(2000, seed=3)
    kwargs: dict[str, Any] = {"y_true": y, "y_prob": p, "threshold": THRESHOLD}
    none = assess_fairness(protected=protected, n_boot=0, **kwargs)
    assert none.n_boot == 0 and none.selection_rate_ratio_ci is None
    assert none.attributes[0].demographic_parity_difference_ci is None
    # One group ("one") on its own: no point estimate, no interval, and no worst interval.
    protected = protected.assign(one="x")
    result = assess_fairness(protected=protected, **kwargs)
    assert result.attributes[0].selection_rate_ratio_ci is not None
    (lonely,) = [a for a in result.attributes if a.attribute == "one"]
    assert math.isnan(lonely.selection_rate_ratio) and lonely.selection_rate_ratio_ci is None
    assert math.isnan(result.selection_rate_ratio) and result.selection_rate_ratio_ci is None
    assert result.equalized_odds_difference_ci is None


def test_a_counted_group_without_bads_keeps_its_fpr_in_the_interval() -> None:
    # min_group_bads=0 counts a group with goods only: like the point estimate, the
    # interval's TPR gap leaves it out and its FPR gap keeps it.
    y, p, protected = risk_data(2000, seed=3)
    y = np.concatenate([y, np.zeros(200, dtype=np.int64)])
    p = np.concatenate([p, np.full(100, 0.9), np.full(100, 0.1)])
    protected = pd.concat([protected, pd.DataFrame({"g": ["goods"] * 200})], ignore_index=True)
    result = assess_fairness(
        y_true=y, y_prob=p, threshold=THRESHOLD, protected=protected, min_group_bads=0
    )
    (summary,) = result.attributes
    assert "goods" in summary.group_sizes
    low, high = ends(summary.equalized_odds_difference_ci)
    assert low <= summary.equalized_odds_difference <= high


def test_intervals_serialise_as_low_high() -> None:
    interval = Interval(0.71, 0.86)
    assert json.loads(json.dumps(interval.to_json())) == {"low": 0.71, "high": 0.86}
    assert interval.contains(0.8) and not interval.contains(0.9)


def test_two_hundred_resamples_of_100k_rows_by_three_attributes_take_well_under_a_second() -> None:
    rng = np.random.default_rng(0)
    n = 100_000
    protected = pd.DataFrame(
        {
            "sex": rng.choice(["F", "M"], n),
            "age": rng.integers(18, 80, n).astype(float),
            "region": rng.choice(["n", "s", "e", "w"], n),
        }
    )
    p = rng.beta(2, 8, n)
    y = (rng.random(n) < p).astype(np.int64)
    grouping = protected_groups(protected, {"age": [25, 35, 50, 65]}, n)
    codes = [pd.Categorical(labels, categories=order).codes for _, labels, order in grouping]
    counted = [np.ones(len(order), dtype=bool) for _, _, order in grouping]
    declined = (p >= 0.3).astype(np.int64)
    start = time.perf_counter()
    result = bootstrap_intervals(
        codes=codes, counted=counted, y=y, declined=declined, n_boot=200, seed=0
    )
    elapsed = time.perf_counter() - start
    assert len(result.attributes) == 4 and result.worst.selection_rate_ratio is not None
    assert elapsed < 0.5, elapsed
