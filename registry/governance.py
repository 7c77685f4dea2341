"""Governance: four-eyes approval, promotion by alias, rollback, and the audit chain.

MLflow's registry lets anyone move any alias and keeps no history of what served in
production. Here every decision goes through rules, and every step appends an event
to a hash-linked chain kept in the MLflow backend itself (registered-model tags), so
it works against a remote tracking server and survives the loss of any client.

State lives in tags and aliases, never the deprecated stages:
- version tags: validation_status, approval_status, approver, approved_at,
  approval_comment, evidence_sha256 (and gates_overridden, override_justification);
- aliases: champion (what serving loads), previous (the champion before it),
  challenger (optional, shadow scoring).

Writes that read-then-modify shared state (append an event, move aliases) run under a
mutex that is itself a row in the backend: creating a registered model whose name is
taken fails atomically in every MLflow store, so "create the lock model" is a
test-and-set that also works across machines.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from creditgov.errors import Refused

__all__ = [
    "AUDIT_PREFIX",
    "AuditEvent",
    "GovernanceError",
    "Verification",
    "approve",
    "evidence_manifest",
    "manifest_sha256",
    "model_lock",
    "model_manifest",
    "promote",
    "read_chain",
    "record_event",
    "registered_files",
    "reject",
    "rollback",
    "server_refusals",
    "verify_chain",
    "verify_model_files",
]

AUDIT_PREFIX = "audit."
HEAD_TAG = "audit.head"
LOCK_PREFIX = "creditgov-lock."
#: A lock older than this is taken as left behind by a crashed process and broken.
LOCK_STALE_S = 120.0
LOCK_WAIT_S = 60.0
GENESIS = "0" * 64
PROMOTABLE_ALIASES = ("champion", "challenger")


class GovernanceError(Refused):
    """A governance rule refused the action (exit code 3); the message says which and why."""


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    event: str  # registered | validated | approved | rejected | overridden | promoted | rolled_back
    actor: str
    time: str
    version: str | None
    details: Mapping[str, Any]
    prev: str
    hash: str

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "event": self.event,
            "actor": self.actor,
            "time": self.time,
            "version": self.version,
            "details": dict(self.details),
            "prev": self.prev,
        }

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}


def _digest(body: Mapping[str, Any]) -> str:
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


# ----------------------------------------------------------------------------- the lock


#: What a refused REST call would have done, for the refusal message.
_ACTIONS = {
    "registered-models/alias": "move its aliases",
    "model-versions/set-tag": "set tags on its versions",
    "registered-models/set-tag": "append to its audit chain",
    "registered-models/create": "create registered models",
    "registered-models/delete": "delete it",
}


@contextmanager
def server_refusals(name: str, *, actor: str) -> Iterator[None]:
    """A team server's PERMISSION_DENIED becomes a governance refusal (exit 3), said plainly.

    With `mlflow server --app-name basic-auth`, the server decides who may write to a
    registered model; creditgov's own rules (four eyes, evidence) come on top of that.
    """
    try:
        yield
    except MlflowException as err:
        if err.error_code != "PERMISSION_DENIED":
            raise
        text = str(err)
        action = next((v for k, v in _ACTIONS.items() if k in text), "change it")
        raise GovernanceError(
            f"the tracking server refused {actor!r} permission to {action} on registered model "
            f"{name!r} (PERMISSION_DENIED); an admin grants it with "
            f"`python -m registry.team grant {actor} {name} MANAGE`"
        ) from None


@contextmanager
def model_lock(client: MlflowClient, name: str, *, actor: str) -> Iterator[None]:
    """Serialise governance writes on one model, across processes and machines."""
    with server_refusals(name, actor=actor), _held(client, name, actor=actor):
        yield


@contextmanager
def _held(client: MlflowClient, name: str, *, actor: str) -> Iterator[None]:
    lock = f"{LOCK_PREFIX}{name}"
    token = uuid.uuid4().hex
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            client.create_registered_model(
                lock,
                tags={"token": token, "holder": actor, "since": f"{time.time():.3f}"},
                description="creditgov governance lock; safe to delete if no command is running",
            )
            break
        except MlflowException as err:
            if "RESOURCE_ALREADY_EXISTS" not in str(err.error_code) and "already exists" not in str(
                err
            ):
                raise
            _break_if_stale(client, lock)
            if time.monotonic() > deadline:
                raise GovernanceError(
                    f"model {name!r} is locked by another governance command for over {LOCK_WAIT_S:.0f}s; "
                    f"try again, or delete registered model {lock!r} if no command is running"
                ) from None
            time.sleep(0.05 + (uuid.uuid4().int % 100) / 1000)
    try:
        yield
    finally:
        try:
            held = client.get_registered_model(lock)
            if held.tags.get("token") == token:
                client.delete_registered_model(lock)
        except MlflowException:
            pass


def _break_if_stale(client: MlflowClient, lock: str) -> None:
    try:
        held = client.get_registered_model(lock)
    except MlflowException:
        return
    since = float(held.tags.get("since", "0") or 0)
    if time.time() - since > LOCK_STALE_S:
        with suppress(MlflowException):
            client.delete_registered_model(lock)


# ----------------------------------------------------------------------------- the chain


def read_chain(client: MlflowClient, name: str) -> list[AuditEvent]:
    """All events of `name`, in sequence order."""
    tags = client.get_registered_model(name).tags
    events = []
    for key, value in tags.items():
        if key.startswith(AUDIT_PREFIX) and key != HEAD_TAG:
            data = json.loads(value)
            events.append(
                AuditEvent(
                    seq=int(data["seq"]),
                    event=data["event"],
                    actor=data["actor"],
                    time=data["time"],
                    version=data.get("version"),
                    details=data.get("details", {}),
                    prev=data["prev"],
                    hash=data["hash"],
                )
            )
    return sorted(events, key=lambda e: (e.seq, e.hash))


def _append(
    client: MlflowClient,
    name: str,
    event: str,
    *,
    actor: str,
    version: str | None,
    details: Mapping[str, Any],
) -> AuditEvent:
    """Append one event; the caller holds the model lock."""
    chain = read_chain(client, name)
    prev = chain[-1].hash if chain else GENESIS
    seq = chain[-1].seq + 1 if chain else 1
    body = {
        "seq": seq,
        "event": event,
        "actor": actor,
        "time": _now(),
        "version": version,
        "details": dict(details),
        "prev": prev,
    }
    entry = AuditEvent(**body, hash=_digest(body))  # type: ignore[arg-type]
    client.set_registered_model_tag(
        name, f"{AUDIT_PREFIX}{seq:06d}", json.dumps(entry.to_json(), sort_keys=True)
    )
    client.set_registered_model_tag(name, HEAD_TAG, json.dumps({"seq": seq, "hash": entry.hash}))
    return entry


def record_event(
    client: MlflowClient,
    name: str,
    event: str,
    *,
    actor: str,
    version: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append an event under the model's lock (used by the job for registered/validated)."""
    with model_lock(client, name, actor=actor):
        return _append(client, name, event, actor=actor, version=version, details=details or {})


