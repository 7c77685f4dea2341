"""The bad-data catalogue: one case per way a training table can be wrong, through `creditgov train`.

Each case writes the `credit_job` fixture's 4,000 synthetic applications with one defect
(or replaces the file), runs the CLI and checks the whole bad-input contract with
`assert_bad_input`: exit 2, one stderr line that starts with the data file's path, names
the column or config key and says what to do, and no run or model in the tracking
store (every data check happens before the MLflow run starts). Cases marked
`subprocess` run `python -m creditgov`; the rest call `creditgov.cli.main` in-process.

All-missing and constant features are the one soft case: dropped with a warning line
each, not an error (`test_uninformative_features_are_dropped_with_one_warning_each`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import CreditJob
from tests.support import (
    assert_bad_input,
    creditgov,
    creditgov_in_process,
    error_lines,
    tracked,
)
from training.data import MAX_LEVELS
from training.split import MIN_CLASS_ROWS

TARGET = "default_12m"
ID = "application_id"
TIME = "application_date"

Edit = Callable[[pd.DataFrame], pd.DataFrame | None]


@dataclass(frozen=True)
class Case:
    """A defect in the data and the pieces its one error line must hold."""

    pieces: tuple[str, ...]
    edit: Edit | None = None
    updates: Mapping[str, Any] = field(default_factory=dict)
    suffix: str = ".parquet"
    raw: bytes | None = None  # replaces the data file's bytes
    subprocess: bool = False


def assign(**columns: Callable[[pd.DataFrame], Any]) -> Edit:
    return lambda frame: frame.assign(**{name: make(frame) for name, make in columns.items()})


def at_rows(column: str, rows: list[int], value: Any) -> Edit:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        values = frame[column].astype(object) if isinstance(value, str) else frame[column]
        frame[column] = values
        frame.loc[rows, column] = value
        return frame

    return edit


def few_of_class(keep_every: int, label: int) -> Edit:
    """Keep every `keep_every`-th row of class `label`; the rest get the other class."""

    def edit(frame: pd.DataFrame) -> None:
        rows = np.flatnonzero(frame[TARGET].to_numpy() == label)
        frame.loc[np.setdiff1d(rows, rows[::keep_every]), TARGET] = 1 - label

    return edit


def five_rows(frame: pd.DataFrame) -> pd.DataFrame:
    bads, goods = frame[frame[TARGET] == 1].head(2), frame[frame[TARGET] == 0].head(3)
    return pd.concat([bads, goods], ignore_index=True)


def many_levels(frame: pd.DataFrame) -> pd.DataFrame:
    """100,000 rows with a 100,000-level text column: an identifier passed as a feature."""
    big = pd.concat([frame] * 25, ignore_index=True)
    big[ID] = [f"A{i:06d}" for i in range(len(big))]
    big["customer_ref"] = [f"C{i:06d}" for i in range(len(big))]
    return big


def mixed_dates(frame: pd.DataFrame) -> pd.DataFrame:
    text = frame[TIME].dt.strftime("%Y-%m-%d").astype(object)
    text[1::2] = frame[TIME][1::2].dt.strftime("%d/%m/%Y")  # every other row day-first
    return frame.assign(**{TIME: text})


def latin1_csv(frame: pd.DataFrame) -> bytes:
    text = frame.head(200).assign(region="Réunion").to_csv(index=False)
    return text.encode("latin-1")


def repeated_column(name: str) -> Edit:
    """The table with a second copy of `name`, under the same name."""

    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([frame, frame[[name]] * 2.0], axis=1)

    return edit


def parquet_with_repeated_column(frame: pd.DataFrame) -> bytes:
    """Parquet bytes with `annual_income` twice, written through Arrow (pandas refuses)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.append_column("annual_income", table.column("annual_income"))
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def csv_text(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


CASES: dict[str, Case] = {
    "empty-csv": Case(
        suffix=".csv", raw=b"", pieces=("the file is empty; it needs a header row and data rows",)
    ),
    "empty-parquet": Case(
        raw=b"", pieces=("not a readable Parquet file", "write it with pandas.to_parquet")
    ),
    "header-only-csv": Case(
        suffix=".csv",
        edit=lambda f: f.iloc[:0],
        pieces=("header only, no data rows", "point data.source at a file with data rows"),
    ),
    "header-only-parquet": Case(
        edit=lambda f: f.iloc[:0],
        pieces=("header only, no data rows", "point data.source at a file with data rows"),
    ),
    "wrong-file-type": Case(  # CSV text under a .parquet name
        raw=b"application_id,default_12m\nA1,0\n",
        pieces=("not a readable Parquet file", "or use .csv"),
    ),
    "missing-target": Case(
        edit=lambda f: f.drop(columns=[TARGET]),
        pieces=(
            f"column '{TARGET}' named by data.target is not in the file",
            "fix data.target or the file's header",
        ),
    ),
    "misspelt-target": Case(
        updates={"data": {"target": "default12m"}},
        pieces=("column 'default12m' named by data.target", f"(did you mean '{TARGET}'?)"),
    ),
    "target-not-binary": Case(
        edit=at_rows(TARGET, [5, 6], 2),
        pieces=(f"target '{TARGET}' is not binary (3 distinct values", "map it to two classes"),
    ),
    "target-one-class": Case(
        edit=assign(**{TARGET: lambda f: 0}),
        pieces=(f"target '{TARGET}' has one class only (0)", "check data.target"),
    ),
    "target-missing-values": Case(
        edit=lambda f: f.assign(**{TARGET: f[TARGET].astype("float64").where(f.index != 7)}),
        pieces=(f"target '{TARGET}' has 1 missing values", "drop or label those rows"),
    ),
    "positive-label-absent": Case(
        updates={"data": {"positive_label": 2}},
        pieces=("data.positive_label 2 does not occur in target", "set data.positive_label"),
    ),
    "duplicate-ids": Case(
        edit=assign(**{ID: lambda f: f[ID].where(f.index != 10, f[ID][3])}),
        pieces=(f"id column '{ID}' has 1 duplicate values", "deduplicate the file"),
    ),
    "missing-ids": Case(
        edit=assign(**{ID: lambda f: f[ID].where(f.index != 10)}),
        pieces=(f"id column '{ID}' has missing values", "every row needs an id"),
    ),
    "time-unparsable": Case(
        edit=assign(
            **{TIME: lambda f: f[TIME].dt.strftime("%Y-%m-%d").where(f.index != 4, "soon")}
        ),
        pieces=(f"time column '{TIME}' has 1 values that are not ISO dates", "YYYY-MM-DD"),
    ),
    "dates-in-mixed-formats": Case(
        edit=mixed_dates,
        pieces=(f"time column '{TIME}' has 2000 values that are not ISO dates", "YYYY-MM-DD"),
    ),
    "undated-rows": Case(
        edit=assign(**{TIME: lambda f: f[TIME].where(f.index != 9)}),
        pieces=(f"time column '{TIME}' has 1 missing dates", "drop the undated ones"),
    ),
    "leak-feature": Case(
        edit=assign(outcome_code=lambda f: f[TARGET] * 3 + 1),
        pieces=(f"feature 'outcome_code' separates '{TARGET}' perfectly", "data.exclude"),
    ),
    "positive-infinity": Case(
        edit=at_rows("annual_income", [1, 2000], np.inf),
        pieces=("feature 'annual_income' has 2 infinite values", "replace ±inf with a number"),
    ),
    "negative-infinity": Case(
        suffix=".csv",
        edit=at_rows("debt_to_income", [3], -np.inf),
        pieces=("feature 'debt_to_income' has 1 infinite values", "leave the cell empty"),
    ),
    "too-few-bads-in-train": Case(
        edit=few_of_class(6, label=1),
        pieces=("the train split has", f"at least {MIN_CLASS_ROWS} of each class"),
    ),
    "too-few-goods-in-train": Case(
        edit=lambda f: f.assign(**{TARGET: np.where(f.index % 60 == 0, 0, 1)}),
        pieces=("the train split has", "negative (good) rows", f"at least {MIN_CLASS_ROWS}"),
    ),
    "oot-cut-after-the-data": Case(
        updates={"split": {"oot_start": "2030-01-01"}},
        pieces=("split.oot_start 2030-01-01 leaves the test (on/after it) split empty",),
    ),
    "oot-cut-before-the-data": Case(
        updates={"split": {"oot_start": "2020-01-01"}},
        pieces=("split.oot_start 2020-01-01 leaves the train/valid (before it) split empty",),
    ),
    "share-too-small-to-cut": Case(
        updates={"split": {"valid_fraction": 0.0003}},
        pieces=("split.valid_fraction 0.0003 cannot cut", "choose a larger share"),
    ),
    "mixed-types-in-a-numeric-column": Case(
        suffix=".csv",
        edit=at_rows("annual_income", [12, 40], "unknown"),
        pieces=(
            "numeric column 'annual_income' has 2 non-numeric values (first at data row 13",
            "clean them or list the column in data.categorical",
        ),
        subprocess=True,
    ),
    "text-not-declared-categorical": Case(
        updates={"data": {"categorical": ["home_ownership"]}},
        pieces=("column 'purpose' holds text but is not in data.categorical", "add it there"),
    ),
    "date-as-a-feature": Case(
        edit=assign(opened=lambda f: f[TIME]),
        pieces=("feature 'opened' is a date", "add it to data.exclude"),
    ),
    "monotone-on-a-categorical": Case(
        updates={"model": {"monotone": {"region": 1}}},
        pieces=(
            "model.monotone names categorical column 'region'",
            "remove it from model.monotone",
        ),
    ),
    "non-utf8-text": Case(
        suffix=".csv",
        pieces=("not UTF-8 text (found byte 0xe9", "re-save the file as UTF-8"),
        subprocess=True,
    ),
    "categorical-with-100k-levels": Case(
        edit=many_levels,
        pieces=(
            f"categorical column 'customer_ref' has 100000 levels (limit {MAX_LEVELS})",
            "add it to data.exclude or group its levels",
        ),
    ),
    "file-of-5-rows": Case(
        edit=five_rows,
        pieces=("the file has 2 positive (bad) rows in 5", f"at least {MIN_CLASS_ROWS} of each"),
        subprocess=True,
    ),
    "misspelt-pii-name": Case(
        updates={"data": {"pii": ["full_name", "phone_no", "national_id"]}},
        pieces=(
            "column 'phone_no' named by data.pii is not in the file",
            "(did you mean 'phone'?)",
        ),
    ),
    "misspelt-exclude-name": Case(
        updates={"data": {"exclude": ["chanel"]}},
        pieces=("column 'chanel' named by data.exclude", "fix data.exclude"),
    ),
    "missing-data-file": Case(
        pieces=("no such data file; check data.source",),
    ),
    "link-to-a-system-file": Case(
        pieces=("a link to a file that is not a .csv or .parquet table", "point data.source"),
    ),
    "duplicate-header-csv": Case(  # pandas alone would keep the copy as 'annual_income.1'
        suffix=".csv",
        edit=repeated_column("annual_income"),
        pieces=(
            "column 'annual_income' appears 2 times in the header",
            "rename or drop the extra copies",
        ),
    ),
    "duplicate-header-parquet": Case(  # written through Arrow: see RAW
        pieces=("column 'annual_income' appears 2 times in the header", "rename or drop"),
    ),
    "names-differ-only-in-case": Case(
        edit=assign(Annual_Income=lambda f: f["annual_income"] * 1.5),
        pieces=(
            "columns 'annual_income' and 'Annual_Income' differ only in case or surrounding spaces",
            "rename one of them",
        ),
    ),
    "names-differ-only-in-surrounding-spaces-csv": Case(
        suffix=".csv",
        edit=assign(**{"debt_to_income ": lambda f: f["debt_to_income"] * 0.5}),
        pieces=(
            "columns 'debt_to_income' and 'debt_to_income ' differ only in case",
            "rename one of them",
        ),
    ),
}
#: Bytes that replace the data file after the fixture wrote it.
RAW: dict[str, Callable[[pd.DataFrame], bytes]] = {
    "non-utf8-text": latin1_csv,
    "duplicate-header-parquet": parquet_with_repeated_column,
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_data(
    name: str, credit_job: CreditJob, credit_frame: pd.DataFrame, tmp_path: Path
) -> None:
    case = CASES[name]
    config = credit_job(case.edit, case.updates, suffix=case.suffix)
    data = tmp_path / "data" / f"credit{case.suffix}"
    if name in RAW:
        data.write_bytes(RAW[name](credit_frame))
    elif case.raw is not None:
        data.write_bytes(case.raw)
    elif name == "missing-data-file":
        data.unlink()
    elif name == "link-to-a-system-file":  # named like a table, pointing at /etc/passwd
        data.unlink()
        data.symlink_to("/etc/passwd")
    run = creditgov if case.subprocess else creditgov_in_process

    result = run("train", config.name, cwd=tmp_path)

    assert_bad_input(result, names=data, pieces=case.pieces, db=tmp_path / "mlflow.db")


def test_the_catalogue_covers_the_issue() -> None:
    assert len(CASES) >= 30


def test_uninformative_features_are_dropped_with_one_warning_each(
    credit_job: CreditJob, tmp_path: Path
) -> None:
    config = credit_job(assign(constant_flag=lambda f: 1.0, blank=lambda f: np.nan))

    result = creditgov_in_process("validate", config.name, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert error_lines(result.stderr) == [
        "warning: dropped feature 'constant_flag': constant",
        "warning: dropped feature 'blank': all values missing",
    ]
    assert "config and data are valid" in result.stdout
    assert tracked(tmp_path / "mlflow.db").runs == ()  # validate never tracks
