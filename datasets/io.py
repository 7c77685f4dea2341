"""Writing a synthetic table, or its truth, to CSV or Parquet.

Kept apart from the generators because it is the only part that touches the disk: the
extension of the path chooses the format and is checked before anything is written, and
the truth is written as its own table (id column + `true_probability`), never as a column
of the data a model is trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import pandas as pd

from datasets.base import TRUTH_COLUMN, SyntheticData

__all__ = ["TABLE_EXTENSIONS", "write_table", "write_truth"]

TABLE_EXTENSIONS: Final = (".csv", ".parquet")


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write `frame` as CSV or Parquet, chosen by the extension of `path`.

    The extension is checked before anything touches the disk, so a typo in `--out` fails
    with a message instead of leaving a file in a format nothing here can read back.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_EXTENSIONS:
        allowed = " or ".join(TABLE_EXTENSIONS)
        raise ValueError(
            f"{path}: cannot write a table with extension {path.suffix or '(none)'!r}; "
            f"use {allowed}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, engine="pyarrow", index=False)


def write_truth(data: SyntheticData, path: Path) -> None:
    """Write the id column and `true_probability`, so a model's scores can be joined to it."""
    table = pd.DataFrame(
        {data.id_column: data.frame[data.id_column], TRUTH_COLUMN: data.truth},
        index=data.frame.index,
    )
    write_table(table, path)
