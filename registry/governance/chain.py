"""The audit chain: every governance event of a model, hash-linked to the one before.

Each event is a registered-model tag (`audit.000001`, ...) in the MLflow backend itself,
so the history works against a remote tracking server and survives the loss of any
client; `audit.head` names the last one, so events removed at the end show too. An
event's hash covers its content and the previous hash (from `GENESIS`), and
`chain_problems` recomputes them all: any edited, removed or reordered event is reported,
and so is any `audit.*` tag that is not a readable event (read past, never a crash).
Whether the registry's tags and aliases agree with the chain is `state.verify_chain`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mlflow.tracking import MlflowClient

from registry.governance.lock import model_lock

__all__ = [
    "AUDIT_PREFIX",
    "GENESIS",
    "HEAD_TAG",
    "AuditEvent",
    "EventVerifier",
    "Notary",
    "ServerHead",
    "Verification",
    "append",
    "chain_problems",
    "digest",
    "now",
    "parse_events",
    "read_chain",
    "record_event",
]

AUDIT_PREFIX = "audit."
HEAD_TAG = "audit.head"
GENESIS = "0" * 64
_EVENT_KEY = re.compile(r"audit\.(\d{6})")


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
    #: The team server's Ed25519 signature of `hash` (base64); None on a local store.
    sig: str | None = None

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
        signed = {"sig": self.sig} if self.sig is not None else {}
        return {**self.body(), "hash": self.hash, **signed}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditEvent | None:
        """The event `data` describes, or None when it is not of an event's shape."""
        try:
            entry = cls(
                seq=data["seq"],
                event=data["event"],
                actor=data["actor"],
                time=data["time"],
                version=data.get("version"),
                details=data.get("details", {}),
                prev=data["prev"],
                hash=data["hash"],
                sig=data.get("sig"),
            )
        except (KeyError, TypeError):
            return None
        fields_ok = isinstance(entry.seq, int) and all(
            isinstance(v, str)
            for v in (entry.event, entry.actor, entry.time, entry.prev, entry.hash)
        )
        shape_ok = (
            isinstance(entry.details, Mapping)
            and isinstance(entry.version, str | None)
            and isinstance(entry.sig, str | None)
        )
        return entry if fields_ok and shape_ok else None


class Notary(Protocol):
    """Who seals an event before it is written: the team server signs it and records the head.

    `seal` returns the event with its signature and has recorded (seq, hash) where no
    registry writer can reach (an append-only table); it refuses a sequence number it has
    already recorded, so two writers can never both append event N. The rules also ask
    it to check a chain before deciding on it (`verifies`, `head`), so the server never
    acts on events rewritten behind its back.
    """

    def seal(self, name: str, entry: AuditEvent) -> AuditEvent: ...

    def verifies(self, entry: AuditEvent) -> bool:
        """True when `entry` carries this notary's own signature."""
        ...

    def head(self, name: str) -> ServerHead:
        """The last (seq, hash) this notary recorded for `name`."""
        ...


