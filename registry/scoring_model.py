"""The served model: one self-contained file logged with MLflow's models-from-code.

A serving system loads `models:/<name>@champion` with plain MLflow and needs nothing of
creditgov: this file imports only mlflow, numpy, pandas and lightgbm. Its state is one
JSON document (feature levels, the model's section, calibration map, score scaling,
decision rule) plus the model's text files — code you can read plus data you can diff,
and nothing that unpickles.

It knows the model *forms*, never the model kinds: `booster` (LightGBM's native text
model, explained by its own TreeSHAP) and `additive` (a sum of per-feature terms:
`bins` — a table value by bin or level, times a coefficient — and `linear`). Every kind
exports one of them (`training/models/kinds/`), so a new kind needs nothing here. It
repeats the feature encoding of `training/models/encoding.py` on purpose (it may not
import it); a test pins both to the same predictions.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any, NoReturn

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

FORMAT = "creditgov-scoring/3"
# The signature is given explicitly when the model is logged; MLflow's advice to use
# type hints instead is noise for every serving system that loads this file.
warnings.filterwarnings("ignore", message=r".*type hints to the `predict` method.*")
_EPS = 1e-9


def _text(column: pd.Series) -> pd.Series:
    values = column.astype(object)
    return values.map(lambda v: None if v is None or (isinstance(v, float) and v != v) else str(v))


def _codes(column: pd.Series, levels: list[str]) -> np.ndarray:
    """Position of each value's text in `levels`; -1 for missing values and unseen levels.

    Values are factorised first and each distinct value is looked up once: a column of a
    million rows holds a handful of levels. A column of text (the usual case) is taken as
    it is; any other goes through `_text` value by value, so 5 and "5" find the same
    level. (`pd.Categorical(values, categories=...)` would do the lookup too, but pandas
    deprecates it for values outside the categories, which is what an unseen level is.)
    """
    text = column if pd.api.types.infer_dtype(column, skipna=True) == "string" else _text(column)
    codes, uniques = pd.factorize(text)  # missing values get -1
    lookup = np.append(pd.Index(levels, dtype=object).get_indexer(uniques), -1)
    return np.asarray(lookup[codes])


def _numeric(column: pd.Series) -> np.ndarray:
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def encode(frame: pd.DataFrame, features: list[dict[str, Any]]) -> np.ndarray:
    out = np.empty((len(frame), len(features)), dtype=np.float64, order="F")
    for j, spec in enumerate(features):
        column = frame[spec["name"]]
        if spec["kind"] == "categorical":
            codes = _codes(column, spec["levels"])
            out[:, j] = np.where(codes < 0, np.nan, codes)
        else:
            out[:, j] = _numeric(column)
    return out


class Booster:
    """The `booster` form: LightGBM's text model; contributions are its TreeSHAP values."""

    def __init__(
        self, section: dict[str, Any], features: list[dict[str, Any]], files: dict[str, str]
    ) -> None:
        import lightgbm

        self.features = features
        self.names = [f["name"] for f in features]
        self.booster = lightgbm.Booster(model_file=files["booster"])

    def raw(self, frame: pd.DataFrame, encoded: np.ndarray) -> np.ndarray:
        return np.asarray(self.booster.predict(encoded), dtype=np.float64)

    def contributions(self, frame: pd.DataFrame, encoded: np.ndarray) -> np.ndarray:
        values = self.booster.predict(encoded, pred_contrib=True)
        return np.asarray(values, dtype=np.float64)[:, :-1]


