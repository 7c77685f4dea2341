"""ModelSpec: a fitted model with its calibration, score scaling and decision rule.

A ModelSpec is what gets logged: the kind's fitted model (LightGBM's native text model,
the scorecard's tables …), the calibration map, the score scaling and the decision rule.
`state()` is the JSON the served model (`registry/scoring_model.py`) reads; `predict`
here computes the same thing in-process so the job can measure the model it is about to
register. `fit_model` is the one fit path, for the job, the benchmarks and the tests:
the kind's fit on train, then calibration and the cut-off on valid (`finish_model`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from training.models.calibration import Calibration, fit_calibration
from training.models.encoding import FeatureSpec
from training.models.policy import DecisionRule, ScoreScale, choose_threshold, decision_labels
from training.models.registry import get_kind

if TYPE_CHECKING:
    from training.models.base import Contributions, FittedModel, ModelInputs, ModelSheet, Watch
    from training.split import Splits

__all__ = [
    "STATE_FORMAT",
    "Fitted",
    "ModelSpec",
    "calibrate_and_cut",
    "finish_model",
    "fit_model",
    "spec_from_state",
    "valid_probabilities",
]

#: Bumped whenever the state JSON changes shape; the served model checks it.
STATE_FORMAT = "creditgov-scoring/3"


@dataclass(frozen=True)
class ModelSpec:
    task: str
    model: FittedModel
    calibration: Calibration
    score: ScoreScale
    decision: DecisionRule

    @property
    def model_type(self) -> str:
        return self.model.kind

    @property
    def features(self) -> tuple[FeatureSpec, ...]:
        return self.model.features

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @property
    def params(self) -> Mapping[str, Any]:
        return self.model.params

    def _require_features(self, frame: pd.DataFrame) -> None:
        missing = [name for name in self.feature_names if name not in frame.columns]
        if missing:
            raise ValueError(f"frame lacks the model's features {missing}")

    def raw_probability(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        self._require_features(frame)
        return self.model.raw_probability(self.model.encode(frame))

    def probability(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        return self.calibration.apply(self.raw_probability(frame))

    def contributions(self, frame: pd.DataFrame) -> Contributions:
        """Per-feature push toward decline / review (the kind's own unit)."""
        self._require_features(frame)
        return self.model.contributions(frame, score=self.score)

    def points(
        self, raw: NDArray[np.float64], probability: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """The served score: points of the calibrated PD, or of the raw one for a scorecard.

        A scorecard's score is the sum of its integer points whatever the calibration
        (`FittedModel.scores_raw`); other kinds' score restates the calibrated PD.
        """
        return np.round(self.score.points(raw if self.model.scores_raw else probability), 2)

    def sheet(self) -> ModelSheet | None:
        """The kind's sheet for a reviewer, with the decision as this spec takes it."""
        threshold, calibration = self.decision.threshold, self.calibration
        return self.model.sheet(
            score=self.score, approve=lambda raw: calibration.apply(raw) < threshold
        )

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        raw = self.raw_probability(frame)
        p = self.calibration.apply(raw)
        below, above = self.decision.labels
        return pd.DataFrame(
            {
                "probability": p,
                "score": self.points(raw, p),
                "decision": np.where(p >= self.decision.threshold, above, below),
            }
        )

    def state(self) -> dict[str, Any]:
        exported = self.model.export()
        return {
            "format": STATE_FORMAT,
            "task": self.task,
            "model_type": self.model_type,
            "features": [f.to_json() for f in self.features],
            "calibration": self.calibration.to_json(),
            "score": self.score.to_json(),
            "decision": self.decision.to_json(),
            "model": {
                **exported.section,
                "files": {key: name for key, (name, _) in exported.files.items()},
            },
        }

    def files(self) -> dict[str, tuple[str, str]]:
        """The model's text files by artifact name: (file name, text)."""
        return dict(self.model.export().files)


def calibrate_and_cut(
    valid_raw: NDArray[np.float64],
    y_valid: NDArray[np.int8],
    *,
    calibration: Literal["none", "isotonic", "sigmoid", "auto"],
    decision_rule: Literal["threshold", "approval_rate", "cost"],
    threshold: float = 0.5,
    approval_rate: float | None = None,
    cost_false_negative: float | None = None,
    cost_false_positive: float | None = None,
) -> tuple[Calibration, float]:
    """The calibration and the cut-off learned on validation: the final fit's and each
    trial's of the less-discriminatory-alternative search (`evaluation/lda.py`)."""
    calibrator = fit_calibration(calibration, valid_raw, y_valid)
    cut = choose_threshold(
        decision_rule,
        calibrator.apply(valid_raw),
        y_valid,
        threshold=threshold,
        approval_rate=approval_rate,
        cost_false_negative=cost_false_negative,
        cost_false_positive=cost_false_positive,
    )
    return calibrator, cut


def finish_model(
    model: FittedModel,
    valid_raw: NDArray[np.float64],
    y_valid: NDArray[np.int8],
    *,
    task: str,
    calibration: Literal["none", "isotonic", "sigmoid", "auto"],
    score: ScoreScale,
    decision_rule: Literal["threshold", "approval_rate", "cost"],
    threshold: float = 0.5,
    approval_rate: float | None = None,
    cost_false_negative: float | None = None,
    cost_false_positive: float | None = None,
) -> ModelSpec:
    """Calibration and the decision cut-off on the validation split, then the ModelSpec.

    `valid_raw` is the fitted model's uncalibrated probability of each validation row,
    computed once by the caller and reused for the evidence.
    """
    calibrator, cut = calibrate_and_cut(
        valid_raw, y_valid, calibration=calibration, decision_rule=decision_rule,
        threshold=threshold, approval_rate=approval_rate,
        cost_false_negative=cost_false_negative, cost_false_positive=cost_false_positive,
    )  # fmt: skip
    costs = (
        (float(cost_false_negative), float(cost_false_positive))
        if decision_rule == "cost"
        and cost_false_negative is not None
        and cost_false_positive is not None
        else None
    )
    rule = DecisionRule(
        threshold=cut, rule=decision_rule, labels=decision_labels(task), costs=costs
    )
    return ModelSpec(task=task, model=model, calibration=calibrator, score=score, decision=rule)


def valid_probabilities(model: FittedModel, inputs: ModelInputs) -> NDArray[np.float64]:
    """The fitted model's validation probabilities: those the fit holds, else predicted once."""
    held = model.valid_raw
    return held if held is not None else model.raw_probability(inputs.valid)


@dataclass(frozen=True)
class Fitted:
    """A fitted ModelSpec and the uncalibrated probability of every split, each computed once.

    The validation probabilities are those calibration and the cut-off were learned on;
    the evidence reuses all three instead of scoring the splits again.
    """

    spec: ModelSpec
    raw: Mapping[str, NDArray[np.float64]]


def fit_model(
    splits: Splits | ModelInputs,
    *,
    task: str,
    model_type: str,
    params: Mapping[str, Any],
    monotone: Mapping[str, int],
    calibration: Literal["none", "isotonic", "sigmoid", "auto"],
    score: ScoreScale,
    decision_rule: Literal["threshold", "approval_rate", "cost"],
    threshold: float = 0.5,
    approval_rate: float | None = None,
    cost_false_negative: float | None = None,
    cost_false_positive: float | None = None,
    seed: int = 0,
    watch: Watch | None = None,
    options: Mapping[str, Any] | None = None,
) -> Fitted:
    """The kind's fit on train, then calibration and the decision cut-off on valid.

    The one fit path: the job (`creditgov.stages.fit_final`), the benchmarks and the
    tests all come through here. `splits` may already be the kind's encoded
    `ModelInputs` (the job encodes once and tunes on them); plain `Splits` are encoded
    here with `monotone`, `score` and the kind's `options` (`model.scorecard`).
    """
    from training.models.base import KindSettings, ModelInputs

    kind = get_kind(model_type)
    inputs = (
        splits
        if isinstance(splits, ModelInputs)
        else kind.inputs(splits, KindSettings(monotone, score, options or {}))
    )
    model = kind.fit(inputs, params=params, monotone=monotone, seed=seed, watch=watch)
    valid_raw = valid_probabilities(model, inputs)
    spec = finish_model(
        model,
        valid_raw,
        inputs.splits.valid.target,
        task=task,
        calibration=calibration,
        score=score,
        decision_rule=decision_rule,
        threshold=threshold,
        approval_rate=approval_rate,
        cost_false_negative=cost_false_negative,
        cost_false_positive=cost_false_positive,
    )
    raw = {
        name: valid_raw if name == "valid" else model.raw_probability(inputs.of(name))
        for name in inputs.matrices
    }
    return Fitted(spec, raw)


def spec_from_state(state: Mapping[str, Any], files: Mapping[str, str]) -> ModelSpec:
    """Rebuild a ModelSpec from the logged state JSON and its text files (artifact -> text)."""
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
    rule = state["decision"]
    decision = DecisionRule(
        threshold=float(rule["threshold"]),
        rule=rule["rule"],
        labels=(rule["below"], rule["at_or_above"]),
        costs=(float(rule["cost_false_negative"]), float(rule["cost_false_positive"]))
        if "cost_false_negative" in rule
        else None,
    )
    model = get_kind(state["model_type"]).from_state(state["model"], features, files)
    return ModelSpec(
        task=state["task"],
        model=model,
        calibration=calibration,
        score=ScoreScale(**state["score"]),
        decision=decision,
    )
