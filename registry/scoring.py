"""Batch scoring: a registered model over a CSV or Parquet file, in bounded memory.

The file is read in chunks of `chunk_rows` rows (Parquet batch by batch, CSV block by
block), each chunk is scored by the same `mlflow.pyfunc` model a serving system loads,
and the scores are appended to the output as they come (one Parquet row group or one run
of CSV lines per chunk). Memory therefore grows with the chunk, not with the file.

Only the columns the model needs are read, plus the id column named in the model's run
config; personal data and every other column never leave the input file. The output is
written beside its final name and renamed into place at the end, so a failed run leaves
no half-written file that looks complete.
"""

from __future__ import annotations

import csv
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from creditgov.errors import CreditgovError
from registry.scoring_errors import ScoringError
from registry.scoring_errors import csv_error as _csv_error
from registry.scoring_errors import plain as _plain
from registry.scoring_errors import reason as _reason
from registry.scoring_errors import safe_line as _safe_line

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from registry.governance.loading import VerifiedModel

__all__ = ["DEFAULT_CHUNK_ROWS", "SUFFIXES", "ScoreSummary", "score_file"]

DEFAULT_CHUNK_ROWS = 50_000
SUFFIXES = (".csv", ".parquet")
#: Bytes of CSV text parsed at a time; chunks are then cut to `chunk_rows` rows.
_CSV_BLOCK_BYTES = 4 << 20
#: Arrow types for the signature's column types (registry/register.py: double, long, string).
_ARROW_TYPES = {
    "double": pa.float64(),
    "float": pa.float32(),
    "long": pa.int64(),
    "integer": pa.int32(),
    "string": pa.string(),
    "boolean": pa.bool_(),
}

#: Called with (rows scored so far, total rows or None when the format does not say).
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True)
class ScoreSummary:
    rows: int
    chunks: int
    seconds: float
    output: Path
    model_name: str
    model_version: str
    id_column: str | None
    decisions: Mapping[str, int] = field(default_factory=dict)
    #: rows per categorical feature whose level the model never saw (scored as missing)
    unseen: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class _Inputs:
    """What the model reads: each feature with its Arrow type, and the id column."""

    features: tuple[tuple[str, pa.DataType], ...]
    id_column: str | None
    #: the training levels of each categorical feature
    levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        names = [name for name, _ in self.features]
        if self.id_column is None or self.id_column in names:
            return names
        return [self.id_column, *names]


def score_file(
    model_uri: str,
    input_path: Path,
    output_path: Path,
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    progress: Progress | None = None,
) -> ScoreSummary:
    """Score `input_path` with the registered model `model_uri` into `output_path`.

    Raises `ScoringError` for a bad file, extension or column,
    `registry.artifacts.ModelNotFound` for a URI that names no version, and
    `registry.governance.GovernanceError` for a version whose model files were edited or
    deleted after registration, or reached through an alias the audit chain did not set.
    """
    import mlflow

    from registry.governance.loading import verified_copy
    from registry.tracking import resolve_tracking_uri, use_tracking

    if chunk_rows < 1:
        raise ScoringError(f"chunk_rows must be at least 1, got {chunk_rows}")
    input_path, output_path = Path(input_path), Path(output_path)
    for path in (input_path, output_path):
        if path.suffix.lower() not in SUFFIXES:
            raise ScoringError(f"{path}: use a .csv or .parquet file name")
    if not input_path.is_file():
        raise ScoringError(f"{input_path}: no such file; check the path given to --input")
    if output_path.resolve() == input_path.resolve():
        raise ScoringError(f"{output_path}: the output would overwrite the input; choose another")

    started = time.perf_counter()
    client = use_tracking(resolve_tracking_uri(None))
    with tempfile.TemporaryDirectory(prefix="creditgov-model-") as tmp:
        # One copy, verified and then loaded: a champion / challenger alias moved by hand,
        # a signed chain that does not verify, or a file edited after registration is
        # refused (GovernanceError, exit 3 in the CLI) before any of it is read. The
        # resolved version is used from here on, so an alias moved mid-run cannot mix
        # two models in one output.
        verified = verified_copy(
            client, model_uri, Path(tmp), tracking_uri=mlflow.get_tracking_uri()
        )
        return _score(verified, client, input_path, output_path, chunk_rows, progress, started)


