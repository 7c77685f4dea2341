"""The WOE scorecard (`scorecard` model kind): optbinning's bins, logistic regression, points.

A scorecard is the model a credit reviewer can read line by line: each characteristic
falls in a bin, each bin is worth a whole number of points, and the points plus the base
points *are* the score. The bins and the selection of characteristics come from
`training/models/scorecard_bins.py` (once per job); each fit is a logistic regression on
the kept characteristics' WOE, then integer points:

    bin points  = round(-factor * coefficient * WOE)
    base points = round(offset - factor * intercept)
    score       = base points + the points of the applicant's bins

(`round` is to the nearest integer, halves to even, as numpy's `rint`). The uncalibrated
probability is read back from that integer score (`ln odds of good = (score - offset) /
factor`), so the served score, the points table and the probability can never disagree;
calibration, when configured, maps that probability and leaves the score as it is.

Signs hold: optbinning's WOE rises as risk falls, so every coefficient must be negative
(points rise with WOE). A characteristic whose coefficient comes out positive — points
that fall as its WOE says risk falls, typically a collinear one — is dropped and the
regression refitted, weakest first (`model.scorecard.on_sign_flip: drop`), or the job
stops naming it (`fail`).

Contributions are score points: the points a row lost against each characteristic's
best bin (the missing bin included), so the best bin contributes 0. A categorical level
never seen in training gets WOE 0, worth 0 points, which can be worth more than every
bin: its contribution is then negative, and the identity ``score = base - row sum`` holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

from training.models.base import (
    Contributions,
    ExportedModel,
    FittedDefaults,
    KindDefaults,
    KindSettings,
    ModelInputs,
    ModelSheet,
    ParamsRefused,
    Watch,
)
from training.models.encoding import FeatureSpec, feature_specs
from training.models.policy import ScoreScale
from training.models.scorecard_bins import (
    Binned,
    Dropped,
    ScorecardOptions,
    Selection,
    bin_and_select,
)
from training.models.scorecard_sheet import scorecard_sheet

if TYPE_CHECKING:
    from training.split import Splits

__all__ = [
    "KIND",
    "Characteristic",
    "ScorecardKind",
    "ScorecardModel",
    "SignFlip",
    "characteristic",
    "fit_regression",
]

#: The scorecard's logistic regression takes only these keys from `model.params`.
LOGISTIC_KEYS = ("C", "penalty", "max_iter", "class_weight", "solver", "tol")
#: The scaling a scorecard fitted without one uses (the config's defaults).
DEFAULT_SCALE = ScoreScale(600.0, 50.0, 20.0)


class SignFlip(ParamsRefused):
    """`on_sign_flip: fail` and a characteristic's points contradict its WOE."""


@dataclass(frozen=True)
class Characteristic:
    """A kept characteristic: its bins, coefficient and integer points per bin."""

    binned: Binned
    coefficient: float
    points: tuple[int, ...]
    missing_points: int

    @property
    def name(self) -> str:
        return self.binned.name

    @property
    def all_points(self) -> tuple[int, ...]:
        """The regular bins' points, then the missing bin's."""
        return (*self.points, self.missing_points)

    def points_of(self, column: pd.Series) -> NDArray[np.float64]:
        # An unseen level (bin -1) reads the trailing 0: WOE 0 is worth 0 points.
        table = np.asarray([*self.all_points, 0], dtype=np.float64)
        return table[self.binned.bin_index(column)]


def _points(woe: float, coefficient: float, scale: ScoreScale) -> int:
    return int(np.rint(-scale.factor * coefficient * woe))


def characteristic(binned: Binned, coefficient: float, scale: ScoreScale) -> Characteristic:
    return Characteristic(
        binned,
        coefficient,
        tuple(_points(w, coefficient, scale) for w in binned.woe),
        _points(binned.missing_woe, coefficient, scale),
    )


