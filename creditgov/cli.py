"""The `creditgov` command line: parse, call one function, print. No logic lives here.

Exit codes (CLI.md): 0 success, 2 bad input, 3 a governance rule refused, 4 drift or a
gate breached when asked to fail on it, 1 anything unexpected. Heavy libraries are
imported inside the commands so `creditgov --help` answers at once.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from creditgov.errors import (
    EXIT_BAD_INPUT,
    EXIT_BREACH,
    EXIT_REFUSED,
    EXIT_UNEXPECTED,
    CreditgovError,
)


class _App(typer.Typer):
    """A Typer app whose every command maps the error family to its exit code.

    The one place exit codes come from (creditgov/errors.py): a command raises the class
    that says what went wrong; this prints its one line and exits with the class's code,
    however the command is invoked (the console script, `python -m`, a test's runner).
    """

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
        register = super().command(*args, **kwargs)

        def decorator(function: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(function)
            def mapped(*a: Any, **k: Any) -> Any:
                try:
                    return function(*a, **k)
                except CreditgovError as err:
                    raise _fail(str(err), err.exit_code) from None

            register(mapped)
            return function

        return decorator


app = _App(
    name="creditgov",
    help=(
        "Train, tune, test and govern credit-scoring and fraud models on MLflow.\n\n"
        "Start with `creditgov synth credit --rows 50000 --out data/credit.parquet`, then "
        "`creditgov train configs/credit_scoring.yaml`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=False)
errors = Console(stderr=True)


class Kind(StrEnum):
    credit = "credit"
    fraud = "fraud"


#: Seconds an interrupted command waits for its other threads before it exits without them.
STRAY_THREAD_GRACE_S = 5.0


def _interrupted(message: str) -> typer.Exit:
    """`_fail` for a SIGTERM or Ctrl-C stop, which must end the process even if a thread is left.

    SIGTERM raises KeyboardInterrupt wherever the main thread happens to be. Landing in
    Optuna's heartbeat context manager after it started its (non-daemon) thread but before
    the `with` body runs, the thread is never told to stop and beats on, and Python waits
    for it at exit: the process printed this line and then hung. The run is marked KILLED
    by then and nothing is left to flush, so threads still alive after a short grace are
    not waited for.
    """
    stop = _fail(message, EXIT_UNEXPECTED)
    deadline = time.monotonic() + STRAY_THREAD_GRACE_S
    strays = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for thread in strays:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in strays):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_UNEXPECTED)
    return stop


def _fail(message: str, code: int) -> typer.Exit:
    # The message is data (it may hold "[...]" from a column name), never markup.
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _terminate(signum: int, frame: FrameType | None) -> None:
    from creditgov.signals import SIGNALLED

    SIGNALLED.set()
    raise KeyboardInterrupt(f"signal {signum}")


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a config key, typed by the schema: --set tuning.n_trials=5"
    ),
]


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
            raise _fail(f"{path}: use a .csv or .parquet file name", EXIT_BAD_INPUT)
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
    _print_splits(splits.summary())
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

    signal.signal(signal.SIGTERM, _terminate)
    cfg = load_config(config, set_ or [])
    from creditgov.job import run  # only now: a config typo answers without sklearn

    bar = _RichProgress()
    try:
        with bar:
            joined = _join(cfg, workers, resume, bar) if workers is not None else None
            if joined is None:
                result = run(cfg, resume=resume, progress=bar, workers=workers or 1)
    except KeyboardInterrupt:
        raise _interrupted(
            "interrupted; the MLflow run was marked KILLED and nothing was registered"
        ) from None
    if joined is not None:
        console.print(
            f"Added {joined.trials_here} trials to study {joined.study_name!r} "
            f"({joined.n_finished} finished); run {joined.run_id} fits and registers the model"
        )
        _write_json(json_path, asdict(joined))
        return
    summary = result.summary()
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    _print_result(summary, result.tracking_uri)


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
    _write_json(json_path, summary)
    _print_metrics(summary["metrics"])
    _print_gates(summary["gates"], summary["validation_status"])
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
    numbers, exits 2. An empty column or unseen levels are what drift reports, not errors.
    """
    from creditgov.checks import check_drift

    with console.status("Comparing the batch with the training population"):
        outcome = check_drift(model, data, report_dir=report)
    result = outcome.result
    _write_json(json_path, outcome.summary())
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
    """Fetch a version's reviewer files: report.html, evidence.json, model_card.md."""
    from creditgov.checks import fetch_reports

    files = fetch_reports(name, version, out)
    for path in files:
        console.print(str(path))


# ----------------------------------------------------------------------------- governance

models_app = _App(help="What is registered: champions, challengers, versions and their status.")
app.add_typer(models_app, name="models")


def _governance() -> tuple[Any, str]:
    """The registry client and the acting identity ($MLFLOW_TRACKING_USERNAME or login)."""
    from registry.tracking import identity, resolve_tracking_uri, use_tracking

    return use_tracking(resolve_tracking_uri(None)), identity()


@app.command()
def approve(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="model version")],
    comment: Annotated[str, typer.Option(help="what you reviewed and concluded")],
    override_gates: Annotated[
        bool,
        typer.Option(
            "--override-gates", help="approve although gates failed (needs --justification)"
        ),
    ] = False,
    justification: Annotated[
        str | None, typer.Option(help="why failed gates are acceptable")
    ] = None,
) -> None:
    """Approve a version after reading its report. Its trainer cannot approve it (four eyes)."""
    from registry.governance import approve as approve_version

    client, actor = _governance()
    event = approve_version(
        client, name, version, actor=actor, comment=comment,
        override_gates=override_gates, justification=justification,
    )  # fmt: skip
    console.print(
        f"Approved models:/{name}/{version} as {actor}; evidence sha256 {event.details['evidence_sha256'][:16]}…"
    )


