"""The search: Optuna proposes parameters, the model kind fits them, a metric scores them.

The study optimises a metric from the registry on the validation split (`Objective`,
built by `evaluation.metrics.tuning_objective`, so this package needs nothing of the
evaluation package). Trials go through the model protocol (`training/models/base.py`):
a kind that boosts in rounds reports its per-round validation metric (`Watch`) so the
median pruner can stop hopeless trials early; a kind that fits in one go is scored once.
Trials read the encoded splits the job made once (`ModelInputs`).
"""

from __future__ import annotations

import math
import os
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
import optuna
from numpy.typing import NDArray

from training.models.base import ModelInputs, Watch
from training.models.registry import get_kind
from training.models.spec import valid_probabilities
from training.reading import DataError
from training.tuning.coordination import best_value, finished_count, run_to_budget

if TYPE_CHECKING:
    from training.split import Splits

__all__ = [
    "WORKER_ATTR",
    "Objective",
    "SearchRange",
    "TrialHook",
    "TrialRecord",
    "TuneResult",
    "tune",
]

#: Trial user attribute naming the process that ran it (host:pid).
WORKER_ATTR = "worker"
#: Trial user attribute naming the objectives that could not be computed (scored worst).
UNDEFINED_ATTR = "undefined_objectives"


@dataclass(frozen=True)
class Objective:
    """What a trial is scored on: a registry metric on the validation split.

    `early_stopping` is LightGBM's per-round metric that moves with it, so early
    stopping and the median pruner watch the same thing the study optimises.
    """

    metric: str
    direction: Literal["maximize", "minimize"]
    score: Callable[[NDArray[np.int8], NDArray[np.float64]], float]
    early_stopping: str


class SearchRange(Protocol):
    """One parameter's range: the config's `tuning.search_space` entries are these."""

    @property
    def type(self) -> Literal["int", "float", "categorical"]: ...

    @property
    def low(self) -> float | None: ...

    @property
    def high(self) -> float | None: ...

    @property
    def log(self) -> bool: ...

    @property
    def choices(self) -> list[Any] | None: ...


@dataclass(frozen=True)
class TrialRecord:
    number: int
    state: Literal["COMPLETE", "PRUNED", "FAIL"]
    value: float | None
    params: Mapping[str, Any]
    best_iteration: int | None
    duration_s: float
    curve: tuple[float, ...] = ()  # the validation metric LightGBM reported per iteration
    #: Every objective's value for a multi-objective study (the first is `value`).
    values: tuple[float, ...] = ()


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
    #: A multi-objective study's complete trials (all processes'), each with its values.
    alternatives: tuple[TrialRecord, ...] = ()


TrialHook = Callable[[TrialRecord, float | None], None]


def _suggest(trial: optuna.Trial, name: str, space: SearchRange) -> Any:
    if space.type == "int":
        assert space.low is not None and space.high is not None
        return trial.suggest_int(name, int(space.low), int(space.high), log=space.log)
    if space.type == "float":
        assert space.low is not None and space.high is not None
        return trial.suggest_float(name, float(space.low), float(space.high), log=space.log)
    return trial.suggest_categorical(name, list(space.choices or []))


def tune(
    inputs: ModelInputs | Splits,
    *,
    model_type: str,
    base_params: Mapping[str, Any],
    monotone: Mapping[str, int],
    search_space: Mapping[str, SearchRange],
    objective: Objective,
    study: optuna.Study,
    n_trials: int,
    timeout_s: float | None = None,
    seed: int = 0,
    hooks: Sequence[TrialHook] = (),
    extra_objectives: Sequence[Objective] = (),
) -> TuneResult:
    """Run `study` until `n_trials` have finished (resumed ones count) or time is up.

    The study comes from `open_study`, called before the job's MLflow run starts, so a
    study that cannot be opened leaves no run behind. `inputs` are the kind's encoded
    splits (plain `Splits` are encoded here, once).
    """
    kind = get_kind(model_type)
    encoded = inputs if isinstance(inputs, ModelInputs) else kind.inputs(inputs)
    done = finished_count(study)
    remaining = max(0, n_trials - done)
    y_valid = encoded.splits.valid.target
    multi = bool(extra_objectives)
    records: list[TrialRecord] = []
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def trial_value(trial: optuna.Trial) -> float | tuple[float, ...]:
        params = {
            **base_params,
            **{name: _suggest(trial, name, space) for name, space in search_space.items()},
        }
        curve: list[float] = []
        trial.set_user_attr("started", time.time())
        trial.set_user_attr(WORKER_ATTR, worker)

        def report(value: float, step: int) -> None:
            curve.append(value)
            if multi:
                return  # Optuna prunes only single-objective studies; early stopping stays
            trial.report(value, step)
            if trial.should_prune():
                trial.set_user_attr("curve", curve)
                raise optuna.TrialPruned(f"pruned at iteration {step}")

        model = kind.fit(
            encoded, params=params, monotone=monotone, seed=seed,
            watch=Watch(objective.early_stopping, report),
        )  # fmt: skip
        best = model.info().get("best_iteration")
        if best is not None:
            trial.set_user_attr("best_iteration", int(best))
        trial.set_user_attr("curve", curve)
        p_valid = valid_probabilities(model, encoded)
        primary = float(objective.score(y_valid, p_valid))
        if not multi:
            return primary
        extras = [float(o.score(y_valid, p_valid)) for o in extra_objectives]
        undefined = [o.metric for o, v in zip(extra_objectives, extras, strict=True) if v != v]
        if undefined:
            # A NaN fails the trial, and failed trials never fill the budget: score it the
            # worst instead and remember the value was undefined (`_record` restores NaN).
            trial.set_user_attr(UNDEFINED_ATTR, undefined)
            extras = [
                (0.0 if o.direction == "maximize" else 1e300) if v != v else v
                for o, v in zip(extra_objectives, extras, strict=True)
            ]
        return (primary, *extras)

    def after(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        record = _record(frozen)
        records.append(record)
        best = best_value(study)
        for hook in hooks:
            hook(record, best)

    if remaining:
        run_to_budget(study, trial_value, after, n_trials=n_trials, timeout_s=timeout_s)
    best_params: dict[str, Any] = {}
    best = best_value(study)
    alternatives: tuple[TrialRecord, ...] = ()
    if multi:
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        alternatives = tuple(_record(t) for t in complete)
        if alternatives:
            sign = 1.0 if objective.direction == "maximize" else -1.0
            top = max(alternatives, key=lambda r: (sign * r.values[0], -r.number))
            best_params = dict(top.params)
    elif best is not None:
        best_params = dict(study.best_trial.params)
    if best is None and n_trials:
        raise DataError("no tuning trial finished; check the search space and tuning.timeout_s")
    return TuneResult(
        metric=objective.metric,
        direction=objective.direction,
        best_params=best_params,
        best_value=best,
        trials=tuple(records),
        n_finished=finished_count(study),
        study_name=study.study_name,
        alternatives=alternatives,
    )


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
    values = tuple(float(v) for v in frozen.values or ()) if state == "COMPLETE" else ()
    if values and frozen.user_attrs.get(UNDEFINED_ATTR):
        values = (values[0], *(math.nan for _ in values[1:]))
    value = values[0] if values else None
    return TrialRecord(
        number=frozen.number,
        state=state,  # type: ignore[arg-type]
        value=None if value is None or not np.isfinite(value) else float(value),
        params=dict(frozen.params),
        best_iteration=frozen.user_attrs.get("best_iteration"),
        duration_s=round(duration, 3),
        curve=tuple(float(v) for v in curve),
        values=values,
    )
