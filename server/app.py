"""creditgov's auth app for `mlflow server`: governance enforced by the server, not the client.

MLflow loads server apps by name from the `mlflow.app` entry point; `creditgov` is this
module's `create_app`, which builds MLflow's own basic-auth app and adds three things:

- **a guard** in front of MLflow's registry API: no account, admin included, may move or
  delete an alias, write or delete a governance tag (approval, validation, trainer,
  lineage, `audit.*`), delete or rename a registered model or delete a version, or
  create a model under the lock prefix. A version is created only by a `trainer` of its
  model, and only with lineage tags. Refusals are HTTP 403 naming the command to use.
- **the registration record**: when a version is created the server notes who created it
  (`creditgov_registrations`, the authenticated user) and appends a signed `registered`
  event with the hashes of the model files as its own artifact store holds them.
- **the governance endpoints** under `/creditgov/api/1/`: validated, approve, reject,
  promote, rollback, withdraw (a trainer's own pending version, after its job failed) (the rules of `registry.governance.rules`, run here with the
  authenticated identity and the role it was granted), head (the server's own chain
  head), info (the public key) and roles (GET: the caller's own; POST: admin grants).

The server writes through its own store (the backend database), which the guard does not
see; every event it appends is signed with its Ed25519 key ($CREDITGOV_SERVER_SIGNING_KEY)
and recorded in the append-only `creditgov_chain` table.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from creditgov.errors import BadInput, CreditgovError, Refused
from registry.governance import rules
from registry.governance.chain import AUDIT_PREFIX
from registry.governance.errors import GovernanceError
from registry.governance.lock import LOCK_PREFIX
from registry.governance.signing import fingerprint, load_signer
from server.ledger import ROLES, Ledger, ServerNotary

__all__ = [
    "API",
    "GOVERNED_TAGS",
    "LINEAGE_TAGS",
    "SIGNING_KEY_ENV",
    "StoreFiles",
    "create_app",
    "governed_tag",
]

API = "/creditgov/api/1"
SIGNING_KEY_ENV = "CREDITGOV_SERVER_SIGNING_KEY"
#: Version tags only the server writes: decisions, validation, identity.
GOVERNED_TAGS = frozenset(
    {
        "approval_status", "approver", "approved_at", "approval_comment", "evidence_sha256",
        "gates_overridden", "override_justification", "validation_status", "gates", "trainer",
    }
)  # fmt: skip
#: Lineage a trainer states when creating a version; fixed from then on (evidence hashes it).
LINEAGE_TAGS = frozenset({"run_id", "config_sha256", "data_digest", "git_commit"})
_GOVERNED_PREFIXES = ("gate.", "report.", AUDIT_PREFIX, "creditgov.")
_REGISTRY = re.compile(
    r"^/(?:ajax-)?api/\d\.\d/mlflow/(registered-models|model-versions)/([a-z-]+)$"
)
_log = logging.getLogger("creditgov.server")


def governed_tag(key: str) -> bool:
    """True for a version tag only creditgov's server may write (lineage included)."""
    return key in GOVERNED_TAGS or key in LINEAGE_TAGS or key.startswith(_GOVERNED_PREFIXES)


class _Forbidden(Refused):
    """A request the guard refuses (HTTP 403)."""


@dataclass(frozen=True)
class StoreFiles:
    """The server's own artifact store, read in place (`manifests.ArtifactSource`).

    Only locations inside the served artifact destination are read: a version whose
    source points anywhere else has no files as far as governance is concerned.
    """

    client: Any
    destination: Path

    def fetch(self, uri: str, dst: Path) -> Path:
        if uri.startswith("models:/"):
            name, _, version = uri.removeprefix("models:/").partition("/")
            location = self.client.get_model_version_download_uri(name, version)
        elif uri.startswith("runs:/"):
            run_id, _, folder = uri.removeprefix("runs:/").partition("/")
            location = f"{self.client.get_run(run_id).info.artifact_uri.rstrip('/')}/{folder}"
        else:
            raise OSError(f"{uri}: not a model or run artifact URI")
        parsed = urlparse(location)
        if parsed.scheme != "mlflow-artifacts":
            raise OSError(f"{uri}: stored outside the server's artifact store")
        root = self.destination.resolve()
        path = (root / parsed.path.lstrip("/")).resolve()
        if not path.is_relative_to(root) or not path.exists():
            raise OSError(f"{uri}: no such files in the server's artifact store")
        return path


