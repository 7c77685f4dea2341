"""The three shipped configs, end to end: real MLflow, LightGBM, Optuna and optbinning."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from creditgov.job import prepare, run
from evaluation.explain import contributions
from evaluation.reasons import ReasonCatalogue, reason_frame
from tests.reason_checks import assert_only_adverse_reasons, codes_to_features
from tests.scorecard_reference import assert_meets_optbinning
from tests.support import creditgov
from training.models.calibration import Calibration
from training.models.encoding import FeatureSpec, encode
from training.models.spec import spec_from_state

LOAD_WITHOUT_CREDITGOV = r"""
import importlib.abc, os, sys
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"creditgov", "datasets", "training", "evaluation", "registry", "server"}:
            raise ImportError("the served model must not import " + name)
sys.meta_path.insert(0, Refuse())
os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
import mlflow, pandas as pd
mlflow.set_tracking_uri(sys.argv[1])
model = mlflow.pyfunc.load_model(sys.argv[2])
rows = pd.read_parquet(sys.argv[3])
model.predict(rows).to_parquet(sys.argv[4])
"""


def _artifact_files(client: MlflowClient, run_id: str, path: str = "") -> list[str]:
    out = []
    for item in client.list_artifacts(run_id, path):
        out.extend(_artifact_files(client, run_id, item.path) if item.is_dir else [item.path])
    return out


def test_credit_lightgbm_job_trains_tunes_logs_and_registers(
    shipped_config, tmp_path: Path, data_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    config = shipped_config("credit_scoring.yaml", "tuning.n_trials=3")
    result = run(config)
    client = MlflowClient(tracking_uri=config.tracking.uri, registry_uri=config.tracking.uri)

    assert (result.model_name, result.model_version) == ("credit-pd", "1")
    parent = client.get_run(result.run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["split.method"] == "out_of_time"
    assert parent.data.params["lib.lightgbm"] == __import__("lightgbm").__version__
    assert parent.data.tags["creditgov.trainer"]
    assert parent.data.metrics["split_test_rows"] == result.splits[2].rows
    assert 0.7 < parent.data.metrics["test_auc"] == pytest.approx(result.metrics["test"]["auc"])
    assert parent.data.metrics["valid_approval_rate"] == pytest.approx(0.85, abs=0.04)
    inputs = parent.inputs.dataset_inputs
    assert (
        len(inputs) == 1 and inputs[0].dataset.digest == parent.data.tags["creditgov.data_digest"]
    )

    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{result.run_id}'"
    )
    assert len(children) == 3 == result.n_trials
    assert all("num_leaves" in c.data.params for c in children)

    version = client.get_model_version("credit-pd", "1")
    for key in ("run_id", "config_sha256", "data_digest", "git_commit", "trainer"):
        assert version.tags[key], key
    assert version.tags["validation_status"] == result.validation_status
    assert result.validation_status == (
        "passed" if all(g["passed"] for g in result.gates) else "failed"
    )
    assert [g["metric"] for g in result.gates] == ["auc", "ks", "psi_max", "selection_rate_ratio"]
    assert json.loads(version.tags["gates"]) == [dict(g) for g in result.gates]
    assert version.tags["report.html"] == f"runs:/{result.run_id}/reports/report.html"
    assert "report.html" in version.description
    assert version.tags["run_id"] == result.run_id

    files = _artifact_files(client, result.run_id)
    assert "config/resolved_config.json" in files and "data/splits.json" in files
    assert {"reports/report.html", "reports/evidence.json", "reports/model_card.md"} <= set(files)
    summary = result.summary()
    assert set(summary["reports"]) == {"html", "json", "model_card"}
    json.dumps(summary, allow_nan=False)  # the --json document is strict JSON
    local = mlflow.artifacts.download_artifacts(
        "models:/credit-pd/1", dst_path=str(tmp_path / "m"), tracking_uri=config.tracking.uri
    )
    model_files = [p.relative_to(local).as_posix() for p in Path(local).rglob("*") if p.is_file()]
    assert not [
        f for f in model_files if f.endswith((".pkl", ".pickle", ".joblib", ".cloudpickle"))
    ], model_files
    assert any(f.endswith("model.txt") for f in model_files) and any(
        f.endswith("state.json") for f in model_files
    )

    # A fresh process that cannot import creditgov loads the registered model and scores.
    rows = pd.read_parquet(data_dir / "credit.parquet").tail(300)
    rows.to_parquet(tmp_path / "rows.parquet")
    subprocess.run(
        [
            sys.executable,
            "-c",
            LOAD_WITHOUT_CREDITGOV,
            config.tracking.uri,
            "models:/credit-pd/1",
            str(tmp_path / "rows.parquet"),
            str(tmp_path / "out.parquet"),
        ],
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=180,
    )
    served = pd.read_parquet(tmp_path / "out.parquet")
    assert list(served.columns) == [
        "probability",
        "score",
        "decision",
        *(f"reason_{i}" for i in range(1, 5)),
        *(f"reason_code_{i}" for i in range(1, 5)),
    ]

    # The same numbers from the training-side code path (a separate implementation).
    state = json.loads(next(Path(local).rglob("state.json")).read_text())
    text = next(Path(local).rglob("model.txt")).read_text()
    specs = [
        FeatureSpec(f["name"], f["kind"], tuple(f.get("levels", ())), f["dtype"])
        for f in state["features"]
    ]
    cal = state["calibration"]
    # calibration: auto — sigmoid on this small demo's validation split (< 1,000 bads).
    assert cal["method"] == "sigmoid"
    calibration = Calibration("sigmoid", slope=cal["slope"], intercept=cal["intercept"])
    expected = calibration.apply(lgb.Booster(model_str=text).predict(encode(rows, specs)))
    np.testing.assert_allclose(served["probability"].to_numpy(), expected, rtol=0, atol=1e-12)
    threshold = state["decision"]["threshold"]
    assert (served["decision"] == np.where(expected >= threshold, "decline", "approve")).all()
    assert served["score"].nunique() > 10
    order = np.argsort(expected)
    assert np.all(np.diff(served["score"].to_numpy()[order]) <= 0.01), "higher PD, lower score"

    # Reason codes: only adverse factors, checked against bare LightGBM TreeSHAP ...
    declined = (served["decision"] == "decline").to_numpy()
    assert declined.any() and (~declined).any()
    bare = lgb.Booster(model_str=text).predict(encode(rows, specs), pred_contrib=True)[:, :-1]
    names = [f["name"] for f in state["features"]]
    checked = assert_only_adverse_reasons(
        served, bare, names, codes_to_features(state), declined_label="decline", k=4
    )
    assert checked == int(declined.sum())
    # ... and the served file's selection and wording equal evaluation.reasons' on the same rows.
    spec = spec_from_state(state, {"booster": text})
    rows = rows.reset_index(drop=True)
    contrib = contributions(spec, rows)
    catalogue = ReasonCatalogue.from_state(
        state["reasons"], {f.name: f.levels for f in specs if f.kind == "categorical"}
    ).ordered(contrib.features)
    expected_reasons = reason_frame(
        contrib,
        catalogue.encoded(spec, rows),
        declined=declined,
        catalogue=catalogue,
    )
    pd.testing.assert_frame_equal(
        served[list(expected_reasons.columns)].reset_index(drop=True),
        expected_reasons,
        check_dtype=False,
    )
    assert not {"sex", "age"} & set(state["reasons"]["catalogue"])


def test_same_config_and_data_give_the_same_model(shipped_config, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = run(shipped_config("credit_scoring.yaml", "tuning.n_trials=2"))
    second = run(shipped_config("credit_scoring.yaml", "tuning.n_trials=2"))
    assert second.model_version == "2"
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    texts = [
        Path(
            mlflow.artifacts.download_artifacts(
                f"models:/credit-pd/{v}", dst_path=str(tmp_path / v), tracking_uri=uri
            )
        )
        for v in ("1", "2")
    ]
    model_a = next(texts[0].rglob("model.txt")).read_text()
    model_b = next(texts[1].rglob("model.txt")).read_text()
    assert model_a == model_b
    assert (
        next(texts[0].rglob("state.json")).read_text()
        == next(texts[1].rglob("state.json")).read_text()
    )
    assert first.metrics == second.metrics
    assert first.best_params == second.best_params


def test_scorecard_job_puts_its_points_table_in_all_four_places(
    shipped_config, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """report.html (its own section), evidence.json, model_card.md and points_table.csv,
    all fetched by `creditgov report`; the served score is the sum of the integer points."""
    config = shipped_config("credit_scorecard.yaml", "tuning.n_trials=2")
    result = run(config)
    out = tmp_path / "fetched"
    done = creditgov(
        "report", result.model_name, result.model_version, "--out", str(out),
        cwd=tmp_path, tracking_uri=config.tracking.uri, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {"points_table.csv", "report.html", "evidence.json", "model_card.md"} <= {
        p.name for p in out.iterdir()
    }
    table = pd.read_csv(out / "points_table.csv")
    assert list(table.columns) == [
        "characteristic", "bin", "count", "share", "bads", "bad_rate", "woe", "iv",
        "characteristic_iv", "points",
    ]  # fmt: skip
    assert table["points"].dtype.kind == "i"
    assert set(table.characteristic) >= {"bureau_score", "debt_to_income"}
    # optbinning's counts: each characteristic's bins hold every training row once.
    assert (table.groupby("characteristic")["count"].sum() == result.splits[0].rows).all()
    evidence = json.loads((out / "evidence.json").read_text())
    sheet = evidence["model_sheet"]
    assert sheet["title"] == "Scorecard"
    assert (
        pd.DataFrame(sheet["tables"]["points_table"])["points"].tolist() == table["points"].tolist()
    )
    assert evidence["metrics"]["test"]["scorecard_sign_violations"] == 0
    html = (out / "report.html").read_text()
    assert '<section id="sheet"><h2>Scorecard</h2>' in html and "Points table" in html
    assert f"cut-off in points: {sheet['facts']['cut-off']}" in html
    card = (out / "model_card.md").read_text()
    assert "## Scorecard" in card and "### Points table" in card
    assert "| base points |" in card
    base = int(sheet["facts"]["base points"])
    low, high = (int(v) for v in sheet["facts"]["score range"].split(" to "))
    by_char = table.groupby("characteristic", sort=False)["points"]
    assert (low, high) == (base + by_char.min().sum(), base + by_char.max().sum())
    # Within 0.01 of optbinning's own Scorecard fitted on the same split.
    ours, splits = result.metrics["test"]["auc"], prepare(config)
    assert_meets_optbinning(ours, splits, config.model.monotone, "synthetic")
    assert result.metrics["test"]["auc"] > 0.7
    model = mlflow.pyfunc.load_model(result.model_uri)
    assert set(model.predict(pd.DataFrame(model.input_example)).decision) <= {"approve", "decline"}
    # Reasons: points below each characteristic's best bin, from the training-side code.
    local = Path(
        mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(tmp_path / "m"))
    )
    state = json.loads(next(local.rglob("state.json")).read_text())
    spec = spec_from_state(state, {})
    rows = pd.read_parquet(Path(config.data.source)).tail(1500).reset_index(drop=True)
    served = model.predict(rows)
    # The served score is the base points plus the CSV's points of each row's bins, exactly.
    total = np.full(len(rows), float(base))
    for c in spec.model.characteristics:
        points = table[table.characteristic == c.name]["points"].to_numpy()
        total += np.append(points, 0)[c.binned.bin_index(rows[c.name])]  # unseen level: 0
    np.testing.assert_array_equal(served["score"].to_numpy(), total)
    contrib = contributions(spec, rows)
    checked = assert_only_adverse_reasons(
        served, contrib.values, contrib.features, codes_to_features(state),
        declined_label="decline", k=config.evaluation.reason_codes,
    )  # fmt: skip
    assert checked > 50


def test_fraud_job_uses_a_cost_threshold_and_fraud_labels(shipped_config, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    config = shipped_config("fraud_detection.yaml", "tuning.n_trials=2")
    result = run(config)
    assert result.model_name == "card-fraud"
    assert result.metrics["test"]["auc"] > 0.85
    rows = pd.read_parquet(data_dir / "transactions.parquet").head(2000)
    scored = mlflow.pyfunc.load_model(result.model_uri).predict(rows)
    assert set(scored.decision) <= {"allow", "review"}
    local = Path(mlflow.artifacts.download_artifacts(result.model_uri))
    state = json.loads(next(local.rglob("state.json")).read_text())
    spec = spec_from_state(state, {"booster": next(local.rglob("model.txt")).read_text()})
    contrib = contributions(spec, rows.reset_index(drop=True))
    checked = assert_only_adverse_reasons(
        scored, contrib.values, contrib.features, codes_to_features(state),
        declined_label="review", k=config.evaluation.reason_codes,
    )  # fmt: skip
    assert checked > 0
    assert (
        "card_id"
        not in mlflow.pyfunc.load_model(result.model_uri).metadata.get_input_schema().input_names()
    )
    # Flagging costs 1, missing a fraud 50: the cut must sit well below 50%.
    assert 0 < result.threshold < 0.5
    # The report shows the cost the rule minimises, and the curve it was chosen on.
    reports = Path(mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/reports"))
    evidence = json.loads((reports / "evidence.json").read_text())
    assert evidence["model"]["decision"]["cost_false_negative"] == 50.0
    cost = evidence["metrics"]["test"]["expected_cost"]
    m = evidence["metrics"]["test"]
    rows = m["true_positives"] + m["false_positives"] + m["true_negatives"] + m["false_negatives"]
    assert cost == pytest.approx((50.0 * m["false_negatives"] + 1.0 * m["false_positives"]) / rows)
    curve = pd.DataFrame(evidence["cost_curve"]["test"])
    chosen = curve[curve.chosen]
    assert len(chosen) == 1 and chosen.expected_cost.iloc[0] == pytest.approx(cost)
    html = (reports / "report.html").read_text()
    assert "<h3>Cost-based cut-off</h3>" in html and "Expected cost per row" in html
    assert f"{cost:.4f}" in html


def test_a_failure_inside_the_run_ends_it_failed_and_registers_nothing(
    shipped_config, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import registry.register

    def broken(**_: object) -> None:
        raise RuntimeError("artifact store unavailable")

    monkeypatch.setattr(registry.register, "log_scoring_model", broken)
    config = shipped_config("credit_scoring.yaml", "tuning.n_trials=0")
    with pytest.raises(RuntimeError, match="artifact store unavailable"):
        run(config)
    client = MlflowClient(tracking_uri=config.tracking.uri, registry_uri=config.tracking.uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert client.search_registered_models() == []


def test_mlflow_run_of_the_project_trains_and_registers(data_dir: Path, tmp_path: Path) -> None:
    """`mlflow run . -e main -P config=… --env-manager local` runs the same job."""
    import yaml

    repo = Path(__file__).resolve().parents[2]
    raw = yaml.safe_load((repo / "configs" / "credit_scoring.yaml").read_text())
    raw["data"]["source"] = str(data_dir / "credit.parquet")
    raw["tuning"]["n_trials"] = 1
    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(raw))
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    for leaked in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(leaked, None)
    done = subprocess.run(
        [
            str(Path(bin_dir) / "mlflow"),
            "run",
            str(repo),
            "-e",
            "main",
            "-P",
            f"config={config}",
            "--env-manager",
            "local",
            "--experiment-name",
            "project-run",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    version = client.get_model_version("credit-pd", "1")
    parent = client.get_run(version.tags["run_id"])
    assert parent.data.tags["mlflow.project.entryPoint"] == "main"
    assert parent.info.status == "FINISHED"
    assert client.get_experiment(parent.info.experiment_id).name == "project-run"
