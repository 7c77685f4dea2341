"""Parallel tuning: two worker processes on one PostgreSQL study against one, same budget.

Both sides are the real team path: `python -m creditgov.workers` processes (what
`creditgov train --workers N` starts) opening one Optuna study in PostgreSQL, each trial
logged as a child run (SQLite MLflow store in a temp folder). One LightGBM thread per
worker, pruning off so every trial does comparable work, a fresh study per repetition,
sides interleaved (1, 2, 1, 2, ...).

The figure is the study's own wall time: first trial start to last trial end, read from
the trials' timestamps in the storage. Process start-up (imports, reading the data) is
the same fixed cost for one worker or ten and is reported beside it, end to end, as
information. Target (team issue): 2 workers <= 0.6 x 1 worker on 2 cores.

Each study must end with exactly the budget of finished trials, or the benchmark raises:
otherwise the two sides did not do the same work.

    python -m benchmarks.team_tuning [--rows 20000] [--trials 12] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks import BenchResult, interleave

if TYPE_CHECKING:
    from benchmarks.harness import Context

__all__ = ["bench", "main", "run"]

TARGET = 0.6
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "credit_scoring.yaml"
POSTGRES = os.environ.get("CREDITGOV_TEAM_POSTGRES", "postgresql://postgres@127.0.0.1:5432")


def _study_span(storage: str, name: str, budget: int) -> tuple[float, float]:
    """(first start to last end, median trial duration) of the study, in seconds.

    The median trial duration tells a short-handed machine from overhead: if two
    workers' trials each take longer than one worker's, they were waiting for a core.
    """
    import optuna

    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.is_finished() and t.state.name != "FAIL"]
    if len(finished) != budget:
        raise RuntimeError(f"study {name}: {len(finished)} finished trials, expected {budget}")
    start = min(t.datetime_start for t in finished if t.datetime_start)
    end = max(t.datetime_complete for t in finished if t.datetime_complete)
    durations = [
        (t.datetime_complete - t.datetime_start).total_seconds()
        for t in finished
        if t.datetime_start and t.datetime_complete
    ]
    return (end - start).total_seconds(), statistics.median(durations)


def run(
    *,
    rows: int = 20_000,
    trials: int = 12,
    repeats: int = 3,
    postgres: str = POSTGRES,
    log: Callable[[str], None] = print,
) -> list[BenchResult]:
    from creditgov.config import load_config
    from datasets import make_credit, write_table
    from registry.tracking import use_tracking
    from server import create_databases, drop_databases
    from training.tuning import storage_url

    database = f"creditgov_bench_{secrets.token_hex(4)}"
    create_databases(postgres, [database])
    storage = storage_url(f"{postgres.rstrip('/')}/{database}")
    spans: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
    trial_medians: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
    try:
        with tempfile.TemporaryDirectory(prefix="creditgov-team-bench-") as tmp:
            folder = Path(tmp)
            write_table(make_credit(rows, seed=7).frame, folder / "credit.parquet")
            uri = f"sqlite:///{folder / 'mlflow.db'}"
            config = load_config(
                CONFIG,
                [
                    f"data.source={folder / 'credit.parquet'}",
                    f"tracking.uri={uri}",
                    f"tuning.n_trials={trials}",
                    "tuning.pruner=none",
                    f"tuning.storage={storage}",
                    "model.params.num_threads=1",
                ],
            )
            client = use_tracking(uri)
            experiment = client.create_experiment("team-tuning-bench")
            count = iter(range(10_000))

            def side(workers: int, label: str) -> Callable[[], None]:
                def go() -> None:
                    name = f"bench-{workers}-{next(count)}"
                    tuning = config.tuning.model_copy(update={"study_name": name})
                    path = folder / f"{name}.json"
                    path.write_text(
                        json.dumps(
                            config.model_copy(update={"tuning": tuning}).model_dump(mode="json")
                        ),
                        encoding="utf-8",
                    )
                    parent = client.create_run(experiment).info.run_id
                    command = [
                        sys.executable,
                        "-m",
                        "creditgov.workers",
                        str(path),
                        uri,
                        parent,
                        experiment,
                    ]
                    processes = [subprocess.Popen(command, cwd=folder) for _ in range(workers)]
                    codes = [p.wait() for p in processes]
                    if any(codes):
                        raise RuntimeError(f"{label}: worker exit codes {codes}")
                    client.set_terminated(parent)
                    span, trial_s = _study_span(storage, name, trials)
                    spans[label].append(span)
                    trial_medians[label].append(trial_s)
                    log(f"team: {label}, study {name}: {spans[label][-1]:.1f} s of tuning")

                return go

            samples = interleave(
                {"1 worker": side(1, "1 worker"), "2 workers": side(2, "2 workers")}, repeats
            )
    finally:
        drop_databases(postgres, [database])
    one, two = statistics.median(spans["1 worker"]), statistics.median(spans["2 workers"])
    ratios = [b / a for a, b in zip(spans["1 worker"], spans["2 workers"], strict=True)]
    end_to_end = samples["2 workers"].median / samples["1 worker"].median
    return [
        BenchResult(
            name="team",
            title=f"tuning {trials} trials: 2 workers vs 1 (PostgreSQL study)",
            kind="ratio",
            creditgov=two,
            reference=one,
            value=two / one,
            target=TARGET,
            unit="s",
            includes={
                "creditgov": "2 worker processes, one LightGBM thread each, one study",
                "bare / ref": "1 worker process, one LightGBM thread, same budget",
            },
            details={
                "rows": rows,
                "trials": trials,
                "min_ratio": min(ratios),
                "ratios": ratios,
                "study_span_s": spans,
                "trial_median_s": trial_medians,
                "loadavg_after": os.getloadavg(),
                "end_to_end": {k: v.to_json() for k, v in samples.items()},
                "end_to_end_ratio": end_to_end,
            },
        )
    ]


def bench(context: Context) -> list[BenchResult]:
    """`python -m benchmarks --only team`: its own 20k-row table, the study's wall time."""
    # The study's wall time, not the data size, is measured: `context.rows` is not used.
    return run(repeats=context.few_repeats, log=context.log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.team_tuning")
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", default=POSTGRES)
    args = parser.parse_args(argv)
    (result,) = run(
        rows=args.rows, trials=args.trials, repeats=args.repeats, postgres=args.postgres
    )
    details: Any = result.details
    print(
        f"{result.title}: {result.creditgov:.1f} s vs {result.reference:.1f} s -> "
        f"{result.value:.2f}x (target <= {TARGET}x, min {details['min_ratio']:.2f}x); "
        f"end to end {details['end_to_end_ratio']:.2f}x; median trial "
        + ", ".join(
            f"{k} {statistics.median(v):.2f} s" for k, v in details["trial_median_s"].items()
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
