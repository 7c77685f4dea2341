"""The client of a creditgov team server: governance decisions taken by the server, not here.

Pointed at a tracking server that runs creditgov's auth app (`mlflow server --app-name
creditgov`), approve, reject, promote, rollback and the job's validation record are
requests to that app's endpoints: the server runs the rules with the identity it
authenticated, signs the event and moves the alias, and no account can write those tags
or aliases itself. `TeamServer.detect` tells such a server from a plain one (or a local
store), where the rules run in this process instead (`registry.governance.rules`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.governance.chain import AuditEvent, ServerHead
from registry.governance.errors import GovernanceArgumentError, GovernanceError

__all__ = ["API", "TeamServer"]

#: Where creditgov's endpoints live on the team server.
API = "/creditgov/api/1"


@dataclass(frozen=True)
class TeamServer:
    """A tracking server running creditgov's auth app, as the current user sees it."""

    url: str
    public_key: str

    @classmethod
    def detect(cls, uri: str) -> TeamServer | None:
        """The team server at `uri`, or None for a local store or a server without creditgov's app."""
        if not uri.startswith(("http://", "https://")):
            return None
        response = _request(uri, "GET", "/info", retries=2)
        if response.status_code == 404:
            return None
        info = _answer(response, action="read the server's identity")
        if info.get("app") != "creditgov" or not isinstance(info.get("public_key"), str):
            return None
        return cls(url=uri.rstrip("/"), public_key=info["public_key"])

    def head(self, name: str) -> ServerHead:
        """The last event the server recorded for `name` (seq 0 when none)."""
        data = _answer(
            _request(self.url, "GET", "/head", params={"name": name}, retries=2),
            action="read the chain head",
        )
        return ServerHead(seq=int(data["seq"]), hash=str(data["hash"]))

    def roles(self, name: str) -> frozenset[str]:
        """The roles the current user holds on model `name`."""
        data = _answer(
            _request(self.url, "GET", "/roles", params={"name": name}, retries=2),
            action="read your roles",
        )
        return frozenset(str(r) for r in data.get("roles") or [])

    def act(self, action: str, payload: Mapping[str, Any]) -> AuditEvent:
        """POST one governance action; the event the server appended, or its refusal raised.

        Never retried: a decision must not be taken twice because an answer was lost.
        """
        data = _answer(
            _request(self.url, "POST", f"/{action}", json=dict(payload), retries=0),
            action=action,
        )
        event = AuditEvent.from_json(data.get("event") or {})
        if event is None:
            raise GovernanceError(f"the team server's answer to {action} holds no audit event")
        return event

    def grant_role(self, username: str, model: str, role: str, *, revoke: bool = False) -> None:
        """Admin only: give (or take) `role` on `model` to `username`."""
        _answer(
            _request(
                self.url, "POST", "/roles", retries=0,
                json={"username": username, "model": model, "role": role, "revoke": revoke},
            ),
            action="grant a role",
        )  # fmt: skip


def _request(
    url: str,
    method: str,
    path: str,
    *,
    retries: int,
    params: Mapping[str, str] | None = None,
    json: Mapping[str, Any] | None = None,
) -> Any:
    from mlflow.exceptions import MlflowException
    from mlflow.utils.rest_utils import MlflowHostCreds, http_request

    creds = MlflowHostCreds(
        url.rstrip("/"),
        username=os.environ.get("MLFLOW_TRACKING_USERNAME"),
        password=os.environ.get("MLFLOW_TRACKING_PASSWORD"),
    )
    kwargs: dict[str, Any] = {"params": dict(params)} if params else {}
    if json is not None:
        kwargs["json"] = dict(json)
    try:
        return http_request(
            creds, f"{API}{path}", method, max_retries=retries, raise_on_status=False, **kwargs
        )
    except MlflowException as err:
        raise GovernanceError(
            f"the team server {url} could not be reached for {path.strip('/')} "
            f"({str(err).splitlines()[0][:160]}); retry when it answers"
        ) from None


def _answer(response: Any, *, action: str) -> dict[str, Any]:
    """The JSON of a 2xx answer; a refusal (4xx) as the error class the CLI maps to its exit code."""
    try:
        data = response.json()
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    message = str(data.get("message") or "").strip()
    if response.status_code == 401:
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        raise GovernanceArgumentError(
            f"the team server did not accept {f'user {user!r}' if user else 'an anonymous request'}: "
            f"set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to your team account"
        )
    if response.status_code == 400:
        raise GovernanceArgumentError(message or f"the team server refused the request to {action}")
    if response.status_code >= 400:
        raise GovernanceError(
            message or f"the team server refused to {action} (HTTP {response.status_code})"
        )
    return data
