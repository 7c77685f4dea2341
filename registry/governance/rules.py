"""The rules: approve, reject, promote and roll back a model version, each refused when it should be.

MLflow's registry lets anyone move any alias. Here each decision checks its rule first
(a second person approves, failed gates need an explicit override with a justification,
promotion needs an approval whose evidence and model files are unchanged, rollback
needs a `previous`), runs under the model lock, and appends its event to the audit
chain. State lives in version tags and aliases (`champion`, `previous`, `challenger`),
never the deprecated stages.
"""

from __future__ import annotations

import json
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from registry.governance.chain import AuditEvent, append, now, read_chain
from registry.governance.errors import GovernanceError
from registry.governance.lock import model_lock
from registry.governance.manifests import evidence_manifest, manifest_sha256, verify_model_files

__all__ = ["PROMOTABLE_ALIASES", "approve", "promote", "reject", "rollback"]

PROMOTABLE_ALIASES = ("champion", "challenger")


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
        when = now()
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
            append(
                client, name, "overridden", actor=actor, version=version,
                details={"justification": justification, "failed_gates": tags.get("gates", "[]")},
            )  # fmt: skip
        return append(
            client, name, "approved", actor=actor, version=version,
            details={"comment": comment, "evidence_sha256": evidence, "manifest": manifest},
        )  # fmt: skip


def reject(
    client: MlflowClient, name: str, version: str, *, actor: str, comment: str
) -> AuditEvent:
    """Reject a version for good (train a new one instead); refused while it serves."""
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
            "approved_at": now(),
            "approval_comment": comment[:4000],
        }.items():
            client.set_model_version_tag(name, version, key, value)
        return append(
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
            append(
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
            append(
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
            append(
                client, name, "promotion_refused", actor=actor, version=version,
                details={"alias": alias, "reason": "model files changed since registration"},
            )  # fmt: skip
            raise err from None
        before = _alias_version(client, name, alias)
        if before == version:
            return append(
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
        return append(
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
        return append(
            client,
            name,
            "rolled_back",
            actor=actor,
            version=previous,
            details={"alias": alias, "from": current},
        )
