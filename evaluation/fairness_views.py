"""Reading the fairness numbers: approval within risk bands, equal opportunity, verdicts.

Why this module: a lower approval rate for one group is not by itself disparate impact.
If that group's applicants default more often, a sound model declines more of them; the
question a reviewer must answer is whether applicants *of the same risk* are treated
alike. :func:`conditional_view` answers it two ways: approval rate by group within
equal-count bands of the score (the bands of :func:`evaluation.bands.score_bands`, band 1
the lowest risk), and *equal opportunity* -- the approval rate among applicants who
turned out good, whose risk was low by the outcome itself. :func:`verdicts` turns a
:class:`~evaluation.fairness.FairnessResult` into one plain sentence per attribute for
the report, naming groups only, never an applicant.

The groups, the small-group rule and the conventions (1 = bad, declined when
``y_prob >= threshold``) are those of :mod:`evaluation.fairness`, so a group is counted
here exactly when it is counted there.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from evaluation.bands import score_bands
from evaluation.fairness import (
    MIN_GROUP_BADS,
    MIN_GROUP_SIZE,
    MISSING,
    AttributeSummary,
    FairnessResult,
    check_count,
    protected_groups,
    small_reason,
)
from evaluation.fairness_intervals import Interval
from evaluation.metrics import check_scores, check_unit_interval

__all__ = [
    "BandRow",
    "ConditionalView",
    "EqualOpportunity",
    "OpportunityRow",
    "conditional_view",
    "verdicts",
]

FOUR_FIFTHS = 0.8


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _records(rows: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {k: _json_float(v) if isinstance(v, float) else v for k, v in dataclasses.asdict(r).items()}
        for r in rows
    ]


def _frame(rows: Sequence[Any], kind: type) -> pd.DataFrame:
    columns = [f.name for f in dataclasses.fields(kind)]
    return pd.DataFrame([dataclasses.astuple(r) for r in rows], columns=columns)


@dataclass(frozen=True)
class BandRow:
    """One group within one score band: its size, approval rate and observed bad rate."""

    attribute: str
    group: str
    band: int
    rows: int
    approval_rate: float
    bad_rate: float


@dataclass(frozen=True)
class OpportunityRow:
    """One group's approval rate among its goods, and its ratio to the highest counted group.

    ``ratio_to_highest`` is ``NaN`` when no group of the attribute is counted (or the
    highest rate is 0); ``small`` follows the rule of :mod:`evaluation.fairness`, and a
    small group's ratio is shown but enters no summary.
    """

    attribute: str
    group: str
    goods: int
    good_approval_rate: float
    ratio_to_highest: float
    small: bool


@dataclass(frozen=True)
class EqualOpportunity:
    """Lowest / highest approval rate among goods over the attribute's counted groups.

    ``ratio`` is ``NaN`` with fewer than two counted groups, as in the fairness summaries.
    """

    attribute: str
    ratio: float
    lowest_group: str
    highest_group: str


@dataclass(frozen=True)
class ConditionalView:
    """Approval by group within score bands, and equal opportunity by group.

    ``band_pd`` is the (lowest, highest) predicted PD of each band, band 1 first; bands
    are equal-count over all rows, fewer than asked when tied scores would straddle a cut.
    ``within_bands`` lists every (attribute, group, band) cell that holds rows.
    """

    band_pd: tuple[tuple[float, float], ...]
    within_bands: tuple[BandRow, ...]
    opportunity: tuple[OpportunityRow, ...]
    equal_opportunity: tuple[EqualOpportunity, ...]
    min_group_size: int
    min_group_bads: int

    def table(self) -> pd.DataFrame:
        """Approval by group within bands: attribute, group, band, rows, approval_rate, bad_rate."""
        return _frame(self.within_bands, BandRow)

    def opportunity_table(self) -> pd.DataFrame:
        """Equal opportunity by group, columns as in :class:`OpportunityRow`."""
        return _frame(self.opportunity, OpportunityRow)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; undefined numbers are ``None`` so the file is strict JSON."""
        return {
            "min_group_size": self.min_group_size,
            "min_group_bads": self.min_group_bads,
            "band_pd": [
                {"band": i + 1, "min_pd": lo, "max_pd": hi}
                for i, (lo, hi) in enumerate(self.band_pd)
            ],
            "within_bands": _records(self.within_bands),
            "opportunity": _records(self.opportunity),
            "equal_opportunity": _records(self.equal_opportunity),
        }


