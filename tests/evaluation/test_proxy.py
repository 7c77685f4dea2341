"""The proxy screen pinned against scikit-learn's AUC, on the synthetic credit data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from evaluation.fairness import band
from evaluation.proxy import proxy_screen
from tests.training.helpers import credit_splits

BINS = {"age": [25.0, 35.0, 50.0, 65.0]}


@pytest.fixture(scope="module")
def screened():  # type: ignore[no-untyped-def]
    train = credit_splits().train
    features = train.features.reset_index(drop=True)
    rng = np.random.default_rng(11)
    features = features.assign(planted=rng.normal(size=len(features)))
    protected = train.protected.reset_index(drop=True)
    result = proxy_screen(
        features, protected, categorical=train.categorical, bins=BINS, threshold=0.7
    )
    return result, features, protected


def test_employment_years_is_flagged_as_a_proxy_for_age(screened) -> None:  # type: ignore[no-untyped-def]
    result, _, _ = screened
    assert "age" in result.flagged["employment_years"]
    row = result.table.query("feature == 'employment_years' and attribute == 'age'").iloc[0]
    assert row["group"] == "<25" and row["auc"] >= 0.7
    assert result.proxy_max >= row["auc"]


def test_a_planted_independent_column_is_not_flagged(screened) -> None:  # type: ignore[no-untyped-def]
    result, _, _ = screened
    assert "planted" not in result.flagged
    planted = result.table.query("feature == 'planted'")
    assert set(planted["attribute"]) == {"sex", "age"}
    assert (planted["auc"] < 0.6).all() and (planted["cramers_v"] < 0.1).all()


def test_the_auc_is_scikit_learns_for_the_best_group(screened) -> None:  # type: ignore[no-untyped-def]
    result, features, protected = screened
    groups = band(protected["age"], BINS["age"]).astype(str).to_numpy()
    x = features["employment_years"].to_numpy(dtype=float)
    x = np.where(np.isnan(x), np.nanmin(x) - 1.0, x)
    best = max(
        max(auc, 1 - auc)
        for g in set(groups)
        if 30 <= (groups == g).sum() <= len(groups) - 30
        for auc in [roc_auc_score(groups == g, x)]
    )
    got = result.table.query("feature == 'employment_years' and attribute == 'age'")["auc"]
    assert got.iloc[0] == pytest.approx(best, abs=1e-6)


def test_a_categorical_feature_scores_by_its_levels_share_of_the_group() -> None:
    levels = pd.Series(["a", "a", "b", "b", "c", "c"] * 20)
    member = pd.DataFrame({"sex": (["F", "M", "F", "F", "M", "M"] * 20)})
    result = proxy_screen(
        pd.DataFrame({"home": levels}), member, categorical=["home"], bins={}, min_group_size=1
    )
    share = levels.map({"a": 0.5, "b": 1.0, "c": 0.0})
    expected = roc_auc_score(member["sex"] == "F", share)
    assert result.table.iloc[0]["auc"] == pytest.approx(max(expected, 1 - expected))
