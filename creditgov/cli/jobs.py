"""Job commands: synth, validate, train, evaluate, drift, report, score, serve.

Each parses its options, calls one function (`creditgov.job.run`, `creditgov.checks`,
`registry.scoring`, `datasets`) and prints; heavy libraries are imported inside the
commands so `creditgov --help` answers at once.
"""

from __future__ import annotations

import json
import signal
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from creditgov.cli.base import (
    SetOption,
    app,
    console,
    errors,
    fail,
    interrupted,
    terminate,
    write_json,
)
from creditgov.cli.display import (
    RichProgress,
    print_gates,
    print_metrics,
    print_result,
    print_splits,
)
from creditgov.errors import EXIT_BAD_INPUT, EXIT_BREACH, EXIT_UNEXPECTED

__all__ = ["Kind", "drift", "evaluate", "report_", "score", "serve", "synth", "train", "validate"]


class Kind(StrEnum):
    credit = "credit"
    fraud = "fraud"


@app.command()
def synth(
    kind: Annotated[Kind, typer.Argument(help="credit applications or card transactions")],
    rows: Annotated[int, typer.Option(min=100, help="number of rows")] = 50_000,
    out: Annotated[Path, typer.Option(help="output table, .csv or .parquet")] = Path(
        "data/credit.parquet"
    ),
    seed: Annotated[int, typer.Option(help="random seed; same seed, same table")] = 0,
    truth: Annotated[
        Path | None, typer.Option(help="also write each row's true probability here")
    ] = None,
) -> None:
    """Write a synthetic table with a known risk function (and optionally the truth).

    The true probabilities give the Bayes AUC: the best AUC any model could reach on
    those rows, so you can see how close a job gets.
    """
    from datasets import make_credit, make_fraud, write_table, write_truth

    for path in (out, truth):
        if path is not None and path.suffix.lower() not in {".csv", ".parquet"}:
            raise fail(f"{path}: use a .csv or .parquet file name", EXIT_BAD_INPUT)
    with console.status(f"Generating {rows:,} {kind.value} rows"):
        data = make_credit(rows, seed=seed) if kind is Kind.credit else make_fraud(rows, seed=seed)
        out.parent.mkdir(parents=True, exist_ok=True)
        write_table(data.frame, out)
        if truth is not None:
            truth.parent.mkdir(parents=True, exist_ok=True)
            write_truth(data, truth)
    target = "default_12m" if kind is Kind.credit else "is_fraud"
    rate = float(data.frame[target].mean())
    console.print(f"Wrote {len(data.frame):,} rows to [bold]{out}[/] (positive rate {rate:.2%})")
    if truth is not None:
        from sklearn.metrics import roc_auc_score

        bayes = roc_auc_score(data.frame[target], data.truth)
        console.print(f"Wrote true probabilities to [bold]{truth}[/] (Bayes AUC {bayes:.4f})")


@app.command()
def validate(
    config: Annotated[Path, typer.Argument(help="the job's YAML file")],
    set_: SetOption = None,
) -> None:
    """Check the config and the data without training; print the resolved config."""
    import yaml

    from creditgov.config import load_config

    cfg = load_config(config, set_ or [])
    from creditgov.stages import prepare  # only now: a config typo answers without sklearn

    with console.status("Reading and validating the data"):
        splits = prepare(cfg)
    console.print(
        yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False).rstrip(), highlight=False
    )
    print_splits(splits.summary())
    for dropped in splits.train.dropped:
        errors.print(f"[yellow]warning:[/] dropped feature {dropped.name!r}: {dropped.reason}")
    console.print(
        f"[green]OK[/] {config}: config and data are valid ({len(splits.train.feature_names)} features)."
    )