@app.command()
def reject(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="model version")],
    comment: Annotated[str, typer.Option(help="why the version is rejected")],
) -> None:
    """Reject a version; it can never be approved or promoted afterwards."""
    from registry.governance import reject as reject_version

    client, actor = _governance()
    reject_version(client, name, version, actor=actor, comment=comment)
    console.print(f"Rejected models:/{name}/{version} as {actor}.")


@app.command()
def promote(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str, typer.Argument(help="model version")],
    alias: Annotated[
        str, typer.Option(help="champion (serving) or challenger (shadow)")
    ] = "champion",
) -> None:
    """Point an alias at an approved version; the old champion becomes 'previous'."""
    from registry.governance import promote as promote_version

    client, actor = _governance()
    event = promote_version(client, name, version, actor=actor, alias=alias)
    before = event.details.get("from")
    moved = (
        f" (was version {before}, now alias 'previous')" if before and alias == "champion" else ""
    )
    console.print(f"models:/{name}@{alias} -> version {version}{moved}")


@app.command()
def rollback(
    name: Annotated[str, typer.Argument(help="registered model name")],
    alias: Annotated[str, typer.Option(help="the alias to move back")] = "champion",
) -> None:
    """Put the previous champion back; recorded in the audit chain."""
    from registry.governance import rollback as rollback_model

    client, actor = _governance()
    event = rollback_model(client, name, actor=actor, alias=alias)
    console.print(
        f"models:/{name}@{alias} -> version {event.version} (rolled back from {event.details.get('from')})"
    )


@app.command()
def audit(
    name: Annotated[str, typer.Argument(help="registered model name")],
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="recompute the hash chain and check tags and aliases against it; exit 3 if broken",
        ),
    ] = False,
) -> None:
    """Every governance event of a model, hash-linked to the one before."""
    from registry.governance import read_chain, verify_chain

    client, _ = _governance()
    try:
        chain = read_chain(client, name)
    except Exception as err:  # an unknown model is bad input, not a crash
        raise _fail(
            f"{name}: no such registered model ({type(err).__name__})", EXIT_BAD_INPUT
        ) from None
    table = Table(title=f"Audit chain of {name}", title_justify="left")
    for column in ("#", "time", "event", "version", "actor", "details", "hash"):
        table.add_column(column)
    for e in chain:
        details = ", ".join(
            f"{k}={v}"
            for k, v in e.details.items()
            if k not in {"manifest", "gates", "failed_gates"}
        )
        table.add_row(
            str(e.seq), e.time, e.event, e.version or "", e.actor, escape(details[:80]), e.hash[:12]
        )
    console.print(table)
    if verify:
        result = verify_chain(client, name)
        if not result.ok:
            for problem in result.problems:
                errors.print(f"[bold red]broken:[/] {escape(problem)}")
            errors.print(
                "Governance commands refuse this model until each tag or alias named is "
                "restored to what the chain records.",
                highlight=False,
            )
            raise typer.Exit(EXIT_REFUSED)
        console.print(f"[green]verified[/]: {result.events} events, every hash and link intact")


