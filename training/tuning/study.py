"""The Optuna study: where it is stored, how it is opened, created or resumed.

Storage is in memory unless `tuning.storage` names an RDB URL; a named study there
survives a crash and `--resume` carries on from its finished trials. In RDB storage a
running trial sends heartbeats: a worker silent for longer than the grace period is
taken as dead, its trial failed and queued again (`RetryHeartbeatStaleTrialCallback`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import optuna

from creditgov.errors import BadInput

__all__ = ["GRACE_S", "HEARTBEAT_S", "TuneError", "open_study", "rdb_storage", "storage_url"]

optuna.logging.set_verbosity(optuna.logging.WARNING)

#: Seconds between heartbeats of a running trial in RDB storage; a worker silent for
#: longer than the grace period is taken as dead and its trial failed (then retried).
HEARTBEAT_S = 10
GRACE_S = 40


def _seconds(name: str, default: float) -> float:
    """An operator may shorten the heartbeat (e.g. tests that kill workers on purpose)."""
    text = os.environ.get(name, "")
    try:
        return float(text) if text else default
    except ValueError:
        raise TuneError(f"${name}={text!r}: give a number of seconds") from None


class TuneError(BadInput):
    """A study that cannot start as asked (exists already, or cannot be resumed)."""


def storage_url(url: str) -> str:
    """`postgresql://` means psycopg2, the driver we pin (SQLAlchemy 2.1 would pick psycopg 3)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg2://" + url.split("://", 1)[1]
    return url


def rdb_storage(url: str | None) -> optuna.storages.BaseStorage | None:
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
    extra_directions: Sequence[Literal["maximize", "minimize"]] = (),
) -> optuna.Study:
    """Create the study, or with `resume` (or `join`, for a worker) load the named one.

    `seed` differs per worker: TPE's random start-up trials would otherwise be the same
    parameter sets in every process. `extra_directions` makes the study multi-objective
    (the search for a less discriminatory alternative: accuracy and a fairness ratio);
    TPE then samples toward the Pareto front, and nothing is pruned (Optuna prunes only
    single-objective studies).
    """
    if resume and (storage is None or study_name is None):
        raise TuneError("--resume needs tuning.storage (an RDB URL) and tuning.study_name")
    backend = rdb_storage(storage)
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
    aims: dict[str, Any] = (
        {"directions": [direction, *extra_directions]}
        if extra_directions
        else {"direction": direction}
    )
    try:
        return optuna.create_study(
            storage=backend,
            study_name=study_name,
            sampler=sampler,
            pruner=chosen_pruner if not extra_directions else optuna.pruners.NopPruner(),
            load_if_exists=resume,
            **aims,
        )
    except KeyError as err:  # pragma: no cover - load_if_exists covers the usual case
        raise TuneError(f"study {study_name!r} not found in {storage}") from err
