"""What a reviewer and an operator run after training: report, evaluate, drift.

One small credit model is trained once (tuning off) into a throw-away SQLite store;
the commands then run as real subprocesses of the installed CLI, as a user runs them.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from creditgov.config import load_config
from creditgov.job import JobResult, run
from datasets import make_credit, write_table
from tests.support import creditgov

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ("summary", "gates", "data", "performance", "explainability", "fairness", "drift")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[JobResult, Path, str]]:
    folder = tmp_path_factory.mktemp("reviewer")
    data = make_credit(6000, seed=33)
    write_table(data.frame, folder / "credit.parquet")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    config = load_config(
        REPO / "configs" / "credit_scoring.yaml",
        [f"data.source={folder / 'credit.parquet'}", f"tracking.uri={uri}", "tuning.n_trials=0"],
    )
    yield run(config), folder, uri


def _cli(uri: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return creditgov(*args, cwd=cwd, tracking_uri=uri, timeout=300)


def test_report_command_fetches_the_three_files(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, _, uri = trained
    done = _cli(
        uri, "report", "credit-pd", result.model_version, "--out", str(tmp_path / "r"), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert names == ["evidence.json", "model_card.md", "report.html"]
    evidence = json.loads((tmp_path / "r" / "evidence.json").read_text())
    assert evidence["validation_status"] == result.validation_status
    assert evidence["gates"] == [dict(g) for g in result.gates]
    assert evidence["context"]["model_version"] == result.model_version
    card = (tmp_path / "r" / "model_card.md").read_text()
    for heading in (
        "## Intended use",
        "## Data",
        "## Metrics",
        "## Fairness",
        "## Explainability",
        "## Drift",
        "## Gates",
        "## Limitations",
    ):
        assert heading in card
    missing = _cli(uri, "report", "credit-pd", "99", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert (
        missing.returncode == 2 and "no such model version" in missing.stderr
    ) or "99" in missing.stderr


def test_report_is_self_contained_and_holds_no_personal_data(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, folder, uri = trained
    _cli(uri, "report", "credit-pd", result.model_version, "--out", str(tmp_path), cwd=tmp_path)
    page = (tmp_path / "report.html").read_text()
    # Every src/href is an embedded image or an in-page anchor: nothing to fetch.
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", page)
    assert refs and all(
        r.startswith(("data:image/png;base64,", "#")) or r == "data:," for r in refs
    ), set(r[:40] for r in refs if not r.startswith(("data:", "#")))
    assert "<script" not in page.lower()
    frame = pd.read_parquet(folder / "credit.parquet")
    for column in ("full_name", "phone", "national_id"):
        leaked = [v for v in frame[column].head(2000) if str(v) in page]
        assert not leaked, f"{column} values in the report: {leaked[:3]}"


def _chromium() -> str | None:
    return (
        shutil.which("chromium")
        or shutil.which("chromium-browser")
        or shutil.which("google-chrome")
    )


def test_report_renders_in_a_headless_browser_with_no_failed_requests(
    trained, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    browser = _chromium()
    if browser is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing; .ci/run installs it (apt-get install chromium)")
        pytest.skip("chromium not installed: apt-get install chromium to run the browser check")
    result, _, uri = trained
    _cli(uri, "report", "credit-pd", result.model_version, "--out", str(tmp_path), cwd=tmp_path)

    requests: list[str] = []

    class Logged(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            super().__init__(*args, directory=str(tmp_path), **kwargs)

        def log_message(self, format: str, *args: object) -> None:
            requests.append(str(args[0]))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Logged)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/report.html"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,3000",
        # Any host but this one fails to resolve, so a stray external request cannot load.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ]  # fmt: skip
    try:
        dom = subprocess.run(
            [browser, *flags, "--dump-dom", url], capture_output=True, text=True, timeout=120
        )
        shot = subprocess.run(
            [browser, *flags, f"--screenshot={tmp_path / 'report.png'}", url],
            capture_output=True,
            timeout=120,
        )
    finally:
        server.shutdown()
    assert dom.returncode == 0, dom.stderr[-2000:]
    # The browser asked this server for the page and nothing else (twice: DOM and screenshot).
    assert requests and all(r.startswith("GET /report.html ") for r in requests), requests
    for section in SECTIONS:
        assert f'id="{section}"' in dom.stdout, section
    assert dom.stdout.count("<img") >= 6
    assert shot.returncode == 0 and (tmp_path / "report.png").stat().st_size > 50_000


def test_drift_flags_the_shifted_feature_and_not_the_others(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, folder, uri = trained
    batch = pd.read_parquet(folder / "credit.parquet").sample(3000, random_state=1)
    batch["debt_to_income"] = batch["debt_to_income"] + 0.35
    batch.drop(columns=["default_12m"]).to_parquet(tmp_path / "batch.parquet")
    done = _cli(
        uri, "drift", "--model", result.model_uri, "--data", str(tmp_path / "batch.parquet"),
        "--json", str(tmp_path / "drift.json"), "--report", str(tmp_path / "rep"), "--fail-on-drift",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 4, done.stdout + done.stderr
    report = json.loads((tmp_path / "drift.json").read_text())
    assert report["drifted"] == ["debt_to_income"]
    assert report["psi"]["debt_to_income"] > 0.25
    assert max(v for k, v in report["psi"].items() if k != "debt_to_income") < 0.1
    assert (tmp_path / "rep" / "drift.html").exists()

    calm = _cli(
        uri,
        "drift",
        "--model",
        result.model_uri,
        "--data",
        str(folder / "credit.parquet"),
        "--fail-on-drift",
        cwd=tmp_path,
    )
    assert calm.returncode == 0, calm.stderr

    broken = batch.drop(columns=["bureau_score"])
    broken.to_parquet(tmp_path / "broken.parquet")
    bad = _cli(
        uri,
        "drift",
        "--model",
        result.model_uri,
        "--data",
        str(tmp_path / "broken.parquet"),
        cwd=tmp_path,
    )
    assert bad.returncode == 2 and "bureau_score" in bad.stderr


def test_evaluate_retests_a_registered_model_on_new_labelled_data(trained, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    result, _, uri = trained
    fresh = make_credit(3000, seed=99).frame
    write_table(fresh, tmp_path / "fresh.parquet")
    done = _cli(
        uri, "evaluate", "--model", result.model_uri, "--data", str(tmp_path / "fresh.parquet"),
        "--json", str(tmp_path / "eval.json"), "--report", str(tmp_path / "rep"),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "eval.json").read_text())
    import mlflow
    from sklearn.metrics import roc_auc_score

    served = mlflow.pyfunc.load_model(result.model_uri).predict(fresh)
    assert summary["metrics"]["test"]["auc"] == pytest.approx(
        roc_auc_score(fresh["default_12m"], served["probability"])
    )
    assert [g["metric"] for g in summary["gates"]] == [
        "auc",
        "ks",
        "psi_max",
        "selection_rate_ratio",
    ]
    assert summary["validation_status"] in {"passed", "failed"}
    assert (tmp_path / "rep" / "report.html").exists()