class _Server:
    """The app's state in one worker: its store client, ledger, key and artifact store."""

    @cached_property
    def store_uri(self) -> str:
        return (
            os.environ.get("_MLFLOW_SERVER_REGISTRY_STORE")
            or os.environ["_MLFLOW_SERVER_FILE_STORE"]
        )

    @cached_property
    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        uri = self.store_uri
        return MlflowClient(
            tracking_uri=os.environ.get("_MLFLOW_SERVER_FILE_STORE", uri), registry_uri=uri
        )

    @cached_property
    def ledger(self) -> Ledger:
        return Ledger.from_store_uri(self.store_uri)

    @cached_property
    def signer(self) -> Any:
        path = os.environ.get(SIGNING_KEY_ENV)
        if not path or not Path(path).is_file():
            raise GovernanceError(
                f"${SIGNING_KEY_ENV} must name the server's Ed25519 private key (PEM); "
                f"`make team-up` creates one in the stack's state folder"
            )
        return load_signer(Path(path))

    @cached_property
    def notary(self) -> ServerNotary:
        return ServerNotary(self.signer, self.ledger)

    @cached_property
    def files(self) -> StoreFiles:
        destination = os.environ.get("_MLFLOW_SERVER_ARTIFACT_DESTINATION")
        if not destination:
            raise GovernanceError(
                "creditgov's server app needs --serve-artifacts with --artifacts-destination: "
                "it hashes model files from its own artifact store"
            )
        return StoreFiles(self.client, Path(destination))


_SERVER = _Server()


# ----------------------------------------------------------------------------- the guard


def _params() -> dict[str, Any]:
    from flask import request

    body = request.get_json(silent=True, force=True)
    return {**request.args.to_dict(), **(body if isinstance(body, dict) else {})}


def _tag_keys(params: Mapping[str, Any]) -> list[str]:
    tags = params.get("tags") or []
    return [str(t.get("key", "")) for t in tags if isinstance(t, dict)]


def _guard(resource: str, action: str, user: str) -> None:
    """Raise `_Forbidden` for a registry write only creditgov's endpoints may make."""
    params = _params()
    name = str(params.get("name", ""))
    use = "use `creditgov approve/reject/promote/rollback`, which the server runs for you"
    if resource == "registered-models":
        if action == "alias":
            raise _Forbidden(
                f"aliases of {name!r} are moved only by the server's promote and rollback; {use}"
            )
        if action in {"delete", "rename"}:
            raise _Forbidden(
                f"registered model {name!r} is governed: it cannot be deleted or renamed, its "
                f"audit chain and versions stay"
            )
        if action == "create" and name.startswith(LOCK_PREFIX):
            raise _Forbidden(f"names starting {LOCK_PREFIX!r} are reserved for the server's locks")
        keys = [str(params.get("key", ""))] if action in {"set-tag", "delete-tag"} else []
        keys += _tag_keys(params) if action == "create" else []
        for key in keys:
            if key.startswith((AUDIT_PREFIX, "creditgov.")):
                raise _Forbidden(f"tag {key!r} of {name!r} is the server's audit chain; {use}")
        return
    if action == "delete":
        raise _Forbidden(f"versions of {name!r} are governed: they cannot be deleted")
    if action in {"set-tag", "delete-tag"}:
        key = str(params.get("key", ""))
        if governed_tag(key):
            raise _Forbidden(
                f"version tag {key!r} of {name!r} is governance state written only by the "
                f"server; {use}"
            )
    if action == "create":
        if name.startswith(LOCK_PREFIX):
            raise _Forbidden(f"names starting {LOCK_PREFIX!r} are reserved for the server's locks")
        if "trainer" not in _SERVER.ledger.roles(name, user):
            raise _Forbidden(
                f"{user!r} is not a trainer of {name!r}; an admin grants it with "
                f"`python -m server role {user} {name} trainer`"
            )
        for tag in params.get("tags") or []:
            key, value = str(tag.get("key", "")), str(tag.get("value", ""))
            allowed = key in LINEAGE_TAGS or (
                (key == "trainer" and value == user)
                or (key in {"validation_status", "approval_status"} and value == "pending")
            )
            if governed_tag(key) and not allowed:
                raise _Forbidden(
                    f"a new version of {name!r} cannot carry tag {key!r}={value[:40]!r}: the "
                    f"server records trainer, validation and approval itself"
                )


