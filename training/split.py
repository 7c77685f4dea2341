"""Split a Dataset into train / valid / test.

Credit models are judged out of time: a model that only ever saw last year's
applicants is tested on this year's. `random` is stratified so small bad rates
survive the cut; `group` keeps every row of one customer (or card) on one side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from training.data import Dataset
from training.reading import DataError

__all__ = ["MIN_CLASS_ROWS", "SplitSummary", "Splits", "split_dataset"]

#: Fewer rows than this of either class in train, and no model or metric can be trusted.
MIN_CLASS_ROWS = 50

SplitName = Literal["train", "valid", "test"]


@dataclass(frozen=True)
class SplitSummary:
    name: SplitName
    rows: int
    bads: int
    bad_rate: float
    date_min: str | None
    date_max: str | None


@dataclass(frozen=True)
class Splits:
    method: str
    train: Dataset
    valid: Dataset
    test: Dataset

    def parts(self) -> dict[SplitName, Dataset]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def without(self, names: Sequence[str]) -> Splits:
        """The same rows of every split without the features `names`."""
        return Splits(
            self.method, self.train.without(names), self.valid.without(names),
            self.test.without(names),
        )  # fmt: skip

    def summary(self) -> tuple[SplitSummary, ...]:
        out = []
        for name, part in self.parts().items():
            time = part.time
            out.append(
                SplitSummary(
                    name=name,
                    rows=part.n_rows,
                    bads=int(part.target.sum()),
                    bad_rate=round(part.bad_rate, 6),
                    date_min=None if time is None else str(time.min().date()),
                    date_max=None if time is None else str(time.max().date()),
                )
            )
        return tuple(out)


def split_dataset(
    dataset: Dataset,
    *,
    method: Literal["random", "out_of_time", "group"],
    test_fraction: float,
    valid_fraction: float,
    oot_start: date | None = None,
    seed: int = 0,
) -> Splits:
    """Cut `dataset` three ways and check each part can train or be measured."""
    positions = np.arange(dataset.n_rows)
    where = dataset.source
    bads = int(dataset.target.sum())
    least = min(bads, dataset.n_rows - bads)
    if least < MIN_CLASS_ROWS:
        # Checked on the whole file first: a tiny file fails here with the real reason,
        # not in a splitter that cannot cut a handful of rows.
        which = "positive (bad)" if least == bads else "negative (good)"
        raise DataError(
            f"{where}: the file has {least} {which} rows in {dataset.n_rows}; the train split "
            f"alone needs at least {MIN_CLASS_ROWS} of each class: add data"
        )
    if method == "random":
        rest, test = _stratified(
            positions, dataset.target, test_fraction, seed, where, "split.test_fraction"
        )
    elif method == "out_of_time":
        if dataset.time is None or oot_start is None:
            raise DataError(f"{where}: out_of_time needs data.time_column and split.oot_start")
        cutoff = pd.Timestamp(oot_start)
        after = (dataset.time >= cutoff).to_numpy()
        rest, test = positions[~after], positions[after]
        lo, hi = dataset.time.min().date(), dataset.time.max().date()
        if len(test) == 0 or len(rest) == 0:
            side = "test (on/after it)" if len(test) == 0 else "train/valid (before it)"
            raise DataError(
                f"{where}: split.oot_start {oot_start} leaves the {side} split empty; "
                f"the data runs from {lo} to {hi}: pick a date inside that range"
            )
    elif method == "group":
        if dataset.groups is None:
            raise DataError(f"{where}: group split needs split.group_column")
        rest, test = _by_group(positions, dataset.groups, test_fraction, seed)
    else:  # pragma: no cover - the config schema admits only the three
        raise DataError(f"unknown split.method {method!r}")

    if method == "group":
        assert dataset.groups is not None
        train, valid = _by_group(rest, dataset.groups, valid_fraction, seed + 1)
    else:
        train, valid = _stratified(
            rest, dataset.target, valid_fraction, seed + 1, where, "split.valid_fraction"
        )

    splits = Splits(
        method=method,
        train=dataset.take(np.sort(train)),
        valid=dataset.take(np.sort(valid)),
        test=dataset.take(np.sort(test)),
    )
    _check(splits, where)
    return splits


def _stratified(
    positions: NDArray[np.intp],
    y: NDArray[np.int8],
    fraction: float,
    seed: int,
    where: str,
    key: str,
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    labels = y[positions]
    counts = np.bincount(labels, minlength=2)
    stratify = labels if counts.min() >= 2 else None
    try:
        keep, held = train_test_split(
            positions, test_size=fraction, random_state=seed, stratify=stratify
        )
    except ValueError as err:  # e.g. a share too small to hold one row of each class
        raise DataError(
            f"{where}: {key} {fraction:g} cannot cut {len(positions)} rows "
            f"({str(err).splitlines()[0]}); choose a larger share or add data"
        ) from None
    return np.asarray(keep), np.asarray(held)


def _by_group(
    positions: NDArray[np.intp], groups: pd.Series, fraction: float, seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    splitter = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    keep, held = next(splitter.split(positions, groups=groups.to_numpy()[positions]))
    return positions[keep], positions[held]


def _check(splits: Splits, where: str) -> None:
    for name, part in splits.parts().items():
        if part.n_rows == 0:
            raise DataError(f"{where}: the {name} split is empty; adjust split fractions or dates")
        if name == "train":
            bads = int(part.target.sum())
            goods = part.n_rows - bads
            if min(bads, goods) < MIN_CLASS_ROWS:
                which = "positive (bad)" if bads < goods else "negative (good)"
                raise DataError(
                    f"{where}: the train split has {min(bads, goods)} {which} rows; at least "
                    f"{MIN_CLASS_ROWS} of each class are needed: add data or lower split fractions"
                )
        elif part.target.min() == part.target.max():
            raise DataError(
                f"{where}: the {name} split has only one class; it cannot be measured: "
                f"add data or change the split"
            )
