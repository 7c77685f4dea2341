"""Adverse-action reasons: which factors count against a row, and the sentence for each.

A declined applicant is owed the principal reasons, specific to them and true of the
model (ECOA/Reg B: up to four). Three rules make a reason true:

* **Only adverse factors.** A feature is a reason for a row only when its contribution
  pushes that row toward decline (> 0: positive TreeSHAP log-odds, or points below the
  characteristic's best attribute). At most k, largest first; later slots are blank
  when fewer exist (`adverse_indices`).
* **Worded by the applicant's value.** For a numeric feature the model's own dependence
  on the reference sample (mean contribution per quantile bin) gives the interval of
  values that lower risk most; a value above it reads the `high` text, below it the
  `low` text, a missing value the `missing` text. A U-shaped effect therefore says
  "too high" to some and "too low" to others. A declared `model.monotone` sign fixes the
  side. A categorical text may quote the level as ``{value}``.
* **A catalogue, not column names.** `evaluation.reason_texts` maps a feature to a
  sentence or to ``{code, high, low, missing}`` / ``{code, text, missing}``; a feature
  without one falls back to a default built from its name, and `ReasonCatalogue.coverage`
  says how many of the features that can be a reason have a written text.

The selection and the wording are numpy only and are mirrored line for line by the
served model (`registry/scoring_model.py`), which reads the catalogue from state.json;
a test pins the two equal. The checks a reviewer reads about them (coverage, faithfulness,
stability) are `evaluation/reason_checks.py`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from training.models.base import Contributions

if TYPE_CHECKING:
    from training.models.spec import ModelSpec

__all__ = [
    "DEFAULT_CATEGORICAL",
    "DEFAULT_HIGH",
    "DEFAULT_LOW",
    "DEFAULT_MISSING",
    "GENERAL_CODE",
    "GENERAL_TEXT",
    "ReasonCatalogue",
    "ReasonEntry",
    "adverse_indices",
    "build_catalogue",
    "first_reasons",
    "reason_frame",
    "word_reasons",
]

DEFAULT_HIGH = "{feature} is too high"
DEFAULT_LOW = "{feature} is too low"
DEFAULT_MISSING = "{feature} is not given"
#: Shown for a categorical feature without a written text: the level is not named,
#: because naming it could disclose something the lender did not choose to show.
DEFAULT_CATEGORICAL = "{feature} indicates higher risk"
#: A decline on which no factor pushed toward decline: only a cut-off that declines
#: applicants of below-average risk does this, and the applicant is told so plainly.
GENERAL_CODE = "GENERAL"
GENERAL_TEXT = "Overall risk score is below the approval cut-off"
#: Quantile bins of the dependence that picks the low-risk interval of a numeric feature.
DEPENDENCE_BINS = 20

Variant = Literal["high", "low", "missing", "text"]


@dataclass(frozen=True)
class ReasonEntry:
    """One feature's catalogue entry: its code, its sentences, and where risk is lowest.

    Numeric: `lower` <= x < `upper` is the interval of values that lower risk most
    (-inf / inf when open), `best` a typical value inside it; `fixed` is the declared
    monotone sign (+1: always `high`, -1: always `low`, 0: by the interval).
    Categorical: `levels` are the model's levels in code order and `best` the level
    with the lowest mean contribution; `text` may hold ``{value}``.
    """

    feature: str
    kind: Literal["numeric", "categorical"]
    code: str
    written: bool
    high: str = ""
    low: str = ""
    missing: str = ""
    text: str = ""
    fixed: int = 0
    lower: float = -math.inf
    upper: float = math.inf
    best: float | str | None = None
    levels: tuple[str, ...] = ()

    def variants(self) -> tuple[str, ...]:
        """The sentences in served-model order: high, low, missing | one per level, missing."""
        if self.kind == "numeric":
            return (self.high, self.low, self.missing)
        return (*(self.text.replace("{value}", level) for level in self.levels), self.missing)

    def to_state(self) -> dict[str, Any]:
        """The served model's entry (levels come from its features, so are left out)."""
        out: dict[str, Any] = {
            "code": self.code,
            "kind": self.kind,
            "missing": self.missing,
            "written": self.written,
            "best": self.best,
        }
        if self.kind == "numeric":
            out.update(
                high=self.high,
                low=self.low,
                fixed=self.fixed,
                lower=None if math.isinf(self.lower) else self.lower,
                upper=None if math.isinf(self.upper) else self.upper,
            )
        else:
            out["text"] = self.text
        return out

    @classmethod
    def from_state(cls, feature: str, e: Mapping[str, Any], levels: Sequence[str]) -> ReasonEntry:
        numeric = e["kind"] == "numeric"
        return cls(
            feature=feature,
            kind="numeric" if numeric else "categorical",
            code=str(e["code"]),
            written=bool(e.get("written", False)),
            high=str(e.get("high", "")),
            low=str(e.get("low", "")),
            missing=str(e.get("missing", "")),
            text=str(e.get("text", "")),
            fixed=int(e.get("fixed", 0)),
            lower=-math.inf if e.get("lower") is None else float(e["lower"]),
            upper=math.inf if e.get("upper") is None else float(e["upper"]),
            best=e.get("best"),
            levels=() if numeric else tuple(levels),
        )

    def sentences(self) -> str:
        """The distinct sentences of the entry, " | "-joined, for the reviewer's tables."""
        texts = (
            (self.high, self.low, self.missing)
            if self.kind == "numeric"
            else (self.text, self.missing)
        )
        return " | ".join(dict.fromkeys(texts))

    def wording(self) -> dict[str, Any]:
        """The state entry with its levels: what `word_reasons` reads."""
        return {**self.to_state(), "levels": list(self.levels)}