def _score(
    verified: VerifiedModel,
    client: MlflowClient,
    input_path: Path,
    output_path: Path,
    chunk_rows: int,
    progress: Progress | None,
    started: float,
) -> ScoreSummary:
    import mlflow

    from registry.artifacts import load_bundle
    from registry.register import quiet_mlflow_advice

    name, version, pinned = verified.name, verified.version, verified.pinned
    bundle = load_bundle(client, pinned, local=verified.folder)
    signature = mlflow.models.Model.load(str(verified.folder)).signature
    inputs = _model_inputs(signature, bundle.config, pinned, bundle.state)
    # The input is checked before the model is loaded, so a bad file fails fast.
    total, tables = _open(input_path, inputs, chunk_rows)
    quiet_mlflow_advice()
    model = mlflow.pyfunc.load_model(str(verified.folder))
    if progress is not None:
        progress(0, total)
    partial = output_path.with_name(f".{output_path.name}.partial")
    output_path.parent.mkdir(parents=True, exist_ok=True)
    rows = chunks = 0
    decisions: dict[str, int] = {}
    # Missing cells of each feature training never saw missing (an all-empty one is refused).
    empty = dict.fromkeys(_never_missing(bundle.reference), 0)
    unseen: dict[str, int] = {}
    writer: _Writer | None = None
    try:
        for table in tables:
            features = _features(table, inputs, input_path, first_row=rows + 1)
            _count(features, inputs, empty, unseen)
            frame = features.to_pandas()
            span = f"{input_path}: rows {rows + 1}-{rows + len(frame)}"
            try:
                scored = model.predict(frame)
            except mlflow.exceptions.MlflowException as err:
                raise ScoringError(f"{span}: {_reason(err, inputs)}") from None
            except Exception as err:
                # Whatever failed inside the model, its message may quote the rows it was
                # given: the type is enough to start from, and exit 1 says it is a bug.
                raise CreditgovError(
                    f"{span}: the model failed on these rows ({type(err).__name__}); its "
                    "message is withheld because it may quote cell values"
                ) from None
            out = _output_table(table, scored, inputs.id_column)
            if writer is None:
                writer = _Writer(partial, out.schema)
            writer.write(out.cast(writer.schema))
            for label, count in scored["decision"].value_counts().items():
                decisions[str(label)] = decisions.get(str(label), 0) + int(count)
            rows += len(frame)
            chunks += 1
            if progress is not None:
                progress(rows, total)
        if writer is None:
            raise ScoringError(f"{input_path}: {_NO_ROWS}")
        _refuse_empty_columns(empty, rows, input_path)
        writer.close()
        if progress is not None and total is None:
            progress(rows, rows)  # a CSV's length is known only at its end
        os.replace(partial, output_path)
    except BaseException:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
        raise
    return ScoreSummary(
        rows=rows,
        chunks=chunks,
        seconds=time.perf_counter() - started,
        output=output_path,
        model_name=name,
        model_version=version,
        id_column=inputs.id_column,
        decisions=decisions,
        unseen={name: n for name, n in unseen.items() if n},
    )


_NO_ROWS = "the file has no rows to score; nothing was written: pass a file with data rows"


def _count(table: pa.Table, inputs: _Inputs, empty: dict[str, int], unseen: dict[str, int]) -> None:
    """Add a chunk's missing cells per feature, and its rows with a level never trained on."""
    import pyarrow.compute as pc

    for name, _ in inputs.features:
        column = table.column(name)
        if name in empty:
            empty[name] += column.null_count
        levels = inputs.levels.get(name)
        if levels is not None:
            known = pc.is_in(column, value_set=pa.array(levels, type=pa.string()))
            new = pc.sum(pc.and_(pc.invert(known), pc.is_valid(column))).as_py() or 0
            unseen[name] = unseen.get(name, 0) + int(new)


def _never_missing(reference: Mapping[str, Any] | None) -> list[str]:
    """Features with no missing value in the training split (from the drift reference)."""
    features = (reference or {}).get("features", ())
    return [str(f["name"]) for f in features if f.get("missing_share") == 0]


def _refuse_empty_columns(empty: Mapping[str, int], rows: int, path: Path) -> None:
    """A feature training always had, empty in every row, is a broken extract.

    Scored, every row would get the model's answer for "unknown" and the decisions would
    look normal; refused, the extract gets fixed before anyone acts on them. A feature
    that was sometimes missing in training (months since the last missed payment, say)
    may well be missing in every row of a small batch, and is scored.
    """
    blank = [name for name, n in empty.items() if n == rows]
    if blank:
        more = f" (and {len(blank) - 1} more)" if len(blank) > 1 else ""
        raise ScoringError(
            f"{path}: column {blank[0]!r}{more} is empty in all {rows:,} rows; the model needs "
            f"its values: fix the extract that wrote the file (nothing was written)"
        )