@models_app.command("list")
def models_list() -> None:
    """Each model with its champion, challenger and versions (validation / approval).

    The audit column says whether the model's tags and aliases agree with its audit chain;
    `creditgov audit NAME --verify` names each disagreement.
    """
    from registry.governance import LOCK_PREFIX, verify_chain

    client, _ = _governance()
    table = Table(title="Registered models", title_justify="left")
    for column in (
        "model", "champion", "previous", "challenger", "versions (validation/approval)", "audit",
    ):  # fmt: skip
        table.add_column(column)
    for model in client.search_registered_models():
        if model.name.startswith(LOCK_PREFIX):
            continue
        aliases = dict(model.aliases or {})
        versions = client.search_model_versions(f"name='{model.name}'")
        listed = ", ".join(
            f"{v.version}:{v.tags.get('validation_status', '?')}/{v.tags.get('approval_status', '?')}"
            for v in sorted(versions, key=lambda v: int(v.version))
        )
        problems = verify_chain(client, model.name).problems
        audit_ = (
            "ok"
            if not problems
            else f"[red]DISAGREES[/] ({len(problems)} problem{'s' if len(problems) > 1 else ''})"
        )
        table.add_row(
            model.name, str(aliases.get("champion", "")), str(aliases.get("previous", "")),
            str(aliases.get("challenger", "")), listed, audit_,
        )  # fmt: skip
    console.print(table)


@models_app.command("show")
def models_show(
    name: Annotated[str, typer.Argument(help="registered model name")],
    version: Annotated[str | None, typer.Argument(help="a version; omit for all")] = None,
) -> None:
    """Tags, gates, lineage and approval of a model's versions."""
    client, _ = _governance()
    try:
        versions = (
            [client.get_model_version(name, version)]
            if version
            else sorted(
                client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)
            )
        )
    except Exception:
        raise _fail(f"{name} {version or ''}: no such model or version", EXIT_BAD_INPUT) from None
    if not versions:
        raise _fail(
            f"{name}: no such registered model; `creditgov models list` shows what is",
            EXIT_BAD_INPUT,
        )
    for v in versions:
        table = Table(
            title=f"{name} version {v.version}  aliases: {', '.join(v.aliases or []) or '-'}",
            title_justify="left",
        )
        table.add_column("tag")
        table.add_column("value")
        for key in sorted(v.tags):
            if key == "gates":
                continue
            table.add_row(key, escape(str(v.tags[key])[:100]))
        console.print(table)


def _write_json(path: Path | None, document: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")


def _print_gates(gates: list[dict[str, Any]], status: str) -> None:
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
    seen in training is scored as missing, with one warning per column.
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

    signal.signal(signal.SIGTERM, _terminate)
    try:
        summary = score_file(model, input_, output, chunk_rows=chunk_rows, progress=advance)
    except KeyboardInterrupt:
        raise _interrupted(f"interrupted; {output} was not written") from None
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
            f"`creditgov drift` lists the new levels",
            highlight=False,
            soft_wrap=True,
        )


# ----------------------------------------------------------------------------- display


class _RichProgress:
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

    def __enter__(self) -> _RichProgress:
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


def _print_splits(summaries: Any) -> None:
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


def _print_metrics(metrics: dict[str, dict[str, float]]) -> None:
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


def _print_result(summary: dict[str, Any], tracking_uri: str) -> None:
    _print_splits(summary["splits"])
    _print_metrics(summary["metrics"])
    _print_gates(summary["gates"], summary["validation_status"])
    if summary["best_params"]:
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in summary["best_params"].items()
        )
        console.print(f"Best of {summary['n_trials']} trials: {params}")
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


def main() -> None:
    """Console-script entry point: each error class to its exit code, anything else to 1."""
    # Our own progress display is enough; MLflow's per-download bars only add noise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    try:
        app()
    except SystemExit:
        raise
    except CreditgovError as err:  # the error's class decides the exit code (errors.py)
        errors.print(f"[bold red]error:[/] {escape(str(err))}", highlight=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except Exception as err:  # the contract: anything unexpected exits 1 with one line
        errors.print(
            f"[bold red]unexpected error:[/] {type(err).__name__}: {escape(str(err))}",
            highlight=False,
        )
        sys.exit(EXIT_UNEXPECTED)
