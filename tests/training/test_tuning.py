"""Optuna tuning: seeded, prunes, resumes from RDB storage without losing trials."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from creditgov.config import SearchParam
from evaluation.metrics import tuning_objective
from tests.training.helpers import credit_splits
from training.tuning import TuneError, open_study, tune

SPACE = {
    "num_leaves": SearchParam(type="int", low=4, high=64, log=True),
    "learning_rate": SearchParam(type="float", low=0.005, high=0.3, log=True),
}
BASE = {"num_boost_round": 150, "early_stopping_rounds": 20, "num_threads": 1}


def _tune(study: optuna.Study, n_trials: int, hooks=()):  # type: ignore[no-untyped-def]
    return tune(
        credit_splits(),
        model_type="lightgbm",
        base_params=BASE,
        monotone={},
        search_space=SPACE,
        objective=tuning_objective("auc"),
        study=study,
        n_trials=n_trials,
        seed=3,
        hooks=hooks,
    )


def _study(
    storage: str | None = None,
    name: str | None = None,
    resume: bool = False,
    pruner: str = "median",
):  # type: ignore[no-untyped-def]
    return open_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        seed=3,
        pruner=pruner,
        resume=resume,  # type: ignore[arg-type]
    )


def test_same_seed_proposes_the_same_trials() -> None:
    a = _tune(_study(pruner="none"), 4)
    b = _tune(_study(pruner="none"), 4)
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [t.value for t in a.trials] == [t.value for t in b.trials]
    assert a.best_value == max(t.value for t in a.trials if t.value is not None)


def test_hooks_see_every_trial_with_its_learning_curve() -> None:
    seen = []
    result = _tune(_study(), 3, hooks=[lambda record, best: seen.append((record, best))])
    assert [r.number for r, _ in seen] == [0, 1, 2]
    assert all(len(r.curve) >= 1 for r, _ in seen)
    assert seen[-1][1] == result.best_value


def test_median_pruner_stops_weak_trials() -> None:
    result = _tune(_study(pruner="median"), 14)
    states = [t.state for t in result.trials]
    assert "PRUNED" in states, states
    pruned = [t for t in result.trials if t.state == "PRUNED"]
    assert all(t.value is None and len(t.curve) < BASE["num_boost_round"] for t in pruned)


def test_resume_continues_a_named_study_without_losing_trials(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    first = _tune(_study(url, "credit"), 3)
    assert first.n_finished == 3
    with pytest.raises(TuneError, match=r"already exists .* pass --resume"):
        _study(url, "credit")
    resumed = _tune(_study(url, "credit", resume=True), 5)
    assert [t.number for t in resumed.trials] == [3, 4]
    assert resumed.n_finished == 5
    stored = optuna.load_study(study_name="credit", storage=url)
    assert len(stored.trials) == 5


def test_resume_needs_storage_and_a_study_name() -> None:
    with pytest.raises(TuneError, match=r"--resume needs tuning\.storage"):
        _study(None, None, resume=True)
