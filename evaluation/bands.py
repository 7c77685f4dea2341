"""The score-band table a credit reviewer reads: equal-count bands of predicted PD.

Not a metric (one number a gate can bound) but the table beside the metrics in the
report and evidence.json: per band its size, PD range, predicted and observed bad rate,
and how much of the bad population declining from the top would catch. Inputs are
checked as the metrics check theirs (`evaluation.metrics.check_scores`).
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from evaluation.metrics import check_scores

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["score_bands"]


def score_bands(y_true: ArrayLike, y_prob: ArrayLike, *, n_bands: int = 10) -> pd.DataFrame:
    """The score-band table a credit reviewer reads: equal-count bands of predicted PD.

    Band 1 is the lowest risk, band ``m`` (``m <= n_bands``) the highest; rows are ordered
    by band ascending. Rows are split into ``n_bands`` equal-count slices by ascending PD,
    and every row with the same PD takes the band of the first such row, so tied scores
    never straddle a boundary; bands left empty by that are dropped and the rest renumbered
    1..m. Hence ``max_pd`` of a band is always below ``min_pd`` of the next.

    Columns: ``band, count, min_pd, max_pd, predicted_pd`` (mean), ``observed_bad_rate,
    bads, cumulative_bad_capture, cumulative_population``.

    The two cumulative columns count from the riskiest band down: for band ``b`` they are
    the share of all bads (resp. all rows) in band ``b`` and every riskier band. So band
    ``m`` shows what declining only the riskiest band would catch, band 1 shows 1.0, and
    the columns never increase from band 1 to band ``m``. ``cumulative_bad_capture`` is
    NaN when there are no bads at all.
    """
    import pandas as pd

    if isinstance(n_bands, bool) or not isinstance(n_bands, numbers.Integral) or n_bands < 1:
        raise ValueError(f"n_bands must be a positive int, got {n_bands!r}")
    y, p = check_scores(y_true, y_prob, need_both_classes=False)
    n = p.shape[0]
    order = np.argsort(p, kind="stable")
    p_sorted = p[order]
    y_sorted = y[order]
    slot = (np.arange(n, dtype=np.int64) * int(n_bands)) // n  # equal-count slice per position
    first_of_value = np.searchsorted(p_sorted, p_sorted, side="left")
    raw_band = slot[first_of_value]
    _, band = np.unique(raw_band, return_inverse=True)  # renumber non-empty bands 0..m-1

    m = int(band.max()) + 1
    count = np.bincount(band, minlength=m)
    bads = np.bincount(band, weights=y_sorted, minlength=m).astype(np.int64)
    sum_pd = np.bincount(band, weights=p_sorted, minlength=m)
    starts = np.searchsorted(band, np.arange(m), side="left")
    ends = np.searchsorted(band, np.arange(m), side="right") - 1
    total_bads = int(bads.sum())
    bads_from_top = np.cumsum(bads[::-1])[::-1]
    rows_from_top = np.cumsum(count[::-1])[::-1]
    return pd.DataFrame(
        {
            "band": np.arange(1, m + 1, dtype=np.int64),
            "count": count.astype(np.int64),
            "min_pd": p_sorted[starts],
            "max_pd": p_sorted[ends],
            "predicted_pd": sum_pd / count,
            "observed_bad_rate": bads / count,
            "bads": bads,
            "cumulative_bad_capture": (
                bads_from_top / total_bads if total_bads else np.full(m, np.nan)
            ),
            "cumulative_population": rows_from_top / n,
        }
    )
