"""No model artifact is a pickle, and every shipped config's model loads with pickle off.

Each shipped config is trained once (one tuning trial, small data). Every file of every
registered version is then read back: all must be UTF-8 text — a pickle in any protocol,
a joblib or cloudpickle file, or any compressed blob is binary and fails — none may carry
a pickle-ish name, and the MLmodel must use the models-from-code loader rather than a
pickled python_model. Finally a fresh interpreter that refuses to import this project
loads each version with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false and predicts.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml

from creditgov.config import load_config
from creditgov.job import JobResult, run
from datasets import make_credit, make_fraud
from registry.tracking import use_tracking
from tests.robustness.jobs import Job, artifact_files, make_job

SHIPPED = {
    "credit_scoring.yaml": ("credit", {"approve", "decline"}),
    "credit_scorecard.yaml": ("credit", {"approve", "decline"}),
    "fraud_detection.yaml": ("fraud", {"allow", "review"}),
}
PICKLE_NAMES = (".pkl", ".pickle", ".joblib", ".cloudpickle", ".dill")

LOAD_WITHOUT_PICKLE = r"""
import importlib.abc, json, os, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"creditgov", "training", "evaluation", "registry", "tests"}:
            raise ImportError("a served model must not import " + name)
sys.meta_path.insert(0, Refuse())
assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
import mlflow, pandas as pd
out = {}
for uri, model_uri, rows in json.loads(sys.argv[1]):
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    scored = mlflow.pyfunc.load_model(model_uri).predict(pd.read_parquet(rows))
    out[model_uri] = {"rows": len(scored), "columns": list(scored.columns),
                      "decisions": sorted(set(scored["decision"]))}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Job, JobResult, Path]]:
    """Each shipped config trained into its own store, with 300 rows to score."""
    tables = {
        "credit": make_credit(4000, seed=31).frame,
        "fraud": make_fraud(40_000, seed=31).frame,
    }
    out = {}
    for name, (kind, _) in SHIPPED.items():
        folder = tmp_path_factory.mktemp(name.removesuffix(".yaml"))
        raw = yaml.safe_load((Path(__file__).parents[2] / "configs" / name).read_text())
        job = make_job(folder, tables[kind], config=name, updates={"tuning": {"n_trials": 1}})
        result = run(load_config(job.config))
        rows = folder / "rows.parquet"
        tables[kind].drop(columns=[raw["data"]["target"]]).tail(300).to_parquet(rows)
        out[name] = (job, result, rows)
    return out


def _is_pickle(data: bytes) -> bool:
    """True if the bytes run as a pickle program (any protocol, 0's ASCII form included).

    `pickletools.dis` checks the stack effect of every opcode, so text that merely starts
    with opcode letters fails within a few bytes; nothing is executed.
    """
    try:
        pickletools.dis(data, out=io.StringIO())
    except Exception:
        return False
    return True


def _is_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data


def test_the_pickle_check_recognises_pickles_of_every_protocol() -> None:
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        data = pickle.dumps({"threshold": 0.5, "levels": ["a", "b"]}, protocol=protocol)
        assert _is_pickle(data), protocol
    assert _is_text(pickle.dumps({"a": 1}, protocol=0))  # so text alone would not do
    assert not _is_pickle(b'{"threshold": 0.5}') and not _is_pickle(b"artifact_path: x.y\n")


@pytest.mark.parametrize("name", list(SHIPPED))
def test_no_registered_artifact_is_a_pickle(shipped, name: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    job, result, _ = shipped[name]
    client = use_tracking(job.uri)  # models:/ URIs resolve against the global registry URI
    versions = client.search_model_versions(f"name='{result.model_name}'")
    assert [str(v.version) for v in versions] == [result.model_version]
    local = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{result.model_name}/{result.model_version}",
            dst_path=str(tmp_path / "model"),
        )
    )
    files = sorted(p for p in local.rglob("*") if p.is_file())
    names = {p.relative_to(local).as_posix() for p in files}
    assert {"MLmodel", "scoring_model.py", "artifacts/state.json"} <= names
    assert ("artifacts/model.txt" in names) == (name != "credit_scorecard.yaml")  # LightGBM text
    for path in files:
        data = path.read_bytes()
        assert not path.name.lower().endswith(PICKLE_NAMES), path
        assert not (data[:1] == b"\x80" and data[1:2] in {b"\x02", b"\x03", b"\x04", b"\x05"}), path
        assert not _is_pickle(data), path
        assert _is_text(data), f"{path.name} is binary"
    mlmodel: dict[str, Any] = yaml.safe_load((local / "MLmodel").read_text())
    assert list(mlmodel["flavors"]) == ["python_function"]
    pyfunc = mlmodel["flavors"]["python_function"]
    assert pyfunc["loader_module"] == "mlflow.pyfunc.loaders.code_model"
    assert "python_model" not in pyfunc  # the cloudpickled-class form
    assert Path(pyfunc["model_code_path"]).name == "scoring_model.py"
    assert not pyfunc.get("code")
    # The run's own artifacts (config, reports, tables) are text as well.
    for artifact in artifact_files(client, result.run_id):
        assert not artifact.lower().endswith(PICKLE_NAMES), artifact


def test_every_shipped_model_loads_and_predicts_with_pickle_loading_off(shipped) -> None:  # type: ignore[no-untyped-def]
    jobs = [
        (job.uri, f"models:/{result.model_name}/{result.model_version}", str(rows))
        for job, result, rows in shipped.values()
    ]
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_PICKLE, json.dumps(jobs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=next(iter(shipped.values()))[0].folder,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answers = json.loads(done.stdout.strip().splitlines()[-1])
    for (name, (_, labels)), (_, model_uri, _) in zip(SHIPPED.items(), jobs, strict=True):
        answer = answers[model_uri]
        assert answer["rows"] == 300, name
        assert answer["columns"][:3] == ["probability", "score", "decision"], name
        assert set(answer["decisions"]) <= labels and answer["decisions"], name
