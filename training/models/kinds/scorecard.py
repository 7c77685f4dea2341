"""The WOE scorecard (`scorecard` model kind): optbinning's bins, logistic regression, points.

A scorecard is the model a credit reviewer can read line by line: each characteristic
falls in a bin, each bin is worth points, the points add up to the score. The bins come
from optbinning's `BinningProcess`; the exported tables are applied with numpy, which is
also what the served model does (the `additive` form: one `bins` term per
characteristic, worth coefficient x WOE of the row's bin).

Contributions are score points: the points a row lost against each characteristic's
best bin (the bin worth most points, the missing bin included), so the best bin
contributes 0 and every other bin a positive number. ``base`` is the score of the best
possible applicant, and the uncalibrated score is ``base - row sum``. A categorical
level never seen in training gets WOE 0 (see `Characteristic.transform`), which can be
worth more than every bin: its contribution is then negative, and the identity holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from optbinning import BinningProcess
from sklearn.linear_model import LogisticRegression

from training.data import Dataset
from training.models.base import (
    Contributions,
    ExportedModel,
    KindDefaults,
    ModelInputs,
    Watch,
)
from training.models.encoding import FeatureSpec, feature_specs
from training.models.policy import ScoreScale

if TYPE_CHECKING:
    from training.split import Splits

__all__ = [
    "KIND",
    "Characteristic",
    "ScorecardFit",
    "ScorecardKind",
    "ScorecardModel",
    "bins_term",
    "characteristic_of",
    "fit_scorecard",
    "points_table",
    "scorecard_raw",
    "woe_matrix",
]

#: The scorecard's logistic regression takes only these keys from `model.params`.
LOGISTIC_KEYS = ("C", "penalty", "max_iter", "class_weight", "solver", "tol")


@dataclass(frozen=True)
class Characteristic:
    """One binned variable: numeric bins by edges (left-closed), categorical by groups."""

    name: str
    kind: Literal["numeric", "categorical"]
    coefficient: float
    woe: tuple[float, ...]
    missing_woe: float
    edges: tuple[float, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()

    def labels(self) -> list[str]:
        if self.kind == "categorical":
            return [", ".join(g) for g in self.groups]
        bounds = [-np.inf, *self.edges, np.inf]
        return [f"[{lo:.6g}, {hi:.6g})" for lo, hi in pairwise(bounds)]

    def transform(self, column: pd.Series) -> NDArray[np.float64]:
        woe = np.asarray(self.woe, dtype=np.float64)
        if self.kind == "numeric":
            x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            out = woe[np.digitize(x, np.asarray(self.edges, dtype=np.float64))]
            out[np.isnan(x)] = self.missing_woe
            return out
        lookup = {level: woe[i] for i, group in enumerate(self.groups) for level in group}
        values = column.astype(object)
        mapped = values.map(
            lambda v: self.missing_woe if v is None or v != v else lookup.get(str(v), 0.0)
        )
        return mapped.to_numpy(dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "coefficient": self.coefficient,
            "woe": list(self.woe),
            "missing_woe": self.missing_woe,
        }
        if self.kind == "numeric":
            out["edges"] = list(self.edges)
        else:
            out["groups"] = [list(g) for g in self.groups]
        return out


@dataclass(frozen=True)
class ScorecardFit:
    characteristics: tuple[Characteristic, ...]
    intercept: float
    valid_raw: NDArray[np.float64] | None


def _trend(direction: int | None) -> str:
    # model.monotone +1 means risk rises with the feature: the event rate ascends.
    return {1: "ascending", -1: "descending"}.get(direction or 0, "auto_asc_desc")


def fit_scorecard(
    train: Dataset,
    valid: Dataset,
    *,
    params: Mapping[str, Any],
    monotone: Mapping[str, int],
    seed: int,
) -> ScorecardFit:
    names = list(train.feature_names)
    process = BinningProcess(
        names,
        categorical_variables=list(train.categorical) or None,
        binning_fit_params={
            n: {"monotonic_trend": _trend(monotone.get(n))}
            for n in names
            if n not in train.categorical
        },
    )
    process.fit(train.features, train.target)
    woe_train = process.transform(train.features, metric="woe", metric_missing="empirical")
    regression = LogisticRegression(
        **{
            "max_iter": 1000,
            "random_state": seed,
            **{k: v for k, v in params.items() if k in LOGISTIC_KEYS},
        }
    ).fit(np.asarray(woe_train, dtype=np.float64), train.target)

    characteristics = []
    for j, name in enumerate(names):
        binned = process.get_binned_variable(name)
        table = binned.binning_table.build()
        # Rows: the regular bins, then "Special", "Missing" and "Totals" (optbinning's layout;
        # the Bin column holds arrays for categorical bins, so go by position).
        regular, missing_row = table.iloc[:-3], table.iloc[-2]
        missing_woe = float(missing_row["WoE"]) if missing_row["Count"] > 0 else 0.0
        woe = tuple(float(v) for v in regular["WoE"])
        if name in train.categorical:
            groups = tuple(tuple(str(v) for v in split) for split in binned.splits)
            characteristics.append(
                Characteristic(
                    name,
                    "categorical",
                    float(regression.coef_[0, j]),
                    woe,
                    missing_woe,
                    groups=groups,
                )
            )
        else:
            edges = tuple(float(v) for v in binned.splits)
            characteristics.append(
                Characteristic(
                    name, "numeric", float(regression.coef_[0, j]), woe, missing_woe, edges=edges
                )
            )
    fit = ScorecardFit(tuple(characteristics), float(regression.intercept_[0]), None)
    return ScorecardFit(fit.characteristics, fit.intercept, scorecard_raw(fit, valid.features))


def woe_matrix(
    frame: pd.DataFrame, characteristics: Sequence[Characteristic]
) -> NDArray[np.float64]:
    return np.column_stack([c.transform(frame[c.name]) for c in characteristics])


def scorecard_raw(fit: ScorecardFit, frame: pd.DataFrame) -> NDArray[np.float64]:
    """Uncalibrated probability of the positive class from the exported tables."""
    coef = np.array([c.coefficient for c in fit.characteristics])
    logit = fit.intercept + woe_matrix(frame, fit.characteristics) @ coef
    return 1.0 / (1.0 + np.exp(-logit))


def points_table(
    characteristics: Sequence[Characteristic], intercept: float, scale: ScoreScale
) -> pd.DataFrame:
    """Points per bin; one bin per characteristic summed gives the (uncalibrated) score.

    score = offset + factor * ln(odds good) = offset - factor * (b0 + sum b_i * woe_i), so
    each bin is worth -factor * b_i * woe + (offset - factor * b0) / m, m characteristics.
    """
    share = (scale.offset - scale.factor * intercept) / max(1, len(characteristics))
    rows = []
    for c in characteristics:
        for label, woe in [*zip(c.labels(), c.woe, strict=True), ("Missing", c.missing_woe)]:
            rows.append(
                {
                    "characteristic": c.name,
                    "bin": label,
                    "woe": round(woe, 6),
                    "coefficient": round(c.coefficient, 6),
                    "points": round(-scale.factor * c.coefficient * woe + share, 2),
                }
            )
    return pd.DataFrame(rows)


def bins_term(c: Characteristic) -> dict[str, Any]:
    """A characteristic as the served model's `bins` term: coefficient x table[bin]."""
    table = [*c.woe, c.missing_woe]
    term: dict[str, Any] = {
        "name": c.name,
        "kind": "bins",
        "feature_kind": c.kind,
        "coefficient": c.coefficient,
        "table": list(c.woe),
        "missing": c.missing_woe,
        # The best bin's log-odds: contributions are measured from it.
        "ref": float(min(c.coefficient * w for w in table)),
    }
    if c.kind == "numeric":
        term["edges"] = list(c.edges)
    else:
        term["groups"] = [list(g) for g in c.groups]
    return term


