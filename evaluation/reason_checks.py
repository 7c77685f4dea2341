"""What a reviewer reads about the adverse-action reasons, and the metrics gates bound.

The rule and the wording are `evaluation/reasons.py`; these checks ask whether the reasons
it gives hold up. Coverage: do the features that can be a reason have written texts, or
would applicants read column names? Faithfulness: for a sample of declines, does moving
the first reason's feature to its low-risk value raise the score, i.e. is the reason true
of the model? Stability: does the first reason survive a refit on a bootstrap resample?
And per reason code, how often it is the first reason among the declines; and the
examples the report shows, declined test rows across the declined range, by id only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from evaluation.reasons import ReasonCatalogue, first_reasons, reason_frame

if TYPE_CHECKING:
    from evaluation.proxy import ProxyResult
    from training.data import Dataset
    from training.models.spec import ModelSpec

__all__ = ["CHECK_ROWS", "REASON_EXAMPLES", "ReasonChecks", "check_reasons", "reason_examples"]

#: Rows of reason-code examples shown to a reviewer (ids only, never raw rows).
REASON_EXAMPLES = 12

#: Declines sampled for the faithfulness and stability checks.
CHECK_ROWS = 200


@dataclass(frozen=True)
class ReasonChecks:
    """What a reviewer reads about the reasons, and the metrics gates may bound.

    `coverage`: share of the features that can be a reason with a written text
    (`uncovered` names the rest). `faithfulness`: among sampled declines, the share
    whose score rises when the first reason's feature is moved to its low-risk value.
    `stability`: the share keeping the same first reason under a bootstrap refit (NaN
    when none was made). `first`: per code, how often it is the first reason among the
    test declines, with its sentences. `general`: declines without any adverse factor.
    """

    coverage: float
    uncovered: tuple[str, ...]
    faithfulness: float
    stability: float
    declines: int
    general: int
    first: pd.DataFrame = field(repr=False)

    def metrics(self) -> dict[str, float]:
        return {
            "reason_text_coverage": self.coverage,
            "reason_faithfulness": self.faithfulness,
            "reason_stability": self.stability,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.metrics(),
            "uncovered": list(self.uncovered),
            "declines": self.declines,
            "declines_without_adverse_factor": self.general,
            "first_reason": self.first.to_dict(orient="records"),
        }


def _moved_to_best(frame: pd.DataFrame, feature: str, best: float | str) -> pd.DataFrame:
    column = frame[feature]
    if isinstance(best, str):
        moved: pd.Series = pd.Series([best] * len(frame), index=frame.index, dtype=object)
        if isinstance(column.dtype, pd.CategoricalDtype):
            moved = moved.astype(column.dtype)
        return frame.assign(**{feature: moved})
    return frame.assign(**{feature: np.full(len(frame), best, dtype=np.float64)})


def check_reasons(
    spec: ModelSpec,
    frame: pd.DataFrame,
    declined: NDArray[np.bool_],
    *,
    catalogue: ReasonCatalogue,
    eligible: Sequence[str],
    protected: Sequence[str] = (),
    refit: Callable[[], ModelSpec] | None = None,
    seed: int = 0,
) -> ReasonChecks:
    """Coverage, faithfulness, stability and the first-reason table on `frame`'s declines.

    Faithfulness and stability use up to `CHECK_ROWS` declines drawn with `seed`; the
    first-reason table uses every decline. `refit` builds the comparison model for
    stability (the job refits on a bootstrap resample of the training split).
    """
    rows = np.flatnonzero(declined)
    contrib = spec.contributions(frame.iloc[rows].reset_index(drop=True)) if rows.size else None
    if contrib is not None:
        catalogue = catalogue.ordered(contrib.features)
    names = list(catalogue.features)
    blocked = [names.index(p) for p in protected if p in names]
    values = np.array(contrib.values) if contrib is not None else np.zeros((0, len(names)))
    values[:, blocked] = -np.inf
    first = first_reasons(values)
    table = _first_table(catalogue, first)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(rows.size, size=min(CHECK_ROWS, rows.size), replace=False))
    sampled = frame.iloc[rows[chosen]].reset_index(drop=True)
    faithful = []
    for feature_index in np.unique(first[chosen]):
        if feature_index < 0 or catalogue.entries[feature_index].best is None:
            continue
        entry = catalogue.entries[feature_index]
        at = np.flatnonzero(first[chosen] == feature_index)
        part = sampled.iloc[at].reset_index(drop=True)
        assert entry.best is not None
        before = spec.probability(part)
        after = spec.probability(_moved_to_best(part, entry.feature, entry.best))
        faithful.append(after < before)
    moved = np.concatenate(faithful) if faithful else np.zeros(0, dtype=bool)
    stability = math.nan
    if refit is not None and chosen.size:
        other = np.array(refit().contributions(sampled).values)
        other[:, blocked] = -np.inf
        stability = float(np.mean(first_reasons(other) == first[chosen]))
    uncovered = tuple(n for n in eligible if not catalogue.entry(n).written)
    return ReasonChecks(
        coverage=catalogue.coverage(eligible),
        uncovered=uncovered,
        faithfulness=float(moved.mean()) if moved.size else math.nan,
        stability=stability,
        declines=int(rows.size),
        general=int(np.count_nonzero(first < 0)),
        first=table,
    )


def _first_table(catalogue: ReasonCatalogue, first: NDArray[np.intp]) -> pd.DataFrame:
    """code, feature, count and share as first reason among the declines, sentences."""
    counts = np.bincount(first[first >= 0], minlength=len(catalogue.entries))
    total = max(first.size, 1)
    rows = [
        {
            "code": e.code,
            "feature": e.feature,
            "first_reason": int(counts[j]),
            "share": counts[j] / total,
            "texts": e.sentences(),
        }
        for j, e in enumerate(catalogue.entries)
        if counts[j]
    ]
    frame = pd.DataFrame(rows, columns=["code", "feature", "first_reason", "share", "texts"])
    return frame.sort_values("first_reason", ascending=False, kind="stable").reset_index(drop=True)


def reason_examples(
    spec: ModelSpec,
    test: Dataset,
    catalogue: ReasonCatalogue,
    *,
    protected: Sequence[str] = (),
    probability: NDArray[np.float64] | None = None,
    proxy: ProxyResult | None = None,
) -> pd.DataFrame:
    """The riskiest declined rows with their reasons — identified by id only.

    A reason whose feature the proxy screen flagged is marked "[proxy for <attribute>]".
    """
    p = spec.probability(test.features) if probability is None else probability
    declined = p >= spec.decision.threshold
    order = np.argsort(-p, kind="stable")
    ranked = order[declined[order]]
    # Spread the examples from the riskiest decline to the marginal one: a reviewer should
    # see why borderline applicants are declined, not only the obvious cases.
    spread = np.linspace(0, len(ranked) - 1, min(REASON_EXAMPLES, len(ranked)))
    chosen = ranked[np.unique(spread.round().astype(int))] if len(ranked) else ranked
    if len(chosen) == 0:
        return pd.DataFrame(columns=["id", "probability", "score", "decision"])
    rows = test.features.iloc[chosen].reset_index(drop=True)
    contrib = spec.contributions(rows)
    reasons = reason_frame(
        contrib,
        catalogue.encoded(spec, rows),
        declined=np.ones(len(chosen), dtype=bool),
        catalogue=catalogue,
        protected=protected,
    )
    flagged = proxy.flagged if proxy is not None else {}
    for i in range(catalogue.k):
        codes = reasons[f"reason_code_{i + 1}"]
        for feature, attributes in flagged.items():
            code = catalogue.entry(feature).code if feature in catalogue.features else None
            hit = codes == code
            mark = f" [proxy for {', '.join(attributes)}]"
            reasons.loc[hit, f"reason_{i + 1}"] = reasons.loc[hit, f"reason_{i + 1}"] + mark
    ids = (
        test.ids.iloc[chosen].astype(str).to_numpy()
        if test.ids is not None
        else np.array([f"row {i}" for i in chosen])
    )
    scored = spec.predict(rows)
    head = pd.DataFrame(
        {
            "id": ids,
            "probability": scored["probability"].round(4),
            "score": scored["score"],
            "decision": scored["decision"],
        }
    )
    texts = reasons[[f"reason_{i + 1}" for i in range(catalogue.k)]]
    return pd.concat([head, texts.reset_index(drop=True)], axis=1)
