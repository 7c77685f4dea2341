"""The team stack itself: PostgreSQL databases and one `mlflow server` with creditgov's auth app.

`up` starts MLflow's own `mlflow server --app-name creditgov` (MLflow's basic-auth app
plus creditgov's guard and governance endpoints, `server.app`) with a PostgreSQL
backend store, a PostgreSQL user store for the auth app, and a local artifact root
served through the server (so clients never need the server's disk and every artifact
request is authenticated); `down` stops it, and the data stay. The server's Ed25519
signing key is made on first start in the state folder (mode 0600); `up` prints its
public key and fingerprint for clients to pin.

MLflow ships no default admin password: on first start the admin password is generated
here, handed to the server once via MLFLOW_AUTH_ADMIN_PASSWORD, and kept in the stack's
state folder (mode 0600) so the operator can log in and change it.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from creditgov.errors import CreditgovError

__all__ = [
    "ADMIN",
    "DEFAULT_PG",
    "DEFAULT_PORT",
    "DEFAULT_STATE",
    "Stack",
    "TeamError",
    "create_databases",
    "down",
    "drop_databases",
    "server_command",
    "stop_process",
    "up",
    "wait_healthy",
]

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_PORT = 5050
DEFAULT_STATE = Path(".team")
#: The auth app's admin account, named in basic_auth.ini; `accounts` acts as it.
ADMIN = "admin"


class TeamError(CreditgovError, RuntimeError):
    """The stack cannot be started, reached or changed as asked; the message says why."""


@dataclass(frozen=True)
class Stack:
    """Where one team stack lives: its databases, port and state folder."""

    state: Path = DEFAULT_STATE
    port: int = DEFAULT_PORT
    postgres: str = DEFAULT_PG  # server URL without a database name
    prefix: str = "creditgov"  # databases <prefix>_mlflow, <prefix>_auth, <prefix>_optuna

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def database(self, role: str) -> str:
        return f"{self.prefix}_{role}"

    def database_uri(self, role: str) -> str:
        """A SQLAlchemy URL naming psycopg2, the driver we pin (SQLAlchemy 2.1 defaults to psycopg 3)."""
        base = self.postgres.rstrip("/").replace("postgresql://", "postgresql+psycopg2://", 1)
        return f"{base}/{self.database(role)}"

    @property
    def optuna_uri(self) -> str:
        """The study storage workers share (`tuning.storage`)."""
        return self.database_uri("optuna")

    @property
    def pid_file(self) -> Path:
        return self.state / "server.pid"

    @property
    def password_file(self) -> Path:
        return self.state / "admin_password"

    @property
    def signing_key(self) -> Path:
        return self.state / "signing_key.pem"

    def public_key(self) -> str:
        """The public half of the server's signing key (`ed25519:<base64>`), made if missing."""
        from registry.governance.signing import generate_key

        self.state.mkdir(parents=True, exist_ok=True)
        return generate_key(self.signing_key).public_key


# ----------------------------------------------------------------------------- databases


def _connect(postgres: str, database: str = "postgres") -> Any:
    import psycopg2

    try:
        connection = psycopg2.connect(f"{postgres.rstrip('/')}/{database}", connect_timeout=5)
    except psycopg2.OperationalError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TeamError(
            f"PostgreSQL at {postgres} cannot be reached ({first}); start it, e.g. "
            f"`pg_ctlcluster 15 main start`"
        ) from None
    connection.autocommit = True  # CREATE/DROP DATABASE cannot run inside a transaction
    return connection


def create_databases(postgres: str, names: Iterable[str]) -> list[str]:
    """Create each database that does not exist yet; return those created."""
    created = []
    connection = _connect(postgres)
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{name}"')
                created.append(name)
    connection.close()
    return created


def drop_databases(postgres: str, names: Iterable[str]) -> None:
    connection = _connect(postgres)
    with connection.cursor() as cursor:
        for name in names:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    connection.close()


# ----------------------------------------------------------------------------- the server


