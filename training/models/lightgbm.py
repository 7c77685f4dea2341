"""LightGBM: the gradient-boosted PD / fraud model.

Everything that makes two runs differ is pinned: `deterministic`, `force_row_wise`, a
seed and a fixed thread count, so the same config and data give the same model text.
Categorical features use LightGBM's own categorical splits on level codes.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray

from training.data import Dataset
from training.models.encoding import FeatureSpec, encoded

__all__ = [
    "BASE_PARAMS",
    "LightGBMFit",
    "booster_of",
    "dataset_columns",
    "fit_lightgbm",
    "lightgbm_params",
    "raw_predict",
    "training_rounds",
]

#: Fixed for reproducibility and because the job, not LightGBM, decides what to log.
BASE_PARAMS: Mapping[str, Any] = {
    "objective": "binary",
    "metric": "auc",
    "verbosity": -1,
    "deterministic": True,
    "force_row_wise": True,
    "num_threads": 2,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 50,
    "feature_pre_filter": False,
}

#: Keys of `model.params` that steer the boosting loop rather than the booster.
ROUND_KEYS = ("num_boost_round", "n_estimators", "early_stopping_rounds")
DEFAULT_ROUNDS = 2000
DEFAULT_EARLY_STOPPING = 50


@dataclass(frozen=True)
class LightGBMFit:
    model_text: str  # native text model, trimmed to the best iteration
    best_iteration: int
    params: Mapping[str, Any]
    #: Uncalibrated validation probabilities LightGBM kept while boosting with the
    #: validation set; None when it was not boosted along (fixed rounds, no callbacks)
    #: or its scores were not asked for: `raw_predict(model_text, ...)` gives them then.
    valid_raw: NDArray[np.float64] | None


def dataset_columns(specs: Sequence[FeatureSpec]) -> tuple[list[str], list[int]]:
    """`lgb.Dataset`'s `feature_name` and `categorical_feature` (indices) for `specs`."""
    return [s.name for s in specs], [i for i, s in enumerate(specs) if s.kind == "categorical"]


def lightgbm_params(
    user: Mapping[str, Any],
    *,
    specs: Sequence[FeatureSpec],
    monotone: Mapping[str, int],
    seed: int,
) -> dict[str, Any]:
    """BASE_PARAMS, then the user's params, then what must hold (seed, constraints)."""
    params = {**BASE_PARAMS, **{k: v for k, v in user.items() if k not in ROUND_KEYS}}
    params["seed"] = seed
    if monotone:
        params["monotone_constraints"] = [int(monotone.get(s.name, 0)) for s in specs]
        params.setdefault("monotone_constraints_method", "intermediate")
    return params


def training_rounds(user: Mapping[str, Any]) -> tuple[int, int]:
    """(maximum rounds, early-stopping patience) from `model.params`; patience 0 is off."""
    rounds = int(user.get("num_boost_round", user.get("n_estimators", DEFAULT_ROUNDS)))
    patience = int(user.get("early_stopping_rounds", DEFAULT_EARLY_STOPPING))
    return rounds, patience


def fit_lightgbm(
    train: Dataset,
    valid: Dataset,
    *,
    specs: Sequence[FeatureSpec],
    params: Mapping[str, Any],
    num_boost_round: int,
    early_stopping_rounds: int,
    callbacks: Sequence[Callable[[Any], None]] = (),
    valid_scores: bool = True,
) -> LightGBMFit:
    """Boost on train, stop early on valid, return the text model trimmed to the best round.

    The validation split is boosted along only when something reads it per round (early
    stopping, callbacks): with fixed rounds and no callbacks this is `lightgbm.train` with
    no validation set, as keeping its scores current costs about a tenth of the boosting.

    `valid_scores`: hand back the probabilities LightGBM keeps for the validation split
    (after taking back the rounds early stopping ran past the best), which tuning trials
    score. The job's final fit passes False: its calibration step predicts the split
    once and the evidence reuses that prediction (`raw_predict`), so the fit does what
    `lightgbm.train` with early stopping does and no more. `valid_raw` is None then, as
    with no validation set.

    The training booster is kept (`keep_training_booster`) instead of being copied
    through a model string.
    """
    names, cats = dataset_columns(specs)
    train_set = lgb.Dataset(
        encoded(train.features, specs),
        label=train.target,
        feature_name=names,
        categorical_feature=cats,
        free_raw_data=True,
    )
    stopping = early_stopping_rounds > 0
    with_valid = stopping or bool(callbacks)
    booster_params = dict(params) if stopping else {**params, "metric": "None"}
    valid_sets = (
        [lgb.Dataset(encoded(valid.features, specs), label=valid.target, reference=train_set)]
        if with_valid
        else []
    )
    booster = lgb.train(
        booster_params,
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=valid_sets,
        valid_names=["valid"] if with_valid else None,
        callbacks=[
            *(
                [lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)]
                if stopping
                else []
            ),
            *callbacks,
        ],
        keep_training_booster=True,
    )
    current = booster.current_iteration()
    best = booster.best_iteration or current
    keep_scores = with_valid and valid_scores
    for _ in range(current - best if keep_scores else 0):
        # Early stopping boosted `patience` rounds past the best; taking them back also
        # takes them out of the scores LightGBM keeps, a little cheaper (0.12 s against
        # 0.14 s on 30k rows) than predicting the validation split with the kept trees.
        booster.rollback_one_iter()
    valid_raw = _valid_scores(booster) if keep_scores else None
    return LightGBMFit(
        model_text=booster.model_to_string(num_iteration=best),
        best_iteration=int(best),
        params=dict(params),
        valid_raw=valid_raw,
    )