def characteristic_of(term: Mapping[str, Any]) -> Characteristic:
    """`bins_term` read back."""
    return Characteristic(
        name=term["name"],
        kind=term["feature_kind"],
        coefficient=float(term["coefficient"]),
        woe=tuple(float(v) for v in term["table"]),
        missing_woe=float(term["missing"]),
        edges=tuple(float(v) for v in term.get("edges", ())),
        groups=tuple(tuple(str(v) for v in g) for g in term.get("groups", ())),
    )


@dataclass(frozen=True)
class ScorecardModel:
    """A fitted scorecard: its characteristics (bins, WOE, coefficient) and intercept."""

    features: tuple[FeatureSpec, ...]
    params: Mapping[str, Any]
    characteristics: tuple[Characteristic, ...]
    intercept: float
    valid_raw: NDArray[np.float64] | None = field(default=None, compare=False, repr=False)
    kind: ClassVar[str] = "scorecard"

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame  # the bins read the columns as they are

    def raw_probability(self, encoded: pd.DataFrame) -> NDArray[np.float64]:
        return scorecard_raw(ScorecardFit(self.characteristics, self.intercept, None), encoded)

    def contributions(self, frame: pd.DataFrame, *, score: ScoreScale) -> Contributions:
        """Points below each characteristic's best bin (the same points as `points_table`).

        A bin is worth ``-factor * b * woe + share`` points, with one ``share`` per
        characteristic; ``share`` cancels in "best minus this bin", so it only enters
        ``base``. Points are not rounded here (`points_table` rounds them for display).
        """
        chars = self.characteristics
        if not chars:
            raise ValueError("a scorecard without characteristics cannot be explained")
        factor = score.factor
        share = (score.offset - factor * self.intercept) / len(chars)
        values = np.empty((len(frame), len(chars)), dtype=np.float64)
        best_total = 0.0
        for j, c in enumerate(chars):
            candidates = -factor * c.coefficient * np.array([*c.woe, c.missing_woe])
            best = float(candidates.max())
            values[:, j] = best + factor * c.coefficient * c.transform(frame[c.name])
            best_total += best + share
        return Contributions(values, np.full(len(frame), best_total), tuple(c.name for c in chars))

    def export(self) -> ExportedModel:
        return ExportedModel(
            section={
                "form": "additive",
                "intercept": self.intercept,
                "terms": [bins_term(c) for c in self.characteristics],
            }
        )

    def info(self) -> Mapping[str, float]:
        return {"characteristics": float(len(self.characteristics))}

    def tables(self, *, score: ScoreScale) -> Mapping[str, pd.DataFrame]:
        return {
            "scorecard/points_table.csv": points_table(self.characteristics, self.intercept, score)
        }


