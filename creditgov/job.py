"""`run(config) -> JobResult`: the training job, stage after stage, and nothing else.

Every check of config and data happens before the MLflow run starts, so bad input
leaves no run and no version behind. Once the run has started, any failure ends it
FAILED (KILLED on interrupt) and removes a half-made model version.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from creditgov.config import ConfigError, JobConfig, config_sha256, flatten
from training.data import Dataset, DroppedColumn, load_dataset
from training.models.encoding import FeatureSpec, encode, encoded, feature_specs
from training.split import Splits, SplitSummary, split_dataset

__all__ = [
    "REPORT_DIR",
    "JobResult",
    "Progress",
    "explain_settings",
    "finish_final",
    "fit_base_model",
    "fit_final",
    "run",
]

#: Where the reviewer's files live in the run's artifacts.
REPORT_DIR = "reports"


class Progress(Protocol):
    """What the CLI shows while a job runs; the job never prints."""

    def stage(self, name: str) -> None: ...

    def trial(
        self, number: int, state: str, value: float | None, best: float | None, total: int
    ) -> None: ...


class _Silent:
    def stage(self, name: str) -> None:
        return None

    def trial(
        self, number: int, state: str, value: float | None, best: float | None, total: int
    ) -> None:
        return None


@dataclass(frozen=True)
class JobResult:
    run_id: str
    experiment_id: str
    model_name: str
    model_version: str
    model_uri: str
    tracking_uri: str
    metrics: Mapping[str, Mapping[str, float]]
    best_params: Mapping[str, Any]
    n_trials: int
    validation_status: str
    splits: tuple[SplitSummary, ...]
    dropped: tuple[DroppedColumn, ...] = ()
    gates: tuple[Mapping[str, Any], ...] = ()
    reports: Mapping[str, str] = field(default_factory=dict)
    threshold: float = 0.5
    duration_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        """The `--json` document of CLI.md (NaN becomes null: JSON has no NaN)."""
        from evaluation.evidence import json_safe

        return json_safe(
            {
                "run_id": self.run_id,
                "experiment_id": self.experiment_id,
                "model_name": self.model_name,
                "model_version": self.model_version,
                "model_uri": self.model_uri,
                "metrics": {k: dict(v) for k, v in self.metrics.items()},
                "best_params": dict(self.best_params),
                "n_trials": self.n_trials,
                "validation_status": self.validation_status,
                "gates": [dict(g) for g in self.gates],
                "reports": dict(self.reports),
                "splits": [asdict(s) for s in self.splits],
                "dropped_features": [asdict(d) for d in self.dropped],
                "decision_threshold": self.threshold,
                "duration_s": self.duration_s,
            }
        )


def prepare(config: JobConfig, *, encode: bool = True) -> Splits:
    """Load, validate and split: everything that can fail on bad input, with no run yet.

    `encode` also encodes each split for training (`_encode_splits`); `creditgov
    validate` trains nothing and skips it.
    """
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
    )
    splits = split_dataset(
        dataset,
        method=config.split.method,
        test_fraction=config.split.test_fraction,
        valid_fraction=config.split.valid_fraction,
        oot_start=config.split.oot_start,
        seed=config.seed,
    )
    if config.model.type == "lightgbm":
        train = splits.train
        specs = feature_specs(train.features, train.categorical, train.integer)
        _check_lightgbm_params(config, train, specs)
        if encode:
            _encode_splits(splits, specs)
    return splits


@contextlib.contextmanager
def _native_stderr_dropped() -> Iterator[None]:
    """Drop what C++ code writes to file descriptor 2 meanwhile.

    LightGBM's C++ core writes "[LightGBM] [Fatal] ..." to stderr itself before raising
    the same text; the job's error line already carries it, and a bad-input error is
    one line. Python's own `sys.stderr` is untouched.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


#: Rows of each class the parameter check boosts one round on.
PARAM_CHECK_ROWS = 100


