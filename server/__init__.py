"""The team stack: one MLflow tracking server and registry on PostgreSQL, with basic auth.

Team mode is operations, not modelling, so it lives beside the library rather than in
it: this package starts and stops MLflow's own `mlflow server --app-name basic-auth` on
PostgreSQL (`stack`), manages its accounts and grants through MLflow's auth client
(`accounts`), and is the `python -m server` command behind `make team-up` /
`make team-down` (`__main__`). It may use the library; nothing in training, evaluation
or registry imports it.
"""

from server.accounts import PERMISSIONS, add_user, change_password, grant
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
    "up",
    "wait_healthy",
]
