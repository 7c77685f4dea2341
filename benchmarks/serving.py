"""Serving benchmarks: the registered model next to bare LightGBM, and what serving costs.

Four questions, answered in one run on one registered model (the shipped config, tuning
off, trained on `train_rows` synthetic applications and registered in a throw-away
SQLite store):

- (a) batch scoring without reasons: `mlflow.pyfunc.load_model(uri).predict(frame)` on
  `rows` applications that are all approved (so no reason codes are computed) against
  `lightgbm.Booster.predict(x)` on the same rows. The bare side gets the booster loaded
  from the same `model.txt` and the matrix already encoded (by the served model's own
  encoder); the served side does everything a caller gets: MLflow's schema check,
  encoding, LightGBM, calibration, score, decision and the (blank) reason columns.
  Target: at least 0.8x the bare rows/s, i.e. a time ratio of at most 1.25.
- (b) batch scoring with reasons: the same on `reason_rows` applications that are all
  declined, against bare `predict(x)` plus `predict(x, pred_contrib=True)` (TreeSHAP),
  what the served model needs to pick reasons. TreeSHAP costs about a millisecond a row
  on two cores, so (b) uses fewer rows than (a); throughput is per row either way.
  Target: at least 0.9x the bare rows/s (only adverse factors, worded per row).
- (c) peak memory (RSS high-water mark of the child process, from `os.wait4`) of
  `creditgov score` on a Parquet file of 10x `chunk_rows` rows, next to a child that
  reads the whole file with pandas and scores it in one `predict`, next to a baseline
  `creditgov score` of 1,000 rows (imports and model alone), and the file's size in
  memory as a DataFrame. Informational.
- (d) single-row REST latency: `requests` sequential one-row requests from a loopback
  client (one keep-alive connection) to a real `mlflow models serve` of the model;
  p50 / p90 / p99, next to the median of the same one-row `predict` in-process.
  Informational.

Approved and declined rows are drawn (with replacement) from fresh synthetic
applications the model approves or declines. (a) and (b) are timed interleaved
(`benchmarks.interleave`) and reported as ratios of medians; before timing, each pair is
checked to do the same work (same probabilities from the same booster; reasons that are
the top TreeSHAP features), else `NotSameWork`.

    python -m benchmarks.serving [--rows 200000] [--reason-rows 20000] [--chunk-rows 50000]
                                 [--requests 300] [--train-rows 50000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from benchmarks import BenchResult, Samples, interleave

if TYPE_CHECKING:
    from benchmarks.harness import Context

__all__ = ["CONFIG", "THROUGHPUT_TARGET", "NotSameWork", "bench", "run"]

#: The shipped config the model is trained from; only data and tracking are redirected.
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "credit_scoring.yaml"
#: (a): the served model must reach this share of bare LightGBM's rows per second.
THROUGHPUT_TARGET = 0.8
#: (b): with reasons, the served model must reach this share of bare predict + pred_contrib.
REASONS_TARGET = 0.9
MODEL_NAME = "credit-pd"
SERVE_TIMEOUT_S = 180
#: Rows of the baseline `creditgov score` run in (c): imports and the model, next to no data.
BASELINE_ROWS = 1000
MB = 1024 * 1024
#: Declined rows whose reasons are checked against bare TreeSHAP before timing.
CHECKED_ROWS = 2000

Log = Callable[[str], None]

#: (c), the comparison: the whole file in one DataFrame, one predict, one write.
WHOLE_FILE_SCRIPT = """
import sys
import mlflow
import pandas as pd

model_uri, source, target, id_column = sys.argv[1:5]
model = mlflow.pyfunc.load_model(model_uri)
frame = pd.read_parquet(source)
scored = model.predict(frame[model.metadata.get_input_schema().input_names()])
pd.concat([frame[[id_column]], scored], axis=1).to_parquet(target, index=False)
"""


#: (c), the measuring launcher: runs argv[2:], writes the child's own peak RSS to argv[1].
LAUNCHER = """
import json, os, subprocess, sys

