"""What the commands show: the training progress, split, metric and gate tables, the result."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.table import Table

from creditgov.cli.base import console, errors

__all__ = [
    "RichProgress",
    "print_alternatives",
    "print_gates",
    "print_metrics",
    "print_result",
    "print_splits",
]


def print_gates(gates: list[dict[str, Any]], status: str) -> None:
    if not gates:
        return
    table = Table(title=f"Gates: validation {status}", title_justify="left")
    for column in ("metric", "split", "value", "rule", "result"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for g in gates:
        value = "missing" if g["value"] is None else f"{g['value']:.4f}"
        verdict = "[green]pass[/]" if g["passed"] else "[bold red]FAIL[/]"
        table.add_row(g["metric"], g["split"], value, f"{g['op']} {g['threshold']:g}", verdict)
    console.print(table)


class RichProgress:
    """Stages as lines, tuning as a bar with the best value so far."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[best]}"),
            console=console,
            transient=False,
        )
        self.task: Any = None

    def __enter__(self) -> RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def stage(self, name: str) -> None:
        self.progress.console.print(f"[cyan]•[/] {name}")

    def trial(
        self, number: int, state: str, value: float | None, best: float | None, total: int
    ) -> None:
        if self.task is None:
            self.task = self.progress.add_task("trials", total=total, best="")
        best_text = "" if best is None else f"best {best:.4f}"
        self.progress.update(self.task, advance=1, best=best_text)


def print_splits(summaries: Any) -> None:
    table = Table(title="Splits", title_justify="left")
    for column in ("split", "rows", "bads", "bad rate", "from", "to"):
        table.add_column(
            column, justify="right" if column in {"rows", "bads", "bad rate"} else "left"
        )
    for s in summaries:
        row = s if isinstance(s, dict) else s.__dict__
        table.add_row(
            row["name"],
            f"{row['rows']:,}",
            f"{row['bads']:,}",
            f"{row['bad_rate']:.2%}",
            row["date_min"] or "",
            row["date_max"] or "",
        )
    console.print(table)


def print_metrics(metrics: dict[str, dict[str, float]]) -> None:
    shown = {
        "auc": "AUC", "gini": "Gini", "ks": "KS", "brier": "Brier", "approval_rate": "Approve",
        "psi_max": "PSI", "selection_rate_ratio": "SRR",
    }  # fmt: skip
    table = Table(title="Metrics", title_justify="left")
    table.add_column("split")
    for label in shown.values():
        table.add_column(label, justify="right")
    for split, values in metrics.items():
        cells = [values.get(n) for n in shown]
        table.add_row(split, *("" if v is None or v != v else f"{v:.3f}" for v in cells))
    console.print(table)


def print_alternatives(search: dict[str, Any]) -> None:
    """The chosen model beside the most accurate one, and what the search supports."""
    table = Table(title="Less discriminatory alternatives (validation)", title_justify="left")
    for column in ("", "alternative", "AUC", "selection-rate ratio"):
        table.add_column(
            column, justify="right" if column in {"AUC", "selection-rate ratio"} else "left"
        )
    for role in ("chosen", "most_accurate"):
        a = search[role]
        table.add_row(
            role.replace("_", " "),
            a["label"],
            "" if a["auc"] is None else f"{a['auc']:.4f}",
            "" if a["selection_rate_ratio"] is None else f"{a['selection_rate_ratio']:.3f}",
        )
    console.print(table)
    console.print(search["statement"], highlight=False)


def print_result(summary: dict[str, Any], tracking_uri: str) -> None:
    print_splits(summary["splits"])
    print_metrics(summary["metrics"])
    print_gates(summary["gates"], summary["validation_status"])
    if summary["best_params"]:
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in summary["best_params"].items()
        )
        console.print(f"Best of {summary['n_trials']} trials: {params}")
    search = summary.get("alternatives") or {}
    if search:
        print_alternatives(search)
    for note in summary.get("notes", []):
        errors.print(f"[yellow]warning:[/] {note}", highlight=False)
    for dropped in summary["dropped_features"]:
        errors.print(
            f"[yellow]warning:[/] dropped feature {dropped['name']!r}: {dropped['reason']}"
        )
    console.print(
        f"Run [bold]{summary['run_id']}[/] (experiment {summary['experiment_id']}); "
        f"registered [bold]{summary['model_uri']}[/] with validation_status={summary['validation_status']}"
    )
    if tracking_uri.startswith("sqlite:"):
        ui = Path(sys.executable).with_name("mlflow")
        command = ui if ui.exists() else "mlflow"
        console.print(
            f"Open the MLflow UI: {command} ui --backend-store-uri {tracking_uri}", highlight=False
        )