@dataclass(frozen=True)
class ReasonCatalogue:
    """Every feature's entry, in the model's feature order; what the served model reads."""

    entries: tuple[ReasonEntry, ...]
    k: int

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(e.feature for e in self.entries)

    def entry(self, feature: str) -> ReasonEntry:
        return self.entries[self.features.index(feature)]

    def coverage(self, eligible: Sequence[str]) -> float:
        """Share of `eligible` features (those that can be a reason) with a written text."""
        if not eligible:
            return 1.0
        written = {e.feature for e in self.entries if e.written}
        return sum(name in written for name in eligible) / len(eligible)

    def to_state(self) -> dict[str, Any]:
        return {"k": self.k, "catalogue": {e.feature: e.to_state() for e in self.entries}}

    @classmethod
    def from_state(
        cls, reasons: Mapping[str, Any], levels: Mapping[str, Sequence[str]]
    ) -> ReasonCatalogue:
        """The catalogue a registered model was served with; `levels` by categorical feature."""
        return cls(
            entries=tuple(
                ReasonEntry.from_state(name, e, levels.get(name, ()))
                for name, e in reasons["catalogue"].items()
            ),
            k=int(reasons["k"]),
        )

    def ordered(self, features: Sequence[str]) -> ReasonCatalogue:
        """The same entries in `features` order (a model's contribution columns).

        state.json is written with sorted keys, so a catalogue read back from a
        registered model is put in the model's order before it meets contributions.
        """
        return ReasonCatalogue(entries=tuple(self.entry(f) for f in features), k=self.k)

    def encoded(self, spec: ModelSpec, frame: pd.DataFrame) -> NDArray[np.float64]:
        """`frame` encoded as the model encodes it, one column per entry, in entry order."""
        from training.models.encoding import encode

        by_name = {f.name: f for f in spec.features}
        return encode(frame, [by_name[name] for name in self.features])

    def summary(self) -> pd.DataFrame:
        """feature, code, written, the sentences (and for numerics the low-risk interval)."""
        return pd.DataFrame(
            [
                {
                    "feature": e.feature,
                    "code": e.code,
                    "written": e.written,
                    "texts": e.sentences(),
                }
                for e in self.entries
            ]
        )


def _entry_texts(
    name: str, kind: str, given: str | Mapping[str, str] | None
) -> tuple[dict[str, str], str, bool]:
    """(sentences by variant, code, written) from a config entry, defaults filling gaps."""
    default = {
        "high": DEFAULT_HIGH,
        "low": DEFAULT_LOW,
        "missing": DEFAULT_MISSING,
        "text": DEFAULT_CATEGORICAL,
    }
    texts = {key: value.replace("{feature}", name) for key, value in default.items()}
    if given is None:
        return texts, name, False
    plain = isinstance(given, str)
    if isinstance(given, str):
        given = {"text": given} if kind == "categorical" else {"high": given, "low": given}
    for key in ("high", "low", "missing", "text"):
        if given.get(key):
            texts[key] = str(given[key])
    # One sentence for every side (a plain string, or a categorical text) also serves a
    # missing value, unless it quotes the level, which a missing value does not have.
    sentence = (
        given.get("text") if kind == "categorical" else (given.get("high") if plain else None)
    )
    if sentence and not given.get("missing") and "{value}" not in sentence:
        texts["missing"] = str(sentence)
    written = any(given.get(key) for key in ("high", "low", "missing", "text"))
    return texts, str(given.get("code") or name), written


