"""`mlflow run` of the MLproject against the authenticated team server trains and registers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import CREDIT_CONFIG, merge
from tests.team.conftest import Team

REPO = Path(__file__).resolve().parents[2]
MODEL = "credit-mlproject"


def test_mlflow_run_main_trains_and_registers_a_version_as_the_authenticated_user(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = yaml.safe_load(CREDIT_CONFIG.read_text(encoding="utf-8"))
    merge(
        config,
        {
            "data": {"source": str(team.data)},
            "model": {"params": {"num_threads": 1}},
            "tuning": {"n_trials": 0},
            "evaluation": {"shap_sample": 500},
            "registry": {"model_name": MODEL},
        },
    )
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    mlflow = Path(sys.executable).with_name("mlflow")
    env = team.env("alice")
    env["PATH"] = f"{mlflow.parent}:{env.get('PATH', '')}"  # `python` of the entry point
    done = subprocess.run(
        [str(mlflow), "run", str(REPO), "-e", "main", "-P", f"config={path}",
         "--env-manager", "local", "--experiment-name", "mlproject"],
        env=env, capture_output=True, text=True, timeout=400, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    client = team.client("alice", monkeypatch)
    versions = client.search_model_versions(f"name = '{MODEL}'")
    assert len(versions) == 1
    version = versions[0]
    assert version.tags["trainer"] == "alice"
    run = client.get_run(str(version.run_id))
    # The job ran inside the run `mlflow run` created for the entry point.
    assert run.data.tags.get("mlflow.project.entryPoint") == "main"
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == "mlproject"