@dataclass(frozen=True)
class Verification:
    ok: bool
    events: int
    problems: tuple[str, ...]


def verify_chain(client: MlflowClient, name: str) -> Verification:
    """Recompute every hash and link; any edited, removed or reordered event shows."""
    chain = read_chain(client, name)
    problems: list[str] = []
    prev = GENESIS
    for position, entry in enumerate(chain, start=1):
        if entry.seq != position:
            problems.append(
                f"event {position}: sequence number is {entry.seq} (an event was removed or reordered)"
            )
        if _digest(entry.body()) != entry.hash:
            problems.append(
                f"event {entry.seq} ({entry.event}): content does not match its hash (edited)"
            )
        if entry.prev != prev:
            problems.append(
                f"event {entry.seq} ({entry.event}): does not link to the event before it"
            )
        prev = entry.hash
    head_text = client.get_registered_model(name).tags.get(HEAD_TAG)
    if chain and head_text:
        head = json.loads(head_text)
        if head.get("seq") != chain[-1].seq or head.get("hash") != chain[-1].hash:
            problems.append(
                f"the chain head says event {head.get('seq')} but the last event is {chain[-1].seq} (events removed at the end)"
            )
    elif chain and not head_text:
        problems.append("the chain head is missing")
    elif head_text and not chain:
        problems.append("the chain head exists but every event is gone")
    return Verification(ok=not problems, events=len(chain), problems=tuple(problems))


