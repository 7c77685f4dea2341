"""Score points and the decision rule: what turns a probability into an answer.

Both are stored with the model as a few numbers so a serving system applies exactly
what the reviewer approved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["DecisionRule", "ScoreScale", "choose_threshold", "decision_labels"]

_EPS = 1e-9


@dataclass(frozen=True)
class ScoreScale:
    """score = offset + factor * ln(odds of good); `pdo` points double the odds."""

    base_score: float
    base_odds: float
    pdo: float

    @property
    def factor(self) -> float:
        return self.pdo / math.log(2.0)

    @property
    def offset(self) -> float:
        return self.base_score - self.factor * math.log(self.base_odds)

    def points(self, p_bad: NDArray[np.float64]) -> NDArray[np.float64]:
        p = np.clip(np.asarray(p_bad, dtype=np.float64), _EPS, 1 - _EPS)
        return self.offset + self.factor * np.log((1 - p) / p)

    def to_json(self) -> dict[str, Any]:
        return {"base_score": self.base_score, "base_odds": self.base_odds, "pdo": self.pdo}


def decision_labels(task: str) -> tuple[str, str]:
    """(below threshold, at or above threshold) for the task."""
    return ("allow", "review") if task == "fraud_detection" else ("approve", "decline")


@dataclass(frozen=True)
class DecisionRule:
    """Decline / flag when probability >= threshold. `rule` says how it was chosen."""

    threshold: float
    rule: Literal["threshold", "approval_rate", "cost"]
    labels: tuple[str, str]
    #: (cost of a false negative, cost of a false positive) for the `cost` rule.
    costs: tuple[float, float] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "threshold": self.threshold,
            "rule": self.rule,
            "below": self.labels[0],
            "at_or_above": self.labels[1],
        }
        if self.costs is not None:
            out["cost_false_negative"], out["cost_false_positive"] = self.costs
        return out


def choose_threshold(
    rule: Literal["threshold", "approval_rate", "cost"],
    p_valid: NDArray[np.float64],
    y_valid: NDArray[np.int8],
    *,
    threshold: float = 0.5,
    approval_rate: float | None = None,
    cost_false_negative: float | None = None,
    cost_false_positive: float | None = None,
) -> float:
    """The probability cut-off for the configured rule, chosen on the validation split."""
    p = np.asarray(p_valid, dtype=np.float64)
    if rule == "threshold":
        return float(threshold)
    if rule == "approval_rate":
        assert approval_rate is not None
        return _cut_for_share(p, approval_rate)
    assert cost_false_negative is not None and cost_false_positive is not None
    # Flag at >= t. Sweep every distinct probability as a candidate cut, vectorised.
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], np.asarray(y_valid)[order]
    flagged_pos = np.cumsum(ys)
    flagged_neg = np.cumsum(1 - ys)
    last_of_value = np.r_[ps[1:] != ps[:-1], True]
    tp, fp = flagged_pos[last_of_value], flagged_neg[last_of_value]
    cuts = ps[last_of_value]
    fn = ys.sum() - tp
    cost = cost_false_negative * fn + cost_false_positive * fp
    nothing_flagged = cost_false_negative * ys.sum()
    best = int(np.argmin(cost))
    if nothing_flagged <= cost[best]:
        return float(np.nextafter(ps[0], np.inf))
    return float(cuts[best])


def _cut_for_share(p: NDArray[np.float64], share: float) -> float:
    """The cut that approves (p < cut) the share of rows closest to `share`.

    Calibrated probabilities have ties (isotonic maps ranges to one value), and a tied
    block is approved or declined whole; of the two cuts around the target, take the
    one whose approval share is nearer.
    """
    values, counts = np.unique(p, return_counts=True)
    approved = np.r_[0, np.cumsum(counts)] / len(
        p
    )  # share approved by a cut just above values[i-1]
    i = int(np.argmin(np.abs(approved - share)))
    if i == 0:
        return float(values[0])
    if i == len(values):
        return float(np.nextafter(values[-1], np.inf))
    return float((values[i - 1] + values[i]) / 2)
