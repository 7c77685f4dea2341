"""Training-job benchmarks: creditgov next to bare LightGBM, and the job's AUC next to Bayes.

Three questions, one function each:

- `bench_fit`: what does creditgov's fit step cost over `lightgbm.train` doing the same
  boosting on the same matrix? (target ratio <= 1.05)
- `bench_job`: what does the whole job (load, validate, split, log, fit, measure, register)
  cost over reading the parquet and training the same model bare? (target ratio <= 1.5)
- `bench_accuracy`: how far is the shipped config's out-of-time test AUC from the Bayes AUC
  of the same rows, known because the data is synthetic? (target gap <= 0.01)

"The same work" is checked, not assumed: both sides get the params `lightgbm_params` builds,
the same rows and the same number of boosting rounds, and the benchmark compares the models
they produce before it times anything. A mismatch raises `NotSameWork` instead of reporting
a ratio between two different things.

Everything is written under a temporary folder (data, MLflow stores, artifacts); the MLflow
experiment is created up front with its artifact location there, because a sqlite store
otherwise puts artifacts in ./mlruns of whatever folder the benchmark was started from.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.metrics import roc_auc_score
from training.models.lightgbm import (
    dataset_columns,
    lightgbm_params,
    raw_predict,
    training_rounds,
)

from benchmarks import BenchResult, Samples, interleave
from creditgov import job
from creditgov.config import JobConfig, load_config
from datasets import make_credit, write_table
from evaluation.metrics import get_metric
from training.data import Dataset
from training.models.encoding import FeatureSpec, encode, feature_specs
from training.models.spec import BaseFit
from training.split import Splits

__all__ = [
    "AUC_GAP_TARGET",
    "CONFIG",
    "FIT_TARGET",
    "JOB_TARGET",
    "CreditData",
    "NotSameWork",
    "Rounds",
    "StageClock",
    "bench_accuracy",
    "bench_fit",
    "bench_job",
    "choose_rounds",
    "make_data",
]

#: The shipped config every benchmark starts from; only data and tracking are redirected.
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "credit_scoring.yaml"
#: `model.params.early_stopping_rounds` that turns early stopping off (fixed rounds).
NO_EARLY_STOPPING = 0
FIT_TARGET = 1.05
JOB_TARGET = 1.5
AUC_GAP_TARGET = 0.01
#: Two models from the same data, params and rounds must predict the same to this.
SAME_PREDICTIONS_ATOL = 1e-12

Log = Callable[[str], None]


class NotSameWork(RuntimeError):
    """The two sides of a benchmark did not produce the same model; a ratio would mislead."""


# ----------------------------------------------------------------------------- shared inputs


@dataclass(frozen=True)
class CreditData:
    """The synthetic table on disk, and what only a synthetic table has: the true risk."""

    path: Path
    truth: pd.Series  # true P(default) of each row, indexed by application_id
    labels: pd.Series  # the drawn label of each row, indexed by application_id
    rows: int
    seed: int
    seconds: float  # generating and writing it, for the record


def make_data(folder: Path, rows: int, seed: int) -> CreditData:
    """`make_credit(rows, seed)` written to `folder/credit.parquet`, truth kept in memory."""
    started = time.perf_counter()
    data = make_credit(rows, seed=seed)
    path = folder / "credit.parquet"
    write_table(data.frame, path)
    ids = data.frame[data.id_column].to_numpy()
    target = next(c for c in data.frame.columns if c.startswith("default_"))
    return CreditData(
        path=path,
        truth=pd.Series(data.truth.to_numpy(), index=ids, name="truth"),
        labels=pd.Series(data.frame[target].to_numpy(), index=ids, name=target),
        rows=rows,
        seed=seed,
        seconds=time.perf_counter() - started,
    )


def job_config(
    data: CreditData, *, store: Path | None = None, overrides: Sequence[str] = ()
) -> JobConfig:
    """The shipped config on `data`, logging into `store` (a fresh sqlite file) if given."""
    sets = [f"data.source={data.path}"]
    if store is not None:
        sets.append(f"tracking.uri=sqlite:///{store / 'mlflow.db'}")
    return load_config(CONFIG, [*sets, *overrides])


def fixed_work(rounds: int) -> list[str]:
    """Overrides that make the job boost exactly `rounds` rounds and do nothing optional.

    Tuning off and calibration none, as the brief asks; early stopping off, so the round
    count is fixed and both sides boost the same trees.
    """
    return [
        "tuning.n_trials=0",
        "model.calibration=none",
        f"model.params.num_boost_round={rounds}",
        f"model.params.early_stopping_rounds={NO_EARLY_STOPPING}",
    ]


def fit_step(config: JobConfig, splits: Splits) -> BaseFit:
    """creditgov's fit step exactly as `job.run` calls it (no tuning: no best params).

    The boosting: `job.fit_final` is this, then `job.finish_final` (calibration and the
    cut-off on the validation split), which the bare side has no counterpart for; it is
    timed as its own line and counts in the whole-job ratio.
    """
    base: BaseFit = job.fit_base_model(config, splits, {})
    return base


@dataclass(frozen=True)
class BareInputs:
    """What the bare side is handed: the encoded matrices, labels and the job's params."""

    specs: tuple[FeatureSpec, ...]
    x_train: NDArray[np.float64]
    y_train: NDArray[np.int8]
    x_valid: NDArray[np.float64]
    y_valid: NDArray[np.int8]
    params: Mapping[str, Any]

    @property
    def names(self) -> list[str]:
        return dataset_columns(self.specs)[0]

    @property
    def categorical(self) -> list[int]:
        return dataset_columns(self.specs)[1]


