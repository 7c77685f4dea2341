"""Look for personal data in everything a run left in MLflow, and say where it is.

The job never reads the `data.pii` columns (training/data.py skips them at load), so
their values should appear nowhere. This module checks that promise from the outside:
it reads the PII values from the data file (only those columns) and searches every
param, tag and metric name of the run and its tuning trials, its dataset inputs, every
artifact of the run and of its logged models (reports, JSON, CSV, Markdown, MLmodel,
input example, state JSON, LightGBM text model, any other text-like file) and the
registered version's and model's tags and descriptions. A result names each place a
value was found and the column it belongs to — never the value itself, which would
copy the leak into the message.

Matching is on whole values, token by token: text and values are lower-cased and cut
into runs of letters and digits, and a value matches where its tokens appear in order
as whole tokens ("Mark N. Phillips" matches "mark n phillips", "MARK N PHILLIPS" or
"Mark N Phillips" but not "Marks"). This catches the usual re-encodings of a value — CSV
quoting, JSON, HTML (entities are decoded first), a phone written with or without
spaces — while a value's fragment (the first name "Mark", the "44" of a phone number)
never matches on its own: a fragment of a name is not the name, and would be found in
every report. Values too short to be told apart from ordinary text are not searched and
are counted in `too_short`: fewer than `MIN_CHARS` letters and digits, or, when the
value is all digits, fewer than `MIN_DIGITS` (a six-digit number is also a count, a
seed or a threshold; a phone number or an account number is longer).

The search is a set lookup per token window, so its cost grows with the text read, not
with the number of values: see `PiiScan.seconds`.
"""

from __future__ import annotations

import html
import re
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from creditgov.errors import CreditgovError

__all__ = [
    "MIN_CHARS",
    "MIN_DIGITS",
    "PiiHit",
    "PiiIndex",
    "PiiLeak",
    "PiiScan",
    "read_pii_values",
    "readable_text",
    "scan_run",
]

#: A value needs this many letters and digits to be searched (see the module docstring).
MIN_CHARS = 6
#: An all-digit value needs this many digits.
MIN_DIGITS = 8
#: Image files are not text; their bytes are compressed pixels, not strings.
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")

_TOKEN = re.compile(r"[^\W_]+")
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


@dataclass(frozen=True)
class PiiHit:
    """Values of `column` were found in `place` (`count` distinct values)."""

    place: str
    column: str
    count: int


@dataclass(frozen=True)
class PiiScan:
    run_id: str
    columns: tuple[str, ...]
    values: int  # distinct values searched for
    too_short: int  # distinct values not searched (see MIN_CHARS / MIN_DIGITS)
    places: tuple[str, ...]  # every param, tag, dataset and file read
    bytes_read: int
    skipped: tuple[str, ...]  # image files, not read
    hits: tuple[PiiHit, ...]
    seconds: float

    @property
    def clean(self) -> bool:
        return not self.hits

    def describe(self) -> str:
        """One line: where values of which column were found; never a value."""
        if self.clean:
            return (
                f"no personal data: {self.values:,} values of {', '.join(self.columns)} "
                f"searched in {len(self.places)} places"
            )
        by_column: dict[str, list[str]] = {}
        for hit in self.hits:
            by_column.setdefault(hit.column, []).append(hit.place)
        parts = [f"data.pii column {c!r} in {', '.join(p)}" for c, p in by_column.items()]
        return f"personal data found in run {self.run_id}: values of " + "; ".join(parts)


class PiiLeak(CreditgovError):
    """A scan found personal data; the message names the places, never a value."""

    def __init__(self, scan: PiiScan) -> None:
        self.scan = scan
        super().__init__(
            f"{scan.describe()}. The run was marked FAILED and its model version deleted. "
            f"Find the column or setting that copies the personal data (a renamed copy of a "
            f"data.pii column belongs in data.pii or data.exclude), then delete run "
            f"{scan.run_id} and run `mlflow gc` so the copies are purged."
        )


# ----------------------------------------------------------------------------- values


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _as_text(item: Any) -> str | None:
    """A value as the text it would be written as; None for a missing value."""
    if item is None or (isinstance(item, float) and item != item):
        return None
    if isinstance(item, float) and item.is_integer():
        return str(int(item))  # an id read as 12345678.0 is written 12345678
    return str(item)


def _spaced_forms(items: Iterable[Any]) -> pa.LargeStringArray:
    """Each value's tokens joined by one space ("" when it has none), in the given order.

    ASCII values (nearly all) go through pyarrow's string kernels: lower-cased, every run
    of characters other than a-z and 0-9 made one space, trimmed — exactly what `_tokens`
    finds in ASCII text. Other values take `_tokens` itself, so Unicode letters and digits
    are tokenised as they will be when the text is searched.
    """
    listed = list(items)
    if not all(type(t) is str for t in listed):
        listed = [t for t in map(_as_text, listed) if t is not None]
    array = pa.array(listed, type=pa.large_string())
    spaced = pc.utf8_trim(
        pc.replace_substring_regex(pc.ascii_lower(array), r"[^a-z0-9]+", " "), " "
    )
    ascii_ = pc.string_is_ascii(array).to_numpy(zero_copy_only=False)
    if ascii_.all():
        return spaced
    texts = spaced.to_numpy(zero_copy_only=False).tolist()
    for i in np.flatnonzero(~ascii_):
        texts[i] = " ".join(_tokens(listed[i]))
    return pa.array(texts, type=pa.large_string())


