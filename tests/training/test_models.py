"""The fitted pieces, pinned against scikit-learn, optbinning and hand-worked numbers."""

from __future__ import annotations

import math

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import roc_auc_score

from tests.training.helpers import credit_splits
from training.models.base import KindSettings
from training.models.calibration import MIN_ISOTONIC_EVENTS, PD_FLOOR, fit_calibration
from training.models.encoding import FeatureSpec, encode, feature_specs
from training.models.kinds.lightgbm import LightGBMFit, fit_lightgbm, lightgbm_params
from training.models.policy import ScoreScale, choose_threshold
from training.models.registry import get_kind, kind_names
from training.models.scorecard_bins import Selection
from training.models.spec import fit_model
from training.split import Splits

MONOTONE = {"bureau_score": -1, "debt_to_income": 1}


def test_score_scale_matches_its_definition_by_hand() -> None:
    scale = ScoreScale(base_score=600, base_odds=50, pdo=20)
    # Odds of good 50:1 -> p(bad) = 1/51 scores exactly the base score.
    assert scale.points(np.array([1 / 51]))[0] == pytest.approx(600.0)
    # Doubling the odds of good (100:1) adds pdo points.
    assert scale.points(np.array([1 / 101]))[0] == pytest.approx(620.0)
    assert scale.factor == pytest.approx(20 / math.log(2))


def test_encoding_maps_unseen_and_missing_levels_to_nan() -> None:
    frame = pd.DataFrame({"c": ["b", "a", None, "a"], "x": [1.0, np.nan, 3.0, 4.0]})
    specs = feature_specs(frame, ["c"])
    assert specs[0] == FeatureSpec("c", "categorical", ("a", "b"), dtype="string")
    x = encode(pd.DataFrame({"c": ["a", "zzz", None], "x": [1, 2, None]}), specs)
    assert x[0, 0] == 0.0 and np.isnan(x[1, 0]) and np.isnan(x[2, 0])
    assert np.isnan(x[2, 1]) and x[1, 1] == 2.0


def test_isotonic_calibration_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(size=6000)
    y = (rng.uniform(size=6000) < raw**2).astype(np.int8)  # ~2,000 bads: enough for isotonic
    cal = fit_calibration("isotonic", raw, y)
    assert cal.method == "isotonic" and cal.note == ""
    expected = IsotonicRegression(out_of_bounds="clip", y_min=PD_FLOOR, y_max=1 - PD_FLOOR).fit(
        raw, y
    )
    grid = np.linspace(-0.1, 1.1, 301)
    np.testing.assert_allclose(cal.apply(grid), expected.predict(grid), atol=1e-12)
    assert cal.apply(np.array([0.0]))[0] >= PD_FLOOR


def test_isotonic_on_too_few_bads_falls_back_to_sigmoid_and_says_so() -> None:
    rng = np.random.default_rng(0)
    raw = rng.uniform(size=6000)
    y = (rng.uniform(size=6000) < raw**4 / 2).astype(np.int8)
    bads = int(y.sum())
    assert bads < MIN_ISOTONIC_EVENTS
    for asked in ("isotonic", "auto"):
        cal = fit_calibration(asked, raw, y)  # type: ignore[arg-type]
        assert cal.method == "sigmoid"
        assert f"{bads:,}" in cal.note and asked in cal.note
        # The PDs stay as many as the rows, not a handful of isotonic steps.
        assert len(np.unique(cal.apply(raw))) == len(np.unique(raw))
    # Isotonic on the same rows would have collapsed them.
    iso = IsotonicRegression(out_of_bounds="clip").fit(raw, y)
    assert len(np.unique(iso.predict(raw))) < 60
    # auto with enough bads is isotonic.
    y_many = (rng.uniform(size=6000) < raw).astype(np.int8)
    assert fit_calibration("auto", raw, y_many).method == "isotonic"


