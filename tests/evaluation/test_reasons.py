"""Adverse-action reasons: hand-worked selection, per-row wording, the served mirror, checks."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest

from creditgov.config import load_config
from creditgov.job import run
from evaluation.reason_checks import check_reasons
from evaluation.reasons import (
    GENERAL_CODE,
    GENERAL_TEXT,
    ReasonCatalogue,
    ReasonEntry,
    adverse_indices,
    build_catalogue,
    reason_frame,
)
from tests.reason_checks import assert_only_adverse_reasons, codes_to_features
from tests.training.helpers import credit_splits
from training.models.base import Contributions
from training.models.encoding import FeatureSpec, encode
from training.models.policy import ScoreScale
from training.models.spec import ModelSpec, fit_model

REPO = Path(__file__).resolve().parents[2]

VALUES = np.array(
    [
        [0.5, 2.0, -1.0, 2.0, 0.1],  # b and d tie: b (earlier) first
        [1.0, 1.0, 1.0, 1.0, 1.0],  # approved
        [-0.3, -0.1, -2.0, -0.1, -5.0],  # declined with nothing adverse
        [0.0, 3.0, 0.2, -1.0, 0.0],  # a and e are 0: neither is a reason
    ]
)
DECLINED = np.array([True, False, True, True])


def test_adverse_indices_of_a_hand_worked_matrix() -> None:
    assert adverse_indices(VALUES, DECLINED, 3).tolist() == [
        [1, 3, 0],
        [-1, -1, -1],
        [-1, -1, -1],
        [1, 2, -1],
    ]
    assert adverse_indices(VALUES, DECLINED, 7)[0].tolist() == [1, 3, 0, 4, -1, -1, -1]


def test_adverse_indices_match_a_per_row_reference_with_many_ties() -> None:
    rng = np.random.default_rng(0)
    values = rng.integers(-2, 3, size=(300, 8)).astype(float)
    declined = rng.uniform(size=300) < 0.6
    got = adverse_indices(values, declined, 4)
    for i in range(300):
        ranked = sorted(range(8), key=lambda j: (-values[i, j], j))
        expected = [j for j in ranked if values[i, j] > 0][:4] if declined[i] else []
        assert got[i].tolist() == expected + [-1] * (4 - len(expected))


def _function(path: Path, name: str) -> str:
    """The function's code without its docstring, as a normalised AST dump."""
    tree = ast.parse(path.read_text())
    node = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    node.body = [
        b for b in node.body if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))
    ]
    node.returns = None
    for arg in node.args.args:
        arg.annotation = None
    return ast.dump(node)


@pytest.mark.parametrize("name", ["adverse_indices", "word_reasons"])
def test_the_served_model_repeats_selection_and_wording_verbatim(name: str) -> None:
    ours = _function(REPO / "evaluation" / "reasons.py", name)
    served = _function(REPO / "registry" / "scoring_model.py", name)
    assert ours == served


def _catalogue(**entries: ReasonEntry) -> ReasonCatalogue:
    return ReasonCatalogue(entries=tuple(entries.values()), k=2)


def test_wording_follows_the_value_against_the_low_risk_interval() -> None:
    u = ReasonEntry("u", "numeric", "R01", True, high="u high", low="u low", missing="u none",
                    lower=2.0, upper=4.0)  # fmt: skip
    up = ReasonEntry("up", "numeric", "R02", True, high="up high", low="up low", missing="-",
                     fixed=1, lower=-math.inf, upper=1.0)  # fmt: skip
    cat = ReasonEntry("c", "categorical", "R03", True, text="Channel {value}", missing="c none",
                      levels=("branch", "web"))  # fmt: skip
    catalogue = ReasonCatalogue(entries=(u, up, cat), k=3)
    encoded = np.array(
        [[1.0, 0.0, 1.0], [5.0, 9.0, 0.0], [np.nan, 9.0, np.nan], [2.5, 9.0, 1.0], [3.5, 9.0, 1.0]]
    )
    contrib = Contributions(np.ones((5, 3)) * [3.0, 2.0, 1.0], np.zeros(5), ("u", "up", "c"))
    got = reason_frame(contrib, encoded, declined=np.ones(5, dtype=bool), catalogue=catalogue)
    assert got["reason_1"].tolist() == ["u low", "u high", "u none", "u low", "u high"]
    assert got["reason_2"].tolist() == ["up high"] * 5  # declared +1: always high
    assert got["reason_3"].tolist() == [
        "Channel web",
        "Channel branch",
        "c none",
        "Channel web",
        "Channel web",
    ]
    assert got["reason_code_1"].tolist() == ["R01"] * 5


def test_a_decline_without_adverse_factor_is_told_the_cut_off_and_protected_never_appear() -> None:
    entries = {n: ReasonEntry(n, "numeric", n.upper(), False, high=f"{n}+", low=f"{n}-", missing="?")
               for n in "abcde"}  # fmt: skip
    catalogue = _catalogue(**entries)
    contrib = Contributions(VALUES, np.zeros(4), tuple("abcde"))
    got = reason_frame(
        contrib, np.zeros((4, 5)), declined=DECLINED, catalogue=catalogue, protected=["b"]
    )
    assert got.iloc[0].tolist() == ["d+", "a+", "D", "A"]
    assert got.iloc[1].tolist() == ["", "", "", ""]
    assert got.iloc[2].tolist() == [GENERAL_TEXT, "", GENERAL_CODE, ""]
    assert got.iloc[3].tolist() == ["c+", "", "C", ""]


