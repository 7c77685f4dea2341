"""Value-free messages: library errors about bad input, told by column and row, never by value.

pyarrow's and MLflow's own messages quote what they refused — the row of a CSV with a
field too many, the cell that is not a number, the frame a schema check was given — and
such a cell is often a name or a phone number typed into the wrong field. Passed on, a
`creditgov score` error line would copy personal data into a terminal, a CI log or a
ticket. So every such error is translated here into a `ScoringError` that names the file,
the column and the data row (found again by reading the file, where the library does not
say) and keeps of the library's own text only what quotes nothing.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pyarrow as pa

from creditgov.errors import BadInput

__all__ = ["ScoringError", "csv_error", "plain", "reason", "safe_line"]


class ScoringError(BadInput):
    """Input that cannot be scored; one line naming the file and, where known, the column."""


class _Inputs(Protocol):
    """What `reason` reads of the model's inputs (`registry.scoring`): the features."""

    @property
    def features(self) -> tuple[tuple[str, pa.DataType], ...]: ...


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


#: A quoted span of a library's message: what it quotes is usually the data.
_QUOTED = re.compile(r"""(['"`]).*\1""")
#: pyarrow's CSV messages: "Expected 3 columns, got 4: <the row's text>", and
#: "In CSV column #2: CSV conversion error to double: invalid value '<the cell>'".
_CSV_FIELDS = re.compile(r"Expected (\d+) columns, got (\d+)")
_CSV_CONVERSION = re.compile(r"In CSV column #(\d+): CSV conversion error to (\w+)")


def safe_line(err: BaseException) -> str:
    """The first line of a library's message, cut before any row text and unquoted."""
    line = _first_line(err)
    line = re.split(r"(?<=\d): ", line, maxsplit=1)[0]  # "got 4: 1,Zhang Wei,…"
    return _QUOTED.sub("…", line)[:200]


def csv_error(path: Path, header: list[str], err: pa.ArrowException) -> ScoringError:
    """pyarrow's CSV error, without the row or cell text it quotes, and with the row."""
    text = _first_line(err)
    fields = _CSV_FIELDS.search(text)
    if fields is not None:
        want = int(fields.group(1))
        row = _csv_row(path, lambda record: len(record) != want)
        where = f"row {row}" if row else "a row"
        return ScoringError(
            f"{path}: {where} has {fields.group(2)} fields where the header has {want}; fix "
            "that row (a stray delimiter, or a quote left open)"
        )
    conversion = _CSV_CONVERSION.search(text)
    if conversion is not None and int(conversion.group(1)) < len(header):
        at = int(conversion.group(1))
        name = header[at]
        if conversion.group(2) == "string":  # pyarrow checks text is UTF-8
            row = _csv_row(path, lambda record: len(record) > at and _not_utf8(record[at]))
            what, fix = "not UTF-8 text", "re-save the file as UTF-8"
        else:
            row = _csv_row(path, lambda record: len(record) > at and not _number(record[at]))
            what, fix = "not a number", "fix or blank those cells"
        where = f", row {row}" if row else ""
        return ScoringError(f"{path}: column {name!r}{where}: {what}; {fix}")
    return ScoringError(f"{path}: cannot read the file ({safe_line(err)})")


def _csv_row(path: Path, bad: Callable[[list[str]], bool]) -> int | None:
    """The first data row (1-based, blank lines skipped as pyarrow skips them) that is `bad`."""
    try:
        with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
            records = csv.reader(handle)
            next(records, None)  # the header
            row = 0
            for record in records:
                if not record:
                    continue
                row += 1
                if bad(record):
                    return row
    except (OSError, csv.Error):
        return None
    return None


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # the bytes surrogateescape kept
        return True
    return False


def _number(text: str) -> bool:
    """Whether pyarrow reads `text` as a number (an empty cell is missing, so it counts)."""
    if text == "":
        return True
    try:
        pa.array([text], type=pa.string()).cast(pa.float64())
    except pa.ArrowException:
        return False
    return True


def reason(err: BaseException, inputs: _Inputs) -> str:
    """MLflow's schema refusal, as the feature it names: never its text, which quotes data.

    MLflow's messages repeat the frame it was given and often the value it refused
    ("Failed to convert value `…`"); only a name from the model's own inputs is taken out.
    """
    tail = str(err).rsplit("Error: ", 1)[-1]
    named = [name for name, _ in inputs.features if name in tail]
    if named:
        name = max(named, key=len)  # "income" inside "annual_income" names the longer one
        return (
            f"the model's input schema refused column {name!r}; write that column as it was "
            "in the training data"
        )
    return "the model's input schema refused these rows; write the columns as in the training data"


def plain(arrow: pa.DataType) -> str:
    if pa.types.is_integer(arrow):
        return "whole-number"
    if pa.types.is_floating(arrow):
        return "numeric"
    return str(arrow)
