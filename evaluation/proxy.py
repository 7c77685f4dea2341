"""The proxy screen: which features stand in for a protected attribute on their own.

Protected attributes are never features, but a feature that predicts one (employment
years for age, a postcode for ethnicity) lets a model treat groups differently all the
same, and a decline naming it is a decline naming the attribute by another word. So for
every feature and every protected attribute this measures, on the training split, how
well the feature *alone* predicts the attribute:

* **AUC**, one group against the rest for each group of the attribute (the fairness
  bands for a numeric attribute such as age, the levels otherwise), taking the best
  group and either orientation (max(AUC, 1 - AUC)): 0.5 is no information, 1 a perfect
  proxy. A numeric feature scores by its value (a missing value below every present
  one); a categorical one by each level's share of the group, so the AUC is that of the
  best ordering of its levels.
* **Cramér's V** of the feature (numeric: its deciles, plus missing) against the
  attribute's groups, the association measure a reviewer may know from contingency tables.

A feature whose AUC reaches `evaluation.proxy_threshold` is a proxy: listed in the
report's fairness section and marked wherever it appears as a reason; `proxy_max` (the
largest AUC) is available to gates. Groups smaller than `min_group_size` are not judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from evaluation.fairness import groups_of

__all__ = ["ProxyResult", "proxy_screen"]

#: Quantile bins of a numeric feature for Cramér's V.
CRAMER_BINS = 10


@dataclass(frozen=True)
class ProxyResult:
    """Per feature and attribute: AUC (best group), the group, Cramér's V, proxy or not."""

    table: pd.DataFrame = field(repr=False)
    threshold: float

    @property
    def proxy_max(self) -> float:
        return float(self.table["auc"].max()) if len(self.table) else 0.5

    @property
    def flagged(self) -> dict[str, tuple[str, ...]]:
        """feature -> the attributes it stands in for."""
        hits = self.table[self.table["proxy"]]
        return {
            str(f): tuple(str(a) for a in part["attribute"])
            for f, part in hits.groupby("feature", sort=False)
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "proxy_max": self.proxy_max,
            "pairs": self.table.to_dict(orient="records"),
        }


def _numeric_score(column: pd.Series) -> NDArray[np.float64]:
    """The feature's values, a missing value below every present one."""
    x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    present = x[~np.isnan(x)]
    floor = (present.min() - 1.0) if present.size else 0.0
    return np.asarray(np.where(np.isnan(x), floor, x), dtype=np.float64)


def _level_share(column: pd.Series, member: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Each row's level scored by that level's share of the group (missing is a level)."""
    levels = column.astype(object).where(column.notna(), "\0missing").astype(str).to_numpy()
    share = pd.Series(member.astype(np.float64)).groupby(levels).mean()
    return np.asarray(share.reindex(levels).to_numpy(), dtype=np.float64)


def _cramers_v(column: pd.Series, categorical: bool, groups: NDArray[Any]) -> float:
    from scipy.stats.contingency import association

    if categorical:
        cells = column.astype(object).where(column.notna(), "\0missing").astype(str)
    else:
        x = pd.to_numeric(column, errors="coerce")
        cells = pd.qcut(x, CRAMER_BINS, labels=False, duplicates="drop").astype(object)
        cells = cells.where(x.notna(), "missing").astype(str)
    counts = pd.crosstab(cells.to_numpy(), groups)
    if min(counts.shape) < 2:
        return 0.0
    return float(association(counts.to_numpy(), method="cramer"))


def proxy_screen(
    features: pd.DataFrame,
    protected: pd.DataFrame,
    *,
    categorical: Sequence[str],
    bins: Mapping[str, Sequence[float]],
    threshold: float = 0.7,
    min_group_size: int = 30,
) -> ProxyResult:
    """How well each feature alone predicts each protected attribute (see the module)."""
    from sklearn.metrics import roc_auc_score

    cats = set(categorical)
    rows: list[dict[str, Any]] = []
    for attribute in protected.columns:
        labels, order = groups_of(str(attribute), protected[attribute], bins.get(attribute))
        judged = [
            g
            for g in order
            if min_group_size <= int(np.sum(labels == g)) <= len(labels) - min_group_size
        ]
        for name in features.columns:
            column = features[name].reset_index(drop=True)
            numeric = None if name in cats else _numeric_score(column)
            best, best_group = 0.5, ""
            for group in judged:
                member = np.asarray(labels == group, dtype=np.bool_)
                score = _level_share(column, member) if numeric is None else numeric
                auc = float(roc_auc_score(member, score))
                auc = max(auc, 1.0 - auc)
                if auc > best:
                    best, best_group = auc, str(group)
            rows.append(
                {
                    "feature": str(name),
                    "attribute": str(attribute),
                    "group": best_group,
                    "auc": round(best, 6),
                    "cramers_v": round(_cramers_v(column, name in cats, labels), 6),
                    "proxy": bool(best >= threshold),
                }
            )
    table = pd.DataFrame(
        rows, columns=["feature", "attribute", "group", "auc", "cramers_v", "proxy"]
    )
    return ProxyResult(
        table=table.sort_values("auc", ascending=False, kind="stable").reset_index(drop=True),
        threshold=threshold,
    )
