"""Run logging: where runs go, who ran them, and logging in batches.

Everything a job logs goes through here so that it is batched (`log_batch`, not one
call per value — a remote tracking server pays a round trip per call) and so that
the identity, lineage and library versions are recorded the same way every time.
"""

from __future__ import annotations

import getpass
import importlib.metadata
import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from creditgov.errors import BadInput

__all__ = [
    "DEFAULT_URI",
    "LIBRARIES",
    "TrackingUnavailable",
    "TrialLogger",
    "check_server",
    "check_sqlite",
    "git_commit",
    "identity",
    "library_versions",
    "log_batch",
    "resolve_tracking_uri",
    "use_tracking",
]

DEFAULT_URI = "sqlite:///mlflow.db"
LIBRARIES = (
    "creditgov",
    "mlflow",
    "lightgbm",
    "optuna",
    "optbinning",
    "scikit-learn",
    "pandas",
    "numpy",
)
#: MLflow's per-request limits for log_batch.
_MAX_PARAMS, _MAX_METRICS, _MAX_TAGS = 100, 1000, 100


def resolve_tracking_uri(configured: str | None) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here (CLI.md)."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


#: MLflow's client retry settings for a tracking server, unless the caller set them: a few
#: quick retries (1 s, 2 s, 4 s apart) ride out a server restart, and a dead server is
#: reported in seconds rather than after MLflow's default of 7 retries backing off to minutes.
HTTP_RETRY_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}


class TrackingUnavailable(BadInput):
    """The tracking server cannot be reached, or refuses who we say we are (exit 2)."""


def use_tracking(uri: str) -> MlflowClient:
    """Point MLflow at `uri`; for a server, check it answers (bounded retries) and knows us."""
    if uri.startswith(("http://", "https://")):
        for key, value in HTTP_RETRY_DEFAULTS.items():
            os.environ.setdefault(key, value)
        check_server(uri)
    elif uri.startswith("sqlite:"):
        check_sqlite(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def check_server(uri: str) -> None:
    """One clear error instead of a stack trace or a hang, before any run is started."""
    from mlflow.exceptions import MlflowException
    from mlflow.utils.rest_utils import MlflowHostCreds, http_request

    where = (
        "tracking.uri" if uri != os.environ.get("MLFLOW_TRACKING_URI") else "$MLFLOW_TRACKING_URI"
    )
    retries = os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"]
    try:
        health = http_request(MlflowHostCreds(uri), "/health", "GET")
    except MlflowException as err:
        raise TrackingUnavailable(
            f"tracking server {uri} ({where}) is unreachable after {retries} retries "
            f"({_reason(err)}); start it (`make team-up`) or fix {where}"
        ) from None
    if health.status_code != 200:
        raise TrackingUnavailable(
            f"tracking server {uri} ({where}) answered /health with HTTP {health.status_code}"
        )
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except MlflowException as err:
        if err.error_code == "UNAUTHENTICATED":
            user = os.environ.get("MLFLOW_TRACKING_USERNAME")
            raise TrackingUnavailable(
                f"tracking server {uri} did not accept "
                + (f"user {user!r}" if user else "an anonymous request")
                + ": set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to your team account"
            ) from None
        raise


def check_sqlite(uri: str) -> None:
    """A store another process holds locked past SQLite's busy timeout: one line, not a trace.

    SQLite waits (SQLAlchemy's default busy timeout, 5 s per statement) and MLflow retries
    opening the engine; both are bounded, so this answers in seconds.
    """
    started = time.monotonic()
    try:
        MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
    except Exception as err:
        if "database is locked" not in str(err):
            raise
        raise TrackingUnavailable(
            f"SQLite tracking store {uri} stayed locked by another process for "
            f"{time.monotonic() - started:.0f} s; retry when it is done, or share a tracking "
            f"server instead (`make team-up`)"
        ) from None


def _reason(err: Exception) -> str:
    """The last cause in a requests/urllib3 error, e.g. 'Connection refused'."""
    text = str(err)
    for marker in (
        "Connection refused",
        "Name or service not known",
        "timed out",
        "No route to host",
    ):
        if marker in text:
            return marker
    return text.splitlines()[0][:160]


def identity() -> str:
    """Who is acting: the authenticated MLflow user when set, else the login name."""
    return os.environ.get("MLFLOW_TRACKING_USERNAME") or getpass.getuser()


def git_commit(folder: Path) -> str | None:
    """The commit of the checkout holding `folder` (with '-dirty' if it has changes)."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha or None


def library_versions() -> dict[str, str]:
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def log_batch(
    client: MlflowClient,
    run_id: str,
    *,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    steps: Mapping[str, Iterable[float]] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Log everything in as few `log_batch` requests as MLflow's limits allow."""
    now = int(time.time() * 1000)
    param_list = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
    metric_list = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
    for key, values in (steps or {}).items():
        metric_list.extend(Metric(key, float(v), now, i) for i, v in enumerate(values))
    tag_list = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
    for chunk in _chunks(param_list, _MAX_PARAMS):
        client.log_batch(run_id, params=chunk)
    for chunk in _chunks(metric_list, _MAX_METRICS):
        client.log_batch(run_id, metrics=chunk)
    for chunk in _chunks(tag_list, _MAX_TAGS):
        client.log_batch(run_id, tags=chunk)


class TrialLogger:
    """An Optuna trial hook: each finished trial becomes one child run of the job's run."""

    def __init__(
        self,
        client: MlflowClient,
        *,
        experiment_id: str,
        parent_run_id: str,
        metric: str,
        extra_metrics: tuple[str, ...] = (),
    ) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.metric = metric
        #: A multi-objective study's other objectives (the fairness ratio), logged beside it.
        self.extra_metrics = extra_metrics

    def __call__(self, record: Any, best: float | None) -> None:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"trial-{record.number:03d}",
            tags={"mlflow.parentRunId": self.parent_run_id, "creditgov.kind": "tuning-trial"},
        )
        metrics: dict[str, float] = {"trial_duration_s": record.duration_s}
        if record.value is not None:
            metrics[f"valid_{self.metric}"] = record.value
        for name, value in zip(self.extra_metrics, record.values[1:], strict=False):
            if value == value:  # NaN: the ratio could not be computed for this trial
                metrics[f"valid_{name}"] = value
        if record.best_iteration is not None:
            metrics["best_iteration"] = float(record.best_iteration)
        log_batch(
            self.client,
            run.info.run_id,
            params=record.params,
            metrics=metrics,
            steps={"valid_curve": record.curve},
            tags={"optuna.trial_number": str(record.number), "optuna.state": record.state},
        )
        status = {"COMPLETE": "FINISHED", "PRUNED": "KILLED"}.get(record.state, "FAILED")
        self.client.set_terminated(run.info.run_id, status=status)
