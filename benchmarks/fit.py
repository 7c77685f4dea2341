"""Fit step: creditgov's LightGBM fit next to bare `lightgbm.train` on the same matrix.

Measures the model kind's `fit` exactly as the job's final fit calls it
(`get_kind(config.model.type).fit(inputs, params=..., monotone=..., seed=...)` on the
splits encoded once beforehand by `kind.inputs`, as `job.run` does) against
`lgb.Dataset` + `lgb.train` on the same encoded matrix with the params `lightgbm_params`
builds. Two pairs, each doing the same boosting on both sides: fixed rounds (the rounds
the job with tuning off keeps, early stopping off) against `lgb.train` with no validation
set, and the shipped early stopping against `lgb.train` with the same validation set and
LightGBM's early-stopping callback. Before timing, both sides are checked to keep the same
trees with the same params and to predict the validation split the same (else
`NotSameWork`). What follows the fit step in the job (validation probabilities,
calibration and the cut-off: `finish_model`) is timed beside it, not in the ratio.
Target: each ratio <= 1.05.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np

from benchmarks.harness import (
    BareInputs,
    BenchResult,
    NotSameWork,
    bare_inputs,
    bare_train,
    fit_step,
    fixed_work,
    interleave,
    job_config,
    min_ratio,
    model_inputs,
    reporter,
    samples_json,
)
from creditgov.config import JobConfig
from creditgov.job import prepare
from training.models.base import ModelInputs
from training.models.kinds.lightgbm import LightGBMModel, training_rounds
from training.models.policy import ScoreScale
from training.models.spec import finish_model, valid_probabilities

if TYPE_CHECKING:
    from benchmarks.harness import Context

__all__ = ["FIT_TARGET", "bench"]

FIT_TARGET = 1.05
#: Two models from the same data, params and rounds must predict the same to this.
SAME_PREDICTIONS_ATOL = 1e-12


def bench(context: Context) -> list[BenchResult]:
    """creditgov's fit step vs `lightgbm.train` on the same encoded matrix, interleaved."""
    data, rounds, log = context.data, context.fixed_rounds, context.log
    config = job_config(data, overrides=fixed_work(rounds.used))
    started = time.perf_counter()
    splits = prepare(config)
    prepare_s = time.perf_counter() - started
    inputs = model_inputs(config, splits)
    bare = bare_inputs(config, inputs)
    stopping = job_config(data, overrides=["tuning.n_trials=0", "model.calibration=none"])
    max_rounds, patience = training_rounds(stopping.model.params)
    log(
        f"fit: {splits.train.n_rows} train / {splits.valid.n_rows} valid rows, "
        f"{rounds.used} fixed rounds, or up to {max_rounds} stopping after {patience}; "
        "checking both sides fit the same model"
    )
    same = _check_same_fit(
        fit_step(config, inputs), bare_train(bare, rounds.used), bare, rounds.used
    )
    stopped = bare_train(bare, max_rounds, early_stopping=patience)
    same_stopping = _check_same_fit(
        fit_step(stopping, inputs), stopped, bare, stopped.best_iteration, trimmed=True
    )

    sides: dict[str, Callable[[], object]] = {
        "creditgov": lambda: fit_step(config, inputs),
        "bare": lambda: bare_train(bare, rounds.used),
        "creditgov_stopping": lambda: fit_step(stopping, inputs),
        "bare_stopping": lambda: bare_train(bare, max_rounds, early_stopping=patience),
    }
    samples = interleave(sides, context.repeats, on_sample=reporter(log))
    parts = _fit_parts(config, inputs, bare, rounds.used, context.repeats)
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
            "get_kind(config.model.type).fit(inputs, params=config.model.params, "
            "monotone=..., seed=...), the fit step stages.fit_final starts with, early "
            "stopping off: lightgbm_params, the train matrix (encoded once by kind.inputs "
            "before the fit step, as the job does), lgb.Dataset, lgb.train with no "
            "validation set (nothing reads it per round; training booster kept), "
            "model_to_string, the LightGBMModel. Validation probabilities, calibration and "
            "the cut-off (finish_model) follow in stages.fit_final, timed apart below"
        ),
        "bare": (
            "lgb.Dataset(the same train matrix kind.inputs encoded, before timing; same "
            "names and categorical indices) + lgb.train(same params, same rounds); no "
            "valid set"
        ),
        "creditgov_stopping": (
            "as creditgov, with the shipped early stopping: lgb.Dataset x2, AUC on valid "
            "every round, the text model trimmed to the best iteration (valid is predicted "
            "once after the fit step, by stages.fit_final, as in fixed rounds)"
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
        "samples": samples_json(samples),
        "cpu_ratio": samples["creditgov"].cpu_median / samples["bare"].cpu_median,
        "min_ratio": min_ratio(samples["creditgov"], samples["bare"]),
        "breakdown": {"title": "Fit step: where the time goes (medians)", "rows": breakdown},
    }
    return [
        BenchResult.ratio(
            "fit",
            "fit step vs bare lgb.train (fixed rounds)",
            a,
            b,
            target=FIT_TARGET,
            includes={"creditgov": includes["creditgov"], "bare": includes["bare"]},
            details=details,
        ),
        BenchResult.ratio(
            "fit_stopping",
            "fit step vs bare lgb.train (early stopping)",
            c,
            d,
            target=FIT_TARGET,
            includes={
                "creditgov": includes["creditgov_stopping"],
                "bare": includes["bare_stopping"],
            },
            details={
                "min_ratio": min_ratio(samples["creditgov_stopping"], samples["bare_stopping"]),
                "cpu_ratio": samples["creditgov_stopping"].cpu_median
                / samples["bare_stopping"].cpu_median,
            },
        ),
    ]


