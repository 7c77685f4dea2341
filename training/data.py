"""Load a table and validate it before anything is trained or logged.

All checks of the data happen here, where it enters (sklearn's `check_consistent_length`
habit): the stages after this trust a `Dataset`. Personal-data columns are never read
from the file at all, so they cannot leak into a param, a tag or an artifact later. The
file itself is read, and its header checked, by `training/reading.py`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from training.reading import DataError, read_table
from training.reading import read_header as _header

__all__ = ["Dataset", "DroppedColumn", "load_dataset", "numeric_batch"]

log = logging.getLogger(__name__)
# A library does not decide where warnings go: without this, logging's last-resort handler
# writes them to stderr, where a later error would no longer be the only line (CLI.md).
log.addHandler(logging.NullHandler())

#: A categorical feature with more levels than this is an identifier, not a characteristic.
MAX_LEVELS = 10_000
#: Share of a string column's values that look like numbers before we call it a numeric
#: column with stray text in it rather than a categorical.
NUMERIC_LOOKING = 0.9


@dataclass(frozen=True)
class DroppedColumn:
    name: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    """Validated model inputs; row order is the file's. Frozen: stages pass it on, never edit."""

    features: pd.DataFrame  # numeric columns float64, categorical columns str (NaN = missing)
    target: NDArray[np.int8]  # 1 = positive_label ("bad" / fraud)
    categorical: tuple[str, ...]
    protected: pd.DataFrame
    ids: pd.Series | None
    time: pd.Series | None
    groups: pd.Series | None
    source: str
    digest: str
    target_name: str
    dropped: tuple[DroppedColumn, ...] = field(default=())
    #: numeric features that were whole numbers in the file (served models type them `long`)
    integer: tuple[str, ...] = field(default=())

    @property
    def n_rows(self) -> int:
        return len(self.target)

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.features.columns)

    @property
    def bad_rate(self) -> float:
        return float(self.target.mean()) if self.n_rows else float("nan")

    def without(self, names: Sequence[str]) -> Dataset:
        """The same rows without the features `names` (a candidate that drops a proxy)."""
        gone = set(names)
        return replace(
            self,
            features=self.features.drop(columns=[n for n in self.feature_names if n in gone]),
            categorical=tuple(c for c in self.categorical if c not in gone),
            integer=tuple(c for c in self.integer if c not in gone),
        )

    def take(self, positions: NDArray[np.intp]) -> Dataset:
        """The rows at `positions`, as a Dataset of its own (indexes reset)."""

        def pick(obj: Any) -> Any:
            return None if obj is None else obj.iloc[positions].reset_index(drop=True)

        return replace(
            self,
            features=pick(self.features),
            target=self.target[positions],
            protected=pick(self.protected),
            ids=pick(self.ids),
            time=pick(self.time),
            groups=pick(self.groups),
        )


# ----------------------------------------------------------------------------- loading


