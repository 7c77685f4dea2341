"""Hyper-parameter search with Optuna: seeded TPE, median pruning, resumable studies.

The study optimises a metric from the registry on the validation split. Trials report
LightGBM's per-iteration validation metric so the median pruner can stop hopeless
ones early. Storage is in memory unless `tuning.storage` names an RDB URL; a named
study there survives a crash and `--resume` carries on from its finished trials.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import optuna

from evaluation.metrics import get_metric, objective_direction
from training.data import DataError
from training.models.encoding import feature_specs
from training.models.lightgbm import (
    eval_metric_for,
    fit_lightgbm,
    lightgbm_params,
    pruning_callback,
    training_rounds,
)
from training.models.scorecard import fit_scorecard
from training.split import Splits

__all__ = ["TrialRecord", "TuneError", "TuneResult", "open_study", "tune"]

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: Seconds between heartbeats of a running trial in RDB storage; a worker silent for
#: longer than the grace period is taken as dead and its trial failed (then retried).
HEARTBEAT_S = 10
GRACE_S = 40


class TuneError(ValueError):
    """A study that cannot start as asked (exists already, or cannot be resumed)."""


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: Literal["COMPLETE", "PRUNED", "FAIL"]
    value: float | None
    params: Mapping[str, Any]
    best_iteration: int | None
    duration_s: float
    curve: tuple[float, ...] = ()  # the validation metric LightGBM reported per iteration


@dataclass(frozen=True)
class TuneResult:
    metric: str
    direction: Literal["maximize", "minimize"]
    best_params: Mapping[str, Any]
    best_value: float | None
    trials: tuple[TrialRecord, ...]  # those run by this process, in order
    n_finished: int  # complete + pruned in the whole study (resumed ones included)
    study_name: str | None = None
    extras: Mapping[str, Any] = field(default_factory=dict)


TrialHook = Callable[[TrialRecord, float | None], None]


def _suggest(trial: optuna.Trial, name: str, spec: Mapping[str, Any]) -> Any:
    kind = spec["type"]
    if kind == "int":
        return trial.suggest_int(
            name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log"))
        )
    if kind == "float":
        return trial.suggest_float(
            name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log"))
        )
    return trial.suggest_categorical(name, list(spec["choices"]))


def _storage(url: str | None) -> optuna.storages.BaseStorage | None:
    if url is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            failed_trial_callback=optuna.storages.RetryFailedTrialCallback(max_retry=2),
        )


def open_study(
    *,
    storage: str | None,
    study_name: str | None,
    direction: Literal["maximize", "minimize"],
    seed: int,
    pruner: Literal["none", "median"],
    resume: bool,
) -> optuna.Study:
    """Create the study, or with `resume` load the named one from RDB storage."""
    if resume and (storage is None or study_name is None):
        raise TuneError("--resume needs tuning.storage (an RDB URL) and tuning.study_name")
    backend = _storage(storage)
    if backend is not None and study_name is not None and not resume:
        existing = {s.study_name for s in optuna.get_all_study_summaries(backend)}
        if study_name in existing:
            raise TuneError(
                f"tuning.study_name {study_name!r} already exists in {storage}; "
                f"pass --resume to continue it or choose a new study_name"
            )
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=8)
    chosen_pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=30)
        if pruner == "median"
        else optuna.pruners.NopPruner()
    )
    try:
        return optuna.create_study(
            storage=backend,
            study_name=study_name,
            direction=direction,
            sampler=sampler,
            pruner=chosen_pruner,
            load_if_exists=resume,
        )
    except KeyError as err:  # pragma: no cover - load_if_exists covers the usual case
        raise TuneError(f"study {study_name!r} not found in {storage}") from err


def tune(
    splits: Splits,
    *,
    model_type: Literal["lightgbm", "scorecard"],
    base_params: Mapping[str, Any],
    monotone: Mapping[str, int],
    search_space: Mapping[str, Mapping[str, Any]],
    metric: str,
    study: optuna.Study,
    n_trials: int,
    timeout_s: float | None = None,
    seed: int = 0,
    hooks: Sequence[TrialHook] = (),
) -> TuneResult:
    """Run `study` until `n_trials` have finished (resumed ones count) or time is up.

    The study comes from `open_study`, called before the job's MLflow run starts, so a
    study that cannot be opened leaves no run behind.
    """
    direction = objective_direction(metric)
    scorer = get_metric(metric).fn
    assert scorer is not None
    done = _finished(study)
    remaining = max(0, n_trials - done)
    specs = feature_specs(splits.train.features, splits.train.categorical, splits.train.integer)
    y_valid = splits.valid.target
    records: list[TrialRecord] = []

    def objective(trial: optuna.Trial) -> float:
        sampled = {name: _suggest(trial, name, spec) for name, spec in search_space.items()}
        params = {**base_params, **sampled}
        curve: list[float] = []
        trial.set_user_attr("started", time.time())
        if model_type == "scorecard":
            card = fit_scorecard(
                splits.train, splits.valid, params=params, monotone=monotone, seed=seed
            )
            return float(scorer(y_valid, card.valid_raw))

        def report(value: float, step: int) -> bool:
            curve.append(value)
            trial.report(value, step)
            if trial.should_prune():
                trial.set_user_attr("curve", curve)
                raise optuna.TrialPruned(f"pruned at iteration {step}")
            return False

        rounds, patience = training_rounds(params)
        lgb_params = lightgbm_params(params, specs=specs, monotone=monotone, seed=seed)
        lgb_params["metric"] = eval_metric_for(metric)
        fitted = fit_lightgbm(
            splits.train,
            splits.valid,
            specs=specs,
            params=lgb_params,
            num_boost_round=rounds,
            early_stopping_rounds=patience,
            callbacks=[pruning_callback(report)],
        )
        trial.set_user_attr("best_iteration", fitted.best_iteration)
        trial.set_user_attr("curve", curve)
        return float(scorer(y_valid, fitted.valid_raw))

    def after(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        record = _record(frozen)
        records.append(record)
        best = _best_value(study)
        for hook in hooks:
            hook(record, best)

    if remaining:
        # No `catch`: a trial that raises is a bug or bad data, and the job should say so.
        study.optimize(objective, n_trials=remaining, timeout=timeout_s, callbacks=[after])
    best_params: dict[str, Any] = {}
    best_value = _best_value(study)
    if best_value is not None:
        best_params = dict(study.best_trial.params)
    elif n_trials:
        raise DataError("no tuning trial finished; check the search space and tuning.timeout_s")
    return TuneResult(
        metric=metric,
        direction=direction,
        best_params=best_params,
        best_value=best_value,
        trials=tuple(records),
        n_finished=_finished(study),
        study_name=study.study_name,
    )


def _finished(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def _best_value(study: optuna.Study) -> float | None:
    try:
        return float(study.best_value)
    except ValueError:
        return None


def _record(frozen: optuna.trial.FrozenTrial) -> TrialRecord:
    state = {
        optuna.trial.TrialState.COMPLETE: "COMPLETE",
        optuna.trial.TrialState.PRUNED: "PRUNED",
    }.get(frozen.state, "FAIL")
    start, end = frozen.datetime_start, frozen.datetime_complete
    duration = (end - start).total_seconds() if start and end else 0.0
    curve = frozen.user_attrs.get("curve") or [
        frozen.intermediate_values[k] for k in sorted(frozen.intermediate_values)
    ]
    value = frozen.value if state == "COMPLETE" else None
    return TrialRecord(
        number=frozen.number,
        state=state,  # type: ignore[arg-type]
        value=None if value is None or not np.isfinite(value) else float(value),
        params=dict(frozen.params),
        best_iteration=frozen.user_attrs.get("best_iteration"),
        duration_s=round(duration, 3),
        curve=tuple(float(v) for v in curve),
    )
