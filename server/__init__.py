"""The team stack: one MLflow tracking server and registry on PostgreSQL that enforces governance.

Team mode is operations, not modelling, so it lives beside the library rather than in
it: this package starts and stops `mlflow server --app-name creditgov` on PostgreSQL
(`stack`) — MLflow's basic-auth app with creditgov's guard, signed audit chain and
governance endpoints (`app`, `ledger`) — manages accounts, MLflow grants and creditgov
roles (`accounts`), and is the `python -m server` command behind `make team-up` /
`make team-down` (`__main__`). It may use the library; nothing in training, evaluation
or registry imports it.
"""

from server.accounts import PERMISSIONS, add_user, change_password, grant, grant_role
from server.stack import (
    ADMIN,
    Stack,
    TeamError,
    create_databases,
    down,
    drop_databases,
    up,
    wait_healthy,
)

__all__ = [
    "ADMIN",
    "PERMISSIONS",
    "Stack",
    "TeamError",
    "add_user",
    "change_password",
    "create_databases",
    "down",
    "drop_databases",
    "grant",
    "grant_role",
    "up",
    "wait_healthy",
]
