"""The `creditgov` app itself: the Typer apps, the consoles, and error -> exit code.

Every command is registered on `app` (or `models_app`) through `_App`, which maps the
error family (creditgov/errors.py) to CLI.md's exit codes in one place; `main` is the
console script. The commands live in `jobs.py` and `governance.py`, the tables and
progress display in `display.py`.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from creditgov.errors import EXIT_UNEXPECTED, CreditgovError

__all__ = [
    "STRAY_THREAD_GRACE_S",
    "SetOption",
    "app",
    "console",
    "errors",
    "fail",
    "interrupted",
    "main",
    "models_app",
    "terminate",
    "write_json",
]


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
                    raise fail(str(err), err.exit_code) from None

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


#: Seconds an interrupted command waits for its other threads before it exits without them.
STRAY_THREAD_GRACE_S = 5.0


def interrupted(message: str) -> typer.Exit:
    """`_fail` for a SIGTERM or Ctrl-C stop, which must end the process even if a thread is left.

    SIGTERM raises KeyboardInterrupt wherever the main thread happens to be. Landing in
    Optuna's heartbeat context manager after it started its (non-daemon) thread but before
    the `with` body runs, the thread is never told to stop and beats on, and Python waits
    for it at exit: the process printed this line and then hung. The run is marked KILLED
    by then and nothing is left to flush, so threads still alive after a short grace are
    not waited for.
    """
    stop = fail(message, EXIT_UNEXPECTED)
    deadline = time.monotonic() + STRAY_THREAD_GRACE_S
    strays = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for thread in strays:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    if any(thread.is_alive() for thread in strays):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_UNEXPECTED)
    return stop


def fail(message: str, code: int) -> typer.Exit:
    # The message is data (it may hold "[...]" from a column name), never markup.
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def terminate(signum: int, frame: FrameType | None) -> None:
    from creditgov.signals import SIGNALLED

    SIGNALLED.set()
    raise KeyboardInterrupt(f"signal {signum}")


SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set", help="Override a config key, typed by the schema: --set tuning.n_trials=5"
    ),
]


models_app = _App(help="What is registered: champions, challengers, versions and their status.")
app.add_typer(models_app, name="models")


def write_json(path: Path | None, document: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")


def main() -> None:
    """Console-script entry point: each error class to its exit code, anything else to 1."""
    # Our own progress display is enough; MLflow's per-download bars only add noise.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow 3 sends usage telemetry to a public endpoint (a DNS lookup and an HTTPS call
    # from every job); a lender's training host must not talk to the internet unasked.
    # Set MLFLOW_DISABLE_TELEMETRY=false to opt in.
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
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