def test_sigmoid_calibration_recovers_a_known_distortion() -> None:
    # True p = sigmoid(2 * logit(raw) - 1): Platt scaling should find slope 2, intercept -1.
    rng = np.random.default_rng(1)
    raw = rng.uniform(0.01, 0.99, size=200_000)
    logit = np.log(raw / (1 - raw))
    y = (rng.uniform(size=raw.size) < 1 / (1 + np.exp(-(2 * logit - 1)))).astype(np.int8)
    cal = fit_calibration("sigmoid", raw, y)
    assert cal.slope == pytest.approx(2.0, abs=0.05)
    assert cal.intercept == pytest.approx(-1.0, abs=0.05)


def test_approval_rate_threshold_approves_that_share_of_valid() -> None:
    p = np.random.default_rng(2).uniform(size=1000)
    y = np.zeros(1000, dtype=np.int8)
    cut = choose_threshold("approval_rate", p, y, approval_rate=0.85)
    assert np.mean(p < cut) == pytest.approx(0.85, abs=1e-3)


def test_approval_rate_with_tied_probabilities_takes_the_nearer_block() -> None:
    p = np.array([0.1] * 50 + [0.2] * 40 + [0.3] * 10)
    y = np.zeros(100, dtype=np.int8)
    # 85% sits inside the 0.2 block: approving it gives 90%, declining it 50%; 90% is nearer.
    cut = choose_threshold("approval_rate", p, y, approval_rate=0.85)
    assert np.mean(p < cut) == pytest.approx(0.90)


def test_cost_threshold_is_the_brute_force_minimum() -> None:
    rng = np.random.default_rng(3)
    p = rng.uniform(size=400) ** 3
    y = (rng.uniform(size=400) < p).astype(np.int8)
    cut = choose_threshold("cost", p, y, cost_false_negative=20.0, cost_false_positive=1.0)

    def cost(t: float) -> float:
        flag = p >= t
        return 20.0 * np.sum(~flag & (y == 1)) + 1.0 * np.sum(flag & (y == 0))

    candidates = [*np.unique(p), 1.1]
    assert cost(cut) == pytest.approx(min(cost(t) for t in candidates))


#: Every feature kept: the comparisons with optbinning below bin every candidate.
KEEP_ALL = {"min_iv": 0.0, "max_correlation": 1.0}


def _selection(splits: Splits, options: dict[str, object] | None = None) -> Selection:
    inputs = get_kind("scorecard").inputs(
        splits, KindSettings(monotone=MONOTONE, options=options or KEEP_ALL)
    )
    selection: Selection = inputs.encoder
    return selection


def test_scorecard_woe_tables_reproduce_optbinning_transform() -> None:
    from optbinning import BinningProcess

    splits = credit_splits()
    selection = _selection(splits)
    names = [b.name for b in selection.kept]
    process = BinningProcess(
        names,
        categorical_variables=list(splits.train.categorical),
        binning_fit_params={
            n: {
                "monotonic_trend": {1: "ascending", -1: "descending"}.get(
                    MONOTONE.get(n, 0), "auto_asc_desc"
                )
            }
            for n in names
            if n not in splits.train.categorical
        },
    ).fit(splits.train.features, splits.train.target)
    for part in (splits.train, splits.test):
        ours = np.column_stack([b.transform(part.features[b.name]) for b in selection.kept])
        theirs = process.transform(part.features, metric="woe", metric_missing="empirical")
        np.testing.assert_allclose(ours, np.asarray(theirs, dtype=float), atol=1e-9)
    # The bins' counts and IV are optbinning's own table.
    table = process.get_binned_variable("bureau_score").binning_table.build()
    bureau = next(b for b in selection.kept if b.name == "bureau_score")
    assert [s.count for s in bureau.stats] == [int(c) for c in table["Count"].iloc[:-3]] + [
        int(table["Count"].iloc[-2])
    ]
    assert bureau.iv == pytest.approx(float(table["IV"].iloc[-1]))


def test_scorecard_monotone_characteristics_have_monotone_woe() -> None:
    selection = _selection(credit_splits())
    by_name = {b.name: b for b in selection.kept}
    # WOE = ln(good share / bad share): risk rising with the feature means WOE falls.
    assert np.all(np.diff(by_name["debt_to_income"].woe) <= 1e-12)
    assert np.all(np.diff(by_name["bureau_score"].woe) >= -1e-12)


