"""Pins PSI, KS and the reference profile against hand-worked numbers and scipy."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluation import drift
from evaluation.drift import DriftResult, compare, psi
from evaluation.drift_reference import FeatureProfile, ReferenceProfile, build_reference

N = 20_000


def _frame(rng: np.random.Generator, n: int = N, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "income": rng.lognormal(10.0, 0.5, n),
            "age": rng.normal(45.0 + 12.0 * shift, 12.0, n),
            "debts": rng.poisson(2.0, n).astype(np.float64),
            "channel": rng.choice(["branch", "web", "app"], n, p=[0.5, 0.3, 0.2]).astype(object),
        }
    )


@pytest.fixture(scope="module")
def train() -> pd.DataFrame:
    return _frame(np.random.default_rng(11))


@pytest.fixture(scope="module")
def profile(train: pd.DataFrame) -> ReferenceProfile:
    scores = np.random.default_rng(12).beta(2.0, 8.0, len(train))
    return build_reference(train, categorical=["channel"], scores=scores)


# --------------------------------------------------------------------------- psi()


def test_psi_equals_the_hand_worked_sum() -> None:
    # (0.5-0.25)*ln(0.5/0.25) + (0.25-0.25)*ln(1) + (0.25-0.5)*ln(0.25/0.5)
    # = 0.25*ln2 + 0 + 0.25*ln2 = 0.5*ln2 = 0.346574
    assert psi([0.25, 0.25, 0.5], [0.5, 0.25, 0.25]) == pytest.approx(0.346574, abs=1e-6)


def test_psi_floors_an_empty_bin_at_1e_4() -> None:
    # bin 3 is empty in the reference: its share counts as 1e-4.
    # (0.4-0.5)*ln(0.8) + (0.1-0.0001)*ln(0.1/0.0001) = 0.022314 + 0.0999*6.907755 = 0.712399
    assert psi([0.5, 0.5, 0.0], [0.5, 0.4, 0.1]) == pytest.approx(0.712399, abs=1e-6)


def test_psi_is_zero_for_identical_shares_and_symmetric() -> None:
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    assert psi([0.1, 0.9], [0.6, 0.4]) == pytest.approx(psi([0.6, 0.4], [0.1, 0.9]), rel=1e-12)


@pytest.mark.parametrize(
    ("expected", "actual", "message"),
    [
        ([0.5, 0.5], [1.0], "different bin counts"),
        ([0.5, 0.4], [0.5, 0.5], "sum to 0.9"),
        ([1.5, -0.5], [0.5, 0.5], "non-negative"),
        ([], [], "non-empty"),
    ],
)
def test_psi_refuses_vectors_that_are_not_shares(
    expected: list[float], actual: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        psi(expected, actual)


# --------------------------------------------------------------------------- bins by hand


def test_numeric_psi_on_a_hand_worked_batch() -> None:
    # reference 1,2,3,4 with 2 bins: edge = median 2.5, shares (0.5, 0.5), no missing.
    # batch 1,1,1,NaN: bins (0.75, 0), missing 0.25.
    # (0.75-0.5)*ln(1.5) + (0.0001-0.5)*ln(0.0001/0.5) + (0.25-0.0001)*ln(0.25/0.0001)
    # = 0.101366 + 4.257745 + 1.955229 = 6.314340
    ref = build_reference(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), categorical=(), bins=2)
    assert ref.features[0].edges == (2.5,)
    assert ref.features[0].shares == (0.5, 0.5)
    result = compare(ref, pd.DataFrame({"x": [1.0, 1.0, 1.0, np.nan]}))
    assert result.psi["x"] == pytest.approx(6.314340, abs=1e-5)
    assert result.missing["x"] == (0.0, 0.25)


def test_numeric_bins_are_right_closed() -> None:
    # a value equal to an edge belongs to the bin below it: 2.5, 2.5, 4, 4 splits 50/50.
    ref = build_reference(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), categorical=(), bins=2)
    assert compare(ref, pd.DataFrame({"x": [2.5, 2.5, 4.0, 4.0]})).psi["x"] == 0.0
    # a mass at the edge: 0,0,0,1 -> median 0, so bin 1 is x <= 0 (0.75), bin 2 is x > 0.
    ties = build_reference(pd.DataFrame({"x": [0.0, 0.0, 0.0, 1.0]}), categorical=(), bins=2)
    assert ties.features[0].edges == (0.0,)
    assert ties.features[0].shares == (0.75, 0.25)


def test_categorical_psi_counts_unseen_levels_in_one_bin() -> None:
    # reference a,a,b,b: shares (0.5, 0.5). batch a,b,c,c: a 0.25, b 0.25, unseen 0.5, missing 0.
    # 2*(0.25-0.5)*ln(0.5) + (0.5-0.0001)*ln(0.5/0.0001) + 0 = 0.346574 + 4.257745 = 4.604319
    ref = build_reference(pd.DataFrame({"g": ["a", "a", "b", "b"]}), categorical=["g"])
    assert ref.features[0].levels == ("a", "b")
    result = compare(ref, pd.DataFrame({"g": ["a", "b", "c", "c"]}))
    assert result.psi["g"] == pytest.approx(4.604319, abs=1e-5)
    assert result.new_levels == {"g": {"c": 2}}
    assert result.ks == {}


# --------------------------------------------------------------------------- same data


def test_profile_compared_with_its_own_data_shows_no_drift(
    train: pd.DataFrame, profile: ReferenceProfile
) -> None:
    scores = np.random.default_rng(12).beta(2.0, 8.0, len(train))
    result = compare(profile, train, scores=scores)
    assert result.psi == {"income": 0.0, "age": 0.0, "debts": 0.0, "channel": 0.0}
    assert result.score_psi == 0.0
    assert result.drifted == ()
    assert result.new_levels == {}
    # continuous columns: the batch CDF at each percentile is the percentile itself
    assert result.ks["income"] < 1e-3
    assert result.ks["age"] < 1e-3


def test_numeric_bins_hold_equal_shares_of_the_reference(profile: ReferenceProfile) -> None:
    for name in ("income", "age"):
        feature = next(f for f in profile.features if f.name == name)
        assert len(feature.edges) == 9
        assert feature.shares == pytest.approx([0.1] * 10, abs=1e-3)
        assert len(feature.quantiles) == 101
    debts = next(f for f in profile.features if f.name == "debts")
    assert len(debts.edges) < 9  # integer counts: tied deciles are merged


def test_channel_levels_and_shares(profile: ReferenceProfile) -> None:
    channel = next(f for f in profile.features if f.name == "channel")
    assert channel.levels == ("app", "branch", "web")
    assert channel.shares == pytest.approx([0.2, 0.5, 0.3], abs=0.015)
    assert channel.missing_share == 0.0


# --------------------------------------------------------------------------- KS


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.3, 1.0])
def test_ks_is_within_a_percentile_step_of_scipy(shift: float) -> None:
    rng = np.random.default_rng(21)
    ref_x, new_x = rng.normal(0, 1, N), rng.normal(shift, 1, N)
    ref = build_reference(pd.DataFrame({"x": ref_x}), categorical=())
    got = compare(ref, pd.DataFrame({"x": new_x})).ks["x"]
    want = stats.ks_2samp(ref_x, new_x).statistic
    assert got == pytest.approx(want, abs=0.011)


def test_ks_on_integer_counts_stays_within_a_percentile_step() -> None:
    rng = np.random.default_rng(22)
    ref_x, new_x = rng.poisson(3.0, N) * 1.0, rng.poisson(3.6, N) * 1.0
    ref = build_reference(pd.DataFrame({"x": ref_x}), categorical=())
    got = compare(ref, pd.DataFrame({"x": new_x})).ks["x"]
    assert got == pytest.approx(stats.ks_2samp(ref_x, new_x).statistic, abs=0.011)


def test_ks_sees_batch_values_below_the_reference_minimum() -> None:
    # reference: 30% zeros; batch: 30% at -1. The reference CDF is 0 below 0, so KS = 0.3.
    ref_x = np.r_[np.zeros(300), np.arange(1.0, 701.0)]
    new_x = np.r_[np.full(300, -1.0), np.arange(1.0, 701.0)]
    ref = build_reference(pd.DataFrame({"x": ref_x}), categorical=())
    assert compare(ref, pd.DataFrame({"x": new_x})).ks["x"] == pytest.approx(0.3, abs=1e-9)


# --------------------------------------------------------------------------- drift found


def test_one_shifted_feature_is_flagged_and_the_others_are_not(
    profile: ReferenceProfile,
) -> None:
    batch = _frame(np.random.default_rng(31), shift=1.0)  # age moved by one SD
    result = compare(profile, batch)
    assert result.psi["age"] > 0.25
    for name in ("income", "debts", "channel"):
        assert result.psi[name] < 0.1, name
    assert result.drifted == ("age",)
    assert result.psi_max == result.psi["age"]
    assert result.ks["age"] > 0.3  # a one-SD shift of a normal: KS = 2*Phi(0.5)-1 = 0.383


def test_drifted_lists_features_over_threshold_largest_first(profile: ReferenceProfile) -> None:
    batch = _frame(np.random.default_rng(32), shift=1.0)
    batch["income"] = batch["income"] * 3.0
    result = compare(profile, batch, threshold=0.25)
    assert set(result.drifted) == {"age", "income"}
    assert result.psi[result.drifted[0]] >= result.psi[result.drifted[1]]
    relaxed = compare(profile, batch, threshold=1e6)
    assert relaxed.drifted == ()
    assert relaxed.psi_max == result.psi_max


def test_unseen_levels_are_counted(profile: ReferenceProfile, train: pd.DataFrame) -> None:
    batch = train.copy()
    batch.loc[:29, "channel"] = "phone"
    batch.loc[30:34, "channel"] = "post"
    result = compare(profile, batch)
    assert result.new_levels == {"channel": {"phone": 30, "post": 5}}
    assert result.psi["channel"] > 0.0


def test_pandas_string_columns_match_object_levels(
    profile: ReferenceProfile, train: pd.DataFrame
) -> None:
    batch = train.copy()
    batch["channel"] = batch["channel"].astype("string")
    assert compare(profile, batch).psi["channel"] == 0.0


@pytest.mark.parametrize("column", ["age", "channel"])
def test_a_rise_in_missing_values_is_drift(
    profile: ReferenceProfile, train: pd.DataFrame, column: str
) -> None:
    batch = train.copy()
    batch.loc[: len(batch) * 3 // 10 - 1, column] = None  # the first 30% of rows
    result = compare(profile, batch)
    assert result.missing[column] == (0.0, pytest.approx(0.3))
    assert result.psi[column] > 0.25
    assert column in result.drifted


def test_an_all_missing_batch_column_is_allowed_and_shows_as_huge_psi(
    profile: ReferenceProfile, train: pd.DataFrame
) -> None:
    batch = train.copy()
    batch["age"] = np.nan
    batch["channel"] = None
    result = compare(profile, batch)
    assert result.psi["age"] > 5.0
    assert result.psi["channel"] > 5.0
    assert result.missing["age"] == (0.0, 1.0)
    assert math.isnan(result.ks["age"])
    assert result.to_json()["ks"]["age"] is None


# --------------------------------------------------------------------------- JSON


def test_profile_json_round_trips_exactly(profile: ReferenceProfile) -> None:
    text = json.dumps(profile.to_json())
    assert ReferenceProfile.from_json(json.loads(text)) == profile


def _floats(value: Any) -> int:
    if isinstance(value, float):
        return 1
    if isinstance(value, dict):
        return sum(_floats(v) for v in value.values())
    if isinstance(value, list):
        return sum(_floats(v) for v in value)
    return 0


def test_profile_json_size_does_not_grow_with_rows() -> None:
    small = build_reference(_frame(np.random.default_rng(41), 2_000), categorical=["channel"])
    large = build_reference(_frame(np.random.default_rng(41), 20_000), categorical=["channel"])
    n_small, n_large = _floats(small.to_json()), _floats(large.to_json())
    # per numeric feature at most 9 edges + 10 shares + 101 percentiles + missing share;
    # the categorical one: 3 shares + missing share
    assert n_small == n_large <= 3 * (9 + 10 + 101 + 1) + 4


def test_drift_json_has_the_cli_shape(profile: ReferenceProfile) -> None:
    batch = _frame(np.random.default_rng(42), shift=1.0)
    out = json.loads(json.dumps(compare(profile, batch).to_json()))
    assert {"psi", "score_psi", "new_levels", "drifted"} <= set(out)
    assert set(out["psi"]) == {"income", "age", "debts", "channel"}
    assert set(out["ks"]) == {"income", "age", "debts"}
    assert out["drifted"] == ["age"]
    assert out["score_psi"] is None  # no scores given
    assert out["missing"]["age"] == [0.0, 0.0]
    assert out["threshold"] == 0.25
    assert out["n_rows"] == N


def test_table_lists_every_feature_largest_psi_first(profile: ReferenceProfile) -> None:
    table = compare(profile, _frame(np.random.default_rng(43), shift=1.0)).table()
    assert list(table.columns) == [
        "feature",
        "kind",
        "psi",
        "ks",
        "missing_ref",
        "missing_new",
        "new_levels",
        "drifted",
    ]
    assert table["feature"].iloc[0] == "age"
    assert table["drifted"].tolist() == [True, False, False, False]
    assert table["psi"].is_monotonic_decreasing
    channel = table[table["feature"] == "channel"].iloc[0].to_dict()
    assert channel["kind"] == "categorical"
    assert math.isnan(channel["ks"])


def test_score_drift_is_measured(profile: ReferenceProfile) -> None:
    batch = _frame(np.random.default_rng(44))
    moved = np.random.default_rng(45).beta(4.0, 6.0, len(batch))
    result = compare(profile, batch, scores=moved)
    assert result.score_psi is not None and result.score_psi > 0.25
    assert "score" not in result.psi  # the score is no feature: it does not set psi_max


# --------------------------------------------------------------------------- errors


def test_a_feature_missing_from_the_batch_is_named(
    profile: ReferenceProfile, train: pd.DataFrame
) -> None:
    with pytest.raises(
        ValueError,
        match=r"^column 'age' is missing from the batch; drift needs every model feature$",
    ):
        compare(profile, train.drop(columns=["age"]))


def test_an_empty_batch_is_refused(profile: ReferenceProfile, train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="empty"):
        compare(profile, train.iloc[:0])


def test_an_empty_reference_is_refused(train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="empty"):
        build_reference(train.iloc[:0], categorical=["channel"])


def test_scores_without_a_reference_score_are_refused(train: pd.DataFrame) -> None:
    ref = build_reference(train, categorical=["channel"])
    with pytest.raises(ValueError, match="no score distribution"):
        compare(ref, train, scores=np.zeros(len(train)))


def test_text_in_a_numeric_batch_column_is_refused(
    profile: ReferenceProfile, train: pd.DataFrame
) -> None:
    batch = train.assign(age=train["age"].astype(str))
    with pytest.raises(ValueError, match="column 'age' is numeric in the reference"):
        compare(profile, batch)


def test_infinite_reference_values_are_refused() -> None:
    with pytest.raises(ValueError, match="column 'x' has 1 infinite"):
        build_reference(pd.DataFrame({"x": [1.0, 2.0, np.inf]}), categorical=())


def test_unknown_categorical_name_is_refused(train: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'chanel'"):
        build_reference(train, categorical=["chanel"])


def test_profile_json_from_another_format_is_refused(profile: ReferenceProfile) -> None:
    data = profile.to_json() | {"format": 99}
    with pytest.raises(ValueError, match="format 99"):
        ReferenceProfile.from_json(data)


def test_inconsistent_feature_profile_is_refused() -> None:
    with pytest.raises(ValueError, match=r"len\(edges\) \+ 1 shares"):
        FeatureProfile("x", "numeric", (1.0,), (1.0,), (), 0.0, ())
    with pytest.raises(ValueError, match=r"sum to 0\.9"):
        FeatureProfile("g", "categorical", (), (0.5, 0.4), ("a", "b"), 0.0, ())


# --------------------------------------------------------------------------- binning


@pytest.mark.parametrize(
    "kind", ["normal", "lognormal", "counts", "mass_at_zero", "rounded", "outlier"]
)
def test_bucketed_binning_equals_a_binary_search(kind: str) -> None:
    """The fast path must place every value exactly where np.searchsorted does."""
    rng = np.random.default_rng(51)

    def draw(n: int) -> np.ndarray:
        if kind == "normal":
            return rng.normal(size=n)
        if kind == "lognormal":
            return rng.lognormal(0.0, 2.0, n)
        if kind == "counts":
            return rng.poisson(40.0, n) * 1.0
        if kind == "mass_at_zero":
            return np.where(rng.random(n) < 0.6, 0.0, rng.random(n))
        if kind == "rounded":
            return np.round(rng.lognormal(8.0, 1.0, n), -1)
        return np.r_[rng.normal(size=n - 1), 1e300]

    ref = build_reference(pd.DataFrame({"x": draw(5_000)}), categorical=()).features[0]
    grid = drift._Grid(ref.edges, ref.quantiles)
    batch = np.r_[draw(20_000), grid.points, [np.nan, np.inf, -np.inf, -1e300]]
    assert grid.buckets(batch.size) is not None  # the fast path is the one under test
    fine, n_missing = grid.fine_counts(batch)
    want = np.bincount(np.searchsorted(grid.points, batch), minlength=grid.points.size + 1)
    want[-1] -= 1  # the NaN
    assert n_missing == 1
    np.testing.assert_array_equal(fine, want)


def test_drift_result_is_frozen(profile: ReferenceProfile, train: pd.DataFrame) -> None:
    result: DriftResult = compare(profile, train)
    with pytest.raises(AttributeError):
        result.psi_max = 0.0  # type: ignore[misc]