def _check_lightgbm_params(config: JobConfig, train: Dataset, specs: Sequence[FeatureSpec]) -> None:
    """Refuse LightGBM parameters LightGBM would refuse, before any run starts.

    LightGBM checks its parameters only when it trains, so a bad value (`max_bin: 1`, an
    unknown objective, a search range reaching `num_leaves: 1`) would otherwise fail the
    job after its run had started. One round on at most `PARAM_CHECK_ROWS` rows of each
    class, with exactly the parameters the fit will use — and, when tuning, with each end
    of each search range (each choice of a categorical one) in turn — takes a few
    milliseconds a check and raises LightGBM's own message, which names the parameter.
    """
    import lightgbm as lgb

    from training.models.lightgbm import dataset_columns, lightgbm_params

    rows = np.concatenate(
        [np.flatnonzero(train.target == label)[:PARAM_CHECK_ROWS] for label in (0, 1)]
    )
    x, y = encode(train.features.iloc[rows], specs), train.target[rows]
    names, cats = dataset_columns(specs)
    for key, user in _param_checks(config):
        params = lightgbm_params(
            user, specs=specs, monotone=config.model.monotone, seed=config.seed
        )
        # A new Dataset each time: binning parameters (max_bin) are fixed when it is built.
        sample = lgb.Dataset(x, label=y, feature_name=names, categorical_feature=cats)
        try:
            with _native_stderr_dropped():
                lgb.train(params, sample, num_boost_round=1)
        except lgb.basic.LightGBMError as err:
            # "Check failed: (max_bin) > (1) at /path/config_auto.cpp, line 527 ." -> the check.
            reason = re.sub(r"\s+at \S+, line \d+\s*\.?$", "", " ".join(str(err).split()))
            raise ConfigError(
                f"{config.error_prefix()}{key}: LightGBM refuses "
                f"{'them' if key == 'model.params' else 'that value'} ({reason}); fix or "
                "remove it (LightGBM's parameter reference gives each valid range)"
            ) from None


def _param_checks(config: JobConfig) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(config key, model params) for each parameter set the fit or a trial can use."""
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


def _encode_splits(splits: Splits, specs: Sequence[FeatureSpec]) -> None:
    """Encode every split once, with the levels of train, while preparing the data.

    Tuning trials, the final fit and the evidence all read these matrices (remembered by
    `training.models.encoding.encoded`) instead of encoding the same frames again.
    """
    for part in splits.parts().values():
        encoded(part.features, specs)


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


def fit_final(config: JobConfig, splits: Splits, best_params: Mapping[str, Any]) -> Any:
    """The final fit with the config's model, calibration, scaling and decision rule.

    Two steps, each one place for the job and the benchmarks: `fit_base_model` (the
    boosting, which the fit-step benchmark times against `lightgbm.train`) and
    `finish_final` (calibration and the cut-off on the validation split).
    """
    return finish_final(config, splits, fit_base_model(config, splits, best_params))


def fit_base_model(config: JobConfig, splits: Splits, best_params: Mapping[str, Any]) -> Any:
    """The base model with the config's params and the tuned ones: boosting or the scorecard."""
    from training.models.spec import fit_base

    return fit_base(
        splits,
        model_type=config.model.type,
        params={**config.model.params, **best_params},
        monotone=config.model.monotone,
        seed=config.seed,
    )


def finish_final(config: JobConfig, splits: Splits, base: Any) -> Any:
    """Calibrate `base` on the validation split and choose the decision cut-off there."""
    from training.models.policy import ScoreScale
    from training.models.spec import finish_model

    decision = config.decision
    return finish_model(
        base,
        splits.valid,
        task=config.task,
        calibration=config.model.calibration,
        score=ScoreScale(config.score.base_score, config.score.base_odds, config.score.pdo),
        decision_rule=decision.rule,
        threshold=decision.effective_threshold,
        approval_rate=decision.approval_rate,
        cost_false_negative=decision.cost_false_negative,
        cost_false_positive=decision.cost_false_positive,
    )


