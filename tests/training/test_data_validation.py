"""Bad data fails where it enters, with one line naming the file, the column and the fix.

Most cases run the way a job does — `prepare(load_config(job.yaml))` on a file written by
the `credit_job` fixture — so the config's keys reach `load_dataset` and `split_dataset`
exactly as in training. A few call `load_dataset` directly, for rules the config schema
already catches earlier (a PII feature) or for file types the config refuses (.txt).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from creditgov.config import load_config
from creditgov.job import prepare
from tests.conftest import CreditJob
from training.data import MAX_LEVELS, Dataset, load_dataset
from training.reading import DataError
from training.split import MIN_CLASS_ROWS, Splits

TARGET = "default_12m"
ID = "application_id"
TIME = "application_date"
PII = ["full_name", "phone", "national_id"]
#: load_dataset's arguments as configs/credit_scoring.yaml gives them.
CREDIT_ROLES: dict[str, Any] = {
    "target": TARGET,
    "id_column": ID,
    "time_column": TIME,
    "protected": ["sex", "age"],
    "pii": PII,
}


def data_file(config_path: Path, suffix: str = ".parquet") -> Path:
    """Where `credit_job` wrote the table, as the job resolves it."""
    return (config_path.parent / "data" / f"credit{suffix}").resolve()


def prepared(config_path: Path) -> Splits:
    return prepare(load_config(config_path))


def data_error(config_path: Path, suffix: str = ".parquet") -> str:
    """The one-line DataError the job raises, checked to start with the data file's path."""
    with pytest.raises(DataError) as caught:
        prepared(config_path)
    return _one_line(str(caught.value), data_file(config_path, suffix))


def load_error(path: Path, **roles: Any) -> str:
    with pytest.raises(DataError) as caught:
        load_dataset(path, **{**CREDIT_ROLES, **roles})
    return _one_line(str(caught.value), path)


def _one_line(message: str, path: Path) -> str:
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


def with_column(name: str, values: Any) -> Any:
    def edit(frame: pd.DataFrame) -> None:
        frame[name] = values(frame) if callable(values) else values

    return edit


def test_the_fixture_data_is_valid_and_has_enough_bads_in_train(credit_job: CreditJob) -> None:
    splits = prepared(credit_job())
    assert splits.method == "out_of_time"
    assert int(splits.train.target.sum()) >= MIN_CLASS_ROWS
    assert splits.test.time is not None
    assert splits.test.time.min() >= pd.Timestamp("2024-07-01")


# ----------------------------------------------------------------------------- the target


def test_missing_target_column(credit_job: CreditJob) -> None:
    message = data_error(credit_job(lambda f: f.drop(columns=[TARGET])))
    assert f"column '{TARGET}' named by data.target is not in the file" in message
    assert "fix data.target" in message


def test_missing_target_column_suggests_a_close_name(credit_job: CreditJob) -> None:
    message = data_error(credit_job(lambda f: f.rename(columns={TARGET: "default_12m_flag"})))
    assert "(did you mean 'default_12m_flag'?)" in message


def test_target_that_is_not_binary(credit_job: CreditJob) -> None:
    path = credit_job(with_column(TARGET, lambda f: f[TARGET] + (f.index % 3 == 0)))
    message = data_error(path)
    assert f"target '{TARGET}' is not binary (3 distinct values, e.g. 0, 1, 2)" in message
    assert "map it to two classes" in message


@pytest.mark.parametrize("only", [0, 1])
def test_target_with_one_class_only(credit_job: CreditJob, only: int) -> None:
    # All-good must not be reported as a wrong positive_label: no label would help.
    message = data_error(credit_job(with_column(TARGET, only)))
    assert f"target '{TARGET}' has one class only ({only}); a model needs both outcomes" in message


def test_missing_target_values_are_refused(credit_job: CreditJob) -> None:
    def edit(frame: pd.DataFrame) -> None:
        frame[TARGET] = frame[TARGET].astype("float64")
        frame.loc[[5, 50, 500], TARGET] = np.nan

    message = data_error(credit_job(edit))
    assert f"target '{TARGET}' has 3 missing values" in message


def test_positive_label_absent_from_the_target(credit_job: CreditJob) -> None:
    message = data_error(credit_job(config_updates={"data": {"positive_label": "bad"}}))
    assert (
        f"data.positive_label 'bad' does not occur in target '{TARGET}' (values: 0, 1); "
        "set data.positive_label"
    ) in message