def bare_inputs(config: JobConfig, splits: Splits) -> BareInputs:
    """Encode train and valid the way creditgov does, and build the params it would use."""
    train, valid = splits.train, splits.valid
    specs = feature_specs(train.features, train.categorical, train.integer)
    return BareInputs(
        specs=specs,
        x_train=encode(train.features, specs),
        y_train=train.target,
        x_valid=encode(valid.features, specs),
        y_valid=valid.target,
        params=lightgbm_params(
            config.model.params, specs=specs, monotone=config.model.monotone, seed=config.seed
        ),
    )


def bare_train(
    inputs: BareInputs,
    rounds: int,
    *,
    x: NDArray[np.float64] | None = None,
    early_stopping: int = 0,
) -> lgb.Booster:
    """Plain `lightgbm.train`: same Dataset arguments, same params, `rounds` rounds.

    `early_stopping` > 0 adds the validation set and LightGBM's own early-stopping
    callback with that patience, as a LightGBM user stopping early would write it.
    """
    train_set = lgb.Dataset(
        inputs.x_train if x is None else x,
        label=inputs.y_train,
        feature_name=inputs.names,
        categorical_feature=inputs.categorical,
        free_raw_data=True,
    )
    if not early_stopping:
        return lgb.train(dict(inputs.params), train_set, num_boost_round=rounds)
    valid_set = lgb.Dataset(inputs.x_valid, label=inputs.y_valid, reference=train_set)
    return lgb.train(
        dict(inputs.params),
        train_set,
        num_boost_round=rounds,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(early_stopping, first_metric_only=True, verbose=False)],
    )


@dataclass(frozen=True)
class Rounds:
    """How many boosting rounds both sides run, and why that many."""

    requested: int
    used: int
    valid_peak: int  # creditgov's best_iteration when given `requested` rounds

    def to_json(self) -> dict[str, int]:
        return {"requested": self.requested, "used": self.used, "valid_peak": self.valid_peak}


def choose_rounds(data: CreditData, requested: int) -> Rounds:
    """The rounds the job with tuning off keeps, capped at `requested`.

    The shipped config with tuning off boosts until early stopping and keeps the best
    validation iteration (`valid_peak`). Training is deterministic, so a fixed-round run
    of `peak` rounds repeats exactly those trees: the fixed-work benchmarks time the model
    the job would have made, without the rounds early stopping spends looking past it.
    """
    config = job_config(data, overrides=["tuning.n_trials=0", "model.calibration=none"])
    spec = fit_step(config, job.prepare(config))
    peak = int(spec.best_iteration or requested)
    return Rounds(requested=requested, used=min(requested, peak), valid_peak=peak)


