"""Explanations pinned against shap's TreeExplainer, the points table and hand-worked cases."""

from __future__ import annotations

import warnings
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from evaluation.explain import (
    Contributions,
    contributions,
    global_importance,
    monotonicity_violations,
    plots,
)
from tests.training.helpers import credit_splits
from training.models.encoding import encode
from training.models.policy import ScoreScale
from training.models.spec import ModelSpec, fit_model
from training.split import Splits

MONOTONE = {"bureau_score": -1, "debt_to_income": 1}
SCALE = ScoreScale(600, 50, 20)


def _fit(
    splits: Splits, model_type: str, params: dict[str, Any], monotone: dict[str, int] = MONOTONE
) -> ModelSpec:
    return fit_model(
        splits,
        task="credit_scoring",
        model_type=model_type,
        params=params,
        monotone=monotone,
        calibration="none",
        score=SCALE,
        decision_rule="threshold",
        threshold=0.15,
    ).spec


@pytest.fixture(scope="module")
def splits() -> Splits:
    return credit_splits()


@pytest.fixture(scope="module")
def lgbm(splits: Splits) -> ModelSpec:
    """Monotone-constrained, with the usual interactions between features."""
    return _fit(splits, "lightgbm", {"num_boost_round": 60})


@pytest.fixture(scope="module")
def scorecard(splits: Splits) -> ModelSpec:
    return _fit(splits, "scorecard", {})


# --- contributions -------------------------------------------------------------------------


