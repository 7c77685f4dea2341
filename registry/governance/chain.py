"""The audit chain: every governance event of a model, hash-linked to the one before.

Each event is a registered-model tag (`audit.000001`, ...) in the MLflow backend itself,
so the history works against a remote tracking server and survives the loss of any
client; `audit.head` names the last one, so events removed at the end show too. An
event's hash covers its content and the previous hash (from `GENESIS`), and
`verify_chain` recomputes them all: any edited, removed or reordered event is reported.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlflow.tracking import MlflowClient

from registry.governance.lock import model_lock

__all__ = [
    "AUDIT_PREFIX",
    "GENESIS",
    "HEAD_TAG",
    "AuditEvent",
    "Verification",
    "append",
    "digest",
    "now",
    "read_chain",
    "record_event",
    "verify_chain",
]

AUDIT_PREFIX = "audit."
HEAD_TAG = "audit.head"
GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    """One link of the chain: who did what to which version, and the hash that seals it."""

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


def digest(body: Mapping[str, Any]) -> str:
    """sha256 of `body` as canonical JSON (sorted keys, no spaces): the same content, the same hash."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def now() -> str:
    """The current UTC time as recorded in events and approval tags (ISO 8601, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


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


def append(
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
        "time": now(),
        "version": version,
        "details": dict(details),
        "prev": prev,
    }
    entry = AuditEvent(**body, hash=digest(body))  # type: ignore[arg-type]
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
        return append(client, name, event, actor=actor, version=version, details=details or {})


@dataclass(frozen=True)
class Verification:
    """What `verify_chain` found: whether the chain is intact, its length, and each break."""

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
        if digest(entry.body()) != entry.hash:
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