def load_dataset(
    source: Path,
    *,
    target: str,
    positive_label: int | str | bool = 1,
    id_column: str | None = None,
    time_column: str | None = None,
    features: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    categorical: Sequence[str] | None = None,
    protected: Sequence[str] = (),
    pii: Sequence[str] = (),
    group_column: str | None = None,
    monotone: Sequence[str] = (),
    for_training: bool = True,
    identifier_like: Literal["refuse", "drop"] = "refuse",
) -> Dataset:
    """Read `source`, drop PII, validate every rule, and return a `Dataset`.

    With `for_training=False` (re-testing a registered model on a new batch) the features
    are the model's, so none is dropped and the leak check, a training concern, is skipped.

    Constant and all-missing features are dropped with a warning (they carry no signal
    and would only confuse a reviewer); everything else that is wrong is an error. A
    feature that looks like an identifier is refused, or dropped with a warning when
    `identifier_like` is "drop" (`data.identifier_like`; see `_identifier_like`).
    """
    frame = read_table(source, skip=pii)
    where = str(source)
    if frame.shape[1] == 0:
        raise DataError(f"{where}: no columns left to read; check the header row and data.pii")
    if len(frame) == 0:
        raise DataError(
            f"{where}: header only, no data rows; point data.source at a file with data rows"
        )
    # A misspelt pii or exclude name would otherwise leave the real column a feature.
    header = _header(source)
    for key, names in (("data.pii", pii), ("data.exclude", exclude)):
        for column in names:
            if column not in header:
                raise DataError(
                    f"{where}: column {column!r} named by {key} is not in the file"
                    f"{_close(column, header)}; fix {key} or the file's header"
                )

    def need(column: str | None, key: str) -> None:
        if column is not None and column not in frame.columns:
            raise DataError(
                f"{where}: column {column!r} named by {key} is not in the file"
                f"{_close(column, frame.columns)}; fix {key} or the file's header"
            )

    for column in features or ():
        if column in protected or column in pii:
            raise DataError(
                f"{where}: data.features lists {column!r}, a protected/pii column; remove it"
            )
    need(target, "data.target")
    need(id_column, "data.id_column")
    need(time_column, "data.time_column")
    need(group_column, "split.group_column")
    for column in protected:
        need(column, "data.protected")
    for column in features or ():
        need(column, "data.features")
    for column in categorical or ():
        need(column, "data.categorical")

    roles = {target, id_column, time_column, group_column, *protected, *pii, *exclude} - {None}
    chosen = [c for c in frame.columns if c not in roles] if features is None else list(features)
    if not chosen:
        raise DataError(f"{where}: no feature columns left; check data.features and data.exclude")

    y = _binary_target(frame[target], positive_label, where, target)
    ids = _unique_ids(frame[id_column], where, id_column) if id_column else None
    time = _parse_time(frame[time_column], where, time_column) if time_column else None

    declared = set(categorical) if categorical is not None else None
    feats, cats, coded = _typed_features(frame[chosen], declared, where)
    named = _identifier_like(feats, coded, where, identifier_like) if for_training else []
    if named:
        feats = feats.drop(columns=[d.name for d in named])
    feats, dropped = _drop_uninformative(feats, coded) if for_training else (feats, [])
    dropped = [*named, *dropped]
    cats = [c for c in cats if c in feats.columns]
    if feats.shape[1] == 0:
        raise DataError(f"{where}: every feature is constant or all-missing; nothing to learn from")
    for column in monotone:
        if column in cats:
            raise DataError(
                f"{where}: model.monotone names categorical column {column!r}; monotone constraints need a numeric feature: remove it from model.monotone"
            )
        if column not in feats.columns and column not in {d.name for d in dropped}:
            raise DataError(
                f"{where}: model.monotone names {column!r}, which is not a feature{_close(column, feats.columns)}"
            )
    _refuse_infinite(feats, cats, where)
    if for_training:
        _refuse_leaks(feats, coded, y, where, target)

    protected_frame = frame[list(protected)].reset_index(drop=True)
    digest = _digest(frame)
    for d in dropped:
        log.warning("%s: dropped feature %r (%s)", where, d.name, d.reason)
    return Dataset(
        features=feats.reset_index(drop=True),
        target=y,
        categorical=tuple(cats),
        protected=protected_frame,
        ids=None if ids is None else ids.reset_index(drop=True),
        time=None if time is None else time.reset_index(drop=True),
        groups=None if group_column is None else frame[group_column].reset_index(drop=True),
        source=where,
        digest=digest,
        target_name=target,
        dropped=tuple(dropped),
        integer=_integer_columns(frame, [c for c in feats.columns if c not in cats]),
    )