child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"maxrss_kib": usage.ru_maxrss}, out)
sys.exit(os.waitstatus_to_exitcode(status))
"""


class NotSameWork(RuntimeError):
    """The served model and the bare booster did not compute the same thing."""


@dataclass(frozen=True)
class Setup:
    folder: Path
    uri: str  # tracking store
    model_uri: str  # models:/credit-pd/N
    model: Any  # mlflow.pyfunc.PyFuncModel
    scorer: Any  # the CreditScorer inside it
    booster: lgb.Booster  # bare, from the same model.txt
    features: list[str]
    id_column: str
    threshold: float
    train_rows: int
    train_s: float


def _say(log: Log | None) -> Log:
    return log or (lambda _message: None)


def make_setup(folder: Path, *, train_rows: int, seed: int, log: Log) -> Setup:
    """Train the shipped config (tuning off), register it, alias it champion, load it."""
    import mlflow
    from mlflow.tracking import MlflowClient

    from creditgov.config import load_config
    from creditgov.job import run as run_job
    from datasets import make_credit, write_table
    from registry.artifacts import load_bundle

    source = folder / "train.parquet"
    write_table(make_credit(train_rows, seed=seed).frame, source)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    config = load_config(
        CONFIG, [f"data.source={source}", f"tracking.uri={uri}", "tuning.n_trials=0"]
    )
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    # Artifacts under the temporary folder, not ./mlruns of wherever this was started.
    client.create_experiment(config.name, artifact_location=(folder / "artifacts").as_uri())
    started = time.perf_counter()
    result = run_job(config)
    train_s = time.perf_counter() - started
    client.set_registered_model_alias(result.model_name, "champion", result.model_version)
    bundle = load_bundle(client, result.model_uri)
    model_text = bundle.files.get("booster")
    if model_text is None:
        raise NotSameWork("the serving benchmark needs a booster-form model (no model.txt)")
    model = mlflow.pyfunc.load_model(result.model_uri)
    scorer = model.unwrap_python_model()
    log(
        f"model {result.model_uri}: {lgb.Booster(model_str=model_text).num_trees()} "
        f"trees, trained and registered on {train_rows} rows in {train_s:.1f} s"
    )
    return Setup(
        folder=folder,
        uri=uri,
        model_uri=result.model_uri,
        model=model,
        scorer=scorer,
        booster=lgb.Booster(model_str=model_text),
        features=list(model.metadata.get_input_schema().input_names()),
        id_column=config.data.id_column or "application_id",
        threshold=float(scorer.state["decision"]["threshold"]),
        train_rows=train_rows,
        train_s=train_s,
    )


def _encode_for(scorer: Any, frame: pd.DataFrame) -> NDArray[np.float64]:
    """The matrix the served model's booster form predicts on: its own encoder."""
    from registry.scoring_model import encode

    return np.asarray(encode(frame, scorer.features), dtype=np.float64)


def draw_rows(setup: Setup, rows: int, *, declined: bool, seed: int) -> pd.DataFrame:
    """`rows` feature rows the model approves (or declines), drawn with replacement."""
    from datasets import make_credit

    pool = make_credit(max(rows, 50_000), seed=seed).frame[setup.features]
    # The served decision rule on the probability alone: no TreeSHAP for the whole pool.
    above = setup.scorer.probability(pool) >= setup.threshold
    candidates = np.flatnonzero(above if declined else ~above)
    if len(candidates) == 0:
        raise NotSameWork(f"no synthetic row is {'declined' if declined else 'approved'}")
    picked = np.random.default_rng(seed).choice(candidates, size=rows, replace=True)
    return pool.iloc[picked].reset_index(drop=True)


