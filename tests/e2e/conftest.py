"""Whole jobs on small synthetic data against a temporary SQLite MLflow store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from creditgov.config import JobConfig, load_config
from datasets import make_credit, make_fraud, write_table, write_truth

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("data")
    credit = make_credit(6000, seed=21)
    write_table(credit.frame, folder / "credit.parquet")
    write_truth(credit, folder / "credit_truth.parquet")
    fraud = make_fraud(50_000, seed=21)
    write_table(fraud.frame, folder / "transactions.parquet")
    return folder


@pytest.fixture
def shipped_config(data_dir: Path, tmp_path: Path) -> Callable[..., JobConfig]:
    """A shipped config pointed at the test data and a fresh SQLite store in tmp_path."""

    def make(name: str, *overrides: str) -> JobConfig:
        source = "credit.parquet" if "credit" in name else "transactions.parquet"
        return load_config(
            REPO / "configs" / name,
            [
                f"data.source={data_dir / source}",
                f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}",
                *overrides,
            ],
        )

    return make
