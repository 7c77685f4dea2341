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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

__all__ = [
    "DEFAULT_URI",
    "LIBRARIES",
    "TrialLogger",
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


def use_tracking(uri: str) -> MlflowClient:
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


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
    import time

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
        self, client: MlflowClient, *, experiment_id: str, parent_run_id: str, metric: str
    ) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.metric = metric

    def __call__(self, record: Any, best: float | None) -> None:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"trial-{record.number:03d}",
            tags={"mlflow.parentRunId": self.parent_run_id, "creditgov.kind": "tuning-trial"},
        )
        metrics: dict[str, float] = {"trial_duration_s": record.duration_s}
        if record.value is not None:
            metrics[f"valid_{self.metric}"] = record.value
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