def _tree_count(model_text: str) -> int:
    return sum(1 for line in model_text.splitlines() if line.startswith("Tree="))


def _check_same_fit(
    model: LightGBMModel,
    bare: lgb.Booster,
    inputs: BareInputs,
    rounds: int,
    *,
    trimmed: bool = False,
) -> dict[str, Any]:
    """Both sides kept `rounds` trees with the same params and predict the same.

    `trimmed`: the bare booster stopped early and holds `rounds` + patience trees, of which
    its `best_iteration` first ones are the model (creditgov keeps only those).
    """
    kept = bare.best_iteration if trimmed else bare.current_iteration()
    facts: dict[str, Any] = {
        "rounds": rounds,
        "creditgov_best_iteration": model.best_iteration,
        "creditgov_trees": _tree_count(model.model_text),
        "bare_kept_iteration": kept,
    }
    if any(v != rounds for v in facts.values()):
        raise NotSameWork(f"round / tree counts differ: {facts}")
    if dict(model.params) != dict(inputs.params):
        raise NotSameWork(f"params differ: creditgov {model.params} vs bare {inputs.params}")
    ours = model.raw_probability(inputs.x_valid)
    diff = float(np.max(np.abs(ours - bare.predict(inputs.x_valid, num_iteration=kept))))
    if diff > SAME_PREDICTIONS_ATOL:
        raise NotSameWork(f"valid predictions differ by up to {diff:g}")
    facts["max_abs_valid_prediction_diff"] = diff
    facts["params"] = dict(inputs.params)
    return facts


def _finish(config: JobConfig, model: LightGBMModel, inputs: ModelInputs) -> object:
    """What `stages.fit_final` does after the fit: predict valid, calibrate, cut-off.

    A fresh copy of the model each time, so its text is parsed into a booster again, as
    it is once per fitted model in the job.
    """
    fresh = replace(model)
    decision, score = config.decision, config.score
    # The decision rule's own settings, passed under their names as fit_final passes them.
    settings = ("approval_rate", "cost_false_negative", "cost_false_positive")
    return finish_model(
        fresh,
        valid_probabilities(fresh, inputs),
        inputs.splits.valid.target,
        task=config.task,
        calibration=config.model.calibration,
        score=ScoreScale(score.base_score, score.base_odds, score.pdo),
        decision_rule=decision.rule,
        threshold=decision.effective_threshold,
        **{name: getattr(decision, name) for name in settings},
    )


def _fit_parts(
    config: JobConfig, inputs: ModelInputs, bare: BareInputs, rounds: int, repeats: int
) -> dict[str, float]:
    """Median seconds of the fit step's pieces outside boosting, timed one by one, and of
    the steps around it (encoding, calibration and cut-off), which are not in the fit ratio."""
    booster = bare_train(bare, rounds)
    model = fit_step(config, inputs)
    pieces: dict[str, Callable[[], object]] = {
        "(after the fit step) predict valid, finish_model: calibrate, cut-off": lambda: _finish(
            config, model, inputs
        ),
        "(before the fit step) kind.inputs: encode train + valid + test once": lambda: model_inputs(
            config, inputs.splits
        ),
        "(for scale) predict valid with the booster": lambda: booster.predict(bare.x_valid),
        "model_to_string": lambda: booster.model_to_string(),
    }
    return {k: s.median for k, s in interleave(pieces, repeats).items()}
