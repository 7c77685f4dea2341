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

Numbers are also searched by their digits alone, since a file that re-encodes a value as a
number keeps nothing else of it: every non-digit stripped ("+44 7779 090102" is also
"447779090102"), the digits after an international prefix written apart ("7779090102",
the national number as an integer column holds it) and both without leading zeros (an
integer has none); each form again needs `MIN_DIGITS` digits. In the text, a number in
exponent notation ("7.779090102e+09", as LightGBM or JSON may write it) is read as the
whole number it is, and a digit token is also tried without its leading zeros.

A PII value that equals a level of a categorical feature of the run (a name that is also
a `purpose`) is not searched: the level is in the model's files because it is a level,
not because that person's record leaked. It is counted in `PiiScan.collisions`, by PII
column and feature, never shown. A feature whose levels are mostly values of one PII
column (`COPY_SHARE`) is a copy of it, not a collision, and stays searched.

The search is a set lookup per token window, so its cost grows with the text read, not
with the number of values: see `PiiScan.seconds`.

The matching rules and the index are `registry/pii_index.py`; `purge_run`
(`registry/pii_purge.py`) removes what a scan with hits read.
"""

from __future__ import annotations

import html
import json
import re
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from creditgov.errors import CreditgovError
from registry.pii_index import PiiCollision, PiiIndex

if TYPE_CHECKING:
    from registry.pii_purge import PiiPurge

__all__ = [
    "PiiCollisionWarning",
    "PiiHit",
    "PiiLeak",
    "PiiScan",
    "read_pii_values",
    "readable_text",
    "scan_run",
]

#: Image files are not text; their bytes are compressed pixels, not strings.
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif")

_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


@dataclass(frozen=True)
class PiiHit:
    """Values of `column` were found in `place` (`count` distinct values).

    `owner` says what holds the place, for `purge_run`: ("run", run id), ("logged_model",
    model id), ("version", "description"), ("version_tag", key), ("registered_model",
    "description") or ("registered_model_tag", key).
    """

    place: str
    column: str
    count: int
    owner: tuple[str, str] = ("", "")


class PiiCollisionWarning(UserWarning):
    """A PII value equals a feature's level (`PiiCollision`); the run is not failed for it."""


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
    collisions: tuple[PiiCollision, ...] = ()  # values not searched: a feature's levels
    run_ids: tuple[str, ...] = ()  # the run and its trials, as read
    model_ids: tuple[str, ...] = ()  # the run's logged models, as read
    model_name: str | None = None
    version: str | None = None

    @property
    def clean(self) -> bool:
        return not self.hits

    def describe(self) -> str:
        """One line: where values of which column were found; never a value."""
        if self.clean:
            line = (
                f"no personal data: {self.values:,} values of {', '.join(self.columns)} "
                f"searched in {len(self.places)} places"
            )
            if self.collisions:
                pairs = ", ".join(f"{c.column!r} with {c.feature!r}" for c in self.collisions)
                n = sum(c.count for c in self.collisions)
                line += f"; {n} equal to a feature's level not searched ({pairs})"
            return line
        by_column: dict[str, list[str]] = {}
        for hit in self.hits:
            by_column.setdefault(hit.column, []).append(hit.place)
        parts = [f"data.pii column {c!r} in {', '.join(p)}" for c, p in by_column.items()]
        return f"personal data found in run {self.run_id}: values of " + "; ".join(parts)


class PiiLeak(CreditgovError):
    """A scan found personal data; the message names the places, never a value."""

    def __init__(self, scan: PiiScan, purge: PiiPurge | None = None) -> None:
        self.scan = scan
        self.purge = purge
        fix = (
            "Find the column or setting that copies the personal data (a renamed copy of a "
            "data.pii column belongs in data.pii or data.exclude)"
        )
        if purge is None:
            super().__init__(
                f"{scan.describe()}. The run was marked FAILED and its model version deleted. "
                f"{fix}, then delete run {scan.run_id} and run `mlflow gc` so the copies are "
                f"purged."
            )
        else:
            super().__init__(
                f"{scan.describe()}. The run was marked FAILED and its model version deleted; "
                f"{purge.describe()}. {fix} and train again."
            )


# ----------------------------------------------------------------------------- values


def read_pii_values(source: Path, columns: Sequence[str]) -> dict[str, list[Any]]:
    """The distinct values of the PII columns; no other column is read."""
    return _read_values(source, columns, ())[0]


def _read_values(
    source: Path, pii: Sequence[str], features: Sequence[str]
) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
    """The PII columns' distinct values and the `features`' levels (as the job types them:
    text), in one read of the data file; no other column is read."""
    from training.reading import read_table

    wanted = [*pii, *(f for f in features if f not in pii)]
    frame: pd.DataFrame = read_table(Path(source), columns=wanted)
    values = {c: frame[c].dropna().unique().tolist() for c in pii if c in frame.columns}
    levels = {
        f: [str(v) for v in frame[f].dropna().unique()]
        for f in features
        if f in frame.columns and f not in pii
    }
    return values, levels


