"""ModelSpec: everything the served model needs, as text and numbers, and how it is fitted.

A ModelSpec is what gets logged: LightGBM's native text model or the scorecard's tables,
the calibration map, the score scaling and the decision rule. `state()` is the JSON the
served model (`registry/scoring_model.py`) reads; `predict` here computes the same thing
in-process so the job can measure the model it is about to register.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from training.data import Dataset
from training.models.calibration import Calibration, fit_calibration
from training.models.encoding import FeatureSpec, encoded, feature_specs
from training.models.policy import DecisionRule, ScoreScale, choose_threshold, decision_labels
from training.models.scorecard import Characteristic, ScorecardFit
from training.split import Splits

__all__ = [
    "STATE_FORMAT",
    "BaseFit",
    "ModelSpec",
    "finish_model",
    "fit_base",
    "fit_model",
    "spec_from_state",
]

#: Bumped whenever the state JSON changes shape; the served model checks it.
STATE_FORMAT = "creditgov-scoring/1"


@dataclass(frozen=True)
class ModelSpec:
    task: str
    model_type: Literal["lightgbm", "scorecard"]
    features: tuple[FeatureSpec, ...]
    calibration: Calibration
    score: ScoreScale
    decision: DecisionRule
    params: Mapping[str, Any]
    best_iteration: int | None = None
    model_text: str | None = None
    characteristics: tuple[Characteristic, ...] = ()
    intercept: float = 0.0

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def raw_probability(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        if self.model_type == "lightgbm":
            from training.models.lightgbm import raw_predict

            assert self.model_text is not None
            return raw_predict(self.model_text, encoded(frame, self.features))
        from training.models.scorecard import scorecard_raw

        return scorecard_raw(ScorecardFit(self.characteristics, self.intercept, np.empty(0)), frame)

    def probability(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        return self.calibration.apply(self.raw_probability(frame))

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        p = self.probability(frame)
        below, above = self.decision.labels
        return pd.DataFrame(
            {
                "probability": p,
                "score": np.round(self.score.points(p), 2),
                "decision": np.where(p >= self.decision.threshold, above, below),
            }
        )

    def state(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": STATE_FORMAT,
            "task": self.task,
            "model_type": self.model_type,
            "features": [f.to_json() for f in self.features],
            "calibration": self.calibration.to_json(),
            "score": self.score.to_json(),
            "decision": self.decision.to_json(),
            "best_iteration": self.best_iteration,
        }
        if self.model_type == "scorecard":
            out["scorecard"] = {
                "intercept": self.intercept,
                "characteristics": [c.to_json() for c in self.characteristics],
            }
        return out


@dataclass(frozen=True)
class BaseFit:
    """The base model as boosting (or the scorecard's regression) left it: not calibrated,
    no cut-off yet. `finish_model` turns it into the ModelSpec that gets logged."""

    model_type: Literal["lightgbm", "scorecard"]
    features: tuple[FeatureSpec, ...]
    params: Mapping[str, Any]
    best_iteration: int | None = None
    model_text: str | None = None
    characteristics: tuple[Characteristic, ...] = ()
    intercept: float = 0.0
    #: validation probabilities the fit already holds; None: predict them when needed
    valid_raw: NDArray[np.float64] | None = None


def fit_base(
    splits: Splits,
    *,
    model_type: Literal["lightgbm", "scorecard"],
    params: Mapping[str, Any],
    monotone: Mapping[str, int],
    seed: int = 0,
    callbacks: Sequence[Callable[[Any], None]] = (),
) -> BaseFit:
    """Fit the base model on train (stopping early on valid when the params say so)."""
    train, valid = splits.train, splits.valid
    features = feature_specs(train.features, train.categorical, train.integer)
    if model_type == "lightgbm":
        from training.models.lightgbm import fit_lightgbm, lightgbm_params, training_rounds

        rounds, patience = training_rounds(params)
        fitted = fit_lightgbm(
            train,
            valid,
            specs=features,
            params=lightgbm_params(params, specs=features, monotone=monotone, seed=seed),
            num_boost_round=rounds,
            early_stopping_rounds=patience,
            callbacks=callbacks,
            # finish_model predicts valid once; the evidence reuses that prediction.
            valid_scores=False,
        )
        return BaseFit(
            model_type=model_type,
            features=features,
            params=fitted.params,
            best_iteration=fitted.best_iteration,
            model_text=fitted.model_text,
            valid_raw=fitted.valid_raw,
        )
    from training.models.scorecard import fit_scorecard

    card = fit_scorecard(train, valid, params=params, monotone=monotone, seed=seed)
    return BaseFit(
        model_type=model_type,
        features=features,
        params=dict(params),
        characteristics=card.characteristics,
        intercept=card.intercept,
        valid_raw=card.valid_raw,
    )


def finish_model(
    base: BaseFit,
    valid: Dataset,
    *,
    task: str,
    calibration: Literal["none", "isotonic", "sigmoid"],
    score: ScoreScale,
    decision_rule: Literal["threshold", "approval_rate", "cost"],
    threshold: float = 0.5,
    approval_rate: float | None = None,
    cost_false_negative: float | None = None,
    cost_false_positive: float | None = None,
) -> ModelSpec:
    """Calibration and the decision cut-off on the validation split, then the ModelSpec.

    A modelling step of its own after the fit: the validation probabilities come from the
    fit when it holds them (the scorecard's does), else they are predicted here, once:
    the job's scoring of the validation split for the evidence reuses them.
    """
    spec = ModelSpec(
        task=task,
        model_type=base.model_type,
        features=base.features,
        calibration=Calibration("none"),
        score=score,
        decision=DecisionRule(threshold=0.5, rule=decision_rule, labels=decision_labels(task)),
        params=base.params,
        best_iteration=base.best_iteration,
        model_text=base.model_text,
        characteristics=base.characteristics,
        intercept=base.intercept,
    )
    valid_raw = (
        base.valid_raw if base.valid_raw is not None else spec.raw_probability(valid.features)
    )
    calibrator = fit_calibration(calibration, valid_raw, valid.target)
    cut = choose_threshold(
        decision_rule,
        calibrator.apply(valid_raw),
        valid.target,
        threshold=threshold,
        approval_rate=approval_rate,
        cost_false_negative=cost_false_negative,
        cost_false_positive=cost_false_positive,
    )
    return replace(spec, calibration=calibrator, decision=replace(spec.decision, threshold=cut))


def fit_model(
    splits: Splits,
    *,
    task: str,
    model_type: Literal["lightgbm", "scorecard"],
    params: Mapping[str, Any],
    monotone: Mapping[str, int],
    calibration: Literal["none", "isotonic", "sigmoid"],
    score: ScoreScale,
    decision_rule: Literal["threshold", "approval_rate", "cost"],
    threshold: float = 0.5,
    approval_rate: float | None = None,
    cost_false_negative: float | None = None,
    cost_false_positive: float | None = None,
    seed: int = 0,
    callbacks: Sequence[Callable[[Any], None]] = (),
) -> ModelSpec:
    """Fit the base model on train, then calibration and the decision cut-off on valid."""
    base = fit_base(
        splits, model_type=model_type, params=params, monotone=monotone, seed=seed,
        callbacks=callbacks,
    )  # fmt: skip
    return finish_model(
        base,
        splits.valid,
        task=task,
        calibration=calibration,
        score=score,
        decision_rule=decision_rule,
        threshold=threshold,
        approval_rate=approval_rate,
        cost_false_negative=cost_false_negative,
        cost_false_positive=cost_false_positive,
    )


def spec_from_state(state: Mapping[str, Any], model_text: str | None) -> ModelSpec:
    """Rebuild a ModelSpec from the logged state JSON (and LightGBM text), e.g. to re-test it."""
    if state.get("format") != STATE_FORMAT:
        raise ValueError(f"model state format {state.get('format')!r} is not {STATE_FORMAT!r}")
    features = tuple(
        FeatureSpec(f["name"], f["kind"], tuple(f.get("levels", ())), f.get("dtype", "double"))
        for f in state["features"]
    )
    cal = state["calibration"]
    calibration = Calibration(
        cal["method"],
        x=tuple(cal.get("x", ())),
        y=tuple(cal.get("y", ())),
        slope=float(cal.get("slope", 1.0)),
        intercept=float(cal.get("intercept", 0.0)),
    )
    score = ScoreScale(**state["score"])
    rule = state["decision"]
    decision = DecisionRule(
        threshold=float(rule["threshold"]),
        rule=rule["rule"],
        labels=(rule["below"], rule["at_or_above"]),
    )
    characteristics: tuple[Characteristic, ...] = ()
    intercept = 0.0
    if state["model_type"] == "scorecard":
        card = state["scorecard"]
        intercept = float(card["intercept"])
        characteristics = tuple(
            Characteristic(
                name=c["name"],
                kind=c["kind"],
                coefficient=float(c["coefficient"]),
                woe=tuple(c["woe"]),
                missing_woe=float(c["missing_woe"]),
                edges=tuple(c.get("edges", ())),
                groups=tuple(tuple(g) for g in c.get("groups", ())),
            )
            for c in card["characteristics"]
        )
    return ModelSpec(
        task=state["task"],
        model_type=state["model_type"],
        features=features,
        calibration=calibration,
        score=score,
        decision=decision,
        params={},
        best_iteration=state.get("best_iteration"),
        model_text=model_text,
        characteristics=characteristics,
        intercept=intercept,
    )
