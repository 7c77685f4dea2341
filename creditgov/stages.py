"""The stages of `creditgov train`, each one function from the config to the packages' calls.

`job.run` calls these in order (docs/ARCHITECTURE.md, "Data flow of train"); each turns
the config's keys into the arguments of one package's function and hands the typed,
frozen result on. Everything that can fail on bad input runs in `prepare`, before the
MLflow run starts, so bad input leaves no run and no version behind. `creditgov
validate`, the tuning workers and the re-test commands (`checks.py`) use the same
functions, so there is one way to read a config.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from creditgov.config import ConfigError, JobConfig, flatten
from creditgov.lineage import Lineage, dataset_input
from training.data import Dataset, load_dataset
from training.models.base import ParamsRefused
from training.models.registry import get_kind
from training.split import Splits, split_dataset

if TYPE_CHECKING:
    import optuna
    from mlflow.tracking import MlflowClient

    from evaluation.evidence import Evidence, ExplainSettings
    from evaluation.lda import LdaSearch
    from registry.pii_purge import PiiPurge
    from registry.pii_scan import PiiScan
    from training.models.base import KindSettings, ModelInputs
    from training.models.spec import Fitted, ModelSpec
    from training.tuning import Objective, TrialHook, TuneResult

__all__ = [
    "REPORT_DIR",
    "check_reason_texts",
    "check_trainer",
    "evaluate_model",
    "explain_settings",
    "fairness_objective_of",
    "fit_final",
    "input_example",
    "kind_settings",
    "log_evidence",
    "log_lineage",
    "model_inputs",
    "open_job_study",
    "param_sets",
    "prepare",
    "purge_leaked_run",
    "record_validation",
    "register_model",
    "scan_for_pii",
    "tune_splits",
    "withdraw_version",
    "write_reports",
]

#: Where the reviewer's files live in the run's artifacts.
REPORT_DIR = "reports"


# ----------------------------------------------------------------------------- before the run


def prepare(config: JobConfig) -> Splits:
    """Load, validate and split, and let the model kind check its parameters: no run yet."""
    data = config.data
    dataset = load_dataset(
        data.source,
        target=data.target,
        positive_label=data.positive_label,
        id_column=data.id_column,
        time_column=data.time_column,
        features=data.features,
        exclude=data.exclude,
        categorical=data.categorical,
        protected=data.protected,
        pii=data.pii,
        group_column=config.split.group_column,
        monotone=list(config.model.monotone),
        identifier_like=data.identifier_like,
    )
    splits = split_dataset(
        dataset,
        method=config.split.method,
        test_fraction=config.split.test_fraction,
        valid_fraction=config.split.valid_fraction,
        oot_start=config.split.oot_start,
        seed=config.seed,
    )
    try:
        get_kind(config.model.type).check_params(
            splits, param_sets(config), monotone=config.model.monotone, seed=config.seed
        )
    except ParamsRefused as err:
        raise ConfigError(f"{config.error_prefix()}{err.key}: {err.reason}") from None
    check_reason_texts(config, splits.train)
    return splits


def check_reason_texts(config: JobConfig, train: Dataset) -> None:
    """Each reason-catalogue entry fits its feature's kind: checked before any run.

    An entry for a column that is not a feature (excluded, or not in this extract) is
    left alone: one catalogue serves several models, and coverage shows what is missing.
    """
    from creditgov.config import ReasonText

    cats = set(train.categorical)
    for name, entry in config.evaluation.reason_texts.items():
        key = f"{config.error_prefix()}evaluation.reason_texts.{name}"
        if name not in train.feature_names:
            continue
        if not isinstance(entry, ReasonText):
            if name not in cats and "{value}" in entry:
                raise ConfigError(
                    f"{key}: only a categorical text may quote the level as {{value}}"
                )
            continue
        if name in cats and (entry.high or entry.low):
            raise ConfigError(f"{key}: {name!r} is categorical: give {{code, text}}, not high/low")
        if name not in cats and entry.text:
            raise ConfigError(
                f"{key}: {name!r} is numeric: give {{code, high, low, missing}}, not text"
            )


def param_sets(config: JobConfig) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(config key, model params) for each parameter set the fit or a trial can use.

    The model params themselves, and when tuning each end of each search range (each
    choice of a categorical one) in turn.
    """
    base = dict(config.model.params)
    yield "model.params", base
    if config.tuning.n_trials == 0:
        return
    for name, space in config.tuning.search_space.items():
        where = f"tuning.search_space.{name}"
        if space.type == "categorical":
            for choice in space.choices or []:
                yield f"{where}.choices", {**base, name: choice}
            continue
        for end in ("low", "high"):
            value = getattr(space, end)
            yield f"{where}.{end}", {**base, name: int(value) if space.type == "int" else value}


