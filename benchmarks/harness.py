"""What every benchmark shares: interleaved timing, the result row, the run's context, the data.

Interleaving (`interleave`, `Samples`) and the result row (`BenchResult`) are used by every
benchmark; `Context` is what `python -m benchmarks` hands each benchmark module's
`bench(context) -> list[BenchResult]`. The rest serves the training-job benchmarks (fit,
job, accuracy): the synthetic credit table with its true risk (`make_data`), the shipped
config pointed at it (`job_config`, `fixed_work`), the rounds both sides boost
(`choose_rounds`), creditgov's fit step as the job calls it (`fit_step`), the bare
LightGBM side on the same matrix (`bare_inputs`, `bare_train`), a stage clock for
`creditgov.job.run`, and `NotSameWork`, raised when two sides turn out not to do the same
work.

Everything is written under a temporary folder (data, MLflow stores, artifacts); the
MLflow experiment is created up front with its artifact location there, because a sqlite
store otherwise puts artifacts in ./mlruns of whatever folder the benchmark was started
from.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from creditgov import stages
from creditgov.config import JobConfig, load_config
from creditgov.job import JobResult, prepare
from creditgov.job import run as run_job
from datasets import make_credit, write_table
from training.models.base import FittedModel, ModelInputs
from training.models.encoding import FeatureSpec
from training.models.kinds.lightgbm import LightGBMModel, dataset_columns, lightgbm_params
from training.models.registry import get_kind
from training.split import Splits

__all__ = [
    "CONFIG",
    "BareInputs",
    "BenchResult",
    "Context",
    "CreditData",
    "Log",
    "NotSameWork",
    "Rounds",
    "Samples",
    "StageClock",
    "bare_inputs",
    "bare_train",
    "choose_rounds",
    "fit_step",
    "fixed_work",
    "fresh_store",
    "interleave",
    "job_config",
    "make_data",
    "min_ratio",
    "model_inputs",
    "reporter",
    "samples_json",
    "timed_job",
]

#: The shipped config every benchmark starts from; only data and tracking are redirected.
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "credit_scoring.yaml"
#: `model.params.early_stopping_rounds` that turns early stopping off (fixed rounds).
NO_EARLY_STOPPING = 0

Log = Callable[[str], None]


class NotSameWork(RuntimeError):
    """The two sides of a benchmark did not produce the same model; a ratio would mislead."""


# ----------------------------------------------------------------------------- timing, results


@dataclass(frozen=True)
class BenchResult:
    """One row of the report: creditgov's figure next to the reference's, and the verdict.

    `kind` says how to read it: "ratio" is creditgov median / bare median (lower is better,
    target is the largest acceptable ratio); "gap" is reference - creditgov on a score such
    as AUC (target is the largest acceptable gap). `target` None marks an informational row.
    """

    name: str
    title: str
    kind: Literal["ratio", "gap"]
    creditgov: float
    reference: float
    value: float
    target: float | None
    unit: str
    includes: Mapping[str, str] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "creditgov": self.creditgov,
            "reference": self.reference,
            "value": self.value,
            "target": self.target,
            "passed": self.passed,
            "unit": self.unit,
            "includes": dict(self.includes),
            "details": dict(self.details),
        }

    @classmethod
    def ratio(
        cls,
        name: str,
        title: str,
        creditgov: float,
        reference: float,
        *,
        target: float | None,
        includes: Mapping[str, str],
        details: Mapping[str, Any],
    ) -> BenchResult:
        """A "ratio" row in seconds: creditgov / reference."""
        return cls(
            name=name,
            title=title,
            kind="ratio",
            creditgov=creditgov,
            reference=reference,
            value=creditgov / reference,
            target=target,
            unit="s",
            includes=includes,
            details=details,
        )

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> BenchResult:
        """The row again from `to_json` (whose `passed` is derived, so dropped)."""
        return cls(**{k: v for k, v in row.items() if k != "passed"})


@dataclass
class Samples:
    """Wall and CPU seconds of each repetition of one side, in the order they ran.

    CPU time is kept beside wall time because it is less sensitive to a neighbour taking
    a core (though LightGBM's OpenMP threads spin while they wait, so it is not immune).
    """

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu)

    def to_json(self) -> dict[str, Any]:
        return {
            "median_s": self.median,
            "min_s": min(self.wall),
            "max_s": max(self.wall),
            "wall_s": self.wall,
            "cpu_median_s": self.cpu_median,
            "cpu_s": self.cpu,
        }


def interleave(
    sides: Mapping[str, Callable[[], object]],
    repeats: int,
    *,
    on_sample: Callable[[str, int, float], None] | None = None,
) -> dict[str, Samples]:
    """Run every side once per round, in the given order, `repeats` rounds; time each call.

    A garbage collection before each call keeps one side's garbage from being collected on
    the other side's clock.
    """
    out = {name: Samples() for name in sides}
    for round_ in range(repeats):
        for name, fn in sides.items():
            gc.collect()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            fn()
            wall = time.perf_counter() - wall0
            out[name].wall.append(wall)
            out[name].cpu.append(time.process_time() - cpu0)
            if on_sample is not None:
                on_sample(name, round_, wall)
    return out


def samples_json(samples: Mapping[str, Samples]) -> dict[str, Any]:
    return {name: s.to_json() for name, s in samples.items()}


def min_ratio(a: Samples, b: Samples) -> float:
    """Ratio of the fastest runs: the least disturbed pair, a check on the median ratio."""
    return min(a.wall) / min(b.wall)


def reporter(log: Log) -> Callable[[str, int, float], None]:
    """An `interleave` callback that logs each timed call."""

    def on_sample(side: str, round_: int, wall: float) -> None:
        log(f"  round {round_ + 1} {side}: {wall:.2f} s")

    return on_sample


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


def model_inputs(config: JobConfig, splits: Splits) -> ModelInputs:
    """The splits encoded once by the config's model kind, as `job.run` does before fitting."""
    return stages.model_inputs(config, splits)


def fit_step(config: JobConfig, inputs: ModelInputs) -> LightGBMModel:
    """creditgov's fit step exactly as `stages.fit_final` calls it (no tuning: no best params).

    `fit_final` is this, then the validation probabilities, calibration and the cut-off
    (`training.models.spec.finish_model`), which the bare side has no counterpart for;
    they are timed as their own line and count in the whole-job ratio. The bare side is
    LightGBM, so a model of any other kind is not the same work.
    """
    best_params: dict[str, Any] = {}
    model: FittedModel = get_kind(config.model.type).fit(
        inputs,
        params={**config.model.params, **best_params},
        monotone=config.model.monotone,
        seed=config.seed,
    )
    if not isinstance(model, LightGBMModel):
        raise NotSameWork(f"the bare side is LightGBM, the config fits {type(model).__name__}")
    return model


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


def bare_inputs(config: JobConfig, inputs: ModelInputs) -> BareInputs:
    """The matrices creditgov encoded (the same arrays), and the params it would build."""
    splits = inputs.splits
    return BareInputs(
        specs=inputs.features,
        x_train=inputs.train,
        y_train=splits.train.target,
        x_valid=inputs.valid,
        y_valid=splits.valid.target,
        params=lightgbm_params(
            config.model.params,
            specs=inputs.features,
            monotone=config.model.monotone,
            seed=config.seed,
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
    model = fit_step(config, model_inputs(config, prepare(config)))
    peak = int(model.best_iteration or requested)
    return Rounds(requested=requested, used=min(requested, peak), valid_peak=peak)


# ----------------------------------------------------------------------------- the whole job


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


def timed_job(config: JobConfig) -> tuple[JobResult, StageClock]:
    """`creditgov.job.run(config)` with a stage clock."""
    clock = StageClock()
    clock.start()
    result = run_job(config, progress=clock)
    clock.finish()
    return result, clock


def fresh_store(config: JobConfig, store: Path) -> float:
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


# ----------------------------------------------------------------------------- the run


@dataclass(frozen=True)
class Context:
    """What `python -m benchmarks` hands every benchmark's `bench(context)`.

    `rounds` is chosen once for the benchmarks that boost fixed rounds (fit, job) and is
    None when none of them runs. `record` collects extra top-level sections of the result
    document (`note`), such as the SHAP benchmark's model.
    """

    rows: int
    repeats: int
    seed: int
    trials: int | None
    workdir: Path
    data: CreditData
    log: Log
    rounds: Rounds | None = None
    record: dict[str, Any] = field(default_factory=dict)

    @property
    def fixed_rounds(self) -> Rounds:
        if self.rounds is None:
            raise RuntimeError("the rounds were not chosen for this run (no fit or job)")
        return self.rounds

    @property
    def few_repeats(self) -> int:
        """Repeats for the slower, less noisy benchmarks: between 3 and 5."""
        return max(3, min(self.repeats, 5))

    def note(self, key: str, value: Any) -> None:
        """A top-level section of the result document."""
        self.record[key] = value
