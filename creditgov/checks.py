"""Checks on a registered model after training: re-test on new labelled data, drift.

Both start from a model URI and use only what the job stored with the model (its state,
its drift reference, the run's resolved config), so they work months later against the
same tracking server, on any machine. A URI through an alias the audit chain did not set
(or a champion the chain never approved) is refused before anything is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creditgov.config import JobConfig

if TYPE_CHECKING:
    from evaluation.drift import DriftResult
    from evaluation.evidence import Evidence
    from registry.artifacts import ModelBundle

__all__ = ["DriftCheck", "Retest", "check_drift", "fetch_reports", "retest"]


@dataclass(frozen=True)
class Retest:
    model_name: str
    model_version: str
    evidence: Evidence
    reports: Mapping[str, str]

    def summary(self) -> dict[str, Any]:
        evidence = self.evidence
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            "metrics": evidence.metric_values(),
            "validation_status": evidence.validation_status,
            "gates": evidence.gates.to_json(),
            "reports": dict(self.reports),
        }


@dataclass(frozen=True)
class DriftCheck:
    model_name: str
    model_version: str
    result: DriftResult
    reports: Mapping[str, str]

    def summary(self) -> dict[str, Any]:
        return {
            "model_name": self.model_name,
            "model_version": self.model_version,
            **self.result.to_json(),
            "reports": dict(self.reports),
        }


def _bundle(model_uri: str) -> tuple[ModelBundle, JobConfig]:
    """The model behind `model_uri`, read from one copy whose files verified (see `verified_copy`)."""
    import tempfile

    import mlflow

    from creditgov.config import ConfigError
    from registry.artifacts import load_bundle
    from registry.governance.loading import verified_copy
    from registry.tracking import resolve_tracking_uri, use_tracking

    client = use_tracking(resolve_tracking_uri(None))
    with tempfile.TemporaryDirectory(prefix="creditgov-model-") as tmp:
        model = verified_copy(client, model_uri, Path(tmp), tracking_uri=mlflow.get_tracking_uri())
        # pinned: the alias checked, and the files read are those just verified
        bundle = load_bundle(client, model.pinned, local=model.folder)
    if bundle.config is None:
        raise ConfigError(
            f"{model_uri}: its run has no config/resolved_config.json; was it trained by creditgov?"
        )
    return bundle, JobConfig.model_validate(bundle.config)


def _context(bundle: Any, data: Path) -> dict[str, Any]:
    return {
        "model_version": bundle.version,
        "run_id": bundle.run_id,
        "data": data.name,
        "checked": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def retest(model_uri: str, data: Path, *, report_dir: Path | None = None) -> Retest:
    """The same evidence as training, on a new labelled batch (it plays the test split)."""
    from creditgov.config import ConfigError
    from creditgov.stages import explain_settings
    from evaluation.drift_reference import ReferenceProfile
    from evaluation.evidence import evaluate_batch
    from evaluation.reasons import ReasonCatalogue
    from evaluation.report import write_report
    from training.data import load_dataset
    from training.models.spec import spec_from_state

    bundle, config = _bundle(model_uri)
    spec = spec_from_state(bundle.state, bundle.files)
    d = config.data
    dataset = load_dataset(
        data,
        target=d.target,
        positive_label=d.positive_label,
        id_column=d.id_column,
        time_column=d.time_column,
        features=list(spec.feature_names),
        categorical=[f.name for f in spec.features if f.kind == "categorical"],
        protected=d.protected,
        pii=d.pii,
        for_training=False,
    )
    reasons = bundle.state.get("reasons") or {}
    if "catalogue" not in reasons:
        raise ConfigError(
            f"{model_uri}: the model was registered by an older creditgov whose reasons could name factors that helped the applicant; retrain it with this version"
        )
    if bundle.reference is None:
        raise ConfigError(
            f"{model_uri}: the model has no reference_profile.json; retrain it with this version of creditgov"
        )
    evidence = evaluate_batch(
        spec,
        dataset,
        reference=ReferenceProfile.from_json(bundle.reference),
        model_name=bundle.name,
        gates=config.gates,
        settings=explain_settings(config),
        catalogue=ReasonCatalogue.from_state(
            reasons, {f.name: f.levels for f in spec.features if f.kind == "categorical"}
        ),
        seed=config.seed,
    )
    reports: dict[str, str] = {}
    if report_dir is not None:
        files = write_report(evidence, report_dir, _context(bundle, data))
        reports = {
            "html": str(files.html),
            "json": str(files.json),
            "model_card": str(files.model_card),
        }
    return Retest(bundle.name, bundle.version, evidence, reports)


def check_drift(
    model_uri: str, data: Path, *, report_dir: Path | None = None, threshold: float | None = None
) -> DriftCheck:
    """Compare a new batch (no labels needed) with the model's training population."""
    from creditgov.stages import explain_settings
    from evaluation.drift import compare
    from evaluation.drift_reference import ReferenceProfile
    from evaluation.report import write_drift_report
    from training.data import numeric_batch
    from training.models.spec import spec_from_state
    from training.reading import read_table

    if not data.is_file():  # before the model is fetched: a mistyped path fails at once
        from training.reading import DataError

        raise DataError(f"{data}: no such file; check the path given to --data")
    bundle, config = _bundle(model_uri)
    if bundle.reference is None:
        from creditgov.config import ConfigError

        raise ConfigError(
            f"{model_uri}: the model has no reference_profile.json; retrain it with this version of creditgov"
        )
    spec = spec_from_state(bundle.state, bundle.files)
    frame = read_table(data, skip=config.data.pii)
    missing = [name for name in spec.feature_names if name not in frame.columns]
    if missing:
        from training.reading import DataError

        raise DataError(
            f"{data}: column {missing[0]!r} is missing from the batch ({len(missing)} missing); "
            f"drift needs every model feature: add it to the file (names are case-sensitive)"
        )
    if len(frame) == 0:
        from training.reading import DataError

        raise DataError(f"{data}: the batch has no rows; pass a file with data rows")
    numeric = [f.name for f in spec.features if f.kind != "categorical"]
    _refuse_text(frame, numeric, data)
    features = numeric_batch(frame[list(spec.feature_names)], numeric, str(data))
    limit = threshold if threshold is not None else explain_settings(config).drift_threshold
    result = compare(
        ReferenceProfile.from_json(bundle.reference),
        features,
        scores=spec.probability(features),
        threshold=limit,
    )
    # Unseen levels by name only for the categoricals the config declared (their levels
    # are codes); a text column taken as categorical gets a count: its "levels" are
    # whatever was typed into it, a customer's name among them.
    declared = set(config.data.categorical or ())
    named = frozenset(
        f.name for f in spec.features if f.kind == "categorical" and f.name in declared
    )
    result = replace(result, named_levels=named)
    reports: dict[str, str] = {}
    if report_dir is not None:
        path = write_drift_report(result, report_dir, _context(bundle, data))
        reports = {"html": str(path)}
    return DriftCheck(bundle.name, bundle.version, result, reports)


def _refuse_text(frame: Any, numeric: list[str], data: Path) -> None:
    """Text where the model was trained on numbers: the column and first data row, no value.

    Cells that hold text are what someone typed, so the message never quotes one.
    """
    import pandas as pd

    from training.reading import DataError

    for name in numeric:
        column = frame[name]
        if (
            pd.api.types.is_numeric_dtype(column)
            or pd.api.types.is_bool_dtype(column)
            or pd.api.types.is_datetime64_any_dtype(column)  # refused by numeric_batch
        ):
            continue
        given = column.astype("object")
        bad = pd.to_numeric(given, errors="coerce").isna().to_numpy() & given.notna().to_numpy()
        if bad.any():
            row = int(bad.argmax()) + 1
            raise DataError(
                f"{data}: column {name!r}, row {row}: not a number; fix or blank those cells"
            )


def fetch_reports(name: str, version: str, out: Path) -> list[Path]:
    from registry.artifacts import download_reports
    from registry.tracking import resolve_tracking_uri, use_tracking

    client = use_tracking(resolve_tracking_uri(None))
    return download_reports(client, name, version, out)
