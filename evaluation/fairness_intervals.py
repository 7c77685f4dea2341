"""Bootstrap confidence intervals for the fairness summary numbers.

Why this module: a selection-rate ratio of 0.78 on 300 applicants per group and one on
30 000 are different evidence; a gate or reviewer that sees only the point estimate
cannot tell a real disparity from noise. The interval is the percentile bootstrap of
rows (as fairlearn's ``MetricFrame(n_boot=...)``), with the set of *counted* groups
fixed from the full data, so each resample recomputes the very number that was
reported, over the very groups it was reported on.

Every rate behind the summaries (approval rate, TPR, FPR per group) is a function of the
counts of the distinct (group, outcome, decision) cells, and a bootstrap of ``n`` rows is
a multinomial draw of ``n`` over those cells with the cells' shares as probabilities.
So a resample costs one multinomial draw over a few hundred cells instead of indexing
every row, and all attributes are read off the same draw (over the cells of the finest
partition, the intersection), which also gives an interval for the worst-over-attributes
number a gate tests. A resample in which a counted group has no rows gives ``NaN`` for
the approval-rate summaries (and one in which it has no bads or no goods, for equalized
odds); such resamples are dropped before the quantiles are taken.

A caveat the reader should know: a ratio or gap is an extreme over groups, and when the
groups barely differ each resample adds its own noise to that extreme, so the interval
can sit wholly past the point estimate (lower ratios, larger gaps), most visibly for an
intersection with many groups. It then errs towards flagging, never towards passing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "CI_FIELDS",
    "BootstrapIntervals",
    "CIFields",
    "Interval",
    "SummaryIntervals",
    "bootstrap_intervals",
    "intervals_json",
    "resample_statistics",
]

QUANTILES = (0.025, 0.975)
"""The ends of the reported interval: a central 95% percentile interval."""

CI_FIELDS = (
    "selection_rate_ratio_ci",
    "demographic_parity_difference_ci",
    "equalized_odds_difference_ci",
)
"""The interval fields of ``AttributeSummary`` and ``FairnessResult``."""


@dataclass(frozen=True)
class Interval:
    """A percentile bootstrap interval ``[low, high]`` of one summary number."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_json(self) -> dict[str, float]:
        return {"low": float(self.low), "high": float(self.high)}


class CIFields(TypedDict):
    """The ``*_ci`` fields of a summary, typed so they can be passed as keywords."""

    selection_rate_ratio_ci: Interval | None
    demographic_parity_difference_ci: Interval | None
    equalized_odds_difference_ci: Interval | None


@dataclass(frozen=True)
class SummaryIntervals:
    """The intervals of the three summaries of one attribute (or of the worst over them).

    An interval is ``None`` when the point estimate itself is undefined (fewer than two
    counted groups, nobody approved) or when no resample defined the number.
    """

    selection_rate_ratio: Interval | None
    demographic_parity_difference: Interval | None
    equalized_odds_difference: Interval | None

    def fields(self) -> CIFields:
        """The intervals keyed by the ``*_ci`` field names of the summaries they belong to."""
        return CIFields(
            selection_rate_ratio_ci=self.selection_rate_ratio,
            demographic_parity_difference_ci=self.demographic_parity_difference,
            equalized_odds_difference_ci=self.equalized_odds_difference,
        )


NO_INTERVALS = SummaryIntervals(None, None, None)


def intervals_json(summary: object) -> dict[str, dict[str, float] | None]:
    """The ``*_ci`` fields of a summary object as JSON (``None`` where not computed)."""
    intervals: dict[str, Interval | None] = {k: getattr(summary, k) for k in CI_FIELDS}
    return {k: None if ci is None else ci.to_json() for k, ci in intervals.items()}


@dataclass(frozen=True)
class BootstrapIntervals:
    """Intervals per attribute (in the order given) and of the worst over the attributes.

    ``worst`` bootstraps the top-level numbers themselves -- the minimum ratio and the
    maximum differences over the attributes, per resample -- so it is the interval of
    the number a gate tests, whichever attribute decides it in a given resample.
    """

    attributes: tuple[SummaryIntervals, ...]
    worst: SummaryIntervals
    n_boot: int


