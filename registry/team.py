"""The team stack: one MLflow tracking server and registry on PostgreSQL, with basic auth.

Nothing here is home-made: it starts MLflow's own `mlflow server --app-name basic-auth`
with a PostgreSQL backend store, a PostgreSQL user store for the auth app, and a local
artifact root served through the server (so clients never need the server's disk and
every artifact request is authenticated). Users and permissions are created through
MLflow's `AuthServiceClient`. `make team-up` / `make team-down` call `up` / `down`.

MLflow ships no default admin password: on first start the admin password is generated
here, handed to the server once via MLFLOW_AUTH_ADMIN_PASSWORD, and kept in the stack's
state folder (mode 0600) so the operator can log in and change it.

    python -m registry.team up [--port 5050] [--state .team]
    python -m registry.team add-user alice
    python -m registry.team grant bob credit_scorecard MANAGE
    python -m registry.team admin-password
    python -m registry.team down
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from creditgov.errors import CreditgovError

__all__ = [
    "PERMISSIONS",
    "Stack",
    "TeamError",
    "add_user",
    "change_password",
    "create_databases",
    "down",
    "drop_databases",
    "grant",
    "main",
    "server_command",
    "stop_process",
    "up",
    "wait_healthy",
]

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_PORT = 5050
DEFAULT_STATE = Path(".team")
PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")
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
        "--app-name", "basic-auth",
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


# ----------------------------------------------------------------------------- users


class _as_admin:
    """MLflow's own auth client as admin (it reads credentials from the environment only),
    then the caller's identity back."""

    KEYS = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")

    def __init__(self, url: str, password: str) -> None:
        self.url, self.password = url, password
        self.saved: Mapping[str, str | None] = {}

    def __enter__(self) -> Any:
        from mlflow.server.auth.client import AuthServiceClient

        self.saved = {k: os.environ.get(k) for k in self.KEYS}
        os.environ["MLFLOW_TRACKING_USERNAME"] = ADMIN
        os.environ["MLFLOW_TRACKING_PASSWORD"] = self.password
        return AuthServiceClient(self.url)

    def __exit__(self, *exc: object) -> None:
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def add_user(url: str, admin_password: str, username: str, password: str) -> None:
    with _as_admin(url, admin_password) as client:
        client.create_user(username, password)


def grant(url: str, admin_password: str, username: str, model: str, permission: str) -> None:
    """Give `username` PERMISSION on registered model `model` (it need not exist yet).

    EDIT lets a trainer add versions and a reviewer set approval tags; MANAGE also lets
    one move aliases and grant others. Without a grant an account has the default READ.
    """
    if permission not in PERMISSIONS:
        raise TeamError(f"permission {permission!r}: use one of {', '.join(PERMISSIONS)}")
    from mlflow.exceptions import MlflowException

    with _as_admin(url, admin_password) as client:
        try:
            client.grant_user_permission(username, "registered_model", model, permission)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # A grant replaces the one before: MLflow's unified API has no update.
            client.revoke_user_permission(username, "registered_model", model)
            client.grant_user_permission(username, "registered_model", model, permission)


def change_password(url: str, admin_password: str, username: str, password: str) -> None:
    """Set `username`'s password; for admin's own, MLflow also wants the current one."""
    with _as_admin(url, admin_password) as client:
        current = admin_password if username == ADMIN else None
        client.update_user_password(username, password, current_password=current)


# ----------------------------------------------------------------------------- command line


def _admin_password(stack: Stack) -> str:
    given = os.environ.get("CREDITGOV_TEAM_ADMIN_PASSWORD")
    if given:
        return given
    if stack.password_file.exists():
        return stack.password_file.read_text(encoding="utf-8").strip()
    raise TeamError(
        f"no admin password: set $CREDITGOV_TEAM_ADMIN_PASSWORD or run `up` first ({stack.password_file})"
    )


def _ask_password(prompt: str) -> str:
    import getpass

    given = os.environ.get("CREDITGOV_TEAM_USER_PASSWORD")
    return given or getpass.getpass(prompt)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m registry.team", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--state", type=Path, default=Path(os.environ.get("CREDITGOV_TEAM_STATE", DEFAULT_STATE))
    )
    parser.add_argument(
        "--port", type=int, default=int(os.environ.get("CREDITGOV_TEAM_PORT", DEFAULT_PORT))
    )
    parser.add_argument("--postgres", default=os.environ.get("CREDITGOV_TEAM_POSTGRES", DEFAULT_PG))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start PostgreSQL databases and the mlflow server")
    commands.add_parser("down", help="stop the mlflow server")
    commands.add_parser("admin-password", help="change the admin password (asks for the new one)")
    user = commands.add_parser("add-user", help="create an account (asks for its password)")
    user.add_argument("username")
    granted = commands.add_parser("grant", help="grant a permission on a registered model")
    granted.add_argument("username")
    granted.add_argument("model")
    granted.add_argument("permission", choices=PERMISSIONS)
    args = parser.parse_args(argv)
    stack = Stack(state=args.state, port=args.port, postgres=args.postgres)
    try:
        if args.command == "up":
            first = up(stack)
            print(f"MLflow team server at {stack.url} (backend {stack.database_uri('mlflow')})")
            print(f"Optuna study storage for tuning.storage: {stack.optuna_uri}")
            if first:
                print(
                    f"First start: admin password written to {stack.password_file} (mode 0600); "
                    f"change it with `python -m registry.team admin-password`"
                )
        elif args.command == "down":
            print("stopped" if down(stack) else "not running")
        elif args.command == "admin-password":
            new = _ask_password("new admin password: ")
            change_password(stack.url, _admin_password(stack), ADMIN, new)
            stack.password_file.write_text(new + "\n", encoding="utf-8")
            print(f"admin password changed (kept in {stack.password_file})")
        elif args.command == "add-user":
            add_user(
                stack.url,
                _admin_password(stack),
                args.username,
                _ask_password(f"password for {args.username}: "),
            )
            print(f"created user {args.username} (default permission READ)")
        elif args.command == "grant":
            grant(stack.url, _admin_password(stack), args.username, args.model, args.permission)
            print(
                f"granted {args.permission} on registered model {args.model!r} to {args.username}"
            )
    except TeamError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # an MLflow refusal (bad admin password, unknown user) in one line
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
