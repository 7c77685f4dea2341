"""The search for a less discriminatory alternative (LDA), and the model it picks.

Regulators and courts ask a lender whose model treats a group worse: was there a model
nearly as accurate with less disparity, and did you look? So with `tuning.objectives:
[auc, selection_rate_ratio]` the tuning study is multi-objective — every trial is scored
on validation AUC *and* on the selection-rate ratio of its decisions (lowest over highest
group approval rate, the four-fifths screen, computed exactly as the evidence computes it:
the trial's validation PDs calibrated and cut by the config's decision rule). Beside the
trials, the search fits the most accurate parameters once more without each feature the
proxy screen flags. Protected attributes stay out of the features and out of decision
time throughout: no alternative uses them, and none has a per-group cut-off.

`tuning.select` then picks the model to register: `most_accurate` (the default), the
fairest within an AUC drop (`{fairest_within: {auc_drop: 0.01}}`), or the most accurate
that passes the config's AUC and ratio gates on validation. `LdaSearch` keeps every
alternative with its (AUC, ratio), names the chosen and the most accurate, and words the
conclusion the search supports for the report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from evaluation.fairness import protected_groups
from training.models.spec import calibrate_and_cut
from training.tuning import Objective

__all__ = [
    "FOUR_FIFTHS",
    "Alternative",
    "DecisionSettings",
    "LdaSearch",
    "fairness_objective",
    "select",
]

#: The four-fifths line of the selection-rate ratio, when no gate names another.
FOUR_FIFTHS = 0.8
#: The AUC drops the report's statement reads the front at.
STATEMENT_DROPS = (0.01, 0.02)


@dataclass(frozen=True)
class DecisionSettings:
    """How a trial's validation PDs become decisions: the config's calibration and rule."""

    calibration: str
    rule: str
    threshold: float = 0.5
    approval_rate: float | None = None
    cost_false_negative: float | None = None
    cost_false_positive: float | None = None

    def declined_at(self, raw: NDArray[np.float64], y: NDArray[np.int8]) -> tuple[Any, float]:
        """The calibrated PDs and the cut-off, as `spec.finish_model` learns them."""
        calibration, cut = calibrate_and_cut(
            raw, y, calibration=self.calibration, decision_rule=self.rule,  # type: ignore[arg-type]
            threshold=self.threshold, approval_rate=self.approval_rate,
            cost_false_negative=self.cost_false_negative,
            cost_false_positive=self.cost_false_positive,
        )  # fmt: skip
        p = calibration.apply(raw)
        return p, cut


def fairness_objective(
    protected: pd.DataFrame,
    *,
    decision: DecisionSettings,
    bins: Mapping[str, Sequence[float]],
    min_group_size: int,
    min_group_bads: int,
) -> Objective:
    """The selection-rate ratio of a trial's validation decisions, to maximise.

    `protected` is the validation split's protected attributes (row-aligned with the
    validation target); they score the decisions and never reach the model. The ratio is
    the lowest over the attributes (intersection included) that have two groups large
    enough to judge on validation; the test split's gate still reads every attribute.
    """
    groups = [
        (pd.Categorical(labels, categories=order).codes, len(order))
        for _, labels, order in protected_groups(protected, bins, len(protected))
    ]

    def score(y: NDArray[np.int8], raw: NDArray[np.float64]) -> float:
        p, cut = decision.declined_at(raw, y)
        approved = (p < cut).astype(np.float64)
        bad = np.asarray(y, dtype=np.float64)
        ratios = []
        for codes, n in groups:
            rows = np.bincount(codes, minlength=n).astype(np.float64)
            bads = np.bincount(codes, weights=bad, minlength=n)
            # Judged as `assess_fairness` judges them: enough rows, bads and goods.
            counted = (
                (rows >= min_group_size)
                & (bads >= min_group_bads)
                & (rows - bads >= min_group_bads)
            )
            if counted.sum() < 2:
                continue
            rate = np.bincount(codes, weights=approved, minlength=n)[counted] / rows[counted]
            if rate.max() > 0:
                ratios.append(float(rate.min() / rate.max()))
        # The worst attribute that can be judged on validation: the headline would be NaN
        # as soon as one (often the intersection) has too few large groups there.
        return min(ratios) if ratios else math.nan

    # `early_stopping` is the primary objective's business; an extra objective has none.
    return Objective("selection_rate_ratio", "maximize", score, early_stopping="")


@dataclass(frozen=True)
class Alternative:
    """One candidate model: a tuning trial's parameters, possibly without some features."""

    label: str
    params: Mapping[str, Any]
    auc: float
    selection_rate_ratio: float
    dropped: tuple[str, ...] = ()
    trial: int | None = None


