"""The third model kind, `logistic`, through the whole lifecycle: train, report, approve, serve.

It was added as one file (`training/models/kinds/logistic.py`) and exports the served
model's `additive` form, so nothing else knew about it. Here it is trained with the
shipped credit config (`model.type=logistic`), pinned against a scikit-learn pipeline
doing the same thing by hand (median imputation, 1st/99th-percentile winsorising,
standardising, one-hot on the training levels, LogisticRegression), reviewed and
approved by someone other than its trainer, promoted, and served: by plain MLflow in a
process that cannot import creditgov, by `creditgov score`, and over REST.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LogisticRegression

from creditgov import stages
from creditgov.config import load_config
from creditgov.job import run
from datasets import make_credit, write_table
from tests.e2e.test_shipped_configs import LOAD_WITHOUT_CREDITGOV
from tests.support import creditgov_in_process as creditgov
from training.models.registry import get_kind

REPO = Path(__file__).resolve().parents[2]
REASONS = [f"reason_{i}" for i in range(1, 5)]


def _by_hand(
    train: pd.DataFrame, y: np.ndarray, rows: pd.DataFrame, categorical: tuple[str, ...], seed: int
) -> np.ndarray:
    """The same model written out with numpy and scikit-learn: probabilities of `rows`."""

    def design(frame: pd.DataFrame, fit: dict[str, tuple[float, ...]]) -> np.ndarray:
        columns = []
        for name in train.columns:
            if name in categorical:
                levels = fit[name]
                text = frame[name].astype(object).map(lambda v: None if v != v else str(v))
                columns.extend((text == level).to_numpy(dtype=float) for level in levels)
            else:
                med, lo, hi, mean, sd = fit[name]
                x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float)
                z = np.clip(np.where(np.isnan(x), med, x), lo, hi)
                columns.append((z - mean) / sd)
        return np.column_stack(columns)

    fit: dict[str, tuple[float, ...]] = {}
    for name in train.columns:
        if name in categorical:
            fit[name] = tuple(sorted({str(v) for v in train[name].dropna()}))
        else:
            x = pd.to_numeric(train[name], errors="coerce").to_numpy(dtype=float)
            present = x[~np.isnan(x)]
            med = float(np.median(present))
            lo, hi = np.quantile(present, [0.01, 0.99])
            z = np.clip(np.where(np.isnan(x), med, x), lo, hi)
            fit[name] = (med, float(lo), float(hi), float(z.mean()), float(z.std()) or 1.0)
    regression = LogisticRegression(max_iter=1000, random_state=seed).fit(design(train, fit), y)
    return regression.predict_proba(design(rows, fit))[:, 1]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_logistic_kind_trains_reports_is_approved_by_another_and_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = make_credit(6000, seed=44)
    write_table(data.frame, tmp_path / "credit.parquet")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = load_config(
        REPO / "configs" / "credit_scoring.yaml",
        [
            f"data.source={tmp_path / 'credit.parquet'}",
            f"tracking.uri={uri}",
            "model.type=logistic",
            "tuning.n_trials=0",
            "evaluation.shap_sample=500",
        ],
    )
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment(config.name, artifact_location=(tmp_path / "artifacts").as_uri())
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    result = run(config)
    assert result.model_version == "1"
    assert 0.7 < result.metrics["test"]["auc"] < 1.0

    # The fitted model is the hand-written pipeline's, to rounding.
    splits = stages.prepare(config)
    spec = stages.fit_final(config, get_kind("logistic").inputs(splits), {}).spec
    assert spec.model_type == "logistic"
    rows = splits.test.features
    expected_raw = _by_hand(
        splits.train.features, splits.train.target, rows, splits.train.categorical, config.seed
    )
    np.testing.assert_allclose(spec.raw_probability(rows), expected_raw, rtol=0, atol=1e-6)

    # Served by plain MLflow in a process that cannot import creditgov, pickle loading off,
    # on the applications as the file holds them (whole numbers stay integers).
    assert splits.test.ids is not None
    first = splits.test.ids.head(400).to_numpy()
    table = data.frame.set_index("application_id").loc[first].reset_index()
    table.to_parquet(tmp_path / "rows.parquet")
    subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_CREDITGOV, uri, "models:/credit-pd/1",
         str(tmp_path / "rows.parquet"), str(tmp_path / "served.parquet")],
        check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=180,
    )  # fmt: skip
    served = pd.read_parquet(tmp_path / "served.parquet")
    expected_p = spec.calibration.apply(expected_raw[:400])
    np.testing.assert_allclose(served["probability"], expected_p, rtol=0, atol=1e-6)
    declined = (served["decision"] == "decline").to_numpy()
    assert declined.any() and (~declined).any()
    assert (served.loc[declined, "reason_1"] != "").all()
    assert (served.loc[~declined, REASONS] == "").all().all()
    state = json.loads(next((tmp_path / "artifacts").rglob("state.json")).read_text())
    assert state["model_type"] == "logistic" and state["model"]["form"] == "additive"

    # The reviewer's files, then four eyes: alice trained it, bob approves.
    report = creditgov(
        "report",
        "credit-pd",
        "1",
        "--out",
        str(tmp_path / "report"),
        cwd=tmp_path,
        tracking_uri=uri,
    )
    assert report.returncode == 0, report.stderr
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert "logistic" in html
    override = (
        []
        if result.validation_status == "passed"
        else ["--override-gates", "--justification", "challenger for the benchmark"]
    )
    own = creditgov(
        "approve", "credit-pd", "1", "--comment", "mine", *override, cwd=tmp_path, tracking_uri=uri
    )
    assert own.returncode == 3, own.stderr
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    for args in (
        ("approve", "credit-pd", "1", "--comment", "read the report", *override),
        ("promote", "credit-pd", "1"),
        ("audit", "credit-pd", "--verify"),
    ):
        done = creditgov(*args, cwd=tmp_path, tracking_uri=uri)
        assert done.returncode == 0, (args, done.stderr)

    # `creditgov score` on the champion gives the same answers as plain MLflow.
    scored = creditgov(
        "score", "--model", "models:/credit-pd@champion", "--input", str(tmp_path / "rows.parquet"),
        "--output", str(tmp_path / "scored.parquet"), cwd=tmp_path, tracking_uri=uri,
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    out = pd.read_parquet(tmp_path / "scored.parquet")
    np.testing.assert_allclose(out["probability"], served["probability"], rtol=0, atol=1e-12)
    assert out["decision"].tolist() == served["decision"].tolist()

    # And over REST, `mlflow models serve` of the champion.
    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/credit-pd@champion",
         "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        body = json.dumps(
            {
                "dataframe_records": json.loads(
                    table.head(20).to_json(orient="records", date_format="iso")
                )
            }
        ).encode()
        deadline = time.monotonic() + 120
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/invocations", data=body,
                    headers={"Content-Type": "application/json"},
                )  # fmt: skip
                with urllib.request.urlopen(request, timeout=10) as answer:
                    predictions = pd.DataFrame(json.loads(answer.read())["predictions"])
                break
            except OSError:
                assert server.poll() is None, "mlflow models serve exited"
                assert time.monotonic() < deadline, "no answer from mlflow models serve"
                time.sleep(0.5)
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)
    np.testing.assert_allclose(predictions["probability"], served["probability"][:20], atol=1e-9)
    assert predictions["decision"].tolist() == served["decision"][:20].tolist()