def _close(word: str, choices: Sequence[str] | pd.Index) -> str:
    import difflib

    close = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _binary_target(
    column: pd.Series, positive: int | str | bool, where: str, name: str
) -> NDArray[np.int8]:
    missing = int(column.isna().sum())
    if missing:
        raise DataError(
            f"{where}: target {name!r} has {missing} missing values; drop or label those rows"
        )
    # Plain Python values, so messages show 0 rather than np.int64(0).
    values = pd.Series(pd.unique(column)).tolist()
    if len(values) > 2:
        shown = ", ".join(repr(v) for v in sorted(values, key=str)[:5])
        raise DataError(
            f"{where}: target {name!r} is not binary ({len(values)} distinct values, e.g. {shown}); map it to two classes"
        )
    # Before the positive_label check: with one class, no choice of label would help.
    if len(values) < 2:
        raise DataError(
            f"{where}: target {name!r} has one class only ({values[0]!r}); a model needs both outcomes: check data.target and the extract"
        )
    matches = column == positive
    if not matches.any():
        as_text = column.astype(str) == str(positive)
        if as_text.any():
            matches = as_text
        else:
            shown = ", ".join(repr(v) for v in sorted(values, key=str))
            raise DataError(
                f"{where}: data.positive_label {positive!r} does not occur in target {name!r} (values: {shown}); set data.positive_label"
            )
    return np.asarray(matches.to_numpy(), dtype=np.int8)


def _unique_ids(column: pd.Series, where: str, name: str) -> pd.Series:
    # Missing first: pandas counts repeated missing ids as duplicates of each other.
    if column.isna().any():
        raise DataError(f"{where}: id column {name!r} has missing values; every row needs an id")
    duplicated = column.duplicated(keep=False)
    if duplicated.any():
        first = int(np.flatnonzero(duplicated.to_numpy())[0])
        raise DataError(
            f"{where}: id column {name!r} has {int(column.duplicated().sum())} duplicate values "
            f"(first at data row {first + 1}); ids must be unique: deduplicate the file"
        )
    return column


def _parse_time(column: pd.Series, where: str, name: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(column):
        parsed = column
    else:
        parsed = pd.to_datetime(column, errors="coerce", format="ISO8601")
        lost = _unparsed(column, parsed)
        if lost:
            count, first = lost
            raise DataError(
                f"{where}: time column {name!r} has {count} values that are not ISO dates "
                f"(first at data row {first + 1}); write dates as YYYY-MM-DD"  # never the value
            )
    if parsed.isna().all():
        raise DataError(f"{where}: time column {name!r} is empty")
    if parsed.isna().any():
        # A row without a date cannot be placed before or after an out-of-time cut; left
        # in, it would land in training and could carry the future into the model.
        first = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise DataError(
            f"{where}: time column {name!r} has {int(parsed.isna().sum())} missing dates "
            f"(first at data row {first + 1}); date every row or drop the undated ones"
        )
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def _typed_features(
    frame: pd.DataFrame, declared: set[str] | None, where: str
) -> tuple[pd.DataFrame, list[str], dict[str, NDArray[np.intp]]]:
    """Numeric columns as float64, categorical columns as str with NaN for missing.

    Also each categorical column's level codes (one code per distinct text, -1 for
    missing): the checks after this read those instead of hashing the text again.
    """
    out: dict[str, pd.Series] = {}
    cats: list[str] = []
    coded: dict[str, NDArray[np.intp]] = {}
    for name in frame.columns:
        column = frame[name]
        is_text = not (pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column))
        if pd.api.types.is_datetime64_any_dtype(column):
            raise DataError(
                f"{where}: feature {name!r} is a date; derive numeric features from it or add it to data.exclude"
            )
        if (declared is not None and name in declared) or (declared is None and is_text):
            # Every test below looks at distinct values only, weighted by their counts:
            # text columns have few levels and many rows, and per-row Python is the cost.
            codes, uniques = pd.factorize(column, use_na_sentinel=True)
            levels = np.array([str(v) for v in uniques], dtype=object)
            present = codes >= 0
            values = np.full(len(codes), None, dtype=object)
            values[present] = levels[codes[present]]
            text = pd.Series(values, index=column.index, dtype=object)
            n_levels = len(pd.unique(levels))
            if declared is None:
                counts = np.bincount(codes[present], minlength=len(levels))
                looks_numeric = pd.to_numeric(pd.Series(levels), errors="coerce").notna()
                numeric_share = (
                    counts[looks_numeric.to_numpy()].sum() / counts.sum() if n_levels else 0.0
                )
                if numeric_share >= NUMERIC_LOOKING:  # numbers stored as text: numeric
                    out[name] = _numbers(
                        text, where, name, "clean them or list the column in data.categorical"
                    )
                    continue
            if n_levels > MAX_LEVELS:
                raise DataError(
                    f"{where}: categorical column {name!r} has {n_levels} levels (limit {MAX_LEVELS}); "
                    f"it looks like an identifier: add it to data.exclude or group its levels"
                )
            out[name] = text.astype(object)
            cats.append(name)
            # Distinct values can share a text (1 and "1"); the checks count texts.
            text_codes = pd.factorize(levels)[0] if len(levels) else np.empty(0, np.intp)
            coded[name] = np.where(present, np.append(text_codes, -1)[codes], -1)
        elif is_text:
            raise DataError(
                f"{where}: column {name!r} holds text but is not in data.categorical; add it there or fix the values"
            )
        else:
            out[name] = column.astype("float64")
    return pd.DataFrame(out, index=frame.index), cats, coded


