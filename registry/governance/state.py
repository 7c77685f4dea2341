"""The registry's state checked against the audit chain: tags and aliases must say what the chain says.

Anyone with write access to the registry can set a version's tags or move an alias with
the plain MLflow client; only the chain records who decided what. So the chain is replayed
(`replay`: each version's trainer, validation, last decision and evidence, and where the
last promote or rollback put each alias) and compared with the tags and aliases
(`state_problems`). `verify_chain` reports both the chain's own breaks and every
disagreement; `require_consistent` refuses a governance write while there is any, and
`resolve_governed` refuses to load a version through an alias the chain did not set.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from mlflow.tracking import MlflowClient

from registry.governance.chain import (
    AuditEvent,
    EventVerifier,
    Notary,
    Verification,
    chain_problems,
    read_chain,
)
from registry.governance.errors import GovernanceError
from registry.governance.trust import LOCAL, Trust

__all__ = [
    "MANAGED_ALIASES",
    "ChainState",
    "VersionRecord",
    "replay",
    "require_consistent",
    "resolve_governed",
    "state_problems",
    "verify_chain",
]

#: The aliases only promote and rollback move; each must stand where the chain put it.
MANAGED_ALIASES = ("champion", "challenger", "previous")
#: Aliases that serve: a version reached through one must be approved per the chain.
_SERVING_ALIASES = ("champion", "challenger")


@dataclass(frozen=True)
class VersionRecord:
    """One version as the chain tells it; None where the chain has no such event."""

    trainer: str | None = None
    validation: str | None = None
    decision: str | None = None  # approved | rejected: the last of them
    decided_by: str | None = None
    evidence_sha256: str | None = None
    overridden: bool = False


@dataclass(frozen=True)
class ChainState:
    """What the chain says the registry holds: each version's record and each managed alias."""

    versions: Mapping[str, VersionRecord]
    aliases: Mapping[str, str]

    def record(self, version: str) -> VersionRecord:
        return self.versions.get(version, VersionRecord())


def replay(events: Iterable[AuditEvent]) -> ChainState:
    """Fold the events, in order, into the state they describe."""
    records: dict[str, dict[str, Any]] = {}
    aliases: dict[str, str] = {}
    pending_override: set[str] = set()
    for e in events:
        if e.version is None:
            continue
        record = records.setdefault(e.version, {})
        details = e.details
        if e.event == "registered":
            record["trainer"] = e.actor
        elif e.event == "validated":
            record["validation"] = details.get("status")
        elif e.event == "overridden":
            pending_override.add(e.version)
        elif e.event in {"approved", "rejected"}:
            record.update(decision=e.event, decided_by=e.actor)
            record["evidence_sha256"] = (
                details.get("evidence_sha256") if e.event == "approved" else None
            )
            record["overridden"] = e.event == "approved" and e.version in pending_override
            pending_override.discard(e.version)
        elif e.event == "promoted" and details.get("note") != "already there":
            alias = str(details.get("alias", "champion"))
            before = details.get("from")
            if alias == "champion" and before is not None and str(before) != e.version:
                aliases["previous"] = str(before)
            aliases[alias] = e.version
        elif e.event == "rolled_back":
            aliases[str(details.get("alias", "champion"))] = e.version
            aliases.pop("previous", None)
    return ChainState(versions={v: VersionRecord(**r) for v, r in records.items()}, aliases=aliases)


def _version_problems(version: str, tags: Mapping[str, str], record: VersionRecord) -> list[str]:
    if record.trainer is None:
        return [
            f"version {version} has no `registered` event in the chain "
            f"(registered outside creditgov, or its events were deleted)"
        ]
    problems = []
    if tags.get("trainer") != record.trainer:
        problems.append(
            f"version {version}: tag trainer differs from the actor of its `registered` event"
        )
    if tags.get("validation_status") != record.validation:
        problems.append(
            f"version {version}: tag validation_status differs from its `validated` event"
        )
    status = tags.get("approval_status")
    if status == "approved" and record.decision != "approved":
        problems.append(f"version {version} is tagged approved but the chain has no approval of it")
    elif status == "rejected" and record.decision != "rejected":
        problems.append(
            f"version {version} is tagged rejected but the chain has no rejection of it"
        )
    elif status not in {"approved", "rejected"} and record.decision is not None:
        problems.append(
            f"version {version}: the chain records it {record.decision} but its approval_status tag does not"
        )
    if record.decision is not None and tags.get("approver") != record.decided_by:
        problems.append(
            f"version {version}: tag approver differs from the actor of its last {record.decision} event"
        )
    if record.decision == "approved" and tags.get("evidence_sha256") != record.evidence_sha256:
        problems.append(
            f"version {version}: tag evidence_sha256 differs from the one its approval recorded"
        )
    if tags.get("gates_overridden") == "true" and not record.overridden:
        problems.append(
            f"version {version} is tagged gates_overridden but the chain has no override of it"
        )
    return problems