def check_same_work(
    setup: Setup, approved: pd.DataFrame, x_ok: NDArray[np.float64], declined: pd.DataFrame
) -> None:
    """Served probabilities are the booster's, calibrated; reasons are the top SHAP features."""
    scorer = setup.scorer
    served = setup.model.predict(approved)
    expected = scorer._calibrate(np.asarray(setup.booster.predict(x_ok), dtype=np.float64))
    if not np.array_equal(served["probability"].to_numpy(), expected):
        raise NotSameWork("served probabilities differ from the calibrated bare booster's")
    if (served["decision"] != scorer.state["decision"]["below"]).any():
        raise NotSameWork("(a) is meant to have no declines, but the model declined some rows")
    if (scorer.probability(declined) < setup.threshold).any():
        raise NotSameWork("(b) is meant to be all declines, but the model approves some rows")
    sample = declined.head(CHECKED_ROWS)
    served = setup.model.predict(sample)
    if (served["decision"] != scorer.state["decision"]["at_or_above"]).any():
        raise NotSameWork("(b) is meant to be all declines, but the model approved some rows")
    x_bad = _encode_for(scorer, sample)
    contrib = np.asarray(setup.booster.predict(x_bad, pred_contrib=True))[:, :-1]
    codes = {name: e["code"] for name, e in scorer.state["reasons"]["catalogue"].items()}
    top = [
        codes[setup.features[j]] if contrib[i, j] > 0 else "GENERAL"
        for i, j in enumerate(contrib.argmax(axis=1))
    ]
    # argmax and a stable sort agree on ties (first feature wins).
    if served["reason_code_1"].tolist() != top:
        raise NotSameWork("reason_code_1 is not the feature with the largest TreeSHAP push")


def bench_throughput(
    setup: Setup, *, rows: int, reason_rows: int, repeats: int, seed: int, log: Log
) -> tuple[list[BenchResult], dict[str, Any]]:
    approved = draw_rows(setup, rows, declined=False, seed=seed + 1)
    declined = draw_rows(setup, reason_rows, declined=True, seed=seed + 2)
    x_ok = _encode_for(setup.scorer, approved)
    x_bad = _encode_for(setup.scorer, declined)
    check_same_work(setup, approved, x_ok, declined)
    booster, model = setup.booster, setup.model

    def bare_with_reasons() -> object:
        return booster.predict(x_bad), booster.predict(x_bad, pred_contrib=True)

    sides: dict[str, Callable[[], object]] = {
        "bare_predict": lambda: booster.predict(x_ok),
        "model_predict_approved": lambda: model.predict(approved),
        "bare_predict_and_contrib": bare_with_reasons,
        "model_predict_declined": lambda: model.predict(declined),
        # Parts of the served side, for the breakdown.
        "encode_approved": lambda: _encode_for(setup.scorer, approved),
    }
    samples = interleave(
        sides,
        repeats,
        on_sample=lambda name, round_, wall: log(f"round {round_ + 1}: {name} {wall:.3f} s"),
    )
    common = {
        "repeats": repeats,
        "samples": {name: s.to_json() for name, s in samples.items()},
        "encode_approved_median_s": samples["encode_approved"].median,
    }

    def result(
        name: str,
        title: str,
        ours: Samples,
        bare: Samples,
        n: int,
        target: float | None,
        **inc: str,
    ) -> BenchResult:
        return BenchResult(
            name=name,
            title=title,
            kind="ratio",
            creditgov=ours.median,
            reference=bare.median,
            value=ours.median / bare.median,
            target=target,
            unit="s",
            includes=inc,
            details={
                **common,
                "rows": n,
                "rows_per_s": n / ours.median,
                "bare_rows_per_s": n / bare.median,
                "throughput_ratio": bare.median / ours.median,
                "cpu_ratio": ours.cpu_median / bare.cpu_median,
                "min_ratio": min(ours.wall) / min(bare.wall),
            },
        )

    results = [
        result(
            "serving_batch_no_reasons",
            f"batch predict, {rows} approved rows (no reasons)",
            samples["model_predict_approved"],
            samples["bare_predict"],
            rows,
            1.0 / THROUGHPUT_TARGET,
            creditgov="pyfunc.predict(frame): schema check, encode, booster, calibrate, "
            "score, decision, blank reasons",
            reference="booster.predict(x); booster loaded from model.txt, x encoded",
        ),
        result(
            "serving_batch_with_reasons",
            f"batch predict, {reason_rows} declined rows (4 reasons)",
            samples["model_predict_declined"],
            samples["bare_predict_and_contrib"],
            reason_rows,
            1.0 / REASONS_TARGET,
            creditgov="pyfunc.predict(frame) on declines: the above plus pred_contrib, "
            "adverse-factor selection and per-row wording with codes",
            reference="booster.predict(x) + booster.predict(x, pred_contrib=True)",
        ),
    ]
    return results, {"approved_rows": rows, "declined_rows": reason_rows}


