"""Shared fixtures: a small synthetic credit table and a factory for a job on disk.

`credit_job` writes a data file and a config next to it in `tmp_path`, the way a user
lays out a job, so tests go through the same path resolution and file reading as the
CLI. The config is `configs/credit_scoring.yaml` with tuning off and tracking pointed at
a throw-away SQLite file, so nothing a test does reaches a shared MLflow store.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
import pytest
import yaml

from datasets import make_credit

REPO = Path(__file__).resolve().parents[1]
CREDIT_CONFIG = REPO / "configs" / "credit_scoring.yaml"

#: Put this as a value in `config_updates` to delete that key from the config.
DELETE: Any = object()

FrameEdit = Callable[[pd.DataFrame], pd.DataFrame | None]


class CreditJob(Protocol):
    def __call__(
        self,
        frame_edit: FrameEdit | None = None,
        config_updates: Mapping[str, Any] | None = None,
        suffix: str = ".parquet",
    ) -> Path: ...


def merge(base: dict[str, Any], updates: Mapping[str, Any]) -> dict[str, Any]:
    """Nested update of `base` in place: mappings merge, other values replace, DELETE removes."""
    for key, value in updates.items():
        if value is DELETE:
            base.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    """Parquet for .parquet, CSV text for anything else (so a .txt holds CSV, as users do)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)


@pytest.fixture(scope="session")
def credit_frame() -> pd.DataFrame:
    """4,000 applications over 2023-2024; about 230 bads in train after a 2024-07-01 OOT cut.

    Session-scoped and shared: never modify it in place, copy it first.
    """
    return make_credit(4000, seed=3).frame


@pytest.fixture
def tracking_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite tracking store in `tmp_path`, also set as $MLFLOW_TRACKING_URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def credit_job(tmp_path: Path, credit_frame: pd.DataFrame) -> CreditJob:
    """Factory: write data and config into `tmp_path`; returns the config's path.

    `frame_edit` gets a copy of `credit_frame` and returns the table to write (or edits it
    in place and returns None). `config_updates` is merged into the config (see `merge`).
    The data goes to `tmp_path/data/credit<suffix>` and `data.source` names it relative
    to the config, `tmp_path/job.yaml`.
    """

    def make(
        frame_edit: FrameEdit | None = None,
        config_updates: Mapping[str, Any] | None = None,
        suffix: str = ".parquet",
    ) -> Path:
        frame = credit_frame.copy()
        if frame_edit is not None:
            edited = frame_edit(frame)
            frame = frame if edited is None else edited
        source = Path("data") / f"credit{suffix}"
        write_frame(frame, tmp_path / source)
        config = yaml.safe_load(CREDIT_CONFIG.read_text(encoding="utf-8"))
        merge(
            config,
            {
                "data": {"source": source.as_posix()},
                "tuning": {"n_trials": 0},
                "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
            },
        )
        merge(config, config_updates or {})
        path = tmp_path / "job.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    return make


@pytest.fixture(scope="session", autouse=True)
def _work_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run every test from a scratch folder: a SQLite MLflow store puts its artifacts in
    `./mlruns` of the working directory, and tests must not write into the checkout."""
    before = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(before)
