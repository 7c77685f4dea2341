"""The rules: approve, reject, promote and roll back a model version, each refused when it should be.

MLflow's registry lets anyone move any alias. Here each decision checks its rule first
(a second person approves, failed gates need an explicit override with a justification,
promotion needs an approval whose evidence and model files are unchanged, rollback puts
back a `previous` that would pass the same checks), runs under the model lock, and
appends its event to the audit chain. State lives in version tags and aliases
(`champion`, `previous`, `challenger`), never the deprecated stages; every rule reads who
trained, validated and approved what from the chain, and refuses while a tag or alias
disagrees with it (`state.require_consistent`), since anyone can write those by hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from registry.governance.chain import AuditEvent, Notary, append, now, read_chain
from registry.governance.errors import GovernanceArgumentError, GovernanceError
from registry.governance.lock import model_lock
from registry.governance.manifests import (
    DOWNLOADS,
    ArtifactSource,
    evidence_manifest,
    manifest_sha256,
    model_manifest,
    verify_model_files,
)
from registry.governance.state import VersionRecord, replay, require_consistent

__all__ = [
    "MAX_TEXT_CHARS",
    "PROMOTABLE_ALIASES",
    "VALIDATION_TAG_PREFIXES",
    "ValidationRecord",
    "approve",
    "check_length",
    "promote",
    "register",
    "reject",
    "rollback",
    "validate",
    "withdraw",
]

PROMOTABLE_ALIASES = ("champion", "challenger")
#: The longest --comment or --justification: written in a version tag and an audit event,
#: well inside MLflow's tag value limit (100,000) with the approval's manifest beside it.
MAX_TEXT_CHARS = 5_000


def _version(client: MlflowClient, name: str, version: str) -> Any:
    try:
        return client.get_model_version(name, version)
    except MlflowException:
        raise GovernanceError(
            f"models:/{name}/{version} does not exist; `creditgov models show {name}` lists its versions"
        ) from None


def check_length(option: str, text: str | None) -> None:
    """Before anything is written: an over-long text must not leave tags without an event."""
    if text is not None and len(text) > MAX_TEXT_CHARS:
        raise GovernanceArgumentError(
            f"{option} is {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}: "
            f"shorten it (link to a longer review document instead)"
        )


def approve(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    actor: str,
    comment: str,
    override_gates: bool = False,
    justification: str | None = None,
    files: ArtifactSource = DOWNLOADS,
    notary: Notary | None = None,
) -> AuditEvent:
    """Approve a version for promotion. Refused for its trainer, failed gates, rejection."""
    check_length("--comment", comment)
    check_length("--justification", justification)
    if not comment.strip():
        raise GovernanceError("approval needs --comment saying what was reviewed")
    if override_gates and not (justification or "").strip():
        raise GovernanceError(
            "--override-gates needs --justification saying why the failed gates are acceptable"
        )
    with model_lock(client, name, actor=actor):
        mv = _version(client, name, version)
        tags = mv.tags
        # Four eyes against the chain's `registered` event: the trainer tag is anyone's to edit.
        record = replay(read_chain(client, name)).record(version)
        if record.trainer is not None and record.trainer == actor:
            raise GovernanceError(
                f"{actor!r} trained models:/{name}/{version} and cannot approve it: approval needs a second person"
            )
        record = require_consistent(client, name, notary=notary).record(version)
        if record.decision == "rejected":
            raise GovernanceError(
                f"models:/{name}/{version} was rejected by {tags.get('approver', '?')}; train a new version"
            )
        status = record.validation or "pending"
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
        verify_model_files(client, name, version, files=files)  # approve what was trained
        manifest = evidence_manifest(client, name, version, files=files)
        evidence = manifest_sha256(manifest)
        when = now()
        updates = {
            "approval_status": "approved",
            "approver": actor,
            "approved_at": when,
            "approval_comment": comment,
            "evidence_sha256": evidence,
        }
        if status == "failed":
            updates["gates_overridden"] = "true"
            updates["override_justification"] = justification or ""
        for key, value in updates.items():
            client.set_model_version_tag(name, version, key, value)
        if status == "failed":
            append(
                client, name, "overridden", actor=actor, version=version,
                details={"justification": justification, "failed_gates": tags.get("gates", "[]")},
                notary=notary,
            )  # fmt: skip
        return append(
            client, name, "approved", actor=actor, version=version,
            details={"comment": comment, "evidence_sha256": evidence, "manifest": manifest},
            notary=notary,
        )  # fmt: skip


def reject(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    actor: str,
    comment: str,
    notary: Notary | None = None,
) -> AuditEvent:
    """Reject a version for good (train a new one instead); refused while it serves."""
    check_length("--comment", comment)
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
        return _rejected(client, name, version, actor=actor, comment=comment, notary=notary)


def _rejected(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    actor: str,
    comment: str,
    notary: Notary | None,
    **details: Any,
) -> AuditEvent:
    """The tags and the `rejected` event of a rejection (or a trainer's withdrawal)."""
    for key, value in {
        "approval_status": "rejected",
        "approver": actor,
        "approved_at": now(),
        "approval_comment": comment,
    }.items():
        client.set_model_version_tag(name, version, key, value)
    return append(
        client, name, "rejected", actor=actor, version=version,
        details={"comment": comment, **details}, notary=notary,
    )  # fmt: skip


def _alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _check_promotable(
    client: MlflowClient,
    name: str,
    version: str,
    record: VersionRecord,
    *,
    actor: str,
    alias: str,
    refused: str,
    files: ArtifactSource,
    notary: Notary | None,
) -> None:
    """What promote and rollback both demand of the version they put behind `alias`.

    Approved per the chain (not rejected since), validated or overridden, its evidence
    what the approval hashed, its model files those registered. Each refusal is recorded
    as a `refused` event and raised.
    """

    def refuse(message: str, **details: Any) -> GovernanceError:
        append(
            client, name, refused, actor=actor, version=version,
            details={"alias": alias, **details}, notary=notary,
        )  # fmt: skip
        return GovernanceError(message)

    approval = record.decision or "pending"
    if approval != "approved":
        raise refuse(
            f"models:/{name}/{version} is {approval}, not approved; "
            f"a reviewer other than the trainer runs `creditgov approve {name} {version} --comment ...`",
            reason=f"approval_status={approval}",
        )
    if record.validation != "passed" and not record.overridden:
        raise refuse(
            f"models:/{name}/{version} did not pass validation and the gates were not overridden",
            reason="validation not passed",
        )
    manifest = evidence_manifest(client, name, version, files=files)
    if manifest_sha256(manifest) != record.evidence_sha256:
        approved = _approved_manifest(client, name, version)
        changed = sorted(
            k if k in manifest else f"{k} deleted"
            for k in set(manifest) | set(approved)
            if manifest.get(k) != approved.get(k)
        )
        raise refuse(
            f"models:/{name}/{version}: evidence changed since approval ({', '.join(changed) or 'unknown file'}); "
            f"it must be re-approved",
            reason="evidence changed",
            changed=changed,
        )
    try:
        verify_model_files(client, name, version, files=files)
    except GovernanceError as err:
        raise refuse(str(err), reason="model files changed since registration") from None


def promote(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    actor: str,
    alias: str = "champion",
    files: ArtifactSource = DOWNLOADS,
    notary: Notary | None = None,
) -> AuditEvent:
    """Point `alias` at an approved version whose evidence still matches its approval."""
    if alias not in PROMOTABLE_ALIASES:
        raise GovernanceError(
            f"--alias {alias!r}: promote sets one of {', '.join(PROMOTABLE_ALIASES)}"
        )
    with model_lock(client, name, actor=actor):
        _version(client, name, version)
        state = require_consistent(client, name, notary=notary)
        _check_promotable(
            client, name, version, state.record(version),
            actor=actor, alias=alias, refused="promotion_refused", files=files, notary=notary,
        )  # fmt: skip
        before = _alias_version(client, name, alias)
        details: dict[str, Any] = {"alias": alias, "from": before}
        if before == version:
            details["note"] = "already there"
        else:
            client.set_registered_model_alias(name, alias, version)
            if alias == "champion" and before is not None:
                client.set_registered_model_alias(name, "previous", before)
            now_at = _alias_version(client, name, alias)
            if now_at != version:
                raise GovernanceError(
                    f"alias {alias!r} reads back as version {now_at}, not {version}; another writer interfered"
                )
        return append(
            client, name, "promoted", actor=actor, version=version, details=details, notary=notary
        )


def _approved_manifest(client: MlflowClient, name: str, version: str) -> dict[str, str]:
    for entry in reversed(read_chain(client, name)):
        if entry.event == "approved" and entry.version == version:
            manifest = entry.details.get("manifest", {})
            return dict(manifest) if isinstance(manifest, dict) else {}
    return {}


def rollback(
    client: MlflowClient,
    name: str,
    *,
    actor: str,
    alias: str = "champion",
    files: ArtifactSource = DOWNLOADS,
    notary: Notary | None = None,
) -> AuditEvent:
    """champion <- previous, when `previous` would still pass promote's checks; recorded in the chain."""
    with model_lock(client, name, actor=actor):
        state = require_consistent(client, name, notary=notary)
        current = _alias_version(client, name, alias)
        previous = state.aliases.get("previous")
        if previous is None:
            raise GovernanceError(f"{name} has no 'previous' version to roll back to")
        _check_promotable(
            client, name, previous, state.record(previous),
            actor=actor, alias=alias, refused="rollback_refused", files=files, notary=notary,
        )  # fmt: skip
        client.set_registered_model_alias(name, alias, previous)
        client.delete_registered_model_alias(name, "previous")
        if _alias_version(client, name, alias) != previous:
            raise GovernanceError(f"alias {alias!r} did not move to version {previous}; try again")
        return append(
            client,
            name,
            "rolled_back",
            actor=actor,
            version=previous,
            details={"alias": alias, "from": current},
            notary=notary,
        )


#: The version tags a validation writes besides `validation_status` and `gates`.
VALIDATION_TAG_PREFIXES = ("gate.", "report.")


@dataclass(frozen=True)
class ValidationRecord:
    """The gates' verdict on a version as the registry records it (built by `registry.register`)."""

    status: str  # passed | failed
    gates: list[dict[str, Any]]
    tags: Mapping[str, str] = field(default_factory=dict)  # gate.* and report.* tags
    description: str = ""

    def problems(self) -> list[str]:
        """Why this record cannot be written: a bad status, one disagreeing with the gates, a stray tag."""
        problems = []
        if self.status not in {"passed", "failed"}:
            problems.append(f"validation status {self.status!r} is neither passed nor failed")
        elif self.gates and (self.status == "passed") != all(
            bool(g.get("passed")) for g in self.gates if isinstance(g, dict)
        ):
            problems.append(f"validation status {self.status!r} disagrees with its gates")
        stray = sorted(k for k in self.tags if not k.startswith(VALIDATION_TAG_PREFIXES))
        if stray:
            problems.append(f"a validation writes gate.* and report.* tags only, not {stray[0]!r}")
        return problems


def register(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    actor: str,
    files: ArtifactSource = DOWNLOADS,
    notary: Notary | None = None,
) -> AuditEvent:
    """The `registered` event: who registered the version, its lineage and its model files' hashes.

    On a team server the server appends it when the version is created, with the identity
    it authenticated and the files as its own artifact store holds them.
    """
    with model_lock(client, name, actor=actor):
        mv = _version(client, name, version)
        if replay(read_chain(client, name)).record(version).trainer is not None:
            raise GovernanceError(f"models:/{name}/{version} is already registered in the chain")
        return append(
            client, name, "registered", actor=actor, version=version,
            details={
                "run_id": mv.run_id, "config_sha256": mv.tags.get("config_sha256"),
                "data_digest": mv.tags.get("data_digest"),
                "model_files": model_manifest(client, name, version, files=files),
            },
            notary=notary,
        )  # fmt: skip


def validate(
    client: MlflowClient,
    name: str,
    version: str,
    record: ValidationRecord,
    *,
    actor: str,
    notary: Notary | None = None,
) -> AuditEvent:
    """Write the gates' verdict (once, by the version's trainer) and its `validated` event."""
    problems = record.problems()
    if problems:
        raise GovernanceArgumentError(f"models:/{name}/{version}: {problems[0]}")
    with model_lock(client, name, actor=actor):
        _version(client, name, version)
        state = replay(read_chain(client, name)).record(version)
        if state.trainer != actor:
            raise GovernanceError(
                f"models:/{name}/{version} was registered by {state.trainer or 'nobody in the chain'}; "
                f"only its trainer records its validation"
            )
        if state.validation is not None:
            raise GovernanceError(
                f"models:/{name}/{version} is already validated ({state.validation})"
            )
        for key, value in record.tags.items():
            client.set_model_version_tag(name, version, key, value)
        client.set_model_version_tag(name, version, "gates", json.dumps(record.gates))
        if record.description:
            client.update_model_version(name, version, description=record.description)
        client.set_model_version_tag(name, version, "validation_status", record.status)
        return append(
            client, name, "validated", actor=actor, version=version,
            details={"status": record.status, "gates": record.gates}, notary=notary,
        )  # fmt: skip


def withdraw(
    client: MlflowClient,
    name: str,
    version: str,
    *,
    actor: str,
    reason: str,
    notary: Notary | None = None,
) -> AuditEvent:
    """Its trainer takes back a version whose job failed after registering it: it is rejected.

    On a team server no one may delete a version, so a job that fails after registration
    (a personal-data hit, a crash while writing reports) cannot take its version back
    the way a local job does. Withdrawing records it as rejected — it can never be
    approved or promoted — with the reason in the chain. Only a version still pending,
    and only by whoever registered it.
    """
    check_length("reason", reason)
    with model_lock(client, name, actor=actor):
        _version(client, name, version)
        record = replay(read_chain(client, name)).record(version)
        if record.trainer != actor:
            raise GovernanceError(
                f"models:/{name}/{version} was registered by {record.trainer!r}; only its trainer withdraws it"
            )
        if record.decision is not None:
            raise GovernanceError(
                f"models:/{name}/{version} is already {record.decision}; only a pending version is withdrawn"
            )
        return _rejected(
            client, name, version, actor=actor, comment=reason, notary=notary, withdrawn=True
        )
