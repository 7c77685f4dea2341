"""Probability calibration on the validation split: none, isotonic, sigmoid (Platt) or auto.

Fitted with scikit-learn and exported as plain numbers (isotonic knots, or a slope and
an intercept on the log-odds) so the served model applies it with numpy alone.

Isotonic regression is a step function with one step per run of the pooled adjacent
violators, and on a validation split with few bads it has only a handful of steps: a
6,000-row split calibrated to 8 distinct PDs ranks applicants in 8 buckets. So isotonic
is fitted only when the split holds at least `MIN_ISOTONIC_EVENTS` of its rarer class
(1,000, the size below which scikit-learn's user guide warns that isotonic overfits);
with fewer, `isotonic` falls back to sigmoid and says so (`Calibration.note`, shown in
the run and the report), and `auto` picks between the two by the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

__all__ = ["MIN_ISOTONIC_EVENTS", "Calibration", "fit_calibration"]

#: The fewest bads (or goods, whichever is rarer) a validation split needs for isotonic.
MIN_ISOTONIC_EVENTS = 1000

_EPS = 1e-12
#: Smallest probability isotonic calibration may return (and 1 - it the largest).
PD_FLOOR = 1e-4


def _logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
    p = np.clip(p, _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


@dataclass(frozen=True)
class Calibration:
    method: Literal["none", "isotonic", "sigmoid"]
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    slope: float = 1.0
    intercept: float = 0.0
    #: Why the fitted method differs from the one asked for ("" when it does not).
    note: str = field(default="", compare=False)

    def apply(self, raw: NDArray[np.float64]) -> NDArray[np.float64]:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(raw, np.asarray(self.x), np.asarray(self.y))
        if self.method == "sigmoid":
            return 1.0 / (1.0 + np.exp(-(self.slope * _logit(raw) + self.intercept)))
        return raw

    def to_json(self) -> dict[str, Any]:
        if self.method == "isotonic":
            return {"method": "isotonic", "x": list(self.x), "y": list(self.y)}
        if self.method == "sigmoid":
            return {"method": "sigmoid", "slope": self.slope, "intercept": self.intercept}
        return {"method": "none"}


def fit_calibration(
    method: Literal["none", "isotonic", "sigmoid", "auto"],
    raw: NDArray[np.float64],
    y: NDArray[np.int8],
) -> Calibration:
    """Learn the map raw probability -> calibrated probability from validation rows."""
    if method == "none":
        return Calibration("none")
    note = ""
    if method in ("isotonic", "auto"):
        rarer = int(min(np.sum(y), len(y) - np.sum(y)))
        if rarer < MIN_ISOTONIC_EVENTS:
            why = (
                f"the validation split holds {rarer:,} of its rarer class, fewer than the "
                f"{MIN_ISOTONIC_EVENTS:,} isotonic regression needs to give more than a few "
                "distinct PDs"
            )
            note = (
                f"calibration: auto chose sigmoid: {why}"
                if method == "auto"
                else f"calibration: isotonic asked, sigmoid fitted instead: {why}"
            )
            method = "sigmoid"
        else:
            method = "isotonic"
    if method == "isotonic":
        # A PD of exactly 0 or 1 claims certainty no credit model has; keep a floor.
        iso = IsotonicRegression(out_of_bounds="clip", y_min=PD_FLOOR, y_max=1 - PD_FLOOR).fit(
            raw, y
        )
        return Calibration(
            "isotonic",
            x=tuple(float(v) for v in iso.X_thresholds_),
            y=tuple(float(v) for v in iso.y_thresholds_),
        )
    platt = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(raw).reshape(-1, 1), y)
    return Calibration(
        "sigmoid", slope=float(platt.coef_[0, 0]), intercept=float(platt.intercept_[0]), note=note
    )
