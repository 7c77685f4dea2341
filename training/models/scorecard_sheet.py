"""The scorecard as a credit officer reads and signs it: the points table and its facts.

Per characteristic and bin: the bin, its training count, share, bads, bad rate, WOE, IV,
the characteristic's total IV and the bin's integer points; then the base points, the
score range, PDO and the cut-off in points beside the probability cut-off, and every
characteristic left out with the reason. The same sheet is shown in report.html, stored
in evidence.json and the model card, and written as `points_table.csv` beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from training.models.base import ModelSheet

if TYPE_CHECKING:
    from training.models.kinds.scorecard import Characteristic
    from training.models.policy import ScoreScale
    from training.models.scorecard_bins import Dropped

__all__ = ["ROUNDING", "cutoff_points", "points_table", "scorecard_sheet"]

ROUNDING = (
    "Each bin's points are round(-factor x coefficient x WOE) and the base points "
    "round(offset - factor x intercept), each to the nearest whole number (halves to even) "
    "before anything is added: an applicant's score is the base points plus the points of "
    "their bins, exactly."
)


def points_table(characteristics: Sequence[Characteristic]) -> pd.DataFrame:
    """One row per characteristic and bin (regular bins, then Missing)."""
    rows = []
    for c in characteristics:
        stats = c.binned.stats
        total = sum(s.count for s in stats) or 1
        labels = [*c.binned.labels(), "Missing"]
        woes = [*c.binned.woe, c.binned.missing_woe]
        for i, (label, woe, points) in enumerate(zip(labels, woes, c.all_points, strict=True)):
            s = stats[i] if stats else None
            rows.append(
                {
                    "characteristic": c.name,
                    "bin": label,
                    "count": s.count if s else np.nan,
                    "share": s.count / total if s else np.nan,
                    "bads": s.bads if s else np.nan,
                    "bad_rate": (s.bads / s.count if s.count else np.nan) if s else np.nan,
                    "woe": round(woe, 4),
                    "iv": round(s.iv, 4) if s else np.nan,
                    "characteristic_iv": round(c.binned.iv, 4),
                    "points": int(points),
                }
            )
    return pd.DataFrame(rows)


def cutoff_points(grid: NDArray[np.float64], approved: NDArray[np.bool_]) -> int | None:
    """The lowest score approved when every higher score is approved too; None otherwise."""
    if not approved.any():
        return None
    first = int(np.argmax(approved))
    return int(grid[first]) if approved[first:].all() else None


def scorecard_sheet(
    characteristics: Sequence[Characteristic],
    *,
    dropped: Sequence[Dropped],
    base_points: int,
    scale: ScoreScale,
    grid: NDArray[np.float64],
    approved: NDArray[np.bool_],
) -> ModelSheet:
    cut = cutoff_points(grid, approved)
    if cut is None:
        cut_text = "none: no score in the range is approved on every score above it"
    else:
        cut_text = f"{cut} points: approve at or above, decline below"
    facts = (
        ("characteristics", str(len(characteristics))),
        ("base points", str(base_points)),
        ("score range", f"{int(grid[0])} to {int(grid[-1])}"),
        ("scaling", f"{scale.base_score:g} points at odds {scale.base_odds:g}:1 (good:bad)"),
        ("PDO", f"{scale.pdo:g} points double the odds of good"),
        ("cut-off", cut_text),
        ("sign violations", str(sum(c.coefficient > 0 for c in characteristics))),
    )
    tables = {"points_table": points_table(characteristics)}
    if dropped:
        tables["dropped_characteristics"] = pd.DataFrame(
            [{"characteristic": d.name, "reason": d.reason} for d in dropped]
        )
    return ModelSheet("Scorecard", facts, tables, (ROUNDING,))
