"""A tracking store that cannot be had: one clear line after bounded retries, not a hang."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import CreditJob


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens once the probe is closed


def _creditgov(*args: str, uri: str | None) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(COLUMNS="200", PYTHONWARNINGS="ignore")
    if uri is not None:
        env["MLFLOW_TRACKING_URI"] = uri
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "creditgov", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done, time.monotonic() - started


def test_train_against_a_dead_server_says_so_once_and_leaves_nothing(
    credit_job: CreditJob, tmp_path: Path
) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    config = credit_job(config_updates={"tracking": {"uri": uri}})
    done, seconds = _creditgov("train", str(config), uri=None)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0] == (
        f"error: tracking server {uri} (tracking.uri) is unreachable after 3 retries "
        f"(Connection refused); start it (`make team-up`) or fix tracking.uri"
    )
    # 3 retries 1 s, 2 s, 4 s apart (+ jitter): seconds, not MLflow's default of minutes.
    assert seconds < 45
    assert not (tmp_path / "mlruns").exists() and not (config.parent / "mlflow.db").exists()


def test_a_governance_command_against_a_dead_server_is_one_line_too() -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    done, _ = _creditgov("approve", "credit-pd", "1", "--comment", "ok", uri=uri)
    assert done.returncode == 2, done.stderr
    assert f"tracking server {uri} ($MLFLOW_TRACKING_URI) is unreachable" in done.stderr


def test_a_locked_sqlite_store_is_one_line_after_bounded_waiting(
    credit_job: CreditJob, tmp_path: Path
) -> None:
    config = credit_job()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    made, _ = _creditgov("models", "list", uri=uri)  # creates the store's tables
    assert made.returncode == 0, made.stderr
    holder = sqlite3.connect(tmp_path / "mlflow.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process in the middle of a write
    try:
        done, seconds = _creditgov("train", str(config), uri=None)
    finally:
        holder.rollback()
        holder.close()
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(
        f"error: SQLite tracking store {uri} stayed locked by another process"
    )
    assert seconds < 60


def test_a_dead_server_leaves_no_empty_study_behind(credit_job: CreditJob, tmp_path: Path) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    storage = tmp_path / "optuna.db"
    tuning = {"n_trials": 2, "storage": f"sqlite:///{storage}", "study_name": "credit-s1"}
    config = credit_job(config_updates={"tracking": {"uri": uri}, "tuning": tuning})
    done, _ = _creditgov("train", str(config), uri=None)
    assert done.returncode == 2, done.stderr
    # Nothing to --resume next time: the study was never created.
    assert not storage.exists()
