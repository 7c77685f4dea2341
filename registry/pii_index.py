"""How a PII value is recognised in text: its searched forms, and one index over them all.

The end-of-job scan (`registry/pii_scan.py`) asks one question of every text it reads:
which PII values appear in it? This module holds the answer's rules and the index that
applies them fast. Matching is on whole values, token by token: text and values are
lower-cased and cut into runs of letters and digits, and a value matches where its tokens
appear in order as whole tokens, so a value's fragment (the first name "Mark", the "44"
of a phone) never matches on its own. Values shorter than `MIN_CHARS` letters and digits
(`MIN_DIGITS` when all digits) are not searched. Numbers are also searched by their digits
alone (every non-digit stripped, the national number after an international prefix, and
both without leading zeros), and a number in exponent notation in the text is read as the
whole number it is. A value equal to a categorical feature's level is a collision, not
searched, unless the feature is a copy of the value's column (`COPY_SHARE`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["COPY_SHARE", "MIN_CHARS", "MIN_COPY_LEVELS", "MIN_DIGITS", "PiiCollision", "PiiIndex"]

#: A value needs this many letters and digits to be searched (see the module docstring).
MIN_CHARS = 6
#: An all-digit value (or a value's digit-only form) needs this many digits.
MIN_DIGITS = 8
#: A feature with at least `MIN_COPY_LEVELS` levels, more than this share of them values
#: of one PII column, is that column under another name: its values stay searched.
COPY_SHARE = 0.5
MIN_COPY_LEVELS = 3

_TOKEN = re.compile(r"[^\W_]+")
#: A number in exponent notation, not part of a longer token: 7.779090102e+09, 1E10.
_EXPONENT = re.compile(r"(?<![\w.])(\d+)(?:\.(\d*))?[eE]([-+]?\d{1,3})(?![\w.])")
#: Sub-forms of one value, in the order a loop over its forms meets them (`PiiIndex`).
_FORMS = range(6)
_KEY, _JOINED, _DIGITS, _DIGITS_NZ, _NATIONAL, _NATIONAL_NZ = _FORMS


@dataclass(frozen=True)
class PiiCollision:
    """`count` distinct values of PII column `column` equal a level of feature `feature`."""

    column: str
    feature: str
    count: int

    def describe(self) -> str:
        """One line naming the column and the feature; never a value."""
        values = "value equals" if self.count == 1 else "values equal"
        return (
            f"data.pii column {self.column!r}: {self.count} {values} a level of feature "
            f"{self.feature!r}; not searched for, as a level is no leak of a person "
            f"(a collision)"
        )


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def _as_text(item: Any) -> str | None:
    """A value as the text it would be written as; None for a missing value."""
    if item is None or (isinstance(item, float) and item != item):
        return None
    if isinstance(item, float) and item.is_integer():
        return str(int(item))  # an id read as 12345678.0 is written 12345678
    return str(item)


def _texts(items: Iterable[Any]) -> list[str]:
    listed = list(items)
    if all(type(t) is str for t in listed):
        return listed
    return [t for t in map(_as_text, listed) if t is not None]


def _spaced_forms(listed: list[str], array: pa.Array | None = None) -> pa.LargeStringArray:
    """Each value's tokens joined by one space ("" when it has none), in the given order.

    ASCII values (nearly all) go through pyarrow's string kernels: lower-cased, every run
    of characters other than a-z and 0-9 made one space, trimmed — exactly what `_tokens`
    finds in ASCII text. Other values take `_tokens` itself, so Unicode letters and digits
    are tokenised as they will be when the text is searched.
    """
    if array is None:
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


def _whole_number(match: re.Match[str]) -> str:
    """An exponent-notation number as the whole number it is; itself when it is none."""
    whole, fraction, exponent = match[1], match[2] or "", int(match[3])
    digits = whole + fraction
    point = len(whole) + exponent  # digits before the decimal point
    if point < len(digits.rstrip("0")) or point > 40:
        return match[0]
    return (digits + "0" * (point - len(digits)))[:point].lstrip("0") or "0"


def _unpadded(tokens: Iterable[str]) -> set[str]:
    """Digit tokens written with leading zeros, without them (07779090102 -> 7779090102)."""
    return {t.lstrip("0") for t in tokens if len(t) > 1 and t[0] == "0" and t.isdigit()} - {""}


class PiiIndex:
    """The PII values, each as its tokens joined by one space (and run together, and as
    digits alone: see the module docstring).

    `find(text)` costs one set intersection per distinct token count (1 for ids, 3 for
    "First M. Last"), whatever the number of values.

    Building it is vectorised: a 200k-row table has about half a million distinct PII
    values, and a Python loop per value took 4 s, a fifth of the job. Where several values
    share a searched form, the first one (in column order, then in value order) names it,
    as a loop over the values would.

    `levels` (feature -> its levels) are the categorical features' levels: a value equal to
    one is a collision, not searched (`collisions`), unless the feature is a copy of the
    value's column (`COPY_SHARE`).
    """

    def __init__(
        self,
        values: Mapping[str, Iterable[Any]],
        levels: Mapping[str, Iterable[Any]] | None = None,
    ) -> None:
        self.columns = list(values)
        texts = [_texts(items) for items in values.values()]
        arrays = [pa.array(listed, type=pa.large_string()) for listed in texts]
        parts = [_spaced_forms(t, a) for t, a in zip(texts, arrays, strict=True)]
        keys = pa.concat_arrays(parts) if parts else pa.array([], type=pa.large_string())
        raw = pa.concat_arrays(arrays) if arrays else keys
        column = np.repeat(np.arange(len(parts)), [len(part) for part in parts])
        joined = pc.replace_substring(keys, " ", "")
        length = pc.utf8_length(joined).to_numpy(zero_copy_only=False)
        digits = pc.utf8_is_digit(joined).to_numpy(zero_copy_only=False)
        searchable = np.where(digits, length >= MIN_DIGITS, length >= MIN_CHARS)
        self.too_short = int(pc.count_distinct(keys.filter(pa.array(~searchable))).as_py())
        collided, self.collisions = self._collisions(keys, column, searchable, levels or {})
        kept = np.flatnonzero(searchable & ~collided)
        kept_keys, kept_joined = keys.take(kept), joined.take(kept)
        spaces = pc.count_substring(kept_keys, " ").to_numpy(zero_copy_only=False)
        # Each value's searched forms, in the order a loop over the values meets them: its
        # spaced form; (several tokens only) its tokens run together, "+44 7700 900123"
        # written as "447700900123"; its digits alone, then without leading zeros; and for
        # a "+CC ..." value the digits after the country code, then without leading zeros.
        # A form equal to one before it adds nothing and is left out (the digits of an
        # all-digit value are its tokens run together); string kernels run on the values
        # a form can exist for only, since regular expressions cost most of the build.
        multi = np.flatnonzero(spaces > 0)
        candidates: list[tuple[int, np.ndarray, pa.Array]] = [
            (_KEY, np.arange(kept.size), kept_keys),
            (_JOINED, multi, kept_joined.take(multi)),
        ]
        alpha = pc.utf8_is_alpha(kept_joined).to_numpy(zero_copy_only=False)
        mixed = np.flatnonzero(~digits[kept] & ~alpha)  # letters and digits: "acc 0012345678"
        mixed_digits = pc.replace_substring_regex(kept_joined.take(mixed), r"[^0-9]+", "")
        candidates.append((_DIGITS, mixed, mixed_digits))
        numeric = np.flatnonzero(digits[kept])
        candidates += self._unpadded_forms(
            _DIGITS_NZ,
            np.concatenate([numeric, mixed]),
            pa.concat_arrays([kept_joined.take(numeric), mixed_digits]),
        )
        plus = pc.starts_with(pc.utf8_ltrim_whitespace(raw.take(kept)), "+")
        maybe = np.flatnonzero(plus.to_numpy(zero_copy_only=False) & (spaces > 0))
        intl = pc.match_substring_regex(raw.take(kept[maybe]), r"^\s*\+\s*[0-9]")
        intl_at = maybe[intl.to_numpy(zero_copy_only=False)]
        national = pc.replace_substring_regex(
            pc.replace_substring_regex(kept_keys.take(intl_at), r"^[^ ]+ ", ""), r"[^0-9]+", ""
        )
        candidates.append((_NATIONAL, intl_at, national))
        candidates += self._unpadded_forms(_NATIONAL_NZ, intl_at, national)
        sub_forms: list[pa.Array] = []
        owners: list[np.ndarray] = []
        subs: list[np.ndarray] = []
        for sub, at, forms in candidates:
            if sub >= _DIGITS:  # a digit form needs MIN_DIGITS digits
                long = pc.utf8_length(forms).to_numpy(zero_copy_only=False) >= MIN_DIGITS
                at, forms = at[long], forms.filter(pa.array(long))
            sub_forms.append(forms)
            owners.append(kept[at])
            subs.append(np.full(at.size, sub))
        sub_of = np.concatenate(subs)
        owner_of = np.concatenate(owners)
        order = np.argsort(owner_of * len(_FORMS) + sub_of, kind="stable")
        owner = owner_of[order]  # the value each form belongs to
        is_key = (sub_of == _KEY)[order]
        forms = pa.concat_arrays(sub_forms).take(order)
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

    @staticmethod
    def _unpadded_forms(
        sub: int, at: np.ndarray, forms: pa.Array
    ) -> list[tuple[int, np.ndarray, pa.Array]]:
        """The forms that start with a zero, without their leading zeros."""
        padded = pc.starts_with(forms, "0").to_numpy(zero_copy_only=False)
        stripped = pc.replace_substring_regex(forms.filter(pa.array(padded)), r"^0+", "")
        return [(sub, at[padded], stripped)]

    def _collisions(
        self,
        keys: pa.Array,
        column: np.ndarray,
        searchable: np.ndarray,
        levels: Mapping[str, Iterable[Any]],
    ) -> tuple[np.ndarray, tuple[PiiCollision, ...]]:
        """Values equal (as searched) to a level of a feature that is no copy of their column."""
        collided = np.zeros(len(keys), dtype=bool)
        found: list[PiiCollision] = []
        for feature, items in levels.items():
            level_forms = pc.unique(_spaced_forms(_texts(items)))
            level_forms = level_forms.filter(pc.not_equal(level_forms, ""))
            if not len(level_forms):
                continue
            is_level = pc.is_in(keys, value_set=level_forms).to_numpy(zero_copy_only=False)
            is_level &= searchable
            for c, name in enumerate(self.columns):
                mask = is_level & (column == c)
                if not mask.any():
                    continue
                n = int(pc.count_distinct(keys.filter(pa.array(mask))).as_py())
                if n >= MIN_COPY_LEVELS and n > COPY_SHARE * len(level_forms):
                    continue  # the feature is a copy of the column: its values are a leak
                collided |= mask
                found.append(PiiCollision(name, str(feature), n))
        return collided, tuple(found)

    def find(self, text: str) -> dict[str, int]:
        """column -> number of distinct values of it that occur in `text`."""
        if not self._position or not text:
            return {}
        if "e" in text or "E" in text:
            text = _EXPONENT.sub(_whole_number, text)
        tokens = _tokens(text)
        found: set[str] = set()
        for n in self.lengths:
            if n == 1:
                single = set(tokens)
                found |= self._position.keys() & (single | _unpadded(single))
            elif len(tokens) >= n:
                windows = {" ".join(w) for w in zip(*(tokens[i:] for i in range(n)), strict=False)}
                found |= self._position.keys() & windows
        owners = {int(self._owner[self._position[form]]) for form in found}  # both spellings once
        counts: dict[str, int] = {}
        for value in owners:
            column = self.columns[int(self._column[value])]
            counts[column] = counts.get(column, 0) + 1
        return counts
