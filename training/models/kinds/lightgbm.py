"""LightGBM: the gradient-boosted PD / fraud model, as the `lightgbm` model kind.

Everything that makes two runs differ is pinned: `deterministic`, `force_row_wise`, a
seed and a fixed thread count, so the same config and data give the same model text.
Categorical features use LightGBM's own categorical splits on level codes. The fitted
model is served in the `booster` form: LightGBM's native text model, predicted (and
explained, with its exact TreeSHAP `pred_contrib`) by lightgbm alone.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray

from training.models.base import (
    Contributions,
    ExportedModel,
    FittedDefaults,
    KindDefaults,
    KindSettings,
    ModelInputs,
    ParamsRefused,
    Watch,
)
from training.models.encoding import FeatureSpec, encode, feature_specs

if TYPE_CHECKING:
    import pandas as pd

    from training.models.policy import ScoreScale
    from training.split import Splits

__all__ = [
    "ALLOWED_PARAMS",
    "BASE_PARAMS",
    "KIND",
    "LightGBMFit",
    "LightGBMKind",
    "LightGBMModel",
    "booster_names",
    "dataset_columns",
    "fit_lightgbm",
    "lightgbm_params",
    "pruning_callback",
    "refuse_unlisted",
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
#: More rounds than this would not end in a working day; a typo like 1e9 is refused.
MAX_ROUNDS = 100_000

#: The LightGBM parameters (and their aliases) a job may set: how it learns and
#: regularises, bins and samples. Everything else is refused before LightGBM sees it:
#: LightGBM also reads and writes files (`input_model`, `forcedsplits_filename`,
#: `output_model`, `save_binary`, `convert_model`, `machine_list_filename`), opens
#: sockets (`machines`, `num_machines`, `local_listen_port`) and picks devices, and a
#: config must reach none of that.
ALLOWED_PARAMS = frozenset(
    {
        # the boosting loop (creditgov's own keys) and the objective
        *ROUND_KEYS, "objective", "boosting", "boosting_type", "metric", "seed",
        "num_threads", "n_jobs", "deterministic", "force_row_wise", "force_col_wise",
        "verbosity", "verbose", "boost_from_average", "is_unbalance", "scale_pos_weight",
        "sigmoid",
        # tree shape and learning
        "learning_rate", "eta", "shrinkage_rate", "num_leaves", "num_leaf", "max_leaves",
        "max_depth", "min_data_in_leaf", "min_child_samples", "min_data",
        "min_sum_hessian_in_leaf", "min_child_weight", "min_gain_to_split",
        "min_split_gain", "max_delta_step", "path_smooth", "extra_trees", "linear_tree",
        "interaction_constraints", "monotone_constraints_method", "monotone_penalty",
        # regularisation
        "lambda_l1", "reg_alpha", "l1_regularization", "lambda_l2", "reg_lambda",
        "l2_regularization", "linear_lambda",
        # sampling
        "bagging_fraction", "subsample", "bagging_freq", "subsample_freq",
        "pos_bagging_fraction", "neg_bagging_fraction", "bagging_seed",
        "feature_fraction", "colsample_bytree", "feature_fraction_bynode",
        "colsample_bynode", "feature_fraction_seed", "data_sample_strategy",
        "top_rate", "other_rate",
        # dart
        "drop_rate", "max_drop", "skip_drop", "xgboost_dart_mode", "uniform_drop",
        "drop_seed",
        # binning and categorical splits
        "max_bin", "min_data_in_bin", "bin_construct_sample_cnt", "feature_pre_filter",
        "max_cat_threshold", "cat_l2", "cat_smooth", "max_cat_to_onehot",
        "min_data_per_group", "use_missing", "zero_as_missing",
    }
)  # fmt: skip
#: The largest magnitude any numeric parameter may have: past it LightGBM overflows.
MAX_PARAM_MAGNITUDE = 1e12


def refuse_unlisted(user: Mapping[str, Any], key: str) -> None:
    """Raise `ParamsRefused` for a parameter outside `ALLOWED_PARAMS` or a number out of range."""
    import math

    for name, value in user.items():
        where = f"{key}.{name}" if key == "model.params" else key
        if name not in ALLOWED_PARAMS:
            raise ParamsRefused(
                where,
                "not a LightGBM parameter a job may set (LightGBM would read or write files, "
                "open sockets or change devices with some); remove it: learning and "
                "regularisation parameters such as learning_rate, num_leaves, lambda_l2 are allowed",
            )
        numbers = value if isinstance(value, list) else [value]
        for number in numbers:
            if isinstance(number, bool) or not isinstance(number, int | float):
                continue
            if not math.isfinite(number) or abs(number) > MAX_PARAM_MAGNITUDE:
                raise ParamsRefused(
                    where, f"must be a finite number of magnitude at most {MAX_PARAM_MAGNITUDE:g}"
                )


@dataclass(frozen=True)
class LightGBMFit:
    model_text: str  # native text model, trimmed to the best iteration
    best_iteration: int
    params: Mapping[str, Any]
    #: Uncalibrated validation probabilities LightGBM kept while boosting with the
    #: validation set; None when it was not boosted along (fixed rounds, no callbacks)
    #: or its scores were not asked for: `LightGBMModel.raw_probability` gives them then.
    valid_raw: NDArray[np.float64] | None


#: A feature name LightGBM keeps exactly as given. It refuses JSON's special characters
#: (`"`, `,`, `:`, `[`, `]`, `{`, `}`), turns spaces into underscores (so `a b` and `a_b`
#: collide) and writes the names space-separated into its text model; ASCII keeps that
#: text model readable anywhere.
_LIGHTGBM_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def booster_names(names: Sequence[str]) -> list[str]:
    """The feature names LightGBM is given: the table's own when LightGBM keeps every one
    of them as it is, otherwise its positional `Column_<i>` for all of them.

    Only LightGBM ever sees these. Every matrix it reads is encoded by position in the
    order of the feature specs, in training and in the served model alike, and the
    features' names (for the signature, the reasons, the report, the drift reference)
    come from the specs; so a warehouse's names (`收入 (年) [CNY]`) need no renaming
    by the user. All or none, so a positional name never collides with a real one.
    """
    if all(_LIGHTGBM_SAFE_NAME.fullmatch(name) for name in names):
        return list(names)
    return [f"Column_{i}" for i in range(len(names))]


def dataset_columns(specs: Sequence[FeatureSpec]) -> tuple[list[str], list[int]]:
    """`lgb.Dataset`'s `feature_name` (`booster_names`) and `categorical_feature`
    (indices) for `specs`."""
    return (
        booster_names([s.name for s in specs]),
        [i for i, s in enumerate(specs) if s.kind == "categorical"],
    )


def lightgbm_params(
    user: Mapping[str, Any],
    *,
    specs: Sequence[FeatureSpec],
    monotone: Mapping[str, int],
    seed: int,
) -> dict[str, Any]:
    """BASE_PARAMS, then the user's params, then what must hold (seed, constraints).

    Every path to LightGBM comes through here, so the allow-list is enforced here too.
    """
    refuse_unlisted(user, "model.params")
    params = {**BASE_PARAMS, **{k: v for k, v in user.items() if k not in ROUND_KEYS}}
    params["seed"] = seed
    if monotone:
        params["monotone_constraints"] = [int(monotone.get(s.name, 0)) for s in specs]
        params.setdefault("monotone_constraints_method", "intermediate")
    return params


def training_rounds(user: Mapping[str, Any]) -> tuple[int, int]:
    """(maximum rounds, early-stopping patience) from `model.params`; patience 0 is off."""
    refuse_unlisted(user, "model.params")
    rounds = int(user.get("num_boost_round", user.get("n_estimators", DEFAULT_ROUNDS)))
    patience = int(user.get("early_stopping_rounds", DEFAULT_EARLY_STOPPING))
    if not 1 <= rounds <= MAX_ROUNDS:
        key = "num_boost_round" if "num_boost_round" in user else "n_estimators"
        raise ParamsRefused(f"model.params.{key}", f"must be between 1 and {MAX_ROUNDS:,}")
    if not 0 <= patience <= MAX_ROUNDS:
        raise ParamsRefused(
            "model.params.early_stopping_rounds", f"must be between 0 (off) and {MAX_ROUNDS:,}"
        )
    return rounds, patience


def fit_lightgbm(
    x_train: NDArray[np.float64],
    y_train: NDArray[np.int8],
    x_valid: NDArray[np.float64],
    y_valid: NDArray[np.int8],
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
    once and the evidence reuses that prediction (`ModelInputs`), so the fit does what
    `lightgbm.train` with early stopping does and no more. `valid_raw` is None then, as
    with no validation set.

    The training booster is kept (`keep_training_booster`) instead of being copied
    through a model string.
    """
    names, cats = dataset_columns(specs)
    train_set = lgb.Dataset(
        x_train,
        label=y_train,
        feature_name=names,
        categorical_feature=cats,
        free_raw_data=True,
    )
    stopping = early_stopping_rounds > 0
    with_valid = stopping or bool(callbacks)
    booster_params = dict(params) if stopping else {**params, "metric": "None"}
    valid_sets = [lgb.Dataset(x_valid, label=y_valid, reference=train_set)] if with_valid else []
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