def _numeric_dependence(
    x: NDArray[np.float64], c: NDArray[np.float64]
) -> tuple[float, float, float | None]:
    """(lower, upper, best): the quantile bin of `x` with the lowest mean contribution."""
    present = ~np.isnan(x)
    x, c = x[present], c[present]
    if x.size == 0:
        return -math.inf, math.inf, None
    edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, DEPENDENCE_BINS + 1)))
    inner = edges[1:-1]
    bins = np.searchsorted(inner, x, side="right")
    counts = np.bincount(bins, minlength=inner.size + 1)
    sums = np.bincount(bins, weights=c, minlength=inner.size + 1)
    means = np.where(counts > 0, sums / np.maximum(counts, 1), np.inf)
    b = int(np.argmin(means))
    lower = float(inner[b - 1]) if b > 0 else -math.inf
    upper = float(inner[b]) if b < inner.size else math.inf
    return lower, upper, float(np.median(x[bins == b]))


def build_catalogue(
    sample: pd.DataFrame,
    contrib: Contributions,
    *,
    k: int,
    categorical: Mapping[str, Sequence[str]],
    custom: Mapping[str, str | Mapping[str, str]],
    monotone: Mapping[str, int],
) -> ReasonCatalogue:
    """The catalogue of a fitted model, from its contributions on the reference sample.

    `categorical` maps each categorical feature to the model's levels in code order (the
    served model quotes a level by its code). Numeric features get their low-risk
    interval from `_numeric_dependence`; a declared monotone sign fixes their side.
    """
    if len(sample) != contrib.values.shape[0]:
        raise ValueError(f"sample has {len(sample)} rows, contributions {contrib.values.shape[0]}")
    entries = []
    for j, name in enumerate(contrib.features):
        kind: Literal["numeric", "categorical"] = (
            "categorical" if name in categorical else "numeric"
        )
        texts, code, written = _entry_texts(name, kind, custom.get(name))
        shared: dict[str, Any] = {
            "feature": name, "kind": kind, "code": code, "written": written,
            "missing": texts["missing"],
        }  # fmt: skip
        c = contrib.values[:, j]
        if kind == "numeric":
            x = pd.to_numeric(sample[name], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
            lower, upper, best = _numeric_dependence(x, c)
            declared = monotone.get(name, 0)
            entries.append(
                ReasonEntry(
                    **shared,
                    high=texts["high"],
                    low=texts["low"],
                    fixed=(declared > 0) - (declared < 0),
                    lower=lower,
                    upper=upper,
                    best=best,
                )
            )
        else:
            levels = tuple(categorical[name])
            text = sample[name].astype(object).where(sample[name].notna(), None)
            means = pd.Series(c).groupby(text.map(_level).to_numpy()).mean()
            means = means[means.index.isin(levels)]
            best_level = str(means.sort_index().idxmin()) if len(means) else None
            entries.append(
                ReasonEntry(
                    **shared,
                    text=texts["text"],
                    best=best_level,
                    levels=levels,
                )
            )
    return ReasonCatalogue(entries=tuple(entries), k=k)


def _level(value: Any) -> str | None:
    return None if value is None else str(value)


def adverse_indices(
    values: NDArray[np.float64], declined: NDArray[np.bool_], k: int
) -> NDArray[np.intp]:
    """Column indices of each row's reasons, -1 for a blank. The rule, exactly:

    For a declined row, order the columns by contribution, largest first (a stable sort
    of the negated values, so ties keep column order) and keep the first ``min(k,
    columns)`` whose contribution is > 0: a factor that lowered the row's risk is never
    a reason. Every slot of an approved row is -1. Vectorised (one argsort over the
    declined rows); the served model repeats this function verbatim.
    """
    n, f = values.shape
    out = np.full((n, k), -1, dtype=np.intp)
    rows = np.flatnonzero(declined)
    m = min(k, f)
    if rows.size and m:
        picked = np.argsort(-values[rows], axis=1, kind="stable")[:, :m]
        adverse = np.take_along_axis(values[rows], picked, axis=1) > 0
        out[rows, :m] = np.where(adverse, picked, -1)
    return out


def word_reasons(
    picked: NDArray[np.intp], encoded: NDArray[np.float64], catalogue: Mapping[str, Any]
) -> tuple[NDArray[Any], NDArray[Any]]:
    """(texts, codes), each n x k, for `picked` indices over `encoded` rows.

    `encoded` holds the rows as the model encodes them (numbers; categorical levels as
    codes, NaN when missing or unseen); `catalogue` is the state form of a
    `ReasonCatalogue` (`to_state()["catalogue"]`), keyed in feature order. Each feature's
    sentences are laid out in one flat table (numeric: high, low, missing; categorical:
    one per level, then missing) and each slot indexes it, so wording costs a few array
    operations per slot, never a loop over rows. The served model repeats this verbatim.
    """
    entries = list(catalogue.values())
    flat: list[str] = []
    offsets = np.empty(len(entries), dtype=np.intp)
    for j, e in enumerate(entries):
        offsets[j] = len(flat)
        if e["kind"] == "numeric":
            flat += [e["high"], e["low"], e["missing"]]
        else:
            flat += [e["text"].replace("{value}", level) for level in e["levels"]]
            flat.append(e["missing"])
    flat.append("")
    texts_table = np.asarray(flat, dtype=object)
    codes_table = np.asarray([e["code"] for e in entries] + [""], dtype=object)
    is_cat = np.asarray([e["kind"] == "categorical" for e in entries] + [False])
    fixed = np.asarray([e.get("fixed", 0) for e in entries] + [0], dtype=np.float64)
    lower = np.asarray(
        [-np.inf if e.get("lower") is None else e["lower"] for e in entries] + [-np.inf]
    )
    upper = np.asarray(
        [np.inf if e.get("upper") is None else e["upper"] for e in entries] + [np.inf]
    )
    bounded = np.isfinite(lower) & np.isfinite(upper)
    mid = (np.where(bounded, lower, 0.0) + np.where(bounded, upper, 0.0)) / 2
    levels = np.asarray([len(e.get("levels", ())) for e in entries] + [0], dtype=np.intp)
    blank = len(flat) - 1
    n, k = picked.shape
    texts = np.empty((n, k), dtype=object)
    codes = np.empty((n, k), dtype=object)
    rows = np.arange(n)
    for s in range(k):
        col = picked[:, s]
        x = encoded[rows, np.maximum(col, 0)] if encoded.shape[1] else np.full(n, np.nan)
        missing = np.isnan(x)
        inside = np.where(
            np.isinf(lower[col]), True, np.where(np.isinf(upper[col]), False, x >= mid[col])
        )
        high = np.where(
            fixed[col] != 0,
            fixed[col] > 0,
            np.where(x >= upper[col], True, (x >= lower[col]) & inside),
        )
        numeric_variant = np.where(missing, 2, np.where(high, 0, 1))
        level = np.where(missing, levels[col], np.where(is_cat[col], x, 0.0)).astype(np.intp)
        variant = np.where(is_cat[col], level, numeric_variant)
        index = np.where(col >= 0, offsets[np.maximum(col, 0)] + variant, blank)
        texts[:, s] = texts_table[index]
        codes[:, s] = codes_table[np.where(col >= 0, col, len(entries))]
    return texts, codes


def reason_frame(
    contrib: Contributions,
    encoded: NDArray[np.float64],
    *,
    declined: NDArray[np.bool_],
    catalogue: ReasonCatalogue,
    protected: Sequence[str] = (),
) -> pd.DataFrame:
    """``reason_1..k`` then ``reason_code_1..k`` for every row, "" when blank.

    Protected attributes are never features, but a reason naming one would be unlawful,
    so `protected` names are dropped before selection as a second guard. A decline
    without any adverse factor gets `GENERAL_TEXT` as its first reason (see there).
    Rows are positional (a RangeIndex), in the order of `contrib`.
    """
    declined = np.asarray(declined, dtype=np.bool_)
    if declined.shape != (contrib.values.shape[0],):
        raise ValueError(
            f"declined must hold one flag per row ({contrib.values.shape[0]}), got {declined.shape}"
        )
    if tuple(catalogue.features) != tuple(contrib.features):
        raise ValueError("the catalogue and the contributions name different features")
    values = np.array(contrib.values)
    if not np.isfinite(values[declined]).all():
        raise ValueError("contributions of declined rows must be finite")
    blocked = [j for j, name in enumerate(contrib.features) if name in set(protected)]
    values[:, blocked] = -np.inf
    picked = adverse_indices(values, declined, catalogue.k)
    wording = {e.feature: e.wording() for e in catalogue.entries}
    texts, codes = word_reasons(picked, encoded, wording)
    general = declined & (picked[:, 0] < 0)
    texts[general, 0], codes[general, 0] = GENERAL_TEXT, GENERAL_CODE
    k = catalogue.k
    return pd.DataFrame(
        np.concatenate([texts, codes], axis=1),
        columns=[
            *(f"reason_{i + 1}" for i in range(k)),
            *(f"reason_code_{i + 1}" for i in range(k)),
        ],
    )


def first_reasons(values: NDArray[np.float64]) -> NDArray[np.intp]:
    """Each row's first adverse feature (the largest contribution > 0), -1 when none."""
    return adverse_indices(values, np.ones(values.shape[0], dtype=np.bool_), 1)[:, 0]