def open_job_study(
    config: JobConfig, *, resume: bool, join: bool = False, seed: int | None = None
) -> optuna.Study | None:
    """The job's Optuna study (None when not tuning), opened before the run starts.

    A tuning worker `join`s the running study with a `seed` of its own (its random
    start-up trials must differ from the job's).
    """
    from training.tuning import TuneError

    tuning = config.tuning
    if tuning.n_trials == 0:
        if resume:
            raise TuneError("--resume continues a tuning study, but tuning.n_trials is 0")
        return None
    from evaluation.metrics import objective_direction
    from training.tuning import open_study

    return open_study(
        storage=tuning.storage,
        study_name=tuning.study_name,
        direction=objective_direction(tuning.metric),
        seed=config.seed if seed is None else seed,
        pruner=tuning.pruner,
        resume=resume,
        join=join,
        extra_directions=("maximize",) if tuning.searches_alternatives else (),
    )


# ----------------------------------------------------------------------------- in the run


def log_lineage(
    client: MlflowClient, run_id: str, config: JobConfig, splits: Splits, lineage: Lineage
) -> None:
    """Config (flattened and whole), library versions, lineage tags, dataset, split sizes."""
    import mlflow

    from registry.stale_runs import process_tags
    from registry.tracking import library_versions, log_batch

    tags = {
        "creditgov.trainer": lineage.trainer,
        "creditgov.task": config.task,
        "creditgov.config_sha256": lineage.config_sha256,
        "creditgov.data_digest": lineage.data_digest,
        "creditgov.model_type": config.model.type,
        "creditgov.git_commit": lineage.commit,
        **process_tags(),
    }
    params = dict(flatten(config))
    params.update({f"lib.{k}": v for k, v in library_versions().items()})
    log_batch(client, run_id, params=params, tags=tags)
    mlflow.log_dict(config.model_dump(mode="json"), "config/resolved_config.json")
    dataset, input_tags = dataset_input(splits, config)
    mlflow.log_input(dataset, context="training", tags=input_tags)
    summary = splits.summary()
    mlflow.log_dict({"splits": [asdict(s) for s in summary]}, "data/splits.json")
    split_metrics: dict[str, float] = {}
    for s in summary:
        split_metrics[f"split_{s.name}_rows"] = s.rows
        split_metrics[f"split_{s.name}_bad_rate"] = s.bad_rate
    log_batch(client, run_id, metrics=split_metrics)
    if splits.train.dropped:
        mlflow.log_dict(
            {"dropped": [asdict(d) for d in splits.train.dropped]}, "data/dropped_features.json"
        )


def tune_splits(
    config: JobConfig, study: optuna.Study, inputs: ModelInputs, hooks: list[TrialHook]
) -> TuneResult:
    """The config's search on `study`: the same call in the job and in every worker."""
    from evaluation.metrics import tuning_objective
    from training.tuning import tune

    tuning = config.tuning
    return tune(
        inputs,
        model_type=config.model.type,
        base_params=config.model.params,
        monotone=config.model.monotone,
        search_space=tuning.search_space,
        objective=tuning_objective(tuning.metric),
        study=study,
        n_trials=tuning.n_trials,
        timeout_s=tuning.timeout_s,
        seed=config.seed,
        hooks=hooks,
        extra_objectives=[fairness_objective_of(config, inputs.splits)]
        if tuning.searches_alternatives
        else [],
    )