def _tree_count(model_text: str) -> int:
    return sum(1 for line in model_text.splitlines() if line.startswith("Tree="))


def _check_same_fit(
    spec: BaseFit, bare: lgb.Booster, inputs: BareInputs, rounds: int, *, trimmed: bool = False
) -> dict[str, Any]:
    """Both sides kept `rounds` trees with the same params and predict the same.

    `trimmed`: the bare booster stopped early and holds `rounds` + patience trees, of which
    its `best_iteration` first ones are the model (creditgov keeps only those).
    """
    assert spec.model_text is not None
    kept = bare.best_iteration if trimmed else bare.current_iteration()
    facts: dict[str, Any] = {
        "rounds": rounds,
        "creditgov_best_iteration": spec.best_iteration,
        "creditgov_trees": _tree_count(spec.model_text),
        "bare_kept_iteration": kept,
    }
    if any(v != rounds for v in facts.values()):
        raise NotSameWork(f"round / tree counts differ: {facts}")
    if dict(spec.params) != dict(inputs.params):
        raise NotSameWork(f"params differ: creditgov {spec.params} vs bare {inputs.params}")
    ours = raw_predict(spec.model_text, inputs.x_valid)
    diff = float(np.max(np.abs(ours - bare.predict(inputs.x_valid, num_iteration=kept))))
    if diff > SAME_PREDICTIONS_ATOL:
        raise NotSameWork(f"valid predictions differ by up to {diff:g}")
    facts["max_abs_valid_prediction_diff"] = diff
    facts["params"] = dict(inputs.params)
    return facts


def _samples_json(samples: Mapping[str, Samples]) -> dict[str, Any]:
    return {name: s.to_json() for name, s in samples.items()}


def _min_ratio(a: Samples, b: Samples) -> float:
    """Ratio of the fastest runs: the least disturbed pair, a check on the median ratio."""
    return min(a.wall) / min(b.wall)


def _reporter(log: Log) -> Callable[[str, int, float], None]:
    def on_sample(side: str, round_: int, wall: float) -> None:
        log(f"  round {round_ + 1} {side}: {wall:.2f} s")

    return on_sample


# ----------------------------------------------------------------------------- 1. fit step