def _pareto(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both (higher is better), by AUC."""
    front = [
        i
        for i, (a, r) in enumerate(points)
        if not any(
            (a2 >= a and r2 >= r) and (a2 > a or r2 > r)
            for j, (a2, r2) in enumerate(points)
            if j != i
        )
    ]
    return sorted(front, key=lambda i: (-points[i][0], -points[i][1]))


@dataclass(frozen=True)
class LdaSearch:
    """Every alternative tried, the one chosen, the most accurate, and what that shows."""

    alternatives: tuple[Alternative, ...]
    chosen: int
    most_accurate: int
    rule: str
    gate_ratio: float = FOUR_FIFTHS
    note: str = ""

    @property
    def front(self) -> list[int]:
        return _pareto([(a.auc, a.selection_rate_ratio) for a in self.alternatives])

    @property
    def trials(self) -> int:
        return sum(a.trial is not None and not a.dropped for a in self.alternatives)

    @property
    def feature_drops(self) -> int:
        return sum(bool(a.dropped) for a in self.alternatives)

    def best_within(self, auc_drop: float) -> Alternative | None:
        """The fairest alternative whose AUC is within `auc_drop` of the most accurate."""
        top = self.alternatives[self.most_accurate].auc
        near = [
            a
            for a in self.alternatives
            if a.auc >= top - auc_drop - 1e-12 and math.isfinite(a.selection_rate_ratio)
        ]
        return max(near, key=lambda a: (a.selection_rate_ratio, a.auc)) if near else None

    def statement(self) -> str:
        """The conclusion the search supports, in a reviewer's words."""
        best = self.alternatives[self.most_accurate]
        parts = [
            f"The search scored {self.trials} parameter set(s) and {self.feature_drops} "
            f"feature drop(s) on the validation split. The most accurate alternative "
            f"({best.label}) has AUC {best.auc:.3f} at a selection-rate ratio of "
            f"{_ratio(best.selection_rate_ratio)}."
        ]
        previous: Alternative | None = None
        for drop in STATEMENT_DROPS:
            near = self.best_within(drop)
            if near is None:
                continue
            if near is previous:
                parts.append(f"Within {drop:g} AUC the fairest is the same.")
                continue
            previous = near
            line = self.gate_ratio
            verdict = (
                f"which reaches the {line:g} line"
                if near.selection_rate_ratio >= line
                else f"so no alternative within {drop:g} AUC reaches {line:g}"
            )
            parts.append(
                f"Within {drop:g} AUC the fairest reaches a ratio of "
                f"{near.selection_rate_ratio:.2f} ({near.label}, AUC {near.auc:.3f}), {verdict}."
            )
        chosen = self.alternatives[self.chosen]
        parts.append(f"Chosen by {self.rule}: {chosen.label}.")
        if self.note:
            parts.append(self.note)
        return " ".join(parts)

    def summary(self) -> dict[str, Any]:
        """The chosen and the most accurate alternative, the front's size, the statement."""

        def brief(a: Alternative) -> dict[str, Any]:
            return {"label": a.label, "auc": _finite(a.auc),
                    "selection_rate_ratio": _finite(a.selection_rate_ratio)}  # fmt: skip

        return {
            "chosen": brief(self.alternatives[self.chosen]),
            "most_accurate": brief(self.alternatives[self.most_accurate]),
            "front_size": len(self.front),
            "rule": self.rule,
            "statement": self.statement(),
        }

    def to_json(self) -> list[dict[str, Any]]:
        front = set(self.front)
        return [
            {
                "label": a.label,
                "auc": _finite(a.auc),
                "selection_rate_ratio": _finite(a.selection_rate_ratio),
                "chosen": i == self.chosen,
                "most_accurate": i == self.most_accurate,
                "on_front": i in front,
                "params": dict(a.params),
                "dropped_features": list(a.dropped),
                "trial": a.trial,
            }
            for i, a in enumerate(self.alternatives)
        ]


def _ratio(value: float) -> str:
    return f"{value:.2f}" if math.isfinite(value) else "that could not be computed"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _key(a: Alternative) -> tuple[float, float]:
    # NaN ranks last on either measure.
    return (
        a.auc if math.isfinite(a.auc) else -math.inf,
        a.selection_rate_ratio if math.isfinite(a.selection_rate_ratio) else -math.inf,
    )


def select(
    alternatives: Sequence[Alternative],
    *,
    rule: str | Mapping[str, Any],
    passes: Callable[[Alternative], bool],
    gate_ratio: float = FOUR_FIFTHS,
) -> LdaSearch:
    """Pick the model `tuning.select` asks for; `passes` applies the validation gates.

    `most_accurate`: highest AUC (ties: higher ratio, then the earlier alternative).
    `{fairest_within: {auc_drop: d}}`: highest ratio among those within d of that AUC.
    `most_accurate_passing_gates`: highest AUC among those passing; when none passes,
    the most accurate is kept and the search says so (the gate is never relaxed).
    """
    if not alternatives:
        raise ValueError("the search has no alternative to choose from")
    order = sorted(range(len(alternatives)), key=lambda i: (*_key(alternatives[i]), -i))
    top = order[-1]
    note = ""
    if not any(math.isfinite(a.selection_rate_ratio) for a in alternatives):
        note = (
            "No alternative's selection-rate ratio could be computed on validation (no "
            "protected attribute has two groups with enough rows, bads and goods there); "
            "the most accurate is kept."
        )
        return LdaSearch(tuple(alternatives), top, top, "most accurate", gate_ratio, note)
    if isinstance(rule, Mapping):
        drop = float(rule["fairest_within"]["auc_drop"])
        search = LdaSearch(tuple(alternatives), top, top, "", gate_ratio)
        near = search.best_within(drop)
        chosen = next((i for i, a in enumerate(alternatives) if a is near), top)
        label = f"fairest within {drop:g} AUC"
    elif rule == "most_accurate_passing_gates":
        passing = [i for i in order if passes(alternatives[i])]
        chosen = passing[-1] if passing else top
        label = "most accurate passing the gates on validation"
        if not passing:
            note = "No alternative passes the gates on validation; the most accurate is kept."
    else:
        chosen, label = top, "most accurate"
    return LdaSearch(tuple(alternatives), chosen, top, label, gate_ratio, note)
