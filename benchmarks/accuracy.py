"""Accuracy: the shipped config's out-of-time test AUC next to the Bayes AUC of the same rows.

Measures what the shipped `configs/credit_scoring.yaml` job (tuning and calibration as
shipped) reaches on the synthetic table's out-of-time test split, against the AUC of the
true default probability of the same rows, known because the data is synthetic
(`make_credit(...).truth`, matched by application id). The registered model's own AUC on
the raw file rows is a check on the logged figure, and LightGBM with library defaults and
early stopping on the same split says whether a gap is creditgov's or the data's. Target:
gap (Bayes AUC - job AUC) <= 0.01.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score

from benchmarks.harness import (
    BenchResult,
    NotSameWork,
    bare_inputs,
    fresh_store,
    job_config,
    model_inputs,
    timed_job,
)
from creditgov.config import JobConfig
from creditgov.job import JobResult, prepare
from training.split import Splits

if TYPE_CHECKING:
    from benchmarks.harness import Context

__all__ = ["AUC_GAP_TARGET", "bench"]

AUC_GAP_TARGET = 0.01


def bench(context: Context) -> list[BenchResult]:
    """The shipped config's out-of-time test AUC vs the Bayes AUC of the same test rows."""
    data, trials, log = context.data, context.trials, context.log
    store = context.workdir / "mlflow-accuracy"
    config = job_config(
        data, store=store, overrides=[] if trials is None else [f"tuning.n_trials={trials}"]
    )
    fresh_store(config, store)
    log(
        f"accuracy: shipped config, {config.tuning.n_trials} tuning trials, "
        f"calibration {config.model.calibration}, {data.rows} rows"
    )
    result, clock = timed_job(config)
    log(f"accuracy: job done in {clock.ended - clock.started:.1f} s")

    splits = prepare(config)  # deterministic: the job's own split, for the rows' ids
    id_column = config.data.id_column or ""
    scores: dict[str, dict[str, float]] = {}
    for name in ("valid", "test"):
        part = splits.parts()[name]
        assert part.ids is not None
        ids = part.ids.to_numpy()
        truth = data.truth.reindex(ids)
        if truth.isna().any() or not np.array_equal(data.labels.reindex(ids), part.target):
            raise NotSameWork(f"the {name} rows do not match the synthetic table by id")
        scores[name] = {
            "job_auc": result.metrics[name]["auc"],
            "served_model_auc": float(
                roc_auc_score(part.target, _served(result, data.path, id_column, ids))
            ),
            "bayes_auc": float(roc_auc_score(part.target, truth.to_numpy())),
            "rows": float(part.n_rows),
            "bads": float(part.target.sum()),
        }
    test = scores["test"]
    bare_auc, bare_iteration = _bare_default_auc(config, splits)
    states = [t["state"] for t in clock.trials]
    details = {
        "scores": scores,
        "gap_served_model": test["bayes_auc"] - test["served_model_auc"],
        "bare_lightgbm_defaults": {
            "test_auc": bare_auc,
            "gap": test["bayes_auc"] - bare_auc,
            "best_iteration": bare_iteration,
            "what": "lightgbm defaults (+ seed, 2 threads), early stopping 50 on the same valid split",
        },
        "best_params": dict(result.best_params),
        "n_trials": result.n_trials,
        "trial_states": {s: states.count(s) for s in sorted(set(states))},
        "job_wall_s": clock.ended - clock.started,
        "breakdown": {
            "title": "Accuracy job: stages",
            "rows": [{"part": k, "median_s": v} for k, v in clock.durations().items()],
        },
    }
    return [
        BenchResult(
            name="accuracy",
            title="OOT test AUC vs Bayes AUC",
            kind="gap",
            creditgov=test["job_auc"],
            reference=test["bayes_auc"],
            value=test["bayes_auc"] - test["job_auc"],
            target=AUC_GAP_TARGET,
            unit="AUC",
            includes={
                "creditgov": "job.run(shipped credit_scoring config): test_auc it logged",
                "reference": (
                    "roc_auc_score(test labels, true P(default) of the same rows matched by "
                    "application_id) from make_credit(...).truth"
                ),
            },
            details=details,
        )
    ]


def _served(
    result: JobResult, path: Path, id_column: str, ids: NDArray[Any]
) -> NDArray[np.float64]:
    """Probabilities of the registered model on the raw file rows: a check on `test_auc`."""
    import mlflow

    model = mlflow.pyfunc.load_model(result.model_uri)
    names = [str(n) for n in model.metadata.get_input_schema().input_names()]
    frame = pd.read_parquet(path, columns=[id_column, *names])
    frame = frame.set_index(id_column).loc[ids, names].reset_index(drop=True)
    return np.asarray(model.predict(frame)["probability"], dtype=np.float64)


def _bare_default_auc(config: JobConfig, splits: Splits) -> tuple[float, int]:
    """Test AUC of LightGBM with library defaults: is the gap creditgov's or the data's?"""
    encoded = model_inputs(config, splits)
    inputs = bare_inputs(config, encoded)
    train = lgb.Dataset(
        inputs.x_train,
        label=inputs.y_train,
        feature_name=inputs.names,
        categorical_feature=inputs.categorical,
    )
    valid = lgb.Dataset(inputs.x_valid, label=inputs.y_valid, reference=train)
    params = {
        "objective": "binary",
        "metric": "auc",
        "verbosity": -1,
        "num_threads": 2,
        "seed": config.seed,
    }
    booster = lgb.train(
        params,
        train,
        num_boost_round=5000,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    p = booster.predict(encoded.of("test"), num_iteration=booster.best_iteration)
    return float(roc_auc_score(splits.test.target, p)), int(booster.best_iteration)
