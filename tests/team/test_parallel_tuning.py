"""Parallel tuning on one PostgreSQL study, with real worker processes killed on purpose.

`creditgov train --workers 2` runs the job and one worker; SIGKILL of the worker in the
middle of a trial must leave that trial FAIL (its heartbeat stops) and queue its retry,
and the study must still end with exactly its budget of finished trials, each logged
once as a child run of the job's run. Killing everything and `--resume` must keep
every trial that had finished.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from mlflow.tracking import MlflowClient

from tests.team.conftest import Team
from training.tuning import WORKER_ATTR, storage_url

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "credit_scoring.yaml")
BUDGET = 6
KILL_BUDGET = 10
#: Short heartbeats so a killed worker's trial is declared dead in seconds, not 40 s.
FAST_HEARTBEAT = {"CREDITGOV_TUNING_HEARTBEAT_S": "1", "CREDITGOV_TUNING_GRACE_S": "3"}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _settings(team: Team, study: str, budget: int = BUDGET) -> list[str]:
    return team.config(
        f"tuning.n_trials={budget}",
        f"tuning.storage={team.stack.optuna_uri}",
        f"tuning.study_name={study}",
        "tuning.pruner=none",
    )


def _start(
    team: Team, study: str, out: Path, *extra: str, workers: int = 2, budget: int = BUDGET
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "creditgov", "train", CONFIG, *_settings(team, study, budget),
         *extra, "--workers", str(workers), "--json", str(out)],
        env={**team.env("alice"), **FAST_HEARTBEAT},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=team.folder,
    )  # fmt: skip


@functools.cache
def _storage(url: str) -> optuna.storages.RDBStorage:
    """One engine for all polling: a new one per look would exhaust PostgreSQL's connections."""
    return optuna.storages.RDBStorage(storage_url(url))


def _study(team: Team, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=_storage(team.stack.optuna_uri))


def _pid(trial: optuna.trial.FrozenTrial) -> int:
    return int(str(trial.user_attrs.get(WORKER_ATTR, ":0")).rsplit(":", 1)[1])


