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
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.pyfunc.model import PythonModel

FORMAT = "creditgov-scoring/2"
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

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.booster.predict(encode(frame, self.features)), dtype=np.float64)

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        values = self.booster.predict(encode(frame, self.features), pred_contrib=True)
        return np.asarray(values, dtype=np.float64)[:, :-1]


class Additive:
    """The `additive` form: logit = intercept + sum of terms; a term's push is term - ref."""

    def __init__(
        self, section: dict[str, Any], features: list[dict[str, Any]], files: dict[str, str]
    ) -> None:
        self.intercept = float(section["intercept"])
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
            values = (
                _text(column)
                .map(lambda v: t["missing"] if v is None else lookup.get(v, 0.0))
                .to_numpy(dtype=np.float64)
            )
        return t["coefficient"] * values

    def raw(self, frame: pd.DataFrame) -> np.ndarray:
        logit = np.full(len(frame), self.intercept, dtype=np.float64)
        for t in self.terms:
            logit += self._term(t, frame[t["name"]])
        return 1.0 / (1.0 + np.exp(-logit))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        out = np.empty((len(frame), len(self.terms)), dtype=np.float64)
        for j, t in enumerate(self.terms):
            out[:, j] = self._term(t, frame[t["name"]]) - t["ref"]
        return out


FORMS: dict[str, type[Booster] | type[Additive]] = {"booster": Booster, "additive": Additive}


class CreditScorer(PythonModel):
    """probability, score and decision for each row of a DataFrame."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts["state"], encoding="utf-8") as handle:
            self.state = json.load(handle)
        if self.state.get("format") != FORMAT:
            raise ValueError(f"state format {self.state.get('format')!r} is not {FORMAT!r}")
        self.features = self.state["features"]
        section = self.state["model"]
        files = {key: context.artifacts[key] for key in section.get("files", {})}
        self.form = FORMS[section["form"]](section, self.features, files)
        score = self.state["score"]
        self.factor = score["pdo"] / math.log(2.0)
        self.offset = score["base_score"] - self.factor * math.log(score["base_odds"])

    def _calibrate(self, raw: np.ndarray) -> np.ndarray:
        cal = self.state["calibration"]
        if cal["method"] == "isotonic":
            return np.interp(raw, np.asarray(cal["x"]), np.asarray(cal["y"]))
        if cal["method"] == "sigmoid":
            p = np.clip(raw, 1e-12, 1 - 1e-12)
            z = cal["slope"] * np.log(p / (1 - p)) + cal["intercept"]
            return 1.0 / (1.0 + np.exp(-z))
        return raw

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        return self._calibrate(self.form.raw(frame))

    def contributions(self, frame: pd.DataFrame) -> np.ndarray:
        """Per-feature push toward decline: TreeSHAP (log-odds) or an additive term's push."""
        return self.form.contributions(frame)

    def reasons(self, frame: pd.DataFrame, declined: np.ndarray) -> pd.DataFrame:
        """reason_1..k: the k features pushing hardest toward decline; blank for approvals.

        Largest contribution first, ties by feature order (a stable sort), so a decline
        always has k reasons (or one per feature when there are fewer than k).
        """
        spec = self.state.get("reasons") or {"k": 0, "texts": {}}
        k = int(spec["k"])
        names = self.form.names
        texts = np.asarray([spec["texts"].get(n, n) for n in names] + [""], dtype=object)
        out = np.full((len(frame), k), "", dtype=object)
        rows = np.flatnonzero(declined)
        if k and len(rows):
            contrib = self.contributions(frame.iloc[rows])
            order = np.argsort(-contrib, axis=1, kind="stable")[:, :k]
            if order.shape[1] < k:
                pad = np.full((len(rows), k - order.shape[1]), len(names))
                order = np.concatenate([order, pad], axis=1)
            out[rows] = texts[order]
        columns = [f"reason_{i + 1}" for i in range(k)]
        return pd.DataFrame(out, columns=columns, index=frame.index, dtype=object)

    def predict(self, context, model_input, params=None):
        # No annotations here: MLflow would read them as a schema; the signature is explicit.
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        missing = [f["name"] for f in self.features if f["name"] not in frame.columns]
        if missing:
            raise ValueError(f"missing required column(s): {', '.join(missing)}")
        p = self.probability(frame)
        q = np.clip(p, _EPS, 1 - _EPS)
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
        return pd.concat([scored, self.reasons(frame, declined)], axis=1)


mlflow.models.set_model(CreditScorer())
