"""`--workers` without a study every process can reach is bad input (exit 2), before any run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import CreditJob


def _train(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "creditgov", "train", str(config), *args],
        capture_output=True, text=True, timeout=120, env={"COLUMNS": "200", "PATH": ""},
    )  # fmt: skip


def test_workers_need_shared_storage_and_a_study_name(
    credit_job: CreditJob, tmp_path: Path
) -> None:
    config = credit_job(config_updates={"tuning": {"n_trials": 4}})
    done = _train(config, "--workers", "2")
    assert done.returncode == 2, done.stderr
    assert " ".join(done.stderr.split()) == (
        "error: --workers 2 needs tuning.storage (an RDB URL every worker reaches, e.g. "
        "postgresql://host/creditgov_optuna) and tuning.study_name"
    )
    assert not (tmp_path / "mlflow.db").exists()  # no run was started


def test_zero_workers_is_refused(credit_job: CreditJob) -> None:
    done = _train(credit_job(), "--workers", "0")
    assert done.returncode == 2, done.stderr
    assert "--workers 0: give 1 or more processes" in done.stderr