def bench_fit(data: CreditData, rounds: Rounds, *, repeats: int, log: Log) -> list[BenchResult]:
    """creditgov's fit step vs `lightgbm.train` on the same encoded matrix, interleaved.

    Two pairs, each doing the same boosting on both sides: fixed rounds (the rounds the
    job with tuning off keeps, early stopping off) against `lgb.train` with no validation
    set, and the shipped early stopping against `lgb.train` with the same validation set
    and LightGBM's early-stopping callback.
    """
    config = job_config(data, overrides=fixed_work(rounds.used))
    started = time.perf_counter()
    splits = job.prepare(config)
    prepare_s = time.perf_counter() - started
    inputs = bare_inputs(config, splits)
    stopping = job_config(data, overrides=["tuning.n_trials=0", "model.calibration=none"])
    max_rounds, patience = training_rounds(stopping.model.params)
    log(
        f"fit: {splits.train.n_rows} train / {splits.valid.n_rows} valid rows, "
        f"{rounds.used} fixed rounds, or up to {max_rounds} stopping after {patience}; "
        "checking both sides fit the same model"
    )
    same = _check_same_fit(
        fit_step(config, splits), bare_train(inputs, rounds.used), inputs, rounds.used
    )
    stopped = bare_train(inputs, max_rounds, early_stopping=patience)
    same_stopping = _check_same_fit(
        fit_step(stopping, splits), stopped, inputs, stopped.best_iteration, trimmed=True
    )

    sides: dict[str, Callable[[], object]] = {
        "creditgov": lambda: fit_step(config, splits),
        "bare": lambda: bare_train(inputs, rounds.used),
        "creditgov_stopping": lambda: fit_step(stopping, splits),
        "bare_stopping": lambda: bare_train(inputs, max_rounds, early_stopping=patience),
    }
    samples = interleave(sides, repeats, on_sample=_reporter(log))
    parts = _fit_parts(config, splits, inputs, rounds.used, repeats)
    a, b, c, d = (
        samples[k].median for k in ("creditgov", "bare", "creditgov_stopping", "bare_stopping")
    )
    breakdown = [
        {"part": f"bare lightgbm.train, {rounds.used} rounds", "median_s": b},
        {"part": "+ creditgov's own work (creditgov - bare)", "median_s": a - b},
        # Pieces in parentheses are not inside the fit step: shown for scale beside it.
        *(
            {"part": f"    {'beside it:' if k.startswith('(') else 'of which'} {k}", "median_s": v}
            for k, v in parts.items()
        ),
        {"part": "creditgov fit step, fixed rounds", "median_s": a},
        {"part": "bare lightgbm.train + valid set + early stopping", "median_s": d},
        {"part": "creditgov fit step, early stopping", "median_s": c},
    ]
    includes = {
        "creditgov": (
            "creditgov.job.fit_base_model(...), the fit step job.fit_final starts with, "
            "early stopping off: the train split's feature specs (remembered from "
            "preparing), its encoded matrix (encoded while preparing), lgb.Dataset, "
            "lgb.train with no validation set (nothing reads it per round; training "
            "booster kept), model_to_string. Calibration and the cut-off on valid follow "
            "in job.finish_final, timed apart below"
        ),
        "bare": (
            "lgb.Dataset(train matrix from training.models.encoding.encode, encoded once "
            "before timing; same names and categorical indices) + lgb.train(same params, "
            "same rounds); no valid set"
        ),
        "creditgov_stopping": (
            "as creditgov, with the shipped early stopping: lgb.Dataset x2, AUC on valid "
            "every round, the text model trimmed to the best iteration (valid is predicted "
            "once after the fit step, by job.finish_final, as in fixed rounds)"
        ),
        "bare_stopping": (
            "as bare, plus the same valid set and lgb.early_stopping(patience, "
            "first_metric_only=True) — LightGBM's own early stopping"
        ),
    }
    details = {
        "rows": {"train": splits.train.n_rows, "valid": splits.valid.n_rows},
        "prepare_s": prepare_s,
        "rounds": rounds.to_json(),
        "early_stopping": {"max_rounds": max_rounds, "patience": patience},
        "same_work": same,
        "same_work_stopping": same_stopping,
        "samples": _samples_json(samples),
        "cpu_ratio": samples["creditgov"].cpu_median / samples["bare"].cpu_median,
        "min_ratio": _min_ratio(samples["creditgov"], samples["bare"]),
        "breakdown": {"title": "Fit step: where the time goes (medians)", "rows": breakdown},
    }
    return [
        BenchResult(
            name="fit",
            title="fit step vs bare lgb.train (fixed rounds)",
            kind="ratio",
            creditgov=a,
            reference=b,
            value=a / b,
            target=FIT_TARGET,
            unit="s",
            includes={"creditgov": includes["creditgov"], "bare": includes["bare"]},
            details=details,
        ),
        BenchResult(
            name="fit_stopping",
            title="fit step vs bare lgb.train (early stopping)",
            kind="ratio",
            creditgov=c,
            reference=d,
            value=c / d,
            target=FIT_TARGET,
            unit="s",
            includes={
                "creditgov": includes["creditgov_stopping"],
                "bare": includes["bare_stopping"],
            },
            details={
                "min_ratio": _min_ratio(samples["creditgov_stopping"], samples["bare_stopping"]),
                "cpu_ratio": samples["creditgov_stopping"].cpu_median
                / samples["bare_stopping"].cpu_median,
            },
        ),
    ]


