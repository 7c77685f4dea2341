"""The adverse-action contract checked row by row on served output, in one place.

`assert_only_adverse_reasons` takes what a served model answered and the per-row,
per-feature contributions computed *independently* (bare LightGBM ``pred_contrib`` or
the training-side implementation, never the served file's own) and checks CLI.md's
promise on every row: approvals carry no reason; a decline's ``reason_1`` is never
blank; every non-blank reason names, through its code, a feature whose contribution is
> 0 for that row, in descending order of contribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

__all__ = ["assert_only_adverse_reasons", "codes_to_features"]


def codes_to_features(state: Mapping[str, object]) -> dict[str, str]:
    """reason code -> feature, from a served model's state.json."""
    catalogue = state["reasons"]["catalogue"]  # type: ignore[index]
    return {entry["code"]: name for name, entry in catalogue.items()}


def assert_only_adverse_reasons(
    served: pd.DataFrame,
    contrib: NDArray[np.float64],
    features: Sequence[str],
    code_to_feature: Mapping[str, str],
    *,
    declined_label: str,
    k: int,
) -> int:
    """Check every row (see the module); returns how many declines were checked."""
    served = served.reset_index(drop=True)
    assert contrib.shape == (len(served), len(features))
    declined = (served["decision"] == declined_label).to_numpy()
    reasons = [f"reason_{i}" for i in range(1, k + 1)]
    codes = [f"reason_code_{i}" for i in range(1, k + 1)]
    assert (served.loc[~declined, reasons + codes] == "").all().all(), "an approval has a reason"
    assert (served.loc[declined, "reason_1"] != "").all(), "a decline without reason_1"
    column = {name: j for j, name in enumerate(features)}
    for i in np.flatnonzero(declined):
        previous = np.inf
        for slot in codes:
            code = served.at[i, slot]
            if code == "":
                continue
            value = contrib[i, column[code_to_feature[code]]]
            assert value > 0, f"row {i}: {slot} names a factor that lowered the risk"
            assert value <= previous + 1e-12, f"row {i}: reasons out of order"
            previous = value
    return int(declined.sum())