class PiiIndex:
    """The PII values, each as its tokens joined by one space (and run together).

    `find(text)` costs one set intersection per distinct token count (1 for ids, 3 for
    "First M. Last"), whatever the number of values.

    Building it is vectorised: a 200k-row table has about half a million distinct PII
    values, and a Python loop per value took 4 s, a fifth of the job. Where several values
    share a searched form, the first one (in column order, then in value order) names it,
    as a loop over the values would.
    """

    def __init__(self, values: Mapping[str, Iterable[Any]]) -> None:
        self.columns = list(values)
        parts = [_spaced_forms(items) for items in values.values()]
        keys = pa.concat_arrays(parts) if parts else pa.array([], type=pa.large_string())
        column = np.repeat(np.arange(len(parts)), [len(part) for part in parts])
        joined = pc.replace_substring(keys, " ", "")
        length = pc.utf8_length(joined).to_numpy(zero_copy_only=False)
        digits = pc.utf8_is_digit(joined).to_numpy(zero_copy_only=False)
        searchable = np.where(digits, length >= MIN_DIGITS, length >= MIN_CHARS)
        self.too_short = int(pc.count_distinct(keys.filter(pa.array(~searchable))).as_py())
        kept = np.flatnonzero(searchable)
        multi = kept[pc.count_substring(keys.take(kept), " ").to_numpy() > 0]
        # Each value's searched forms in the order a loop over the values meets them: its
        # spaced form, then (several tokens only) its tokens run together, "+44 7700
        # 900123" written as "447700900123".
        order = np.argsort(np.concatenate([2 * kept, 2 * multi + 1]), kind="stable")
        owner = np.concatenate([kept, multi])[order]  # the value each form belongs to
        is_key = np.concatenate([np.ones(kept.size, bool), np.zeros(multi.size, bool)])[order]
        forms = pa.concat_arrays([keys.take(kept), joined.take(multi)]).take(order)
        # to_numpy, not to_pylist: it makes the Python strings in C++, several times faster.
        # Built from the back, so where values share a form the first one keeps it. One
        # dict serves every token count: a window of n tokens joined by spaces can only
        # equal a form of n tokens.
        form_list = forms.to_numpy(zero_copy_only=False).tolist()
        self._position: dict[str, int] = dict(
            zip(reversed(form_list), range(len(form_list) - 1, -1, -1), strict=True)
        )
        first = np.fromiter(self._position.values(), dtype=np.intp, count=len(self._position))
        self.count = int(is_key[first].sum())  # distinct values searched for
        self._owner = owner
        self._column = column
        n_tokens = pc.count_substring(forms, " ").to_numpy(zero_copy_only=False) + 1
        self.lengths = sorted(int(n) for n in np.unique(n_tokens))

    def find(self, text: str) -> dict[str, int]:
        """column -> number of distinct values of it that occur in `text`."""
        if not self._position or not text:
            return {}
        tokens = _tokens(text)
        found: set[str] = set()
        for n in self.lengths:
            if n == 1:
                found |= self._position.keys() & set(tokens)
            elif len(tokens) >= n:
                windows = {" ".join(w) for w in zip(*(tokens[i:] for i in range(n)), strict=False)}
                found |= self._position.keys() & windows
        owners = {int(self._owner[self._position[form]]) for form in found}  # both spellings once
        counts: dict[str, int] = {}
        for value in owners:
            column = self.columns[int(self._column[value])]
            counts[column] = counts.get(column, 0) + 1
        return counts


def read_pii_values(source: Path, columns: Sequence[str]) -> dict[str, list[Any]]:
    """The distinct values of the PII columns; no other column is read."""
    from training.data import read_table

    frame: pd.DataFrame = read_table(Path(source), columns=list(columns))
    return {c: frame[c].dropna().unique().tolist() for c in columns if c in frame.columns}


# ----------------------------------------------------------------------------- places


def readable_text(data: bytes, suffix: str) -> str:
    """A file's text with JSON \\u escapes and HTML entities decoded, as a reader sees it."""
    text = data.decode("utf-8", errors="replace")
    if "\\u" in text:  # json.dumps writes non-ASCII letters as \u00eb
        text = _JSON_ESCAPE.sub(lambda m: chr(int(m[1], 16)), text)
    if suffix in {".html", ".htm", ".xml", ".svg"} or "&#" in text or "&amp;" in text:
        text = html.unescape(text)
    return text


def _files(folder: Path) -> Iterator[Path]:
    yield from sorted(p for p in folder.rglob("*") if p.is_file())


