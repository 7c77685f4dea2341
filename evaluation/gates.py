"""Gates: the config's pass/fail criteria applied to the evidence.

A gate names a metric from the registry, a split and a bound. All gates pass ->
`validation_status=passed`; otherwise `failed`. A value that is missing or NaN never
passes: evidence that could not be computed is not evidence of safety.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = ["GateOutcome", "GateResult", "GateSpec", "check_gates"]


class GateSpec(Protocol):
    """What a gate in the config says (creditgov.config.GateConfig has this shape)."""

    @property
    def metric(self) -> str: ...
    @property
    def split(self) -> str: ...
    @property
    def min(self) -> float | None: ...
    @property
    def max(self) -> float | None: ...


@dataclass(frozen=True)
class GateOutcome:
    metric: str
    split: str
    value: float | None
    op: Literal[">=", "<="]
    threshold: float
    passed: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "split": self.split,
            "value": self.value,
            "op": self.op,
            "threshold": self.threshold,
            "passed": self.passed,
        }

    def describe(self) -> str:
        shown = "missing" if self.value is None else f"{self.value:.4g}"
        verdict = "pass" if self.passed else "FAIL"
        return f"{self.metric} on {self.split}: {shown} {self.op} {self.threshold:g} -> {verdict}"


@dataclass(frozen=True)
class GateResult:
    outcomes: tuple[GateOutcome, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outcomes)

    @property
    def status(self) -> Literal["passed", "failed"]:
        return "passed" if self.passed else "failed"

    @property
    def failures(self) -> tuple[GateOutcome, ...]:
        return tuple(o for o in self.outcomes if not o.passed)

    def to_json(self) -> list[dict[str, Any]]:
        return [o.to_json() for o in self.outcomes]


def check_gates(
    gates: Sequence[GateSpec], values: Mapping[str, Mapping[str, float | None]]
) -> GateResult:
    """Apply each gate to `values[split][metric]`; bounds are inclusive."""
    outcomes = []
    for gate in gates:
        raw = values.get(gate.split, {}).get(gate.metric)
        value = None if raw is None or not math.isfinite(float(raw)) else float(raw)
        if gate.min is not None:
            op: Literal[">=", "<="] = ">="
            threshold = float(gate.min)
            passed = value is not None and value >= threshold
        else:
            assert gate.max is not None
            op, threshold = "<=", float(gate.max)
            passed = value is not None and value <= threshold
        outcomes.append(GateOutcome(gate.metric, gate.split, value, op, threshold, passed))
    return GateResult(tuple(outcomes))
