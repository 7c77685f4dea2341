"""Column names as lenders' warehouses have them: every feature renamed to carry Chinese
letters, spaces, brackets, braces, colons, quotes and commas trains, registers and serves.

LightGBM refuses JSON's special characters in a feature name, so it is given positional
names (`training/models/kinds/lightgbm.py` `booster_names`); everything a person or a
serving system sees keeps the table's own names: the served model's input signature and
the columns it reads, its `reason_<k>` values, the evidence and the drift reference.
One job per model kind on 3,000 synthetic applications, tuning off: LightGBM from
Parquet, the scorecard from CSV (whose header quotes the names that hold quotes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from creditgov.config import load_config
from creditgov.job import JobResult, run
from datasets import make_credit, write_table
from evaluation.reasons import DEFAULT_CATEGORICAL, DEFAULT_HIGH, DEFAULT_LOW, DEFAULT_MISSING
from training.models.kinds.lightgbm import booster_names
from training.reading import read_table

REPO = Path(__file__).resolve().parents[2]
#: Roles the shipped configs name: these keep their names; every other column is a feature.
ROLES = ("application_id", "application_date", "default_12m", "sex", "age")
PII = ("full_name", "phone", "national_id")
REASONS = [f"reason_{i}" for i in range(1, 5)]


def warehouse_name(i: int, name: str) -> str:
    """`收入 (annual_income) [第3列]: "原始", v{3}, total` — every character LightGBM refuses."""
    return f'收入 ({name}) [第{i}列]: "原始", v{{{i}}}, total'


def reason_texts(names: set[str]) -> set[str]:
    """Every reason text a feature of `names` can have without `evaluation.reason_texts`.

    The report marks a reason whose feature the proxy screen flagged ("… [proxy for
    age]"); both forms are the feature's text.
    """
    templates = (DEFAULT_CATEGORICAL, DEFAULT_HIGH, DEFAULT_LOW, DEFAULT_MISSING)
    texts = {t.replace("{feature}", name) for t in templates for name in names}
    marks = {f" [proxy for {a}]" for a in ("age", "sex", "sex, age", "age, sex")}
    return texts | {text + mark for text in texts for mark in marks}


@dataclass(frozen=True)
class Trained:
    result: JobResult
    frame: pd.DataFrame  # the renamed table, target included
    renamed: dict[str, str]  # original name -> warehouse name
    model: Any  # mlflow.pyfunc.PyFuncModel of the registered version
    local: Path  # the version's model artifacts, downloaded
    evidence: dict[str, Any]
    page: str  # report.html


def _train(folder: Path, config_name: str, suffix: str) -> Trained:
    import mlflow
    from mlflow.tracking import MlflowClient

    from registry.governance import approve, promote

    frame = make_credit(3000, seed=5).frame
    features = [c for c in frame.columns if c not in (*ROLES, *PII)]
    renamed = {name: warehouse_name(i, name) for i, name in enumerate(features)}
    frame = frame.rename(columns=renamed)
    # Both readers: the CSV header quotes the names that hold quotes and commas.
    source = folder / ("credit.csv" if suffix == "csv" else "credit.parquet")
    write_table(frame, source)

    uri = f"sqlite:///{folder / 'mlflow.db'}"
    shipped = load_config(REPO / "configs" / config_name, [f"data.source={source}"])
    # The shipped constraints, keyed by the warehouse names: a map MLflow cannot take
    # key by key as params, logged whole instead (`creditgov.config.flatten`).
    monotone = {renamed[k]: v for k, v in shipped.model.monotone.items()}
    config = load_config(
        REPO / "configs" / config_name,
        [
            f"data.source={source}",
            f"tracking.uri={uri}",
            "tuning.n_trials=0",
            "evaluation.shap_sample=500",
            f"model.monotone={json.dumps(monotone, ensure_ascii=False)}",
            "evaluation.reason_texts={}",  # the generated texts name the features
            *(["model.params.num_threads=1"] if "scoring" in config_name else []),
        ],
    )
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment(config.name, artifact_location=(folder / "artifacts").as_uri())
    result = run(config)
    logged = client.get_run(result.run_id).data.params
    assert monotone and json.loads(logged["model.monotone"]) == monotone
    version = client.get_model_version(result.model_name, result.model_version)
    failed = version.tags.get("validation_status") == "failed"
    approve(
        client, result.model_name, result.model_version, actor="names-reviewer",
        comment="column names test", override_gates=failed,
        justification="column names test only" if failed else None,
    )  # fmt: skip
    promote(client, result.model_name, result.model_version, actor="names-reviewer")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    local = Path(
        mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(folder / "model"))
    )
    reports = Path(client.download_artifacts(result.run_id, "reports", str(folder)))
    evidence = json.loads((reports / "evidence.json").read_text(encoding="utf-8"))
    page = (reports / "report.html").read_text(encoding="utf-8")
    return Trained(result, frame, renamed, model, local, evidence, page)


@pytest.fixture(
    scope="module",
    params=[("credit_scoring.yaml", "parquet"), ("credit_scorecard.yaml", "csv")],
    ids=["lightgbm-parquet", "scorecard-csv"],
)
def trained(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Trained:
    config_name, suffix = request.param
    return _train(tmp_path_factory.mktemp("names"), config_name, suffix)


def test_the_warehouse_names_are_ones_lightgbm_refuses() -> None:
    import lightgbm as lgb

    names = [warehouse_name(i, "x") for i in range(3)]
    x = np.random.default_rng(0).normal(size=(100, 3))
    y = (x[:, 0] > 0).astype(int)
    with pytest.raises(lgb.basic.LightGBMError, match="special JSON characters"):
        lgb.train({"verbosity": -1}, lgb.Dataset(x, label=y, feature_name=names), num_boost_round=1)


def test_reading_keeps_every_name_as_written(tmp_path: Path) -> None:
    """Quoted names with commas and quotes, a byte-order mark, and real names that look
    like pandas' renaming of a repeat (`x`, `x.1`) or differ inside (`a b`, `a_b`)."""
    names = [warehouse_name(0, "x"), "x", "x.1", "a b", "a_b", "Income", "income_2"]
    frame = pd.DataFrame([range(len(names))], columns=names)
    (tmp_path / "t.csv").write_bytes(b"\xef\xbb\xbf" + frame.to_csv(index=False).encode())
    frame.to_parquet(tmp_path / "t.parquet", index=False)
    for file in ("t.csv", "t.parquet"):
        assert list(read_table(tmp_path / file).columns) == names, file


