"""The served model as a serving system sees it: `creditgov serve` over REST, and
`creditgov score` over files.

One small credit model is trained once (tuning off) into a throw-away SQLite store and
given the alias `champion`; `creditgov serve models:/credit-pd@champion` verifies a copy
of it and hands that copy to a real `mlflow models serve` (pickle loading switched off),
which answers HTTP on a free loopback port. The expected answers come from the same
version loaded in this process with `mlflow.pyfunc.load_model`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from creditgov.config import load_config
from creditgov.job import JobResult, run
from datasets import make_credit, write_table
from tests.support import creditgov

REPO = Path(__file__).resolve().parents[2]
TARGET, ID = "default_12m", "application_id"
PII = ("full_name", "phone", "national_id")
REASONS = [f"reason_{i}" for i in range(1, 5)]
CODES = [f"reason_code_{i}" for i in range(1, 5)]
OUTPUT = ["probability", "score", "decision", *REASONS, *CODES]
SERVE_TIMEOUT_S = 120


@dataclass(frozen=True)
class Trained:
    result: JobResult
    folder: Path
    uri: str
    frame: pd.DataFrame  # the training table, target included
    model: Any  # mlflow.pyfunc.PyFuncModel of the same version
    features: list[str]
    categorical: list[str]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    import mlflow
    from mlflow.tracking import MlflowClient
    from mlflow.types import DataType

    from registry.governance import approve, promote

    folder = tmp_path_factory.mktemp("serving")
    data = make_credit(6000, seed=33)  # at 6000 rows the model uses its categorical features
    write_table(data.frame, folder / "credit.parquet")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    config = load_config(
        REPO / "configs" / "credit_scoring.yaml",
        [
            f"data.source={folder / 'credit.parquet'}",
            f"tracking.uri={uri}",
            "tuning.n_trials=0",
            "evaluation.shap_sample=500",  # evidence only; the served model is the same
        ],
    )
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # Artifacts beside the store, not in ./mlruns of wherever pytest was started.
    client.create_experiment(config.name, artifact_location=(folder / "artifacts").as_uri())
    result = run(config)
    # Champion through the rules (a hand-set alias is refused by `score`): a second person
    # approves, overriding the gates if this small sample failed them, and promotes.
    failed = (
        client.get_model_version(result.model_name, result.model_version).tags.get(
            "validation_status"
        )
        == "failed"
    )
    approve(
        client, result.model_name, result.model_version, actor="serving-reviewer",
        comment="serving test", override_gates=failed,
        justification="serving test only" if failed else None,
    )  # fmt: skip
    promote(client, result.model_name, result.model_version, actor="serving-reviewer")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    schema = model.metadata.get_input_schema()
    features = list(schema.input_names())
    categorical = [
        n for n, t in zip(features, schema.input_types(), strict=True) if t == DataType.string
    ]
    return Trained(result, folder, uri, data.frame, model, features, categorical)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """The server forks uvicorn; end the whole process group, politely first."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


