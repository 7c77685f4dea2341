from __future__ import annotations

import math

import pytest

from creditgov.config import GateConfig
from evaluation.gates import check_gates

VALUES = {"test": {"auc": 0.74, "psi_max": 0.31, "ks": 0.25, "selection_rate_ratio": math.nan}}


def test_each_gate_reports_value_op_threshold_and_verdict() -> None:
    result = check_gates(
        [
            GateConfig(metric="auc", split="test", min=0.70),
            GateConfig(metric="psi_max", split="test", max=0.25),
        ],
        VALUES,
    )
    assert [o.to_json() for o in result.outcomes] == [
        {
            "metric": "auc",
            "split": "test",
            "value": 0.74,
            "op": ">=",
            "threshold": 0.70,
            "passed": True,
        },
        {
            "metric": "psi_max",
            "split": "test",
            "value": 0.31,
            "op": "<=",
            "threshold": 0.25,
            "passed": False,
        },
    ]
    assert result.status == "failed"
    assert [o.metric for o in result.failures] == ["psi_max"]


def test_bounds_are_inclusive_and_all_passing_gates_pass() -> None:
    result = check_gates([GateConfig(metric="ks", split="test", min=0.25)], VALUES)
    assert result.passed and result.status == "passed"


@pytest.mark.parametrize(
    "metric,split", [("selection_rate_ratio", "test"), ("auc", "valid"), ("gini", "test")]
)
def test_missing_or_nan_evidence_never_passes(metric: str, split: str) -> None:
    result = check_gates([GateConfig(metric=metric, split=split, min=0.0)], VALUES)  # type: ignore[arg-type]
    assert not result.passed
    assert result.outcomes[0].value is None
    assert "missing" in result.outcomes[0].describe()


def test_no_gates_pass_vacuously() -> None:
    assert check_gates([], VALUES).status == "passed"


def test_a_max_bound_is_inclusive_too() -> None:
    """A value exactly at a `max` passes, as one exactly at a `min` does (CONFIG.md)."""
    at = check_gates([GateConfig(metric="psi_max", split="test", max=0.31)], VALUES)
    assert at.passed and at.outcomes[0].op == "<="
    above = check_gates([GateConfig(metric="psi_max", split="test", max=0.3099)], VALUES)
    assert not above.passed
    below = check_gates([GateConfig(metric="auc", split="test", min=0.7401)], VALUES)
    assert not below.passed
