"""Whole job: `creditgov.job.run` next to reading the parquet and training the same model bare.

Measures the whole training job with tuning off, calibration none and a fixed round
count (load, validate, split, lineage, encode, fit, evidence, log, register, report)
against the bare side a LightGBM user would write: `pd.read_parquet` of the needed
columns, the job's train rows, a vectorised encode and `lgb.train` with the same params
and rounds (and, as information, the same plus logging and registering the booster in
MLflow by hand). The job's own path without the reviewer's evidence, report and PII scan
is set beside bare MLflow too. Before timing, the bare read + encode is checked to give
creditgov's train matrix, and the job's logged model the bare model's rounds and
validation AUC (else `NotSameWork`); the stages, pieces inside them and one cProfile run
are reported for where the time goes. Target: each targeted ratio <= 1.5.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from benchmarks.harness import (
    CONFIG,
    BenchResult,
    NotSameWork,
    bare_inputs,
    bare_train,
    fixed_work,
    fresh_store,
    interleave,
    job_config,
    min_ratio,
    model_inputs,
    reporter,
    samples_json,
    timed_job,
)
from creditgov import stages
from creditgov.config import JobConfig
from creditgov.job import JobResult, prepare
from creditgov.job import run as run_job
from creditgov.lineage import dataset_input
from evaluation.metrics import get_metric
from training.data import Dataset
from training.models.base import ModelInputs
from training.models.encoding import FeatureSpec, encode

if TYPE_CHECKING:
    from benchmarks.harness import BareInputs, Context

__all__ = ["EVIDENCE_STAGES", "JOB_TARGET", "bench"]

JOB_TARGET = 1.5


def _file_positions(path: Path, id_column: str, part: Dataset) -> NDArray[np.intp]:
    """Row numbers in the file of `part`'s rows, in `part`'s order (checked)."""
    ids = pd.read_parquet(path, columns=[id_column])[id_column]
    assert part.ids is not None
    positions = np.flatnonzero(ids.isin(set(part.ids)).to_numpy())
    if not np.array_equal(ids.to_numpy()[positions], part.ids.to_numpy()):
        raise NotSameWork("the train rows are not in file order; cannot pick them by position")
    return positions


def _read_encode(
    path: Path,
    *,
    specs: Sequence[FeatureSpec],
    target: str,
    positive: object,
    positions: NDArray[np.intp],
) -> tuple[NDArray[np.float64], NDArray[np.int8]]:
    """The bare side's loading: the needed columns, the train rows, a vectorised encode."""
    frame = pd.read_parquet(path, columns=[*(s.name for s in specs), target]).take(positions)
    x = np.empty((len(frame), len(specs)), dtype=np.float64, order="F")
    for j, spec in enumerate(specs):
        column = frame[spec.name]
        if spec.kind == "categorical":
            codes = pd.Categorical(column, categories=list(spec.levels)).codes
            x[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            x[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
    y = (frame[target].to_numpy() == positive).astype(np.int8)
    return x, y


#: Stages of `job.run` that issue-3 and issue-6 work added after the training job: the
#: reviewer's evidence, its report and the personal-data scan. Timed apart so the job's
#: own path (read, validate, split, fit, log, register) can be set beside bare MLflow.
EVIDENCE_STAGES = ("Testing", "Writing the reviewer's report", "Scanning the run")


def _bare_mlflow(
    booster: lgb.Booster, params: Mapping[str, Any], example: pd.DataFrame, experiment_id: str
) -> str:
    """What a LightGBM user does by hand to log and register the same booster in MLflow.

    One run, the params, `mlflow.lightgbm.log_model` (LightGBM's native text format) with
    a signature from the same input example and pinned requirements (no inference, as
    the job does not infer), then `register_model`. Returns the version.
    """
    import mlflow
    from mlflow.models import infer_signature

    requirements = [f"lightgbm=={lgb.__version__}", f"mlflow=={mlflow.__version__}"]
    with mlflow.start_run(experiment_id=experiment_id):
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        info = mlflow.lightgbm.log_model(
            booster,
            name="model",
            signature=infer_signature(example),
            pip_requirements=requirements,
        )
        version = mlflow.register_model(info.model_uri, "bare-lightgbm")
    return str(version.version)


def bench(context: Context) -> list[BenchResult]:
    """`creditgov.job.run` vs read + encode + `lightgbm.train` of the same model, interleaved."""
    data, rounds, repeats, log = context.data, context.fixed_rounds, context.repeats, context.log
    store = context.workdir / "mlflow-job"
    config = job_config(data, store=store, overrides=fixed_work(rounds.used))
    splits = prepare(config)
    encoded = model_inputs(config, splits)
    inputs = bare_inputs(config, encoded)
    positions = _file_positions(data.path, config.data.id_column or "", splits.train)

    def read_encode() -> tuple[NDArray[np.float64], NDArray[np.int8]]:
        return _read_encode(
            data.path,
            specs=inputs.specs,
            target=config.data.target,
            positive=config.data.positive_label,
            positions=positions,
        )

    x, y = read_encode()
    if not (
        np.array_equal(x, inputs.x_train, equal_nan=True) and np.array_equal(y, inputs.y_train)
    ):
        raise NotSameWork("the bare side's read + encode does not give creditgov's train matrix")

    store_s = fresh_store(config, store)
    log(f"job: cold run (imports, first use of the store), then {repeats} interleaved rounds")
    cold, cold_clock = timed_job(config)
    same = _check_same_job(cold, config, inputs, rounds.used)

    def bare_job() -> lgb.Booster:
        x, _ = read_encode()
        return bare_train(inputs, rounds.used, x=x)

    import mlflow

    uri = config.tracking.uri
    assert uri is not None  # job_config(store=...) set it
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    bare_experiment = mlflow.MlflowClient().create_experiment(
        "bare-lightgbm", artifact_location=(store / "bare-artifacts").as_uri()
    )
    example = stages.input_example(splits.train)
    encoded_example = pd.DataFrame(encode(example, inputs.specs), columns=inputs.names)

    def bare_mlflow_job() -> str:
        return _bare_mlflow(bare_job(), inputs.params, encoded_example, bare_experiment)

    bare_job()  # warm-up, as the cold job run is for the job side
    bare_mlflow_job()
    stage_runs: list[dict[str, float]] = []

    def job_side() -> None:
        _, clock = timed_job(config)
        stage_runs.append(clock.durations())

    samples = interleave(
        {"creditgov": job_side, "bare": bare_job, "bare_mlflow": bare_mlflow_job},
        repeats,
        on_sample=reporter(log),
    )
    a, b = samples["creditgov"].median, samples["bare"].median
    c = samples["bare_mlflow"].median
    stage_medians = {
        name: statistics.median(run[name] for run in stage_runs) for name in stage_runs[0]
    }
    own_path = [
        sum(s for name, s in run.items() if not name.startswith(EVIDENCE_STAGES))
        for run in stage_runs
    ]
    training_path = statistics.median(own_path)
    log("job: timing the suspects inside the stages one by one")
    parts, broken = _job_parts(config, encoded, read_encode, repeats)
    log("job: one more run under cProfile")
    profile = _profile_job(config)
    breakdown = [
        *({"part": name, "median_s": s, "share": s / a} for name, s in stage_medians.items()),
        {"part": "job total (wall, outside run)", "median_s": a, "share": 1.0},
        {
            "part": "job without evidence, report and PII scan",
            "median_s": training_path,
            "share": training_path / a,
        },
        {"part": "bare: read + encode + train", "median_s": b, "share": b / a},
        {
            "part": "bare: read + encode + train + MLflow log + register",
            "median_s": c,
            "share": c / a,
        },
        *({"part": f"apart: {name}", "median_s": s, "share": s / a} for name, s in parts.items()),
    ]
    includes = {
        "creditgov": (
            "creditgov.job.run(config), every stage: read + validate + split the parquet, "
            "tracking setup (sqlite store, git lineage), log params / tags / config / dataset / "
            "splits, encode every split once (kind.inputs), the fit step, calibration and cut-off, "
            "predict every split, testing (metrics, SHAP reason codes, fairness, drift, gates), "
            "log the pyfunc model (MLflow validates the input example), register a version, "
            "write and log the reviewer's report. Store and experiment created before timing"
        ),
        "bare": (
            "pd.read_parquet(feature + target columns) -> take the job's train rows (row "
            "numbers found before timing) -> vectorised encode (pd.Categorical codes with the "
            "job's levels) -> lgb.Dataset + lgb.train(same params, same rounds). No "
            "validation, split, valid set, metrics or MLflow"
        ),
    }
    details = {
        "rows": {"file": data.rows, "train": splits.train.n_rows},
        "rounds": rounds.to_json(),
        "same_work": same,
        "store_setup_s": store_s,
        "cold_run": {
            "wall_s": cold_clock.ended - cold_clock.started,
            "stages": cold_clock.durations(),
        },
        "samples": samples_json(samples),
        "cpu_ratio": samples["creditgov"].cpu_median / samples["bare"].cpu_median,
        "min_ratio": min_ratio(samples["creditgov"], samples["bare"]),
        "stage_runs": stage_runs,
        "parts_broken": broken,
        "profile": profile,
        "breakdown": {"title": "Whole job: stages (medians)", "rows": breakdown},
    }
    includes["bare_mlflow"] = (
        "bare, then one MLflow run: log_params, mlflow.lightgbm.log_model (native text "
        "format, signature from the job's input example, pinned requirements), "
        "register_model — a LightGBM user logging and registering the same booster by hand"
    )
    includes["creditgov_training_path"] = (
        "the job's stages without evidence (metrics, SHAP, fairness, drift, gates), "
        "the reviewer's report and the PII scan, summed from the same timed runs"
    )
    return [
        BenchResult.ratio(
            "job",
            "whole job vs bare read + lgb.train",
            a,
            b,
            target=JOB_TARGET,
            includes=includes,
            details=details,
        ),
        BenchResult.ratio(
            "job_vs_bare_mlflow",
            "(info) whole job vs bare read + train + MLflow log + register",
            a,
            c,
            target=None,
            includes={"creditgov": includes["creditgov"], "bare": includes["bare_mlflow"]},
            details={"min_ratio": min_ratio(samples["creditgov"], samples["bare_mlflow"])},
        ),
        BenchResult.ratio(
            "job_training_path",
            "job w/o evidence vs bare read + train + MLflow log + register",
            training_path,
            c,
            target=JOB_TARGET,
            includes={
                "creditgov": includes["creditgov_training_path"],
                "bare": includes["bare_mlflow"],
            },
            details={"own_path_runs_s": own_path},
        ),
        BenchResult.ratio(
            "job_training_path_vs_bare_train",
            "(info) job w/o evidence vs bare read + lgb.train (no MLflow)",
            training_path,
            b,
            target=None,
            includes={"creditgov": includes["creditgov_training_path"], "bare": includes["bare"]},
            details={"own_path_runs_s": own_path},
        ),
    ]


def _job_parts(
    config: JobConfig,
    inputs: ModelInputs,
    read_encode: Callable[[], object],
    repeats: int,
) -> tuple[dict[str, float], dict[str, str]]:
    """Median seconds of pieces of the job outside boosting, each timed on its own.

    The stage clock says which stage is slow; these say which call inside it. They use the
    job's public helpers. The job is being extended while these benchmarks exist, so a
    piece whose helper has moved is reported as broken (second dict) rather than losing
    the whole benchmark.
    """
    from registry.tracking import git_commit

    splits = inputs.splits
    fitted = stages.fit_final(config, inputs, {})
    source = Path(config.data.source)

    pieces: dict[str, Callable[[], object]] = {
        "job.prepare (read + validate + split)": lambda: prepare(config),
        "bare read + encode (for comparison)": read_encode,
        "kind.inputs (encode every split once, before tuning and the fit)": lambda: model_inputs(
            config, splits
        ),
        "git lineage (git_commit as the job calls it)": lambda: (
            git_commit(source.parent) or git_commit(Path.cwd())
        ),
        "dataset input (lineage.dataset_input, before log_input)": lambda: dataset_input(
            splits, config
        ),
        "evaluate (metrics, SHAP, fairness, drift, gates)": lambda: stages.evaluate_model(
            config, fitted, splits
        ),
        "stages.input_example": lambda: stages.input_example(splits.train),
    }
    usable: dict[str, Callable[[], object]] = {}
    broken: dict[str, str] = {}
    for name, fn in pieces.items():
        try:
            fn()
        except Exception as error:
            broken[name] = f"{type(error).__name__}: {error}"
        else:
            usable[name] = fn
    # Diagnostics, not the verdict: three rounds bound the time the slow pieces take.
    timed = interleave(usable, min(repeats, 3))
    return {k: v.median for k, v in timed.items()}, broken


def _profile_job(config: JobConfig, top: int = 25) -> dict[str, Any]:
    """One more job run under cProfile: the functions the time goes to, by self and total.

    cProfile makes Python-heavy code (per-row loops) look slower than it is next to
    compiled code, so read it for where to look, and the stage clock for how much.
    """
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    try:
        run_job(config)
    finally:
        profiler.disable()
    wall = time.perf_counter() - started
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows: list[dict[str, Any]] = [
        {
            "function": f"{_short_path(path)}:{line}({name})",
            "calls": int(stats[1]),
            "self_s": round(float(stats[2]), 4),
            "cumulative_s": round(float(stats[3]), 4),
        }
        for (path, line, name), stats in raw.items()
    ]
    return {
        "wall_s": wall,
        "by_self": sorted(rows, key=lambda r: -r["self_s"])[:top],
        "by_cumulative": sorted(rows, key=lambda r: -r["cumulative_s"])[: 2 * top],
    }


def _short_path(path: str) -> str:
    for marker in ("site-packages/", f"{CONFIG.parent.parent}/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def _check_same_job(
    result: JobResult, config: JobConfig, inputs: BareInputs, rounds: int
) -> dict[str, Any]:
    """The job's logged model is the bare model: same best iteration, same valid AUC."""
    from mlflow.tracking import MlflowClient

    logged = MlflowClient(tracking_uri=result.tracking_uri).get_run(result.run_id).data.metrics
    bare = bare_train(inputs, rounds)
    auc = get_metric("auc").fn
    assert auc is not None
    facts = {
        "rounds": rounds,
        "job_best_iteration": logged.get("best_iteration"),
        "job_valid_auc": result.metrics["valid"]["auc"],
        "bare_valid_auc": float(auc(inputs.y_valid, bare.predict(inputs.x_valid))),
        "bare_trees": bare.num_trees(),
    }
    if facts["job_best_iteration"] != rounds or facts["bare_trees"] != rounds:
        raise NotSameWork(f"the job and the bare side trained different rounds: {facts}")
    if facts["job_valid_auc"] != facts["bare_valid_auc"]:
        raise NotSameWork(f"the job's model is not the bare model: {facts}")
    return facts