def _model_inputs(
    signature: Any,
    config: Mapping[str, Any] | None,
    uri: str,
    state: Mapping[str, Any] | None = None,
) -> _Inputs:
    schema = None if signature is None else signature.inputs
    if schema is None or not schema.has_input_names():
        raise ScoringError(f"{uri}: the model has no named input signature to read columns by")
    features = []
    for name, kind in zip(schema.input_names(), schema.input_types(), strict=True):
        arrow = _ARROW_TYPES.get(str(getattr(kind, "name", kind)))
        if arrow is None:
            raise ScoringError(
                f"{uri}: input {name!r} has type {kind}, which batch scoring cannot read"
            )
        features.append((str(name), arrow))
    id_column = ((config or {}).get("data") or {}).get("id_column")
    levels = {
        str(f["name"]): tuple(str(v) for v in f.get("levels", ()))
        for f in (state or {}).get("features", ())
        if f.get("kind") == "categorical"
    }
    return _Inputs(tuple(features), str(id_column) if id_column else None, levels)


# -- reading -------------------------------------------------------------------------------
def _open(path: Path, inputs: _Inputs, chunk_rows: int) -> tuple[int | None, Iterator[pa.Table]]:
    """(total rows if known, chunks of exactly `chunk_rows` rows but the last)."""
    if path.suffix.lower() == ".parquet":
        return _open_parquet(path, inputs, chunk_rows)
    header = _csv_header(path)
    _check_columns(path, header, inputs)

    def error(err: pa.ArrowException) -> ScoringError:
        return _csv_error(path, header, err)

    return None, _rechunk(_csv_batches(path, inputs), chunk_rows, error)


def _open_parquet(path: Path, inputs: _Inputs, chunk_rows: int) -> tuple[int, Iterator[pa.Table]]:
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path, buffer_size=1 << 20)
    except (pa.ArrowException, OSError) as err:
        raise ScoringError(f"{path}: not a readable Parquet file ({_safe_line(err)})") from None
    _check_columns(path, parquet.schema_arrow.names, inputs)
    total = parquet.metadata.num_rows
    if total == 0:
        raise ScoringError(f"{path}: {_NO_ROWS}")
    batches = parquet.iter_batches(batch_size=chunk_rows, columns=inputs.columns)

    def error(err: pa.ArrowException) -> ScoringError:
        return ScoringError(f"{path}: cannot read the file ({_safe_line(err)})")

    return total, _rechunk(batches, chunk_rows, error)


def _csv_batches(path: Path, inputs: _Inputs) -> Iterator[pa.RecordBatch]:
    import pyarrow.csv as pacsv

    # Everything is read as text and typed per column afterwards (`_features`): Arrow's
    # own inference looks at the first block only and would fail on a later one.
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK_BYTES),
        # A quoted cell may hold a line break (an address, a note), as pandas writes it.
        parse_options=pacsv.ParseOptions(newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(
            include_columns=inputs.columns,
            column_types=dict.fromkeys(inputs.columns, pa.string()),
            strings_can_be_null=True,
        ),
    )
    with reader:
        yield from reader


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle))
    except StopIteration:
        raise ScoringError(
            f"{path}: the file is empty; it needs a header row and data rows"
        ) from None
    except UnicodeDecodeError as err:
        raise ScoringError(
            f"{path}: not UTF-8 text (found byte 0x{err.object[err.start]:02x}, e.g. a Latin-1 "
            "or Windows-1252 export); re-save the file as UTF-8"
        ) from None
    except (OSError, csv.Error) as err:
        raise ScoringError(f"{path}: not a readable CSV file ({_safe_line(err)})") from None


def _check_columns(path: Path, present: list[str], inputs: _Inputs) -> None:
    missing = [c for c in inputs.columns if c not in set(present)]
    if missing:
        shown = ", ".join(repr(c) for c in missing)
        raise ScoringError(
            f"{path}: column(s) {shown} missing; the model reads them: add them to the file "
            f"(names are case-sensitive)"
        )


def _rechunk(
    batches: Iterator[pa.RecordBatch],
    chunk_rows: int,
    error: Callable[[pa.ArrowException], ScoringError],
) -> Iterator[pa.Table]:
    """Cut a stream of record batches of any size into tables of `chunk_rows` rows."""
    pending: list[pa.RecordBatch] = []
    held = 0
    try:
        for batch in batches:
            pending.append(batch)
            held += batch.num_rows
            while held >= chunk_rows:
                table = pa.Table.from_batches(pending)
                yield table.slice(0, chunk_rows)
                rest = table.slice(chunk_rows)
                pending, held = rest.to_batches(), rest.num_rows
    except pa.ArrowException as err:
        raise error(err) from None
    if held:
        yield pa.Table.from_batches(pending)