def test_booster_names_keep_plain_names_and_number_all_others() -> None:
    assert booster_names(["annual_income", "n_open_accounts", "x.1", "a-b"]) == [
        "annual_income",
        "n_open_accounts",
        "x.1",
        "a-b",
    ]
    # One name LightGBM would refuse or rewrite ("a b" becomes "a_b") numbers them all,
    # so a positional name never meets a real one of the same spelling.
    assert booster_names(["Column_1", "a b"]) == ["Column_0", "Column_1"]
    assert booster_names(["收入", "x"]) == ["Column_0", "Column_1"]


def test_the_served_model_reads_and_explains_by_the_tables_names(trained: Trained) -> None:
    schema = trained.model.metadata.get_input_schema()
    names = list(schema.input_names())
    user_names = set(trained.renamed.values())
    assert names and set(names) <= user_names
    assert len(names) >= len(user_names) - 2  # nothing but constant columns may go

    rows = trained.frame.head(200)[names]
    out = trained.model.predict(rows)
    codes = [f"reason_code_{i}" for i in range(1, 5)]
    assert list(out.columns) == ["probability", "score", "decision", *REASONS, *codes]
    assert set(out[codes].to_numpy().ravel()) - {""} <= user_names  # no codes given: names
    probability = out["probability"].to_numpy(dtype=np.float64)
    assert np.isfinite(probability).all() and ((probability > 0) & (probability < 1)).all()
    reasons = set(out[REASONS].to_numpy().ravel()) - {None, ""}
    assert len(reasons) > 3 and reasons <= reason_texts(user_names)