def _fit_parts(
    config: JobConfig, splits: Splits, inputs: BareInputs, rounds: int, repeats: int
) -> dict[str, float]:
    """Median seconds of the fit step's pieces outside boosting, timed one by one, and of
    the step after it (calibration and cut-off), which is not part of the fit ratio."""
    booster = bare_train(inputs, rounds)
    train, valid = splits.train, splits.valid
    base = fit_step(config, splits)
    calls = itertools.count(1)

    def finish() -> object:
        # A model text not seen before (trailing newlines), so the validation split is
        # predicted and the text parsed again each time, as in the job's one call
        # (raw_predict remembers the last model's probabilities of a matrix).
        fresh = replace(base, model_text=f"{base.model_text}{chr(10) * next(calls)}")
        return job.finish_final(config, splits, fresh)

    pieces: dict[str, Callable[[], object]] = {
        "(after the fit step) job.finish_final: predict valid, calibrate, cut-off": finish,
        "(done while preparing) encode train + valid": lambda: (
            encode(train.features, inputs.specs),
            encode(valid.features, inputs.specs),
        ),
        "(for scale) predict valid with the booster": lambda: booster.predict(inputs.x_valid),
        "model_to_string": lambda: booster.model_to_string(),
    }
    return {k: s.median for k, s in interleave(pieces, repeats).items()}


# ----------------------------------------------------------------------------- 2. whole job


@dataclass
class StageClock:
    """A `creditgov.job.Progress` that notes when each stage starts, to time the stages.

    A stage runs from its `stage()` call to the next one; the last runs until `finish()`.
    Whatever `run` does before its first stage call is reported as its own line.
    """

    started: float = 0.0
    ended: float = 0.0
    marks: list[tuple[str, float]] = field(default_factory=list)
    trials: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> None:
        self.started = time.perf_counter()

    def stage(self, name: str) -> None:
        self.marks.append((name, time.perf_counter()))

    def trial(
        self, number: int, state: str, value: float | None, best: float | None, total: int
    ) -> None:
        self.trials.append({"number": number, "state": state, "value": value, "best": best})

    def finish(self) -> None:
        self.ended = time.perf_counter()

    def durations(self) -> dict[str, float]:
        out = {"(before the first stage)": self.marks[0][1] - self.started} if self.marks else {}
        ends = [t for _, t in self.marks[1:]] + [self.ended]
        for (name, begun), end in zip(self.marks, ends, strict=True):
            out[name] = end - begun
        return out


def _run_job(config: JobConfig) -> tuple[job.JobResult, StageClock]:
    clock = StageClock()
    clock.start()
    result = job.run(config, progress=clock)
    clock.finish()
    return result, clock


def _fresh_store(config: JobConfig, store: Path) -> float:
    """Create the sqlite store and the job's experiment, artifacts inside `store`.

    Returns the seconds it took (mostly MLflow creating its schema), reported apart: a
    real store is created once, not per job.
    """
    from mlflow.tracking import MlflowClient

    started = time.perf_counter()
    store.mkdir(parents=True, exist_ok=True)
    uri = config.tracking.uri
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_experiment(config.name, artifact_location=(store / "artifacts").as_uri())
    return time.perf_counter() - started


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


