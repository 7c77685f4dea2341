"""Faults with real processes: SIGKILL and --resume, SIGTERM, an error mid-job, and model
files edited or deleted after registration.

The killed and terminated jobs are `python -m creditgov train` subprocesses tuning into
an Optuna SQLite study; the test watches the study file and strikes once trials have
finished. Heartbeats are shortened through the operator's environment variables so the
killed process's last trial is declared dead in seconds, not the default 40.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from creditgov.config import SearchParam, load_config
from creditgov.job import prepare, run
from datasets import make_credit
from evaluation.metrics import tuning_objective
from registry.governance import GovernanceError, approve, read_chain
from registry.stale_runs import end_stale_runs
from tests.robustness.jobs import (
    Job,
    as_user,
    cli,
    make_job,
    runs_of,
    start_cli,
    versions_of,
    wait_for_trials,
)
from tests.support import error_lines
from training.tuning import open_study, tune

NAME = "credit-pd"
STUDY = "credit-resume"
BUDGET = 4
#: Heartbeat every second, a silent trial is dead after three.
FAST_HEARTBEAT = {"CREDITGOV_TUNING_HEARTBEAT_S": "1", "CREDITGOV_TUNING_GRACE_S": "3"}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_credit(4000, seed=23).frame


def tuned_job(folder: Path, frame: pd.DataFrame) -> tuple[Job, Path]:
    storage = folder / "optuna.db"
    job = make_job(
        folder,
        frame,
        updates={
            "tuning": {
                "n_trials": BUDGET,
                "pruner": "none",
                "storage": f"sqlite:///{storage}",
                "study_name": STUDY,
            }
        },
    )
    return job, storage


def finished_trials(storage: Path) -> dict[int, float]:
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{storage}")
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    # The shipped config's study is multi-objective (AUC, ratio): the first value is AUC.
    return {t.number: float(t.values[0]) for t in done if t.values}


# ----------------------------------------------------------------------------- signals


def test_sigkill_during_tuning_then_resume_keeps_trials_and_registers_once(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    job, storage = tuned_job(tmp_path, frame)
    log = tmp_path / "killed.log"
    process = start_cli(job.uri, "train", str(job.config), log=log, **FAST_HEARTBEAT)
    wait_for_trials(process, storage, STUDY, 2, log=log)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL

    before = finished_trials(storage)
    assert 2 <= len(before) < BUDGET
    client = job.client()
    [orphan] = runs_of(client)
    assert orphan.info.status == "RUNNING"  # nobody could end it
    assert versions_of(client) == []

    out, log = tmp_path / "resumed.json", tmp_path / "resumed.log"
    resumed = start_cli(
        job.uri, "train", str(job.config), "--resume", "--json", str(out), log=log,
        **FAST_HEARTBEAT,
    )  # fmt: skip
    try:
        code = resumed.wait(timeout=300)
    finally:
        resumed.kill()
    assert code == 0, log.read_text()[-3000:]
    summary = json.loads(out.read_text())

    after = finished_trials(storage)
    assert {n: after[n] for n in before} == before  # kept, numbers and values unchanged
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{storage}")
    finished = study.get_trials(
        deepcopy=False,
        states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED),
    )
    assert len(finished) == BUDGET == summary["n_trials"]
    # The shipped config searches for a less discriminatory alternative: the fitted params
    # are the chosen trial's ("trial N", or "trial N without <proxy>").
    chosen = int(summary["alternatives"]["chosen"]["label"].split()[1])
    assert summary["best_params"] == study.trials[chosen].params

    assert [(v.name, str(v.version)) for v in versions_of(client)] == [(NAME, "1")]
    runs = {r.info.run_id: r for r in runs_of(client)}
    assert set(runs) == {orphan.info.run_id, summary["run_id"]}
    assert runs[summary["run_id"]].info.status == "FINISHED"
    killed = runs[orphan.info.run_id]
    assert killed.info.status == "KILLED"
    ended_by = killed.data.tags["creditgov.ended_by"]
    assert summary["run_id"] in ended_by and str(process.pid) in ended_by


def test_a_trial_left_running_before_its_first_heartbeat_does_not_stall_a_resume(
    tmp_path: Path, frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker killed between creating a trial and its first heartbeat leaves a RUNNING
    trial Optuna never ages; the resumed study must fail it and still reach its budget."""
    for name, value in FAST_HEARTBEAT.items():
        monkeypatch.setenv(name, value)
    job, storage = tuned_job(tmp_path, frame)
    config = load_config(job.config)
    url = f"sqlite:///{storage}"
    first = open_study(
        storage=url, study_name=STUDY, direction="maximize", seed=1, pruner="none", resume=False
    )
    orphan = first.ask()  # RUNNING, no heartbeat: what the dead worker left
    study = open_study(
        storage=url, study_name=STUDY, direction="maximize", seed=1, pruner="none", resume=True
    )
    result = tune(
        prepare(config),
        model_type="lightgbm",
        base_params=config.model.params,
        monotone=config.model.monotone,
        search_space={"num_leaves": SearchParam(type="int", low=8, high=32)},
        objective=tuning_objective("auc"),
        study=study,
        n_trials=2,
        timeout_s=90,  # the budget is met well before; stalled, it would give up here
    )
    assert result.n_finished == 2
    states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
    assert states[orphan.number] == optuna.trial.TrialState.FAIL
    assert list(states.values()).count(optuna.trial.TrialState.COMPLETE) == 2