class Additive:
    """The `additive` form: logit = intercept + scale x sum of terms; a term's push is term - ref.

    A scorecard exports its integer points as the terms (coefficient -1, scale 1/factor),
    so its pushes are points lost against each characteristic's best bin.
    """

    def __init__(
        self, section: dict[str, Any], features: list[dict[str, Any]], files: dict[str, str]
    ) -> None:
        self.intercept = float(section["intercept"])
        self.scale = float(section.get("scale", 1.0))
        self.terms = section["terms"]
        self.names = [t["name"] for t in self.terms]

    @staticmethod
    def _term(t: dict[str, Any], column: pd.Series) -> np.ndarray:
        if t["kind"] == "linear":
            x = _numeric(column)
            x = np.clip(np.where(np.isnan(x), t["fill"], x), t["low"], t["high"])
            return t["coefficient"] * (x - t["center"])
        table = np.asarray(t["table"], dtype=np.float64)
        if t["feature_kind"] == "numeric":
            x = _numeric(column)
            values = table[np.digitize(x, np.asarray(t["edges"], dtype=np.float64))]
            values[np.isnan(x)] = t["missing"]
        else:
            lookup = {level: table[i] for i, group in enumerate(t["groups"]) for level in group}
            # `_text` gives str or a missing value; pandas 3 may hold the latter as NaN (it
            # infers a string dtype for the mapped column), so test for str, not for None.
            values = (
                _text(column)
                .map(lambda v: lookup.get(v, 0.0) if isinstance(v, str) else t["missing"])
                .to_numpy(dtype=np.float64)
            )
        return t["coefficient"] * values

    def raw(self, frame: pd.DataFrame, encoded: np.ndarray) -> np.ndarray:
        total = np.zeros(len(frame), dtype=np.float64)
        for t in self.terms:
            total += self._term(t, frame[t["name"]])
        return 1.0 / (1.0 + np.exp(-(self.intercept + self.scale * total)))

    def contributions(self, frame: pd.DataFrame, encoded: np.ndarray) -> np.ndarray:
        out = np.empty((len(frame), len(self.terms)), dtype=np.float64)
        for j, t in enumerate(self.terms):
            out[:, j] = self._term(t, frame[t["name"]]) - t["ref"]
        return out


FORMS: dict[str, type[Booster] | type[Additive]] = {"booster": Booster, "additive": Additive}


#: `evaluation.reason_codes` allows at most 10; a crafted k must not ask for k columns a row.
MAX_REASONS = 20
#: The decision labels, below -> at or above the threshold, as `decision_labels` in
#: `training/models/policy.py` gives them (a test pins the two): swapped labels invert
#: every answer, so a pair of any other two words is refused too.
LABELS = {"approve": "decline", "allow": "review"}
_RETRAIN = "the file was edited or is not creditgov's: retrain"


def _fail(path: str, what: str) -> NoReturn:
    raise ValueError(f"state.json: {path} must be {what}; {_RETRAIN}")