def _categorical_inputs(run: Any) -> list[str]:
    """The categorical features of a job's run: the text columns of its dataset input."""
    names: list[str] = []
    inputs = getattr(run, "inputs", None)
    for item in getattr(inputs, "dataset_inputs", None) or []:
        try:
            schema = json.loads(item.dataset.schema or "{}")
        except (TypeError, ValueError):
            continue
        for spec in schema.get("mlflow_colspec", []) if isinstance(schema, dict) else []:
            if isinstance(spec, dict) and spec.get("type") == "string" and spec.get("name"):
                names.append(str(spec["name"]))
    return list(dict.fromkeys(names))


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

    def text(self, place: str, text: str, owner: tuple[str, str] = ("", "")) -> None:
        self.places.append(place)
        self.bytes_read += len(text)
        for column, count in self.index.find(text).items():
            self.hits.append(PiiHit(place, column, count, owner))

    def folder(self, place: str, folder: Path, owner: tuple[str, str]) -> None:
        for path in _files(folder):
            name = f"{place} {path.relative_to(folder).as_posix()}"
            data = path.read_bytes()
            if data.startswith(IMAGE_MAGIC) or path.suffix.lower() in IMAGE_SUFFIXES:
                self.skipped.append(name)
                continue
            self.text(name, readable_text(data, path.suffix.lower()), owner)

    def artifacts(self, place: str, owner: tuple[str, str], **where: str) -> None:
        """Every file under `artifact_uri=...` or the root of `run_id=...`."""
        import mlflow

        target = self.tmp / f"a{len(self.places)}"
        try:
            local = Path(mlflow.artifacts.download_artifacts(**where, dst_path=str(target)))
        except (MlflowException, OSError):
            return  # nothing logged there
        if local.is_dir():
            self.folder(place, local, owner)
        else:
            self.folder(place, local.parent, owner)


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
    categorical: Sequence[str] | None = None,
) -> PiiScan:
    """Search run `run_id`, its trials, its logged models and the registered version.

    `source` is the job's data file; only its `pii` columns and the levels of the
    `categorical` features are read (None: the text columns of the run's dataset input,
    which are the job's categorical features).
    """
    started = time.perf_counter()
    run = client.get_run(run_id)
    features = _categorical_inputs(run) if categorical is None else list(categorical)
    values, levels = _read_values(source, pii, features)
    index = PiiIndex(values, levels)
    experiment = run.info.experiment_id
    model_ids: list[str] = []
    with tempfile.TemporaryDirectory(prefix="creditgov-pii-") as tmp:
        reader = _Reader(index, Path(tmp))
        runs = [run, *_children(client, experiment, run_id)]
        for each in runs:
            owner = ("run", each.info.run_id)
            prefix = "run" if each.info.run_id == run_id else f"trial run {each.info.run_name}"
            reader.text(f"{prefix} name", each.info.run_name or "", owner)
            for place, text in (*_entity_texts(prefix, each), *_dataset_texts(prefix, each)):
                reader.text(place, text, owner)
            reader.artifacts(f"{prefix} artifact", owner, run_id=each.info.run_id)
        logged = client.search_logged_models(
            experiment_ids=[experiment], filter_string=f"source_run_id = '{run_id}'"
        )
        for model in logged:
            owner = ("logged_model", model.model_id)
            model_ids.append(model.model_id)
            prefix = f"logged model {model.name!r}"
            reader.text(f"{prefix} name", model.name, owner)
            for place, text in _entity_texts(prefix, model):
                reader.text(place, text, owner)
            reader.artifacts(f"{prefix} file", owner, artifact_uri=f"models:/{model.model_id}")
        if model_name is not None:
            registered = client.get_registered_model(model_name)
            reader.text(
                "registered model description",
                registered.description or "",
                ("registered_model", "description"),
            )
            for key, value in registered.tags.items():
                reader.text(
                    f"registered model tag {key!r}",
                    f"{key}\n{value}",
                    ("registered_model_tag", key),
                )
            if version is not None:
                mv = client.get_model_version(model_name, version)
                prefix = f"model version {model_name}/{version}"
                reader.text(
                    f"{prefix} description", mv.description or "", ("version", "description")
                )
                for key, value in mv.tags.items():
                    reader.text(f"{prefix} tag {key!r}", f"{key}\n{value}", ("version_tag", key))
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
        collisions=index.collisions,
        run_ids=tuple(r.info.run_id for r in runs),
        model_ids=tuple(model_ids),
        model_name=model_name,
        version=version,
    )