def test_resume_ends_only_runs_whose_process_is_gone_on_this_host(tmp_path: Path) -> None:
    """Dead process here: KILLED. Live process here, or any process elsewhere: left alone."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("stale", artifact_location=(tmp_path / "a").as_uri())
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = socket.gethostname()
    try:
        runs = {}
        for label, host, pid, study in (
            ("dead", here, dead.pid, STUDY),
            ("alive", here, alive.pid, STUDY),
            ("elsewhere", "another-host", dead.pid, STUDY),
            ("other study", here, dead.pid, "another-study"),
        ):
            made = client.create_run(
                experiment, tags={"creditgov.host": host, "creditgov.pid": str(pid)}
            )
            client.log_param(made.info.run_id, "tuning.study_name", study)
            client.log_param(made.info.run_id, "tuning.storage", "sqlite:///optuna.db")
            runs[label] = made.info.run_id
        current = client.create_run(experiment).info.run_id
        result = end_stale_runs(
            client, experiment, storage="sqlite:///optuna.db", study_name=STUDY,
            current_run_id=current,
        )  # fmt: skip
    finally:
        alive.kill()
        alive.wait()
    assert result.killed == (runs["dead"],)
    assert result.elsewhere == (runs["elsewhere"],)
    status = {label: client.get_run(run_id).info.status for label, run_id in runs.items()}
    assert status == {
        "dead": "KILLED", "alive": "RUNNING", "elsewhere": "RUNNING", "other study": "RUNNING",
    }  # fmt: skip
    ended_by = client.get_run(runs["dead"]).data.tags["creditgov.ended_by"]
    assert current in ended_by and str(dead.pid) in ended_by


def test_sigterm_during_tuning_ends_the_run_killed_and_registers_nothing(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    job, storage = tuned_job(tmp_path, frame)
    log = tmp_path / "terminated.log"
    process = start_cli(job.uri, "train", str(job.config), log=log)
    wait_for_trials(process, storage, STUDY, 1, log=log)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 1
    output = log.read_text()
    assert (
        "error: interrupted; the MLflow run was marked KILLED and nothing was registered" in output
    ), output[-2000:]
    client = job.client()
    assert [r.info.status for r in runs_of(client)] == ["KILLED"]
    assert versions_of(client) == []


_STRAY_THREAD = """
import sys, threading, time, typer
from creditgov.cli import base as cli
if sys.argv[1] == "stray":  # a non-daemon thread nobody stops, as a heartbeat thread can be
    threading.Thread(target=time.sleep, args=(600,)).start()
cli.STRAY_THREAD_GRACE_S = 0.5
stop = cli.interrupted("interrupted; the MLflow run was marked KILLED")
print("returned", stop.exit_code, flush=True)
raise SystemExit(stop.exit_code)
"""


@pytest.mark.parametrize("threads", ["stray", "none"])
def test_an_interrupted_command_exits_even_if_a_thread_is_left_running(threads: str) -> None:
    """SIGTERM landing inside Optuna's heartbeat context manager can leave its thread
    beating forever; the interrupted command must still exit (exit 1, its one line)
    instead of waiting for that thread, and exits normally when there is none."""
    done = subprocess.run(
        [sys.executable, "-c", _STRAY_THREAD, threads],
        capture_output=True,
        text=True,
        timeout=60,  # without the hard exit the stray thread would hold it for 600 s
    )
    assert done.returncode == 1, done.stderr
    assert error_lines(done.stderr) == ["error: interrupted; the MLflow run was marked KILLED"]
    assert ("returned 1" in done.stdout) is (threads == "none")  # the hard exit returns nothing


def test_an_error_inside_the_run_ends_it_failed_and_registers_nothing(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """The artifact store fails once the run has started: a file sits where the
    experiment's artifact folder must be made, so the first artifact cannot be written."""
    job = make_job(tmp_path, frame)
    (tmp_path / "artifacts").write_text("not a folder", encoding="utf-8")

    with pytest.raises(OSError):
        run(load_config(job.config))
    client = job.client()
    [failed] = runs_of(client)
    assert failed.info.status == "FAILED"
    assert failed.data.params["model.type"] == "lightgbm"  # it had started, then failed
    assert versions_of(client) == []