def _cells(
    codes: Sequence[NDArray[np.intp]], y: NDArray[np.int64], declined: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """Row count of each distinct (finest group, outcome, decision) cell, and a row of each."""
    key = np.zeros(y.shape[0], dtype=np.int64)
    for c in codes:
        # Compress after each attribute, so the combined key never overflows.
        key = np.unique(key * (int(c.max()) + 1) + c, return_inverse=True)[1].astype(np.int64)
    key = key * 4 + y * 2 + declined
    _, first, counts = np.unique(key, return_index=True, return_counts=True)
    return counts.astype(np.int64), first.astype(np.intp)


def _aggregate(
    draws: NDArray[np.float64], target: NDArray[np.intp], width: int
) -> NDArray[np.float64]:
    """Sum the cell columns of ``draws`` (resamples x cells) into ``width`` target columns."""
    order = np.argsort(target, kind="stable")
    sorted_target = target[order]
    starts = np.flatnonzero(np.r_[True, sorted_target[1:] != sorted_target[:-1]])
    out = np.zeros((draws.shape[0], width), dtype=np.float64)
    out[:, sorted_target[starts]] = np.add.reduceat(draws[:, order], starts, axis=1)
    return out


def _rate_gap(
    hits: NDArray[np.float64], base: NDArray[np.float64], defined: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Per resample, the gap in ``hits / base`` over the groups ``defined`` on the full data."""
    if int(defined.sum()) < 2:
        return np.full(hits.shape[0], np.nan)
    hits, base = hits[:, defined], base[:, defined]
    with np.errstate(divide="ignore", invalid="ignore"):
        gap = np.ptp(hits / base, axis=1)
    return np.where(np.any(base == 0, axis=1), np.nan, gap)


def resample_statistics(
    counts: NDArray[np.float64], full: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Ratio, parity difference and equalized-odds difference of each resample.

    ``counts`` has shape (resamples, counted groups, 2, 2): rows with outcome ``y`` (0 good,
    1 bad) and decision ``d`` (0 approved, 1 declined) per counted group; ``full`` holds
    the same counts on the full data. The numbers are the point-estimate formulas of
    :mod:`evaluation.fairness` applied to these counts, over the same groups: a TPR (FPR)
    enters the gap for the groups whose full data has bads (goods). A resample is ``NaN``
    where a counted group has no rows, or, for equalized odds, lost all its bads or goods.
    """
    rows = counts.sum(axis=(2, 3))
    with np.errstate(divide="ignore", invalid="ignore"):
        approval = counts[:, :, :, 0].sum(axis=2) / rows
        empty = np.any(rows == 0, axis=1)
        high, low = approval.max(axis=1), approval.min(axis=1)
        ratio = np.where(empty | (high <= 0), np.nan, low / high)
    dpd = np.where(empty, np.nan, high - low)
    bads, goods = counts[:, :, 1, :].sum(axis=2), counts[:, :, 0, :].sum(axis=2)
    tpr_gap = _rate_gap(counts[:, :, 1, 1], bads, full[:, 1, :].sum(axis=1) > 0)
    fpr_gap = _rate_gap(counts[:, :, 0, 1], goods, full[:, 0, :].sum(axis=1) > 0)
    return ratio, dpd, np.maximum(tpr_gap, fpr_gap)


def _interval(samples: NDArray[np.float64]) -> Interval | None:
    defined = samples[~np.isnan(samples)]
    if defined.size == 0:
        return None
    low, high = np.quantile(defined, QUANTILES)
    return Interval(float(low), float(high))


def _intervals(
    ratio: NDArray[np.float64], dpd: NDArray[np.float64], eod: NDArray[np.float64]
) -> SummaryIntervals:
    return SummaryIntervals(_interval(ratio), _interval(dpd), _interval(eod))


def bootstrap_intervals(
    *,
    codes: Sequence[NDArray[np.intp]],
    counted: Sequence[NDArray[np.bool_]],
    y: NDArray[np.int64],
    declined: NDArray[np.int64],
    n_boot: int = 200,
    seed: int = 0,
) -> BootstrapIntervals:
    """95% percentile intervals of each attribute's summaries over ``n_boot`` resamples.

    ``codes[a]`` is the group index of every row for attribute ``a`` and ``counted[a]``
    marks the groups (by index) that enter its summaries; ``y`` is 1 = bad and
    ``declined`` 1 = declined, row-aligned. Inputs are trusted (``assess_fairness`` checks
    them). The draws come from ``numpy.random.default_rng(seed)``, so equal inputs give
    equal intervals. An attribute with fewer than two counted groups gets no intervals,
    and neither does the worst-over-attributes summary then (its point estimate is
    ``NaN`` too); ``n_boot=0`` computes none at all.
    """
    if n_boot == 0 or not codes:
        return BootstrapIntervals(tuple(NO_INTERVALS for _ in codes), NO_INTERVALS, 0)
    codes = [np.asarray(c, dtype=np.intp) for c in codes]  # small int codes would overflow
    cell_rows, first = _cells(codes, y, declined)
    n = int(cell_rows.sum())
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, cell_rows / n, size=n_boot).astype(np.float64)

    per_attribute: list[SummaryIntervals] = []
    stats: list[tuple[NDArray[np.float64], ...]] = []
    for c, keep in zip(codes, counted, strict=True):
        n_groups = keep.shape[0]
        if int(keep.sum()) < 2:
            per_attribute.append(NO_INTERVALS)
            stats.append(tuple(np.full(n_boot, math.nan) for _ in range(3)))
            continue
        target = (c[first] * 4 + y[first] * 2 + declined[first]).astype(np.intp)
        by_group = _aggregate(draws, target, n_groups * 4).reshape(n_boot, n_groups, 2, 2)
        full = _aggregate(cell_rows[None, :].astype(np.float64), target, n_groups * 4)
        full_counted = full.reshape(n_groups, 2, 2)[keep]
        ratio, dpd, eod = resample_statistics(by_group[:, keep], full_counted)
        per_attribute.append(_intervals(ratio, dpd, eod))
        stats.append((ratio, dpd, eod))

    # np.min / np.max propagate NaN: a resample undefined on any attribute is dropped,
    # as a NaN attribute makes the top-level number NaN.
    ratio_w = np.min(np.stack([s[0] for s in stats]), axis=0)
    dpd_w = np.max(np.stack([s[1] for s in stats]), axis=0)
    eod_w = np.max(np.stack([s[2] for s in stats]), axis=0)
    return BootstrapIntervals(tuple(per_attribute), _intervals(ratio_w, dpd_w, eod_w), n_boot)
