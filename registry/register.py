"""Log the served model and register it as a candidate version.

The model goes in as MLflow models-from-code: `scoring_model.py` plus its state
(LightGBM's text model and one JSON document) — no pickle anywhere. The version is
tagged with its lineage and `validation_status=pending` until the gates have spoken.
"""

from __future__ import annotations

import importlib.metadata
import json
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema

from evaluation.gates import GateResult
from registry.governance.rules import ValidationRecord

__all__ = [
    "MODEL_FILE",
    "LoggedModel",
    "log_scoring_model",
    "quiet_mlflow_advice",
    "register_version",
    "scoring_requirements",
    "signature_for",
    "validation_record",
]

MODEL_FILE = Path(__file__).with_name("scoring_model.py")
#: MLflow warnings that do not apply to this model: its signature is explicit.
NOISE = (
    "type hints to the `predict` method",
    "Inferred schema contains integer column",  # integer features are typed long on purpose
)


def quiet_mlflow_advice() -> None:
    """Drop MLflow's type-hint advice from the warning stream.

    MLflow forces that warning on with its own `simplefilter("once")`, which outranks any
    filter of ours, so it is dropped where warnings are shown instead.
    """
    shown = warnings.showwarning
    if getattr(shown, "_creditgov_quiet", False):
        return

    def showwarning(message, category, filename, lineno, file=None, line=None):
        if any(text in str(message) for text in NOISE):
            return
        shown(message, category, filename, lineno, file, line)

    showwarning._creditgov_quiet = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


OUTPUT_COLUMNS = (("probability", "double"), ("score", "double"), ("decision", "string"))


@dataclass(frozen=True)
class LoggedModel:
    model_uri: str
    model_id: str | None


def scoring_requirements() -> list[str]:
    """The served model needs these four and nothing of ours."""
    return [
        f"{name}=={importlib.metadata.version(name)}"
        for name in ("mlflow", "numpy", "pandas", "lightgbm")
    ]


def signature_for(features: list[Mapping[str, Any]], reasons: int = 0) -> ModelSignature:
    """Each feature as the type it had in training (double, long or string), required."""
    inputs = Schema([ColSpec(f["dtype"], f["name"]) for f in features])
    columns = [*OUTPUT_COLUMNS, *((f"reason_{i + 1}", "string") for i in range(reasons))]
    outputs = Schema([ColSpec(kind, name) for name, kind in columns])
    return ModelSignature(inputs=inputs, outputs=outputs)


def log_scoring_model(
    *,
    state: Mapping[str, Any],
    files: Mapping[str, tuple[str, str]],
    input_example: pd.DataFrame,
    reference: Mapping[str, Any] | None = None,
) -> LoggedModel:
    """Log the served model under the active run; returns its URI.

    `files` are the model kind's text files by artifact name, (file name, text): the
    served model finds each under its artifact name (LightGBM's `booster` is model.txt).
    """
    quiet_mlflow_advice()
    with tempfile.TemporaryDirectory(prefix="creditgov-model-") as tmp:
        folder = Path(tmp)
        (folder / "state.json").write_text(
            json.dumps(state, indent=1, sort_keys=True), encoding="utf-8"
        )
        artifacts = {"state": str(folder / "state.json")}
        for key, (file_name, text) in files.items():
            (folder / file_name).write_text(text, encoding="utf-8")
            artifacts[key] = str(folder / file_name)
        if reference is not None:
            # The drift reference travels with the model: `creditgov drift` needs only the URI.
            (folder / "reference_profile.json").write_text(
                json.dumps(reference, indent=1), encoding="utf-8"
            )
            artifacts["reference"] = str(folder / "reference_profile.json")
        with warnings.catch_warnings():
            warnings.simplefilter(
                "ignore", UserWarning
            )  # type-hint advice; our signature is explicit
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(MODEL_FILE),
                artifacts=artifacts,
                signature=signature_for(
                    list(state["features"]), int((state.get("reasons") or {}).get("k", 0))
                ),
                input_example=input_example,
                pip_requirements=scoring_requirements(),
            )
    return LoggedModel(model_uri=info.model_uri, model_id=getattr(info, "model_id", None))


def register_version(
    client: MlflowClient,
    *,
    name: str,
    model_uri: str,
    run_id: str,
    tags: Mapping[str, str],
    model_id: str | None = None,
) -> str:
    """Register `model_uri` under `name`; returns the new version number as text.

    `model_id` (the logged model's id) is required by a tracking server for a
    `models:/m-...` source; a local store infers it.
    """
    try:
        client.get_registered_model(name)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(name, description="Registered by creditgov train.")
    version = client.create_model_version(
        name, model_uri, run_id=run_id, tags=dict(tags), model_id=model_id
    )
    return str(version.version)


def validation_record(
    name: str, version: str, gates: GateResult, *, run_id: str, reports: Mapping[str, str]
) -> ValidationRecord:
    """The gate verdict, each gate's result and where the report is, as the registry records them.

    A failed version stays registered so reviewers can see why; promotion refuses it.
    Written by `registry.governance.rules.validate` (locally, or by the team server).
    """
    tags = {
        f"gate.{i}.{outcome.metric}.{outcome.split}": outcome.describe()
        for i, outcome in enumerate(gates.outcomes)
    }
    for kind, path in reports.items():
        tags[f"report.{kind}"] = f"runs:/{run_id}/{path}"
    description = (
        f"validation {gates.status}; reviewer's report: runs:/{run_id}/{reports.get('html', '')} "
        f"(fetch with `creditgov report {name} {version} --out DIR`)"
    )
    return ValidationRecord(
        status=gates.status, gates=gates.to_json(), tags=tags, description=description
    )