def test_a_string_positive_label_marks_the_bads(
    credit_job: CreditJob, credit_frame: pd.DataFrame
) -> None:
    text = with_column(TARGET, lambda f: np.where(f[TARGET] == 1, "bad", "good"))
    splits = prepared(credit_job(text, {"data": {"positive_label": "bad"}}))
    bads = sum(int(part.target.sum()) for part in splits.parts().values())
    assert bads == int(credit_frame[TARGET].sum())


# ----------------------------------------------------------------------------- ids and time


def test_duplicate_ids(credit_job: CreditJob) -> None:
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[[10], ID] = frame.loc[[3], ID].to_numpy()

    message = data_error(credit_job(edit))
    assert f"id column '{ID}' has 1 duplicate values (first at data row 4)" in message
    assert "deduplicate the file" in message


def test_missing_ids_are_not_called_duplicates(credit_job: CreditJob) -> None:
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[[3, 7], ID] = None

    message = data_error(credit_job(edit))
    assert f"id column '{ID}' has missing values; every row needs an id" in message


def test_unparsable_time_column(credit_job: CreditJob) -> None:
    def edit(frame: pd.DataFrame) -> None:
        frame[TIME] = frame[TIME].dt.strftime("%Y-%m-%d").astype(object)
        frame.loc[100, TIME] = "not a date"

    message = data_error(credit_job(edit))
    assert (
        f"time column '{TIME}' has 1 values that are not ISO dates "
        "(first at data row 101); write dates as YYYY-MM-DD"
    ) in message


def test_undated_rows_are_refused_rather_than_put_in_training(credit_job: CreditJob) -> None:
    def edit(frame: pd.DataFrame) -> None:
        frame.loc[[40, 41, 900], TIME] = pd.NaT

    message = data_error(credit_job(edit))
    assert (
        f"time column '{TIME}' has 3 missing dates (first at data row 41); "
        "date every row or drop the undated ones"
    ) in message


def test_dates_in_mixed_formats_are_refused(credit_job: CreditJob) -> None:
    rows = list(range(0, 4000, 7))

    def edit(frame: pd.DataFrame) -> None:
        text = frame[TIME].dt.strftime("%Y-%m-%d").astype(object)
        text.iloc[rows] = frame[TIME].iloc[rows].dt.strftime("%d/%m/%Y")
        frame[TIME] = text

    message = data_error(credit_job(edit, suffix=".csv"), ".csv")
    assert (
        f"time column '{TIME}' has {len(rows)} values that are not ISO dates (first at data row 1)"
    ) in message


# ----------------------------------------------------------------------------- features


def test_pii_listed_as_a_feature_is_refused_not_reported_missing(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    # PII is never read, so the role check must come before "column not in the file".
    path = tmp_path / "credit.parquet"
    credit_frame.to_parquet(path, index=False)
    message = load_error(path, features=["annual_income", "phone"])
    assert "data.features lists 'phone', a protected/pii column; remove it" in message


def test_protected_listed_as_a_feature_is_refused(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    path = tmp_path / "credit.parquet"
    credit_frame.to_parquet(path, index=False)
    message = load_error(path, features=["sex", "annual_income"])
    assert "data.features lists 'sex', a protected/pii column; remove it" in message


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("status_copy", lambda f: f[TARGET]),
        ("outcome_code", lambda f: f[TARGET] * 3 + 1),
        ("collections_flag", lambda f: np.where(f[TARGET] == 1, "yes", "no")),
    ],
    ids=["copy", "target*3+1", "categorical-copy"],
)
def test_a_feature_that_is_the_target_under_another_name(
    credit_job: CreditJob, name: str, values: Any
) -> None:
    message = data_error(credit_job(with_column(name, values)))
    assert f"feature '{name}' separates '{TARGET}' perfectly on its own" in message
    assert "add it to data.exclude" in message


def test_a_leak_listed_in_exclude_is_not_used(credit_job: CreditJob) -> None:
    path = credit_job(
        with_column("status_copy", lambda f: f[TARGET]), {"data": {"exclude": ["status_copy"]}}
    )
    assert "status_copy" not in prepared(path).train.feature_names


def test_all_missing_and_constant_features_are_dropped_with_a_warning(
    credit_job: CreditJob, caplog: pytest.LogCaptureFixture
) -> None:
    def edit(frame: pd.DataFrame) -> None:
        frame["empty_col"] = np.nan
        frame["const_num"] = 7.0
        frame["const_cat"] = "x"

    with caplog.at_level(logging.WARNING, logger="training.data"):
        splits = prepared(credit_job(edit))
    dropped = {d.name: d.reason for d in splits.train.dropped}
    assert dropped == {
        "empty_col": "all values missing",
        "const_num": "constant",
        "const_cat": "constant",
    }
    for part in splits.parts().values():
        assert not set(dropped) & set(part.feature_names)
        assert "annual_income" in part.feature_names
    warned = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for name in dropped:
        assert f"dropped feature {name!r}" in warned


