"""The model protocol: what every model kind offers, so nothing else asks which kind it holds.

A model kind (LightGBM, the WOE scorecard, a plain logistic regression …) is one module in
`training/models/kinds/`, found by its file name (`registry.py`). Each kind encodes the
splits its own way, once (`ModelKind.inputs` -> `ModelInputs`, a frozen object the job
passes to tuning, the fit and the evidence), fits a `FittedModel` and reads one back from
the served model's state. A fitted model gives uncalibrated probabilities, per-feature
contributions (positive = toward "bad"), and its exported state (`ExportedModel`): a
JSON section in one of the served model's *forms* (`booster`: LightGBM's text model;
`additive`: a sum of per-feature terms) plus the text files it needs. The served model
(`registry/scoring_model.py`) knows the forms, never the kinds, so a new kind that
exports an existing form needs no change there.

This module imports only numpy and pandas: the config, the CLI and the evaluation
package can name these types without loading a modelling library.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from creditgov.errors import BadInput

if TYPE_CHECKING:
    from training.models.encoding import FeatureSpec
    from training.models.policy import ScoreScale
    from training.split import Splits

__all__ = [
    "Contributions",
    "ExportedModel",
    "FittedDefaults",
    "FittedModel",
    "KindDefaults",
    "KindSettings",
    "ModelInputs",
    "ModelKind",
    "ModelSheet",
    "ParamsRefused",
    "Watch",
]


class ParamsRefused(BadInput):
    """A model kind refuses a parameter set before any run starts.

    `key` is the config key the set came from (`model.params`, or a search-range end such
    as `tuning.search_space.num_leaves.low`); the job prefixes the config file to it.
    """

    def __init__(self, key: str, reason: str) -> None:
        self.key, self.reason = key, reason
        super().__init__(f"{key}: {reason}")


@dataclass(frozen=True)
class Contributions:
    """Per-row, per-feature contributions; positive = toward decline / review.

    ``values`` is n x f: log-odds of "bad" for LightGBM and the logistic regression, score
    points for a scorecard. ``base`` is per row: the expected raw score (raw = base + row
    sum) for log-odds kinds, or the scorecard's best possible score (score = base - row
    sum). The arrays are read-only: evidence is not edited after it is computed.
    """

    values: NDArray[np.float64]
    base: NDArray[np.float64]
    features: tuple[str, ...]

    def __post_init__(self) -> None:
        # Read-only views: the caller's own arrays stay writeable, ours cannot be edited.
        values = np.asarray(self.values, dtype=np.float64).view()
        base = np.asarray(self.base, dtype=np.float64).view()
        if values.ndim != 2 or values.shape[1] != len(self.features):
            raise ValueError(
                f"values must be rows x {len(self.features)} features, got shape {values.shape}"
            )
        if base.shape != (values.shape[0],):
            raise ValueError(
                f"base must hold one value per row ({values.shape[0]}), got {base.shape}"
            )
        values.flags.writeable = False
        base.flags.writeable = False
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "features", tuple(self.features))


@dataclass(frozen=True)
class KindSettings:
    """What a kind may need, beyond the splits, to encode them and fit.

    `monotone` is `model.monotone`; `score` the points scaling (a scorecard's points are
    integers on that scale, so it must know it when it fits); `options` the kind's own
    config section (the scorecard reads `model.scorecard`). Kinds ignore what they do
    not use, so the job hands the same settings to every kind.
    """

    monotone: Mapping[str, int] = field(default_factory=dict)
    score: ScoreScale | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSheet:
    """What a reviewer reads about a fitted model beyond its metrics, in the kind's words.

    The scorecard's sheet is its points table with the score range, base points, PDO and
    cut-off in points; the report, evidence.json and the model card render it without
    asking which kind made it, and each table is also written as `<name>.csv` beside the
    report. `facts` are (label, value) pairs already worded; `notes` are sentences.
    """

    title: str
    facts: tuple[tuple[str, str], ...] = ()
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "facts": dict(self.facts),
            "tables": {n: t.to_dict(orient="records") for n, t in self.tables.items()},
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class ModelInputs:
    """The splits as one kind's model reads them, encoded once with the levels of train.

    `matrices` holds, per split name, whatever the kind fits and predicts on (LightGBM: a
    read-only float matrix; the scorecard: the feature frame itself). Tuning trials, the
    final fit and the evidence all read these instead of encoding the same frames again.
    """

    kind: str
    features: tuple[FeatureSpec, ...]
    splits: Splits
    matrices: Mapping[str, Any] = field(default_factory=dict)
    #: What the kind learned from train to encode (the logistic kind's imputation and
    #: scaling, the scorecard's bins and selection); None for kinds that need nothing
    #: beyond the feature specs.
    encoder: Any = None
    settings: KindSettings = field(default_factory=KindSettings)

    @property
    def train(self) -> Any:
        return self.matrices["train"]

    @property
    def valid(self) -> Any:
        return self.matrices["valid"]

    def of(self, split: str) -> Any:
        return self.matrices[split]


@dataclass(frozen=True)
class Watch:
    """What a tuning trial watches while a kind that boosts in rounds fits.

    `metric` is LightGBM's per-round name of the tuning metric (the metric registry's
    `early_stopping`); `report(value, round)` hands each round's validation value to
    the pruner and raises to stop the trial. Kinds that fit in one go ignore it.
    """

    metric: str
    report: Callable[[float, int], object]


@dataclass(frozen=True)
class ExportedModel:
    """A fitted model as the served model reads it: a JSON section and its text files.

    `section["form"]` names the served model's form (`booster` or `additive`);
    `files` maps each artifact name to (file name, text), e.g. LightGBM's
    `{"booster": ("model.txt", <text model>)}`.
    """

    section: Mapping[str, Any]
    files: Mapping[str, tuple[str, str]] = field(default_factory=dict)


class FittedModel(Protocol):
    """A fitted base model: uncalibrated, no cut-off yet (`spec.ModelSpec` adds those)."""

    @property
    def kind(self) -> str: ...

    @property
    def features(self) -> tuple[FeatureSpec, ...]: ...

    @property
    def params(self) -> Mapping[str, Any]: ...

    @property
    def valid_raw(self) -> NDArray[np.float64] | None:
        """Validation probabilities the fit already holds; None: predict them."""
        ...

    def encode(self, frame: pd.DataFrame) -> Any:
        """`frame` as this model reads it (what `ModelInputs.matrices` holds per split)."""
        ...

    def raw_probability(self, encoded: Any) -> NDArray[np.float64]:
        """Uncalibrated probability of "bad" for encoded rows."""
        ...

    def contributions(self, frame: pd.DataFrame, *, score: ScoreScale) -> Contributions:
        """Per-feature push toward "bad" for every row of `frame`."""
        ...

    def export(self) -> ExportedModel: ...

    def info(self) -> Mapping[str, float]:
        """Numbers about the fit worth logging (e.g. LightGBM's best iteration)."""
        ...

    @property
    def scores_raw(self) -> bool:
        """Whether the served score is the points of the *uncalibrated* probability.

        True for the scorecard, whose score is the sum of its integer points whatever
        the calibration; False for kinds whose score restates the calibrated PD.
        """
        ...

    def sheet(
        self, *, score: ScoreScale, approve: Callable[[NDArray[np.float64]], NDArray[np.bool_]]
    ) -> ModelSheet | None:
        """The kind's own reading for a reviewer; `approve` is the decision on raw PDs."""
        ...


class ModelKind(Protocol):
    """One model kind: encodes, checks parameters, fits, and reads its served state back."""

    name: ClassVar[str]
    #: Whether the decision-time contributions are score points (True) or log-odds.
    points: ClassVar[bool]

    def inputs(self, splits: Splits, settings: KindSettings | None = None) -> ModelInputs: ...

    def check_params(
        self,
        splits: Splits,
        param_sets: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        monotone: Mapping[str, int],
        seed: int,
    ) -> None:
        """Raise `ParamsRefused` for a parameter set this kind would refuse when fitting."""
        ...

    def check_inputs(
        self,
        inputs: ModelInputs,
        param_sets: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        seed: int,
    ) -> None:
        """Raise `ParamsRefused` for a set refused once the splits are encoded (before a run)."""
        ...

    def fit(
        self,
        inputs: ModelInputs,
        *,
        params: Mapping[str, Any],
        monotone: Mapping[str, int],
        seed: int,
        watch: Watch | None = None,
    ) -> FittedModel: ...

    def from_state(
        self,
        section: Mapping[str, Any],
        features: tuple[FeatureSpec, ...],
        files: Mapping[str, str],
    ) -> FittedModel:
        """The fitted model again, from its exported section and files (artifact -> text)."""
        ...


class KindDefaults:
    """What a kind may inherit instead of writing: no parameter checks before the run."""

    def check_params(
        self,
        splits: Splits,
        param_sets: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        monotone: Mapping[str, int],
        seed: int,
    ) -> None:
        return None

    def check_inputs(
        self,
        inputs: ModelInputs,
        param_sets: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        seed: int,
    ) -> None:
        return None


class FittedDefaults:
    """What a fitted model may inherit: a score that restates the PD, no sheet of its own."""

    scores_raw: ClassVar[bool] = False

    def sheet(
        self, *, score: ScoreScale, approve: Callable[[NDArray[np.float64]], NDArray[np.bool_]]
    ) -> ModelSheet | None:
        return None