def fairness_objective_of(config: JobConfig, splits: Splits) -> Objective:
    """The selection-rate ratio of validation decisions, as the evidence will measure it."""
    from evaluation.lda import DecisionSettings, fairness_objective

    decision, fairness = config.decision, config.evaluation.fairness
    return fairness_objective(
        splits.valid.protected,
        decision=DecisionSettings(
            calibration=config.model.calibration,
            rule=decision.rule,
            threshold=decision.effective_threshold,
            approval_rate=decision.approval_rate,
            cost_false_negative=decision.cost_false_negative,
            cost_false_positive=decision.cost_false_positive,
        ),
        bins=fairness.bins,
        min_group_size=fairness.min_group_size,
        min_group_bads=fairness.min_group_bads,
    )


def kind_settings(config: JobConfig) -> KindSettings:
    """What the config's model kind may need beyond the splits (`ModelKind.inputs`)."""
    from training.models.base import KindSettings

    return KindSettings(
        monotone=config.model.monotone,
        score=config.score.scale,
        options=config.model.scorecard.model_dump(),
    )


def model_inputs(config: JobConfig, splits: Splits, *, check: bool = False) -> ModelInputs:
    """The splits encoded once by the config's model kind (`ModelKind.inputs`).

    With `check`, the kind also checks every parameter set on the encoded splits
    (`ModelKind.check_inputs`: the scorecard's sign rule with `on_sign_flip: fail`); the
    job asks for it before any run starts. A refusal names the config file and key.
    """
    kind = get_kind(config.model.type)
    try:
        inputs = kind.inputs(splits, kind_settings(config))
        if check:
            kind.check_inputs(inputs, param_sets(config), seed=config.seed)
    except ParamsRefused as err:
        raise ConfigError(f"{config.error_prefix()}{err.key}: {err.reason}") from None
    return inputs


def fit_final(config: JobConfig, inputs: ModelInputs, best_params: Mapping[str, Any]) -> Fitted:
    """The final fit with the config's model, calibration, scaling and decision rule."""
    from training.models.spec import fit_model

    decision = config.decision
    return fit_model(
        inputs,
        task=config.task,
        model_type=config.model.type,
        params={**config.model.params, **best_params},
        monotone=config.model.monotone,
        calibration=config.model.calibration,
        score=config.score.scale,
        decision_rule=decision.rule,
        threshold=decision.effective_threshold,
        approval_rate=decision.approval_rate,
        cost_false_negative=decision.cost_false_negative,
        cost_false_positive=decision.cost_false_positive,
        seed=config.seed,
    )


def explain_settings(config: JobConfig) -> ExplainSettings:
    """The evaluation knobs of a config, as the evaluation package takes them."""
    from evaluation.evidence import ExplainSettings

    ev = config.evaluation
    return ExplainSettings(
        shap_sample=ev.shap_sample,
        reason_codes=ev.reason_codes,
        reason_texts={
            name: entry if isinstance(entry, str) else entry.plain()
            for name, entry in ev.reason_texts.items()
        },
        proxy_threshold=ev.proxy_threshold,
        monotone=config.model.monotone,
        protected=config.data.protected,
        fairness_bins=ev.fairness.bins,
        min_group_size=ev.fairness.min_group_size,
        min_group_bads=ev.fairness.min_group_bads,
        fairness_bootstrap=ev.fairness.bootstrap,
        drift_bins=ev.drift.bins,
        drift_threshold=next(
            (g.max for g in config.gates if g.metric == "psi_max" and g.max is not None), 0.25
        ),
    )


