"""The scorecard's characteristics before any coefficient: optbinning's bins, and selection.

A credit committee signs a scorecard whose characteristics each earn their place: enough
information value (IV) to matter, not a restatement of a stronger one, at most as many
as the committee wants to read. So the job bins every candidate feature on the training
split once (optbinning's `BinningProcess`, monotonic where the config says so), then
keeps a characteristic only if

1. its IV is at least `model.scorecard.min_iv` (default 0.02, the usual "weak" line);
2. its WOE is not correlated beyond `max_correlation` (Pearson, on train) with a
   characteristic of higher IV already kept — of a correlated pair the weaker goes;
3. it is among the `max_features` of highest IV, when that is set.

Every characteristic left out is recorded with the sentence saying why, for the report.
Binning and selection depend on the training data alone, so tuning trials (which vary
the logistic regression) reuse them instead of binning again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from training.models.base import ParamsRefused

if TYPE_CHECKING:
    from training.split import Splits

__all__ = [
    "TRENDS",
    "BinStats",
    "Binned",
    "Dropped",
    "ScorecardOptions",
    "Selection",
    "bin_and_select",
]

#: optbinning's monotonic trends a numeric characteristic may be given.
TRENDS = (
    "auto", "auto_heuristic", "auto_asc_desc", "ascending", "descending",
    "convex", "concave", "peak", "valley", "peak_heuristic", "valley_heuristic",
)  # fmt: skip


@dataclass(frozen=True)
class ScorecardOptions:
    """`model.scorecard` as the kind reads it (the config schema validates the values)."""

    min_iv: float = 0.02
    max_features: int | None = None
    max_correlation: float = 0.8
    on_sign_flip: Literal["drop", "fail"] = "drop"
    monotonic_trend: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> ScorecardOptions:
        known = {k: v for k, v in options.items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class BinStats:
    """One bin of a characteristic on the training split."""

    label: str
    count: int
    bads: int
    woe: float
    iv: float


@dataclass(frozen=True)
class Binned:
    """One binned variable: numeric bins by edges (left-closed), categorical by groups.

    `woe` holds the regular bins; a missing value gets `missing_woe`, and a categorical
    level never seen in training gets WOE 0 (the population's odds). `stats` are the
    regular bins then "Missing", as the points table shows them.
    """

    name: str
    kind: Literal["numeric", "categorical"]
    woe: tuple[float, ...]
    missing_woe: float
    edges: tuple[float, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()
    stats: tuple[BinStats, ...] = ()
    iv: float = 0.0

    def labels(self) -> list[str]:
        if self.kind == "categorical":
            return [", ".join(g) for g in self.groups]
        bounds = [-np.inf, *self.edges, np.inf]
        return [f"[{lo:.6g}, {hi:.6g})" for lo, hi in pairwise(bounds)]

    def bin_index(self, column: pd.Series) -> NDArray[np.intp]:
        """Each row's bin: 0..len(woe)-1, len(woe) for missing, -1 for an unseen level."""
        missing = len(self.woe)
        if self.kind == "numeric":
            x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            index = np.digitize(x, np.asarray(self.edges, dtype=np.float64))
            index[np.isnan(x)] = missing
            return index.astype(np.intp)
        lookup = {level: i for i, group in enumerate(self.groups) for level in group}
        mapped = column.astype(object).map(
            lambda v: missing if v is None or v != v else lookup.get(str(v), -1)
        )
        return mapped.to_numpy(dtype=np.intp)

    def transform(self, column: pd.Series) -> NDArray[np.float64]:
        table = np.asarray([*self.woe, self.missing_woe, 0.0], dtype=np.float64)
        return table[self.bin_index(column)]  # -1 (unseen) reads the trailing 0.0


@dataclass(frozen=True)
class Dropped:
    """A characteristic left out of the scorecard, and why (a sentence for the report)."""

    name: str
    reason: str


@dataclass(frozen=True)
class Selection:
    """The kept characteristics, those dropped, and the WOE of train and valid for the fit."""

    kept: tuple[Binned, ...]
    dropped: tuple[Dropped, ...]
    woe: Mapping[str, NDArray[np.float64]]  # split -> rows x kept, read-only


def _trend(name: str, options: ScorecardOptions, monotone: Mapping[str, int]) -> str:
    if name in options.monotonic_trend:
        return options.monotonic_trend[name]
    # model.monotone +1 means risk rises with the feature: the event rate ascends.
    return {1: "ascending", -1: "descending"}.get(monotone.get(name, 0), "auto_asc_desc")


def _binned(name: str, categorical: bool, optimal: Any) -> Binned:
    table = optimal.binning_table.build()
    # Rows: the regular bins, then "Special", "Missing" and "Totals" (optbinning's layout;
    # the Bin column holds arrays for categorical bins, so go by position).
    regular, missing_row = table.iloc[:-3], table.iloc[-2]
    has_missing = int(missing_row["Count"]) > 0
    woe = tuple(float(v) for v in regular["WoE"])
    kind: Literal["numeric", "categorical"] = "categorical" if categorical else "numeric"
    edges: tuple[float, ...] = ()
    groups: tuple[tuple[str, ...], ...] = ()
    if categorical:
        groups = tuple(tuple(str(v) for v in split) for split in optimal.splits)
    else:
        edges = tuple(float(v) for v in optimal.splits)
    missing_woe = float(missing_row["WoE"]) if has_missing else 0.0
    labels = [*Binned(name, kind, woe, missing_woe, edges, groups).labels(), "Missing"]
    rows = [*(regular.iloc[i] for i in range(len(regular))), missing_row]
    stats = tuple(
        BinStats(label, int(row["Count"]), int(row["Event"]), float(row["WoE"]), float(row["IV"]))
        for label, row in zip(labels, rows, strict=True)
    )
    return Binned(name, kind, woe, missing_woe, edges, groups, stats, float(table.iloc[-1]["IV"]))


def _check_names(names: Sequence[str], options: ScorecardOptions, categorical: set[str]) -> None:
    for name, trend in options.monotonic_trend.items():
        if name not in names:
            raise ParamsRefused(
                f"model.scorecard.monotonic_trend.{name}", "not a feature of the model"
            )
        if name in categorical:
            raise ParamsRefused(
                f"model.scorecard.monotonic_trend.{name}",
                "a categorical feature's bins are ordered by bad rate; remove the entry",
            )
        if trend not in TRENDS:
            raise ParamsRefused(
                f"model.scorecard.monotonic_trend.{name}", f"use one of {', '.join(TRENDS)}"
            )


def bin_and_select(
    splits: Splits, *, monotone: Mapping[str, int], options: ScorecardOptions
) -> Selection:
    """Bin every feature on train, select the characteristics, and WOE-encode train/valid."""
    from optbinning import BinningProcess

    train = splits.train
    names = list(train.feature_names)
    categorical = set(train.categorical)
    _check_names(names, options, categorical)
    process = BinningProcess(
        names,
        categorical_variables=[n for n in names if n in categorical] or None,
        binning_fit_params={
            n: {"monotonic_trend": _trend(n, options, monotone)}
            for n in names
            if n not in categorical
        },
    )
    process.fit(train.features, train.target)
    binned = [_binned(n, n in categorical, process.get_binned_variable(n)) for n in names]
    woe_train = np.column_stack([b.transform(train.features[b.name]) for b in binned])

    dropped: list[Dropped] = []
    order = sorted(range(len(binned)), key=lambda j: (-binned[j].iv, j))
    kept: list[int] = []
    for j in order:
        b = binned[j]
        if np.ptp(woe_train[:, j]) == 0:
            dropped.append(Dropped(b.name, "one bin only: it cannot rank applicants"))
        elif b.iv < options.min_iv:
            dropped.append(
                Dropped(b.name, f"IV {b.iv:.4f} is below model.scorecard.min_iv {options.min_iv:g}")
            )
        elif (clash := _correlated(woe_train, j, kept, options.max_correlation)) is not None:
            other, r = clash
            dropped.append(
                Dropped(
                    b.name,
                    f"WOE correlation {r:.2f} with {binned[other].name} (IV "
                    f"{binned[other].iv:.4f} > {b.iv:.4f}) exceeds "
                    f"model.scorecard.max_correlation {options.max_correlation:g}",
                )
            )
        elif options.max_features is not None and len(kept) >= options.max_features:
            dropped.append(
                Dropped(
                    b.name,
                    f"beyond model.scorecard.max_features {options.max_features} by IV "
                    f"({b.iv:.4f})",
                )
            )
        else:
            kept.append(j)
    if not kept:
        raise ParamsRefused(
            "model.scorecard.min_iv",
            f"no feature reaches an information value of {options.min_iv:g} on the training "
            "split; lower it or add features",
        )
    kept.sort()  # characteristics in the feature order of the data
    woe = {"train": woe_train[:, kept]}
    woe["valid"] = np.column_stack(
        [binned[j].transform(splits.valid.features[binned[j].name]) for j in kept]
    )
    for matrix in woe.values():
        matrix.flags.writeable = False
    return Selection(tuple(binned[j] for j in kept), tuple(dropped), woe)


def _correlated(
    woe: NDArray[np.float64], j: int, kept: Sequence[int], limit: float
) -> tuple[int, float] | None:
    """The kept characteristic `j`'s WOE is most correlated with, if beyond `limit`."""
    best: tuple[int, float] | None = None
    for k in kept:
        r = float(np.corrcoef(woe[:, j], woe[:, k])[0, 1])
        if abs(r) > limit and (best is None or abs(r) > abs(best[1])):
            best = (k, r)
    return best
