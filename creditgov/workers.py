"""Tuning workers: more processes adding trials to one study in shared storage.

`creditgov train CONFIG --workers N` is N processes on this machine: the job itself and
N-1 workers started here, all adding trials to the study named by `tuning.study_name` in
`tuning.storage` (PostgreSQL in team mode). The same command on another machine, once
the study exists, joins it: that machine's processes add trials too, and stop when the
study has its budget. Exactly one process — the job that created the study (or resumed
it) — fits the final model and registers it; its MLflow run id is kept on the study so
every worker logs each trial it ran as one child run of that run.

A worker killed mid-trial stops sending heartbeats; after the grace period any other
process marks that trial failed and the retry callback queues it again (tuning.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from creditgov.config import JobConfig, validate_config

if TYPE_CHECKING:
    import optuna

    from creditgov.job import Progress
    from registry.tracking import TrialLogger
    from training.split import Splits
    from training.tuning import TrialHook, TuneResult

__all__ = [
    "EXPERIMENT_ATTR",
    "RUN_ATTR",
    "JoinResult",
    "check_workers",
    "join_running_study",
    "main",
    "team_workers",
    "tune_job",
]

RUN_ATTR = "creditgov.run_id"
EXPERIMENT_ATTR = "creditgov.experiment_id"
#: How long the job waits for its workers after the budget is met before stopping them.
WORKER_EXIT_S = 120.0


@dataclass(frozen=True)
class JoinResult:
    """What a process that joined someone else's study did."""

    study_name: str
    run_id: str
    trials_here: int  # trials run by this machine's processes
    n_finished: int  # finished trials in the whole study
    workers: tuple[str, ...] = field(default_factory=tuple)  # exit status of each local worker


def check_workers(config: JobConfig, workers: int) -> None:
    """Several processes need a study they can all reach (bad input otherwise, exit 2)."""
    from training.tuning import TuneError

    tuning = config.tuning
    if workers < 1:
        raise TuneError(f"--workers {workers}: give 1 or more processes")
    if workers > 1 and (tuning.storage is None or tuning.study_name is None):
        raise TuneError(
            f"--workers {workers} needs tuning.storage (an RDB URL every worker reaches, "
            f"e.g. postgresql://host/creditgov_optuna) and tuning.study_name"
        )
    if workers > 1 and tuning.n_trials == 0:
        raise TuneError(f"--workers {workers} runs tuning trials, but tuning.n_trials is 0")


def _sampler_seed(config: JobConfig) -> int:
    """Workers other than the job draw their own random start-up trials."""
    return config.seed + os.getpid()


def _open(config: JobConfig, *, seed: int) -> optuna.Study:
    """Join the running study, as the job opens it but with this worker's own seed."""
    from creditgov.stages import open_job_study

    study = open_job_study(config, resume=False, join=True, seed=seed)
    assert study is not None  # check_workers refused n_trials == 0
    return study


def tune_job(
    config: JobConfig, study: optuna.Study, splits: Splits, hooks: list[TrialHook]
) -> TuneResult:
    """The config's search on `study` from freshly prepared splits (a worker's, a joiner's)."""
    from creditgov.stages import model_inputs, tune_splits

    return tune_splits(config, study, model_inputs(config, splits), hooks)


def _trial_logger(config: JobConfig, uri: str, run_id: str, experiment_id: str) -> TrialLogger:
    from registry.tracking import TrialLogger, use_tracking

    return TrialLogger(
        use_tracking(uri),
        experiment_id=experiment_id,
        parent_run_id=run_id,
        metric=config.tuning.metric,
    )


# ----------------------------------------------------------------------------- local workers


class _Pool:
    """Worker processes started by this one, and the config file they read."""

    def __init__(self, processes: list[subprocess.Popen[bytes]], config_file: Path) -> None:
        self.processes = processes
        self.config_file = config_file
        self.pids = tuple(p.pid for p in processes)

    def wait(self, timeout_s: float = WORKER_EXIT_S) -> tuple[str, ...]:
        deadline = time.monotonic() + timeout_s
        for process in self.processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait(timeout=30)
        self.config_file.unlink(missing_ok=True)
        return tuple(f"pid {p.pid}: exit {p.returncode}" for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        self.wait(timeout_s=30)


def _start(config: JobConfig, count: int, *, uri: str, run_id: str, experiment_id: str) -> _Pool:
    handle, name = tempfile.mkstemp(prefix="creditgov-worker-", suffix=".json")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(config.model_dump(mode="json"), out)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "creditgov.workers", name, uri, run_id, experiment_id],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]
    return _Pool(processes, Path(name))