def _auth_ini(stack: Stack) -> Path:
    """basic_auth.ini for this stack: users on PostgreSQL, READ for everyone by default.

    READ by default means a new account sees every experiment and model but can change
    nothing it did not create: writes need an explicit EDIT/MANAGE grant (`grant`).
    """
    path = stack.state / "basic_auth.ini"
    path.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {stack.database_uri('auth')}\n"
        f"admin_username = {ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # A job makes hundreds of requests; without the cache each one re-hashes the
        # password (PBKDF2). A changed password or deleted user takes effect within 60 s.
        "auth_cache_ttl_seconds = 60\n",
        encoding="utf-8",
    )
    return path


def server_command(stack: Stack, *, workers: int = 2) -> list[str]:
    mlflow = Path(sys.executable).with_name("mlflow")
    return [
        str(mlflow) if mlflow.exists() else "mlflow",
        "server",
        "--host", "127.0.0.1",
        "--port", str(stack.port),
        "--backend-store-uri", stack.database_uri("mlflow"),
        "--artifacts-destination", str((stack.state / "artifacts").resolve()),
        "--serve-artifacts",
        "--app-name", "creditgov",
        "--workers", str(workers),
    ]  # fmt: skip


def wait_healthy(
    url: str, *, timeout_s: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll /health until it answers OK; fail early if the server process has exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise TeamError(f"mlflow server exited with code {process.returncode} while starting")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise TeamError(f"mlflow server at {url} did not answer /health within {timeout_s:.0f}s")


def _running_pid(stack: Stack) -> int | None:
    try:
        pid = int(stack.pid_file.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def up(stack: Stack, *, workers: int = 2, timeout_s: float = 90.0) -> str:
    """Start the stack (idempotent); return the admin password set on first start, else ''."""
    if _running_pid(stack) is not None:
        wait_healthy(stack.url, timeout_s=timeout_s)
        return ""
    stack.state.mkdir(parents=True, exist_ok=True)
    (stack.state / "artifacts").mkdir(exist_ok=True)
    created = create_databases(
        stack.postgres, [stack.database(r) for r in ("mlflow", "auth", "optuna")]
    )
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(_auth_ini(stack).resolve())}
    for leaked in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_URI"):
        env.pop(leaked, None)
    first_password = ""
    if stack.database("auth") in created:
        # First start: the auth app creates `admin` with this password, once.
        first_password = os.environ.get("CREDITGOV_TEAM_ADMIN_PASSWORD") or secrets.token_urlsafe(
            18
        )
        stack.password_file.write_text(first_password + "\n", encoding="utf-8")
        stack.password_file.chmod(0o600)
    if stack.password_file.exists():
        # Only read while `admin` does not exist yet (a first start that failed half way).
        env["MLFLOW_AUTH_ADMIN_PASSWORD"] = stack.password_file.read_text(encoding="utf-8").strip()
    env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = _secret_key(stack)
    stack.public_key()  # the signing key exists before the server reads it
    env["CREDITGOV_SERVER_SIGNING_KEY"] = str(stack.signing_key.resolve())
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # no calls home from the team server
    log = (stack.state / "server.log").open("ab")
    process = subprocess.Popen(
        server_command(stack, workers=workers),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,  # its own process group: `down` stops the workers too
    )
    stack.pid_file.write_text(str(process.pid), encoding="utf-8")
    try:
        wait_healthy(stack.url, timeout_s=timeout_s, process=process)
    except TeamError as err:
        stop_process(process.pid)
        stack.pid_file.unlink(missing_ok=True)
        raise TeamError(f"{err}; see {stack.state / 'server.log'}") from None
    return first_password


def _secret_key(stack: Stack) -> str:
    """The Flask key signing the auth app's CSRF tokens: one per stack, kept across restarts."""
    path = stack.state / "flask_secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32), encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def stop_process(pid: int, *, timeout_s: float = 20.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it has not gone in time."""
    try:
        group = os.getpgid(pid)
    except OSError:
        return
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except OSError:
            return
        with suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child
        time.sleep(0.2)
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def down(stack: Stack, *, timeout_s: float = 20.0) -> bool:
    """Stop the server if it runs (data stay in PostgreSQL and the state folder)."""
    pid = _running_pid(stack)
    stack.pid_file.unlink(missing_ok=True)
    if pid is None:
        return False
    stop_process(pid, timeout_s=timeout_s)
    return True