def test_the_state_and_the_drift_reference_name_the_tables_columns(trained: Trained) -> None:
    state = json.loads(next(trained.local.rglob("state.json")).read_text(encoding="utf-8"))
    state_names = [f["name"] for f in state["features"]]
    assert set(state_names) <= set(trained.renamed.values())
    reference = json.loads(
        next(trained.local.rglob("reference_profile.json")).read_text(encoding="utf-8")
    )
    assert [f["name"] for f in reference["features"]] == state_names


def test_lightgbm_alone_sees_positional_names(trained: Trained) -> None:
    """The booster form's text model numbers the features; the scorecard has none."""
    state = json.loads(next(trained.local.rglob("state.json")).read_text(encoding="utf-8"))
    texts = list(trained.local.rglob("model.txt"))
    assert len(texts) == (state["model"]["form"] == "booster")
    for text in texts:
        line = next(
            row
            for row in text.read_text(encoding="utf-8").splitlines()
            if row.startswith("feature_names=")
        )
        n = len(state["features"])
        assert line == "feature_names=" + " ".join(f"Column_{i}" for i in range(n))


def test_score_reads_a_csv_whose_header_quotes_the_names(
    trained: Trained, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`creditgov score` (in-process): a CSV header with quotes, commas and colons in its
    names, as pandas writes it, scores as the loaded model scores the frame."""
    from registry.scoring import score_file

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained.result.tracking_uri)
    rows = trained.frame.head(300).drop(columns=["default_12m"])
    rows.to_csv(tmp_path / "in.csv", index=False)
    score_file(trained.result.model_uri, tmp_path / "in.csv", tmp_path / "out.csv")
    out = pd.read_csv(tmp_path / "out.csv", dtype={"application_id": str}, keep_default_na=False)
    expected = trained.model.predict(rows)
    np.testing.assert_allclose(out["probability"], expected["probability"], rtol=0, atol=1e-12)
    assert out[REASONS].to_numpy().tolist() == expected[REASONS].fillna("").to_numpy().tolist()


def test_the_evidence_and_the_report_name_the_tables_columns(trained: Trained) -> None:
    from markupsafe import escape

    evidence = trained.evidence
    user_names = set(trained.renamed.values())
    assert set(evidence["model"]["features"]) <= user_names
    examples = evidence["explainability"]["reason_examples"]
    shown = {row[r] for row in examples for r in REASONS} - {None, ""}
    assert shown and shown <= reason_texts(user_names)
    text = json.dumps(evidence, ensure_ascii=False)
    assert not any(f"Column_{i}" in text for i in range(len(user_names)))
    assert all(str(escape(name)) in trained.page for name in evidence["model"]["features"])


def test_rest_serves_and_explains_by_the_tables_names(trained: Trained, tmp_path: Path) -> None:
    """`creditgov serve` over HTTP: records keyed by the warehouse names, reasons in them."""
    import os
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    from tests.e2e.test_serving import _free_port, _invoke, _records, _stop

    port = _free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained.result.tracking_uri,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "creditgov", "serve", trained.result.model_uri,
             "--port", str(port)],
            env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-2000:]
            assert time.monotonic() < deadline, "no /ping answer in 120 s"
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        names = list(trained.model.metadata.get_input_schema().input_names())
        rows = trained.frame.head(60)[names]
        status, body = _invoke(url, _records(rows))
        assert status == 200, body
        served = pd.DataFrame(body["predictions"])
        expected = trained.model.predict(rows)
        np.testing.assert_allclose(served["probability"], expected["probability"], atol=1e-12)
        reasons = set(served[REASONS].to_numpy().ravel()) - {None, ""}
        assert reasons and reasons <= reason_texts(set(trained.renamed.values()))
    finally:
        _stop(process)