def test_lightgbm_contributions_equal_shap_tree_explainer(lgbm: ModelSpec, splits: Splits) -> None:
    import shap

    rows = splits.test.features
    contrib = contributions(lgbm, rows)
    booster = lgb.Booster(model_str=lgbm.model.model_text)
    x = encode(rows, lgbm.features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's notice about its LightGBM output format
        explainer = shap.TreeExplainer(booster)
        expected = np.asarray(explainer.shap_values(x))
    assert contrib.features == lgbm.feature_names
    assert expected.shape == contrib.values.shape
    np.testing.assert_allclose(contrib.values, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(
        contrib.base, np.full(len(rows), explainer.expected_value), rtol=0, atol=1e-6
    )
    # Positive = toward decline: base + row sum is the raw log-odds of "bad".
    np.testing.assert_allclose(
        contrib.base + contrib.values.sum(axis=1),
        booster.predict(x, raw_score=True),
        rtol=0,
        atol=1e-9,
    )
    assert np.abs(contrib.values).sum() > 0


def test_scorecard_contributions_are_points_below_each_best_bin(
    scorecard: ModelSpec, splits: Splits
) -> None:
    rows = splits.test.features.head(60)
    contrib = contributions(scorecard, rows)
    sheet = scorecard.sheet()
    assert sheet is not None
    table = sheet.tables["points_table"]
    best = table.groupby("characteristic", sort=False)["points"].max()
    card = scorecard.model
    for j, c in enumerate(card.characteristics):
        assert contrib.features[j] == c.name
        mine = table[table.characteristic == c.name].reset_index(drop=True)
        row_points = mine["points"].to_numpy()[c.binned.bin_index(rows[c.name])]
        np.testing.assert_array_equal(contrib.values[:, j], best[c.name] - row_points)
        in_best = row_points == best[c.name]
        assert np.all(contrib.values[in_best, j] == 0.0)
        assert np.all(contrib.values[~in_best, j] > 0.0)
    assert (contrib.values == 0).any() and (contrib.values > 0).any()
    # score = base points + max points of every characteristic - sum of contributions, exactly.
    base = int(dict(sheet.facts)["base points"])
    np.testing.assert_array_equal(contrib.base, base + best.sum())
    score = scorecard.predict(rows)["score"].to_numpy()
    np.testing.assert_array_equal(contrib.base - contrib.values.sum(axis=1), score)


def test_contributions_refuse_a_frame_without_the_models_features(lgbm: ModelSpec) -> None:
    with pytest.raises(ValueError, match="bureau_score"):
        contributions(lgbm, pd.DataFrame({"annual_income": [1.0]}))


# --- monotonicity ----------------------------------------------------------------------------


def test_monotone_lightgbm_has_no_violations_with_other_features_held(
    lgbm: ModelSpec, splits: Splits
) -> None:
    # Across rows this fit's SHAP values disagree (interactions), but moving one feature of
    # one row never moves its contribution against the declared sign.
    counts = monotonicity_violations(lgbm, splits.test.features, MONOTONE)
    assert counts == {"bureau_score": 0, "debt_to_income": 0}


def test_an_unconstrained_model_shows_violations(splits: Splits) -> None:
    free = _fit(splits, "lightgbm", {"num_boost_round": 60}, monotone={})
    counts = monotonicity_violations(free, splits.test.features, MONOTONE)
    assert counts["bureau_score"] > 0 and counts["debt_to_income"] > 0


def test_violations_count_steps_of_the_held_fixed_path(lgbm: ModelSpec, splits: Splits) -> None:
    # Declaring the opposite direction turns every strict step of the path into a violation:
    # at most (grid - 1) steps per row, and some for every row the feature matters to.
    rows, grid = 20, 6
    flipped = {"bureau_score": 1}
    count = monotonicity_violations(lgbm, splits.test.features, flipped, rows=rows, grid=grid)[
        "bureau_score"
    ]
    assert 0 < count <= rows * (grid - 1)
    check = monotonicity_violations(lgbm, splits.test.features, flipped, rows=rows, grid=grid)
    # The unit is stated: steps checked = rows x (grid points - 1), share = count / steps.
    assert check.rows == rows and check.steps["bureau_score"] == rows * (grid - 1)
    assert check.share == pytest.approx(count / (rows * (grid - 1)))
    assert check.table().loc[0, "violating_steps"] == count
    with pytest.raises(ValueError, match="z"):
        monotonicity_violations(lgbm, splits.test.features, {"z": 1})


def test_scorecard_with_monotone_bins_has_no_violations(
    scorecard: ModelSpec, splits: Splits
) -> None:
    counts = monotonicity_violations(scorecard, splits.test.features, MONOTONE)
    assert counts == {"bureau_score": 0, "debt_to_income": 0}


# --- global views --------------------------------------------------------------------------


def test_global_importance_ranks_by_mean_absolute_contribution() -> None:
    values = np.array([[0.5, -2.0, 1.0, 0.25], [-0.5, 0.0, -1.0, 0.0]])
    got = global_importance(Contributions(values, np.zeros(2), ("p", "q", "r", "s")))
    # q and r tie at 1.0: q, the earlier feature, ranks first.
    assert got.feature.tolist() == ["q", "r", "p", "s"]
    assert got.mean_abs.tolist() == [1.0, 1.0, 0.5, 0.125]
    assert got["rank"].tolist() == [1, 2, 3, 4]


def test_plots_are_pngs_under_the_expected_names(lgbm: ModelSpec, splits: Splits) -> None:
    rows = splits.test.features.head(200)
    contrib = contributions(lgbm, rows)
    np.random.seed(123)
    next_draws = np.random.random(3)
    np.random.seed(123)
    images = plots(contrib, rows, top=6)
    top = global_importance(contrib).feature.head(6)
    assert set(images) == {"importance", "beeswarm", *(f"dependence_{f}" for f in top)}
    assert all(png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 1000 for png in images.values())
    # shap's plots shuffle with numpy's global generator; ours leaves it as it was.
    np.testing.assert_array_equal(np.random.random(3), next_draws)


def test_dependence_plot_of_a_categorical_feature_shows_its_levels(
    lgbm: ModelSpec, splits: Splits
) -> None:
    rows = splits.test.features.head(100).copy()
    rows.loc[rows.index[:5], "purpose"] = np.nan
    j = lgbm.feature_names.index("purpose")
    full = contributions(lgbm, rows)
    contrib = Contributions(full.values[:, [j]], full.base, ("purpose",))
    images = plots(contrib, rows, top=1)
    assert set(images) == {"importance", "beeswarm", "dependence_purpose"}
    assert images["dependence_purpose"].startswith(b"\x89PNG")