def explain_settings(config: JobConfig) -> Any:
    """The evaluation knobs of a config, as the evaluation package takes them."""
    from evaluation.evidence import ExplainSettings

    ev = config.evaluation
    return ExplainSettings(
        shap_sample=ev.shap_sample,
        reason_codes=ev.reason_codes,
        reason_texts=ev.reason_texts,
        monotone=config.model.monotone,
        protected=config.data.protected,
        fairness_bins=ev.fairness.bins,
        min_group_size=ev.fairness.min_group_size,
        drift_bins=ev.drift.bins,
        drift_threshold=next(
            (g.max for g in config.gates if g.metric == "psi_max" and g.max is not None), 0.25
        ),
    )


def run(
    config: JobConfig,
    *,
    resume: bool = False,
    progress: Progress | None = None,
    workers: int = 1,
) -> JobResult:
    """Data -> split -> tune -> fit -> measure -> log -> register. See ARCHITECTURE.md.

    With `workers` > 1, that many processes tune the shared study (creditgov/workers.py);
    this one alone fits and registers.
    """
    import mlflow

    from creditgov.workers import check_workers, team_workers, tune_job
    from evaluation.evidence import evaluate
    from evaluation.report import write_report
    from registry.governance import model_manifest, record_event
    from registry.register import log_scoring_model, mark_validated, register_version
    from registry.stale_runs import end_stale_runs, process_tags
    from registry.tracking import (
        TrialLogger,
        git_commit,
        identity,
        library_versions,
        log_batch,
        resolve_tracking_uri,
        use_tracking,
    )
    from training.tuning import open_study

    show = progress or _Silent()
    started = time.perf_counter()
    show.stage("Loading and validating data")
    splits = prepare(config)
    dataset_digest = splits.train.digest
    tuning = config.tuning
    check_workers(config, workers)
    # The tracking store first: a server that is down must not leave a new, empty study
    # behind that the next attempt would have to --resume.
    uri = resolve_tracking_uri(config.tracking.uri)
    client = use_tracking(uri)
    study = None
    if tuning.n_trials > 0:
        from evaluation.metrics import objective_direction

        study = open_study(
            storage=tuning.storage,
            study_name=tuning.study_name,
            direction=objective_direction(tuning.metric),
            seed=config.seed,
            pruner=tuning.pruner,
            resume=resume,
        )
    elif resume:
        from training.tuning import TuneError

        raise TuneError("--resume continues a tuning study, but tuning.n_trials is 0")

    trainer = identity()
    commit = git_commit(Path(config.data.source).parent) or git_commit(Path.cwd())
    cfg_sha = config_sha256(config)
    if not os.environ.get("MLFLOW_RUN_ID"):
        mlflow.set_experiment(config.name)
    version: str | None = None
    with mlflow.start_run(run_name=f"train-{config.model.type}") as active:
        run_id = active.info.run_id
        experiment_id = active.info.experiment_id
        try:
            show.stage("Logging config and data lineage")
            tags = {
                "creditgov.trainer": trainer,
                "creditgov.task": config.task,
                "creditgov.config_sha256": cfg_sha,
                "creditgov.data_digest": dataset_digest,
                "creditgov.model_type": config.model.type,
                "creditgov.git_commit": commit or "unknown",
                **process_tags(),
            }
            params = dict(flatten(config))
            params.update({f"lib.{k}": v for k, v in library_versions().items()})
            log_batch(client, run_id, params=params, tags=tags)
            if resume and tuning.storage and tuning.study_name:
                # The run of the process that died is never ended by it; settle it here.
                end_stale_runs(
                    client, experiment_id, storage=tuning.storage,
                    study_name=tuning.study_name, current_run_id=run_id,
                )  # fmt: skip
            mlflow.log_dict(config.model_dump(mode="json"), "config/resolved_config.json")
            _log_dataset(mlflow, splits, config)
            summary = [asdict(s) for s in splits.summary()]
            mlflow.log_dict({"splits": summary}, "data/splits.json")
            split_metrics: dict[str, float] = {}
            for s in splits.summary():
                split_metrics[f"split_{s.name}_rows"] = s.rows
                split_metrics[f"split_{s.name}_bad_rate"] = s.bad_rate
            log_batch(client, run_id, metrics=split_metrics)
            if splits.train.dropped:
                mlflow.log_dict(
                    {"dropped": [asdict(d) for d in splits.train.dropped]},
                    "data/dropped_features.json",
                )

            best_params: dict[str, Any] = {}
            n_trials = 0
            if study is not None:
                show.stage(f"Tuning {tuning.n_trials} trials on valid {tuning.metric}")
                total = tuning.n_trials

                def on_trial(record: Any, best: float | None) -> None:
                    show.trial(record.number, record.state, record.value, best, total)

                logger = TrialLogger(
                    client, experiment_id=experiment_id, parent_run_id=run_id, metric=tuning.metric
                )
                with team_workers(
                    config, study, workers, uri=uri, run_id=run_id,
                    experiment_id=experiment_id, show=show,
                ):  # fmt: skip
                    result = tune_job(config, study, splits, [logger, on_trial])
                best_params = dict(result.best_params)
                n_trials = result.n_finished
                log_batch(
                    client,
                    run_id,
                    params={f"best.{k}": v for k, v in best_params.items()},
                    metrics={
                        f"tuning_best_valid_{tuning.metric}": result.best_value or float("nan"),
                        "tuning_trials": float(n_trials),
                    },
                )

            show.stage("Fitting the final model")
            spec = fit_final(config, splits, best_params)

            show.stage("Testing: metrics, SHAP reason codes, fairness, drift, gates")
            evidence = evaluate(
                spec,
                splits,
                model_name=config.registry.model_name,
                gates=config.gates,
                settings=explain_settings(config),
                seed=config.seed,
            )
            metrics = evidence.metric_values()
            flat = {f"{part}_{k}": v for part, values in metrics.items() for k, v in values.items()}
            flat["decision_threshold"] = spec.decision.threshold
            if spec.best_iteration is not None:
                flat["best_iteration"] = float(spec.best_iteration)
            log_batch(client, run_id, metrics={k: v for k, v in flat.items() if np.isfinite(v)})
            if spec.model_type == "scorecard":
                from training.models.scorecard import points_table

                table = points_table(spec.characteristics, spec.intercept, spec.score)
                mlflow.log_text(table.to_csv(index=False), "scorecard/points_table.csv")

            show.stage("Logging and registering the model")
            state = {
                **spec.state(),
                "reasons": {
                    "k": config.evaluation.reason_codes,
                    "texts": dict(evidence.reason_texts),
                    "directions": dict(evidence.directions),
                },
            }
            logged = log_scoring_model(
                state=state,
                model_text=spec.model_text,
                input_example=input_example(splits.train),
                reference=evidence.reference.to_json(),
            )
            version = register_version(
                client,
                name=config.registry.model_name,
                model_uri=logged.model_uri,
                model_id=logged.model_id,
                run_id=run_id,
                tags={
                    "run_id": run_id,
                    "config_sha256": cfg_sha,
                    "data_digest": dataset_digest,
                    "git_commit": commit or "unknown",
                    "trainer": trainer,
                    "validation_status": "pending",
                    "approval_status": "pending",
                },
            )

            show.stage("Writing the reviewer's report")
            context = {
                "model_version": version,
                "run_id": run_id,
                "trainer": trainer,
                "data_digest": dataset_digest,
                "config_sha256": cfg_sha,
                "git_commit": commit or "unknown",
                "created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            }
            with tempfile.TemporaryDirectory(prefix="creditgov-report-") as tmp:
                files = write_report(evidence, Path(tmp), context)
                mlflow.log_artifacts(tmp, REPORT_DIR)
            reports = {
                "html": f"{REPORT_DIR}/{files.html.name}",
                "json": f"{REPORT_DIR}/{files.json.name}",
                "model_card": f"{REPORT_DIR}/{files.model_card.name}",
            }
            mark_validated(
                client,
                config.registry.model_name,
                version,
                evidence.gates,
                run_id=run_id,
                reports=reports,
            )
            record_event(
                client, config.registry.model_name, "registered", actor=trainer, version=version,
                details={
                    "run_id": run_id, "config_sha256": cfg_sha, "data_digest": dataset_digest,
                    "model_files": model_manifest(client, config.registry.model_name, version),
                },
            )  # fmt: skip
            record_event(
                client, config.registry.model_name, "validated", actor=trainer, version=version,
                details={"status": evidence.gates.status, "gates": evidence.gates.to_json()},
            )  # fmt: skip
            mlflow.set_tag("creditgov.model_version", f"{config.registry.model_name}/{version}")
            if config.data.pii:
                # Last, so it reads everything the run logged; a hit fails the run below.
                from registry.pii_scan import PiiLeak, scan_run

                show.stage("Scanning the run for personal data")
                scan = scan_run(
                    client, run_id, source=config.data.source, pii=config.data.pii,
                    model_name=config.registry.model_name, version=version,
                )  # fmt: skip
                mlflow.set_tag("creditgov.pii_scan", f"{scan.describe()} ({scan.seconds:.1f} s)")
                if not scan.clean:
                    raise PiiLeak(scan)
        except BaseException as err:
            if version is not None:
                client.delete_model_version(config.registry.model_name, version)
            interrupt = _interrupt_behind(err)
            mlflow.end_run(status="FAILED" if interrupt is None else "KILLED")
            if interrupt is not None and interrupt is not err:
                raise KeyboardInterrupt(str(interrupt)) from err
            raise
    return JobResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=config.registry.model_name,
        model_version=version,
        model_uri=f"models:/{config.registry.model_name}/{version}",
        tracking_uri=uri,
        metrics=metrics,
        best_params=best_params,
        n_trials=n_trials,
        validation_status=evidence.gates.status,
        gates=tuple(evidence.gates.to_json()),
        reports=reports,
        splits=splits.summary(),
        dropped=splits.train.dropped,
        threshold=spec.decision.threshold,
        duration_s=round(time.perf_counter() - started, 2),
    )


