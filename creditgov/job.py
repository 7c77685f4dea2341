"""`run(config) -> JobResult`: the training job, stage after stage, and nothing else.

Each stage is one function of `stages.py`; `run` is their order (docs/ARCHITECTURE.md,
"Data flow of train"). Every check of config and data happens before the MLflow run
starts, so bad input leaves no run and no version behind. Once the run has started, any
failure ends it FAILED (KILLED on interrupt) and removes a half-made model version.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from creditgov import alternatives, stages
from creditgov.config import JobConfig
from creditgov.lineage import Lineage
from creditgov.signals import interrupt_behind
from creditgov.stages import prepare
from training.data import DroppedColumn
from training.split import SplitSummary

if TYPE_CHECKING:
    from training.tuning import TrialRecord

__all__ = ["JobResult", "Progress", "prepare", "run"]


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
    #: What the job changed from what the config asked (calibration's fallback), worded.
    notes: tuple[str, ...] = ()
    #: The search for a less discriminatory alternative: chosen and most accurate.
    alternatives: Mapping[str, Any] = field(default_factory=dict)

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
                "notes": list(self.notes),
                "alternatives": dict(self.alternatives),
            }
        )


def run(
    config: JobConfig,
    *,
    resume: bool = False,
    progress: Progress | None = None,
    workers: int = 1,
) -> JobResult:
    """Data -> split -> tune -> fit -> evaluate -> register -> report -> scan.

    With `workers` > 1, that many processes tune the shared study (creditgov/workers.py);
    this one alone fits and registers.
    """
    import mlflow

    from creditgov.workers import check_workers, team_workers
    from registry.governance.errors import run_refusals
    from registry.stale_runs import end_stale_runs
    from registry.tracking import TrialLogger, log_batch, resolve_tracking_uri, use_tracking

    show = progress or _Silent()
    started = time.perf_counter()
    show.stage("Loading and validating data")
    splits = prepare(config)
    check_workers(config, workers)
    # Encoded (the scorecard: binned and its characteristics selected) before any run
    # starts, so a selection that leaves nothing fails without a run to clean up.
    inputs = stages.model_inputs(config, splits, check=True)
    # The tracking store first: a server that is down must not leave a new, empty study
    # behind that the next attempt would have to --resume.
    uri = resolve_tracking_uri(config.tracking.uri)
    client = use_tracking(uri)
    lineage = Lineage.of(config, splits)
    tuning, name = config.tuning, config.registry.model_name
    # On a team server, an account that may not register versions of this model is
    # refused now, before a study or a run exists, not after an hour of tuning.
    stages.check_trainer(client, lineage, name)
    study = stages.open_job_study(config, resume=resume)
    version: str | None = None
    with run_refusals(config.name, actor=lineage.trainer):
        if not os.environ.get("MLFLOW_RUN_ID"):
            mlflow.set_experiment(config.name)
        started_run = mlflow.start_run(run_name=f"train-{config.model.type}")
    with started_run as active:
        run_id, experiment_id = active.info.run_id, active.info.experiment_id
        try:
            show.stage("Logging config and data lineage")
            stages.log_lineage(client, run_id, config, splits, lineage)
            if resume and tuning.storage and tuning.study_name:
                # The run of the process that died is never ended by it; settle it here.
                end_stale_runs(
                    client, experiment_id, storage=tuning.storage,
                    study_name=tuning.study_name, current_run_id=run_id,
                )  # fmt: skip
            best_params: dict[str, Any] = {}
            n_trials = 0
            if study is not None:
                show.stage(f"Tuning {tuning.n_trials} trials on valid {tuning.metric}")
                logger = TrialLogger(
                    client, experiment_id=experiment_id, parent_run_id=run_id,
                    metric=tuning.metric, extra_metrics=tuple((tuning.objectives or [])[1:]),
                )  # fmt: skip

                def on_trial(record: TrialRecord, best: float | None) -> None:
                    show.trial(record.number, record.state, record.value, best, tuning.n_trials)

                with team_workers(
                    config, study, workers, uri=uri, run_id=run_id,
                    experiment_id=experiment_id, show=show,
                ):  # fmt: skip
                    result = stages.tune_splits(config, study, inputs, [logger, on_trial])
                best_params, n_trials = dict(result.best_params), result.n_finished
                log_batch(
                    client, run_id,
                    params={f"best.{k}": v for k, v in best_params.items()},
                    metrics={
                        f"tuning_best_valid_{tuning.metric}": result.best_value or float("nan"),
                        "tuning_trials": float(n_trials),
                    },
                )  # fmt: skip

            search = None
            if study is not None and tuning.searches_alternatives:
                show.stage("Less discriminatory alternatives: the front, the proxies dropped")
                search, inputs, best_params = alternatives.search_alternatives(
                    config, inputs, result
                )
                alternatives.log_search(client, run_id, search)

            show.stage("Fitting the final model")
            fitted = stages.fit_final(config, inputs, best_params)
            spec = fitted.spec

            show.stage("Testing: metrics, SHAP reason codes, fairness, drift, gates")
            evidence = stages.evaluate_model(
                config, fitted, inputs.splits, best_params, alternatives=search
            )
            stages.log_evidence(client, run_id, spec, evidence)

            show.stage("Logging and registering the model")
            version = stages.register_model(
                client, run_id, config, spec, evidence, splits.train, lineage
            )

            show.stage("Writing the reviewer's report")
            reports = stages.write_reports(
                evidence, version=version, run_id=run_id, lineage=lineage
            )
            stages.record_validation(
                client, config, version=version, run_id=run_id, evidence=evidence,
                reports=reports, lineage=lineage,
            )  # fmt: skip
            if config.data.pii:
                show.stage("Scanning the run for personal data")
                stages.scan_for_pii(client, run_id, config, version)
        except BaseException as err:
            if version is not None:
                stages.withdraw_version(client, lineage, name, version, err)
            interrupt = interrupt_behind(err)
            mlflow.end_run(status="FAILED" if interrupt is None else "KILLED")
            if interrupt is not None and interrupt is not err:
                raise KeyboardInterrupt(str(interrupt)) from err
            raise
    return JobResult(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=name,
        model_version=version,
        model_uri=f"models:/{name}/{version}",
        tracking_uri=uri,
        metrics=evidence.metric_values(),
        best_params=best_params,
        n_trials=n_trials,
        validation_status=evidence.gates.status,
        gates=tuple(evidence.gates.to_json()),
        reports=reports,
        splits=splits.summary(),
        dropped=splits.train.dropped,
        threshold=spec.decision.threshold,
        duration_s=round(time.perf_counter() - started, 2),
        notes=evidence.notes,
        alternatives={} if search is None else search.summary(),
    )
