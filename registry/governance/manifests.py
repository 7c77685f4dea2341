"""Manifests: the sha256 of every file an approval rests on, and the model-file integrity check.

An approval is worth only as much as the files it looked at. `evidence_manifest` hashes
the model artifacts, the run's config and reports and the data digest, and the approval
records the result (`evidence_sha256`), so promotion can refuse evidence changed since.
`model_manifest` hashes the model files alone at registration (kept in the `registered`
audit event), and `verify_model_files` refuses a version whose files were edited,
deleted or added in the artifact store afterwards. Keys are readable locations
(`model/state.json`, `run/reports/report.html`), so a refusal names the file.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from registry.governance.chain import digest, read_chain
from registry.governance.errors import GovernanceError

__all__ = [
    "evidence_manifest",
    "manifest_sha256",
    "model_manifest",
    "registered_files",
    "verify_model_files",
]


def evidence_manifest(client: MlflowClient, name: str, version: str) -> dict[str, str]:
    """sha256 of each file the approval rests on: model artifacts, config, data, reports.

    Keys are readable locations (`model/state.json`, `run/reports/report.html`,
    `data_digest`), so a refusal can name the file that changed.
    """
    mv = client.get_model_version(name, version)
    manifest: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="creditgov-evidence-") as tmp:
        manifest.update(_model_files(name, version, Path(tmp)))
        if mv.run_id:
            for folder in ("config", "reports"):
                try:
                    local = Path(
                        mlflow.artifacts.download_artifacts(
                            f"runs:/{mv.run_id}/{folder}", dst_path=f"{tmp}/{folder}"
                        )
                    )
                except (MlflowException, OSError):
                    continue
                for path in sorted(p for p in local.rglob("*") if p.is_file()):
                    manifest[f"run/{folder}/{path.relative_to(local).as_posix()}"] = _file_sha(path)
    manifest["data_digest"] = hashlib.sha256(
        str(mv.tags.get("data_digest", "")).encode()
    ).hexdigest()
    return manifest


def model_manifest(client: MlflowClient, name: str, version: str) -> dict[str, str]:
    """sha256 of each file of the registered model, keyed `model/<path>` as in the evidence.

    Recorded in the version's `registered` audit event, so a file edited or deleted in
    the artifact store afterwards is caught by `verify_model_files`.
    """
    with tempfile.TemporaryDirectory(prefix="creditgov-model-files-") as tmp:
        return _model_files(name, version, Path(tmp))


def _model_files(name: str, version: str, tmp: Path) -> dict[str, str]:
    try:
        model_dir = Path(
            mlflow.artifacts.download_artifacts(
                f"models:/{name}/{version}", dst_path=f"{tmp}/model"
            )
        )
    except (MlflowException, OSError):
        return {}  # the whole model folder is gone: every recorded file counts as deleted
    return {
        f"model/{path.relative_to(model_dir).as_posix()}": _file_sha(path)
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file())
    }


def registered_files(client: MlflowClient, name: str, version: str) -> dict[str, str] | None:
    """The model files recorded when `version` was registered, or None without a record."""
    for entry in read_chain(client, name):
        if entry.event == "registered" and entry.version == version:
            files = entry.details.get("model_files")
            return dict(files) if isinstance(files, Mapping) else None
    return None


def verify_model_files(client: MlflowClient, name: str, version: str) -> None:
    """Refuse a version whose model files differ from those recorded at registration.

    Serving or promoting it would run code and numbers nobody trained or reviewed; the
    message names each edited, deleted or added file.
    """
    recorded = registered_files(client, name, version)
    if recorded is None:
        raise GovernanceError(
            f"models:/{name}/{version} has no record of its model files from registration "
            f"(not registered by `creditgov train`), so its integrity cannot be checked; retrain it"
        )
    present = model_manifest(client, name, version)
    problems = [
        f"{key} {'deleted' if key not in present else 'edited'}"
        for key in sorted(recorded)
        if present.get(key) != recorded[key]
    ] + [f"{key} added" for key in sorted(set(present) - set(recorded))]
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
