"""Several processes, one study: the trial budget shared without overshooting it.

Several processes (`--workers N`, or the same command on several machines) can add
trials to one study in shared storage (PostgreSQL). Each runs one trial at a time and
checks the study's counts before the next under a lock (`StartLock`), so together they
stop exactly at the trial budget; heartbeats mark a dead worker's trial failed and the
retry callback queues it again (`study.py`). Nothing here knows what a trial fits.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Callable

import optuna

__all__ = [
    "POLL_S",
    "StartLock",
    "best_value",
    "finished_count",
    "first_heartbeat",
    "run_to_budget",
    "study_counts",
]

#: Seconds between looks at the study while other workers finish the last trials.
POLL_S = 0.5


def run_to_budget(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float | tuple[float, ...]],
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

    def started(trial: optuna.Trial) -> float | tuple[float, ...]:
        lock.release()  # the trial is RUNNING in storage now: the others count it
        return objective(trial)

    try:
        while deadline is None or time.monotonic() < deadline:
            lock.acquire()
            first_heartbeat(study, beaten)
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


def first_heartbeat(study: optuna.Study, beaten: set[int]) -> None:
    """Give each RUNNING trial seen for the first time one heartbeat.

    Optuna ages a trial by its heartbeats and never calls one without any stale, so a
    worker killed between creating a trial and its first heartbeat would leave a trial
    RUNNING forever, and `run_to_budget` would wait for it forever. One heartbeat from
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


def finished_count(study: optuna.Study) -> int:
    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def best_value(study: optuna.Study) -> float | None:
    """The best value of the study's (first) objective so far; None before any trial."""
    if len(study.directions) > 1:
        done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        firsts = [t.values[0] for t in done if t.values]
        if not firsts:
            return None
        pick = max if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else min
        return float(pick(firsts))
    try:
        return float(study.best_value)
    except ValueError:
        return None