def digest(body: Mapping[str, Any]) -> str:
    """sha256 of `body` as canonical JSON (sorted keys, no spaces): the same content, the same hash."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def now() -> str:
    """The current UTC time as recorded in events and approval tags (ISO 8601, seconds)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _event(text: str) -> AuditEvent | None:
    """The event a tag holds, or None when it is not valid JSON of an event's shape."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return AuditEvent.from_json(data) if isinstance(data, dict) else None


def parse_events(tags: Mapping[str, str]) -> tuple[list[AuditEvent], list[str]]:
    """The readable events among a model's tags, in order, and a problem for every other `audit.*` tag.

    A key that is not `audit.NNNNNN` (or `audit.head`), or one whose value is not an event
    with that sequence number, is named and skipped, so a junk tag never crashes a command.
    """
    events: list[AuditEvent] = []
    problems: list[str] = []
    for key, value in sorted(tags.items()):
        if not key.startswith(AUDIT_PREFIX) or key == HEAD_TAG:
            continue
        match = _EVENT_KEY.fullmatch(key)
        if match is None:
            problems.append(f"tag {key!r} is not an audit event (unknown audit.* key); delete it")
            continue
        entry = _event(value)
        if entry is None or entry.seq != int(match[1]):
            problems.append(
                f"tag {key!r} does not hold a readable audit event (malformed); restore it from a backup"
            )
            continue
        events.append(entry)
    return sorted(events, key=lambda e: (e.seq, e.hash)), problems


def read_chain(client: MlflowClient, name: str) -> list[AuditEvent]:
    """All readable events of `name`, in sequence order (`chain_problems` names the rest)."""
    return parse_events(client.get_registered_model(name).tags)[0]


def append(
    client: MlflowClient,
    name: str,
    event: str,
    *,
    actor: str,
    version: str | None,
    details: Mapping[str, Any],
    notary: Notary | None = None,
) -> AuditEvent:
    """Append one event; the caller holds the model lock. A `notary` signs it first."""
    tags = client.get_registered_model(name).tags
    chain = parse_events(tags)[0]
    prev = chain[-1].hash if chain else GENESIS
    # Past every numbered key, readable or not: a malformed tag is never overwritten.
    taken = [int(m[1]) for key in tags if (m := _EVENT_KEY.fullmatch(key))]
    seq = max([e.seq for e in chain] + taken, default=0) + 1
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
    if notary is not None:
        entry = notary.seal(name, entry)
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
    notary: Notary | None = None,
) -> AuditEvent:
    """Append an event under the model's lock (registered / validated)."""
    with model_lock(client, name, actor=actor):
        return append(
            client, name, event, actor=actor, version=version, details=details or {},
            notary=notary,
        )  # fmt: skip


@dataclass(frozen=True)
class Verification:
    """What `verify_chain` found: whether the chain is intact, its length, and each break."""

    ok: bool
    events: int
    problems: tuple[str, ...]


#: True when an event's signature checks out against the server's pinned public key
#: (`trust.Trust`). Without one, a consistent rewrite of the whole chain (every hash
#: recomputed) cannot be told from the real chain: local mode promises no more.
EventVerifier = Callable[[AuditEvent], bool]


@dataclass(frozen=True)
class ServerHead:
    """The last event the team server recorded for a model, outside the tags (seq 0: none)."""

    seq: int
    hash: str


def chain_problems(
    tags: Mapping[str, str],
    *,
    verifier: EventVerifier | None = None,
    head: ServerHead | None = None,
) -> tuple[list[AuditEvent], list[str]]:
    """The chain's readable events and every break: edited, removed, reordered, unreadable.

    With `verifier`, every event must carry the server's signature; with `head` (the
    server's own record), the chain must end where the server says it does, so dropping
    the newest events and resetting `audit.head` shows too.
    """
    chain, problems = parse_events(tags)
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
        if verifier is not None and not verifier(entry):
            problems.append(
                f"event {entry.seq} ({entry.event}): its signature does not verify against the "
                f"team server's key (written or rewritten around the server)"
            )
        prev = entry.hash
    head_text = tags.get(HEAD_TAG)
    recorded: Any = None
    if head_text:
        try:
            recorded = json.loads(head_text)
        except ValueError:
            recorded = None
        if not isinstance(recorded, dict):
            problems.append(f"tag {HEAD_TAG!r} is not a readable chain head (malformed)")
    if chain and isinstance(recorded, dict):
        if recorded.get("seq") != chain[-1].seq or recorded.get("hash") != chain[-1].hash:
            problems.append(
                f"the chain head says event {recorded.get('seq')} but the last event is {chain[-1].seq} (events removed at the end)"
            )
    elif chain and not head_text:
        problems.append("the chain head is missing")
    elif head_text and not chain:
        problems.append("the chain head exists but every event is gone")
    if head is not None:
        last = chain[-1] if chain else None
        if last is None or (last.seq, last.hash) != (head.seq, head.hash):
            at = f"event {last.seq}" if last else "no event"
            if head.seq == 0:
                problems.append(
                    f"the team server recorded no event for this model but its tags end at {at} "
                    f"(events written around the server)"
                )
            else:
                problems.append(
                    f"the team server's own record ends at event {head.seq} ({head.hash[:12]}) but "
                    f"the chain's tags end at {at} (events removed, rewritten or added around the server)"
                )
    return chain, problems