def _entity_texts(prefix: str, entity: Any) -> Iterator[tuple[str, str]]:
    """Params, tags and metric names of a run or logged model, as (place, text)."""
    data = getattr(entity, "data", entity)
    for key, value in (getattr(data, "params", None) or {}).items():
        yield f"{prefix} param {key!r}", f"{key}\n{value}"
    for key, value in (getattr(data, "tags", None) or {}).items():
        yield f"{prefix} tag {key!r}", f"{key}\n{value}"
    metrics = getattr(data, "metrics", None) or {}
    names = list(metrics) if isinstance(metrics, Mapping) else [m.key for m in metrics]
    if names:
        yield f"{prefix} metric names", "\n".join(names)


def _dataset_texts(prefix: str, run: Any) -> Iterator[tuple[str, str]]:
    inputs = getattr(run, "inputs", None)
    for item in getattr(inputs, "dataset_inputs", None) or []:
        ds = item.dataset
        fields = [ds.name, ds.digest, ds.source_type, ds.source, ds.schema or "", ds.profile or ""]
        fields += [f"{t.key}\n{t.value}" for t in item.tags or []]
        yield f"{prefix} dataset input {ds.name!r}", "\n".join(map(str, fields))


class _Reader:
    """Downloads and reads places, counting what it read and what it skipped."""

    def __init__(self, index: PiiIndex, tmp: Path) -> None:
        self.index = index
        self.tmp = tmp
        self.places: list[str] = []
        self.bytes_read = 0
        self.skipped: list[str] = []
        self.hits: list[PiiHit] = []

    def text(self, place: str, text: str) -> None:
        self.places.append(place)
        self.bytes_read += len(text)
        for column, count in self.index.find(text).items():
            self.hits.append(PiiHit(place, column, count))

    def folder(self, place: str, folder: Path) -> None:
        for path in _files(folder):
            name = f"{place} {path.relative_to(folder).as_posix()}"
            data = path.read_bytes()
            if data.startswith(IMAGE_MAGIC) or path.suffix.lower() in IMAGE_SUFFIXES:
                self.skipped.append(name)
                continue
            self.text(name, readable_text(data, path.suffix.lower()))

    def artifacts(self, place: str, **where: str) -> None:
        """Every file under `artifact_uri=...` or the root of `run_id=...`."""
        import mlflow

        target = self.tmp / f"a{len(self.places)}"
        try:
            local = Path(mlflow.artifacts.download_artifacts(**where, dst_path=str(target)))
        except (MlflowException, OSError):
            return  # nothing logged there
        if local.is_dir():
            self.folder(place, local)
        else:
            self.folder(place, local.parent)


def _children(client: MlflowClient, experiment: str, run_id: str) -> Iterator[Any]:
    """Every child run (tuning trial), page by page: a study may have thousands."""
    token = None
    while True:
        page = client.search_runs(
            [experiment], f"tags.mlflow.parentRunId = '{run_id}'", page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


def scan_run(
    client: MlflowClient,
    run_id: str,
    *,
    source: Path,
    pii: Sequence[str],
    model_name: str | None = None,
    version: str | None = None,
) -> PiiScan:
    """Search run `run_id`, its trials, its logged models and the registered version.

    `source` is the job's data file; only its `pii` columns are read.
    """
    started = time.perf_counter()
    index = PiiIndex(read_pii_values(source, pii))
    run = client.get_run(run_id)
    experiment = run.info.experiment_id
    with tempfile.TemporaryDirectory(prefix="creditgov-pii-") as tmp:
        reader = _Reader(index, Path(tmp))
        runs = [run, *_children(client, experiment, run_id)]
        for each in runs:
            prefix = "run" if each.info.run_id == run_id else f"trial run {each.info.run_name}"
            reader.text(f"{prefix} name", each.info.run_name or "")
            for place, text in (*_entity_texts(prefix, each), *_dataset_texts(prefix, each)):
                reader.text(place, text)
            reader.artifacts(f"{prefix} artifact", run_id=each.info.run_id)
        logged = client.search_logged_models(
            experiment_ids=[experiment], filter_string=f"source_run_id = '{run_id}'"
        )
        for model in logged:
            prefix = f"logged model {model.name!r}"
            reader.text(f"{prefix} name", model.name)
            for place, text in _entity_texts(prefix, model):
                reader.text(place, text)
            reader.artifacts(f"{prefix} file", artifact_uri=f"models:/{model.model_id}")
        if model_name is not None:
            registered = client.get_registered_model(model_name)
            reader.text("registered model description", registered.description or "")
            for key, value in registered.tags.items():
                reader.text(f"registered model tag {key!r}", f"{key}\n{value}")
            if version is not None:
                mv = client.get_model_version(model_name, version)
                prefix = f"model version {model_name}/{version}"
                reader.text(f"{prefix} description", mv.description or "")
                for key, value in mv.tags.items():
                    reader.text(f"{prefix} tag {key!r}", f"{key}\n{value}")
    return PiiScan(
        run_id=run_id,
        columns=tuple(pii),
        values=index.count,
        too_short=index.too_short,
        places=tuple(reader.places),
        bytes_read=reader.bytes_read,
        skipped=tuple(reader.skipped),
        hits=tuple(reader.hits),
        seconds=round(time.perf_counter() - started, 3),
    )
