"""Purge a run whose PII scan found personal data, so no copy waits for `mlflow gc`.

Failing the run is not enough: MLflow only marks a deleted run, and its params, tags and
artifact files — the copies the scan found — stay in the tracking store and the artifact
folders until someone runs `mlflow gc`. So `purge_run` removes what a scan with hits read
(`registry/pii_scan.py`): the artifact files of the run, its trials and its logged models,
their rows in the tracking store (params and tags are immutable: the whole run goes, as
`mlflow gc` would do it) and the version tags that hold a hit. It is apart from the scan
because it deletes, where the scan only reads.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from registry.pii_scan import PiiScan

__all__ = ["PiiPurge", "purge_run"]


@dataclass(frozen=True)
class PiiPurge:
    """What `purge_run` removed: counts, never a value."""

    runs: int  # the job's run and its trials
    params: int
    tags: int
    files: int  # artifact files of the runs and the logged models
    logged_models: int
    version_tags: int
    hard: bool  # the runs' rows are gone; False: only marked deleted (`mlflow gc` removes them)
    run_ids: tuple[str, ...] = ()
    left: tuple[str, ...] = ()  # places with a hit the purge could not remove, or failed on

    def describe(self) -> str:
        """One line of counts: "purged 15 artifact files, 1 logged model and 1 run with its
        87 params and 14 tags"."""

        def n(count: int, noun: str) -> str:
            return f"{count} {noun}{'' if count == 1 else 's'}"

        parts = [n(self.files, "artifact file")]
        if self.logged_models:
            parts.append(n(self.logged_models, "logged model"))
        if self.version_tags:
            parts.append(n(self.version_tags, "version tag"))
        its = "its" if self.runs == 1 else "their"
        rows = f"{its} {n(self.params, 'param')} and {n(self.tags, 'tag')}"
        if self.hard:
            line = f"purged {', '.join(parts)} and {n(self.runs, 'run')} with {rows}"
        else:
            line = (
                f"purged {', '.join(parts)} and marked {n(self.runs, 'run')} deleted ({rows} "
                f"stay until `mlflow gc --run-ids {','.join(self.run_ids)}` runs against the "
                f"tracking database)"
            )
        if self.left:
            line += f"; not purged: {', '.join(self.left)}"
        return line


def _tracking_store(client: MlflowClient) -> Any:
    """The client's tracking store (SQLAlchemy, file or REST): what `mlflow gc` works on."""
    return getattr(getattr(client, "_tracking_client", None), "store", None)


def _artifact_files(repo: Any, path: str | None = None) -> int:
    count = 0
    for item in repo.list_artifacts(path):
        count += _artifact_files(repo, item.path) if item.is_dir else 1
    return count


def _delete_artifacts(uri: str) -> int:
    """Delete every artifact file under `uri`, as `mlflow gc` does; how many there were."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository(uri)
    count = _artifact_files(repo)
    repo.delete_artifacts()
    return count


def _sqlite_files(*uris: str) -> list[Path]:
    prefix = "sqlite:///"
    return list(
        dict.fromkeys(Path(u[len(prefix) :].split("?")[0]) for u in uris if u.startswith(prefix))
    )


def purge_run(client: MlflowClient, scan: PiiScan) -> PiiPurge:
    """Remove what `scan` read of its run, so no copy of a hit waits for `mlflow gc`.

    The artifact files of the run, its trials and its logged models are deleted, and so
    are their rows in the tracking store where it can delete rows (a database: what
    `mlflow gc --run-ids` does, in this process); elsewhere (a tracking server) the runs
    are marked deleted and their params wait for `mlflow gc` there. Version tags holding
    a hit are deleted (the job deletes the version itself). The registered model's tags
    and description are its audit chain and its owner's: a hit there is reported in
    `left`, not removed. A SQLite store is vacuumed, so deleted rows leave no copy in the
    file's free pages. End the run first: a purged run cannot be ended.

    Every step that fails is named in `left` and the others still run: a purge that
    stops at the first error would leave the most behind.
    """
    store = _tracking_store(client)
    hard = hasattr(store, "_hard_delete_run")
    left: list[str] = []
    files = params = tags = runs = models = version_tags = 0
    for model_id in scan.model_ids:
        try:
            model = client.get_logged_model(model_id)
            files += _delete_artifacts(model.artifact_location)
            client.delete_logged_model(model_id)
            if hasattr(store, "_hard_delete_logged_model"):
                store._hard_delete_logged_model(model_id)
            models += 1
        except (MlflowException, OSError) as err:
            left.append(f"logged model {model_id} ({type(err).__name__})")
    # The trials first: a run's children go before it, as in `mlflow gc`.
    for run_id in (*scan.run_ids[1:], *scan.run_ids[:1]):
        try:
            run = client.get_run(run_id)
            files += _delete_artifacts(run.info.artifact_uri)
            if run.info.lifecycle_stage != "deleted":
                client.delete_run(run_id)
            if hard:
                store._hard_delete_run(run_id)
            runs += 1
            params += len(run.data.params)
            tags += len(run.data.tags)
        except (MlflowException, OSError) as err:
            left.append(f"run {run_id} ({type(err).__name__})")
    keys = dict.fromkeys(h.owner[1] for h in scan.hits if h.owner[0] == "version_tag")
    for key in keys:
        try:
            client.delete_model_version_tag(scan.model_name or "", scan.version or "", key)
            version_tags += 1
        except MlflowException as err:
            left.append(f"version tag {key!r} ({type(err).__name__})")
    left += list(
        dict.fromkeys(h.place for h in scan.hits if h.owner[0].startswith("registered_model"))
    )
    uris = [client.tracking_uri, getattr(client, "_registry_uri", "") or ""]
    for path in _sqlite_files(*uris):
        try:
            with sqlite3.connect(path, timeout=30) as db:
                db.execute("VACUUM")
        except sqlite3.Error as err:
            left.append(f"the free pages of {path.name} ({type(err).__name__}: not vacuumed)")
    return PiiPurge(
        runs=runs,
        params=params,
        tags=tags,
        files=files,
        logged_models=models,
        version_tags=version_tags,
        hard=hard,
        run_ids=scan.run_ids,
        left=tuple(left),
    )
