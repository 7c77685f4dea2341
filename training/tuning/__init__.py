"""Hyper-parameter search with Optuna: seeded TPE, median pruning, resumable shared studies.

Three rooms: `study.py` opens the study (storage, heartbeats, resume), `search.py` runs
trials through the model protocol and scores them, `coordination.py` lets several
processes share one study's trial budget exactly. The names below are the package's
public face; import them from `training.tuning`.
"""

from training.tuning.coordination import StartLock, study_counts
from training.tuning.search import (
    WORKER_ATTR,
    Objective,
    SearchRange,
    TrialHook,
    TrialRecord,
    TuneResult,
    tune,
)
from training.tuning.study import TuneError, open_study, rdb_storage, storage_url

__all__ = [
    "WORKER_ATTR",
    "Objective",
    "SearchRange",
    "StartLock",
    "TrialHook",
    "TrialRecord",
    "TuneError",
    "TuneResult",
    "open_study",
    "rdb_storage",
    "storage_url",
    "study_counts",
    "tune",
]