@app.command()
def train(
    config: Annotated[Path, typer.Argument(help="the job's YAML file")],
    set_: SetOption = None,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="write the run summary here")
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="continue the named study in tuning.storage after a crash")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            help="processes tuning the shared study in tuning.storage; "
            "joins the study if another machine's job already runs it"
        ),
    ] = None,
) -> None:
    """Data -> split -> tune -> fit -> measure -> log -> register, as one MLflow run.

    Personal data (a value of a data.pii column) found anywhere the run logged fails it:
    exit 1 with the places named, the run FAILED and its version deleted.
    """
    from creditgov.config import load_config

    signal.signal(signal.SIGTERM, terminate)
    cfg = load_config(config, set_ or [])
    from creditgov.job import run  # only now: a config typo answers without sklearn

    bar = RichProgress()
    try:
        with bar:
            joined = _join(cfg, workers, resume, bar) if workers is not None else None
            if joined is None:
                result = run(cfg, resume=resume, progress=bar, workers=workers or 1)
    except KeyboardInterrupt:
        raise interrupted(
            "interrupted; the MLflow run was marked KILLED and nothing was registered"
        ) from None
    if joined is not None:
        console.print(
            f"Added {joined.trials_here} trials to study {joined.study_name!r} "
            f"({joined.n_finished} finished); run {joined.run_id} fits and registers the model"
        )
        write_json(json_path, asdict(joined))
        return
    summary = result.summary()
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    print_result(summary, result.tracking_uri)


def _join(cfg: Any, workers: int, resume: bool, bar: Any) -> Any:
    """Tune another job's running study from here (same command, another machine)."""
    from creditgov.workers import check_workers, join_running_study

    check_workers(cfg, workers)
    return join_running_study(cfg, workers, resume=resume, show=bar)


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="models:/NAME/VERSION or models:/NAME@ALIAS")],
    data: Annotated[Path, typer.Option(help="new labelled data, .csv or .parquet")],
    json_path: Annotated[Path | None, typer.Option("--json", help="write the summary here")] = None,
    report: Annotated[
        Path | None, typer.Option(help="write report.html, evidence.json, model_card.md here")
    ] = None,
) -> None:
    """Re-test a registered model on new labelled data: the same evidence as `train`."""
    from creditgov.checks import retest

    with console.status("Scoring, explaining and testing the batch"):
        outcome = retest(model, data, report_dir=report)
    summary = outcome.summary()
    write_json(json_path, summary)
    print_metrics(summary["metrics"])
    print_gates(summary["gates"], summary["validation_status"])
    for kind, path in outcome.reports.items():
        console.print(f"{kind}: {path}")


@app.command()
def drift(
    model: Annotated[str, typer.Option(help="models:/NAME/VERSION or models:/NAME@ALIAS")],
    data: Annotated[Path, typer.Option(help="a new batch, .csv or .parquet; no labels needed")],
    json_path: Annotated[Path | None, typer.Option("--json", help="write the result here")] = None,
    report: Annotated[
        Path | None, typer.Option(help="write drift.html and drift.json here")
    ] = None,
    fail_on_drift: Annotated[
        bool,
        typer.Option("--fail-on-drift", help="exit 4 when any feature's PSI is over the threshold"),
    ] = False,
) -> None:
    """Compare a new batch with the population the model was trained on (PSI, KS, new levels).

    A batch with no rows, or a feature column missing or holding text where the model had
    numbers, exits 2 (naming the column and the first such row, never the value). An empty
    column or unseen levels are what drift reports, not errors: --json names unseen levels
    only for the features data.categorical declares, and counts them for the others.
    """
    from creditgov.checks import check_drift

    with console.status("Comparing the batch with the training population"):
        outcome = check_drift(model, data, report_dir=report)
    result = outcome.result
    write_json(json_path, outcome.summary())
    table = Table(
        title=f"Drift of {data.name} against models:/{outcome.model_name}/{outcome.model_version}",
        title_justify="left",
    )
    for column in ("feature", "psi", "ks", "missing ref → new", "new levels", ""):
        table.add_column(
            column, justify="left" if column in {"feature", "new levels", ""} else "right"
        )
    rows: list[dict[Any, Any]] = (
        result.table().sort_values("psi", ascending=False).to_dict("records")
    )
    for row in rows:
        ks = "" if row["ks"] is None or row["ks"] != row["ks"] else f"{row['ks']:.3f}"
        psi = row["psi"]
        flag = "[red]drift[/]" if row["drifted"] else ("[yellow]moderate[/]" if psi > 0.1 else "")
        table.add_row(
            str(row["feature"]),
            f"{psi:.4f}",
            ks,
            f"{row['missing_ref']:.1%} → {row['missing_new']:.1%}",
            str(row["new_levels"] or ""),
            flag,
        )
    console.print(table)
    score = "" if result.score_psi is None else f"; score PSI {result.score_psi:.4f}"
    console.print(f"Max feature PSI {result.psi_max:.4f} (threshold {result.threshold:g}){score}.")
    for kind, path in outcome.reports.items():
        console.print(f"{kind}: {path}")
    if result.drifted:
        console.print(f"[bold red]Drifted:[/] {', '.join(result.drifted)}")
        if fail_on_drift:
            raise typer.Exit(EXIT_BREACH)


