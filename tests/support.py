"""Running the `creditgov` command in tests and checking what bad input leaves behind.

Two ways to run it, one result type (`subprocess.CompletedProcess`): `creditgov` starts
`python -m creditgov` in a subprocess, as a scheduler would; `creditgov_in_process` calls
the console script's own `main()` in this process, which is the same code path without
~3 s of imports per call. The in-process runner gives the command what a fresh process
has — its own argv, working folder, environment, stdout and stderr, the SIGTERM handler
put back afterwards — and writes the warnings Python would print by default onto the
captured stderr, so "exactly one stderr line" means the same in both.

`assert_bad_input` is the CLI.md contract for bad input in one place: exit code 2, one
stderr line that names the file and the key or column and says what to do, and a
tracking store with no run left RUNNING and nothing registered by the failed command.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Tracked",
    "assert_bad_input",
    "assert_nothing_tracked",
    "creditgov",
    "creditgov_in_process",
    "error_lines",
    "tracked",
]

#: What every run of the command sees: wide lines (one error = one line) and no colour.
_ENV = {"COLUMNS": "200", "NO_COLOR": "1"}
#: Warning categories a fresh interpreter does not print (Python's default filters).
_SILENT = (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning)


def creditgov(
    *args: str, cwd: Path, tracking_uri: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m creditgov ARGS` in `cwd`; $MLFLOW_TRACKING_URI is `tracking_uri` or unset."""
    env = {**os.environ, **_ENV}
    env.pop("MLFLOW_TRACKING_URI", None)
    if tracking_uri is not None:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    return subprocess.run(
        [sys.executable, "-m", "creditgov", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def creditgov_in_process(
    *args: str, cwd: Path, tracking_uri: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`creditgov.cli.main()` with ARGS, as `creditgov` runs it, but in this process."""
    from creditgov.cli import main

    out, err = io.StringIO(), io.StringIO()
    code: int = 0
    with (
        _fresh_process(["creditgov", *args], cwd, tracking_uri),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("default")
        try:
            main()
        except SystemExit as done:
            code = _exit_code(done.code)
    printed = "".join(
        warnings.formatwarning(w.message, w.category, w.filename, w.lineno)
        for w in caught
        if not issubclass(w.category, _SILENT)
    )
    return subprocess.CompletedProcess(
        ["creditgov", *args], code, out.getvalue(), err.getvalue() + printed
    )


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    return code if isinstance(code, int) else 1  # sys.exit("text") prints it and exits 1


@contextlib.contextmanager
def _fresh_process(argv: list[str], cwd: Path, tracking_uri: str | None) -> Iterator[None]:
    """argv, cwd and environment of a new `creditgov` process; everything restored after."""
    saved_env, saved_argv, saved_cwd = dict(os.environ), sys.argv, Path.cwd()
    saved_term = signal.getsignal(signal.SIGTERM)
    os.environ.update(_ENV)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if tracking_uri is not None:
        os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    sys.argv = argv
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        signal.signal(signal.SIGTERM, saved_term)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# ----------------------------------------------------------------------------- tracking


@dataclass(frozen=True)
class Tracked:
    """Everything a command could have left in a tracking store."""

    runs: tuple[tuple[str, str], ...]  # (run id, status), deleted runs included
    models: tuple[str, ...]  # registered model names
    versions: tuple[tuple[str, str], ...]  # (model name, version)

    @property
    def running(self) -> list[str]:
        return [run_id for run_id, status in self.runs if status == "RUNNING"]


def tracked(db: Path) -> Tracked:
    """The runs, registered models and versions in the SQLite store `db` (empty if absent)."""
    if not db.exists():
        return Tracked((), (), ())
    from mlflow import MlflowClient
    from mlflow.entities import ViewType

    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    runs = client.search_runs([e.experiment_id for e in experiments], run_view_type=ViewType.ALL)
    models = sorted(m.name for m in client.search_registered_models())
    versions = sorted((v.name, str(v.version)) for v in client.search_model_versions())
    return Tracked(
        runs=tuple(sorted((r.info.run_id, r.info.status) for r in runs)),
        models=tuple(models),
        versions=tuple(versions),
    )


def assert_nothing_tracked(db: Path) -> None:
    """No run in any experiment (deleted ones included) and no registered model."""
    now = tracked(db)
    assert [run_id for run_id, _ in now.runs] == []
    assert list(now.models) == []


# ----------------------------------------------------------------------------- the contract


def assert_bad_input(
    result: subprocess.CompletedProcess[str],
    *,
    names: str | Path,
    pieces: Iterable[str],
    db: Path,
    before: Tracked | None = None,
) -> str:
    """Exit 2, one stderr line `error: <names>: ...` holding every piece, nothing tracked.

    `before` is the store before the command (a model trained earlier, say): it must be
    unchanged and hold no RUNNING run. Without it the store must hold nothing at all —
    the error came before any run could start. Returns the line, for further checks.
    """
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith(f"error: {names}:"), line  # "file:" or "file:line:col:"
    for piece in pieces:
        assert piece in line, (piece, line)
    if before is None:
        assert_nothing_tracked(db)
    else:
        after = tracked(db)
        assert after.running == [], after
        assert after == before
    return line
