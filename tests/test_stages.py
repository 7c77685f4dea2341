"""The job's stages pinned against an independent computation of what each must do.

`stages.fit_final` is the production fit path: the kind fits on train, then calibration
and the decision cut-off are learned on the *validation* split. Both would still give a
working model if learned on train (every other test passes either way), so the knots
and the cut-off are recomputed here with scikit-learn and the public policy function on
the validation split alone, and must match exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from creditgov import stages
from creditgov.config import load_config
from tests.conftest import CreditJob
from training.models.calibration import MIN_ISOTONIC_EVENTS, PD_FLOOR
from training.models.encoding import encode
from training.models.policy import choose_threshold
from training.models.registry import get_kind


@pytest.mark.parametrize("method", ["isotonic", "sigmoid"])
def test_calibration_and_cut_off_are_learned_on_the_validation_split(
    credit_job: CreditJob, method: str
) -> None:
    config = load_config(
        credit_job(
            config_updates={
                "model": {
                    "calibration": method,
                    "params": {"num_boost_round": 40, "early_stopping_rounds": 0},
                },
            }
        )
    )
    splits = stages.prepare(config)
    inputs = get_kind("lightgbm").inputs(splits)
    fitted = stages.fit_final(config, inputs, {})
    spec = fitted.spec

    booster = lgb.Booster(model_str=spec.model.model_text)
    raw_valid = booster.predict(encode(splits.valid.features, inputs.features))
    np.testing.assert_array_equal(fitted.raw["valid"], raw_valid)
    y_valid = splits.valid.target
    if method == "isotonic" and y_valid.sum() < MIN_ISOTONIC_EVENTS:
        # Too few bads on valid for isotonic: the job fits sigmoid and says why.
        assert spec.calibration.method == "sigmoid"
        assert "isotonic asked" in spec.calibration.note
        method = "sigmoid"
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=PD_FLOOR, y_max=1 - PD_FLOOR)
        iso.fit(raw_valid, y_valid)
        np.testing.assert_allclose(spec.calibration.x, iso.X_thresholds_, rtol=0, atol=0)
        np.testing.assert_allclose(spec.calibration.y, iso.y_thresholds_, rtol=0, atol=1e-15)
        calibrated = iso.predict(raw_valid)
    else:
        from sklearn.linear_model import LogisticRegression

        p = np.clip(raw_valid, 1e-12, 1 - 1e-12)
        logit = np.log(p / (1 - p)).reshape(-1, 1)
        platt = LogisticRegression(C=1e6, max_iter=1000).fit(logit, y_valid)
        assert spec.calibration.slope == pytest.approx(platt.coef_[0, 0], rel=1e-9)
        assert spec.calibration.intercept == pytest.approx(platt.intercept_[0], rel=1e-9)
        calibrated = platt.predict_proba(logit)[:, 1]
    assert config.decision.approval_rate is not None
    cut = choose_threshold(
        "approval_rate", calibrated, y_valid, approval_rate=config.decision.approval_rate
    )
    assert spec.decision.threshold == pytest.approx(cut, rel=1e-9)
    # Every other split is scored once with the same model, for the evidence.
    for name in ("train", "test"):
        expected = booster.predict(encode(splits.parts()[name].features, inputs.features))
        np.testing.assert_allclose(fitted.raw[name], expected, rtol=0, atol=1e-12)


def test_the_drift_reference_and_the_test_evidence_come_from_their_own_splits(
    credit_job: CreditJob,
) -> None:
    """Siblings of the calibration pin: the reference profile stored with the model is the
    train split's (with the model's calibrated train scores), and each split's metrics are
    that split's — both would look plausible computed on another split."""
    from sklearn.metrics import roc_auc_score

    from evaluation.drift_reference import build_reference

    config = load_config(
        credit_job(
            config_updates={
                "model": {"params": {"num_boost_round": 30, "early_stopping_rounds": 0}},
                "evaluation": {"shap_sample": 200},
            }
        )
    )
    splits = stages.prepare(config)
    fitted = stages.fit_final(config, get_kind("lightgbm").inputs(splits), {})
    evidence = stages.evaluate_model(config, fitted, splits)
    spec = fitted.spec
    train = splits.train
    expected = build_reference(
        train.features,
        categorical=train.categorical,
        scores=spec.probability(train.features),
        bins=config.evaluation.drift.bins,
    )
    assert evidence.reference.to_json() == expected.to_json()
    for name, part in splits.parts().items():
        auc = roc_auc_score(part.target, spec.probability(part.features))
        assert evidence.splits[name].metrics["auc"] == pytest.approx(auc, abs=1e-12)
        assert evidence.splits[name].rows == part.n_rows


def test_isotonic_on_too_few_bads_warns_in_the_run_the_report_and_the_console(
    credit_job: CreditJob, tmp_path: Path
) -> None:
    """The fallback is said where a data scientist and a reviewer each look."""
    import mlflow
    from mlflow import MlflowClient

    from tests.support import creditgov_in_process

    path = credit_job(config_updates={"model": {"calibration": "isotonic"}})
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = creditgov_in_process("train", str(path), "--json", "out.json", cwd=tmp_path,
                                tracking_uri=uri)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "warning: calibration: isotonic asked, sigmoid fitted instead" in done.stderr
    summary = json.loads((tmp_path / "out.json").read_text())
    (note,) = summary["notes"]
    assert f"fewer than the {MIN_ISOTONIC_EVENTS:,}" in note
    run = MlflowClient(uri).get_run(summary["run_id"])
    assert run.data.tags["creditgov.notes"] == note
    local = Path(
        mlflow.artifacts.download_artifacts(f"runs:/{run.info.run_id}/reports", tracking_uri=uri)
    )
    assert note in (local / "report.html").read_text()
    assert json.loads((local / "evidence.json").read_text())["model"]["calibration"] == "sigmoid"
    assert f"Note: {note}" in (local / "model_card.md").read_text()
