"""The team stack from the command line: `python -m server up|down|add-user|grant|role|admin-password`.

`make team-up` / `make team-down` call `up` / `down`. Passwords are asked for (or read
from $CREDITGOV_TEAM_USER_PASSWORD), never given as arguments; the admin password comes
from $CREDITGOV_TEAM_ADMIN_PASSWORD or the stack's state folder.

    python -m server up [--port 5050] [--state .team]
    python -m server add-user alice
    python -m server role alice credit_scorecard trainer
    python -m server role bob credit_scorecard reviewer
    python -m server role carol credit_scorecard promoter
    python -m server grant dave credit_scorecard READ
    python -m server admin-password
    python -m server down
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import server
from registry.governance.signing import fingerprint
from server.accounts import PERMISSIONS, add_user, change_password, grant, grant_role
from server.ledger import ROLES
from server.stack import ADMIN, DEFAULT_PG, DEFAULT_PORT, DEFAULT_STATE, Stack, TeamError, down, up

__all__ = ["main"]


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
        prog="python -m server", description=server.__doc__.split("\n\n")[0]
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
    granted = commands.add_parser(
        "grant", help="grant an MLflow permission on a registered model (or an experiment)"
    )
    granted.add_argument("username")
    granted.add_argument("model", help="registered model name (experiment name with --experiment)")
    granted.add_argument("permission", choices=PERMISSIONS)
    granted.add_argument(
        "--experiment", action="store_true", help="MODEL names an experiment: runs in it need EDIT"
    )
    role = commands.add_parser(
        "role", help="grant a creditgov role on a registered model (trainer, reviewer, promoter)"
    )
    role.add_argument("username")
    role.add_argument("model")
    role.add_argument("role", choices=ROLES)
    role.add_argument("--revoke", action="store_true", help="take the role away instead")
    args = parser.parse_args(argv)
    stack = Stack(state=args.state, port=args.port, postgres=args.postgres)
    try:
        if args.command == "up":
            first = up(stack)
            print(f"MLflow team server at {stack.url} (backend {stack.database_uri('mlflow')})")
            print(f"Optuna study storage for tuning.storage: {stack.optuna_uri}")
            key = stack.public_key()
            print(f"Server signing key {fingerprint(key)}; clients pin it with")
            print(f"  export CREDITGOV_SERVER_PUBLIC_KEY={key}")
            if first:
                print(
                    f"First start: admin password written to {stack.password_file} (mode 0600); "
                    f"change it with `python -m server admin-password`"
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
        elif args.command == "role":
            grant_role(
                stack.url, _admin_password(stack), args.username, args.model, args.role,
                revoke=args.revoke,
            )  # fmt: skip
            done = "took" if args.revoke else "granted"
            print(f"{done} role {args.role} on registered model {args.model!r} for {args.username}")
        elif args.command == "grant":
            grant(
                stack.url, _admin_password(stack), args.username, args.model, args.permission,
                experiment=args.experiment,
            )  # fmt: skip
            kind = "experiment" if args.experiment else "registered model"
            print(f"granted {args.permission} on {kind} {args.model!r} to {args.username}")
    except TeamError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # an MLflow refusal (bad admin password, unknown user) in one line
        print(f"error: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