def _features(table: pa.Table, inputs: _Inputs, path: Path, *, first_row: int = 1) -> pa.Table:
    """The feature columns, each cast to the type the model's signature declares.

    `first_row` is the file's data row (1-based) of the table's first row, so a cell that
    does not convert is named by column and row. Its value is never shown: a cell holding
    text where a number belongs is often a name or a phone number typed in the wrong place.
    """
    columns = []
    for name, arrow in inputs.features:
        column = table.column(name)
        try:
            column = _cast(column, arrow)
        except pa.ArrowInvalid:
            row = first_row + _first_failure(column, arrow)
            raise ScoringError(
                f"{path}: column {name!r}, row {row}: {_not_a(column, row - first_row, arrow)}; "
                "fix or blank those cells"
            ) from None
        except pa.ArrowException:  # no such cast at all (dates, binary, lists …)
            raise ScoringError(
                f"{path}: column {name!r} holds {column.type} values, but the model needs "
                f"{_plain(arrow)} values: write the column as it was in the training data"
            ) from None
        if pa.types.is_floating(arrow):
            import pyarrow.compute as pc

            infinite = pc.sum(pc.is_inf(column)).as_py() or 0
            if infinite:
                # Training refuses ±inf too: no tree ever split on it, so a score would be
                # the model's answer for its largest bin, not a judgement of the value.
                raise ScoringError(
                    f"{path}: column {name!r} has {infinite:,} infinite values; replace ±inf "
                    "with a number or leave the cell empty (missing)"
                )
        if pa.types.is_integer(arrow) and column.null_count:
            # pandas turns such a column into floats, which the signature (long) refuses.
            raise ScoringError(
                f"{path}: column {name!r} has {column.null_count:,} missing values, but the "
                "model's signature types it as a whole number (long), which cannot be missing: "
                "fill them in, or retrain on data where the column has gaps"
            )
        columns.append(column)
    return pa.table(columns, names=[name for name, _ in inputs.features])


def _cast(column: pa.ChunkedArray, arrow: pa.DataType) -> pa.ChunkedArray:
    if pa.types.is_integer(arrow) and pa.types.is_string(column.type):
        column = column.cast(pa.float64())  # "3.0" is a whole number; "1.5" fails below
    return column.cast(arrow)


def _first_failure(column: pa.ChunkedArray, arrow: pa.DataType) -> int:
    """Position of the first cell `_cast` refuses, in about two casts of the column.

    Arrow's message quotes the cell (that is what it has), never where it is; a cast is
    cell by cell, so halving the range that fails finds the first such cell.
    """
    low, high = 0, len(column)  # column[low:high] holds a cell that fails
    while high - low > 1:
        middle = (low + high) // 2
        try:
            _cast(column.slice(low, middle - low), arrow)
        except pa.ArrowInvalid:
            high = middle
        else:
            low = middle
    return low


def _not_a(column: pa.ChunkedArray, at: int, arrow: pa.DataType) -> str:
    """What the cell at `at` is not, in the words of the type the model needs."""
    if pa.types.is_integer(arrow):
        try:
            column.slice(at, 1).cast(pa.float64())
        except pa.ArrowException:
            return "not a number"
        return "not a whole number"
    if pa.types.is_boolean(arrow):
        return "not true or false"
    return "not a number" if pa.types.is_floating(arrow) else f"not a {_plain(arrow)} value"


# -- writing -------------------------------------------------------------------------------
def _output_table(table: pa.Table, scored: Any, id_column: str | None) -> pa.Table:
    """The id column as read, then every column the model returned, in its order."""
    arrays: dict[str, Any] = {}
    if id_column is not None:
        arrays[id_column] = table.column(id_column)
    for name in scored.columns:
        values = scored[name]
        if values.dtype.kind == "f":
            arrays[str(name)] = pa.array(values.to_numpy(), type=pa.float64())
        else:
            arrays[str(name)] = pa.array(values.astype(object).to_numpy(), type=pa.string())
    return pa.table(arrays)


class _Writer:
    """Appends tables to a Parquet (one row group each) or CSV file."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.schema = schema
        self._writer: Any
        if path.name.lower().endswith(".parquet.partial"):
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(path, schema)
        else:
            import pyarrow.csv as pacsv

            self._writer = pacsv.CSVWriter(path, schema)
        self._open = True

    def write(self, table: pa.Table) -> None:
        self._writer.write_table(table)

    def close(self) -> None:
        if self._open:
            self._open = False
            self._writer.close()
