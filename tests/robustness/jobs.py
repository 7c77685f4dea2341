"""Helpers shared by the fault, personal-data and safe-model tests: jobs and CLI calls.

A job here is laid out the way a user lays it out — a data file and a YAML config in one
folder, a SQLite MLflow store beside them with its artifacts in the same folder — so the
tests go through the CLI's own path resolution, and a subprocess can reach the store.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import merge, write_frame

REPO = Path(__file__).resolve().parents[2]
#: Keeps the jobs small: the SHAP sample drives the evidence cost, not the model.
FAST = {"evaluation": {"shap_sample": 300}, "tuning": {"n_trials": 0}}


@dataclass(frozen=True)
class Job:
    folder: Path
    config: Path
    uri: str

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)


def make_job(
    folder: Path,
    frame: pd.DataFrame,
    *,
    config: str = "credit_scoring.yaml",
    updates: Mapping[str, Any] | None = None,
) -> Job:
    """Write `frame` and the shipped `config` (tuning off, small SHAP sample) into `folder`.

    The experiment is created up front with its artifacts in `folder`, not in ./mlruns of
    whichever directory a subprocess starts in.
    """
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".parquet"
    write_frame(frame, folder / "data" / f"table{suffix}")
    raw = yaml.safe_load((REPO / "configs" / config).read_text(encoding="utf-8"))
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    merge(raw, {"data": {"source": f"data/table{suffix}"}, "tracking": {"uri": uri}})
    merge(raw, FAST)
    merge(raw, updates or {})
    path = folder / "job.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    MlflowClient(tracking_uri=uri).create_experiment(
        raw["name"], artifact_location=(folder / "artifacts").as_uri()
    )
    return Job(folder, path, uri)


@contextmanager
def as_user(user: str) -> Iterator[None]:
    """$MLFLOW_TRACKING_USERNAME is `user` inside, as it was before afterwards."""
    before = os.environ.get("MLFLOW_TRACKING_USERNAME")
    os.environ["MLFLOW_TRACKING_USERNAME"] = user
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("MLFLOW_TRACKING_USERNAME", None)
        else:
            os.environ["MLFLOW_TRACKING_USERNAME"] = before


def cli_env(uri: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "COLUMNS": "300", **extra}
    for leaked in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(leaked, None)
    return env


def cli(
    uri: str, *args: str, user: str = "alice", timeout: float = 300, **env: str
) -> subprocess.CompletedProcess[str]:
    """`creditgov ARGS` in a fresh process against the store at `uri`, as `user`."""
    return subprocess.run(
        [sys.executable, "-m", "creditgov", *args],
        env=cli_env(uri, MLFLOW_TRACKING_USERNAME=user, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(uri: str, *args: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """`creditgov ARGS` started in the background, its output going to `log`."""
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-m", "creditgov", *args],
        env=cli_env(uri, MLFLOW_TRACKING_USERNAME="alice", **env),
        stdout=handle,
        stderr=subprocess.STDOUT,
    )


def completed_trials(storage: Path, study: str) -> int:
    """COMPLETE trials of `study` in an Optuna SQLite file, read without Optuna (0 if none yet)."""
    if not storage.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{storage}?mode=ro", uri=True, timeout=1) as db:
            row = db.execute(
                "SELECT count(*) FROM trials JOIN studies USING (study_id) "
                "WHERE studies.study_name = ? AND trials.state = 'COMPLETE'",
                (study,),
            ).fetchone()
    except sqlite3.Error:  # tables not created yet, or locked for a moment
        return 0
    return int(row[0])


def wait_for_trials(
    process: subprocess.Popen[bytes],
    storage: Path,
    study: str,
    count: int,
    *,
    log: Path,
    timeout: float = 240,
) -> None:
    """Poll until `count` trials are complete; fail with the process output if it ends first."""
    deadline = time.monotonic() + timeout
    while completed_trials(storage, study) < count:
        if process.poll() is not None:
            raise AssertionError(
                f"train ended early ({process.returncode}):\n{log.read_text()[-3000:]}"
            )
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(
                f"no {count} trials within {timeout:.0f}s:\n{log.read_text()[-3000:]}"
            )
        time.sleep(0.2)


def artifact_files(client: MlflowClient, run_id: str, path: str = "") -> list[str]:
    """Every artifact path of a run, walked with the client (not with the scanner's code)."""
    out: list[str] = []
    for item in client.list_artifacts(run_id, path):
        out.extend(artifact_files(client, run_id, item.path) if item.is_dir else [item.path])
    return out


def runs_of(client: MlflowClient, *, parents_only: bool = True) -> list[Any]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments)
    if parents_only:
        runs = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    return runs


def versions_of(client: MlflowClient, names: Sequence[str] | None = None) -> list[Any]:
    found = []
    for model in client.search_registered_models():
        if names is None or model.name in names:
            found.extend(client.search_model_versions(f"name='{model.name}'"))
    return found