@pytest.mark.parametrize(
    ("value", "suffix"), [(np.inf, ".parquet"), (-np.inf, ".csv")], ids=["+inf", "-inf-csv"]
)
def test_infinite_values_are_refused(credit_job: CreditJob, value: float, suffix: str) -> None:
    rows = [7, 700, 3000]

    def edit(frame: pd.DataFrame) -> None:
        frame.loc[rows, "debt_to_income"] = value

    message = data_error(credit_job(edit, suffix=suffix), suffix)
    assert f"feature 'debt_to_income' has {len(rows)} infinite values" in message
    assert "replace ±inf with a number or leave the cell empty" in message


def test_text_in_a_numeric_column_is_refused(credit_job: CreditJob) -> None:
    def edit(frame: pd.DataFrame) -> None:
        income = frame["annual_income"].astype(object)
        income.iloc[[9, 20]] = ["unknown", "?"]
        frame["annual_income"] = income

    message = data_error(credit_job(edit, suffix=".csv"), ".csv")
    assert (
        "numeric column 'annual_income' has 2 non-numeric values "
        "(first at data row 10); clean them or list the column in data.categorical"
    ) in message


def test_numbers_stored_as_text_are_a_numeric_feature(
    credit_job: CreditJob, credit_frame: pd.DataFrame
) -> None:
    path = credit_job(with_column("loan_term_months", lambda f: f["loan_term_months"].astype(str)))
    splits = prepared(path)
    assert "loan_term_months" not in splits.train.categorical
    assert splits.train.features["loan_term_months"].dtype == np.float64
    seen = set(np.concatenate([p.features["loan_term_months"] for p in splits.parts().values()]))
    assert seen == set(credit_frame["loan_term_months"].astype(float))