@pytest.fixture(scope="module")
def server(trained: Trained) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": trained.uri,
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        # mlflow execs `uvicorn` by name: the virtualenv's bin must come first on PATH.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("MLFLOW_RUN_ID", None)
    log = trained.folder / "serve.log"
    command = [
        sys.executable, "-m", "creditgov", "serve", "models:/credit-pd@champion",
        "--port", str(port), "--host", "127.0.0.1",
    ]  # fmt: skip
    with log.open("wb") as sink:
        process = subprocess.Popen(
            command,
            cwd=trained.folder,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + SERVE_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"creditgov serve exited {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"no /ping answer in {SERVE_TIMEOUT_S} s:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                time.sleep(0.5)
        assert "models:/credit-pd/1: files verified" in " ".join(_tail(log).split())
        yield url
    finally:
        _stop(process)


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return list(json.loads(frame.to_json(orient="records", date_format="iso")))


def _invoke(url: str, records: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{url}/invocations",
        data=json.dumps({"dataframe_records": records}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _predictions(body: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(body["predictions"])


def _mixed_rows(trained: Trained, each: int = 4) -> pd.DataFrame:
    """Real rows, features only: the first `each` approved and the first `each` declined."""
    head = trained.frame.head(400)
    decision = trained.model.predict(head[trained.features])["decision"]
    picked = [
        *decision.index[decision == "approve"][:each],
        *decision.index[decision == "decline"][:each],
    ]
    assert len(picked) == 2 * each, "the model should both approve and decline among 400 rows"
    return head.loc[picked, trained.features]


# ------------------------------------------------------------------------------ REST


def test_rest_scores_real_rows_with_reasons_only_for_declines(
    trained: Trained, server: str
) -> None:
    rows = _mixed_rows(trained)
    status, body = _invoke(server, _records(rows))
    assert status == 200, body
    got = _predictions(body)
    assert list(got.columns) == OUTPUT
    expected = trained.model.predict(rows).reset_index(drop=True)
    np.testing.assert_allclose(got["probability"], expected["probability"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["score"], expected["score"], rtol=0, atol=1e-9)
    assert got["decision"].tolist() == expected["decision"].tolist()
    assert set(got["decision"]) == {"approve", "decline"}
    approved = got["decision"] == "approve"
    assert (got.loc[approved, REASONS + CODES] == "").all().all()
    assert (got.loc[~approved, "reason_1"] != "").all()
    assert (
        got.loc[~approved, REASONS + CODES].to_numpy().tolist()
        == expected.loc[~approved, REASONS + CODES].to_numpy().tolist()
    )


def test_rest_refuses_a_missing_column_and_names_it(trained: Trained, server: str) -> None:
    rows = _mixed_rows(trained, each=1).drop(columns=["bureau_score"])
    status, body = _invoke(server, _records(rows))
    assert 400 <= status < 500, (status, body)
    assert body["error_code"] in {"INVALID_PARAMETER_VALUE", "BAD_REQUEST"}
    assert "missing inputs ['bureau_score']" in body["message"], body["message"]


def test_rest_refuses_text_in_a_numeric_column_and_names_it(trained: Trained, server: str) -> None:
    records = _records(_mixed_rows(trained, each=1))
    records[0]["bureau_score"] = "high"
    status, body = _invoke(server, records)
    assert 400 <= status < 500, (status, body)
    assert "bureau_score" in body["message"] and "'high'" in body["message"], body["message"]


def test_rest_ignores_extra_personal_data_columns(trained: Trained, server: str) -> None:
    rows = _mixed_rows(trained)
    with_pii = pd.concat([trained.frame.loc[rows.index, list(PII)], rows], axis=1)
    plain_status, plain = _invoke(server, _records(rows))
    pii_status, pii = _invoke(server, _records(with_pii))
    assert plain_status == pii_status == 200, pii
    assert set(PII) <= set(_records(with_pii)[0])  # the PII really went over the wire
    assert pii["predictions"] == plain["predictions"]


def test_rest_scores_an_unseen_category_level_as_missing(trained: Trained, server: str) -> None:
    # A row and a categorical column where "missing" changes the answer, so the check bites.
    rows = trained.frame.head(300)[trained.features]
    base = trained.model.predict(rows)["probability"].to_numpy()
    found = None
    for column in trained.categorical:
        blanked = rows.assign(**{column: None})
        changed = np.flatnonzero(trained.model.predict(blanked)["probability"].to_numpy() != base)
        if len(changed):
            found = (column, rows.index[changed[0]])
            break
    assert found is not None, "no row's probability depends on a categorical column being set"
    column, index = found
    original = rows.loc[[index]]
    unseen, missing = original.copy(), original.copy()
    unseen[column] = "never_seen_in_training"
    missing[column] = None
    status, body = _invoke(server, _records(pd.concat([original, unseen, missing])))
    assert status == 200, body
    p = [row["probability"] for row in body["predictions"]]
    assert p[1] == pytest.approx(p[2], abs=1e-12)
    assert p[1] != pytest.approx(p[0], abs=1e-12)


# ------------------------------------------------------------------------------ creditgov score


def _cli(uri: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return creditgov(*args, cwd=cwd, tracking_uri=uri, timeout=300)


def _assert_same_scores(out: pd.DataFrame, frame: pd.DataFrame, trained: Trained) -> None:
    assert list(out.columns) == [ID, *OUTPUT]
    assert not set(PII) & set(out.columns)
    assert out[ID].astype(str).tolist() == frame[ID].astype(str).tolist()
    expected = trained.model.predict(frame.drop(columns=[TARGET]))
    np.testing.assert_array_equal(out["probability"].to_numpy(), expected["probability"].to_numpy())
    np.testing.assert_array_equal(out["score"].to_numpy(), expected["score"].to_numpy())
    assert out["decision"].tolist() == expected["decision"].tolist()
    assert (out[REASONS].to_numpy() == expected[REASONS].to_numpy()).all()


def test_score_streams_a_parquet_file_in_chunks(trained: Trained, tmp_path: Path) -> None:
    frame = make_credit(12_000, seed=8).frame
    write_table(frame, tmp_path / "in.parquet")
    done = _cli(
        trained.uri, "score", "--model", "models:/credit-pd@champion",
        "--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "out" / "scores.parquet"),
        "--chunk-rows", "1000", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Scored 12,000 rows in 12 chunks" in done.stdout, done.stdout
    out = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    assert len(out) == len(frame)
    _assert_same_scores(out, frame, trained)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["scores.parquet"]


def test_score_reads_and_writes_csv(trained: Trained, tmp_path: Path) -> None:
    frame = make_credit(3000, seed=9).frame
    frame.to_csv(tmp_path / "in.csv", index=False)
    done = _cli(
        trained.uri, "score", "--model", trained.result.model_uri,
        "--input", str(tmp_path / "in.csv"), "--output", str(tmp_path / "scores.csv"),
        "--chunk-rows", "1000", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Scored 3,000 rows in 3 chunks" in done.stdout, done.stdout
    out = pd.read_csv(tmp_path / "scores.csv", dtype={ID: str}, keep_default_na=False)
    _assert_same_scores(out, frame, trained)


def test_score_names_a_missing_column_and_writes_nothing(trained: Trained, tmp_path: Path) -> None:
    frame = make_credit(500, seed=10).frame.drop(columns=["bureau_score"])
    write_table(frame, tmp_path / "in.parquet")
    done = _cli(
        trained.uri, "score", "--model", trained.result.model_uri,
        "--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "scores.parquet"),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "in.parquet" in lines[0] and "bureau_score" in lines[0], lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]

    unknown = _cli(
        trained.uri, "score", "--model", "models:/credit-pd@nobody",
        "--input", str(tmp_path / "in.parquet"), "--output", str(tmp_path / "scores.parquet"),
        cwd=tmp_path,
    )  # fmt: skip
    assert unknown.returncode == 2 and "models:/credit-pd@nobody" in unknown.stderr, unknown.stderr
