"""Who takes a governance decision: this process (local store) or the team server.

One protocol, two kinds. `LocalGovernance` runs the rules here against the registry the
client points at: on a laptop's SQLite store identities are claims, and the chain
detects what it can. `ServerGovernance` asks creditgov's app on the team server, which
runs the same rules with the identity it authenticated, signs the event, and is the only
party that can write governance tags and aliases there. `governance_for` picks the kind
from the tracking URI; commands and the job call the protocol and never ask which.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

from mlflow.tracking import MlflowClient

from registry.governance import rules
from registry.governance.chain import AuditEvent, read_chain
from registry.governance.errors import GovernanceError
from registry.governance.remote import TeamServer

__all__ = ["Governance", "LocalGovernance", "ServerGovernance", "governance_for"]


class Governance(Protocol):
    """The governance writes, each as one decision by `actor`."""

    @property
    def actor(self) -> str: ...

    def check_trainer(self, name: str) -> None:
        """Refuse before any run starts when `actor` may not register versions of `name`."""

    def registered(self, name: str, version: str) -> AuditEvent: ...

    def withdraw(self, name: str, version: str, *, reason: str) -> None:
        """Take back a version the job registered before it failed."""

    def validated(self, name: str, version: str, record: rules.ValidationRecord) -> AuditEvent: ...

    def approve(
        self,
        name: str,
        version: str,
        *,
        comment: str,
        override_gates: bool = False,
        justification: str | None = None,
    ) -> AuditEvent: ...

    def reject(self, name: str, version: str, *, comment: str) -> AuditEvent: ...

    def promote(self, name: str, version: str, *, alias: str = "champion") -> AuditEvent: ...

    def rollback(self, name: str, *, alias: str = "champion") -> AuditEvent: ...


@dataclass(frozen=True)
class LocalGovernance:
    """The rules run in this process; `actor` is who the shell says it is."""

    client: MlflowClient
    actor: str

    def check_trainer(self, name: str) -> None:
        """Anyone may register on a local store: there, identities are claims."""

    def withdraw(self, name: str, version: str, *, reason: str) -> None:
        """Locally a failed job's version is deleted, as if it had never been registered."""
        self.client.delete_model_version(name, version)

    def registered(self, name: str, version: str) -> AuditEvent:
        return rules.register(self.client, name, version, actor=self.actor)

    def validated(self, name: str, version: str, record: rules.ValidationRecord) -> AuditEvent:
        return rules.validate(self.client, name, version, record, actor=self.actor)

    def approve(
        self,
        name: str,
        version: str,
        *,
        comment: str,
        override_gates: bool = False,
        justification: str | None = None,
    ) -> AuditEvent:
        return rules.approve(
            self.client, name, version, actor=self.actor, comment=comment,
            override_gates=override_gates, justification=justification,
        )  # fmt: skip

    def reject(self, name: str, version: str, *, comment: str) -> AuditEvent:
        return rules.reject(self.client, name, version, actor=self.actor, comment=comment)

    def promote(self, name: str, version: str, *, alias: str = "champion") -> AuditEvent:
        return rules.promote(self.client, name, version, actor=self.actor, alias=alias)

    def rollback(self, name: str, *, alias: str = "champion") -> AuditEvent:
        return rules.rollback(self.client, name, actor=self.actor, alias=alias)


@dataclass(frozen=True)
class ServerGovernance:
    """Each decision is a request to the team server, taken there as the authenticated user."""

    server: TeamServer
    client: MlflowClient
    actor: str

    def check_trainer(self, name: str) -> None:
        if "trainer" not in self.server.roles(name):
            raise GovernanceError(
                f"{self.actor!r} is not a trainer of {name!r} on this team server, so a version "
                f"could not be registered; nothing was run: an admin grants it with "
                f"`python -m server role {self.actor} {name} trainer`"
            )

    def withdraw(self, name: str, version: str, *, reason: str) -> None:
        """The server keeps every version: it records this one as rejected by its trainer."""
        self.server.act("withdraw", {"name": name, "version": version, "reason": reason})

    def registered(self, name: str, version: str) -> AuditEvent:
        """The server appended it when the version was created; this finds it."""
        for event in read_chain(self.client, name):
            if event.event == "registered" and event.version == version:
                return event
        raise GovernanceError(
            f"the team server recorded no registration of models:/{name}/{version}; "
            f"is it running creditgov's app (`make team-up`)?"
        )

    def validated(self, name: str, version: str, record: rules.ValidationRecord) -> AuditEvent:
        return self.server.act("validated", {"name": name, "version": version, **asdict(record)})

    def approve(
        self,
        name: str,
        version: str,
        *,
        comment: str,
        override_gates: bool = False,
        justification: str | None = None,
    ) -> AuditEvent:
        rules.check_length("--comment", comment)  # before the request, as locally
        rules.check_length("--justification", justification)
        return self.server.act(
            "approve",
            {
                "name": name, "version": version, "comment": comment,
                "override_gates": override_gates, "justification": justification,
            },
        )  # fmt: skip

    def reject(self, name: str, version: str, *, comment: str) -> AuditEvent:
        rules.check_length("--comment", comment)
        return self.server.act("reject", {"name": name, "version": version, "comment": comment})

    def promote(self, name: str, version: str, *, alias: str = "champion") -> AuditEvent:
        return self.server.act("promote", {"name": name, "version": version, "alias": alias})

    def rollback(self, name: str, *, alias: str = "champion") -> AuditEvent:
        return self.server.act("rollback", {"name": name, "alias": alias})


def governance_for(client: MlflowClient, uri: str, actor: str) -> Governance:
    """The team server's governance when `uri` is one running creditgov's app, else local rules."""
    server = TeamServer.detect(uri)
    if server is None:
        return LocalGovernance(client, actor)
    return ServerGovernance(server, client, actor)