# ----------------------------------------------------------------------------- evidence


def evidence_manifest(client: MlflowClient, name: str, version: str) -> dict[str, str]:
    """sha256 of each file the approval rests on: model artifacts, config, data, reports.

    Keys are readable locations (`model/state.json`, `run/reports/report.html`,
    `data_digest`), so a refusal can name the file that changed.
    """
    mv = client.get_model_version(name, version)
    manifest: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="creditgov-evidence-") as tmp:
        manifest.update(_model_files(name, version, Path(tmp)))
        if mv.run_id:
            for folder in ("config", "reports"):
                try:
                    local = Path(
                        mlflow.artifacts.download_artifacts(
                            f"runs:/{mv.run_id}/{folder}", dst_path=f"{tmp}/{folder}"
                        )
                    )
                except (MlflowException, OSError):
                    continue
                for path in sorted(p for p in local.rglob("*") if p.is_file()):
                    manifest[f"run/{folder}/{path.relative_to(local).as_posix()}"] = _file_sha(path)
    manifest["data_digest"] = hashlib.sha256(
        str(mv.tags.get("data_digest", "")).encode()
    ).hexdigest()
    return manifest


def model_manifest(client: MlflowClient, name: str, version: str) -> dict[str, str]:
    """sha256 of each file of the registered model, keyed `model/<path>` as in the evidence.

    Recorded in the version's `registered` audit event, so a file edited or deleted in
    the artifact store afterwards is caught by `verify_model_files`.
    """
    with tempfile.TemporaryDirectory(prefix="creditgov-model-files-") as tmp:
        return _model_files(name, version, Path(tmp))


def _model_files(name: str, version: str, tmp: Path) -> dict[str, str]:
    try:
        model_dir = Path(
            mlflow.artifacts.download_artifacts(
                f"models:/{name}/{version}", dst_path=f"{tmp}/model"
            )
        )
    except (MlflowException, OSError):
        return {}  # the whole model folder is gone: every recorded file counts as deleted
    return {
        f"model/{path.relative_to(model_dir).as_posix()}": _file_sha(path)
        for path in sorted(p for p in model_dir.rglob("*") if p.is_file())
    }


def registered_files(client: MlflowClient, name: str, version: str) -> dict[str, str] | None:
    """The model files recorded when `version` was registered, or None without a record."""
    for entry in read_chain(client, name):
        if entry.event == "registered" and entry.version == version:
            files = entry.details.get("model_files")
            return dict(files) if isinstance(files, Mapping) else None
    return None


def verify_model_files(client: MlflowClient, name: str, version: str) -> None:
    """Refuse a version whose model files differ from those recorded at registration.

    Serving or promoting it would run code and numbers nobody trained or reviewed; the
    message names each edited, deleted or added file.
    """
    recorded = registered_files(client, name, version)
    if recorded is None:
        raise GovernanceError(
            f"models:/{name}/{version} has no record of its model files from registration "
            f"(not registered by `creditgov train`), so its integrity cannot be checked; retrain it"
        )
    present = model_manifest(client, name, version)
    problems = [
        f"{key} {'deleted' if key not in present else 'edited'}"
        for key in sorted(recorded)
        if present.get(key) != recorded[key]
    ] + [f"{key} added" for key in sorted(set(present) - set(recorded))]
    if problems:
        raise GovernanceError(
            f"models:/{name}/{version}: model files changed since registration "
            f"({', '.join(problems)}); it is refused: retrain and register a new version"
        )