def _numbers(column: pd.Series, where: str, name: str, fix: str) -> pd.Series:
    """`column` as float64, refusing text that is not a number (first bad row named)."""
    numbers = pd.to_numeric(column, errors="coerce")
    lost = _unparsed(column, numbers)
    if lost:
        count, first = lost
        raise DataError(
            f"{where}: numeric column {name!r} has {count} non-numeric values "
            f"(first at data row {first + 1}); {fix}"  # the row, never the value
        )
    return numbers.astype("float64")


def _unparsed(given: pd.Series, parsed: pd.Series) -> tuple[int, int] | None:
    """(how many, position of the first) values present in `given` that parsing lost."""
    bad = parsed.isna().to_numpy() & given.notna().to_numpy()
    if not bad.any():
        return None
    return int(bad.sum()), int(np.flatnonzero(bad)[0])


def numeric_batch(frame: pd.DataFrame, numeric: Sequence[str], where: str) -> pd.DataFrame:
    """A new batch with its `numeric` columns as float64, as training typed them.

    Drift compares a batch nobody has validated: a column of text where the model was
    trained on numbers is refused here, naming the file, column and first bad row,
    rather than failing later inside the comparison.
    """
    out = frame.copy(deep=False)
    for name in numeric:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            raise DataError(
                f"{where}: column {name!r} holds dates, but the model was trained on numbers "
                f"there; pass the column as it was in the training data"
            )
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            out[name] = column.astype("float64")
        else:
            out[name] = _numbers(
                column.astype("object"),
                where,
                name,
                "the model was trained on numbers there: clean them or leave the cells empty",
            )
    return out


def _integer_columns(frame: pd.DataFrame, names: Sequence[str]) -> tuple[str, ...]:
    return tuple(
        n
        for n in names
        if pd.api.types.is_integer_dtype(frame[n]) or pd.api.types.is_bool_dtype(frame[n])
    )


#: A feature with more distinct values than this share of its (non-missing) rows, over at
#: least `ID_MIN_ROWS` rows, is a candidate identifier: a characteristic is shared by many
#: applicants, an identifier by one.
ID_DISTINCT_SHARE = 0.9
ID_MIN_ROWS = 50
#: ... and, when numeric, whole numbers of at least this many digits (a phone, account or
#: national number; registry/pii_scan.py searches numbers from this length on as well).
#: A real income or amount is not written with eight digits, a count never.
ID_DIGITS = 8


