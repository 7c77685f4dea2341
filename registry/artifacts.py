"""Fetch what was registered: the model's state, its drift reference, the run's config.

`creditgov evaluate`, `drift` and `report` start from a model URI (`models:/name/3`,
`models:/name@champion`) and need the pieces the job logged; this module resolves the
URI to a version and run and reads those pieces back as plain data.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from creditgov.errors import BadInput

__all__ = [
    "ModelBundle",
    "ModelNotFound",
    "download_reports",
    "load_bundle",
    "model_alias",
    "resolve_version",
]

_URI = re.compile(r"^models:/(?P<name>[^/@]+)(?:/(?P<version>\d+)|@(?P<alias>[\w-]+))$")


class ModelNotFound(BadInput):
    """The URI names no registered version; the message says how to list them."""


@dataclass(frozen=True)
class ModelBundle:
    name: str
    version: str
    run_id: str
    state: dict[str, Any]
    #: The model kind's text files by artifact name (LightGBM: {"booster": <model.txt>}).
    files: dict[str, str]
    reference: dict[str, Any] | None
    config: dict[str, Any] | None
    tags: dict[str, str]


def model_alias(uri: str) -> str | None:
    """The alias of a `models:/name@alias` URI; None for `models:/name/N` or anything else."""
    match = _URI.match(uri)
    return match["alias"] if match else None


def resolve_version(client: MlflowClient, uri: str) -> tuple[str, str]:
    """(name, version) for `models:/name/N` or `models:/name@alias`."""
    match = _URI.match(uri)
    if not match:
        raise ModelNotFound(
            f"{uri}: not a registered-model URI; use models:/NAME/VERSION or models:/NAME@ALIAS"
        )
    name = match["name"]
    try:
        if match["alias"]:
            version = client.get_model_version_by_alias(name, match["alias"]).version
        else:
            version = client.get_model_version(name, match["version"]).version
    except MlflowException:
        raise ModelNotFound(
            f"{uri}: no such model version; `creditgov models list` shows what is registered"
        ) from None
    return name, str(version)


def load_bundle(client: MlflowClient, uri: str, *, local: Path | None = None) -> ModelBundle:
    """The version's state, model files, drift reference and config as plain data.

    With `local` (a copy already checked by `registry.governance.loading.verified_copy`)
    the model's files are read from that copy, not downloaded again.
    """
    name, version = resolve_version(client, uri)
    mv = client.get_model_version(name, version)
    if local is not None:
        state, files, reference = _read_model(local, name, version)
    else:
        with tempfile.TemporaryDirectory(prefix="creditgov-bundle-") as tmp:
            folder = mlflow.artifacts.download_artifacts(f"models:/{name}/{version}", dst_path=tmp)
            state, files, reference = _read_model(Path(folder), name, version)
    config = None
    if mv.run_id:
        try:
            config = mlflow.artifacts.load_dict(f"runs:/{mv.run_id}/config/resolved_config.json")
        except (MlflowException, OSError):
            config = None
    return ModelBundle(
        name, version, mv.run_id or "", state, files, reference, config, dict(mv.tags)
    )


def _read_model(
    local: Path, name: str, version: str
) -> tuple[dict[str, Any], dict[str, str], dict[str, Any] | None]:
    state = json.loads(_one(local, "state.json").read_text(encoding="utf-8"))
    named = dict((state.get("model") or {}).get("files") or {})
    if any(Path(str(file_name)).name != file_name for file_name in named.values()):
        raise ModelNotFound(f"models:/{name}/{version}: its state names a model file by path")
    files = {
        key: _one(local, file_name).read_text(encoding="utf-8") for key, file_name in named.items()
    }
    reference_file = next(local.rglob("reference_profile.json"), None)
    reference = json.loads(reference_file.read_text(encoding="utf-8")) if reference_file else None
    return state, files, reference


def _one(folder: Path, name: str) -> Path:
    found = next(folder.rglob(name), None)
    if found is None:
        raise ModelNotFound(f"{folder}: the model has no {name}; was it logged by creditgov?")
    return found


def download_reports(client: MlflowClient, name: str, version: str, out: Path) -> list[Path]:
    """Copy the version's report files (report.html, evidence.json, model_card.md) to `out`."""
    mv = client.get_model_version(name, version)
    if not mv.run_id:
        raise ModelNotFound(f"models:/{name}/{version} has no source run, so no report")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="creditgov-reports-") as tmp:
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(f"runs:/{mv.run_id}/reports", dst_path=tmp)
            )
        except (MlflowException, OSError):
            raise ModelNotFound(
                f"models:/{name}/{version}: its run has no reports/ artifacts"
            ) from None
        written = []
        for source in sorted(p for p in local.rglob("*") if p.is_file()):
            target = out / source.relative_to(local)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            written.append(target)
    return written