def _valid_scores(booster: lgb.Booster) -> NDArray[np.float64]:
    """The probabilities LightGBM holds for the (first) validation set at its last round.

    Read through the public `eval_valid` with an evaluation function that only keeps
    what it is handed: LightGBM passes it those probabilities, as it does every round for
    a custom metric.
    """
    kept: list[NDArray[np.float64]] = []

    def keep(preds: NDArray[np.float64], _data: lgb.Dataset) -> tuple[str, float, bool]:
        kept.append(np.array(preds, dtype=np.float64))
        return "kept", 0.0, True

    booster.eval_valid(feval=keep)
    return kept[0]


@functools.lru_cache(maxsize=4)
def booster_of(model_text: str) -> lgb.Booster:
    """The Booster of a text model, parsed once: measuring one model scores it many times
    (every split, SHAP samples, the monotonicity grid), and parsing costs more than a
    small prediction. Callers only predict with it, never train or change it."""
    return lgb.Booster(model_str=model_text)


#: The last model's probabilities for each remembered matrix, by the matrix's id.
_PREDICTED: dict[int, tuple[str, NDArray[np.float64]]] = {}


def raw_predict(model_text: str, x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Uncalibrated probability from a text model (what the served model also does).

    A job predicts each split's remembered matrix (`encoding.encoded`: owned, read-only,
    never changed) more than once with the same model: the validation split for
    calibration and the cut-off, then every split for the evidence. The last model's
    probabilities for such a matrix are kept (read-only) for as long as the matrix
    lives; any other array is predicted every time.
    """
    remembered = x.base is None and not x.flags.writeable
    if remembered:
        hit = _PREDICTED.get(id(x))
        if hit is not None and hit[0] == model_text:
            return hit[1]
    p = np.asarray(booster_of(model_text).predict(x), dtype=np.float64)
    if remembered:
        if id(x) not in _PREDICTED:
            weakref.finalize(x, _PREDICTED.pop, id(x), None)
        p.flags.writeable = False
        _PREDICTED[id(x)] = (model_text, p)
    return p


#: LightGBM's own per-iteration metric that moves with each tunable registry metric, so
#: early stopping and the median pruner watch the same thing the study optimises.
_EVAL_METRIC = {
    "auc": "auc",
    "gini": "auc",
    "ks": "auc",
    "recall_at_1pct_fpr": "auc",
    "precision_at_top_1pct": "average_precision",
    "average_precision": "average_precision",
    "log_loss": "binary_logloss",
    "brier": "binary_logloss",
    "ece": "binary_logloss",
}


def eval_metric_for(metric: str) -> str:
    return _EVAL_METRIC.get(metric, "auc")


def pruning_callback(report: Callable[[float, int], bool]) -> Callable[[Any], None]:
    """A LightGBM callback that hands the validation metric to `report` each iteration.

    `report(value, step)` returns True when the trial should stop; the callback then
    raises the exception the caller's `report` chose (Optuna's TrialPruned).
    """

    def callback(env: Any) -> None:
        for name, _metric, value, *_ in env.evaluation_result_list:
            if name == "valid":
                report(float(value), int(env.iteration))
                return

    callback.order = 25  # type: ignore[attr-defined]  # after early stopping's bookkeeping
    return callback