@contextmanager
def team_workers(
    config: JobConfig,
    study: optuna.Study,
    workers: int,
    *,
    uri: str,
    run_id: str,
    experiment_id: str,
    show: Progress,
) -> Iterator[None]:
    """Around the job's own tuning: publish its run on the study, run N-1 more workers.

    On success it waits for the workers (they stop at the budget); if the job fails,
    they are stopped. A worker that died is reported, not fatal: its trial is retried.
    """
    if config.tuning.storage is not None:
        study.set_user_attr(RUN_ATTR, run_id)
        study.set_user_attr(EXPERIMENT_ATTR, experiment_id)
    if workers <= 1:
        yield
        return
    pool = _start(config, workers - 1, uri=uri, run_id=run_id, experiment_id=experiment_id)
    show.stage(f"Started {workers - 1} tuning worker(s) on study {config.tuning.study_name!r}")
    try:
        yield
    except BaseException:
        pool.stop()
        raise
    for status in pool.wait():
        if not status.endswith("exit 0"):
            show.stage(f"Tuning worker {status}; its unfinished trial was failed and retried")


def join_running_study(
    config: JobConfig, workers: int, *, resume: bool, show: Progress
) -> JoinResult | None:
    """If another job's study is running, add trials to it from here and return; else None."""
    import optuna

    from creditgov.stages import prepare
    from registry.tracking import resolve_tracking_uri
    from training.tuning import WORKER_ATTR, rdb_storage, study_counts

    tuning = config.tuning
    if resume or tuning.storage is None or tuning.study_name is None or tuning.n_trials == 0:
        return None
    backend = rdb_storage(tuning.storage)
    assert backend is not None
    summaries = {s.study_name: s for s in optuna.get_all_study_summaries(backend)}
    summary = summaries.get(tuning.study_name)
    if summary is None or RUN_ATTR not in summary.user_attrs:
        return None
    counts = study_counts(optuna.load_study(study_name=tuning.study_name, storage=backend))
    if counts["finished"] >= tuning.n_trials and not counts["running"]:
        return None  # a finished study: `run` says to --resume it or choose a new name
    run_id = str(summary.user_attrs[RUN_ATTR])
    experiment_id = str(summary.user_attrs[EXPERIMENT_ATTR])
    splits = prepare(config)
    uri = resolve_tracking_uri(config.tracking.uri)
    study = _open(config, seed=_sampler_seed(config))
    show.stage(f"Joining study {tuning.study_name!r} of run {run_id} with {workers} process(es)")
    pool = (
        _start(config, workers - 1, uri=uri, run_id=run_id, experiment_id=experiment_id)
        if workers > 1
        else None
    )
    try:
        result = tune_job(
            config, study, splits, [_trial_logger(config, uri, run_id, experiment_id)]
        )
    except BaseException:
        if pool is not None:
            pool.stop()
        raise
    statuses = pool.wait() if pool is not None else ()
    host = socket.gethostname()
    ours = {f"{host}:{pid}" for pid in (os.getpid(), *(pool.pids if pool is not None else ()))}
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    here = sum(
        1
        for t in study.get_trials(deepcopy=False, states=finished)
        if t.user_attrs.get(WORKER_ATTR) in ours
    )
    return JoinResult(
        study_name=tuning.study_name,
        run_id=run_id,
        trials_here=here,
        n_finished=result.n_finished,
        workers=statuses,
    )


# ----------------------------------------------------------------------------- worker process


def main(argv: list[str]) -> int:
    """`python -m creditgov.workers CONFIG_JSON TRACKING_URI RUN_ID EXPERIMENT_ID`."""
    from creditgov.stages import prepare

    config_file, uri, run_id, experiment_id = argv
    path = Path(config_file)
    config = validate_config(json.loads(path.read_text(encoding="utf-8")), path)
    splits = prepare(config)
    study = _open(config, seed=_sampler_seed(config))
    tune_job(config, study, splits, [_trial_logger(config, uri, run_id, experiment_id)])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
