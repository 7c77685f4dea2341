"""Hyper-parameter search with Optuna: seeded TPE, median pruning, resumable studies.

The study optimises a metric from the registry on the validation split. Trials report
LightGBM's per-iteration validation metric so the median pruner can stop hopeless
ones early. Storage is in memory unless `tuning.storage` names an RDB URL; a named
study there survives a crash and `--resume` carries on from its finished trials.

Several processes (`--workers N`, or the same command on several machines) can add
trials to one study in shared storage (PostgreSQL). Each runs one trial at a time and
checks the study's counts before the next under a lock (`StartLock`), so together they
stop exactly at the trial budget;
heartbeats mark a dead worker's trial failed and the retry callback queues it again.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import optuna

from creditgov.errors import BadInput
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

__all__ = [
    "WORKER_ATTR",
    "TrialRecord",
    "TuneError",
    "TuneResult",
    "open_study",
    "storage_url",
    "study_counts",
    "tune",
]

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: Seconds between heartbeats of a running trial in RDB storage; a worker silent for
#: longer than the grace period is taken as dead and its trial failed (then retried).
HEARTBEAT_S = 10
GRACE_S = 40
#: Seconds between looks at the study while other workers finish the last trials.
POLL_S = 0.5
#: Trial user attribute naming the process that ran it (host:pid).
WORKER_ATTR = "worker"


def _seconds(name: str, default: float) -> float:
    """An operator may shorten the heartbeat (e.g. tests that kill workers on purpose)."""
    text = os.environ.get(name, "")
    try:
        return float(text) if text else default
    except ValueError:
        raise TuneError(f"${name}={text!r}: give a number of seconds") from None


class TuneError(BadInput):
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


def storage_url(url: str) -> str:
    """`postgresql://` means psycopg2, the driver we pin (SQLAlchemy 2.1 would pick psycopg 3)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def _storage(url: str | None) -> optuna.storages.BaseStorage | None:
    if url is None:
        return None
    heartbeat = _seconds("CREDITGOV_TUNING_HEARTBEAT_S", HEARTBEAT_S)
    grace = _seconds("CREDITGOV_TUNING_GRACE_S", max(GRACE_S, 4 * heartbeat))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            storage_url(url),
            heartbeat_interval=max(1, round(heartbeat)),
            grace_period=max(2, round(grace)),
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                max_retry=2
            ),
        )


def open_study(
    *,
    storage: str | None,
    study_name: str | None,
    direction: Literal["maximize", "minimize"],
    seed: int,
    pruner: Literal["none", "median"],
    resume: bool,
    join: bool = False,
) -> optuna.Study:
    """Create the study, or with `resume` (or `join`, for a worker) load the named one.

    `seed` differs per worker: TPE's random start-up trials would otherwise be the same
    parameter sets in every process.
    """
    if resume and (storage is None or study_name is None):
        raise TuneError("--resume needs tuning.storage (an RDB URL) and tuning.study_name")
    backend = _storage(storage)
    if join:
        resume = True
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
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: optuna.Trial) -> float:
        sampled = {name: _suggest(trial, name, spec) for name, spec in search_space.items()}
        params = {**base_params, **sampled}
        curve: list[float] = []
        trial.set_user_attr("started", time.time())
        trial.set_user_attr(WORKER_ATTR, worker)
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
        # Boosted with the validation set (the pruning callback reads it every round).
        assert fitted.valid_raw is not None
        return float(scorer(y_valid, fitted.valid_raw))

    def after(study: optuna.Study, frozen: optuna.trial.FrozenTrial) -> None:
        record = _record(frozen)
        records.append(record)
        best = _best_value(study)
        for hook in hooks:
            hook(record, best)

    if remaining:
        _run_to_budget(study, objective, after, n_trials=n_trials, timeout_s=timeout_s)
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