def pruning_callback(report: Callable[[float, int], object]) -> Callable[[Any], None]:
    """A LightGBM callback that hands the validation metric to `report` each iteration.

    `report(value, step)` raises to stop the trial (Optuna's TrialPruned, in tuning).
    """

    def callback(env: Any) -> None:
        for name, _metric, value, *_ in env.evaluation_result_list:
            if name == "valid":
                report(float(value), int(env.iteration))
                return

    callback.order = 25  # type: ignore[attr-defined]  # after early stopping's bookkeeping
    return callback


#: Rows of each class the parameter check boosts one round on.
PARAM_CHECK_ROWS = 100


@contextmanager
def _native_stderr_dropped() -> Iterator[None]:
    """Drop what C++ code writes to file descriptor 2 meanwhile.

    LightGBM's C++ core writes "[LightGBM] [Fatal] ..." to stderr itself before raising
    the same text; the job's error line already carries it, and a bad-input error is
    one line. Python's own `sys.stderr` is untouched.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@dataclass(frozen=True)
class LightGBMModel(FittedDefaults):
    """A fitted booster: its text model (trimmed to the best round) and what it read."""

    features: tuple[FeatureSpec, ...]
    params: Mapping[str, Any]
    model_text: str
    best_iteration: int
    valid_raw: NDArray[np.float64] | None = field(default=None, compare=False, repr=False)
    kind: ClassVar[str] = "lightgbm"

    @functools.cached_property
    def booster(self) -> lgb.Booster:
        """The text model parsed, once per fitted model (a field of it, not a global)."""
        return lgb.Booster(model_str=self.model_text)

    def encode(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        return encode(frame, self.features)

    def raw_probability(self, encoded: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.asarray(self.booster.predict(encoded), dtype=np.float64)

    def contributions(self, frame: pd.DataFrame, *, score: ScoreScale) -> Contributions:
        """Exact TreeSHAP from LightGBM's own `pred_contrib`, in raw log-odds of "bad"."""
        out = np.asarray(self.booster.predict(self.encode(frame), pred_contrib=True))
        # pred_contrib appends the expected value as the last column.
        return Contributions(out[:, :-1], out[:, -1], tuple(f.name for f in self.features))

    def export(self) -> ExportedModel:
        return ExportedModel(
            section={"form": "booster", "best_iteration": self.best_iteration},
            files={"booster": ("model.txt", self.model_text)},
        )

    def info(self) -> Mapping[str, float]:
        return {"best_iteration": float(self.best_iteration)}