# ----------------------------------------------------------------------------- integrity


@pytest.fixture(scope="module")
def approved(tmp_path_factory: pytest.TempPathFactory, frame: pd.DataFrame) -> Iterator[Any]:
    """Version 1, trained by alice with gates she passes, approved by bob."""
    folder = tmp_path_factory.mktemp("integrity")
    job = make_job(
        folder, frame, updates={"gates": [{"metric": "auc", "split": "test", "min": 0.6}]}
    )
    with as_user("alice"):
        result = run(load_config(job.config))
    client = job.client()
    approve(client, NAME, result.model_version, actor="bob", comment="report read")
    source = client.get_model_version(NAME, result.model_version).source
    files = Path(
        client.get_logged_model(source.split("/")[-1]).artifact_location.removeprefix("file://")
    )
    rows = frame.drop(columns=["default_12m"]).head(200)
    rows.to_parquet(folder / "rows.parquet")
    yield job, files / "artifacts", folder / "rows.parquet"


@pytest.fixture
def tampered(approved, request: pytest.FixtureRequest) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Edit or delete one model file for the test, then put it back."""
    job, artifacts, rows = approved
    how, name = request.param
    target = artifacts / name
    backup = job.folder / f"{name}.orig"  # outside the model's folder
    shutil.copyfile(target, backup)
    if how == "edited":
        document = json.loads(target.read_text())
        document["decision"]["threshold"] = 0.99  # would approve almost everyone
        target.write_text(json.dumps(document))
    else:
        target.unlink()
    try:
        yield job, rows, f"model/artifacts/{name}", how
    finally:
        shutil.move(backup, target)


CASES = [("edited", "state.json"), ("deleted", "model.txt")]


@pytest.mark.parametrize("tampered", CASES, indirect=True, ids=[c[0] for c in CASES])
def test_promote_refuses_a_model_file_changed_after_registration(tampered) -> None:  # type: ignore[no-untyped-def]
    job, _, file, how = tampered
    aliases = dict(job.client().get_registered_model(NAME).aliases or {})
    done = cli(job.uri, "promote", NAME, "1", user="carol")
    assert done.returncode == 3, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    named = file if how == "edited" else f"{file} deleted"
    assert f"evidence changed since approval ({named})" in line, line
    assert dict(job.client().get_registered_model(NAME).aliases or {}) == aliases
    refused = [e for e in read_chain(job.client(), NAME) if e.event == "promotion_refused"]
    assert refused and refused[-1].details["reason"] == "evidence changed"


@pytest.mark.parametrize("tampered", CASES, indirect=True, ids=[c[0] for c in CASES])
def test_score_refuses_a_model_file_changed_after_registration(tampered, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job, rows, file, how = tampered
    out = tmp_path / "scores.csv"
    done = cli(
        job.uri, "score", "--model", f"models:/{NAME}/1", "--input", str(rows), "--output", str(out)
    )
    assert done.returncode == 3, done.stderr
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    assert f"model files changed since registration ({file} {how})" in line, line
    assert not out.exists()


@pytest.mark.parametrize("tampered", CASES, indirect=True, ids=[c[0] for c in CASES])
def test_approval_refuses_a_model_file_changed_after_registration(tampered) -> None:  # type: ignore[no-untyped-def]
    job, _, file, how = tampered
    with pytest.raises(
        GovernanceError, match=re.escape(f"model files changed since registration ({file} {how})")
    ):
        approve(job.client(), NAME, "1", actor="dave", comment="second review")


def test_the_untouched_version_scores_and_promotes(approved, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The refusals above come from the change, not from the version: undone, both work."""
    job, _, rows = approved
    out = tmp_path / "scores.csv"
    scored = cli(
        job.uri, "score", "--model", f"models:/{NAME}/1", "--input", str(rows), "--output", str(out)
    )
    assert scored.returncode == 0, scored.stderr
    assert len(pd.read_csv(out)) == 200
    promoted = cli(job.uri, "promote", NAME, "1", user="carol")
    assert promoted.returncode == 0, promoted.stderr
    assert str(job.client().get_model_version_by_alias(NAME, "champion").version) == "1"
