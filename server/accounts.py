"""Accounts on the team server: users, their passwords, and grants on registered models.

Users and permissions are created through MLflow's own `AuthServiceClient` acting as the
auth app's admin; nothing is written to the user store directly. Every account reads
everything by default (the stack's `default_permission = READ`); writes to a registered
model need an explicit EDIT or MANAGE `grant`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from server.stack import ADMIN, TeamError

__all__ = ["PERMISSIONS", "add_user", "change_password", "grant", "grant_role"]

PERMISSIONS = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")


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


def grant(
    url: str,
    admin_password: str,
    username: str,
    model: str,
    permission: str,
    *,
    experiment: bool = False,
) -> None:
    """Give `username` PERMISSION on registered model `model` (it need not exist yet).

    EDIT lets a trainer add versions; MANAGE also lets one grant others. Without a grant
    an account has the default READ. With `experiment`, `model` names an experiment
    instead (it must exist): a second trainer needs EDIT on the job's experiment to
    start runs in it.
    """
    if permission not in PERMISSIONS:
        raise TeamError(f"permission {permission!r}: use one of {', '.join(PERMISSIONS)}")
    from mlflow.exceptions import MlflowException

    with _as_admin(url, admin_password) as client:
        resource, resource_id = "registered_model", model
        if experiment:
            from mlflow.tracking import MlflowClient

            found = MlflowClient(tracking_uri=url).get_experiment_by_name(model)
            if found is None:
                raise TeamError(f"no experiment named {model!r} on {url}; check its name in the UI")
            resource, resource_id = "experiment", str(found.experiment_id)
        try:
            client.grant_user_permission(username, resource, resource_id, permission)
        except MlflowException as err:
            if err.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            # A grant replaces the one before: MLflow's unified API has no update.
            client.revoke_user_permission(username, resource, resource_id)
            client.grant_user_permission(username, resource, resource_id, permission)


def change_password(url: str, admin_password: str, username: str, password: str) -> None:
    """Set `username`'s password; for admin's own, MLflow also wants the current one."""
    with _as_admin(url, admin_password) as client:
        current = admin_password if username == ADMIN else None
        client.update_user_password(username, password, current_password=current)


def grant_role(
    url: str, admin_password: str, username: str, model: str, role: str, *, revoke: bool = False
) -> None:
    """Give `username` a creditgov role on `model` (trainer, reviewer, promoter), as the admin.

    The server checks roles on its governance endpoints and on version creation; a
    trainer also gets MLflow's EDIT on the model, which creating versions needs.
    """
    from server.ledger import ROLES

    if role not in ROLES:
        raise TeamError(f"role {role!r}: use one of {', '.join(ROLES)}")
    from registry.governance.remote import TeamServer

    with _as_admin(url, admin_password):
        server = TeamServer.detect(url)
        if server is None:
            raise TeamError(
                f"{url} does not run creditgov's server app; start it with `make team-up`"
            )
        server.grant_role(username, model, role, revoke=revoke)
    if role == "trainer" and not revoke:
        grant(url, admin_password, username, model, "EDIT")