def _within_bands(
    attribute: str,
    codes: NDArray[np.intp],
    order: Sequence[str],
    band: NDArray[np.intp],
    n_bands: int,
    y: NDArray[np.int64],
    approved: NDArray[np.int64],
) -> list[BandRow]:
    cell = codes * n_bands + band
    size = len(order) * n_bands
    rows = np.bincount(cell, minlength=size)
    yes = np.bincount(cell, weights=approved, minlength=size)
    bads = np.bincount(cell, weights=y, minlength=size)
    out = []
    for i in np.flatnonzero(rows).tolist():
        group, b = order[i // n_bands], i % n_bands
        n = int(rows[i])
        out.append(BandRow(attribute, group, b + 1, n, float(yes[i] / n), float(bads[i] / n)))
    return out


def _opportunity(
    attribute: str,
    codes: NDArray[np.intp],
    order: Sequence[str],
    y: NDArray[np.int64],
    approved: NDArray[np.int64],
    min_group_size: int,
    min_group_bads: int,
) -> tuple[list[OpportunityRow], EqualOpportunity]:
    n = len(order)
    rows = np.bincount(codes, minlength=n)
    bads = np.bincount(codes, weights=y, minlength=n).astype(np.int64)
    good = y == 0
    goods = np.bincount(codes[good], minlength=n)
    approved_goods = np.bincount(codes[good], weights=approved[good], minlength=n)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(goods > 0, approved_goods / goods, np.nan)
    small = [
        bool(
            small_reason(
                int(rows[g]),
                int(bads[g]),
                int(goods[g]),
                min_group_size=min_group_size,
                min_group_bads=min_group_bads,
            )
        )
        for g in range(n)
    ]
    # With min_group_bads=0 a counted group may have no goods; it has no rate to compare.
    counted = [g for g in range(n) if not small[g] and goods[g] > 0]
    high = max(counted, key=lambda g: rate[g], default=None)
    low = min(counted, key=lambda g: rate[g], default=None)
    top = rate[high] if high is not None else math.nan
    ratio = [float(rate[g] / top) if top > 0 else math.nan for g in range(n)]
    table = [
        OpportunityRow(attribute, order[g], int(goods[g]), float(rate[g]), ratio[g], small[g])
        for g in range(n)
    ]
    summary = EqualOpportunity(
        attribute,
        ratio[low] if low is not None and len(counted) >= 2 else math.nan,
        order[low] if low is not None else "",
        order[high] if high is not None else "",
    )
    return table, summary


def conditional_view(
    *,
    y_true: ArrayLike,
    y_prob: ArrayLike,
    threshold: float,
    protected: pd.DataFrame,
    bins: Mapping[str, Sequence[float]] | None = None,
    bands: int = 5,
    min_group_size: int = MIN_GROUP_SIZE,
    min_group_bads: int = MIN_GROUP_BADS,
) -> ConditionalView:
    """Approval by group within ``bands`` equal-count score bands, and equal opportunity.

    Arguments mean what they mean to :func:`~evaluation.fairness.assess_fairness`, so
    the groups (intersection included) and which of them are counted are the same.
    Raises ``ValueError`` as it does, and for ``bands`` < 1.
    """
    t = check_unit_interval("threshold", threshold)
    y, p = check_scores(y_true, y_prob, need_both_classes=False)
    n_bands = check_count("bands", bands, 1)
    min_size = check_count("min_group_size", min_group_size, 1)
    min_bads = check_count("min_group_bads", min_group_bads, 0)
    grouping = protected_groups(protected, bins, y.shape[0])
    approved = (p < t).astype(np.int64)

    # The bands of the score-band table: each band's highest PD is below the next band's
    # lowest, so a row's band is the first whose highest PD is not below its own.
    table = score_bands(y, p, n_bands=n_bands)
    max_pd = table["max_pd"].to_numpy(dtype=np.float64)
    band = np.searchsorted(max_pd, p, side="left").astype(np.intp)
    m = int(max_pd.shape[0])

    within: list[BandRow] = []
    opportunity: list[OpportunityRow] = []
    summaries: list[EqualOpportunity] = []
    for attribute, labels, order in grouping:
        codes = pd.Categorical(labels, categories=order).codes.astype(np.intp)
        within.extend(_within_bands(attribute, codes, order, band, m, y, approved))
        rows, summary = _opportunity(attribute, codes, order, y, approved, min_size, min_bads)
        opportunity.extend(rows)
        summaries.append(summary)
    return ConditionalView(
        band_pd=tuple(
            (float(lo), float(hi)) for lo, hi in zip(table["min_pd"], table["max_pd"], strict=True)
        ),
        within_bands=tuple(within),
        opportunity=tuple(opportunity),
        equal_opportunity=tuple(summaries),
        min_group_size=min_size,
        min_group_bads=min_bads,
    )


# --------------------------------------------------------------------------- verdicts


def _line(min_ratio: float) -> str:
    return "the four-fifths line" if min_ratio == FOUR_FIFTHS else f"the {min_ratio:g} line"


def _subject(attribute: str, group: str) -> str:
    """The group as the subject of a sentence; age reads as applicants of an age band."""
    if attribute.lower() == "age":
        if group == MISSING:
            return "Applicants with no recorded age are"
        return f"Applicants aged {group} are"
    return f"{attribute}: {group} is"


def _too_few(summary: AttributeSummary, min_group_size: int, min_group_bads: int) -> str:
    text = (
        f"{summary.attribute}: no ratio can be computed: fewer than two groups are large "
        f"enough to compare (at least {min_group_size} rows, {min_group_bads} bads and "
        f"{min_group_bads} goods each, as min_group_size and min_group_bads require)."
    )
    parts = [f"Only {only} is large enough" for only in summary.group_sizes]
    excluded = ", ".join(
        f"{g} ({summary.excluded_reasons.get(g, 'small')})" for g in summary.excluded_small
    )
    if excluded:
        parts.append(f"{'excluded' if parts else 'Excluded'}: {excluded}")
    return f"{text} {'; '.join(parts)}." if parts else text


def _judgement(ratio: float, ci: Interval | None, min_ratio: float) -> str:
    line = _line(min_ratio)
    if ci is None:
        side = "below" if ratio < min_ratio else "above"
        return f"{side} {line} (no interval was computed)"
    if ci.high < min_ratio and ratio < min_ratio:
        return f"below {line}"
    if ci.low >= min_ratio and ratio >= min_ratio:
        return f"above {line}"
    if ci.low < min_ratio <= ci.high:
        return f"the interval includes {line}, so the data cannot tell"
    return (
        f"the estimate and its interval fall on different sides of {line}, so the data cannot tell"
    )


def _verdict(
    summary: AttributeSummary, min_group_size: int, min_group_bads: int, min_ratio: float
) -> str:
    if len(summary.group_sizes) < 2:
        return _too_few(summary, min_group_size, min_group_bads)
    ratio, ci = summary.selection_rate_ratio, summary.selection_rate_ratio_ci
    if math.isnan(ratio):
        return (
            f"{summary.attribute}: no ratio can be computed: no applicant in any counted "
            "group is approved."
        )
    interval = "" if ci is None else f" ({ci.low:.2f}–{ci.high:.2f})"
    judgement = _judgement(ratio, ci, min_ratio)
    if summary.lowest_group == summary.highest_group:
        return (
            f"{summary.attribute}: every counted group is approved at the same rate, "
            f"ratio {ratio:.2f}{interval}: {judgement}."
        )
    return (
        f"{_subject(summary.attribute, summary.lowest_group)} approved at {ratio:.2f}{interval} "
        f"of the rate of the highest group ({summary.highest_group}): {judgement}."
    )


def verdicts(result: FairnessResult, *, min_ratio: float = FOUR_FIFTHS) -> tuple[str, ...]:
    """One sentence per attribute (intersection included) on its selection-rate ratio.

    The sentence names the lowest-approved counted group, its ratio to the highest with
    the 95% bootstrap interval, and a judgement against ``min_ratio`` (the four-fifths
    screen by default): below the line when the whole interval is, above when the whole
    interval is at or above it, and "the data cannot tell" when the interval straddles
    it. Where no ratio exists the sentence says why. Only attribute names, group labels
    and group-level numbers appear, never an applicant's value.
    """
    line = check_unit_interval("min_ratio", min_ratio)
    if line == 0:
        raise ValueError("min_ratio must be above 0, got 0")
    return tuple(
        _verdict(a, result.min_group_size, result.min_group_bads, line) for a in result.attributes
    )
