"""Tests for the synthetic data generators.

The generators are the ground truth for every other check in the project (the demo, the gate
tests, the "how close to the best possible" measurements), so these tests pin the properties
those checks rely on: exact schema, determinism, label rates, the truth being the probability
the label was drawn from, no direct use of protected attributes or time, drift in the
population but not in P(y | x), and that a standard LightGBM fit can get close to the Bayes AUC.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from datasets import (
    CHANNELS,
    CREDIT_PII,
    CREDIT_PROTECTED,
    CREDIT_RISK_COLUMNS,
    FRAUD_RISK_COLUMNS,
    HOME_OWNERSHIP,
    LOAN_TERMS,
    MERCHANT_CATEGORIES,
    PURPOSES,
    REGIONS,
    TRUTH_COLUMN,
    SyntheticData,
    credit_risk,
    fraud_risk,
    make_credit,
    make_fraud,
    write_table,
    write_truth,
)

CREDIT_COLUMNS = [
    "application_id",
    "application_date",
    "full_name",
    "phone",
    "national_id",
    "sex",
    "age",
    "annual_income",
    "debt_to_income",
    "credit_utilisation",
    "n_delinquencies_2y",
    "months_since_last_delinquency",
    "n_inquiries_6m",
    "employment_years",
    "loan_amount",
    "loan_term_months",
    "home_ownership",
    "purpose",
    "region",
    "channel",
    "n_open_accounts",
    "bureau_score",
    "default_12m",
]
CREDIT_STRINGS = [
    "application_id",
    "full_name",
    "phone",
    "national_id",
    "sex",
    "home_ownership",
    "purpose",
    "region",
    "channel",
]
CREDIT_INTS = [
    "age",
    "n_delinquencies_2y",
    "n_inquiries_6m",
    "loan_term_months",
    "n_open_accounts",
    "default_12m",
]
CREDIT_FLOATS = [
    "annual_income",
    "debt_to_income",
    "credit_utilisation",
    "months_since_last_delinquency",
    "employment_years",
    "loan_amount",
    "bureau_score",
]
FRAUD_COLUMNS = [
    "transaction_id",
    "timestamp",
    "card_id",
    "cardholder_name",
    "amount",
    "merchant_category",
    "hour",
    "device_new",
    "distance_from_home_km",
    "txn_count_1h",
    "txn_count_24h",
    "card_present",
    "country_mismatch",
    "is_fraud",
]
FRAUD_STRINGS = ["transaction_id", "card_id", "cardholder_name", "merchant_category"]
FRAUD_INTS = [
    "hour",
    "device_new",
    "txn_count_1h",
    "txn_count_24h",
    "card_present",
    "country_mismatch",
    "is_fraud",
]
FRAUD_FLOATS = ["amount", "distance_from_home_km"]


@pytest.fixture(scope="module")
def credit() -> SyntheticData:
    return make_credit(50_000, seed=11)


@pytest.fixture(scope="module")
def fraud() -> SyntheticData:
    return make_fraud(200_000, seed=11)


def _binomial_tolerance(truth: np.ndarray, sds: float = 4.0) -> float:
    """Allowed |mean(label) - mean(truth)|: `sds` standard deviations of the mean label."""
    return sds * float(np.sqrt(np.sum(truth * (1.0 - truth)))) / len(truth)


def _assert_calibrated(labels: pd.Series, truth: pd.Series) -> None:
    p = truth.to_numpy()
    gap = abs(float(labels.mean()) - float(p.mean()))
    assert gap < _binomial_tolerance(p), (gap, _binomial_tolerance(p))


# ------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("make", [make_credit, make_fraud])
def test_same_seed_gives_identical_data_and_another_seed_differs(
    make: Callable[..., SyntheticData],
) -> None:
    first, again, other = make(3_000, seed=5), make(3_000, seed=5), make(3_000, seed=6)
    pd.testing.assert_frame_equal(first.frame, again.frame, check_exact=True)
    pd.testing.assert_series_equal(first.truth, again.truth, check_exact=True)
    assert not first.frame.drop(columns=first.id_column).equals(
        other.frame.drop(columns=other.id_column)
    )
    assert not np.array_equal(first.truth.to_numpy(), other.truth.to_numpy())


@pytest.mark.parametrize("rows", [0, -5])
def test_rows_must_be_positive(rows: int) -> None:
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        make_credit(rows)
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        make_fraud(rows)


def test_a_single_row_still_works() -> None:
    assert len(make_credit(1).frame) == 1
    assert len(make_fraud(1).frame) == 1


# ---------------------------------------------------------------------------------- schema


def test_credit_columns_and_dtypes(credit: SyntheticData) -> None:
    frame = credit.frame
    assert list(frame.columns) == CREDIT_COLUMNS
    assert credit.id_column == "application_id"
    assert pd.api.types.is_datetime64_dtype(frame["application_date"])
    for name in CREDIT_STRINGS:
        assert pd.api.types.is_string_dtype(frame[name]), name
        assert frame[name].notna().all(), name
    for name in CREDIT_INTS:
        assert frame[name].dtype == np.int64, name
    for name in CREDIT_FLOATS:
        assert frame[name].dtype == np.float64, name
    assert len(CREDIT_RISK_COLUMNS) >= 12


def test_fraud_columns_and_dtypes(fraud: SyntheticData) -> None:
    frame = fraud.frame
    assert list(frame.columns) == FRAUD_COLUMNS
    assert fraud.id_column == "transaction_id"
    assert pd.api.types.is_datetime64_dtype(frame["timestamp"])
    for name in FRAUD_STRINGS:
        assert pd.api.types.is_string_dtype(frame[name]), name
    for name in FRAUD_INTS:
        assert frame[name].dtype == np.int64, name
    for name in FRAUD_FLOATS:
        assert frame[name].dtype == np.float64, name
    assert not frame.isna().any().any()


def test_ids_are_unique_and_truth_shares_the_index(
    credit: SyntheticData, fraud: SyntheticData
) -> None:
    for data in (credit, fraud):
        assert data.frame[data.id_column].is_unique
        assert data.truth.name == TRUTH_COLUMN
        assert data.truth.index.equals(data.frame.index)
    assert credit.frame["application_id"].iloc[0] == "A0000001"


def test_credit_values_lie_in_their_designed_ranges(credit: SyntheticData) -> None:
    frame = credit.frame
    assert frame["age"].between(18, 80).all()
    assert set(frame["sex"]) == {"F", "M"}
    assert frame["debt_to_income"].between(0.0, 1.5).all()
    assert frame["credit_utilisation"].dropna().between(0.0, 1.2).all()
    assert frame["bureau_score"].dropna().between(300.0, 850.0).all()
    assert (frame["annual_income"] > 0).all()
    assert (frame["loan_amount"] > 0).all()
    assert (frame[["n_delinquencies_2y", "n_inquiries_6m", "n_open_accounts"]] >= 0).all().all()
    assert set(frame["loan_term_months"]) == set(LOAN_TERMS)
    for name, levels in [
        ("home_ownership", HOME_OWNERSHIP),
        ("purpose", PURPOSES),
        ("region", REGIONS),
        ("channel", CHANNELS),
    ]:
        assert set(frame[name]) == set(levels), name


def test_credit_income_and_employment_rise_with_age(credit: SyntheticData) -> None:
    """Proxies for age must exist, or the fairness checks would have nothing to find."""
    frame = credit.frame
    assert frame["age"].corr(np.log(frame["annual_income"])) > 0.2
    assert frame["age"].corr(frame["employment_years"]) > 0.3


def test_personal_data_looks_real_and_mostly_unique(credit: SyntheticData) -> None:
    frame = credit.frame
    assert frame["phone"].str.fullmatch(r"\+44 7\d{3} \d{6}").all()
    assert frame["national_id"].str.fullmatch(r"[A-Z]{2}\d{6}[A-D]").all()
    assert frame["full_name"].str.fullmatch(r"[A-Z][a-z]+ [A-Z]\. [A-Z][a-z]+").all()
    assert frame["phone"].nunique() > 0.999 * len(frame)
    assert frame["national_id"].nunique() > 0.999 * len(frame)
    assert frame["full_name"].nunique() > 0.7 * len(frame)


def test_credit_dates_span_24_months_of_2023_and_2024(credit: SyntheticData) -> None:
    dates = credit.frame["application_date"]
    assert dates.min() == pd.Timestamp("2023-01-01")
    assert dates.max() == pd.Timestamp("2024-12-31")
    assert dates.dt.to_period("M").nunique() == 24
    assert dates.is_monotonic_increasing  # ids follow application order


def test_fraud_timestamps_cover_six_months_with_time_of_day(fraud: SyntheticData) -> None:
    frame = fraud.frame
    stamps = frame["timestamp"]
    assert stamps.min() >= pd.Timestamp("2024-01-01")
    assert stamps.max() < pd.Timestamp("2024-07-01")
    assert stamps.dt.to_period("M").nunique() == 6
    assert (stamps.dt.hour == frame["hour"]).all()
    assert frame["hour"].nunique() == 24
    assert set(frame["merchant_category"]) == set(MERCHANT_CATEGORIES)
    # Ordinary spending is daytime-heavy.
    assert (frame["hour"] == 12).sum() > 5 * (frame["hour"] == 3).sum()
    per_card = frame.groupby("card_id").size()
    assert per_card.mean() > 20
    assert per_card.max() > 100


def test_fraud_velocity_counts_match_the_card_history() -> None:
    """The counts are earlier transactions on the same card in the window, not noise."""
    frame = make_fraud(4_000, seed=2).frame
    assert (frame["txn_count_24h"] >= frame["txn_count_1h"]).all()
    assert (frame["txn_count_24h"] > 0).mean() > 0.05
    expected_1h: dict[int, int] = {}
    expected_24h: dict[int, int] = {}
    for _, group in frame.groupby("card_id"):
        group = group.sort_values("timestamp", kind="stable")
        seconds = group["timestamp"].astype("int64").to_numpy() // 1_000_000
        for position, (row, now) in enumerate(zip(group.index, seconds, strict=True)):
            earlier = seconds[:position]
            expected_1h[row] = int((earlier >= now - 3_600).sum())
            expected_24h[row] = int((earlier >= now - 86_400).sum())
    assert frame["txn_count_1h"].to_dict() == expected_1h
    assert frame["txn_count_24h"].to_dict() == expected_24h


# ----------------------------------------------------------------------- missing values, rates


def test_credit_missing_shares_are_as_designed(credit: SyntheticData) -> None:
    frame = credit.frame
    missing = frame.isna().mean()
    assert 0.06 < missing["credit_utilisation"] < 0.10  # thin files, ~8%
    assert 0.04 < missing["employment_years"] < 0.06  # ~5%
    assert 0.02 < missing["bureau_score"] < 0.04  # ~3%
    # Like a bureau: recency is present whenever there was a recent delinquency, and missing
    # for most applicants, who never had one.
    delinquent = frame["n_delinquencies_2y"] > 0
    assert frame.loc[delinquent, "months_since_last_delinquency"].notna().all()
    assert (frame.loc[delinquent, "months_since_last_delinquency"] < 24).all()
    assert missing["months_since_last_delinquency"] > 0.5
    others = [c for c in CREDIT_COLUMNS if c not in CREDIT_FLOATS]
    others += ["annual_income", "debt_to_income", "loan_amount"]
    assert not frame[others].isna().any().any()


def test_thin_files_are_younger(credit: SyntheticData) -> None:
    frame = credit.frame
    thin = frame["credit_utilisation"].isna()
    assert frame.loc[thin, "age"].mean() < frame.loc[~thin, "age"].mean() - 5


def test_credit_bad_rate_is_between_5_and_15_percent(credit: SyntheticData) -> None:
    assert 0.05 < credit.frame["default_12m"].mean() < 0.15


def test_fraud_rate_is_between_03_and_08_percent(fraud: SyntheticData) -> None:
    assert 0.003 < fraud.frame["is_fraud"].mean() < 0.008


def test_bayes_auc_is_realistic(credit: SyntheticData, fraud: SyntheticData) -> None:
    assert 0.78 < roc_auc_score(credit.frame["default_12m"], credit.truth) < 0.86
    assert 0.92 < roc_auc_score(fraud.frame["is_fraud"], fraud.truth) < 0.98


# ------------------------------------------------------------------------------- the truth


@pytest.mark.parametrize("name", ["credit", "fraud"])
def test_truth_is_a_probability_the_label_agrees_with(
    name: str, request: pytest.FixtureRequest
) -> None:
    data: SyntheticData = request.getfixturevalue(name)
    target = "default_12m" if name == "credit" else "is_fraud"
    truth, labels = data.truth, data.frame[target]
    assert np.isfinite(truth).all()
    assert ((truth > 0.0) & (truth < 1.0)).all()
    assert set(labels.unique()) == {0, 1}
    _assert_calibrated(labels, truth)
    # Calibrated across the range, not just on average: per fifth of the truth.
    for _, part in truth.groupby(pd.qcut(truth, 5, labels=False)):
        _assert_calibrated(labels.loc[part.index], part)


def test_truth_is_the_risk_function_of_the_published_table(
    credit: SyntheticData, fraud: SyntheticData
) -> None:
    """A model sees exactly what the truth was computed from: nothing hidden enters it."""
    np.testing.assert_array_equal(credit_risk(credit.frame), credit.truth.to_numpy())
    np.testing.assert_array_equal(fraud_risk(fraud.frame), fraud.truth.to_numpy())


def test_credit_risk_reads_no_protected_attribute_time_or_personal_data(
    credit: SyntheticData,
) -> None:
    frame = credit.frame.head(5_000)
    expected = credit_risk(frame)
    assert not set(CREDIT_RISK_COLUMNS) & {*CREDIT_PROTECTED, *CREDIT_PII, "application_date"}
    np.testing.assert_array_equal(credit_risk(frame[list(CREDIT_RISK_COLUMNS)]), expected)
    shuffled = frame.copy()
    rng = np.random.default_rng(0)
    for column in CREDIT_PROTECTED:
        shuffled[column] = frame[column].to_numpy()[rng.permutation(len(frame))]
    assert not shuffled["age"].equals(frame["age"])
    np.testing.assert_array_equal(credit_risk(shuffled), expected)


def test_fraud_risk_reads_only_its_feature_columns(fraud: SyntheticData) -> None:
    frame = fraud.frame.head(5_000)
    np.testing.assert_array_equal(fraud_risk(frame[list(FRAUD_RISK_COLUMNS)]), fraud_risk(frame))


def test_credit_risk_moves_the_way_a_credit_officer_expects(credit: SyntheticData) -> None:
    """Sanity of the known function: more delinquencies, lower score -> more risk."""
    base = credit.frame.head(2_000).copy()
    worse = base.copy()
    worse["n_delinquencies_2y"] += 1
    assert (credit_risk(worse) > credit_risk(base)).all()
    worse = base.copy()
    worse["bureau_score"] -= 50
    risk_worse, risk_base = credit_risk(worse), credit_risk(base)
    has_score = base["bureau_score"].notna().to_numpy()
    assert (risk_worse[has_score] > risk_base[has_score]).all()


def test_risk_functions_refuse_unknown_category_levels(credit: SyntheticData) -> None:
    frame = credit.frame.head(10).copy()
    frame["purpose"] = "holiday"
    with pytest.raises(ValueError, match=r"'purpose'.*holiday"):
        credit_risk(frame)


# ----------------------------------------------------------------------------------- drift


def test_population_drifts_while_p_default_given_features_does_not(
    credit: SyntheticData,
) -> None:
    frame = credit.frame
    month = frame["application_date"].dt.to_period("M")
    early = month <= pd.Period("2023-03", "M")
    late = month >= pd.Period("2024-10", "M")
    assert early.sum() > 5_000 and late.sum() > 5_000
    utilisation = frame["credit_utilisation"]
    assert utilisation[late].mean() > utilisation[early].mean() + 0.04
    mobile = frame["channel"] == "mobile_app"
    assert mobile[late].mean() > mobile[early].mean() + 0.05
    for period in (early, late):
        _assert_calibrated(frame.loc[period, "default_12m"], credit.truth[period])


# ------------------------------------------------------------------------------------ files


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_table_round_trips(suffix: str, tmp_path: Path) -> None:
    for data, time_column in [
        (make_credit(2_000, seed=3), "application_date"),
        (make_fraud(2_000, seed=3), "timestamp"),
    ]:
        path = tmp_path / "nested" / f"{data.id_column}{suffix}"
        write_table(data.frame, path)
        if suffix == ".csv":
            back = pd.read_csv(path, parse_dates=[time_column])
        else:
            back = pd.read_parquet(path)
        pd.testing.assert_frame_equal(back, data.frame, check_exact=suffix == ".parquet")


def test_write_table_refuses_other_extensions(tmp_path: Path) -> None:
    path = tmp_path / "credit.xlsx"
    with pytest.raises(ValueError) as error:
        write_table(make_credit(10).frame, path)
    message = str(error.value)
    assert str(path) in message
    assert ".csv" in message and ".parquet" in message
    assert not path.exists()


def test_write_truth_writes_ids_and_true_probability(tmp_path: Path) -> None:
    data = make_credit(1_000, seed=4)
    path = tmp_path / "truth.parquet"
    write_truth(data, path)
    back = pd.read_parquet(path)
    assert list(back.columns) == ["application_id", TRUTH_COLUMN]
    pd.testing.assert_series_equal(back["application_id"], data.frame["application_id"])
    pd.testing.assert_series_equal(back[TRUTH_COLUMN], data.truth, check_exact=True)


# ----------------------------------------------------------------------------- learnability


def _lightgbm_matrix(data: SyntheticData, target: str) -> tuple[pd.DataFrame, np.ndarray]:
    drop = [data.id_column, "application_date", *CREDIT_PII, *CREDIT_PROTECTED, target]
    features = data.frame.drop(columns=drop)
    for name in features.columns:
        if pd.api.types.is_string_dtype(features[name]):
            features[name] = features[name].astype("category")
    return features, data.frame[target].to_numpy()


def test_lightgbm_gets_within_002_of_the_bayes_auc() -> None:
    """The risk function is learnable: no razor edges, no high-order interactions."""
    data = make_credit(100_000, seed=3)
    features, labels = _lightgbm_matrix(data, "default_12m")
    order = np.random.default_rng(0).permutation(len(labels))
    train, test = order[:60_000], order[60_000:]
    params = {
        "objective": "binary",
        "num_leaves": 31,
        "learning_rate": 0.05,
        "num_threads": 1,
        "deterministic": True,
        "force_col_wise": True,
        "seed": 0,
        "verbose": -1,
    }
    booster = lgb.train(
        params, lgb.Dataset(features.iloc[train], labels[train]), num_boost_round=300
    )
    model_auc = roc_auc_score(labels[test], booster.predict(features.iloc[test]))
    bayes_auc = roc_auc_score(labels[test], data.truth.to_numpy()[test])
    assert bayes_auc - 0.02 < model_auc <= bayes_auc + 0.005, (model_auc, bayes_auc)