def fit_regression(
    selection: Selection,
    y: NDArray[np.int8],
    *,
    params: Mapping[str, Any],
    seed: int,
    on_sign_flip: str,
) -> tuple[list[int], LogisticRegression, list[Dropped]]:
    """The regression on the kept WOE, dropping wrong-signed characteristics weakest first."""
    active = list(range(len(selection.kept)))
    dropped: list[Dropped] = []
    settings = {"max_iter": 1000, "random_state": seed,
                **{k: v for k, v in params.items() if k in LOGISTIC_KEYS}}  # fmt: skip
    while True:
        regression = LogisticRegression(**settings).fit(selection.woe["train"][:, active], y)
        wrong = [a for a, c in zip(active, regression.coef_[0], strict=True) if c > 0]
        if not wrong:
            return active, regression, dropped
        names = [selection.kept[a].name for a in wrong]
        if on_sign_flip == "fail":
            raise SignFlip(
                "model.scorecard.on_sign_flip",
                f"characteristic(s) {', '.join(map(repr, names))} earn more points where "
                "their WOE says risk is higher (coefficient sign contradicts WOE); exclude "
                "them (data.exclude) or set on_sign_flip: drop",
            )
        weakest = min(wrong, key=lambda a: (selection.kept[a].iv, a))
        dropped.append(
            Dropped(
                selection.kept[weakest].name,
                "its coefficient's sign contradicts its WOE (points would fall as risk "
                "falls); dropped and the scorecard refitted",
            )
        )
        active.remove(weakest)
        if not active:
            raise ParamsRefused(
                "model.scorecard.on_sign_flip",
                "every characteristic's coefficient contradicts its WOE; check the target's "
                "positive_label",
            )


