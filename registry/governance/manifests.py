"""Manifests: the sha256 of every file an approval rests on, and the model-file integrity check.

An approval is worth only as much as the files it looked at. `evidence_manifest` hashes
the model artifacts, the run's config and reports and the data digest, and the approval
records the result (`evidence_sha256`), so promotion can refuse evidence changed since.
`model_manifest` hashes the model files alone at registration (kept in the `registered`
audit event), and `verify_model_files` refuses a version whose files were edited,
deleted or added in the artifact store afterwards. Keys are readable locations
(`model/state.json`, `run/reports/report.html`), so a refusal names the file.

Where the files come from is an `ArtifactSource`: a client downloads them through the
tracking server (`DOWNLOADS`); the team server reads its own artifact store.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from registry.governance.chain import digest, read_chain
from registry.governance.errors import GovernanceError

__all__ = [
    "DOWNLOADS",
    "ArtifactSource",
    "Downloads",
    "evidence_manifest",
    "file_problems",
    "folder_manifest",
    "manifest_sha256",
    "model_manifest",
    "registered_files",
    "verify_model_files",
]


class ArtifactSource(Protocol):
    """Where the files behind `models:/NAME/VERSION` or `runs:/RUN_ID/FOLDER` are read from.

    `fetch` returns a local folder holding them (a download into `dst`, or the store's
    own folder); it raises `MlflowException` or `OSError` when they are gone.
    """

    def fetch(self, uri: str, dst: Path) -> Path: ...


@dataclass(frozen=True)
class Downloads:
    """Through MLflow, as any client sees the artifact store."""

    def fetch(self, uri: str, dst: Path) -> Path:
        dst.mkdir(parents=True, exist_ok=True)
        return Path(mlflow.artifacts.download_artifacts(uri, dst_path=str(dst)))


DOWNLOADS = Downloads()


def evidence_manifest(
    client: MlflowClient, name: str, version: str, *, files: ArtifactSource = DOWNLOADS
) -> dict[str, str]:
    """sha256 of each file the approval rests on: model artifacts, config, data, reports.

    Keys are readable locations (`model/state.json`, `run/reports/report.html`,
    `data_digest`), so a refusal can name the file that changed.
    """
    mv = client.get_model_version(name, version)
    manifest: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="creditgov-evidence-") as tmp:
        manifest.update(_model_files(name, version, Path(tmp), files))
        if mv.run_id:
            for folder in ("config", "reports"):
                try:
                    local = files.fetch(f"runs:/{mv.run_id}/{folder}", Path(tmp) / folder)
                except (MlflowException, OSError):
                    continue
                for path in sorted(p for p in local.rglob("*") if p.is_file()):
                    manifest[f"run/{folder}/{path.relative_to(local).as_posix()}"] = _file_sha(path)
    manifest["data_digest"] = hashlib.sha256(
        str(mv.tags.get("data_digest", "")).encode()
    ).hexdigest()
    return manifest


def model_manifest(
    client: MlflowClient, name: str, version: str, *, files: ArtifactSource = DOWNLOADS
) -> dict[str, str]:
    """sha256 of each file of the registered model, keyed `model/<path>` as in the evidence.

    Recorded in the version's `registered` audit event, so a file edited or deleted in
    the artifact store afterwards is caught by `verify_model_files`.
    """
    with tempfile.TemporaryDirectory(prefix="creditgov-model-files-") as tmp:
        return _model_files(name, version, Path(tmp), files)


def _model_files(name: str, version: str, tmp: Path, files: ArtifactSource) -> dict[str, str]:
    try:
        model_dir = files.fetch(f"models:/{name}/{version}", tmp / "model")
    except (MlflowException, OSError):
        return {}  # the whole model folder is gone: every recorded file counts as deleted
    return folder_manifest(model_dir)


#: What MLflow's client writes into a `models:/` download (the name and version it asked
#: for); not a file of the stored model, so a copy read in place and a download agree.
DOWNLOAD_NOTE = "model/registered_model_meta"


def folder_manifest(folder: Path) -> dict[str, str]:
    """sha256 of every file under a local copy of a model, keyed `model/<path>`."""
    manifest = {
        f"model/{path.relative_to(folder).as_posix()}": _file_sha(path)
        for path in sorted(p for p in folder.rglob("*") if p.is_file())
    }
    manifest.pop(DOWNLOAD_NOTE, None)
    return manifest


def file_problems(recorded: Mapping[str, str], present: Mapping[str, str]) -> list[str]:
    """Each file edited, deleted or added, against the manifest recorded at registration."""
    # Local stores once recorded it with the rest; it is never compared.
    recorded = {k: v for k, v in recorded.items() if k != DOWNLOAD_NOTE}
    return [
        f"{key} {'deleted' if key not in present else 'edited'}"
        for key in sorted(recorded)
        if present.get(key) != recorded[key]
    ] + [f"{key} added" for key in sorted(set(present) - set(recorded))]


def registered_files(client: MlflowClient, name: str, version: str) -> dict[str, str] | None:
    """The model files recorded when `version` was registered, or None without a record."""
    for entry in read_chain(client, name):
        if entry.event == "registered" and entry.version == version:
            files = entry.details.get("model_files")
            return dict(files) if isinstance(files, Mapping) else None
    return None


def verify_model_files(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    files: ArtifactSource = DOWNLOADS,
    local: Path | None = None,
) -> None:
    """Refuse a version whose model files differ from those recorded at registration.

    Serving or promoting it would run code and numbers nobody trained or reviewed; the
    message names each edited, deleted or added file. With `local` (a downloaded copy),
    that copy is what is checked, so the copy verified is the copy loaded.
    """
    recorded = registered_files(client, name, version)
    if recorded is None:
        raise GovernanceError(
            f"models:/{name}/{version} has no record of its model files from registration "
            f"(not registered by `creditgov train`), so its integrity cannot be checked; retrain it"
        )
    present = (
        folder_manifest(local) if local is not None else model_manifest(
            client, name, version, files=files
        )
    )  # fmt: skip
    problems = file_problems(recorded, present)
    if problems:
        raise GovernanceError(
            f"models:/{name}/{version}: model files changed since registration "
            f"({', '.join(problems)}); it is refused: retrain and register a new version"
        )


def _file_sha(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def manifest_sha256(manifest: Mapping[str, str]) -> str:
    """One hash of a whole manifest, independent of key order: what an approval records."""
    return digest(dict(sorted(manifest.items())))