# -- (c) memory ------------------------------------------------------------------------
def _child_peak(
    command: list[str], *, env: dict[str, str], cwd: Path, log_file: Path
) -> tuple[float, float]:
    """(peak RSS in MiB, wall seconds) of `command`, run by a small launcher process.

    Linux carries a process's RSS high-water mark across fork and exec, so a child forked
    straight from this (large) process would report at least this process's size. The
    launcher is small when it forks, so its child's `ru_maxrss` is the command's own.
    """
    report = log_file.with_suffix(".rusage.json")
    started = time.perf_counter()
    with log_file.open("wb") as sink:
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, str(report), *command],
            env=env,
            cwd=cwd,
            stdout=sink,
            stderr=subprocess.STDOUT,
            check=False,
        )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{' '.join(command[:5])} ... exited {done.returncode}:\n{tail}")
    usage = json.loads(report.read_text(encoding="utf-8"))
    return usage["maxrss_kib"] / 1024, wall  # Linux reports KiB


def bench_memory(setup: Setup, *, chunk_rows: int, seed: int, log: Log) -> BenchResult:
    from datasets import make_credit, write_table

    folder = setup.folder
    file_rows = 10 * chunk_rows
    frame = make_credit(file_rows, seed=seed + 3).frame
    big, small = folder / "big.parquet", folder / "small.parquet"
    write_table(frame, big)
    write_table(frame.head(BASELINE_ROWS), small)
    frame_mb = frame.memory_usage(deep=True).sum() / MB
    read_mb = frame[[setup.id_column, *setup.features]].memory_usage(deep=True).sum() / MB
    del frame
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": setup.uri,
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    env.pop("MLFLOW_RUN_ID", None)
    champion = f"models:/{MODEL_NAME}@champion"

    small_chunk = max(1, chunk_rows // 10)

    def score(source: Path, target: Path, chunk: int = chunk_rows) -> list[str]:
        return [
            sys.executable, "-m", "creditgov", "score", "--model", champion,
            "--input", str(source), "--output", str(target), "--chunk-rows", str(chunk),
        ]  # fmt: skip

    runs = {
        "baseline": score(small, folder / "small_scores.parquet"),
        "streamed": score(big, folder / "streamed_scores.parquet"),
        # The same file in chunks a tenth the size: what the chunk, not the file, costs.
        "streamed_small_chunks": score(big, folder / "small_chunk_scores.parquet", small_chunk),
        "whole_file": [
            sys.executable, "-c", WHOLE_FILE_SCRIPT, champion, str(big),
            str(folder / "whole_scores.parquet"), setup.id_column,
        ],
    }  # fmt: skip
    peaks: dict[str, float] = {}
    walls: dict[str, float] = {}
    for name, command in runs.items():
        peaks[name], walls[name] = _child_peak(
            command, env=env, cwd=folder, log_file=folder / f"{name}.log"
        )
        log(f"memory: {name} peak {peaks[name]:.0f} MiB in {walls[name]:.1f} s")
    streamed = pd.read_parquet(folder / "streamed_scores.parquet")
    whole = pd.read_parquet(folder / "whole_scores.parquet")
    if not (
        streamed[setup.id_column].equals(whole[setup.id_column])
        and np.array_equal(streamed["probability"].to_numpy(), whole["probability"].to_numpy())
    ):
        raise NotSameWork("`creditgov score` and the whole-file predict wrote different scores")
    return BenchResult(
        name="serving_score_memory",
        title=f"creditgov score peak RSS, {file_rows} rows in chunks of {chunk_rows}",
        kind="ratio",
        creditgov=peaks["streamed"],
        reference=peaks["whole_file"],
        value=peaks["streamed"] / peaks["whole_file"],
        target=None,
        unit="MiB",
        includes={
            "creditgov": "python -m creditgov score (pyarrow batches, ParquetWriter)",
            "reference": "pd.read_parquet(all columns) + one predict + to_parquet",
        },
        details={
            "file_rows": file_rows,
            "chunk_rows": chunk_rows,
            "small_chunk_rows": small_chunk,
            "file_mb_on_disk": big.stat().st_size / MB,
            "frame_mb_in_memory": frame_mb,
            "read_columns_mb_in_memory": read_mb,
            "peak_mb": peaks,
            "wall_s": walls,
            "streamed_above_baseline_mb": peaks["streamed"] - peaks["baseline"],
            "whole_above_baseline_mb": peaks["whole_file"] - peaks["baseline"],
            "method": "ru_maxrss of each child from os.wait4 (one run each)",
        },
    )


# -- (d) REST latency ------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_ping(process: subprocess.Popen[bytes], port: int, log_file: Path) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < SERVE_TIMEOUT_S:
        if process.poll() is not None:
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-20:])
            raise RuntimeError(f"mlflow models serve exited {process.returncode}:\n{tail}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/ping")
            if connection.getresponse().status == 200:
                return time.perf_counter() - started
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"mlflow models serve gave no /ping answer in {SERVE_TIMEOUT_S} s")