def _identifier_like(
    frame: pd.DataFrame, coded: dict[str, NDArray[np.intp]], where: str, action: str
) -> list[DroppedColumn]:
    """Features that look like identifiers: refused (DataError), or returned to be dropped.

    Nearly one distinct value per row, and either text (a name, an e-mail, an id) or whole
    numbers of `ID_DIGITS` digits or more (a phone or account number re-encoded as a
    number, which the PII scan would otherwise meet in the model's own files). A
    continuous float — an income, a ratio — is never one: it is not made of whole numbers
    that long. The message counts values; it never shows one.
    """
    found: list[DroppedColumn] = []
    for name in frame.columns:
        codes = coded.get(name)
        if codes is not None:
            known = int(np.count_nonzero(codes >= 0))
            distinct = int(codes.max()) + 1 if known else 0  # every code is a level some row has
            kind = "text values"
        else:
            values = frame[name].to_numpy(dtype=np.float64)
            values = values[~np.isnan(values)]
            known = values.size
            if known < ID_MIN_ROWS or not np.all(np.isfinite(values)):
                continue
            magnitude = np.abs(values)
            if np.median(magnitude) < 10 ** (ID_DIGITS - 1) or not np.all(
                values == np.floor(values)
            ):
                continue
            distinct = int(np.unique(values).size)
            kind = f"whole numbers of {ID_DIGITS}+ digits"
        if known < ID_MIN_ROWS or distinct <= ID_DISTINCT_SHARE * known:
            continue
        reason = f"looks like an identifier: {distinct:,} distinct {kind} in {known:,} rows"
        if action != "drop":
            raise DataError(
                f"{where}: feature {name!r} {reason}; list it in data.pii (personal data) or "
                f"data.exclude, or set data.identifier_like: drop to train without it"
            )
        found.append(DroppedColumn(name, reason))
    return found


def _drop_uninformative(
    frame: pd.DataFrame, coded: dict[str, NDArray[np.intp]]
) -> tuple[pd.DataFrame, list[DroppedColumn]]:
    """All-missing and constant features (with no missing values), found without hashing:
    categorical columns by their level codes, numeric ones by min and max."""
    dropped: list[DroppedColumn] = []
    for name in frame.columns:
        codes = coded.get(name)
        if codes is not None:
            present = codes >= 0
            if not present.any():
                dropped.append(DroppedColumn(name, "all values missing"))
            elif present.all() and codes.min() == codes.max():
                dropped.append(DroppedColumn(name, "constant"))
            continue
        values = frame[name].to_numpy(dtype=np.float64)
        present = ~np.isnan(values)
        if not present.any():
            dropped.append(DroppedColumn(name, "all values missing"))
        elif present.all() and values.min() == values.max():
            dropped.append(DroppedColumn(name, "constant"))
    return frame.drop(columns=[d.name for d in dropped]), dropped


def _refuse_infinite(frame: pd.DataFrame, cats: list[str], where: str) -> None:
    for name in frame.columns:
        if name in cats:
            continue
        values = frame[name].to_numpy()
        infinite = np.isinf(values)
        if infinite.any():
            raise DataError(
                f"{where}: feature {name!r} has {int(infinite.sum())} infinite values; "
                f"replace ±inf with a number or leave the cell empty (missing)"
            )


def _refuse_leaks(
    frame: pd.DataFrame,
    coded: dict[str, NDArray[np.intp]],
    y: NDArray[np.int8],
    where: str,
    target: str,
) -> None:
    """A feature that alone separates the classes perfectly is the target under another name.

    `coded`: the level codes of the categorical columns (`_typed_features`).
    """
    for name in frame.columns:
        column = frame[name]
        codes = coded.get(name)
        known = codes >= 0 if codes is not None else ~np.isnan(column.to_numpy(np.float64))
        if known.mean() < 0.9:
            continue
        yk = y[known]
        if yk.min() == yk.max():
            continue
        if codes is not None:
            levels = int(codes.max()) + 1  # every code stands for a level some row has
            # Rows per (level, class): a level is pure when only one class has rows.
            counts = np.bincount(codes[known] * 2 + yk, minlength=2 * levels).reshape(-1, 2)
            pure = bool(((counts > 0).sum(axis=1) == 1).all())
            leak = pure and levels <= max(2, known.sum() // 20)
        else:
            xk = column.to_numpy()[known]
            bad, good = xk[yk == 1], xk[yk == 0]
            leak = bool(bad.min() > good.max() or bad.max() < good.min())
        if leak:
            raise DataError(
                f"{where}: feature {name!r} separates {target!r} perfectly on its own, so it is the "
                f"target under another name (a leak); add it to data.exclude"
            )


def _digest(frame: pd.DataFrame) -> str:
    """Content hash of what was read (PII never read), stable across file formats."""
    hasher = hashlib.sha256()
    hasher.update("\x1f".join(map(str, frame.columns)).encode())
    hasher.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return hasher.hexdigest()[:16]