def test_scorecard_integer_points_add_up_to_the_score_exactly() -> None:
    splits = credit_splits()
    scale = ScoreScale(600, 50, 20)
    spec = fit_model(
        splits,
        task="credit_scoring",
        model_type="scorecard",
        params={},
        monotone=MONOTONE,
        calibration="sigmoid",  # the score is the points whatever the calibration
        score=scale,
        decision_rule="threshold",
        threshold=0.2,
    ).spec
    card = spec.model
    sheet = spec.sheet()
    assert sheet is not None
    table = sheet.tables["points_table"]
    assert table["points"].dtype.kind == "i"
    base = int(dict(sheet.facts)["base points"])
    rows = splits.test.features
    scores = spec.predict(rows)["score"].to_numpy()
    total = np.full(len(rows), float(base))
    for c in card.characteristics:
        mine = table[table.characteristic == c.name].reset_index(drop=True)
        index = c.binned.bin_index(rows[c.name])
        assert (index >= 0).all()  # the synthetic test split has no unseen level
        total += mine["points"].to_numpy()[index]
    np.testing.assert_array_equal(total, scores)
    # Each bin's points are round(-factor x coefficient x WOE), by hand.
    c = card.characteristics[0]
    assert c.points[0] == round(-scale.factor * c.coefficient * c.binned.woe[0])
    # The probability is read back from the integer score.
    raw = spec.raw_probability(rows)
    np.testing.assert_allclose(scale.points(raw), scores, atol=1e-6)


def test_lightgbm_fit_is_deterministic_and_respects_monotone_constraints() -> None:
    splits = credit_splits()
    kwargs = dict(
        task="credit_scoring",
        model_type="lightgbm",
        params={"num_boost_round": 80, "num_threads": 2},
        monotone=MONOTONE,
        calibration="none",
        score=ScoreScale(600, 50, 20),
        decision_rule="threshold",
        seed=7,
    )
    a = fit_model(splits, **kwargs).spec  # type: ignore[arg-type]
    b = fit_model(splits, **kwargs).spec  # type: ignore[arg-type]
    assert a.model.model_text == b.model.model_text
    np.testing.assert_array_equal(
        a.probability(splits.test.features), b.probability(splits.test.features)
    )
    assert roc_auc_score(splits.test.target, a.probability(splits.test.features)) > 0.7

    base = splits.test.features.head(40)
    grid = np.linspace(350, 850, 26)
    curves = np.column_stack([a.probability(base.assign(bureau_score=v)) for v in grid])
    assert np.all(np.diff(curves, axis=1) <= 1e-12), "risk must not rise with bureau_score (-1)"
    dti = np.column_stack(
        [a.probability(base.assign(debt_to_income=v)) for v in np.linspace(0, 1.5, 26)]
    )
    assert np.all(np.diff(dti, axis=1) >= -1e-12), "risk must not fall with debt_to_income (+1)"


def test_state_document_holds_no_python_objects() -> None:
    import json

    splits = credit_splits()
    spec = fit_model(
        splits,
        task="credit_scoring",
        model_type="lightgbm",
        params={"num_boost_round": 20},
        monotone={},
        calibration="isotonic",
        score=ScoreScale(600, 50, 20),
        decision_rule="approval_rate",
        approval_rate=0.8,
    ).spec
    text = json.dumps(spec.state())  # raises if anything is not plain JSON
    # The small split has too few bads for isotonic: the state holds what was fitted.
    assert json.loads(text)["calibration"]["method"] == spec.calibration.method == "sigmoid"
    assert "note" not in json.loads(text)["calibration"]
    assert json.loads(text)["decision"]["below"] == "approve"