def bench_job(
    data: CreditData, rounds: Rounds, *, repeats: int, workdir: Path, log: Log
) -> list[BenchResult]:
    """`creditgov.job.run` vs read + encode + `lightgbm.train` of the same model, interleaved."""
    store = workdir / "mlflow-job"
    config = job_config(data, store=store, overrides=fixed_work(rounds.used))
    splits = job.prepare(config)
    inputs = bare_inputs(config, splits)
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

    store_s = _fresh_store(config, store)
    log(f"job: cold run (imports, first use of the store), then {repeats} interleaved rounds")
    cold, cold_clock = _run_job(config)
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
    example = job.input_example(splits.train)
    encoded_example = pd.DataFrame(encode(example, inputs.specs), columns=inputs.names)

    def bare_mlflow_job() -> str:
        return _bare_mlflow(bare_job(), inputs.params, encoded_example, bare_experiment)

    bare_job()  # warm-up, as the cold job run is for the job side
    bare_mlflow_job()
    stage_runs: list[dict[str, float]] = []

    def job_side() -> None:
        _, clock = _run_job(config)
        stage_runs.append(clock.durations())

    samples = interleave(
        {"creditgov": job_side, "bare": bare_job, "bare_mlflow": bare_mlflow_job},
        repeats,
        on_sample=_reporter(log),
    )
    a, b = samples["creditgov"].median, samples["bare"].median
    c = samples["bare_mlflow"].median
    stages = {name: statistics.median(run[name] for run in stage_runs) for name in stage_runs[0]}
    own_path = [
        sum(s for name, s in run.items() if not name.startswith(EVIDENCE_STAGES))
        for run in stage_runs
    ]
    training_path = statistics.median(own_path)
    log("job: timing the suspects inside the stages one by one")
    parts, broken = _job_parts(config, splits, read_encode, repeats)
    log("job: one more run under cProfile")
    profile = _profile_job(config)
    breakdown = [
        *({"part": name, "median_s": s, "share": s / a} for name, s in stages.items()),
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
            "splits, the fit step, testing (metrics, SHAP reason codes, fairness, drift, gates), "
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
        "samples": _samples_json(samples),
        "cpu_ratio": samples["creditgov"].cpu_median / samples["bare"].cpu_median,
        "min_ratio": _min_ratio(samples["creditgov"], samples["bare"]),
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
        BenchResult(
            name="job",
            title="whole job vs bare read + lgb.train",
            kind="ratio",
            creditgov=a,
            reference=b,
            value=a / b,
            target=JOB_TARGET,
            unit="s",
            includes=includes,
            details=details,
        ),
        BenchResult(
            name="job_vs_bare_mlflow",
            title="(info) whole job vs bare read + train + MLflow log + register",
            kind="ratio",
            creditgov=a,
            reference=c,
            value=a / c,
            target=None,
            unit="s",
            includes={"creditgov": includes["creditgov"], "bare": includes["bare_mlflow"]},
            details={"min_ratio": _min_ratio(samples["creditgov"], samples["bare_mlflow"])},
        ),
        BenchResult(
            name="job_training_path",
            title="job w/o evidence vs bare read + train + MLflow log + register",
            kind="ratio",
            creditgov=training_path,
            reference=c,
            value=training_path / c,
            target=JOB_TARGET,
            unit="s",
            includes={
                "creditgov": includes["creditgov_training_path"],
                "bare": includes["bare_mlflow"],
            },
            details={"own_path_runs_s": own_path},
        ),
        BenchResult(
            name="job_training_path_vs_bare_train",
            title="(info) job w/o evidence vs bare read + lgb.train (no MLflow)",
            kind="ratio",
            creditgov=training_path,
            reference=b,
            value=training_path / b,
            target=None,
            unit="s",
            includes={"creditgov": includes["creditgov_training_path"], "bare": includes["bare"]},
            details={"own_path_runs_s": own_path},
        ),
    ]


