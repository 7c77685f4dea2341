"""optbinning's own `Scorecard`, fitted on a job's split: the reference our scorecard meets.

The same training rows, every feature kept, scikit-learn's logistic regression and the
same points scaling. `trends` gives optbinning the monotonic trend per numeric feature
that the job gave its bins (`model.monotone`, else auto_asc_desc), so the comparison
measures what creditgov adds — selection, the sign rule, integer points — and nothing
else; without it optbinning bins with its own default ("auto").
"""

from __future__ import annotations

from collections.abc import Mapping

from optbinning import BinningProcess, Scorecard
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from training.split import Splits

__all__ = ["assert_meets_optbinning", "optbinning_test_auc"]


def optbinning_test_auc(
    splits: Splits, *, monotone: Mapping[str, int] | None = None, matched: bool = True
) -> float:
    """Test AUC of optbinning's Scorecard; `matched`: the job's trends (see above)."""
    names = list(splits.train.feature_names)
    categorical = list(splits.train.categorical)
    trends = {
        n: {"monotonic_trend": {1: "ascending", -1: "descending"}.get(
            (monotone or {}).get(n, 0), "auto_asc_desc")}
        for n in names
        if n not in categorical
    }  # fmt: skip
    card = Scorecard(
        binning_process=BinningProcess(
            names,
            categorical_variables=categorical,
            binning_fit_params=trends if matched else None,
        ),
        estimator=LogisticRegression(max_iter=1000),
        scaling_method="pdo_odds",
        scaling_method_params={"pdo": 20, "odds": 50, "scorecard_points": 600},
    ).fit(splits.train.features, splits.train.target)
    return float(roc_auc_score(splits.test.target, card.predict_proba(splits.test.features)[:, 1]))


def assert_meets_optbinning(
    ours: float, splits: Splits, monotone: Mapping[str, int], label: str
) -> None:
    """Within 0.01 of optbinning on the same trends, and no worse than its default by 0.01."""
    reference = optbinning_test_auc(splits, monotone=monotone)
    default = optbinning_test_auc(splits, matched=False)
    print(
        f"{label} test AUC: creditgov {ours:.4f}, optbinning {reference:.4f} (same trends), "
        f"{default:.4f} (optbinning's default trend)"
    )
    assert abs(ours - reference) <= 0.01, (ours, reference)
    assert ours >= default - 0.01, (ours, default)