def _alias_problem(alias: str, actual: str | None, expected: str | None) -> str | None:
    if actual == expected:
        return None
    if expected is None:
        return f"alias {alias!r} points at version {actual} but no promote or rollback put it there"
    if actual is None:
        return (
            f"alias {alias!r} is missing; the last promote or rollback put it on version {expected}"
        )
    return (
        f"alias {alias!r} points at version {actual} but the last promote or rollback "
        f"put it on version {expected}"
    )


def state_problems(client: MlflowClient, name: str, events: list[AuditEvent]) -> list[str]:
    """Every tag and managed alias of `name` that disagrees with its chain `events`."""
    model = client.get_registered_model(name)
    versions = client.search_model_versions(f"name='{name}'")
    if versions and not events:
        return [
            f"the audit chain is empty but the model has {len(versions)} versions "
            f"(its audit.* tags were deleted); restore them from a backup"
        ]
    state = replay(events)
    problems = []
    for mv in sorted(versions, key=lambda v: int(v.version)):
        version = str(mv.version)
        problems += _version_problems(version, mv.tags, state.record(version))
    aliases = {str(k): str(v) for k, v in dict(model.aliases or {}).items()}
    for alias in MANAGED_ALIASES:
        problem = _alias_problem(alias, aliases.get(alias), state.aliases.get(alias))
        if problem is not None:
            problems.append(problem)
    return problems


def verify_chain(
    client: MlflowClient,
    name: str,
    *,
    trust: Trust = LOCAL,
    verifier: EventVerifier | None = None,
) -> Verification:
    """The chain's own breaks, then every tag or alias of the model that disagrees with it.

    With a team server's `trust`, every event's signature and the server's own record of
    the chain head are checked too; on a local store (`LOCAL`) a rewrite that re-hashes
    every event consistently cannot be told from the real chain. `verifier` overrides the
    trust's signature check.
    """
    head = trust.head(name) if trust.head is not None else None
    events, problems = chain_problems(
        client.get_registered_model(name).tags, verifier=verifier or trust.verifier, head=head
    )
    problems += state_problems(client, name, events)
    return Verification(ok=not problems, events=len(events), problems=tuple(problems))


def require_consistent(
    client: MlflowClient, name: str, *, notary: Notary | None = None
) -> ChainState:
    """The chain's state, or a refusal naming the first disagreement (the caller holds the lock).

    A decision taken on tags or aliases the chain contradicts would rest on a forgery. With
    the team server's `notary`, every event must carry its signature and the chain must
    end where its own record does, so a rewrite in the database is refused here too.
    """
    trust = LOCAL if notary is None else Trust(verifier=notary.verifies, head=notary.head)
    result = verify_chain(client, name, trust=trust)
    if not result.ok:
        more = f" (and {len(result.problems) - 1} more)" if len(result.problems) > 1 else ""
        raise GovernanceError(
            f"{name}: {result.problems[0]}{more}; `creditgov audit {name} --verify` lists every "
            f"problem: restore each named tag or alias to what the chain records, then retry"
        )
    return replay(read_chain(client, name))


def resolve_governed(client: MlflowClient, uri: str, *, trust: Trust = LOCAL) -> tuple[str, str]:
    """(name, version) of `uri`, refused when a managed alias stands where the chain did not put it.

    A version reached through `champion` or `challenger` must also be approved per the
    chain: an alias moved by hand onto a version nobody approved never serves. Against a
    team server (`trust.signed`) the chain itself must verify first — every signature and
    the server's head — since the model files are checked against what it records.
    """
    from registry.artifacts import model_alias, resolve_version

    name, version = resolve_version(client, uri)
    if trust.signed:
        head = trust.head(name) if trust.head is not None else None
        problems = chain_problems(
            client.get_registered_model(name).tags, verifier=trust.verifier, head=head
        )[1]
        if problems:
            raise GovernanceError(
                f"{uri}: the audit chain of {name} does not verify ({problems[0]}); it is refused: "
                f"`creditgov audit {name} --verify` lists every problem"
            )
    alias = model_alias(uri)
    if alias not in MANAGED_ALIASES:
        return name, version
    state = replay(read_chain(client, name))
    problem = _alias_problem(alias, version, state.aliases.get(alias))
    if problem is not None:
        raise GovernanceError(
            f"models:/{name}@{alias}: {problem}; it is refused: `creditgov audit {name} --verify` "
            f"lists what disagrees, restore the alias or promote an approved version"
        )
    if alias in _SERVING_ALIASES and state.record(version).decision != "approved":
        raise GovernanceError(
            f"models:/{name}@{alias} is version {version}, which the audit chain does not "
            f"record as approved; it is refused: promote an approved version"
        )
    return name, version
