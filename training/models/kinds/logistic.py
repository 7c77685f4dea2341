"""A plain logistic regression on the raw features (`logistic` model kind).

The challenger a reviewer asks for first: is the boosted model worth its complexity
over the simplest credible model? Numeric features are imputed with the training
median, winsorised at the training 1st / 99th percentiles (never the exact extremes,
which can be a person's value), and standardised; categorical features are one-hot on
the training levels (an unseen level or a missing value is the all-zero reference).
scikit-learn fits it; `model.params` may set `C`, `penalty`, `max_iter`, `class_weight`,
`solver` and `tol`. `model.monotone` is not enforced (a plain regression has no
constraints); the evidence's monotonicity check shows whether the fitted signs agree.

Served in the `additive` form: a `linear` term per numeric feature and a `bins` term
(one level per bin) per categorical one. Contributions are log-odds of "bad" measured
from the training average of each term, as SHAP values of a linear model are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from training.models.base import (
    Contributions,
    ExportedModel,
    FittedDefaults,
    KindDefaults,
    KindSettings,
    ModelInputs,
    Watch,
)
from training.models.encoding import FeatureSpec, feature_specs

if TYPE_CHECKING:
    from training.models.policy import ScoreScale
    from training.split import Splits

__all__ = ["KIND", "Design", "LogisticKind", "LogisticModel"]

#: The regression takes only these keys from `model.params`.
LOGISTIC_KEYS = ("C", "penalty", "max_iter", "class_weight", "solver", "tol")
#: Winsorising quantiles of numeric features.
CLIP = (0.01, 0.99)


@dataclass(frozen=True)
class Design:
    """How a frame becomes the regression's standardised design matrix.

    Per numeric feature: fill (median), low / high (clip), center (mean after filling and
    clipping) and scale (its standard deviation, 1 when constant). Per categorical
    feature: its levels, one column each, and `refs`, the term's training average.
    """

    numeric: tuple[str, ...]
    fill: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    categorical: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def learn(cls, frame: pd.DataFrame, specs: tuple[FeatureSpec, ...]) -> Design:
        numeric = [s.name for s in specs if s.kind == "numeric"]
        fill, low, high, center, scale = [], [], [], [], []
        for name in numeric:
            x = _numbers(frame[name])
            present = x[~np.isnan(x)]
            med = float(np.median(present)) if present.size else 0.0
            lo, hi = (float(v) for v in np.quantile(present, CLIP)) if present.size else (med, med)
            z = np.clip(np.where(np.isnan(x), med, x), lo, hi)
            sd = float(z.std())
            fill.append(med)
            low.append(lo)
            high.append(hi)
            center.append(float(z.mean()))
            scale.append(sd if sd > 0 else 1.0)
        categorical = tuple((s.name, s.levels) for s in specs if s.kind == "categorical")
        return cls(
            tuple(numeric), tuple(fill), tuple(low), tuple(high), tuple(center), tuple(scale),
            categorical,
        )  # fmt: skip

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(levels) for _, levels in self.categorical)

    def spans(self) -> dict[str, slice]:
        """Each feature's columns in the design matrix."""
        spans = {name: slice(j, j + 1) for j, name in enumerate(self.numeric)}
        col = len(self.numeric)
        for name, levels in self.categorical:
            spans[name] = slice(col, col + len(levels))
            col += len(levels)
        return spans

    def transform(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        out = np.zeros((len(frame), self.width), dtype=np.float64)
        for j, name in enumerate(self.numeric):
            x = _numbers(frame[name])
            x = np.clip(np.where(np.isnan(x), self.fill[j], x), self.low[j], self.high[j])
            out[:, j] = (x - self.center[j]) / self.scale[j]
        col = len(self.numeric)
        for name, levels in self.categorical:
            text = frame[name].astype(object).map(lambda v: None if v is None or v != v else str(v))
            codes = pd.Index(list(levels), dtype=object).get_indexer(pd.Index(text, dtype=object))
            rows = np.flatnonzero(codes >= 0)
            out[rows, col + codes[rows]] = 1.0
            col += len(levels)
        return out


def _numbers(column: pd.Series) -> NDArray[np.float64]:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


@dataclass(frozen=True)
class LogisticModel(FittedDefaults):
    """A fitted regression: its design, intercept and one weight per design column."""

    features: tuple[FeatureSpec, ...]
    params: Mapping[str, Any]
    design: Design
    intercept: float
    weights: tuple[float, ...]
    #: Per categorical feature, the training average of its term (log-odds).
    refs: tuple[float, ...] = ()
    valid_raw: NDArray[np.float64] | None = field(default=None, compare=False, repr=False)
    kind: ClassVar[str] = "logistic"

    def encode(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        return self.design.transform(frame)

    def raw_probability(self, encoded: NDArray[np.float64]) -> NDArray[np.float64]:
        logit = self.intercept + encoded @ np.asarray(self.weights, dtype=np.float64)
        return np.asarray(1.0 / (1.0 + np.exp(-logit)), dtype=np.float64)

    def contributions(self, frame: pd.DataFrame, *, score: ScoreScale) -> Contributions:
        """Each feature's term minus its training average, in log-odds of "bad"."""
        z = self.encode(frame)
        w = np.asarray(self.weights, dtype=np.float64)
        spans = self.design.spans()
        refs = dict(zip((n for n, _ in self.design.categorical), self.refs, strict=True))
        names = tuple(f.name for f in self.features)
        values = np.empty((len(frame), len(names)), dtype=np.float64)
        for j, name in enumerate(names):
            cols = spans[name]
            values[:, j] = z[:, cols] @ w[cols] - refs.get(name, 0.0)
        base = np.full(len(frame), self.intercept + sum(self.refs))
        return Contributions(values, base, names)

    def export(self) -> ExportedModel:
        d, w = self.design, self.weights
        terms: list[dict[str, Any]] = []
        for j, name in enumerate(d.numeric):
            terms.append(
                {
                    "name": name,
                    "kind": "linear",
                    "coefficient": w[j] / d.scale[j],
                    "center": d.center[j],
                    "fill": d.fill[j],
                    "low": d.low[j],
                    "high": d.high[j],
                    "ref": 0.0,
                }
            )
        spans = self.design.spans()
        for (name, levels), ref in zip(d.categorical, self.refs, strict=True):
            terms.append(
                {
                    "name": name,
                    "kind": "bins",
                    "feature_kind": "categorical",
                    "coefficient": 1.0,
                    "groups": [[level] for level in levels],
                    "table": list(w[spans[name]]),
                    "missing": 0.0,
                    "ref": ref,
                }
            )
        order = {f.name: i for i, f in enumerate(self.features)}
        terms.sort(key=lambda t: order[t["name"]])
        return ExportedModel(
            section={"form": "additive", "intercept": self.intercept, "terms": terms}
        )

    def info(self) -> Mapping[str, float]:
        return {"design_columns": float(self.design.width)}


class LogisticKind(KindDefaults):
    """The `logistic` model kind (training/models/base.py `ModelKind`)."""

    name: ClassVar[str] = "logistic"
    points: ClassVar[bool] = False

    def inputs(self, splits: Splits, settings: KindSettings | None = None) -> ModelInputs:
        """The design learned on train, and every split transformed with it once."""
        train = splits.train
        specs = feature_specs(train.features, train.categorical, train.integer)
        design = Design.learn(train.features, specs)
        matrices: dict[str, NDArray[np.float64]] = {}
        for name, part in splits.parts().items():
            matrix = design.transform(part.features)
            matrix.flags.writeable = False
            matrices[name] = matrix
        return ModelInputs(
            self.name, specs, splits, matrices, encoder=design, settings=settings or KindSettings()
        )

    def fit(
        self,
        inputs: ModelInputs,
        *,
        params: Mapping[str, Any],
        monotone: Mapping[str, int],
        seed: int,
        watch: Watch | None = None,
    ) -> LogisticModel:
        from sklearn.linear_model import LogisticRegression

        design: Design = inputs.encoder
        regression = LogisticRegression(
            **{
                "max_iter": 1000,
                "random_state": seed,
                **{k: v for k, v in params.items() if k in LOGISTIC_KEYS},
            }
        ).fit(inputs.train, inputs.splits.train.target)
        w = np.asarray(regression.coef_[0], dtype=np.float64)
        spans = design.spans()
        # Each categorical term's training average, so its contributions centre on zero.
        refs = tuple(
            float(np.mean(inputs.train[:, spans[name]] @ w[spans[name]]))
            for name, _ in design.categorical
        )
        model = LogisticModel(
            inputs.features, dict(params), design, float(regression.intercept_[0]),
            tuple(float(v) for v in w), refs,
        )  # fmt: skip
        return replace(model, valid_raw=model.raw_probability(inputs.valid))

    def from_state(
        self,
        section: Mapping[str, Any],
        features: tuple[FeatureSpec, ...],
        files: Mapping[str, str],
    ) -> LogisticModel:
        """The served terms read back: weights per unit (scale 1) give the same logits."""
        linear = [t for t in section["terms"] if t["kind"] == "linear"]
        bins = [t for t in section["terms"] if t["kind"] == "bins"]
        design = Design(
            numeric=tuple(t["name"] for t in linear),
            fill=tuple(float(t["fill"]) for t in linear),
            low=tuple(float(t["low"]) for t in linear),
            high=tuple(float(t["high"]) for t in linear),
            center=tuple(float(t["center"]) for t in linear),
            scale=tuple(1.0 for _ in linear),
            categorical=tuple((t["name"], tuple(g[0] for g in t["groups"])) for t in bins),
        )
        weights = tuple(float(t["coefficient"]) for t in linear) + tuple(
            float(v) * float(t["coefficient"]) for t in bins for v in t["table"]
        )
        return LogisticModel(
            features=features,
            params={},
            design=design,
            intercept=float(section["intercept"]),
            weights=weights,
            refs=tuple(float(t["ref"]) for t in bins),
        )


KIND = LogisticKind()
