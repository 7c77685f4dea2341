"""Bad input through the real console script: exit 2, one error line, nothing in MLflow.

These run `python -m creditgov` in a subprocess, as a scheduler or CI job would, so they
pin the whole contract of CLI.md for bad input: the exit code, a stderr of exactly one
line that names the file and the key or column, and a tracking store left without runs
or registered models (every check happens before the MLflow run starts).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import CreditJob
from tests.support import assert_nothing_tracked, creditgov, error_lines

TARGET = "default_12m"


# ----------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    """One bad job: how to make it, and the pieces its error line must contain."""

    frame_edit: Callable[[pd.DataFrame], Any] | None = None
    config_updates: dict[str, Any] = field(default_factory=dict)
    config_text: str | None = None  # replaces the config file entirely
    expected: Sequence[str] = ()
    names: str = "data"  # which file the message must name: "config" or "data"


def _duplicate_an_id(frame: pd.DataFrame) -> None:
    frame.loc[[10], "application_id"] = frame.loc[[3], "application_id"].to_numpy()


def _infinite_income(frame: pd.DataFrame) -> None:
    frame.loc[[1, 2000], "annual_income"] = np.inf


def _few_bads(frame: pd.DataFrame) -> None:
    bads = np.flatnonzero(frame[TARGET].to_numpy() == 1)
    frame.loc[np.setdiff1d(bads, bads[::6]), TARGET] = 0


CASES = {
    "bad-yaml": Case(
        config_text="name: job\ndata:\n  source: [data/credit.parquet\n  target: y\n",
        expected=["job.yaml:4:9: malformed YAML"],
        names="config",
    ),
    "unknown-key": Case(
        config_updates={"split": {"test_fracton": 0.2}},
        expected=["unknown key split.test_fracton (did you mean 'test_fraction'?)"],
        names="config",
    ),
    "missing-target": Case(
        frame_edit=lambda f: f.drop(columns=[TARGET]),
        expected=[f"column '{TARGET}' named by data.target is not in the file"],
    ),
    "duplicate-ids": Case(
        frame_edit=_duplicate_an_id,
        expected=["id column 'application_id' has 1 duplicate values"],
    ),
    "leak-feature": Case(
        frame_edit=lambda f: f.assign(outcome_code=f[TARGET] * 3 + 1),
        expected=[f"feature 'outcome_code' separates '{TARGET}' perfectly", "data.exclude"],
    ),
    "inf-values": Case(
        frame_edit=_infinite_income,
        expected=["feature 'annual_income' has 2 infinite values"],
    ),
    "empty-oot-split": Case(
        config_updates={"split": {"oot_start": "2030-01-01"}},
        expected=["split.oot_start 2030-01-01 leaves the test (on/after it) split empty"],
    ),
    "too-few-bads": Case(
        frame_edit=_few_bads,
        expected=["the train split has", "positive (bad) rows; at least 50 of each class"],
    ),
    "dropped-then-failed": Case(
        # A dropped constant feature must not add a warning line before the error.
        frame_edit=lambda f: f.assign(constant_flag=1.0),
        config_updates={"split": {"oot_start": "2020-01-01"}},
        expected=["split.oot_start 2020-01-01 leaves the train/valid (before it) split empty"],
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_train_on_bad_input_exits_2_with_one_line_and_tracks_nothing(
    name: str, credit_job: CreditJob, tmp_path: Path
) -> None:
    case = CASES[name]
    config = credit_job(case.frame_edit, case.config_updates)
    if case.config_text is not None:
        config.write_text(case.config_text, encoding="utf-8")
    db = tmp_path / "mlflow.db"

    result = creditgov("train", config.name, cwd=tmp_path, tracking_uri=f"sqlite:///{db}")

    assert result.returncode == 2, result.stderr
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    line = lines[0]
    # The config was given as a relative path; data paths are resolved, so absolute.
    named = config.name if case.names == "config" else (tmp_path / "data" / "credit.parquet")
    assert line.startswith(f"error: {named}:"), line
    for piece in case.expected:
        assert piece in line
    assert_nothing_tracked(db)


# ----------------------------------------------------------------------------- good input


def test_validate_on_a_good_config_prints_ok(credit_job: CreditJob, tmp_path: Path) -> None:
    config = credit_job()
    result = creditgov(
        "validate", config.name, "--set", "data.protected=[sex]", cwd=tmp_path, tracking_uri=None
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "config and data are valid" in result.stdout
    assert "- sex\n" in result.stdout and "- age\n" not in result.stdout  # --set applied
    assert error_lines(result.stderr) == []
    assert not (tmp_path / "mlflow.db").exists()


def test_help_lists_the_commands(tmp_path: Path) -> None:
    result = creditgov("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    listed = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("│ ")}
    assert {"synth", "validate", "train", "evaluate", "drift", "report"} <= listed


def test_error_messages_keep_square_brackets(credit_job: CreditJob, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from creditgov.cli import app

    config = credit_job(config_updates={"data": {"target": "default[gbp]"}})
    result = CliRunner().invoke(app, ["validate", str(config)])
    assert result.exit_code == 2
    assert "column 'default[gbp]' named by data.target" in result.stderr


def test_the_tracking_check_sees_a_run(tmp_path: Path) -> None:
    """The helper above must be able to fail: one run in the store, and it does."""
    from mlflow import MlflowClient

    db = tmp_path / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    client.create_run(client.create_experiment("bad-input-control"))
    with pytest.raises(AssertionError):
        assert_nothing_tracked(db)