class LightGBMKind(KindDefaults):
    """The `lightgbm` model kind (training/models/base.py `ModelKind`)."""

    name: ClassVar[str] = "lightgbm"
    points: ClassVar[bool] = False

    def inputs(self, splits: Splits, settings: KindSettings | None = None) -> ModelInputs:
        """Every split encoded once, with the levels of train, as a read-only matrix."""
        train = splits.train
        specs = feature_specs(train.features, train.categorical, train.integer)
        matrices: dict[str, NDArray[np.float64]] = {}
        for name, part in splits.parts().items():
            matrix = encode(part.features, specs)
            matrix.flags.writeable = False
            matrices[name] = matrix
        return ModelInputs(self.name, specs, splits, matrices, settings=settings or KindSettings())

    def check_params(
        self,
        splits: Splits,
        param_sets: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        monotone: Mapping[str, int],
        seed: int,
    ) -> None:
        """Refuse LightGBM parameters LightGBM would refuse, before any run starts.

        LightGBM checks its parameters only when it trains, so a bad value (`max_bin: 1`,
        an unknown objective, a search range reaching `num_leaves: 1`) would otherwise
        fail the job after its run had started. One round on at most `PARAM_CHECK_ROWS`
        rows of each class, with exactly the parameters the fit will use, takes a few
        milliseconds a set and raises LightGBM's own message, which names the parameter.
        """
        train = splits.train
        rows = np.concatenate(
            [np.flatnonzero(train.target == label)[:PARAM_CHECK_ROWS] for label in (0, 1)]
        )
        # The specs of the sampled rows: the same columns, kinds and categorical indices
        # as the fit's, without a pass over the whole train split `inputs` makes anyway.
        sample = train.features.iloc[rows]
        specs = feature_specs(sample, train.categorical, train.integer)
        x, y = encode(sample, specs), train.target[rows]
        names, cats = dataset_columns(specs)
        for key, user in param_sets:
            refuse_unlisted(user, key)  # before LightGBM sees any of it
            training_rounds(user)
            params = lightgbm_params(user, specs=specs, monotone=monotone, seed=seed)
            # A new Dataset each time: binning parameters (max_bin) are fixed when it is built.
            data = lgb.Dataset(x, label=y, feature_name=names, categorical_feature=cats)
            try:
                with _native_stderr_dropped():
                    lgb.train(params, data, num_boost_round=1)
            except lgb.basic.LightGBMError as err:
                # "Check failed: (max_bin) > (1) at /path/config_auto.cpp, line 527 ." -> the check.
                reason = re.sub(r"\s+at \S+, line \d+\s*\.?$", "", " ".join(str(err).split()))
                raise ParamsRefused(
                    key,
                    f"LightGBM refuses {'them' if key == 'model.params' else 'that value'} "
                    f"({reason}); fix or remove it (LightGBM's parameter reference gives "
                    "each valid range)",
                ) from None

    def fit(
        self,
        inputs: ModelInputs,
        *,
        params: Mapping[str, Any],
        monotone: Mapping[str, int],
        seed: int,
        watch: Watch | None = None,
    ) -> LightGBMModel:
        """Boost on train, stopping early on valid when the params say so.

        With a `watch` (a tuning trial) LightGBM reports the watched metric each round
        to the pruner and hands back the validation probabilities it kept; the job's
        final fit has none and its validation split is predicted once afterwards.
        """
        splits = inputs.splits
        rounds, patience = training_rounds(params)
        lgb_params = lightgbm_params(params, specs=inputs.features, monotone=monotone, seed=seed)
        if watch is not None:
            lgb_params["metric"] = watch.metric
        fitted = fit_lightgbm(
            inputs.train,
            splits.train.target,
            inputs.valid,
            splits.valid.target,
            specs=inputs.features,
            params=lgb_params,
            num_boost_round=rounds,
            early_stopping_rounds=patience,
            callbacks=[pruning_callback(watch.report)] if watch is not None else (),
            valid_scores=watch is not None,
        )
        return LightGBMModel(
            features=inputs.features,
            params=fitted.params,
            model_text=fitted.model_text,
            best_iteration=fitted.best_iteration,
            valid_raw=fitted.valid_raw,
        )

    def from_state(
        self,
        section: Mapping[str, Any],
        features: tuple[FeatureSpec, ...],
        files: Mapping[str, str],
    ) -> LightGBMModel:
        return LightGBMModel(
            features=features,
            params={},
            model_text=files["booster"],
            best_iteration=int(section["best_iteration"]),
        )


KIND = LightGBMKind()