def _dict(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(path, "an object")
    return value


def _list(value: Any, path: str, *, empty: bool = False) -> list[Any]:
    if not isinstance(value, list) or not (value or empty):
        _fail(path, "a list" if empty else "a non-empty list")
    return value


def _str(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        _fail(path, "a non-empty string")
    return value


def _num(value: Any, path: str, low: float = -math.inf, high: float = math.inf) -> float:
    """A finite JSON number strictly between `low` and `high`: no bool, NaN or infinity."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e308
    if not (ok and math.isfinite(value) and low < value < high):
        bounds = "" if (low, high) == (-math.inf, math.inf) else f" in ({low:g}, {high:g})"
        _fail(path, f"a finite number{bounds}")
    return float(value)


def _nums(value: Any, path: str, *, empty: bool = False, ascending: bool = False) -> list[float]:
    numbers = [_num(v, f"{path}[{i}]") for i, v in enumerate(_list(value, path, empty=empty))]
    if ascending and numbers != sorted(numbers):
        _fail(path, "in ascending order")
    return numbers


def _check_term(t: dict[str, Any], at: str, free: set[str]) -> None:
    """One additive term; `free` holds the feature names no term has taken yet."""
    if _str(t.get("name"), f"{at}.name") not in free:
        _fail(f"{at}.name", "a feature's name, one term each")
    free.discard(t["name"])
    linear = t.get("kind") == "linear"
    for key in ("coefficient", "ref", *(("center", "fill", "low", "high") if linear else ())):
        _num(t.get(key), f"{at}.{key}")
    if linear:
        if t["low"] > t["high"]:
            _fail(f"{at}.high", "at least low")
        return
    if t.get("kind") != "bins":
        _fail(f"{at}.kind", "'linear' or 'bins'")
    _num(t.get("missing"), f"{at}.missing")
    size = len(_nums(t.get("table"), f"{at}.table"))
    if t.get("feature_kind") == "numeric":
        if len(_nums(t.get("edges"), f"{at}.edges", empty=True, ascending=True)) != size - 1:
            _fail(f"{at}.edges", "one fewer than the table's entries")
    elif t.get("feature_kind") == "categorical":
        groups = _list(t.get("groups"), f"{at}.groups")
        if len(groups) != size or not all(
            isinstance(g, list) and all(isinstance(v, str) for v in g) for g in groups
        ):
            _fail(f"{at}.groups", "one list of level strings per table entry")
    else:
        _fail(f"{at}.feature_kind", "'numeric' or 'categorical'")


def check_state(state: Any) -> None:
    """Refuse a state.json creditgov could not have written, with one line naming the key.

    A served model runs wherever it is deployed, far from the job that trained it, and
    applies its state as it is: a threshold of 0 would decline everyone and one above 1
    approve everyone, swapped labels would invert every answer, a huge reasons count
    would allocate without end. So the state's shape and bounds are checked before
    anything is built from it, and a tampered or foreign file fails loading instead of
    scoring. The message names the JSON path and never echoes the value.
    """
    top = _dict(state, "the top level")
    if top.get("format") != FORMAT:
        _fail("format", repr(FORMAT))
    names: set[str] = set()
    for i, raw in enumerate(_list(top.get("features"), "features")):
        f, at = _dict(raw, f"features[{i}]"), f"features[{i}]"
        if _str(f.get("name"), f"{at}.name") in names:
            _fail(f"{at}.name", "unique among the features")
        names.add(f["name"])
        if f.get("kind") not in ("numeric", "categorical"):
            _fail(f"{at}.kind", "'numeric' or 'categorical'")
        if f.get("dtype") not in ("double", "long", "string"):
            _fail(f"{at}.dtype", "'double', 'long' or 'string'")
        levels = _list(f.get("levels", []), f"{at}.levels", empty=True)
        if not all(isinstance(v, str) for v in levels) or len(set(levels)) != len(levels):
            _fail(f"{at}.levels", "a list of distinct strings")
    model = _dict(top.get("model"), "model")
    files = _dict(model.get("files", {}), "model.files")
    if not all(isinstance(v, str) and v for v in files.values()):
        _fail("model.files", "a map of artifact names to file names")
    if model.get("form") == "booster":
        _str(files.get("booster"), "model.files.booster")
    elif model.get("form") == "additive":
        _num(model.get("intercept"), "model.intercept")
        _num(model.get("scale", 1.0), "model.scale", 0.0)
        free = set(names)
        for i, term in enumerate(_list(model.get("terms"), "model.terms")):
            _check_term(_dict(term, f"model.terms[{i}]"), f"model.terms[{i}]", free)
    else:
        _fail("model.form", "'booster' or 'additive'")
    if model.get("score_basis", "calibrated") not in ("calibrated", "raw"):
        _fail("model.score_basis", "'calibrated' or 'raw'")
    cal = _dict(top.get("calibration"), "calibration")
    if cal.get("method") == "isotonic":
        x = _nums(cal.get("x"), "calibration.x", ascending=True)
        if len(x) != len(_list(cal.get("y"), "calibration.y")):
            _fail("calibration.y", "as long as calibration.x")
        for i, v in enumerate(cal["y"]):
            _num(v, f"calibration.y[{i}]", 0.0, 1.0)
    elif cal.get("method") == "sigmoid":
        _num(cal.get("slope"), "calibration.slope")
        _num(cal.get("intercept"), "calibration.intercept")
    elif cal.get("method") != "none":
        _fail("calibration.method", "'none', 'isotonic' or 'sigmoid'")
    score = _dict(top.get("score"), "score")
    _num(score.get("base_score"), "score.base_score")
    _num(score.get("base_odds"), "score.base_odds", 0.0)
    _num(score.get("pdo"), "score.pdo", 0.0)
    rule = _dict(top.get("decision"), "decision")
    _num(rule.get("threshold"), "decision.threshold", 0.0, 1.0)
    if rule.get("rule") not in ("threshold", "approval_rate", "cost"):
        _fail("decision.rule", "'threshold', 'approval_rate' or 'cost'")
    below = rule.get("below")
    if not isinstance(below, str) or below not in LABELS:
        _fail("decision.below", " or ".join(map(repr, LABELS)))
    if rule.get("at_or_above") != LABELS[below]:
        _fail("decision.at_or_above", repr(LABELS[below]))
    reasons = _dict(top.get("reasons") or {"k": 0, "catalogue": {}}, "reasons")
    k = reasons.get("k")
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= MAX_REASONS:
        _fail("reasons.k", f"a whole number from 0 to {MAX_REASONS}")
    kinds = {f["name"]: f["kind"] for f in top["features"]}
    for name, raw in _dict(reasons.get("catalogue", {}), "reasons.catalogue").items():
        _check_reason(_dict(raw, "reasons.catalogue entry"), kinds.get(name))


def _check_reason(e: dict[str, Any], kind: str | None) -> None:
    """One catalogue entry: sentences are strings, the interval numbers or null."""
    at = "reasons.catalogue entry"
    if kind is None or e.get("kind") != kind:
        _fail(f"{at}.kind", "the kind of a feature of the model")
    _str(e.get("code"), f"{at}.code")
    for key in ("missing", *(("high", "low") if kind == "numeric" else ("text",))):
        if not isinstance(e.get(key), str):
            _fail(f"{at}.{key}", "a sentence")
    if kind == "categorical":
        return
    if e.get("fixed") not in (-1, 0, 1) or isinstance(e.get("fixed"), bool):
        _fail(f"{at}.fixed", "-1, 0 or 1")
    ends = [
        None if e.get(key) is None else _num(e[key], f"{at}.{key}") for key in ("lower", "upper")
    ]
    if None not in ends and ends[0] > ends[1]:  # type: ignore[operator]
        _fail(f"{at}.upper", "at least lower")


def adverse_indices(values: np.ndarray, declined: np.ndarray, k: int) -> np.ndarray:
    """`evaluation/reasons.py`'s rule, verbatim: the k largest contributions > 0, else -1."""
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
    picked: np.ndarray, encoded: np.ndarray, catalogue: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray]:
    """`evaluation/reasons.py`'s wording, verbatim: the sentence and code of each slot."""
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


#: `evaluation/reasons.py`'s answer for a decline on which no factor pushed toward decline.
GENERAL_CODE = "GENERAL"
GENERAL_TEXT = "Overall risk score is below the approval cut-off"


class CreditScorer(PythonModel):
    """probability, score and decision for each row of a DataFrame."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["state"], encoding="utf-8") as handle:
            self.state = json.load(handle)
        check_state(self.state)
        self.features = self.state["features"]
        section = self.state["model"]
        if not set(section.get("files", {})) <= set(context.artifacts):
            _fail("model.files", "artifacts the model folder holds")
        files = {key: context.artifacts[key] for key in section.get("files", {})}
        self.form = FORMS[section["form"]](section, self.features, files)
        score = self.state["score"]
        self.factor = score["pdo"] / math.log(2.0)
        self.offset = score["base_score"] - self.factor * math.log(score["base_odds"])
        reasons = self.state.get("reasons") or {"k": 0, "catalogue": {}}
        self.k = int(reasons["k"])
        by_name = {f["name"]: f for f in self.features}
        given = reasons.get("catalogue", {})
        if self.k and not set(self.form.names) <= set(given):
            _fail("reasons.catalogue", "an entry for every feature the model uses")
        # The catalogue in the order of the form's contributions, levels from the features.
        self.catalogue = {
            n: {**given[n], "levels": by_name[n].get("levels", [])}
            for n in self.form.names
            if n in given
        }
        names = [f["name"] for f in self.features]
        self.columns = np.asarray([names.index(n) for n in self.form.names], dtype=np.intp)
        # A scorecard's score is its points: read from the uncalibrated probability.
        self.score_raw = section.get("score_basis") == "raw"

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        cal = self.state["calibration"]
        if cal["method"] == "isotonic":
            return np.interp(raw, np.asarray(cal["x"]), np.asarray(cal["y"]))
        if cal["method"] == "sigmoid":
            p = np.clip(raw, 1e-12, 1 - 1e-12)
            z = cal["slope"] * np.log(p / (1 - p)) + cal["intercept"]
            return 1.0 / (1.0 + np.exp(-z))
        return raw

    def probability(self, frame: pd.DataFrame, encoded: np.ndarray | None = None) -> np.ndarray:
        x = encode(frame, self.features) if encoded is None else encoded
        return self._calibrate(self.form.raw(frame, x))

    def contributions(self, frame: pd.DataFrame, encoded: np.ndarray | None = None) -> np.ndarray:
        """Per-feature push toward decline: TreeSHAP (log-odds) or an additive term's push."""
        x = encode(frame, self.features) if encoded is None else encoded
        return self.form.contributions(frame, x)

    def reasons(
        self, frame: pd.DataFrame, declined: np.ndarray, encoded: np.ndarray | None = None
    ) -> pd.DataFrame:
        """reason_1..k then reason_code_1..k: only factors that pushed the row toward decline.

        Largest contribution first (ties by feature order), only contributions > 0, worded
        by where the row's value lies against the values that lower risk; blank for
        approvals. A decline without any adverse factor reads GENERAL_TEXT first.
        """
        k = self.k
        x = encode(frame, self.features) if encoded is None else encoded
        texts = np.full((len(frame), k), "", dtype=object)
        codes = np.full((len(frame), k), "", dtype=object)
        rows = np.flatnonzero(declined)
        if k and len(rows):
            part = x[rows]
            contrib = self.contributions(frame.iloc[rows], part)
            picked = adverse_indices(contrib, np.ones(len(rows), dtype=bool), k)
            texts[rows], codes[rows] = word_reasons(picked, part[:, self.columns], self.catalogue)
            general = rows[picked[:, 0] < 0]
            texts[general, 0], codes[general, 0] = GENERAL_TEXT, GENERAL_CODE
        columns = [f"reason_{i + 1}" for i in range(k)] + [f"reason_code_{i + 1}" for i in range(k)]
        return pd.DataFrame(
            np.concatenate([texts, codes], axis=1), columns=columns, index=frame.index, dtype=object
        )

    def predict(self, context, model_input, params=None):
        # No annotations here: MLflow would read them as a schema; the signature is explicit.
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [f["name"] for f in self.features if f["name"] not in frame.columns]
        if missing:
            raise ValueError(f"missing required column(s): {', '.join(missing)}")
        x = encode(frame, self.features)
        raw = self.form.raw(frame, x)
        p = self._calibrate(raw)
        q = np.clip(raw if self.score_raw else p, _EPS, 1 - _EPS)
        rule = self.state["decision"]
        declined = p >= rule["threshold"]
        # Text comes out as object columns, as pandas 2 gives them: pandas 3 would otherwise
        # convert every row to its own string type, a sizeable share of a batch's time.
        labels = np.asarray([rule["below"], rule["at_or_above"]], dtype=object)
        scored = pd.DataFrame(
            {
                "probability": p,
                "score": np.round(self.offset + self.factor * np.log((1 - q) / q), 2),
                "decision": pd.Series(
                    labels[declined.astype(np.intp)], index=frame.index, dtype=object
                ),
            },
            index=frame.index,
        )
        return pd.concat([scored, self.reasons(frame, declined, x)], axis=1)


mlflow.models.set_model(CreditScorer())