@dataclass(frozen=True)
class ScorecardModel(FittedDefaults):
    """A fitted scorecard: characteristics with integer points, base points, its scaling."""

    features: tuple[FeatureSpec, ...]
    params: Mapping[str, Any]
    characteristics: tuple[Characteristic, ...]
    base_points: int
    scale: ScoreScale
    dropped: tuple[Dropped, ...] = ()
    valid_raw: NDArray[np.float64] | None = field(default=None, compare=False, repr=False)
    kind: ClassVar[str] = "scorecard"
    scores_raw: ClassVar[bool] = True

    def encode(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame  # the bins read the columns as they are

    def total_points(self, frame: pd.DataFrame) -> NDArray[np.float64]:
        """The score: base points plus the points of each row's bins (whole numbers)."""
        total = np.full(len(frame), float(self.base_points))
        for c in self.characteristics:
            total += c.points_of(frame[c.name])
        return total

    def raw_probability(self, encoded: pd.DataFrame) -> NDArray[np.float64]:
        return _probability_of_points(self.total_points(encoded), self.scale)

    def contributions(self, frame: pd.DataFrame, *, score: ScoreScale) -> Contributions:
        """Points below each characteristic's best bin; ``base`` is the best possible score."""
        chars = self.characteristics
        values = np.empty((len(frame), len(chars)), dtype=np.float64)
        best_total = float(self.base_points)
        for j, c in enumerate(chars):
            best = max(c.all_points)
            values[:, j] = best - c.points_of(frame[c.name])
            best_total += best
        return Contributions(values, np.full(len(frame), best_total), tuple(c.name for c in chars))

    def export(self) -> ExportedModel:
        """The `additive` form in points: coefficient -1 on each bin's points, scale 1/factor.

        logit(bad) = intercept + scale * sum(-points) = (offset - score) / factor, and the
        served score is read from the raw probability (`score_basis: raw`), so it is the
        sum of the integer points whatever the calibration.
        """
        factor = self.scale.factor
        return ExportedModel(
            section={
                "form": "additive",
                "intercept": (self.scale.offset - self.base_points) / factor,
                "scale": 1.0 / factor,
                "score_basis": "raw",
                "base_points": self.base_points,
                "points_scale": self.scale.to_json(),
                "terms": [_term(c) for c in self.characteristics],
            }
        )

    def info(self) -> Mapping[str, float]:
        return {
            "characteristics": float(len(self.characteristics)),
            "scorecard_sign_violations": float(
                sum(c.coefficient > 0 for c in self.characteristics)
            ),
        }

    def sheet(
        self, *, score: ScoreScale, approve: Callable[[NDArray[np.float64]], NDArray[np.bool_]]
    ) -> ModelSheet:
        low = self.base_points + sum(min(c.all_points) for c in self.characteristics)
        high = self.base_points + sum(max(c.all_points) for c in self.characteristics)
        grid = np.arange(low, high + 1, dtype=np.float64)
        return scorecard_sheet(
            self.characteristics,
            dropped=self.dropped,
            base_points=self.base_points,
            scale=self.scale,
            grid=grid,
            approved=approve(_probability_of_points(grid, self.scale)),
        )


def _probability_of_points(total: NDArray[np.float64], scale: ScoreScale) -> NDArray[np.float64]:
    # ln(odds of good) = (score - offset) / factor, so P(bad) = 1 / (1 + exp of that).
    return 1.0 / (1.0 + np.exp((total - scale.offset) / scale.factor))


def _term(c: Characteristic) -> dict[str, Any]:
    b = c.binned
    term: dict[str, Any] = {
        "name": b.name,
        "kind": "bins",
        "feature_kind": b.kind,
        "coefficient": -1.0,
        "table": [float(v) for v in c.points],
        "missing": float(c.missing_points),
        # The best bin's term: contributions are measured from it.
        "ref": -float(max(c.all_points)),
        # For a reader (and `from_state`): what the points were rounded from.
        "woe": list(b.woe),
        "missing_woe": b.missing_woe,
        "woe_coefficient": c.coefficient,
        "iv": b.iv,
    }
    if b.kind == "numeric":
        term["edges"] = list(b.edges)
    else:
        term["groups"] = [list(g) for g in b.groups]
    return term


def _characteristic_of(term: Mapping[str, Any]) -> Characteristic:
    """`_term` read back (the bins' counts are the training run's, not in the state)."""
    binned = Binned(
        name=term["name"],
        kind=term["feature_kind"],
        woe=tuple(float(v) for v in term["woe"]),
        missing_woe=float(term["missing_woe"]),
        edges=tuple(float(v) for v in term.get("edges", ())),
        groups=tuple(tuple(str(v) for v in g) for g in term.get("groups", ())),
        iv=float(term.get("iv", 0.0)),
    )
    return Characteristic(
        binned,
        float(term["woe_coefficient"]),
        tuple(int(v) for v in term["table"]),
        int(term["missing"]),
    )


class ScorecardKind(KindDefaults):
    """The `scorecard` model kind (training/models/base.py `ModelKind`)."""

    name: ClassVar[str] = "scorecard"
    points: ClassVar[bool] = True

    def inputs(self, splits: Splits, settings: KindSettings | None = None) -> ModelInputs:
        """Bins and selection on train, once; the frames themselves are what the bins read."""
        settings = settings or KindSettings()
        train = splits.train
        specs = feature_specs(train.features, train.categorical, train.integer)
        selection = bin_and_select(
            splits, monotone=settings.monotone, options=ScorecardOptions.of(settings.options)
        )
        return ModelInputs(
            self.name,
            specs,
            splits,
            {n: p.features for n, p in splits.parts().items()},
            encoder=selection,
            settings=settings,
        )

    def check_inputs(
        self,
        inputs: ModelInputs,
        param_sets: Iterable[tuple[str, Mapping[str, Any]]],
        *,
        seed: int,
    ) -> None:
        """With `on_sign_flip: fail`, fit each parameter set's regression now, before a run.

        A flip found here stops the job before anything is tracked; one that only a
        tuning trial between the ends of a search range meets stops it when met.
        """
        options = ScorecardOptions.of(inputs.settings.options)
        if options.on_sign_flip != "fail":
            return
        for key, params in param_sets:
            try:
                fit_regression(
                    inputs.encoder, inputs.splits.train.target, params=params, seed=seed,
                    on_sign_flip="fail",
                )  # fmt: skip
            except SignFlip as err:
                raise SignFlip(err.key, f"{err.reason} (fitting {key})") from None

    def fit(
        self,
        inputs: ModelInputs,
        *,
        params: Mapping[str, Any],
        monotone: Mapping[str, int],
        seed: int,
        watch: Watch | None = None,
    ) -> ScorecardModel:
        selection: Selection = inputs.encoder
        settings = inputs.settings
        scale = settings.score or DEFAULT_SCALE
        options = ScorecardOptions.of(settings.options)
        y = inputs.splits.train.target
        active, regression, flipped = fit_regression(
            selection, y, params=params, seed=seed, on_sign_flip=options.on_sign_flip
        )
        chars = tuple(
            characteristic(selection.kept[a], float(coef), scale)
            for a, coef in zip(active, regression.coef_[0], strict=True)
        )
        base = int(np.rint(scale.offset - scale.factor * float(regression.intercept_[0])))
        valid_points = base + _points_of_woe(selection.woe["valid"][:, active], chars, scale)
        used = {c.name for c in chars}
        return ScorecardModel(
            # The served signature asks only for the characteristics the scorecard reads.
            features=tuple(f for f in inputs.features if f.name in used),
            params=dict(params),
            characteristics=chars,
            base_points=base,
            scale=scale,
            dropped=(*selection.dropped, *flipped),
            valid_raw=_probability_of_points(valid_points, scale),
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
            characteristics=tuple(_characteristic_of(t) for t in section["terms"]),
            base_points=int(section["base_points"]),
            scale=ScoreScale(**section["points_scale"]),
        )


def _points_of_woe(
    woe: NDArray[np.float64], chars: Sequence[Characteristic], scale: ScoreScale
) -> NDArray[np.float64]:
    """Row sums of bin points from a WOE matrix (a bin's WOE gives its points exactly)."""
    coef = np.asarray([c.coefficient for c in chars])
    return np.rint(-scale.factor * coef * woe).sum(axis=1)


KIND = ScorecardKind()