def evaluate_model(
    config: JobConfig,
    fitted: Fitted,
    splits: Splits,
    best_params: Mapping[str, Any] | None = None,
    *,
    alternatives: LdaSearch | None = None,
) -> Evidence:
    """Every split measured, the model explained, the gates applied.

    The reasons' stability check compares the first reasons with those of the same model
    refitted on a bootstrap resample of the training split (same parameters, same seed).
    """
    from evaluation.evidence import evaluate

    def refit() -> ModelSpec:
        rng = np.random.default_rng(config.seed)
        rows = rng.integers(0, splits.train.n_rows, size=splits.train.n_rows)
        resampled = Splits(splits.method, splits.train.take(rows), splits.valid, splits.test)
        return fit_final(config, model_inputs(config, resampled), best_params or {}).spec

    return evaluate(
        fitted.spec,
        splits,
        model_name=config.registry.model_name,
        gates=config.gates,
        settings=explain_settings(config),
        seed=config.seed,
        raw=fitted.raw,
        refit=refit,
        alternatives=alternatives,
    )


def log_evidence(client: MlflowClient, run_id: str, spec: ModelSpec, evidence: Evidence) -> None:
    """Every split's metrics, the cut-off and the fit's own numbers, on the run.

    The kind's tables (the scorecard's points table) go with the report files, where
    `creditgov report` fetches them; what the job changed from what was asked
    (calibration's fallback) is tagged on the run as `creditgov.notes`.
    """
    from registry.tracking import log_batch

    metrics = evidence.metric_values()
    flat = {f"{part}_{k}": v for part, values in metrics.items() for k, v in values.items()}
    flat["decision_threshold"] = spec.decision.threshold
    flat.update(spec.model.info())
    log_batch(client, run_id, metrics={k: v for k, v in flat.items() if np.isfinite(v)})
    if evidence.notes:
        client.set_tag(run_id, "creditgov.notes", " | ".join(evidence.notes))


def input_example(dataset: Dataset) -> pd.DataFrame:
    """Three made-up rows (low / typical / high quantiles, common levels) — never a real row."""
    rows: dict[str, list[Any]] = {}
    for name in dataset.feature_names:
        column = dataset.features[name]
        if name in dataset.categorical:
            top = column.value_counts().index.tolist()[:3]
            rows[name] = [str(top[i % len(top)]) for i in range(3)] if top else [None] * 3
        else:
            q = column.quantile([0.1, 0.5, 0.9]).to_numpy(dtype=np.float64)
            whole = name in dataset.integer
            rows[name] = [round(float(v)) if whole else float(v) for v in q]
    return pd.DataFrame(rows)


def register_model(
    client: MlflowClient,
    run_id: str,
    config: JobConfig,
    spec: ModelSpec,
    evidence: Evidence,
    train: Dataset,
    lineage: Lineage,
) -> str:
    """Log the served model (state, files, drift reference) and register it: the version."""
    from registry.register import log_scoring_model, register_version

    state = {
        **spec.state(),
        "reasons": evidence.catalogue.to_state(),
    }
    logged = log_scoring_model(
        state=state,
        files=spec.files(),
        input_example=input_example(train)[list(spec.feature_names)],
        reference=evidence.reference.to_json(),
    )
    return register_version(
        client,
        name=config.registry.model_name,
        model_uri=logged.model_uri,
        model_id=logged.model_id,
        run_id=run_id,
        tags={
            "run_id": run_id,
            "config_sha256": lineage.config_sha256,
            "data_digest": lineage.data_digest,
            "git_commit": lineage.commit,
            "trainer": lineage.trainer,
            "validation_status": "pending",
            "approval_status": "pending",
        },
    )


