"""Pins evaluation.fairness against hand-worked numbers and against fairlearn / sklearn."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from evaluation.fairness import (
    MISSING,
    FairnessResult,
    GroupMetrics,
    assess_fairness,
    band,
)

AGE_EDGES = [25, 35, 50, 65]
AGE_BANDS = ["<25", "25-34", "35-49", "50-64", "65+"]


def group(result: FairnessResult, attribute: str, name: str) -> GroupMetrics:
    (row,) = [g for g in result.groups if g.attribute == attribute and g.group == name]
    return row


def summary_of(result: FairnessResult, attribute: str) -> Any:
    (s,) = [a for a in result.attributes if a.attribute == attribute]
    return s


# --------------------------------------------------------------------------- hand-worked


def hand_worked() -> tuple[NDArray[np.int64], NDArray[np.float64], pd.DataFrame]:
    """12 rows, threshold 0.5, rows interleaved and the frame's index not 0..n-1.

    F: y = 1 1 0 0 0 0, p = .9 .4 .5 .3 .2 .1  -> declined (p >= .5): .9 and .5
    M: y = 1 1 1 0 0 0, p = .8 .7 .6 .3 .2 .1  -> declined: .8 .7 .6
    """
    rows = [
        ("F", 1, 0.9),
        ("M", 1, 0.8),
        ("F", 1, 0.4),
        ("M", 1, 0.7),
        ("F", 0, 0.5),  # exactly at the threshold: declined
        ("M", 1, 0.6),
        ("F", 0, 0.3),
        ("M", 0, 0.3),
        ("F", 0, 0.2),
        ("M", 0, 0.2),
        ("F", 0, 0.1),
        ("M", 0, 0.1),
    ]
    sex = [r[0] for r in rows]
    y = np.array([r[1] for r in rows], dtype=np.int64)
    p = np.array([r[2] for r in rows], dtype=np.float64)
    protected = pd.DataFrame({"sex": sex}, index=range(100, 112))
    return y, p, protected


def test_hand_worked_twelve_rows_match_the_arithmetic() -> None:
    y, p, protected = hand_worked()
    # F has 2 bads and M 3 goods: min_group_bads=2 counts both (the default 20 would not).
    result = assess_fairness(
        y_true=y, y_prob=p, threshold=0.5, protected=protected, min_group_size=6, min_group_bads=2
    )

    f, m = group(result, "sex", "F"), group(result, "sex", "M")
    assert (f.bads, f.goods, m.bads, m.goods) == (2, 4, 3, 3)
    # F: 6 rows, 2 declined (.9, .5)          -> approval 4/6 = 2/3; bads 2/6 = 1/3
    #    bads .9 (declined) .4 (approved)     -> TPR 1/2
    #    goods .5 (declined) .3 .2 .1         -> FPR 1/4
    #    AUC: 8 bad-good pairs; .9 beats all 4, .4 beats .3 .2 .1 only -> 7/8
    assert (f.count, f.small) == (6, False)  # 6 == min_group_size: counted, not small
    assert f.approval_rate == pytest.approx(4 / 6)
    assert f.bad_rate == pytest.approx(2 / 6)
    assert f.tpr == pytest.approx(1 / 2)
    assert f.fpr == pytest.approx(1 / 4)
    assert f.auc == pytest.approx(7 / 8)
    # M: 6 rows, 3 declined (.8 .7 .6, all bads) -> approval 3/6 = 1/2; bads 3/6
    #    TPR 3/3 = 1; FPR 0/3 = 0; every bad outranks every good -> AUC 9/9 = 1
    assert (m.count, m.small) == (6, False)
    assert m.approval_rate == pytest.approx(1 / 2)
    assert m.bad_rate == pytest.approx(1 / 2)
    assert m.tpr == pytest.approx(1.0)
    assert m.fpr == pytest.approx(0.0)
    assert m.auc == pytest.approx(1.0)

    s = summary_of(result, "sex")
    # ratio = lowest / highest approval = (1/2) / (2/3) = 3/4  (fails the four-fifths screen)
    assert s.selection_rate_ratio == pytest.approx(3 / 4)
    # DPD = 2/3 - 1/2 = 1/6
    assert s.demographic_parity_difference == pytest.approx(1 / 6)
    # EOD = max(|TPR_F - TPR_M|, |FPR_F - FPR_M|) = max(|1/2 - 1|, |1/4 - 0|) = 1/2
    assert s.equalized_odds_difference == pytest.approx(1 / 2)
    assert (s.lowest_group, s.highest_group) == ("M", "F")
    assert dict(s.group_sizes) == {"F": 6, "M": 6}
    assert s.excluded_small == ()

    # One attribute: no intersection, and the worst over attributes is that attribute.
    assert [a.attribute for a in result.attributes] == ["sex"]
    assert result.selection_rate_ratio == pytest.approx(3 / 4)
    assert result.demographic_parity_difference == pytest.approx(1 / 6)
    assert result.equalized_odds_difference == pytest.approx(1 / 2)
    assert (result.min_group_size, result.min_group_bads) == (6, 2)


def test_hand_worked_numbers_agree_with_fairlearn() -> None:
    y, p, protected = hand_worked()
    declined = (p >= 0.5).astype(int)
    sex = protected["sex"].to_numpy()
    result = assess_fairness(y_true=y, y_prob=p, threshold=0.5, protected=protected)
    s = summary_of(result, "sex")
    # min_group_size defaults to 30, so both 6-row groups are small: shown, not summarised.
    assert s.excluded_small == ("F", "M")
    assert dict(s.excluded_reasons) == {
        "F": "6 rows < 30, 2 bads < 20, 4 goods < 20",
        "M": "6 rows < 30, 3 bads < 20, 3 goods < 20",
    }
    assert math.isnan(s.selection_rate_ratio)
    assert math.isnan(result.selection_rate_ratio)

    result = assess_fairness(
        y_true=y, y_prob=p, threshold=0.5, protected=protected, min_group_size=1, min_group_bads=1
    )
    s = summary_of(result, "sex")
    assert s.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y, 1 - declined, sensitive_features=sex)
    )
    assert s.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y, declined, sensitive_features=sex)
    )


# --------------------------------------------------------------------------- against fairlearn


def random_data(seed: int = 7, n: int = 5000) -> tuple[NDArray[Any], NDArray[Any], pd.DataFrame]:
    rng = np.random.default_rng(seed)
    sex = rng.choice(np.array(["F", "M"], dtype=object), size=n, p=[0.45, 0.55])
    sex[rng.random(n) < 0.01] = None
    age = np.rint(rng.normal(42, 14, size=n)).clip(18, 85)
    age[rng.random(n) < 0.03] = np.nan
    region = rng.choice(["north", "south", "east", "west"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    # Scores depend on age so approval rates differ by band.
    logit = -1.6 - 0.03 * (np.nan_to_num(age, nan=42.0) - 42) + rng.normal(0, 1, n)
    p = 1 / (1 + np.exp(-logit))
    y = (rng.random(n) < p).astype(np.int64)
    protected = pd.DataFrame({"sex": sex, "age": age, "region": region})
    return y, p, protected


def oracle_labels(protected: pd.DataFrame) -> dict[str, NDArray[Any]]:
    """The groups built independently of evaluation.fairness (pd.cut, fillna, join)."""
    age = pd.cut(
        protected["age"], bins=[-np.inf, *AGE_EDGES, np.inf], right=False, labels=AGE_BANDS
    )
    cols = {
        "sex": protected["sex"].fillna(MISSING).astype(str).to_numpy(),
        "age": age.astype(object).fillna(MISSING).astype(str).to_numpy(),
        "region": protected["region"].astype(str).to_numpy(),
    }
    cols["sex×age×region"] = np.array(
        ["×".join(t) for t in zip(cols["sex"], cols["age"], cols["region"], strict=True)]
    )
    return cols


@pytest.fixture(scope="module")
def random_case() -> tuple[NDArray[Any], NDArray[Any], pd.DataFrame, FairnessResult]:
    y, p, protected = random_data()
    result = assess_fairness(
        y_true=y, y_prob=p, threshold=0.3, protected=protected, bins={"age": AGE_EDGES}
    )
    return y, p, protected, result


def test_every_group_number_equals_fairlearn_metricframe_and_sklearn(
    random_case: tuple[NDArray[Any], NDArray[Any], pd.DataFrame, FairnessResult],
) -> None:
    y, p, protected, result = random_case
    declined = (p >= 0.3).astype(np.int64)
    labels = oracle_labels(protected)
    assert [a.attribute for a in result.attributes] == list(labels)

    for attribute, sf in labels.items():
        by_group = MetricFrame(
            metrics={
                "count": count,
                "decline_rate": selection_rate,
                "tpr": true_positive_rate,
                "fpr": false_positive_rate,
            },
            y_true=y,
            y_pred=declined,
            sensitive_features=sf,
        ).by_group
        rows = [g for g in result.groups if g.attribute == attribute]
        assert sorted(g.group for g in rows) == sorted(by_group.index)
        for g in rows:
            mask = sf == g.group
            assert g.count == by_group.loc[g.group, "count"] == mask.sum()
            assert g.approval_rate == pytest.approx(
                1 - by_group.loc[g.group, "decline_rate"], abs=1e-12
            )
            assert g.bad_rate == pytest.approx(y[mask].mean(), abs=1e-12)
            assert (g.bads, g.goods) == (y[mask].sum(), mask.sum() - y[mask].sum())
            assert g.small == (g.count < 30 or g.bads < 20 or g.goods < 20)
            # fairlearn's TPR / FPR say 0 where the group has no bads / goods; we say NaN.
            if y[mask].sum() == 0:
                assert math.isnan(g.tpr)
            else:
                assert g.tpr == pytest.approx(by_group.loc[g.group, "tpr"], abs=1e-12)
            if y[mask].sum() == mask.sum():
                assert math.isnan(g.fpr)
            else:
                assert g.fpr == pytest.approx(by_group.loc[g.group, "fpr"], abs=1e-12)
            if 0 < y[mask].sum() < mask.sum():
                assert g.auc == pytest.approx(roc_auc_score(y[mask], p[mask]), abs=1e-12)
            else:
                assert math.isnan(g.auc)

    # The fixture must exercise what it claims to: small groups in the 3-way intersection,
    # and one marginal group (50 rows, 9 bads) that is small by its bads alone.
    assert any(g.small for g in result.groups if g.attribute == "sex×age×region")
    small = [g for g in result.groups if g.small and g.attribute in ("sex", "age", "region")]
    assert [(g.group, g.count, g.bads) for g in small] == [(MISSING, 50, 9)]
    assert dict(summary_of(result, "sex").excluded_reasons) == {MISSING: "9 bads < 20"}


def test_summaries_equal_fairlearn_functions_when_no_group_is_small() -> None:
    y, p, protected = random_data(seed=11)
    protected = protected[["sex", "age"]].assign(sex=protected["sex"].fillna("F"))
    threshold = 0.3
    declined = (p >= threshold).astype(np.int64)
    approved = 1 - declined
    # F×65+ has 10 bads: min_group_bads=10 keeps every group counted.
    result = assess_fairness(
        y_true=y,
        y_prob=p,
        threshold=threshold,
        protected=protected,
        bins={"age": AGE_EDGES},
        min_group_bads=10,
    )
    assert not any(g.small for g in result.groups)  # precondition of the comparison

    labels = oracle_labels(protected.assign(region=""))
    labels["sex×age"] = np.array(
        ["×".join(t) for t in zip(labels["sex"], labels["age"], strict=True)]
    )
    for attribute in ("sex", "age", "sex×age"):
        s, sf = summary_of(result, attribute), labels[attribute]
        dpd = demographic_parity_difference(y, approved, sensitive_features=sf)
        assert s.demographic_parity_difference == pytest.approx(dpd, abs=1e-12)
        # The same gap on the decline decision.
        assert s.demographic_parity_difference == pytest.approx(
            demographic_parity_difference(y, declined, sensitive_features=sf), abs=1e-12
        )
        assert s.equalized_odds_difference == pytest.approx(
            equalized_odds_difference(y, declined, sensitive_features=sf), abs=1e-12
        )
        # selection_rate_ratio is fairlearn's demographic parity ratio on approvals.
        assert s.selection_rate_ratio == pytest.approx(
            demographic_parity_ratio(y, approved, sensitive_features=sf), abs=1e-12
        )
        assert dict(s.group_sizes) == dict(zip(*np.unique(sf, return_counts=True), strict=True))

    assert [a.attribute for a in result.attributes] == ["sex", "age", "sex×age"]
    ratios = [a.selection_rate_ratio for a in result.attributes]
    assert result.selection_rate_ratio == min(ratios)
    assert result.demographic_parity_difference == max(
        a.demographic_parity_difference for a in result.attributes
    )
    assert result.equalized_odds_difference == max(
        a.equalized_odds_difference for a in result.attributes
    )
    # The intersection is the worst here: the marginals alone would understate the gap.
    assert result.selection_rate_ratio < min(ratios[:2])


# --------------------------------------------------------------------------- banding


def test_band_edges_are_closed_below_open_above_with_open_ends() -> None:
    values = pd.Series(
        [18, 24.9, 25, 34, 34.99, 35, 49, 50, 64, 64.5, 65, 90, np.nan],
        index=list("abcdefghijklm"),
        name="age",
    )
    banded = band(values, AGE_EDGES)
    assert banded.tolist() == [
        "<25",
        "<25",
        "25-34",
        "25-34",
        "25-34",
        "35-49",
        "35-49",
        "50-64",
        "50-64",
        "50-64",
        "65+",
        "65+",
        MISSING,
    ]
    assert list(banded.cat.categories) == [*AGE_BANDS, MISSING]
    assert banded.cat.ordered
    assert list(banded.index) == list(values.index)
    assert banded.name == "age"


def test_band_labels_for_unit_and_fractional_edges_and_nullable_ints() -> None:
    assert band(pd.Series([0, 1, 2, 3]), [1, 2]).tolist() == ["<1", "1", "2+", "2+"]
    assert band(pd.Series([0.1, 0.5, 1.0, 1.5]), [0.5, 1.5]).tolist() == [
        "<0.5",
        "0.5-<1.5",
        "0.5-<1.5",
        "1.5+",
    ]
    nullable = pd.Series([20, None, 70], dtype="Int64", name="age")
    assert band(nullable, AGE_EDGES).tolist() == ["<25", MISSING, "65+"]


@pytest.mark.parametrize("edges", [[], [35, 25], [25, 25], [25, math.inf]])
def test_band_rejects_edges_that_are_not_finite_and_increasing(edges: list[float]) -> None:
    with pytest.raises(ValueError, match=r"evaluation\.fairness\.bins\.age"):
        band(pd.Series([30.0], name="age"), edges)


def test_bins_on_a_text_attribute_are_an_error() -> None:
    with pytest.raises(ValueError, match=r"'sex' has bins but is not numeric"):
        assess_fairness(
            y_true=[0, 1],
            y_prob=[0.1, 0.9],
            threshold=0.5,
            protected=pd.DataFrame({"sex": ["F", "M"]}),
            bins={"sex": [1]},
        )


def test_missing_values_form_their_own_group() -> None:
    protected = pd.DataFrame({"sex": ["F", None, "M", np.nan], "age": [20, np.nan, 40, 70]})
    result = assess_fairness(
        y_true=[0, 1, 0, 1],
        y_prob=[0.1, 0.9, 0.2, 0.8],
        threshold=0.5,
        protected=protected,
        bins={"age": AGE_EDGES},
        min_group_size=1,
    )
    assert [g.group for g in result.groups if g.attribute == "sex"] == ["F", "M", MISSING]
    assert group(result, "sex", MISSING).count == 2
    assert [g.group for g in result.groups if g.attribute == "age"] == [
        "<25",
        "35-49",
        "65+",
        MISSING,
    ]
    assert group(result, "sex×age", f"{MISSING}×{MISSING}").count == 1


def test_intersection_holds_the_combinations_present_in_product_order() -> None:
    protected = pd.DataFrame(
        {"sex": ["M", "F", "F", "M", "F"], "age": [30.0, 70.0, 20.0, 31.0, 22.0]}
    )
    result = assess_fairness(
        y_true=[0, 1, 0, 1, 0],
        y_prob=[0.2, 0.7, 0.1, 0.6, 0.4],
        threshold=0.5,
        protected=protected,
        bins={"age": AGE_EDGES},
        min_group_size=1,
    )
    inter = [g for g in result.groups if g.attribute == "sex×age"]
    # Present: F×<25 (2 rows), F×65+ (1), M×25-34 (2); the other 7 combinations are absent.
    assert [(g.group, g.count) for g in inter] == [("F×<25", 2), ("F×65+", 1), ("M×25-34", 2)]
    expected = [f"{s}×{a}" for s, a in itertools.product(["F", "M"], AGE_BANDS)]
    assert {g.group for g in inter} < set(expected)
    assert sum(g.count for g in inter) == len(protected)


def test_three_attributes_make_one_intersection_and_one_attribute_none() -> None:
    protected = pd.DataFrame({"a": ["x", "y"], "b": ["u", "u"], "c": [1, 2]})
    kwargs: dict[str, Any] = {"y_true": [0, 1], "y_prob": [0.2, 0.8], "threshold": 0.5}
    three = assess_fairness(protected=protected, min_group_size=1, **kwargs)
    assert [a.attribute for a in three.attributes] == ["a", "b", "c", "a×b×c"]
    assert [g.group for g in three.groups if g.attribute == "a×b×c"] == ["x×u×1", "y×u×2"]
    one = assess_fairness(protected=protected[["a"]], min_group_size=1, **kwargs)
    assert [a.attribute for a in one.attributes] == ["a"]


def test_unbinned_numeric_attribute_with_few_values_is_used_as_is_in_numeric_order() -> None:
    protected = pd.DataFrame({"dependents": [10, 2, 1, 2, 1.0, np.nan]})
    result = assess_fairness(
        y_true=[0, 1, 0, 1, 0, 1],
        y_prob=[0.1] * 6,
        threshold=0.5,
        protected=protected,
        min_group_size=1,
    )
    assert [(g.group, g.count) for g in result.groups] == [
        ("1", 2),
        ("2", 2),
        ("10", 1),
        (MISSING, 1),
    ]


def test_unbinned_continuous_attribute_is_an_error_naming_the_config_key() -> None:
    rng = np.random.default_rng(0)
    protected = pd.DataFrame({"sex": ["F", "M"] * 50, "income": rng.normal(50, 10, 100)})
    with pytest.raises(ValueError, match=r"'income'.*add evaluation\.fairness\.bins\.income"):
        assess_fairness(
            y_true=np.tile([0, 1], 50),
            y_prob=rng.random(100),
            threshold=0.5,
            protected=protected,
            bins={"age": AGE_EDGES},
        )


# --------------------------------------------------------------------------- small groups


def small_group_case() -> tuple[NDArray[np.int64], NDArray[np.float64], pd.DataFrame]:
    """A: 100 rows, 20 declined; B: 100 rows, 30 declined; C: 5 rows, all declined.

    A: declined 10 bad + 10 good, approved  5 bad + 75 good -> TPR 10/15, FPR 10/85
    B: declined 15 bad + 15 good, approved  5 bad + 65 good -> TPR 15/20, FPR 15/80
    C: declined  5 bad                                      -> TPR 1, FPR undefined
    """
    parts = []
    for name, n_db, n_dg, n_ab, n_ag in (
        ("A", 10, 10, 5, 75),
        ("B", 15, 15, 5, 65),
        ("C", 5, 0, 0, 0),
    ):
        parts.append(
            pd.DataFrame(
                {
                    "g": name,
                    "y": [1] * n_db + [0] * n_dg + [1] * n_ab + [0] * n_ag,
                    "p": [0.9] * (n_db + n_dg) + [0.1] * (n_ab + n_ag),
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    return frame["y"].to_numpy(), frame["p"].to_numpy(), frame[["g"]]


def test_small_groups_are_shown_and_marked_but_left_out_of_the_summary() -> None:
    y, p, protected = small_group_case()
    # A has 15 bads: min_group_bads=5 keeps it counted, so the row-count rule is what is tested.
    result = assess_fairness(
        y_true=y, y_prob=p, threshold=0.5, protected=protected, min_group_size=30, min_group_bads=5
    )
    c = group(result, "g", "C")
    assert (c.count, c.small, c.approval_rate, c.tpr) == (5, True, 0.0, 1.0)
    assert math.isnan(c.fpr)  # no goods in C
    assert not group(result, "g", "A").small and not group(result, "g", "B").small

    s = summary_of(result, "g")
    assert s.excluded_small == ("C",)
    assert dict(s.excluded_reasons) == {"C": "5 rows < 30, 0 goods < 5"}
    assert dict(s.group_sizes) == {"A": 100, "B": 100}
    # Counted: A approves 80/100, B 70/100 -> ratio 0.7 / 0.8 = 0.875, DPD 0.8 - 0.7 = 0.1
    assert s.selection_rate_ratio == pytest.approx(0.875)
    assert s.demographic_parity_difference == pytest.approx(0.1)
    assert (s.lowest_group, s.highest_group) == ("B", "A")
    # TPR gap 15/20 - 10/15 = 1/12; FPR gap 15/80 - 10/85 = 19/272 -> EOD = 1/12
    assert s.equalized_odds_difference == pytest.approx(1 / 12)
    assert result.selection_rate_ratio == pytest.approx(0.875)

    # Counting C (approval 0) would change every number: ratio 0, DPD 0.8, EOD 1 - 10/15.
    counted = assess_fairness(
        y_true=y, y_prob=p, threshold=0.5, protected=protected, min_group_size=5, min_group_bads=0
    )
    s5 = summary_of(counted, "g")
    assert s5.selection_rate_ratio == 0.0
    assert s5.demographic_parity_difference == pytest.approx(0.8)
    assert s5.equalized_odds_difference == pytest.approx(1 - 10 / 15)
    assert s5.lowest_group == "C"


def test_undefined_rates_are_nan_and_stay_out_of_the_equalized_odds_gap() -> None:
    # A and B as above; D: 40 goods, 4 declined -> TPR undefined (fairlearn would say 0).
    y, p, protected = small_group_case()
    keep = protected["g"] != "C"
    y, p, protected = y[keep], p[keep], protected[keep]
    y = np.concatenate([y, np.zeros(40, dtype=np.int64)])
    p = np.concatenate([p, [0.9] * 4 + [0.1] * 36])
    protected = pd.concat([protected, pd.DataFrame({"g": ["D"] * 40})], ignore_index=True)
    # min_group_bads=0 counts D despite its 0 bads (any value >= 1 would mark it small).
    result = assess_fairness(
        y_true=y, y_prob=p, threshold=0.5, protected=protected, min_group_bads=0
    )
    d = group(result, "g", "D")
    assert math.isnan(d.tpr) and math.isnan(d.auc)
    assert d.fpr == pytest.approx(4 / 40)
    # TPR gap over A, B: 1/12; FPR gap over A, B, D: 15/80 - 4/40 = 7/80 -> EOD 7/80
    assert summary_of(result, "g").equalized_odds_difference == pytest.approx(7 / 80)
    # fairlearn counts D's TPR as 0, which would report a 3/4 gap the data does not show.
    assert equalized_odds_difference(
        y, (p >= 0.5).astype(int), sensitive_features=protected["g"]
    ) == pytest.approx(15 / 20)


def test_one_counted_group_compared_with_nothing_is_nan_not_parity() -> None:
    # A alone is counted; without the NaN rule its ratio would be 1.0 and DPD / EOD 0.
    y, p, protected = small_group_case()
    keep = protected["g"] != "B"
    result = assess_fairness(
        y_true=y[keep], y_prob=p[keep], threshold=0.5, protected=protected[keep], min_group_bads=5
    )
    s = summary_of(result, "g")
    assert math.isnan(s.selection_rate_ratio)
    assert math.isnan(s.demographic_parity_difference)
    assert math.isnan(s.equalized_odds_difference)
    assert (s.lowest_group, s.highest_group, s.excluded_small) == ("A", "A", ("C",))
    assert math.isnan(result.selection_rate_ratio)


def test_an_intersection_with_no_comparable_groups_makes_the_overall_numbers_nan() -> None:
    # Marginals: 40 rows per group (counted). Intersection: 20 rows per cell (all small).
    protected = pd.DataFrame({"sex": ["F", "M"] * 40, "region": ["x"] * 40 + ["y"] * 40})
    y = np.tile([0, 1, 1, 0], 20)  # F rows: 0, 1, ...; M rows: 1, 0, ...: both classes
    p = np.linspace(0, 1, 80)
    result = assess_fairness(y_true=y, y_prob=p, threshold=0.5, protected=protected)
    assert not math.isnan(summary_of(result, "sex").selection_rate_ratio)
    inter = summary_of(result, "sex×region")
    assert math.isnan(inter.selection_rate_ratio)
    assert inter.excluded_small == ("F×x", "F×y", "M×x", "M×y")
    assert inter.lowest_group == ""
    assert math.isnan(result.selection_rate_ratio)
    assert math.isnan(result.demographic_parity_difference)
    assert math.isnan(result.equalized_odds_difference)


# --------------------------------------------------------------------------- edges of the API


@pytest.mark.parametrize("protected", [pd.DataFrame(), pd.DataFrame(index=range(4))])
def test_no_protected_columns_give_no_groups_and_nan_summaries(protected: pd.DataFrame) -> None:
    result = assess_fairness(
        y_true=[0, 1, 0, 1],
        y_prob=[0.1, 0.9, 0.2, 0.8],
        threshold=0.5,
        protected=protected,
        bins={"age": AGE_EDGES},  # configured default, no such column: ignored
    )
    assert result.groups == () and result.attributes == ()
    assert math.isnan(result.selection_rate_ratio)
    assert math.isnan(result.demographic_parity_difference)
    assert math.isnan(result.equalized_odds_difference)
    assert list(result.table().columns) == [
        "attribute",
        "group",
        "count",
        "bads",
        "goods",
        "approval_rate",
        "bad_rate",
        "auc",
        "tpr",
        "fpr",
        "small",
    ]
    assert result.table().empty
    doc = result.to_json()
    assert doc["selection_rate_ratio"] is None and doc["groups"] == []


def test_table_and_json_carry_every_group_and_are_strict_json() -> None:
    y, p, protected = small_group_case()
    result = assess_fairness(
        y_true=y, y_prob=p, threshold=0.5, protected=protected, min_group_bads=5
    )
    table = result.table()
    assert table["group"].tolist() == ["A", "B", "C"]
    assert table["small"].tolist() == [False, False, True]
    doc = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert doc["groups"][2] == {
        "attribute": "g",
        "group": "C",
        "count": 5,
        "bads": 5,
        "goods": 0,
        "approval_rate": 0.0,
        "bad_rate": 1.0,
        "auc": None,
        "tpr": 1.0,
        "fpr": None,
        "small": True,
    }
    assert doc["attributes"][0]["excluded_small"] == ["C"]
    assert doc["attributes"][0]["excluded_reasons"] == {"C": "5 rows < 30, 0 goods < 5"}
    assert doc["attributes"][0]["group_sizes"] == {"A": 100, "B": 100}
    assert doc["selection_rate_ratio"] == pytest.approx(0.875)
    assert (doc["min_group_size"], doc["min_group_bads"], doc["n_boot"]) == (30, 5, 200)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protected": pd.DataFrame({"sex": ["F", "M", "F"]})}, "3 rows but y_true has 2"),
        ({"threshold": 1.5}, "threshold must lie in"),
        ({"min_group_size": 0}, "min_group_size must be an int >= 1"),
        ({"min_group_bads": -1}, "min_group_bads must be an int >= 0"),
        ({"min_group_bads": 2.5}, "min_group_bads must be an int >= 0"),
        ({"n_boot": -1}, "n_boot must be an int >= 0"),
        ({"seed": True}, "seed must be an int >= 0"),
        ({"y_true": [0, 2]}, "binary"),
    ],
)
def test_bad_inputs_are_rejected_with_the_reason(kwargs: dict[str, Any], message: str) -> None:
    args: dict[str, Any] = {
        "y_true": [0, 1],
        "y_prob": [0.2, 0.8],
        "threshold": 0.5,
        "protected": pd.DataFrame({"sex": ["F", "M"]}),
    }
    with pytest.raises(ValueError, match=message):
        assess_fairness(**{**args, **kwargs})


# --------------------------------------------------------------------------- small by bads / goods


def counts_case(
    spec: dict[str, tuple[int, int, int, int]],
) -> tuple[NDArray[np.int64], NDArray[np.float64], pd.DataFrame]:
    """Rows per group from (declined bads, approved bads, declined goods, approved goods)."""
    parts = []
    for name, (db, ab, dg, ag) in spec.items():
        y = [1] * (db + ab) + [0] * (dg + ag)
        p = [0.9] * db + [0.1] * ab + [0.9] * dg + [0.1] * ag
        parts.append(pd.DataFrame({"g": name, "y": y, "p": p}))
    frame = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=3)
    return frame["y"].to_numpy(), frame["p"].to_numpy(), frame[["g"]]


PLANTED = {
    # name: declined bads, approved bads, declined goods, approved goods
    "A": (150, 50, 100, 700),  # 1000 rows: approval .75, TPR .75, FPR .125
    "B": (200, 50, 150, 600),  # 1000 rows: approval .65, TPR .80, FPR .20
    "P": (2, 8, 198, 192),  # 400 rows, 10 bads: approval .50, TPR .20, FPR 198/390
}


def test_a_large_group_with_few_bads_is_small_and_does_not_drive_the_headline() -> None:
    y, p, protected = counts_case(PLANTED)
    result = assess_fairness(y_true=y, y_prob=p, threshold=0.5, protected=protected)
    planted = group(result, "g", "P")
    assert (planted.count, planted.bads, planted.goods, planted.small) == (400, 10, 390, True)
    s = summary_of(result, "g")
    assert s.excluded_small == ("P",)
    assert dict(s.excluded_reasons) == {"P": "10 bads < 20"}
    assert dict(s.group_sizes) == {"A": 1000, "B": 1000}
    # By hand over A and B: ratio .65 / .75; DPD .10; EOD max(|.75 - .80|, |.125 - .20|) = .075
    assert result.selection_rate_ratio == pytest.approx(0.65 / 0.75, abs=1e-12)
    assert result.demographic_parity_difference == pytest.approx(0.10, abs=1e-12)
    assert result.equalized_odds_difference == pytest.approx(0.075, abs=1e-12)

    # Counting P (min_group_bads=10) changes every headline to fairlearn's on all three groups.
    declined = (p >= 0.5).astype(int)
    counted = assess_fairness(
        y_true=y, y_prob=p, threshold=0.5, protected=protected, min_group_bads=10
    )
    assert not group(counted, "g", "P").small
    sf = protected["g"].to_numpy()
    assert counted.selection_rate_ratio == pytest.approx(
        demographic_parity_ratio(y, 1 - declined, sensitive_features=sf), abs=1e-12
    )
    assert counted.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y, declined, sensitive_features=sf), abs=1e-12
    )
    assert counted.selection_rate_ratio == pytest.approx(0.5 / 0.75)  # vs 0.867 without P
    assert counted.equalized_odds_difference == pytest.approx(0.8 - 0.2)  # vs 0.075 without P


def test_a_group_with_few_goods_is_small_too() -> None:
    y, p, protected = counts_case({**PLANTED, "P": (300, 95, 3, 2)})  # 400 rows, 5 goods
    result = assess_fairness(y_true=y, y_prob=p, threshold=0.5, protected=protected)
    assert group(result, "g", "P").small
    assert dict(summary_of(result, "g").excluded_reasons) == {"P": "5 goods < 20"}
    assert result.selection_rate_ratio == pytest.approx(0.65 / 0.75, abs=1e-12)


def test_exactly_min_group_bads_bads_and_goods_is_counted() -> None:
    y, p, protected = counts_case({**PLANTED, "P": (10, 10, 100, 100)})  # 20 bads
    result = assess_fairness(y_true=y, y_prob=p, threshold=0.5, protected=protected)
    assert not group(result, "g", "P").small
    assert summary_of(result, "g").excluded_small == ()
    stricter = assess_fairness(
        y_true=y, y_prob=p, threshold=0.5, protected=protected, min_group_bads=21
    )
    assert dict(summary_of(stricter, "g").excluded_reasons) == {"P": "20 bads < 21"}


@pytest.mark.parametrize("name", ["assess_fairness", "conditional_view"])
def test_the_small_group_defaults_are_30_rows_and_20_bads_everywhere(name: str) -> None:
    import inspect

    import evaluation.fairness as fairness
    import evaluation.fairness_views as views

    fn = getattr(fairness, name, None) or getattr(views, name)
    params = inspect.signature(fn).parameters
    assert params["min_group_size"].default == fairness.MIN_GROUP_SIZE == 30
    assert params["min_group_bads"].default == fairness.MIN_GROUP_BADS == 20


def test_json_carries_the_intervals_and_the_small_group_rule() -> None:
    y, p, protected = counts_case(PLANTED)
    doc = json.loads(
        json.dumps(
            assess_fairness(
                y_true=y, y_prob=p, threshold=0.5, protected=protected, n_boot=50
            ).to_json(),
            allow_nan=False,
        )
    )
    assert (doc["min_group_bads"], doc["n_boot"]) == (20, 50)
    attribute = doc["attributes"][0]
    for key in ("selection_rate_ratio", "demographic_parity_difference"):
        ci = attribute[f"{key}_ci"]
        assert set(ci) == {"low", "high"} and ci["low"] <= attribute[key] <= ci["high"]
        assert doc[f"{key}_ci"] == ci  # one attribute: the worst is that attribute
    none = assess_fairness(
        y_true=y, y_prob=p, threshold=0.5, protected=protected, n_boot=0
    ).to_json()
    assert none["n_boot"] == 0 and none["selection_rate_ratio_ci"] is None
    assert none["attributes"][0]["equalized_odds_difference_ci"] is None