def _file_sha(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(block)
    return hasher.hexdigest()


def manifest_sha256(manifest: Mapping[str, str]) -> str:
    return _digest(dict(sorted(manifest.items())))


# ----------------------------------------------------------------------------- rules


def _version(client: MlflowClient, name: str, version: str) -> Any:
    try:
        return client.get_model_version(name, version)
    except MlflowException:
        raise GovernanceError(
            f"models:/{name}/{version} does not exist; `creditgov models show {name}` lists its versions"
        ) from None


def approve(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    actor: str,
    comment: str,
    override_gates: bool = False,
    justification: str | None = None,
) -> AuditEvent:
    """Approve a version for promotion. Refused for its trainer, failed gates, rejection."""
    if not comment.strip():
        raise GovernanceError("approval needs --comment saying what was reviewed")
    if override_gates and not (justification or "").strip():
        raise GovernanceError(
            "--override-gates needs --justification saying why the failed gates are acceptable"
        )
    with model_lock(client, name, actor=actor):
        mv = _version(client, name, version)
        tags = mv.tags
        trainer = tags.get("trainer")
        if trainer and trainer == actor:
            raise GovernanceError(
                f"{actor!r} trained models:/{name}/{version} and cannot approve it: approval needs a second person"
            )
        if tags.get("approval_status") == "rejected":
            raise GovernanceError(
                f"models:/{name}/{version} was rejected by {tags.get('approver', '?')}; train a new version"
            )
        status = tags.get("validation_status", "pending")
        if status == "pending":
            raise GovernanceError(
                f"models:/{name}/{version} has not been validated yet (validation_status=pending)"
            )
        if status == "failed" and not override_gates:
            failed = [
                g["metric"] for g in json.loads(tags.get("gates", "[]")) if not g.get("passed")
            ]
            raise GovernanceError(
                f"models:/{name}/{version} failed its gates ({', '.join(failed) or 'see the report'}); "
                f"fix the model, or approve with --override-gates --justification TEXT"
            )
        verify_model_files(client, name, version)  # approve what was trained, nothing else
        manifest = evidence_manifest(client, name, version)
        evidence = manifest_sha256(manifest)
        when = _now()
        updates = {
            "approval_status": "approved",
            "approver": actor,
            "approved_at": when,
            "approval_comment": comment[:4000],
            "evidence_sha256": evidence,
        }
        if status == "failed":
            updates["gates_overridden"] = "true"
            updates["override_justification"] = (justification or "")[:4000]
        for key, value in updates.items():
            client.set_model_version_tag(name, version, key, value)
        if status == "failed":
            _append(
                client, name, "overridden", actor=actor, version=version,
                details={"justification": justification, "failed_gates": tags.get("gates", "[]")},
            )  # fmt: skip
        return _append(
            client, name, "approved", actor=actor, version=version,
            details={"comment": comment, "evidence_sha256": evidence, "manifest": manifest},
        )  # fmt: skip


def reject(
    client: MlflowClient, name: str, version: str, *, actor: str, comment: str
) -> AuditEvent:
    if not comment.strip():
        raise GovernanceError("rejection needs --comment saying why")
    with model_lock(client, name, actor=actor):
        mv = _version(client, name, version)
        if mv.tags.get("approval_status") == "approved" and any(
            a in PROMOTABLE_ALIASES for a in (mv.aliases or [])
        ):
            raise GovernanceError(
                f"models:/{name}/{version} is serving as {mv.aliases}; roll back or promote another version first"
            )
        for key, value in {
            "approval_status": "rejected",
            "approver": actor,
            "approved_at": _now(),
            "approval_comment": comment[:4000],
        }.items():
            client.set_model_version_tag(name, version, key, value)
        return _append(
            client, name, "rejected", actor=actor, version=version, details={"comment": comment}
        )


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def promote(
    client: MlflowClient, name: str, version: str, *, actor: str, alias: str = "champion"
) -> AuditEvent:
    """Point `alias` at an approved version whose evidence still matches its approval."""
    if alias not in PROMOTABLE_ALIASES:
        raise GovernanceError(
            f"--alias {alias!r}: promote sets one of {', '.join(PROMOTABLE_ALIASES)}"
        )
    with model_lock(client, name, actor=actor):
        mv = _version(client, name, version)
        tags = mv.tags
        approval = tags.get("approval_status", "pending")
        if approval != "approved":
            _append(
                client, name, "promotion_refused", actor=actor, version=version,
                details={"alias": alias, "reason": f"approval_status={approval}"},
            )  # fmt: skip
            raise GovernanceError(
                f"models:/{name}/{version} is {approval}, not approved; "
                f"a reviewer other than the trainer runs `creditgov approve {name} {version} --comment ...`"
            )
        if tags.get("validation_status") != "passed" and tags.get("gates_overridden") != "true":
            raise GovernanceError(
                f"models:/{name}/{version} did not pass validation and the gates were not overridden"
            )
        manifest = evidence_manifest(client, name, version)
        if manifest_sha256(manifest) != tags.get("evidence_sha256"):
            approved = _approved_manifest(client, name, version)
            changed = sorted(
                k if k in manifest else f"{k} deleted"
                for k in set(manifest) | set(approved)
                if manifest.get(k) != approved.get(k)
            )
            _append(
                client, name, "promotion_refused", actor=actor, version=version,
                details={"alias": alias, "reason": "evidence changed", "changed": changed},
            )  # fmt: skip
            raise GovernanceError(
                f"models:/{name}/{version}: evidence changed since approval ({', '.join(changed) or 'unknown file'}); "
                f"it must be re-approved"
            )
        try:
            verify_model_files(client, name, version)
        except GovernanceError as err:
            _append(
                client, name, "promotion_refused", actor=actor, version=version,
                details={"alias": alias, "reason": "model files changed since registration"},
            )  # fmt: skip
            raise err from None
        before = _alias_version(client, name, alias)
        if before == version:
            return _append(
                client,
                name,
                "promoted",
                actor=actor,
                version=version,
                details={"alias": alias, "from": before, "note": "already there"},
            )
        client.set_registered_model_alias(name, alias, version)
        if alias == "champion" and before is not None:
            client.set_registered_model_alias(name, "previous", before)
        now_at = _alias_version(client, name, alias)
        if now_at != version:
            raise GovernanceError(
                f"alias {alias!r} reads back as version {now_at}, not {version}; another writer interfered"
            )
        return _append(
            client,
            name,
            "promoted",
            actor=actor,
            version=version,
            details={"alias": alias, "from": before},
        )


def _approved_manifest(client: MlflowClient, name: str, version: str) -> dict[str, str]:
    for entry in reversed(read_chain(client, name)):
        if entry.event == "approved" and entry.version == version:
            return dict(entry.details.get("manifest", {}))
    return {}


def rollback(client: MlflowClient, name: str, *, actor: str, alias: str = "champion") -> AuditEvent:
    """champion <- previous; the rolled-back version is recorded in the audit chain."""
    with model_lock(client, name, actor=actor):
        current = _alias_version(client, name, alias)
        previous = _alias_version(client, name, "previous")
        if previous is None:
            raise GovernanceError(f"{name} has no 'previous' version to roll back to")
        client.set_registered_model_alias(name, alias, previous)
        client.delete_registered_model_alias(name, "previous")
        if _alias_version(client, name, alias) != previous:
            raise GovernanceError(f"alias {alias!r} did not move to version {previous}; try again")
        return _append(
            client,
            name,
            "rolled_back",
            actor=actor,
            version=previous,
            details={"alias": alias, "from": current},
        )