# ----------------------------------------------------------------------------- endpoints


def _need_role(name: str, user: str, role: str) -> None:
    if role not in _SERVER.ledger.roles(name, user):
        raise GovernanceError(
            f"{user!r} is not a {role} of {name!r} on this team server; an admin grants it with "
            f"`python -m server role {user} {name} {role}`"
        )


def _text(params: Mapping[str, Any], key: str, *, required: bool = True) -> str:
    value = params.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str | int) or (required and not str(value).strip()):
        raise BadInput(f"the request needs {key!r}")
    return str(value)


def _validated(params: Mapping[str, Any], user: str) -> Any:
    name, version = _text(params, "name"), _text(params, "version")
    if _SERVER.ledger.registrant(name, version) != user:
        raise GovernanceError(
            f"models:/{name}/{version} was not created by {user!r}; only its trainer records its validation"
        )
    gates = params.get("gates")
    tags = params.get("tags")
    if not isinstance(gates, list) or not isinstance(tags, dict):
        raise BadInput("a validation needs `gates` (a list) and `tags` (an object)")
    record = rules.ValidationRecord(
        status=_text(params, "status"),
        gates=gates,
        tags={str(k): str(v) for k, v in tags.items()},
        description=_text(params, "description", required=False),
    )
    return rules.validate(_SERVER.client, name, version, record, actor=user, notary=_SERVER.notary)


def _approve(params: Mapping[str, Any], user: str) -> Any:
    name, version = _text(params, "name"), _text(params, "version")
    comment = _text(params, "comment", required=False)
    justification = params.get("justification")
    rules.check_length("--comment", comment)
    rules.check_length("--justification", justification if isinstance(justification, str) else None)
    registrant = _SERVER.ledger.registrant(name, version)
    if registrant is None:
        raise GovernanceError(f"models:/{name}/{version} has no registration record on this server")
    if registrant == user:
        raise GovernanceError(
            f"{user!r} trained models:/{name}/{version} and cannot approve it: approval needs a second person"
        )
    _need_role(name, user, "reviewer")
    return rules.approve(
        _SERVER.client, name, version, actor=user, comment=comment,
        override_gates=bool(params.get("override_gates")),
        justification=justification if isinstance(justification, str) else None,
        files=_SERVER.files, notary=_SERVER.notary,
    )  # fmt: skip


def _reject(params: Mapping[str, Any], user: str) -> Any:
    name, version = _text(params, "name"), _text(params, "version")
    _need_role(name, user, "reviewer")
    return rules.reject(
        _SERVER.client, name, version, actor=user,
        comment=_text(params, "comment", required=False), notary=_SERVER.notary,
    )  # fmt: skip


def _promote(params: Mapping[str, Any], user: str) -> Any:
    name, version = _text(params, "name"), _text(params, "version")
    _need_role(name, user, "promoter")
    return rules.promote(
        _SERVER.client, name, version, actor=user, alias=str(params.get("alias") or "champion"),
        files=_SERVER.files, notary=_SERVER.notary,
    )  # fmt: skip


def _rollback(params: Mapping[str, Any], user: str) -> Any:
    name = _text(params, "name")
    _need_role(name, user, "promoter")
    return rules.rollback(
        _SERVER.client, name, actor=user, alias=str(params.get("alias") or "champion"),
        files=_SERVER.files, notary=_SERVER.notary,
    )  # fmt: skip


def _withdraw(params: Mapping[str, Any], user: str) -> Any:
    name, version = _text(params, "name"), _text(params, "version")
    if _SERVER.ledger.registrant(name, version) != user:
        raise GovernanceError(
            f"models:/{name}/{version} was not created by {user!r}; only its trainer withdraws it"
        )
    return rules.withdraw(
        _SERVER.client, name, version, actor=user, reason=_text(params, "reason"),
        notary=_SERVER.notary,
    )  # fmt: skip


_ACTIONS: dict[str, Callable[[Mapping[str, Any], str], Any]] = {
    "validated": _validated,
    "approve": _approve,
    "reject": _reject,
    "promote": _promote,
    "rollback": _rollback,
    "withdraw": _withdraw,
}


