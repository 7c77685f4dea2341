"""Probability calibration on the validation split: none, isotonic or sigmoid (Platt).

Fitted with scikit-learn and exported as plain numbers (isotonic knots, or a slope and
an intercept on the log-odds) so the served model applies it with numpy alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

__all__ = ["Calibration", "fit_calibration"]

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
    method: Literal["none", "isotonic", "sigmoid"],
    raw: NDArray[np.float64],
    y: NDArray[np.int8],
) -> Calibration:
    """Learn the map raw probability -> calibrated probability from validation rows."""
    if method == "none":
        return Calibration("none")
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
        "sigmoid", slope=float(platt.coef_[0, 0]), intercept=float(platt.intercept_[0])
    )
