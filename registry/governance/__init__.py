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

One concept per module, each name re-exported here: `errors` (`GovernanceError` and
the server's refusals), `lock` (the per-model mutex every write runs under), `chain`
(the audit events and their integrity), `state` (the tags and aliases checked against
the chain), `manifests` (the file hashes an approval rests on) and `rules` (approve,
reject, promote, rollback).
"""

from registry.governance.chain import (
    AUDIT_PREFIX,
    AuditEvent,
    EventVerifier,
    Verification,
    read_chain,
    record_event,
)
from registry.governance.errors import GovernanceArgumentError, GovernanceError, server_refusals
from registry.governance.lock import LOCK_PREFIX
from registry.governance.manifests import evidence_manifest, model_manifest, verify_model_files
from registry.governance.rules import MAX_TEXT_CHARS, approve, promote, reject, rollback
from registry.governance.state import resolve_governed, verify_chain

__all__ = [
    "AUDIT_PREFIX",
    "LOCK_PREFIX",
    "MAX_TEXT_CHARS",
    "AuditEvent",
    "EventVerifier",
    "GovernanceArgumentError",
    "GovernanceError",
    "Verification",
    "approve",
    "evidence_manifest",
    "model_manifest",
    "promote",
    "read_chain",
    "record_event",
    "reject",
    "resolve_governed",
    "rollback",
    "server_refusals",
    "verify_chain",
    "verify_model_files",
]
