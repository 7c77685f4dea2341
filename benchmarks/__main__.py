"""`python -m benchmarks` (`make bench`): run the benchmarks, print a table, save JSON.

    python -m benchmarks                      # everything on 200k rows (30 min on 2 busy cores)
    python -m benchmarks --rows 20000         # a quick pass
    python -m benchmarks --only fit --only job

Every run is saved to benchmarks/results/<UTC timestamp>.json with the machine it ran on
(core count, load, library versions, commit), because a ratio means little without them.
The exit code is 0 whatever the verdicts (benchmarks are not tests) unless `--strict`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks.harness import BenchResult, Context, choose_rounds, make_data

RESULTS = Path(__file__).resolve().parent / "results"
#: `--only` name -> the module whose `bench(context) -> list[BenchResult]` runs it, in the
#: order they run.
BENCHMARKS: dict[str, str] = {
    "fit": "benchmarks.fit",
    "job": "benchmarks.job",
    "accuracy": "benchmarks.accuracy",
    "drift": "benchmarks.drift",
    "shap": "benchmarks.shap_cost",
    "serving": "benchmarks.serving",
    "team": "benchmarks.team_tuning",
    "lda": "benchmarks.lda",
}
#: The benchmarks that boost the rounds `choose_rounds` picks.
FIXED_ROUNDS = {"fit", "job"}
LIBRARIES = (
    "creditgov",
    "lightgbm",
    "mlflow",
    "optuna",
    "numpy",
    "pandas",
    "pyarrow",
    "scikit-learn",
    "sqlalchemy",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark the creditgov training job against bare LightGBM.",
    )
    parser.add_argument("--rows", type=int, default=200_000, help="synthetic credit rows")
    parser.add_argument(
        "--only",
        action="append",
        choices=list(BENCHMARKS),
        metavar="NAME",
        help=f"run only this benchmark (repeatable): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--repeats", type=int, default=7, help="interleaved repetitions per side (at least 3)"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=300,
        help="boosting rounds for fit/job (fewer if the valid AUC peaks earlier; see JSON)",
    )
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic data")
    parser.add_argument(
        "--trials", type=int, default=None, help="override tuning.n_trials of the accuracy run"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON result")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3: a median of fewer is not a median")
    if args.rows < 1000:
        parser.error("--rows must be at least 1000 for the splits to hold both classes")
    selected = [b for b in BENCHMARKS if not args.only or b in args.only]

    # The same environment `creditgov train` sets up for itself (creditgov/cli/base.py).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # noqa: F401  # configures its logger on import; quieten it after that

    logging.getLogger("mlflow").setLevel(logging.WARNING)

    # Piped into a file or a CI log, the tables keep their width instead of wrapping at 80.
    out = Console(width=None if sys.stdout.isatty() else 140)
    err = Console(stderr=True)
    t0 = time.perf_counter()

    def log(message: str) -> None:
        err.print(f"[dim]{time.perf_counter() - t0:7.1f}s[/] {message}", highlight=False)

    started = datetime.now(UTC)
    machine = machine_info()
    log(
        f"{machine['nproc']} cores, load {machine['loadavg_start']}; "
        f"running {', '.join(selected)} on {args.rows} rows"
    )
    results: list[BenchResult] = []
    failures: dict[str, str] = {}
    load: dict[str, Any] = {}
    record: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="creditgov-bench-") as tmp:
        workdir = Path(tmp)
        data = make_data(workdir, args.rows, args.seed)
        log(f"data: {args.rows} rows written in {data.seconds:.1f} s")
        rounds = None
        if FIXED_ROUNDS & set(selected):
            rounds = choose_rounds(data, args.rounds)
            log(
                f"rounds: {rounds.requested} requested, valid AUC peaks at {rounds.valid_peak}, "
                f"using {rounds.used}"
            )
            record["rounds"] = rounds.to_json()
        context = Context(
            rows=args.rows,
            repeats=args.repeats,
            seed=args.seed,
            trials=args.trials,
            workdir=workdir,
            data=data,
            log=log,
            rounds=rounds,
            record=record,
        )
        for name in selected:
            before = os.getloadavg()
            try:
                results += importlib.import_module(BENCHMARKS[name]).bench(context)
            except Exception as error:  # one broken benchmark must not lose the others
                failures[name] = f"{type(error).__name__}: {error}"
                err.print(traceback.format_exc(), highlight=False)
            load[name] = {"before": before, "after": os.getloadavg()}

    print_report(out, results, failures)
    machine["loadavg_end"] = os.getloadavg()
    document = {
        "started": started.isoformat(),
        "duration_s": round(time.perf_counter() - t0, 1),
        "argv": list(sys.argv[1:] if argv is None else argv),
        "settings": {
            "rows": args.rows,
            "seed": args.seed,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "trials": args.trials,
            "benchmarks": selected,
        },
        **record,
        "machine": machine,
        "load": load,
        "results": [r.to_json() for r in results],
        "failures": failures,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    out.print(f"Saved {path}", highlight=False)
    missed = failures or any(r.passed is False for r in results)
    return 1 if args.strict and missed else 0


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on; ratios travel better than seconds, but not far."""
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gb": _memory_gb(),
        "loadavg_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": versions,
        "git": _git_commit(),
    }


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return None


