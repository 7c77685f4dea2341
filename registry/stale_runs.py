"""End the MLflow runs of training processes that died without ending them.

A process killed with SIGKILL (or by the OOM killer, or a lost machine) cannot mark its
run: it stays RUNNING forever and a reader cannot tell it from a live job. `creditgov
train --resume` continues such a job's tuning study, so it is the natural moment to
settle the dead one: every RUNNING run of the same study (same `tuning.storage` and
`tuning.study_name` params) whose process is gone is marked KILLED, with a tag saying
which run resumed it.

"Gone" is decided only where it can be known: the job tags its run with its host name
and process id, and a run of this host whose process no longer exists is dead. A run on
another host is left alone — team-mode workers on other machines may be alive and
tuning the same study — and is named in the result so the caller can say so.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from mlflow.tracking import MlflowClient

__all__ = ["HOST_TAG", "PID_TAG", "StaleRuns", "end_stale_runs", "process_tags"]

HOST_TAG = "creditgov.host"
PID_TAG = "creditgov.pid"
ENDED_BY_TAG = "creditgov.ended_by"


@dataclass(frozen=True)
class StaleRuns:
    killed: tuple[str, ...]  # run ids marked KILLED (trial child runs included)
    elsewhere: tuple[str, ...]  # RUNNING runs of the study on other hosts, left alone


def process_tags() -> dict[str, str]:
    """The tags that let a later `--resume` tell whether this run's process still lives."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def end_stale_runs(
    client: MlflowClient,
    experiment_id: str,
    *,
    storage: str,
    study_name: str,
    current_run_id: str,
) -> StaleRuns:
    """Mark KILLED the RUNNING runs of this study whose process on this host is gone."""
    host = socket.gethostname()
    running = client.search_runs(
        [experiment_id],
        f"attributes.status = 'RUNNING' and params.`tuning.study_name` = '{study_name}'",
    )
    killed: list[str] = []
    elsewhere: list[str] = []
    for run in running:
        if run.info.run_id == current_run_id or run.data.params.get("tuning.storage") != storage:
            continue
        tags = run.data.tags
        pid = tags.get(PID_TAG, "")
        if tags.get(HOST_TAG) != host or not pid.isdigit():
            elsewhere.append(run.info.run_id)
            continue
        if _alive(int(pid)) and int(pid) != os.getpid():
            continue
        children = client.search_runs(
            [experiment_id],
            f"attributes.status = 'RUNNING' and tags.mlflow.parentRunId = '{run.info.run_id}'",
        )
        for stale in [*children, run]:
            client.set_tag(
                stale.info.run_id,
                ENDED_BY_TAG,
                f"run {current_run_id} (--resume): process {pid} on {host} was gone",
            )
            client.set_terminated(stale.info.run_id, status="KILLED")
            killed.append(stale.info.run_id)
    return StaleRuns(killed=tuple(killed), elsewhere=tuple(elsewhere))