@app.command("report")
def report_(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="model version")],
    out: Annotated[Path, typer.Option(help="folder to write the report files into")] = Path(
        "report"
    ),
) -> None:
    """Fetch a version's reviewer files: report.html, evidence.json, model_card.md.

    A scorecard's points table (points_table.csv) and the characteristics it left out
    (dropped_characteristics.csv) come with them.
    """
    from creditgov.checks import fetch_reports

    files = fetch_reports(name, version, out)
    for path in files:
        console.print(str(path))


@app.command()
def score(
    model: Annotated[str, typer.Option(help="models:/NAME/VERSION or models:/NAME@ALIAS")],
    input_: Annotated[
        Path, typer.Option("--input", help="applications to score, .csv or .parquet")
    ],
    output: Annotated[Path, typer.Option(help="where the scores go, .csv or .parquet")],
    chunk_rows: Annotated[
        int, typer.Option(min=1, help="rows scored at a time; bounds the memory used")
    ] = 50_000,
) -> None:
    """Score a file with a registered model, streamed in chunks of --chunk-rows rows.

    The output holds the input's id column, then probability, score, decision and
    reason_1..k; no other input column (personal data included) is copied. A version whose
    model files were edited or deleted after registration is refused (exit 3).

    Bad input exits 2 and writes nothing: a missing or mistyped feature column, a file with
    no rows, or a feature training always had that is empty in every row. A level never
    seen in training is scored as missing, with one warning per column. Messages name
    the column and the data row, never a cell's value.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from registry.scoring import score_file

    bar = Progress(
        "scoring", BarColumn(), MofNCompleteColumn(), "rows", TimeElapsedColumn(), console=console
    )
    task = bar.add_task("scoring", total=None)

    def advance(done: int, total: int | None) -> None:
        if not bar.live.is_started:  # shown once the input is open, not for early errors
            bar.start()
        bar.update(task, completed=done, total=total)

    signal.signal(signal.SIGTERM, terminate)
    try:
        summary = score_file(model, input_, output, chunk_rows=chunk_rows, progress=advance)
    except KeyboardInterrupt:
        raise interrupted(f"interrupted; {output} was not written") from None
    finally:
        if bar.live.is_started:
            bar.stop()
    counts = ", ".join(f"{n:,} {label}" for label, n in sorted(summary.decisions.items()))
    chunks = f"{summary.chunks:,} chunk" + ("" if summary.chunks == 1 else "s")
    console.print(
        f"Scored {summary.rows:,} rows in {chunks} ({counts}) with "
        f"models:/{summary.model_name}/{summary.model_version} in {summary.seconds:.1f} s; "
        f"wrote [bold]{escape(str(summary.output))}[/]"
    )
    for name, rows in summary.unseen.items():
        errors.print(
            f"[yellow]warning:[/] {escape(str(input_))}: column {escape(repr(name))}: {rows:,} "
            f"rows hold a level the model never saw in training and were scored as missing; "
            f"`creditgov drift` reports the new levels",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def serve(
    model_uri: Annotated[str, typer.Argument(help="models:/NAME/VERSION or models:/NAME@ALIAS")],
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 5001,
) -> None:
    """Verify a registered model's files, then `mlflow models serve` the verified copy.

    POST /invocations answers with the same columns as `score` (probability, score,
    decision, reasons). The version is downloaded once; its audit chain (signed on a team
    server) and that copy's file hashes must match what was recorded at registration, or
    nothing is served (exit 3). Ctrl-C or SIGTERM stops the server.
    """
    from registry.governance.loading import VerifiedModel
    from registry.serving import serve_verified

    def ready(model: VerifiedModel) -> None:
        console.print(
            f"models:/{model.name}/{model.version}: files verified "
            f"({escape(model.trust.describe())}); serving on http://{host}:{port}/invocations"
        )

    code = serve_verified(model_uri, host=host, port=port, on_ready=ready)
    if code > 0:
        raise fail(f"mlflow models serve exited with code {code}", EXIT_UNEXPECTED)
