"""Small real datasets for the training tests: synthetic credit rows through load_dataset."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from datasets import make_credit, write_table
from training.data import Dataset, load_dataset
from training.split import Splits, split_dataset

CREDIT_ROLES = {
    "target": "default_12m",
    "id_column": "application_id",
    "time_column": "application_date",
    "protected": ["sex", "age"],
    "pii": ["full_name", "phone", "national_id"],
}


@cache
def credit_dataset(rows: int = 4000, seed: int = 5) -> tuple[Dataset, Path]:
    folder = Path(__import__("tempfile").mkdtemp(prefix="creditgov-test-"))
    path = folder / "credit.parquet"
    write_table(make_credit(rows, seed=seed).frame, path)
    return load_dataset(path, **CREDIT_ROLES), path  # type: ignore[arg-type]


def credit_splits(rows: int = 4000, seed: int = 5, method: str = "random") -> Splits:
    dataset, _ = credit_dataset(rows, seed)
    return split_dataset(
        dataset,
        method=method,  # type: ignore[arg-type]
        test_fraction=0.3,
        valid_fraction=0.25,
        oot_start=__import__("datetime").date(2024, 7, 1),
        seed=seed,
    )