def _wait_for(
    team: Team, name: str, what: Any, job: subprocess.Popen[str], timeout_s: float = 240
) -> list[Any]:
    """Poll the study until `what(trials)` is true; returns the trials then."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if job.poll() is not None:
            pytest.fail(f"the job exited ({job.returncode}) early: {job.communicate()[1][-3000:]}")
        try:
            trials = _study(team, name).get_trials(deepcopy=False)
        except KeyError:  # not created yet
            trials = []
        if what(trials):
            return trials
        time.sleep(0.1)
    pytest.fail(f"study {name}: condition not reached within {timeout_s:.0f}s")


def _child_trial_numbers(client: MlflowClient, run_ids: list[str]) -> list[int]:
    experiment = client.get_run(run_ids[0]).info.experiment_id
    numbers = []
    for run_id in run_ids:
        children = client.search_runs(
            [experiment], f"tags.mlflow.parentRunId = '{run_id}'", max_results=1000
        )
        numbers += [int(r.data.tags["optuna.trial_number"]) for r in children]
    return sorted(numbers)


def _finish(process: subprocess.Popen[str], timeout_s: float = 400) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout_s)
    return process.returncode, out, err


def test_a_worker_killed_mid_trial_is_retried_and_each_trial_logged_once(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"kill-{secrets.token_hex(3)}"
    # A larger budget than the resume test's: the worker process needs a few seconds to
    # import and load the data, and the job must not finish every trial before it joins.
    job = _start(team, name, tmp_path / "train.json", budget=KILL_BUDGET)
    try:
        trials = _wait_for(
            team,
            name,
            lambda ts: any(
                t.state == optuna.trial.TrialState.RUNNING and _pid(t) not in (0, job.pid)
                for t in ts
            ),
            job,
        )
        victim = next(
            t for t in trials if t.state == optuna.trial.TrialState.RUNNING and _pid(t) != job.pid
        )
        os.kill(_pid(victim), signal.SIGKILL)
        before = {t.number: (t.state, t.values) for t in trials if t.state in FINISHED}
        code, out, err = _finish(job)
    finally:
        if job.poll() is None:
            job.kill()
    assert code == 0, err[-3000:]
    said = " ".join(out.split())
    assert (
        f"Tuning worker pid {_pid(victim)}: exit -9; its unfinished trial was failed and retried"
        in said
    )

    study = _study(team, name).get_trials(deepcopy=False)
    finished = sorted(t.number for t in study if t.state in FINISHED)
    assert len(finished) == KILL_BUDGET
    assert not [t.number for t in study if t.state.name in {"RUNNING", "WAITING"}]
    killed = next(t for t in study if t.number == victim.number)
    assert killed.state == optuna.trial.TrialState.FAIL
    retries = [
        t
        for t in study
        if optuna.storages.RetryHeartbeatStaleTrialCallback.retried_trial_number(t) == victim.number
    ]
    assert len(retries) == 1 and retries[0].state in FINISHED
    assert retries[0].params == killed.params
    assert {n: (t.state, t.values) for t in study for n in [t.number] if n in before} == before

    summary = json.loads((tmp_path / "train.json").read_text())
    assert summary["n_trials"] == KILL_BUDGET and summary["model_version"]
    # Each finished trial is one child run of the job's run; the killed attempt is none.
    client = team.client("alice", monkeypatch)
    assert _child_trial_numbers(client, [summary["run_id"]]) == finished


def test_resume_after_killing_everything_keeps_every_finished_trial(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"resume-{secrets.token_hex(3)}"
    job = _start(team, name, tmp_path / "first.json")
    try:
        trials = _wait_for(
            team,
            name,
            lambda ts: (
                sum(t.state in FINISHED for t in ts) >= 2
                and any(t.state == optuna.trial.TrialState.RUNNING for t in ts)
            ),
            job,
        )
        workers = {_pid(t) for t in trials} - {0, job.pid}
        for pid in (job.pid, *workers):
            os.kill(pid, signal.SIGKILL)
        job.wait(timeout=30)
    finally:
        if job.poll() is None:
            job.kill()
    kept = {
        t.number: (t.state, t.values)
        for t in _study(team, name).get_trials(deepcopy=False)
        if t.state in FINISHED
    }
    assert len(kept) >= 2 and not (tmp_path / "first.json").exists()

    first_run = str(_study(team, name).user_attrs["creditgov.run_id"])
    resumed = _start(team, name, tmp_path / "resumed.json", "--resume")
    code, _, err = _finish(resumed)
    assert code == 0, err[-3000:]
    study = _study(team, name).get_trials(deepcopy=False)
    assert {t.number: (t.state, t.values) for t in study if t.number in kept} == kept
    finished = sorted(t.number for t in study if t.state in FINISHED)
    assert len(finished) == BUDGET
    assert not [t.number for t in study if t.state.name in {"RUNNING", "WAITING"}]

    summary = json.loads((tmp_path / "resumed.json").read_text())
    assert summary["n_trials"] == BUDGET and summary["model_version"]
    assert _study(team, name).user_attrs["creditgov.run_id"] == summary["run_id"] != first_run
    # No trial is logged twice across the killed run and the resumed one, and every trial
    # finished after the resume is logged (one killed mid-logging may be missing before it).
    client = team.client("alice", monkeypatch)
    logged = _child_trial_numbers(client, [first_run, summary["run_id"]])
    assert len(logged) == len(set(logged)) and set(logged) <= set(finished)
    assert set(finished) - set(kept) <= set(logged)


def test_the_same_command_on_another_machine_joins_and_the_model_is_fitted_once(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name, budget = f"join-{secrets.token_hex(3)}", 10
    job = _start(team, name, tmp_path / "job.json", budget=budget)
    other: subprocess.Popen[str] | None = None
    try:
        _wait_for(team, name, lambda ts: bool(ts), job)  # the study exists, its run is published
        other = _start(team, name, tmp_path / "other.json", workers=1, budget=budget)
        code, out, err = _finish(other)
        assert code == 0, err[-3000:]
        job_code, _, job_err = _finish(job)
    finally:
        for process in (job, other):
            if process is not None and process.poll() is None:
                process.kill()
    assert job_code == 0, job_err[-3000:]
    joined = json.loads((tmp_path / "other.json").read_text())
    summary = json.loads((tmp_path / "job.json").read_text())
    assert joined["run_id"] == summary["run_id"] and joined["study_name"] == name
    assert joined["trials_here"] >= 1
    assert f"run {summary['run_id']} fits and registers the model" in " ".join(out.split())

    study = _study(team, name).get_trials(deepcopy=False)
    finished = sorted(t.number for t in study if t.state in FINISHED)
    assert len(finished) == budget == summary["n_trials"]
    assert other is not None
    ours = {t.number for t in study if _pid(t) == other.pid}
    assert len(ours & set(finished)) == joined["trials_here"]
    client = team.client("alice", monkeypatch)
    assert _child_trial_numbers(client, [summary["run_id"]]) == finished  # each logged once
    # Every version of the model, filtered here: which run registered each one.
    versions = client.search_model_versions(f"name = '{summary['model_name']}'")
    registered = {v.version: v.run_id for v in versions}
    mine = [n for n, run in registered.items() if run == summary["run_id"]]
    assert mine == [summary["model_version"]], registered  # fitted and registered once