def bench_latency(setup: Setup, *, requests: int, seed: int, log: Log) -> BenchResult:
    from datasets import make_credit

    rows = make_credit(max(requests, 1000), seed=seed + 4).frame[setup.features].head(requests)
    bodies = [
        json.dumps({"dataframe_records": json.loads(rows.iloc[[i]].to_json(orient="records"))})
        for i in range(len(rows))
    ]
    port = _free_port()
    log_file = setup.folder / "serve.log"
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": setup.uri,
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("MLFLOW_RUN_ID", None)
    command = [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", f"models:/{MODEL_NAME}@champion",
        "--env-manager", "local", "-p", str(port), "-h", "127.0.0.1",
    ]  # fmt: skip
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        startup = _wait_for_ping(process, port, log_file)
        log(f"latency: server up in {startup:.1f} s; {len(bodies)} sequential requests")
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json"}

        def call(body: str) -> dict[str, Any]:
            connection.request("POST", "/invocations", body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            if answer.status != 200:
                raise RuntimeError(f"REST answered {answer.status}: {payload[:300]!r}")
            return dict(json.loads(payload))

        for body in bodies[:20]:  # warm-up: imports, first-call caches, the connection
            call(body)
        rest: list[float] = []
        decisions: list[str] = []
        for body in bodies:
            started = time.perf_counter()
            answer = call(body)
            rest.append(time.perf_counter() - started)
            decisions.append(answer["predictions"][0]["decision"])
        connection.close()
    finally:
        _stop(process)
    local: list[float] = []
    for i in range(len(rows)):
        row = rows.iloc[[i]]
        started = time.perf_counter()
        setup.model.predict(row)
        local.append(time.perf_counter() - started)
    p = np.percentile(np.asarray(rest), [50, 90, 99])
    declined = np.asarray(decisions) == setup.scorer.state["decision"]["at_or_above"]
    rest_arr = np.asarray(rest)
    return BenchResult(
        name="serving_rest_latency",
        title=f"REST one-row latency p50, {len(rest)} sequential requests",
        kind="ratio",
        creditgov=float(p[0]),
        reference=statistics.median(local),
        value=float(p[0]) / statistics.median(local),
        target=None,
        unit="s",
        includes={
            "creditgov": "POST /invocations to mlflow models serve (uvicorn), keep-alive, "
            "JSON in and out",
            "reference": "the same one-row pyfunc.predict in this process",
        },
        details={
            "requests": len(rest),
            "p50_ms": p[0] * 1e3,
            "p90_ms": p[1] * 1e3,
            "p99_ms": p[2] * 1e3,
            "max_ms": float(rest_arr.max()) * 1e3,
            "mean_ms": float(rest_arr.mean()) * 1e3,
            "declined_requests": int(declined.sum()),
            "p50_approved_ms": float(np.median(rest_arr[~declined])) * 1e3,
            "p50_declined_ms": (
                float(np.median(rest_arr[declined])) * 1e3 if declined.any() else None
            ),
            "in_process_p50_ms": statistics.median(local) * 1e3,
            "in_process_p99_ms": float(np.percentile(local, 99)) * 1e3,
            "server_startup_s": startup,
        },
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    """`mlflow models serve` execs uvicorn in its own session: end the whole group."""
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


# -- entry points ----------------------------------------------------------------------
def run(
    rows: int = 200_000,
    *,
    reason_rows: int = 20_000,
    chunk_rows: int = 50_000,
    requests: int = 300,
    train_rows: int = 50_000,
    repeats: int = 5,
    seed: int = 7,
    log: Log | None = None,
) -> dict[str, Any]:
    """JSON-ready: {"benchmark", "settings", "model", "results": [BenchResult.to_json()]}."""
    say = _say(log)
    reason_rows = min(reason_rows, rows)  # a quick pass (--rows 20000) stays quick
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory(prefix="creditgov-serving-") as tmp:
        setup = make_setup(Path(tmp), train_rows=train_rows, seed=seed, log=say)
        results, record = bench_throughput(
            setup, rows=rows, reason_rows=reason_rows, repeats=repeats, seed=seed, log=say
        )
        results.append(bench_memory(setup, chunk_rows=chunk_rows, seed=seed, log=say))
        results.append(bench_latency(setup, requests=requests, seed=seed, log=say))
    return {
        "benchmark": "serving",
        "settings": {
            "rows": rows,
            "reason_rows": reason_rows,
            "chunk_rows": chunk_rows,
            "requests": requests,
            "train_rows": train_rows,
            "repeats": repeats,
            "seed": seed,
        },
        "model": {
            "trees": setup.booster.num_trees(),
            "features": len(setup.features),
            "threshold": setup.threshold,
            "train_rows": train_rows,
            "train_and_register_s": setup.train_s,
            "config": str(CONFIG),
        },
        **record,
        "results": [r.to_json() for r in results],
    }


def bench(context: Context) -> list[BenchResult]:
    """`python -m benchmarks --only serving`: scoring `context.rows` rows; the rest is noted."""
    doc = run(rows=context.rows, repeats=context.few_repeats, log=context.log)
    context.note("serving", {k: v for k, v in doc.items() if k != "results"})
    return [BenchResult.from_json(row) for row in doc["results"]]


def print_tables(document: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(width=None if sys.stdout.isatty() else 140)
    results = {r["name"]: r for r in document["results"]}
    model = document["model"]
    table = Table(
        title=f"serving a {model['trees']}-tree model: medians of "
        f"{document['settings']['repeats']} interleaved runs"
    )
    for column in ("batch", "served rows/s", "bare rows/s", "ratio", "cpu", "target"):
        table.add_column(column, justify="left" if column == "batch" else "right")
    for name in ("serving_batch_no_reasons", "serving_batch_with_reasons"):
        r = results[name]
        d = r["details"]
        if r["target"] is None:
            verdict = "info"
        else:
            ok = "[green]PASS[/]" if r["passed"] else "[red]FAIL[/]"
            verdict = f"≥ {1 / r['target']:.2f}× {ok}"
        table.add_row(
            r["title"],
            f"{d['rows_per_s']:,.0f}",
            f"{d['bare_rows_per_s']:,.0f}",
            f"{d['throughput_ratio']:.3f}×",
            f"{1 / d['cpu_ratio']:.3f}×",
            verdict,
        )
    out.print(table)

    m = results["serving_score_memory"]["details"]
    memory = Table(
        title=f"peak RSS, {m['file_rows']:,}-row Parquet ({m['file_mb_on_disk']:.0f} MiB on disk, "
        f"{m['frame_mb_in_memory']:.0f} MiB as a DataFrame, {m['read_columns_mb_in_memory']:.0f} "
        f"MiB of it in the columns scored)"
    )
    for column in ("run", "peak MiB", "above baseline", "x DataFrame", "seconds"):
        memory.add_column(column, justify="left" if column == "run" else "right")
    labels = {
        "baseline": f"creditgov score, {BASELINE_ROWS:,} rows (imports + model)",
        "streamed": f"creditgov score, chunks of {m['chunk_rows']:,}",
        "streamed_small_chunks": f"creditgov score, chunks of {m['small_chunk_rows']:,}",
        "whole_file": "pd.read_parquet + one predict",
    }
    for key, label in labels.items():
        above = m["peak_mb"][key] - m["peak_mb"]["baseline"]
        memory.add_row(
            label,
            f"{m['peak_mb'][key]:.0f}",
            f"{above:+.0f}",
            f"{m['peak_mb'][key] / m['frame_mb_in_memory']:.2f}",
            f"{m['wall_s'][key]:.1f}",
        )
    out.print(memory)

    d = results["serving_rest_latency"]["details"]
    latency = Table(title=f"REST one-row latency, {d['requests']} sequential keep-alive requests")
    for column in (
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "in-process p50 ms",
        "approve/decline p50",
    ):
        latency.add_column(column, justify="right")
    declined = "—" if d["p50_declined_ms"] is None else f"{d['p50_declined_ms']:.1f}"
    latency.add_row(
        f"{d['p50_ms']:.1f}",
        f"{d['p90_ms']:.1f}",
        f"{d['p99_ms']:.1f}",
        f"{d['max_ms']:.1f}",
        f"{d['in_process_p50_ms']:.1f}",
        f"{d['p50_approved_ms']:.1f} / {declined} ({d['declined_requests']} declined)",
    )
    out.print(latency)


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.serving",
        description="The served model against bare LightGBM; batch memory; REST latency.",
    )
    parser.add_argument("--rows", type=int, default=200_000, help="approved rows for (a)")
    parser.add_argument(
        "--reason-rows", type=int, default=20_000, help="declined rows for (b) (TreeSHAP is slow)"
    )
    parser.add_argument(
        "--chunk-rows", type=int, default=50_000, help="(c) scores a file of 10x this many rows"
    )
    parser.add_argument("--requests", type=int, default=300, help="REST requests for (d)")
    parser.add_argument("--train-rows", type=int, default=50_000, help="rows to train on")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=None, help="also write the document here")
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3: a median of fewer is not a median")
    import logging

    import mlflow  # noqa: F401  # configures its logger on import; quieten it after that

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    err = Console(stderr=True)
    t0 = time.perf_counter()
    document = run(
        args.rows,
        reason_rows=args.reason_rows,
        chunk_rows=args.chunk_rows,
        requests=args.requests,
        train_rows=args.train_rows,
        repeats=args.repeats,
        seed=args.seed,
        log=lambda m: err.print(f"[dim]{time.perf_counter() - t0:7.1f}s[/] {m}", highlight=False),
    )
    if args.json is not None:
        args.json.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    print_tables(document)
    return 0


if __name__ == "__main__":
    sys.exit(main())