class ScorecardKind(KindDefaults):
    """The `scorecard` model kind (training/models/base.py `ModelKind`)."""

    name: ClassVar[str] = "scorecard"
    points: ClassVar[bool] = True

    def inputs(self, splits: Splits) -> ModelInputs:
        """The bins read the frames themselves; the specs fix the served signature."""
        train = splits.train
        specs = feature_specs(train.features, train.categorical, train.integer)
        return ModelInputs(
            self.name, specs, splits, {n: p.features for n, p in splits.parts().items()}
        )

    def fit(
        self,
        inputs: ModelInputs,
        *,
        params: Mapping[str, Any],
        monotone: Mapping[str, int],
        seed: int,
        watch: Watch | None = None,
    ) -> ScorecardModel:
        splits = inputs.splits
        card = fit_scorecard(
            splits.train, splits.valid, params=params, monotone=monotone, seed=seed
        )
        return ScorecardModel(
            features=inputs.features,
            params=dict(params),
            characteristics=card.characteristics,
            intercept=card.intercept,
            valid_raw=card.valid_raw,
        )

    def from_state(
        self,
        section: Mapping[str, Any],
        features: tuple[FeatureSpec, ...],
        files: Mapping[str, str],
    ) -> ScorecardModel:
        return ScorecardModel(
            features=features,
            params={},
            characteristics=tuple(characteristic_of(t) for t in section["terms"]),
            intercept=float(section["intercept"]),
        )


KIND = ScorecardKind()
