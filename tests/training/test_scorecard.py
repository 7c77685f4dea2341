"""The scorecard's selection and sign rule, on data with planted characteristics.

Planted: `noise` (no relation to the outcome: IV near 0), `bureau_copy` (bureau_score
plus a little noise: correlated beyond 0.8 with a stronger characteristic) and, for the
sign rule, `planted` = z1 + z2 where the outcome rises with z1 (the bureau score's risk)
and falls with z2: alone it looks risky (its WOE says so), beside the bureau score its
coefficient turns the other way — the classic suppressor that makes a scorecard pay
points for risk. Selection is pinned against optbinning's own IV; the job's answer to the
flip is pinned end to end through the CLI (exit 2 with `on_sign_flip: fail`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from optbinning import BinningProcess

from creditgov.config import load_config
from creditgov.job import run
from datasets import make_credit, write_table
from tests.support import assert_bad_input, creditgov
from tests.training.helpers import CREDIT_ROLES
from training.data import load_dataset
from training.models.base import KindSettings, ParamsRefused
from training.models.kinds.scorecard import SignFlip
from training.models.registry import get_kind
from training.models.scorecard_bins import Selection
from training.models.spec import fit_model
from training.split import Splits, split_dataset

REPO = Path(__file__).resolve().parents[2]


def _planted(rows: int = 8000, seed: int = 4) -> pd.DataFrame:
    frame = make_credit(rows, seed=seed).frame
    rng = np.random.default_rng(seed)
    frame["noise"] = rng.normal(size=rows)
    frame["bureau_copy"] = frame["bureau_score"] + rng.normal(0.0, 5.0, size=rows)
    return frame


def _suppressor(rows: int = 12000, seed: int = 6) -> pd.DataFrame:
    """The outcome rewritten from z1 (bureau score's risk), z2 and debt-to-income."""
    frame = make_credit(rows, seed=seed).frame
    rng = np.random.default_rng(seed)
    bureau = frame["bureau_score"].fillna(frame["bureau_score"].median())
    z1 = -(bureau - bureau.mean()) / bureau.std()
    z2 = rng.normal(size=rows)
    dti = (frame["debt_to_income"] - frame["debt_to_income"].mean()) / frame["debt_to_income"].std()
    logit = -2.3 + 1.2 * z1 - 1.0 * z2 + 0.6 * dti
    frame["default_12m"] = (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["planted"] = z1 + z2
    return frame


def _splits(frame: pd.DataFrame, tmp: Path, features: list[str] | None = None) -> Splits:
    write_table(frame, tmp / "data.parquet")
    dataset = load_dataset(tmp / "data.parquet", **CREDIT_ROLES, features=features)  # type: ignore[arg-type]
    return split_dataset(dataset, method="random", test_fraction=0.3, valid_fraction=0.25, seed=1)


def _select(splits: Splits, **options: object) -> Selection:
    inputs = get_kind("scorecard").inputs(splits, KindSettings(options=options))
    selection: Selection = inputs.encoder
    return selection


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Splits:
    return _splits(_planted(), tmp_path_factory.mktemp("planted"))


def test_selection_drops_weak_and_correlated_characteristics_and_says_why(planted: Splits) -> None:
    selection = _select(planted)
    kept = {b.name for b in selection.kept}
    why = {d.name: d.reason for d in selection.dropped}
    assert "noise" in why and "below model.scorecard.min_iv 0.02" in why["noise"]
    # Of the correlated pair the weaker goes, naming the stronger one.
    pair = {"bureau_score", "bureau_copy"}
    assert len(pair & kept) == 1
    (gone,) = pair - kept
    (stays,) = pair & kept
    assert f"with {stays} " in why[gone] and "max_correlation 0.8" in why[gone]
    # IV is optbinning's own, and min_iv splits exactly at its line.
    names, categorical = list(planted.train.feature_names), list(planted.train.categorical)
    process = BinningProcess(
        names,
        categorical_variables=categorical,
        # The scorecard's trend where none is declared (optbinning's own default is "auto").
        binning_fit_params={
            n: {"monotonic_trend": "auto_asc_desc"} for n in names if n not in categorical
        },
    ).fit(planted.train.features, planted.train.target)
    iv = process.summary().set_index("name")["iv"].astype(float)
    ours = {b.name: b.iv for b in selection.kept}
    for name, value in ours.items():
        assert value == pytest.approx(iv[name], rel=1e-9)
    low = {n for n in planted.train.feature_names if iv[n] < 0.02}
    assert low <= set(why) and not low & kept


def test_max_features_keeps_the_highest_iv(planted: Splits) -> None:
    everything = _select(planted, min_iv=0.0, max_correlation=1.0)
    by_iv = sorted(everything.kept, key=lambda b: -b.iv)
    top = _select(planted, min_iv=0.0, max_correlation=1.0, max_features=3)
    assert {b.name for b in top.kept} == {b.name for b in by_iv[:3]}
    assert all("max_features 3" in d.reason for d in top.dropped)
    assert len(top.dropped) == len(by_iv) - 3


def test_a_trend_per_feature_and_a_selection_that_leaves_nothing(planted: Splits) -> None:
    valley = _select(planted, monotonic_trend={"annual_income": "descending"})
    income = next(b for b in valley.kept if b.name == "annual_income")
    assert np.all(np.diff(income.woe) >= -1e-12)  # risk falls with income: WOE rises
    with pytest.raises(ParamsRefused, match=r"model\.scorecard\.min_iv"):
        _select(planted, min_iv=9.0)
    with pytest.raises(ParamsRefused, match=r"monotonic_trend\.nobody"):
        _select(planted, monotonic_trend={"nobody": "ascending"})


@pytest.fixture(scope="module")
def suppressor(tmp_path_factory: pytest.TempPathFactory) -> Splits:
    return _splits(
        _suppressor(),
        tmp_path_factory.mktemp("suppressor"),
        features=["bureau_score", "debt_to_income", "planted"],
    )


def _fit(splits: Splits, on_sign_flip: str) -> object:
    from training.models.policy import ScoreScale

    return fit_model(
        splits, task="credit_scoring", model_type="scorecard", params={}, monotone={},
        calibration="none", score=ScoreScale(600, 50, 20), decision_rule="threshold",
        threshold=0.2, options={"on_sign_flip": on_sign_flip},
    ).spec  # fmt: skip


def test_a_planted_sign_flip_is_dropped_and_the_card_refitted(suppressor: Splits) -> None:
    from sklearn.linear_model import LogisticRegression

    selection = _select(suppressor)
    assert [b.name for b in selection.kept] == ["bureau_score", "debt_to_income", "planted"]
    # Independently: the plain regression on the three WOE columns pays `planted` the
    # wrong way (WOE rises as risk falls, so every coefficient should be negative).
    plain = LogisticRegression(max_iter=1000).fit(selection.woe["train"], suppressor.train.target)
    assert plain.coef_[0, 2] > 0 and (plain.coef_[0, :2] < 0).all()
    spec = _fit(suppressor, "drop")
    card = spec.model  # type: ignore[attr-defined]
    assert [c.name for c in card.characteristics] == ["bureau_score", "debt_to_income"]
    assert card.info()["scorecard_sign_violations"] == 0
    (flipped,) = [d for d in card.dropped if d.name == "planted"]
    assert "sign contradicts its WOE" in flipped.reason
    # The served signature no longer asks for it; the sheet lists it with the reason.
    assert "planted" not in spec.feature_names  # type: ignore[attr-defined]
    sheet = spec.sheet()  # type: ignore[attr-defined]
    dropped = sheet.tables["dropped_characteristics"]
    assert "planted" in set(dropped.characteristic)
    # Every kept characteristic's points rise with its WOE.
    for c in card.characteristics:
        order = np.argsort(c.binned.woe)
        assert np.all(np.diff(np.asarray(c.points)[order]) >= 0)
    with pytest.raises(SignFlip, match="'planted'"):
        _fit(suppressor, "fail")


def test_the_job_fails_a_sign_flip_with_exit_2_naming_it(tmp_path: Path) -> None:
    write_table(_suppressor(), tmp_path / "data.parquet")
    config = yaml.safe_load((REPO / "configs" / "credit_scorecard.yaml").read_text("utf-8"))
    config["data"].update(
        source="data.parquet", features=["bureau_score", "debt_to_income", "planted"]
    )
    config["model"].update(monotone={}, scorecard={"on_sign_flip": "fail"})
    config["tuning"]["n_trials"] = 0
    config = yaml.safe_dump(config)
    (tmp_path / "job.yaml").write_text(config, encoding="utf-8")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    done = creditgov("train", "job.yaml", cwd=tmp_path, tracking_uri=uri, timeout=300)
    # Refused before any run starts: nothing tracked, nothing registered.
    assert_bad_input(
        done, names="job.yaml", pieces=["model.scorecard.on_sign_flip", "'planted'"],
        db=tmp_path / "mlflow.db",
    )  # fmt: skip
    # With drop (the shipped default) the same job trains, without it.
    loaded = load_config(
        tmp_path / "job.yaml", [f"tracking.uri={uri}", "model.scorecard.on_sign_flip=drop"]
    )
    result = run(loaded)
    assert result.metrics["test"]["scorecard_sign_violations"] == 0
    assert result.model_version == "1"
    report = Path(result.reports["html"])
    assert report.name == "report.html"
    import mlflow

    local = Path(mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/reports",
                                                     tracking_uri=uri))  # fmt: skip
    dropped = pd.read_csv(local / "dropped_characteristics.csv")
    assert (
        "sign contradicts its WOE" in dropped.set_index("characteristic").loc["planted", "reason"]
    )
    assert "<h3>Dropped characteristics</h3>" in (local / "report.html").read_text()
