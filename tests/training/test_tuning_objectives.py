"""A multi-objective study whose extra objective is sometimes undefined still fills its budget."""

from __future__ import annotations

import math

import optuna
from sklearn.metrics import roc_auc_score

from tests.training.helpers import credit_splits
from training.tuning import Objective, open_study, tune


def test_an_undefined_extra_objective_scores_worst_and_the_budget_fills() -> None:
    calls: list[int] = []

    def sometimes(y, p):  # type: ignore[no-untyped-def]
        calls.append(1)
        return math.nan if len(calls) % 2 else 0.5

    auc = Objective("auc", "maximize", lambda y, p: float(roc_auc_score(y, p)), "auc")
    extra = Objective("selection_rate_ratio", "maximize", sometimes, "")
    study = open_study(storage=None, study_name=None, direction="maximize", seed=0,
                       pruner="median", resume=False, extra_directions=("maximize",))  # fmt: skip
    result = tune(
        credit_splits(), model_type="lightgbm", base_params={"num_boost_round": 20},
        monotone={}, search_space={}, objective=auc, study=study, n_trials=4,
        extra_objectives=[extra],
    )  # fmt: skip
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) == 4
    ratios = [r.values[1] for r in result.alternatives]
    assert sum(math.isnan(v) for v in ratios) == 2 and ratios.count(0.5) == 2
    assert result.best_value == max(r.values[0] for r in result.alternatives)
