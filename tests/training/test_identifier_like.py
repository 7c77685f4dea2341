"""A feature that looks like an identifier is refused at load, or dropped on request.

An identifier kept as a feature (a phone number re-encoded as an integer, a copy of the
name column) gives the model nothing a characteristic would and puts personal data into
its files: LightGBM's model text records each feature's range, the drift reference its
percentiles, the input example its quantiles. `data.identifier_like` says what to do:
`refuse` (the default: exit 2, one line naming the file and column and the fixes) or
`drop` (one warning, the job trains without it). A continuous amount never looks like one.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from creditgov.config import load_config
from creditgov.config.schema import DataConfig
from creditgov.job import prepare
from datasets import make_credit
from tests.conftest import write_frame
from training.data import ID_MIN_ROWS, load_dataset
from training.reading import DataError

ROLES: dict[str, Any] = {
    "target": "default_12m",
    "id_column": "application_id",
    "time_column": "application_date",
    "protected": ["sex", "age"],
    "pii": ["full_name", "phone", "national_id"],
}


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_credit(1500, seed=8).frame


def national(frame: pd.DataFrame) -> pd.Series:
    """The phone's national number as an integer (+44 7193 108997 -> 7193108997)."""
    digits = (
        frame["phone"].str.replace(r"^\+\d+", "", regex=True).str.replace(r"\D", "", regex=True)
    )
    return digits.astype("int64")


def write(tmp_path: Path, frame: pd.DataFrame, suffix: str = ".parquet") -> Path:
    path = tmp_path / f"table{suffix}"
    write_frame(frame, path)
    return path


def refusal(path: Path, **roles: Any) -> str:
    with pytest.raises(DataError) as caught:
        load_dataset(path, **{**ROLES, **roles})
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: "), message
    return message


def test_a_phone_number_kept_as_an_integer_is_refused_with_the_fixes(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    path = write(tmp_path, frame.assign(contact_no=national(frame)))
    message = refusal(path)
    assert "feature 'contact_no' looks like an identifier" in message
    assert "1,500 distinct whole numbers of 8+ digits in 1,500 rows" in message
    for fix in ("data.pii", "data.exclude", "data.identifier_like: drop"):
        assert fix in message
    assert not re.search(r"\d{8}", message)  # never a value


def test_a_csv_number_column_with_blanks_is_still_whole_numbers(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    """A blank cell makes pandas read the column as floats, 7193108997.0: still an id."""
    contact = national(frame).astype("float64")
    contact[::10] = np.nan
    path = write(tmp_path, frame.assign(contact_no=contact), ".csv")
    assert "feature 'contact_no' looks like an identifier" in refusal(path)


def test_numbers_stored_as_text_are_caught_too(tmp_path: Path, frame: pd.DataFrame) -> None:
    """With the trunk zero, as a CRM writes a national number: text that reads as numbers."""
    path = write(tmp_path, frame.assign(contact_no="0" + national(frame).astype(str)))
    assert "feature 'contact_no' looks like an identifier" in refusal(path)


def test_a_copy_of_the_name_column_is_refused(tmp_path: Path, frame: pd.DataFrame) -> None:
    path = write(tmp_path, frame.assign(contact_name=frame["full_name"]))
    message = refusal(path)
    assert "feature 'contact_name' looks like an identifier" in message
    assert "distinct text values" in message
    assert not any(name in message for name in frame["full_name"])


def test_drop_trains_without_it_and_warns_once(
    tmp_path: Path, frame: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path, frame.assign(contact_no=national(frame), contact_name=frame["full_name"])
    )
    with caplog.at_level(logging.WARNING, logger="training.data"):
        dataset = load_dataset(path, **ROLES, identifier_like="drop")
    assert "contact_no" not in dataset.feature_names
    assert "contact_name" not in dataset.feature_names
    assert {d.name: d.reason.split(":")[0] for d in dataset.dropped} == {
        "contact_no": "looks like an identifier",
        "contact_name": "looks like an identifier",
    }
    warned = [
        r.getMessage() for r in caplog.records if "looks like an identifier" in r.getMessage()
    ]
    assert len(warned) == 2 and all("dropped feature" in w for w in warned)


@pytest.mark.parametrize(
    "column",
    [
        pytest.param(lambda f, rng: rng.lognormal(10.5, 0.6, len(f)), id="continuous-income"),
        pytest.param(lambda f, rng: np.round(rng.lognormal(10.5, 0.6, len(f))), id="whole-pounds"),
        pytest.param(lambda f, rng: np.arange(len(f)) + 1, id="row-number"),
        pytest.param(lambda f, rng: rng.lognormal(18.0, 0.3, len(f)), id="large-fractional"),
    ],
)
def test_characteristics_never_look_like_identifiers(
    tmp_path: Path, frame: pd.DataFrame, column: Any
) -> None:
    """Near-unique, but not whole numbers of eight digits or more: an income to the penny
    or the pound, a row counter (the id column's business, not PII), a fractional balance."""
    values = column(frame, np.random.default_rng(3))
    assert pd.Series(values).nunique() > 0.9 * len(frame)
    dataset = load_dataset(write(tmp_path, frame.assign(x=values)), **ROLES)
    assert "x" in dataset.feature_names


def test_a_sparse_column_under_the_row_minimum_is_left_to_the_scan(
    tmp_path: Path, frame: pd.DataFrame
) -> None:
    contact = national(frame).astype("float64")
    contact[ID_MIN_ROWS - 1 :] = np.nan
    dataset = load_dataset(write(tmp_path, frame.assign(contact_no=contact)), **ROLES)
    assert "contact_no" in dataset.feature_names


def test_a_registered_models_batch_is_not_checked(tmp_path: Path, frame: pd.DataFrame) -> None:
    """Re-testing a model on a new batch reads the model's features, as trained."""
    path = write(tmp_path, frame.assign(contact_no=national(frame)))
    dataset = load_dataset(path, **ROLES, for_training=False)
    assert "contact_no" in dataset.feature_names


def test_the_config_switch_reaches_the_load(credit_job: Any) -> None:
    def edit(f: pd.DataFrame) -> None:
        f["contact_no"] = national(f)

    refused = credit_job(edit)
    with pytest.raises(DataError, match="feature 'contact_no' looks like an identifier"):
        prepare(load_config(refused))
    dropped = credit_job(edit, {"data": {"identifier_like": "drop"}})
    splits = prepare(load_config(dropped))
    assert "contact_no" not in splits.train.feature_names
    assert [d.name for d in splits.train.dropped] == ["contact_no"]


def test_the_switch_takes_refuse_or_drop_only() -> None:
    base = {"source": "data.csv", "target": "y"}
    assert DataConfig(**base).identifier_like == "refuse"  # type: ignore[arg-type]
    assert DataConfig(**base, identifier_like="drop").identifier_like == "drop"  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="identifier_like"):
        DataConfig(**base, identifier_like="keep")  # type: ignore[arg-type]