def _fit(splits, model_type: str) -> ModelSpec:  # type: ignore[no-untyped-def]
    return fit_model(
        splits, task="credit_scoring", model_type=model_type, params={"num_boost_round": 60}
        if model_type == "lightgbm" else {}, monotone={"bureau_score": -1}, calibration="none",
        score=ScoreScale(600, 50, 20), decision_rule="threshold", threshold=0.15,
    ).spec  # fmt: skip


@pytest.mark.parametrize("model_type", ["lightgbm", "scorecard"])
def test_checks_on_a_fitted_model(model_type: str) -> None:
    splits = credit_splits()
    spec = _fit(splits, model_type)
    sample = splits.train.features.head(1500).reset_index(drop=True)
    contrib = spec.contributions(sample)
    cats = {f.name: f.levels for f in spec.features if f.kind == "categorical"}
    catalogue = build_catalogue(
        sample, contrib, k=4, categorical=cats,
        custom={"bureau_score": {"code": "R01", "low": "Bureau score is low"}},
        monotone={"bureau_score": -1},
    )  # fmt: skip
    assert catalogue.entry("bureau_score").fixed == -1
    assert catalogue.entry("bureau_score").code == "R01"
    test = splits.test.features.reset_index(drop=True)
    declined = spec.probability(test) >= 0.15
    eligible = list(catalogue.features)
    checks = check_reasons(
        spec, test, declined, catalogue=catalogue, eligible=eligible, refit=lambda: spec
    )
    assert checks.stability == 1.0  # the same model keeps every first reason
    assert checks.coverage == pytest.approx(1 / len(eligible))
    assert checks.faithfulness >= 0.9
    assert checks.declines == int(declined.sum())
    assert checks.first["first_reason"].sum() == checks.declines - checks.general
    # The first-reason table counts what the served rule picks, independently recounted.
    first = np.argmax(np.where(spec.contributions(test[declined]).values > 0,
                               spec.contributions(test[declined]).values, -np.inf), axis=1)  # fmt: skip
    counts = pd.Series([catalogue.entries[j].feature for j in first]).value_counts()
    assert dict(zip(checks.first["feature"], checks.first["first_reason"], strict=True)) == dict(
        counts
    )
    if model_type == "scorecard":
        assert checks.faithfulness == 1.0  # undoing lost points always raises the score


# --- a U-shaped feature, end to end through the served model ------------------------------


def _u_shaped(path: Path, rows: int = 8000) -> pd.DataFrame:
    rng = np.random.default_rng(4)
    bill = rng.uniform(0.0, 10.0, rows)
    channel = rng.choice(["branch", "web", "broker"], rows)
    noise = rng.normal(size=rows)
    absent = rng.uniform(size=rows) < 0.05  # an unstated bill: risky too
    logit = -2.2 + 0.35 * (bill - 5.0) ** 2 + np.where(channel == "broker", 0.8, 0.0)
    logit = np.where(absent, 2.0, logit)
    y = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    bill[absent] = np.nan
    frame = pd.DataFrame({"bill_amount": bill, "channel": channel, "noise": noise, "bad": y})
    frame.to_parquet(path)
    return frame


def test_a_u_shaped_feature_reads_high_for_some_and_low_for_others(tmp_path: Path) -> None:
    frame = _u_shaped(tmp_path / "u.parquet")
    (tmp_path / "u.yaml").write_text(
        json.dumps(
            {
                "name": "u-shape",
                "data": {"source": "u.parquet", "target": "bad"},
                "model": {"params": {"num_boost_round": 80, "num_threads": 1}},
                "tuning": {"n_trials": 0},
                "decision": {"approval_rate": 0.6},
                "evaluation": {
                    "shap_sample": 3000,
                    "reason_texts": {
                        "bill_amount": {
                            "code": "R10",
                            "high": "Bill amount is high",
                            "low": "Bill amount is low",
                            "missing": "No bill amount",
                        },
                        "channel": {"code": "R20", "text": "Applied through a {value}"},
                    },
                },
                "gates": [],
                "registry": {"model_name": "u-shape"},
                "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
            }
        )
    )
    result = run(load_config(tmp_path / "u.yaml"))
    model = mlflow.pyfunc.load_model(
        result.model_uri,
    )
    rows = frame.drop(columns="bad")
    served = model.predict(rows)
    local = Path(
        mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(tmp_path / "m"))
    )
    state = json.loads(next(local.rglob("state.json")).read_text())
    specs = [
        FeatureSpec(f["name"], f["kind"], tuple(f.get("levels", ())), f["dtype"])
        for f in state["features"]
    ]
    booster = lgb.Booster(model_str=next(local.rglob("model.txt")).read_text())
    bare = booster.predict(encode(rows, specs), pred_contrib=True)[:, :-1]
    assert_only_adverse_reasons(
        served,
        bare,
        [s.name for s in specs],
        codes_to_features(state),
        declined_label="decline",
        k=4,
    )
    texts = served[[f"reason_{i}" for i in range(1, 5)]]
    bill = rows["bill_amount"].to_numpy()
    high = (texts == "Bill amount is high").any(axis=1).to_numpy()
    low = (texts == "Bill amount is low").any(axis=1).to_numpy()
    assert high.sum() > 50 and low.sum() > 50
    assert (bill[high] > 5.0).mean() > 0.97 and (bill[low] < 5.0).mean() > 0.97
    none = (texts == "No bill amount").any(axis=1).to_numpy()
    assert none.any() and np.isnan(bill[none]).all()
    broker = (texts == "Applied through a broker").any(axis=1).to_numpy()
    assert broker.any() and (rows["channel"].to_numpy()[broker] == "broker").all()
    assert set(served.loc[high, "reason_code_1"]) >= {"R10"}