def _roles(params: Mapping[str, Any], user: str) -> dict[str, Any]:
    from mlflow.server.auth import store

    if not store.get_user(user).is_admin:
        raise GovernanceError(f"{user!r} is not an admin: only the admin grants roles")
    role = _text(params, "role")
    if role not in ROLES:
        raise BadInput(f"role {role!r}: use one of {', '.join(ROLES)}")
    _SERVER.ledger.grant(
        _text(params, "model"), _text(params, "username"), role, revoke=bool(params.get("revoke"))
    )
    return {"ok": True}


def _json(status: int, body: Mapping[str, Any]) -> Any:
    from flask import Response

    return Response(json.dumps(body), status=status, mimetype="application/json")


def _endpoint(path: str, method: str, user: str) -> Any:
    action = path.removeprefix(API).strip("/")
    params = _params()
    if method == "GET" and action == "info":
        key = _SERVER.signer.public_key
        return _json(200, {"app": "creditgov", "public_key": key, "fingerprint": fingerprint(key)})
    if method == "GET" and action == "head":
        head = _SERVER.ledger.head(_text(params, "name"))
        return _json(200, {"seq": head.seq, "hash": head.hash})
    if method == "GET" and action == "roles":
        return _json(200, {"roles": sorted(_SERVER.ledger.roles(_text(params, "name"), user))})
    if method == "POST" and action == "roles":
        return _json(200, _roles(params, user))
    if method == "POST" and action in _ACTIONS:
        event = _ACTIONS[action](params, user)
        return _json(200, {"event": event.to_json()})
    return _json(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no endpoint {path}"})


def _refusal(err: Exception) -> Any:
    """A refusal as JSON with the status the client maps to an exit code."""
    if isinstance(err, BadInput):
        return _json(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": str(err)})
    if isinstance(err, CreditgovError):
        return _json(403, {"error_code": "PERMISSION_DENIED", "message": f"creditgov: {err}"})
    _log.exception("creditgov endpoint failed")
    return _json(500, {"error_code": "INTERNAL_ERROR", "message": type(err).__name__})


def _before_request() -> Any:
    """Runs before MLflow's own auth check: creditgov's endpoints and the registry guard."""
    from flask import g, request

    path = request.path
    registry = _REGISTRY.match(path)
    if not path.startswith(API) and registry is None:
        return None
    from mlflow.server.auth import authenticate_request

    authorization = authenticate_request()
    if not hasattr(authorization, "username"):
        return authorization  # MLflow's own 401 answer
    user = str(authorization.username)
    g.creditgov_user = user
    try:
        if path.startswith(API):
            return _endpoint(path, request.method, user)
        assert registry is not None
        if request.method != "GET":
            _guard(registry[1], registry[2], user)
    except Exception as err:
        return _refusal(err)
    return None  # on to MLflow's permission checks


def _after_request(response: Any) -> Any:
    """A version just created: record who created it and append its signed `registered` event."""
    from flask import g, request

    registry = _REGISTRY.match(request.path)
    if (
        registry is None
        or (registry[1], registry[2]) != ("model-versions", "create")
        or response.status_code != 200
    ):
        return response
    user = getattr(g, "creditgov_user", None)
    try:
        created = json.loads(response.get_data(as_text=True))["model_version"]
        name, version = str(created["name"]), str(created["version"])
        _SERVER.ledger.register(name, version, str(user))
        for key, value in {
            "trainer": str(user), "validation_status": "pending", "approval_status": "pending",
        }.items():  # fmt: skip
            _SERVER.client.set_model_version_tag(name, version, key, value)
        rules.register(
            _SERVER.client, name, version, actor=str(user), files=_SERVER.files,
            notary=_SERVER.notary,
        )  # fmt: skip
    except Exception as err:
        _log.exception("creditgov could not record a registration")
        return _refusal(err if isinstance(err, CreditgovError) else RuntimeError(str(err)))
    return response


def create_app() -> Any:
    """MLflow's basic-auth app with creditgov's guard, records and endpoints (`--app-name creditgov`)."""
    from mlflow.server import app as flask_app
    from mlflow.server.auth import create_app as basic_auth_app

    _SERVER.ledger.create()
    _SERVER.signer  # noqa: B018 - fail at start, not at the first request, without a key
    _SERVER.files  # noqa: B018
    # First in line, so the guard and the endpoints see a request before MLflow's own
    # checks (which would deny creditgov's routes, unknown to them, and let admins through).
    flask_app.before_request_funcs.setdefault(None, []).insert(0, _before_request)
    flask_app.after_request(_after_request)
    return basic_auth_app(flask_app)