def _git_commit() -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{sha}-dirty" if dirty else sha


def _figure(value: float, unit: str) -> str:
    return f"{value:.2f} s" if unit == "s" else f"{value:.4f}"


def print_report(
    console: Console, results: Sequence[BenchResult], failures: dict[str, str]
) -> None:
    """The summary table, then each benchmark's breakdown, then any benchmark that broke."""
    table = Table(title="creditgov vs bare libraries (medians of interleaved runs)")
    columns = ("benchmark", "creditgov", "bare / ref", "ratio / gap", "min ratio", "target", "")
    for column in columns:
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for r in results:
        value = f"{r.value:.2f}×" if r.kind == "ratio" else f"{r.value:+.4f}"
        if r.target is None:
            target, verdict = "—", "[dim]info[/]"
        else:
            target = f"≤ {r.target:.2f}×" if r.kind == "ratio" else f"≤ {r.target:.3f}"
            verdict = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
        min_ratio = r.details.get("min_ratio")
        table.add_row(
            r.title,
            _figure(r.creditgov, r.unit),
            _figure(r.reference, r.unit),
            value,
            "" if min_ratio is None else f"{min_ratio:.2f}×",
            target,
            verdict,
        )
    for name in failures:
        table.add_row(name, "—", "—", "—", "—", "—", "[red]ERROR[/]")
    console.print(table)

    for r in results:
        breakdown = r.details.get("breakdown")
        if not breakdown:
            continue
        part_table = Table(title=breakdown["title"])
        part_table.add_column("part")
        part_table.add_column("seconds", justify="right")
        shares = any("share" in row for row in breakdown["rows"])
        if shares:
            part_table.add_column("share of job", justify="right")
        for row in breakdown["rows"]:
            cells = [row["part"], f"{row['median_s']:.3f}"]
            if shares:
                cells.append(f"{row['share']:.0%}" if "share" in row else "")
            part_table.add_row(*cells)
        console.print(part_table)

    for r in results:
        for part, message in r.details.get("parts_broken", {}).items():
            console.print(f"[yellow]{r.name}: could not time {part}:[/] {message}")
        profile = r.details.get("profile")
        if not profile:
            continue
        hot = Table(
            title=(
                f"One job run under cProfile ({profile['wall_s']:.1f} s): top self time "
                "(Python loops look slower than they are)"
            )
        )
        for column in ("function", "calls", "self s", "cumulative s"):
            hot.add_column(column, justify="left" if column == "function" else "right")
        for row in profile["by_self"][:15]:
            hot.add_row(
                row["function"],
                str(row["calls"]),
                f"{row['self_s']:.3f}",
                f"{row['cumulative_s']:.3f}",
            )
        console.print(hot)

    for r in results:
        if r.name == "accuracy":
            scores = r.details["scores"]
            bare = r.details["bare_lightgbm_defaults"]
            for split in ("valid", "test"):
                s = scores[split]
                console.print(
                    f"{split}: job AUC {s['job_auc']:.4f}, served model AUC "
                    f"{s['served_model_auc']:.4f}, Bayes AUC {s['bayes_auc']:.4f} "
                    f"({int(s['rows'])} rows, {int(s['bads'])} bads)",
                    highlight=False,
                )
            console.print(
                f"bare LightGBM defaults + early stopping: test AUC {bare['test_auc']:.4f} "
                f"(gap {bare['gap']:+.4f}); job: {r.details['n_trials']} trials "
                f"{r.details['trial_states']}, best {r.details['best_params']}",
                highlight=False,
            )
    for name, message in failures.items():
        console.print(f"[red]{name} failed:[/] {message}", highlight=False)


if __name__ == "__main__":
    sys.exit(main())
