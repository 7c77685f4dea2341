"""Read a data table and check its header, before any of it is validated.

Reading is apart from validation (`training/data.py`) because more than training reads
tables: `creditgov drift` reads a batch nobody validates, the PII scan reads only the
personal-data columns. Each must refuse the same files the same way — a link to something
that is not a table, text that is not UTF-8, a Parquet file that does not open, a header
that repeats a name or has two that differ only in case or spaces — and each must never
load the columns it skips (personal data).
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from creditgov.errors import BadInput

__all__ = ["DataError", "read_header", "read_table"]


class DataError(BadInput):
    """Data that cannot be trained on; one line naming the file and column, and the fix."""


def read_table(
    path: Path, *, skip: Sequence[str] = (), columns: Sequence[str] | None = None
) -> pd.DataFrame:
    """Read CSV or Parquet, never loading the columns in `skip` (personal data).

    Links are resolved before the file type is checked: `apps.csv` linking to a system
    file is refused for what it points at, not accepted for its name.
    """
    if not path.is_file():
        raise DataError(
            f"{path}: no such data file; check data.source (relative paths resolve against the config's folder)"
        )
    target = path.resolve()
    linked = target != Path(os.path.abspath(path))
    if linked and target.suffix.lower() not in {".csv", ".parquet"}:
        raise DataError(
            f"{path}: a link to a file that is not a .csv or .parquet table; point data.source "
            f"at the table itself"
        )
    suffix = path.suffix.lower()
    skipped = set(skip)
    try:
        if suffix == ".parquet":
            try:
                names = pq.read_schema(path).names
            except (pa.ArrowInvalid, OSError) as err:
                raise DataError(
                    f"{path}: not a readable Parquet file ({_short(err)}); write it with pandas.to_parquet or use .csv"
                ) from None
            _refuse_ambiguous_names(path, names)
            wanted = [c for c in names if c not in skipped and (columns is None or c in columns)]
            frame = pq.read_table(path, columns=wanted).to_pandas()
        elif suffix == ".csv":
            _refuse_ambiguous_names(path, _csv_header(path))
            frame = pd.read_csv(
                path,
                usecols=lambda c: c not in skipped and (columns is None or c in columns),
                encoding="utf-8",
                low_memory=False,
            )
        else:
            raise DataError(
                f"{path}: unsupported file type {suffix or '(none)'!r}; use .csv or .parquet"
            )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty; it needs a header row and data rows") from None
    except UnicodeDecodeError as err:
        raise DataError(
            f"{path}: not UTF-8 text (found byte 0x{err.object[err.start]:02x}, e.g. a Latin-1 or "
            f"Windows-1252 export); re-save the file as UTF-8"
        ) from None
    except (pd.errors.ParserError, csv.Error) as err:
        raise DataError(
            f"{path}: malformed CSV ({_short(err)}); check quoting and column counts"
        ) from None
    return frame


def read_header(path: Path) -> list[str]:
    """Every column name in the file, personal-data ones included, without reading rows."""
    if path.suffix.lower() == ".parquet":
        return list(pq.read_schema(path).names)
    return _csv_header(path)


def _csv_header(path: Path) -> list[str]:
    """A CSV file's column names as written; [] for a file without any.

    Read with the csv module because pandas renames a repeated name (`x`, `x.1`), which
    would hide it. The first non-blank line is the header, as for pandas, and a UTF-8
    byte-order mark is not part of the first name.
    """
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for row in csv.reader(handle):
            if row:
                return row
    return []


def _refuse_ambiguous_names(path: Path, names: Sequence[str]) -> None:
    """Refuse a header in which a name is repeated, or two differ only in case or in
    spaces around them (`Income`, `income `).

    pandas would keep the second copy of a repeated name as `x.1`, a feature nobody
    named; and names that differ only that way are one column to the person reading
    them, so config keys, reasons and the report could point at the wrong one.
    """
    counts = Counter(names)
    for name, count in counts.items():
        if count > 1:
            raise DataError(
                f"{path}: column {name!r} appears {count} times in the header; each column "
                f"needs its own name: rename or drop the extra copies"
            )
    seen: dict[str, str] = {}
    for name in names:
        first = seen.setdefault(name.strip().casefold(), name)
        if first != name:
            raise DataError(
                f"{path}: columns {first!r} and {name!r} differ only in case or surrounding "
                f"spaces; rename one of them so the names tell the columns apart"
            )


def _short(err: BaseException) -> str:
    return str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