def test_a_categorical_with_too_many_levels_is_refused(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    copies = MAX_LEVELS // len(credit_frame) + 1
    frame = pd.concat([credit_frame] * copies, ignore_index=True)
    frame[ID] = [f"X{i}" for i in range(len(frame))]
    frame["customer_ref"] = [f"C{i:06d}" for i in range(len(frame))]
    path = tmp_path / "big.parquet"
    frame.to_parquet(path, index=False)
    message = load_error(path)
    assert (
        f"categorical column 'customer_ref' has {len(frame)} levels (limit {MAX_LEVELS})" in message
    )
    assert "add it to data.exclude" in message


# ----------------------------------------------------------------------------- splits


def test_fewer_than_50_bads_in_train(credit_job: CreditJob) -> None:
    # Every 6th bad kept: enough in the file (over 50), about 38 in train after the cuts.
    def edit(frame: pd.DataFrame) -> None:
        bads = np.flatnonzero(frame[TARGET].to_numpy() == 1)
        frame.loc[np.setdiff1d(bads, bads[::6]), TARGET] = 0
        assert int(frame[TARGET].sum()) > MIN_CLASS_ROWS

    path = credit_job(edit)
    message = data_error(path)
    assert "the train split has" in message
    assert f"positive (bad) rows; at least {MIN_CLASS_ROWS} of each class are needed" in message


def test_fewer_than_50_goods_in_train(credit_job: CreditJob) -> None:
    def edit(frame: pd.DataFrame) -> None:
        frame[TARGET] = 1
        frame.loc[frame.index[::60], TARGET] = 0  # 67 goods, about 40 in train

    message = data_error(credit_job(edit))
    assert "the train split has" in message
    assert "negative (good) rows; at least 50 of each class are needed" in message


def test_a_file_of_5_rows(credit_job: CreditJob) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        bad = frame[frame[TARGET] == 1].head(2)
        good = frame[frame[TARGET] == 0].head(3)
        return pd.concat([bad, good], ignore_index=True)

    message = data_error(credit_job(edit))
    assert "the file has 2 positive (bad) rows in 5; the train split alone needs" in message
    assert "at least 50 of each class" in message


@pytest.mark.parametrize(
    ("oot_start", "side"),
    [("2030-01-01", "test (on/after it)"), ("2020-01-01", "train/valid (before it)")],
    ids=["after-the-data", "before-the-data"],
)
def test_an_out_of_time_cutoff_that_empties_a_split(
    credit_job: CreditJob, oot_start: str, side: str
) -> None:
    message = data_error(credit_job(config_updates={"split": {"oot_start": oot_start}}))
    assert f"split.oot_start {oot_start} leaves the {side} split empty" in message
    assert "the data runs from 2023-01-01 to 2024-12-31" in message


def test_a_share_too_small_to_cut_names_the_key(credit_job: CreditJob) -> None:
    message = data_error(credit_job(config_updates={"split": {"valid_fraction": 0.0003}}))
    assert "split.valid_fraction 0.0003 cannot cut" in message
    assert "choose a larger share" in message


# ----------------------------------------------------------------------------- the file


def test_a_missing_data_file(credit_job: CreditJob) -> None:
    path = credit_job()
    data_file(path).unlink()
    message = data_error(path)
    assert "no such data file; check data.source" in message


@pytest.mark.parametrize(
    ("suffix", "expected"),
    [
        (".csv", "the file is empty; it needs a header row and data rows"),
        (".parquet", "not a readable Parquet file"),
    ],
    ids=["csv", "parquet"],
)
def test_an_empty_file(credit_job: CreditJob, suffix: str, expected: str) -> None:
    path = credit_job(suffix=suffix)
    data_file(path, suffix).write_bytes(b"")
    assert expected in data_error(path, suffix)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_header_only_file(credit_job: CreditJob, suffix: str) -> None:
    message = data_error(credit_job(lambda f: f.iloc[:0], suffix=suffix), suffix)
    assert "header only, no data rows" in message


def test_a_parquet_file_that_is_really_csv(
    credit_job: CreditJob, credit_frame: pd.DataFrame
) -> None:
    path = credit_job()
    credit_frame.to_csv(data_file(path), index=False)
    message = data_error(path)
    assert "not a readable Parquet file" in message
    assert "write it with pandas.to_parquet or use .csv" in message


def test_a_txt_file_is_refused_by_the_reader(tmp_path: Path, credit_frame: pd.DataFrame) -> None:
    path = tmp_path / "credit.txt"
    credit_frame.to_csv(path, index=False)
    assert "unsupported file type '.txt'; use .csv or .parquet" in load_error(path)


def test_a_csv_that_is_not_utf8(credit_job: CreditJob) -> None:
    path = credit_job(suffix=".csv")
    frame = pd.read_csv(data_file(path, ".csv"))
    frame["region"] = frame["region"].str.replace("london", "Malmö")
    frame.to_csv(data_file(path, ".csv"), index=False, encoding="latin-1")
    message = data_error(path, ".csv")
    assert "not UTF-8 text (found byte 0xf6" in message
    assert "re-save the file as UTF-8" in message


# ----------------------------------------------------------------------------- personal data


def _load(path: Path) -> Dataset:
    return load_dataset(path, **CREDIT_ROLES)


def _every_column(dataset: Dataset) -> set[str]:
    names = set(dataset.features.columns) | set(dataset.protected.columns)
    for series in (dataset.ids, dataset.time, dataset.groups):
        if series is not None:
            names.add(str(series.name))
    return names


def test_pii_is_never_read_and_does_not_change_the_digest(
    tmp_path: Path, credit_frame: pd.DataFrame
) -> None:
    original = tmp_path / "original.parquet"
    credit_frame.to_parquet(original, index=False)
    other_people = credit_frame.assign(full_name="X", phone="0", national_id="Z")
    renamed = tmp_path / "renamed.parquet"
    other_people.to_parquet(renamed, index=False)
    edited = tmp_path / "edited.parquet"
    credit_frame.assign(annual_income=credit_frame["annual_income"] + 1).to_parquet(edited)

    dataset = _load(original)
    assert set(PII).isdisjoint(_every_column(dataset))
    assert set(PII) <= set(credit_frame.columns)  # they were in the file
    assert _load(renamed).digest == dataset.digest
    assert _load(edited).digest != dataset.digest  # the digest does see real data


def test_a_misspelt_pii_name_is_refused_so_the_real_column_is_not_a_feature(
    credit_job: CreditJob,
) -> None:
    path = credit_job(config_updates={"data": {"pii": ["full_name", "phone_number"]}})
    message = data_error(path)
    assert "column 'phone_number' named by data.pii is not in the file" in message
    assert "fix data.pii" in message


def test_a_misspelt_exclude_name_is_refused(credit_job: CreditJob) -> None:
    path = credit_job(config_updates={"data": {"exclude": ["regoin"]}}, suffix=".csv")
    message = data_error(path, ".csv")
    assert "column 'regoin' named by data.exclude is not in the file" in message
    assert "(did you mean 'region'?)" in message


def test_config_roles_reach_the_loader(credit_job: CreditJob) -> None:
    updates: Mapping[str, Any] = {"data": {"exclude": ["region"], "pii": [*PII, "channel"]}}
    splits = prepared(credit_job(config_updates=updates))
    assert {"region", "channel"}.isdisjoint(splits.train.feature_names)