def write_reports(
    evidence: Evidence, *, version: str, run_id: str, lineage: Lineage
) -> dict[str, str]:
    """report.html, evidence.json and model_card.md, logged under `REPORT_DIR`."""
    import tempfile

    import mlflow

    from evaluation.report import write_report

    context = {
        "model_version": version,
        "run_id": run_id,
        "trainer": lineage.trainer,
        "data_digest": lineage.data_digest,
        "config_sha256": lineage.config_sha256,
        "git_commit": lineage.commit,
        "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    with tempfile.TemporaryDirectory(prefix="creditgov-report-") as tmp:
        files = write_report(evidence, Path(tmp), context)
        mlflow.log_artifacts(tmp, REPORT_DIR)
    return {
        "html": f"{REPORT_DIR}/{files.html.name}",
        "json": f"{REPORT_DIR}/{files.json.name}",
        "model_card": f"{REPORT_DIR}/{files.model_card.name}",
        **{path.stem: f"{REPORT_DIR}/{path.name}" for path in files.tables},
    }


def check_trainer(client: MlflowClient, lineage: Lineage, name: str) -> None:
    """Refuse (exit 3) an account a team server would not let register versions of `name`."""
    import mlflow

    from registry.governance.actions import governance_for

    governance_for(client, mlflow.get_registry_uri(), lineage.trainer).check_trainer(name)


def withdraw_version(
    client: MlflowClient, lineage: Lineage, name: str, version: str, err: BaseException
) -> None:
    """Take back the version of a job that failed after registering it (see `Governance.withdraw`)."""
    import mlflow

    from registry.governance.actions import governance_for

    reason = f"withdrawn: the training job failed after registering it ({type(err).__name__})"
    governance_for(client, mlflow.get_registry_uri(), lineage.trainer).withdraw(
        name, version, reason=reason
    )


def record_validation(
    client: MlflowClient,
    config: JobConfig,
    *,
    version: str,
    run_id: str,
    evidence: Evidence,
    reports: Mapping[str, str],
    lineage: Lineage,
) -> None:
    """The gate verdict on the version, and `registered` + `validated` in the audit chain.

    Locally the rules append both here; on a team server the server appended `registered`
    when the version was created and records the validation itself (`Governance`).
    """
    import mlflow

    from registry.governance.actions import governance_for
    from registry.register import validation_record

    name = config.registry.model_name
    governance = governance_for(client, mlflow.get_registry_uri(), lineage.trainer)
    governance.registered(name, version)
    governance.validated(
        name, version,
        validation_record(name, version, evidence.gates, run_id=run_id, reports=reports),
    )  # fmt: skip
    mlflow.set_tag("creditgov.model_version", f"{name}/{version}")


def scan_for_pii(
    client: MlflowClient, run_id: str, config: JobConfig, version: str
) -> PiiScan | None:
    """Last, so it reads everything the run logged; a hit purges the run and raises `PiiLeak`.

    A PII value equal to a level of a categorical feature is a collision, not a leak: one
    `PiiCollisionWarning` per (PII column, feature), and the run goes on.
    """
    if not config.data.pii:
        return None
    import mlflow

    from registry.pii_scan import PiiCollisionWarning, PiiLeak, scan_run

    scan = scan_run(
        client, run_id, source=config.data.source, pii=config.data.pii,
        model_name=config.registry.model_name, version=version,
    )  # fmt: skip
    for collision in scan.collisions:
        warnings.warn(collision.describe(), PiiCollisionWarning, stacklevel=2)
    mlflow.set_tag("creditgov.pii_scan", f"{scan.describe()} ({scan.seconds:.1f} s)")
    if not scan.clean:
        raise PiiLeak(scan, purge_leaked_run(client, scan))
    return scan


def purge_leaked_run(client: MlflowClient, scan: PiiScan) -> PiiPurge:
    """End the job's run FAILED, then purge what the scan read (`registry.pii_purge.purge_run`).

    Ended here because a purged run can no longer be ended: the job's own failure
    handling then finds no active run to end, and deletes the model version as always.
    """
    import mlflow

    from registry.pii_purge import purge_run

    active = mlflow.active_run()
    if active is not None and active.info.run_id == scan.run_id:
        mlflow.end_run(status="FAILED")
    return purge_run(client, scan)