def _interrupt_behind(err: BaseException) -> BaseException | None:
    """The KeyboardInterrupt / SystemExit behind `err`, if it is or was raised handling one.

    SIGTERM becomes a KeyboardInterrupt wherever Python happens to be; landing inside a
    library's own bookkeeping (Optuna telling the storage a trial's result) it resurfaces
    as that library's error — an UnboundLocalError or AssertionError — with the interrupt
    as its `__context__`. The run was still interrupted, not broken.
    """
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt | SystemExit):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _log_dataset(mlflow: Any, splits: Splits, config: JobConfig) -> None:
    """Record the dataset (source, digest, schema, row counts) — not its rows."""
    dataset, tags = dataset_input(splits, config)
    mlflow.log_input(dataset, context="training", tags=tags)


def dataset_input(splits: Splits, config: JobConfig) -> tuple[Any, dict[str, str]]:
    """The MLflow dataset the run records as its input, and the input's tags.

    A MetaDataset with the schema we already know: `mlflow.data.from_pandas` would scan
    every value of every text column to infer types, seconds on a large table.
    """
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.types import ColSpec, Schema, TensorSpec

    train = splits.train
    columns: list[ColSpec | TensorSpec] = [
        ColSpec("string" if name in train.categorical else "double", name)
        for name in train.feature_names
    ]
    columns.append(ColSpec("long", config.data.target))
    with warnings.catch_warnings():
        # MLflow notes that a local path could be read as two kinds of source; either will do.
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(config.data.source))
    # MetaDataset's `profile` is abstract to mypy but optional at run time.
    dataset = MetaDataset(  # type: ignore[abstract]
        source, name=Path(config.data.source).name, digest=train.digest, schema=Schema(columns)
    )
    rows = {f"rows_{name}": str(part.n_rows) for name, part in splits.parts().items()}
    return dataset, {"target": config.data.target, **rows}