def _run_to_budget(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    after: Callable[[optuna.Study, optuna.trial.FrozenTrial], None],
    *,
    n_trials: int,
    timeout_s: float | None,
) -> None:
    """One trial at a time until the study (all workers together) has `n_trials` finished.

    A trial starts only while finished + running trials are under the budget, so N
    workers do not overshoot it by N-1. When the last trials are running elsewhere this
    worker waits for them — and fails those whose heartbeat stopped, which queues their
    retry (WAITING), which the next `optimize` call picks up first. It returns once the
    budget is met and no trial is running, so the caller's best trial is final.
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    beaten: set[int] = set()
    lock = StartLock.of(study)

    def started(trial: optuna.Trial) -> float:
        lock.release()  # the trial is RUNNING in storage now: the others count it
        return objective(trial)

    try:
        while deadline is None or time.monotonic() < deadline:
            lock.acquire()
            _first_heartbeat(study, beaten)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(study)  # a no-op without heartbeats
            counts = study_counts(study)
            finished, running, waiting = counts["finished"], counts["running"], counts["waiting"]
            if finished >= n_trials and running == 0:
                return
            if finished + running >= n_trials and not waiting:
                lock.release()
                time.sleep(POLL_S)
                continue
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            # No `catch`: a trial that raises is a bug or bad data, and the job should say so.
            study.optimize(started, n_trials=1, timeout=left, callbacks=[after])
            lock.release()
    finally:
        lock.release()
        lock.close()


class StartLock:
    """Makes "count the study's trials, then start one" atomic across processes.

    Without it two workers that count at the same instant both see room for one more
    trial and the study overshoots its budget (seen on a resume, where every worker
    starts at once). PostgreSQL: a session advisory lock keyed by the study, released by
    the server if the process dies. SQLite: an exclusive `flock` beside the database
    file, released by the kernel likewise. In-memory studies have one process and need
    none; other RDB dialects get none (a possible overshoot of N-1 trials).
    """

    def __init__(self, acquire: Callable[[], None], release: Callable[[], None],
                 close: Callable[[], None] = lambda: None) -> None:  # fmt: skip
        self._acquire, self._release, self._close = acquire, release, close
        self._held = False

    @classmethod
    def of(cls, study: optuna.Study) -> StartLock:
        storage = getattr(study, "_storage", None)
        engine = getattr(getattr(storage, "_backend", storage), "engine", None)
        if engine is None:
            return cls(lambda: None, lambda: None)
        key = int.from_bytes(
            hashlib.sha256(f"creditgov-trials:{study.study_name}".encode()).digest()[:8],
            "big",
            signed=True,
        )
        if engine.dialect.name == "postgresql":
            from sqlalchemy import text

            connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            return cls(
                lambda: connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key}),
                lambda: connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key}),
                connection.close,
            )
        if engine.dialect.name == "sqlite" and engine.url.database not in (None, "", ":memory:"):
            import fcntl

            handle = open(f"{engine.url.database}.trial-lock", "a+b")  # noqa: SIM115
            return cls(
                lambda: fcntl.flock(handle, fcntl.LOCK_EX),
                lambda: fcntl.flock(handle, fcntl.LOCK_UN),
                handle.close,
            )
        return cls(lambda: None, lambda: None)

    def acquire(self) -> None:
        if not self._held:
            self._acquire()
            self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._release()

    def close(self) -> None:
        self._close()


def _first_heartbeat(study: optuna.Study, beaten: set[int]) -> None:
    """Give each RUNNING trial seen for the first time one heartbeat.

    Optuna ages a trial by its heartbeats and never calls one without any stale, so a
    worker killed between creating a trial and its first heartbeat would leave a trial
    RUNNING forever, and `_run_to_budget` would wait for it forever. One heartbeat from
    here lets such a trial age out after the grace period; a live worker's own heartbeat
    thread keeps beating over it.
    """
    storage = getattr(study, "_storage", None)
    if storage is None or getattr(storage, "get_heartbeat_interval", lambda: None)() is None:
        return
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial._trial_id not in beaten:
            beaten.add(trial._trial_id)
            storage.record_heartbeat(trial._trial_id)


def study_counts(study: optuna.Study) -> dict[str, int]:
    """finished (complete + pruned), running, waiting and failed trials of the whole study."""
    out = {"finished": 0, "running": 0, "waiting": 0, "failed": 0}
    key = {
        optuna.trial.TrialState.COMPLETE: "finished",
        optuna.trial.TrialState.PRUNED: "finished",
        optuna.trial.TrialState.RUNNING: "running",
        optuna.trial.TrialState.WAITING: "waiting",
        optuna.trial.TrialState.FAIL: "failed",
    }
    for trial in study.get_trials(deepcopy=False):
        out[key[trial.state]] += 1
    return out


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
