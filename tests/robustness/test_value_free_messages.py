"""Messages about bad cells name the column and the data row, never the cell's value.

A cell holding text where a number belongs is often a name or a phone number typed into
the wrong field, and pyarrow's and MLflow's own messages quote it. These pin the pieces
of `registry/scoring.py` and `registry/scoring_errors.py` that find the row themselves and drop the quoted text, and the
drift JSON that counts, rather than lists, new levels of undeclared columns. The
commands end to end are in `test_bad_batches.py`.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest

from evaluation.drift import DriftResult
from registry import scoring
from registry.scoring_errors import ScoringError

SECRET = "Zhang Wei 13812345678"


def _leaks(text: str) -> bool:
    return any(word in text for word in ("Zhang", "13812345678"))


def _inputs(*features: tuple[str, pa.DataType]) -> scoring._Inputs:
    return scoring._Inputs(features=features, id_column=None)


@pytest.mark.parametrize("at", [0, 1, 2, 3, 4, 5, 9, 10, 11])
def test_the_first_cell_that_does_not_convert_is_found_across_chunks(at: int) -> None:
    values = ["1.5"] * 12
    values[at] = SECRET
    values[-1] = "also text"  # a later bad cell does not hide the first
    column = pa.chunked_array([values[:3], values[3:4], values[4:10], values[10:]])
    table = pa.table({"x": column})

    with pytest.raises(ScoringError) as caught:
        scoring._features(table, _inputs(("x", pa.float64())), Path("b.csv"), first_row=101)

    message = str(caught.value)
    assert message == f"b.csv: column 'x', row {101 + at}: not a number; fix or blank those cells"
    assert not _leaks(message)


@pytest.mark.parametrize(
    ("cells", "what"),
    [
        (["1", "2", SECRET], "row 3: not a number"),
        (["1", "2.5", SECRET], "row 2: not a whole number"),
        ([1.0, 2.0, 3.25], "row 3: not a whole number"),
    ],
)
def test_a_whole_number_column_says_which_kind_of_cell_it_refused(
    cells: list[object], what: str
) -> None:
    table = pa.table({"n": pa.chunked_array([cells])})
    with pytest.raises(ScoringError, match=f"column 'n', {what}; fix or blank") as caught:
        scoring._features(table, _inputs(("n", pa.int64())), Path("b.parquet"))
    assert not _leaks(str(caught.value))


def test_a_column_of_the_wrong_kind_names_its_type_not_its_values() -> None:
    table = pa.table({"x": pa.array([["Zhang Wei"], None], type=pa.list_(pa.string()))})
    with pytest.raises(ScoringError, match="column 'x' holds list<item: string> values") as caught:
        scoring._features(table, _inputs(("x", pa.float64())), Path("b.parquet"))
    assert not _leaks(str(caught.value))


def _arrow_error(path: Path, **convert: object) -> pa.ArrowException:
    try:
        reader = pacsv.open_csv(path, convert_options=pacsv.ConvertOptions(**convert))
        reader.read_all()
    except pa.ArrowException as err:
        assert "Zhang" in str(err)  # what pyarrow says, and what must not be passed on
        return err
    raise AssertionError("pyarrow read the file")


def test_a_row_with_too_many_fields_is_numbered_without_its_text(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text(f"a,b,c\n1,2,3\n\n4,5,6\n7,{SECRET},8,9\n", encoding="utf-8")
    error = scoring._csv_error(path, ["a", "b", "c"], _arrow_error(path))
    assert str(error) == (
        f"{path}: row 3 has 4 fields where the header has 3; fix that row "
        "(a stray delimiter, or a quote left open)"
    )


def test_a_csv_conversion_error_names_column_and_row_not_the_value(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text(f"a,b,c\n1,2,3\n4,,6\n7,{SECRET},9\n", encoding="utf-8")
    err = _arrow_error(path, column_types={"b": pa.float64()})
    assert str(scoring._csv_error(path, ["a", "b", "c"], err)) == (
        f"{path}: column 'b', row 3: not a number; fix or blank those cells"
    )


def test_text_that_is_not_utf8_is_placed_by_column_and_row(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    # past the first block of text the header is decoded from (a file-wide check of that
    # block answers for a small file: "not UTF-8 text (found byte 0xff …)")
    path.write_bytes(b"a,b\n" + b"1,2\n" * 50_000 + b"3,Zhang \xff Wei\n")
    inputs = _inputs(("b", pa.string()))
    with pytest.raises(ScoringError) as caught:
        list(scoring._open(path, inputs, 100)[1])
    assert (
        str(caught.value)
        == f"{path}: column 'b', row 50001: not UTF-8 text; re-save the file as UTF-8"
    )


def test_a_line_break_inside_a_quoted_cell_is_read(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text('note,x\n"line one\nline two",1.5\nplain,2\n', encoding="utf-8")
    chunks = list(scoring._open(path, _inputs(("x", pa.float64())), 100)[1])
    assert [t.num_rows for t in chunks] == [2]


def test_mlflow_refusals_keep_only_a_feature_name() -> None:
    inputs = _inputs(("income", pa.float64()), ("annual_income", pa.float64()))
    err = Exception(
        f"Failed to enforce schema of data '   annual_income\n0  {SECRET}' with schema "
        f"'[...]'. Error: Failed to convert value `{SECRET}` for column annual_income"
    )
    assert scoring._reason(err, inputs) == (
        "the model's input schema refused column 'annual_income'; write that column as it was "
        "in the training data"
    )
    assert not _leaks(scoring._reason(Exception(f"Error: bad value {SECRET}"), inputs))


@pytest.mark.parametrize(
    "message",
    [
        f"CSV parse error: Expected 3 columns, got 4: 4,{SECRET},6,7",
        f"In CSV column #1: CSV conversion error to double: invalid value '{SECRET}'",
        f'Could not convert "{SECRET}" with type str: tried to convert to double',
    ],
)
def test_other_library_lines_lose_what_they_quote(message: str) -> None:
    assert not _leaks(scoring._safe_line(ValueError(message)))


def _drift(named: frozenset[str]) -> DriftResult:
    return DriftResult(
        psi={"region": 0.3, "employer": 0.5},
        ks={},
        score_psi=None,
        new_levels={"region": {"Atlantis": 3}, "employer": {SECRET: 2, "Acme Ltd": 1}},
        missing={"region": (0.0, 0.0), "employer": (0.0, 0.0)},
        psi_max=0.5,
        threshold=0.25,
        drifted=("employer", "region"),
        n_rows=100,
        named_levels=named,
    )


def test_drift_json_counts_new_levels_unless_the_column_is_declared_categorical() -> None:
    assert _drift(frozenset()).to_json()["new_levels"] == {"region": 1, "employer": 2}
    assert _drift(frozenset({"region"})).to_json()["new_levels"] == {
        "region": {"Atlantis": 3},
        "employer": 2,
    }
    # the table (screen, drift.html) counts levels in either case
    table = _drift(frozenset({"region"})).table().set_index("feature")
    assert table["new_levels"].to_dict() == {"employer": 2, "region": 1}