def _bare_booster(splits: Splits, fit: LightGBMFit, rounds: int, patience: int) -> lgb.Booster:
    """`lightgbm.train` called directly with the fit's own params, as a user would."""
    specs = feature_specs(splits.train.features, splits.train.categorical, splits.train.integer)
    train = lgb.Dataset(
        encode(splits.train.features, specs),
        label=splits.train.target,
        feature_name=[s.name for s in specs],
        categorical_feature=[i for i, s in enumerate(specs) if s.kind == "categorical"],
    )
    valid = lgb.Dataset(
        encode(splits.valid.features, specs), label=splits.valid.target, reference=train
    )
    callbacks = [lgb.early_stopping(patience, verbose=False)] if patience else []
    return lgb.train(
        dict(fit.params),
        train,
        num_boost_round=rounds,
        valid_sets=[valid] if patience else None,
        callbacks=callbacks,
    )


@pytest.mark.parametrize(
    ("rounds", "patience", "scores"),
    [(60, 0, True), (400, 10, True), (400, 10, False), (25, 40, True)],
)
def test_lightgbm_fit_matches_bare_lightgbm_train(rounds: int, patience: int, scores: bool) -> None:
    """Early stopping off: exactly `rounds` trees, as bare `lgb.train` without a valid set.
    On: trimmed to LightGBM's own best iteration, whether or not the validation scores
    LightGBM kept are read (`valid_scores`). Either way the validation probabilities the
    fit hands to calibration equal a fresh prediction of the kept trees."""
    splits = credit_splits()
    specs = feature_specs(splits.train.features, splits.train.categorical, splits.train.integer)
    params = lightgbm_params({"num_threads": 2}, specs=specs, monotone={}, seed=3)
    fit = fit_lightgbm(
        encode(splits.train.features, specs),
        splits.train.target,
        encode(splits.valid.features, specs),
        splits.valid.target,
        specs=specs,
        params=params,
        num_boost_round=rounds,
        early_stopping_rounds=patience,
        valid_scores=scores,
    )
    bare = _bare_booster(splits, fit, rounds, patience)
    expected_trees = bare.best_iteration if patience else rounds
    assert 0 < fit.best_iteration == expected_trees
    if patience and patience < rounds:  # (25, 40): the rounds run out before the patience
        assert fit.best_iteration < rounds, "the case must really stop early"
    # Fixed rounds boost train alone, as bare lgb.train does; stopping early needs valid.
    assert (fit.valid_raw is None) == (patience == 0 or not scores)
    x_valid = encode(splits.valid.features, specs)
    expected = bare.predict(x_valid, num_iteration=expected_trees)
    served = lgb.Booster(model_str=fit.model_text).predict(x_valid)
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-12)
    if fit.valid_raw is not None:
        np.testing.assert_allclose(fit.valid_raw, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind_name", kind_names())
def test_every_kind_encodes_each_split_once_as_a_field_of_its_inputs(kind_name: str) -> None:
    """No hidden cache: a kind's `ModelInputs` hold each split as the model reads it (LightGBM
    and the logistic regression a read-only matrix), the fitted model predicts those
    exactly as it predicts the frame itself, and the validation probabilities the fit
    holds (if any) are those of the validation inputs."""
    splits = credit_splits()
    kind = get_kind(kind_name)
    inputs = kind.inputs(splits)
    assert set(inputs.matrices) == {"train", "valid", "test"}
    model = kind.fit(inputs, params={"num_boost_round": 30}, monotone={}, seed=1)
    for name, part in splits.parts().items():
        matrix = inputs.of(name)
        if isinstance(matrix, np.ndarray):
            assert not matrix.flags.writeable
            with pytest.raises(ValueError, match="read-only"):
                matrix[0, 0] = 1.0
        np.testing.assert_array_equal(
            model.raw_probability(matrix), model.raw_probability(model.encode(part.features))
        )
    if model.valid_raw is not None:
        np.testing.assert_allclose(
            model.valid_raw, model.raw_probability(inputs.valid), rtol=0, atol=1e-12
        )
    contributions = model.contributions(
        splits.test.features.head(50), score=ScoreScale(600, 50, 20)
    )
    # One column per feature the model reads (a scorecard may leave some out).
    assert contributions.values.shape == (50, len(model.features))