def _job_parts(
    config: JobConfig,
    splits: Splits,
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

    spec = job.fit_final(config, splits, {})
    source = Path(config.data.source)

    def evidence() -> object:
        from evaluation.evidence import evaluate

        return evaluate(
            spec,
            splits,
            model_name=config.registry.model_name,
            gates=config.gates,
            settings=job.explain_settings(config),
            seed=config.seed,
        )

    pieces: dict[str, Callable[[], object]] = {
        "job.prepare (read + validate + split)": lambda: job.prepare(config),
        "bare read + encode (for comparison)": read_encode,
        "git lineage (git_commit as the job calls it)": lambda: (
            git_commit(source.parent) or git_commit(Path.cwd())
        ),
        "dataset input (job.dataset_input, before log_input)": lambda: job.dataset_input(
            splits, config
        ),
        "evaluate (metrics, SHAP, fairness, drift, gates)": evidence,
        "job.input_example": lambda: job.input_example(splits.train),
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
        job.run(config)
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
    result: job.JobResult, config: JobConfig, inputs: BareInputs, rounds: int
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


# ----------------------------------------------------------------------------- 3. accuracy


def bench_accuracy(
    data: CreditData, *, workdir: Path, log: Log, trials: int | None = None
) -> list[BenchResult]:
    """The shipped config's out-of-time test AUC vs the Bayes AUC of the same test rows."""
    store = workdir / "mlflow-accuracy"
    config = job_config(
        data, store=store, overrides=[] if trials is None else [f"tuning.n_trials={trials}"]
    )
    _fresh_store(config, store)
    log(
        f"accuracy: shipped config, {config.tuning.n_trials} tuning trials, "
        f"calibration {config.model.calibration}, {data.rows} rows"
    )
    result, clock = _run_job(config)
    log(f"accuracy: job done in {clock.ended - clock.started:.1f} s")

    splits = job.prepare(config)  # deterministic: the job's own split, for the rows' ids
    id_column = config.data.id_column or ""
    scores: dict[str, dict[str, float]] = {}
    for name in ("valid", "test"):
        part = splits.parts()[name]
        assert part.ids is not None
        ids = part.ids.to_numpy()
        truth = data.truth.reindex(ids)
        if truth.isna().any() or not np.array_equal(data.labels.reindex(ids), part.target):
            raise NotSameWork(f"the {name} rows do not match the synthetic table by id")
        scores[name] = {
            "job_auc": result.metrics[name]["auc"],
            "served_model_auc": float(
                roc_auc_score(part.target, _served(result, data.path, id_column, ids))
            ),
            "bayes_auc": float(roc_auc_score(part.target, truth.to_numpy())),
            "rows": float(part.n_rows),
            "bads": float(part.target.sum()),
        }
    test = scores["test"]
    bare_auc, bare_iteration = _bare_default_auc(config, splits)
    states = [t["state"] for t in clock.trials]
    details = {
        "scores": scores,
        "gap_served_model": test["bayes_auc"] - test["served_model_auc"],
        "bare_lightgbm_defaults": {
            "test_auc": bare_auc,
            "gap": test["bayes_auc"] - bare_auc,
            "best_iteration": bare_iteration,
            "what": "lightgbm defaults (+ seed, 2 threads), early stopping 50 on the same valid split",
        },
        "best_params": dict(result.best_params),
        "n_trials": result.n_trials,
        "trial_states": {s: states.count(s) for s in sorted(set(states))},
        "job_wall_s": clock.ended - clock.started,
        "breakdown": {
            "title": "Accuracy job: stages",
            "rows": [{"part": k, "median_s": v} for k, v in clock.durations().items()],
        },
    }
    return [
        BenchResult(
            name="accuracy",
            title="OOT test AUC vs Bayes AUC",
            kind="gap",
            creditgov=test["job_auc"],
            reference=test["bayes_auc"],
            value=test["bayes_auc"] - test["job_auc"],
            target=AUC_GAP_TARGET,
            unit="AUC",
            includes={
                "creditgov": "job.run(shipped credit_scoring config): test_auc it logged",
                "reference": (
                    "roc_auc_score(test labels, true P(default) of the same rows matched by "
                    "application_id) from make_credit(...).truth"
                ),
            },
            details=details,
        )
    ]


def _served(
    result: job.JobResult, path: Path, id_column: str, ids: NDArray[Any]
) -> NDArray[np.float64]:
    """Probabilities of the registered model on the raw file rows: a check on `test_auc`."""
    import mlflow

    model = mlflow.pyfunc.load_model(result.model_uri)
    names = [str(n) for n in model.metadata.get_input_schema().input_names()]
    frame = pd.read_parquet(path, columns=[id_column, *names])
    frame = frame.set_index(id_column).loc[ids, names].reset_index(drop=True)
    return np.asarray(model.predict(frame)["probability"], dtype=np.float64)


def _bare_default_auc(config: JobConfig, splits: Splits) -> tuple[float, int]:
    """Test AUC of LightGBM with library defaults: is the gap creditgov's or the data's?"""
    inputs = bare_inputs(config, splits)
    train = lgb.Dataset(
        inputs.x_train,
        label=inputs.y_train,
        feature_name=inputs.names,
        categorical_feature=inputs.categorical,
    )
    valid = lgb.Dataset(inputs.x_valid, label=inputs.y_valid, reference=train)
    params = {
        "objective": "binary",
        "metric": "auc",
        "verbosity": -1,
        "num_threads": 2,
        "seed": config.seed,
    }
    booster = lgb.train(
        params,
        train,
        num_boost_round=5000,
        valid_sets=[valid],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    x_test = encode(splits.test.features, inputs.specs)
    p = booster.predict(x_test, num_iteration=booster.best_iteration)
    return float(roc_auc_score(splits.test.target, p)), int(booster.best_iteration)
