"""What a client trusts when it checks a chain: the team server's pinned key and its own record.

On a local store nothing is signed and identities are claims: verify can catch edits,
removals and any tag or alias that disagrees with the chain, but not a consistent
rewrite by someone who re-hashes every event. Against a creditgov team server, every
event must carry a signature by the server's key, and the chain must end where the
server's append-only record says it ends. The key is the one pinned in
$CREDITGOV_SERVER_PUBLIC_KEY (printed by `make team-up`); without a pin, the key the
server offers is used and the caller is told it was not pinned.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from registry.governance.chain import AuditEvent, EventVerifier, ServerHead
from registry.governance.errors import GovernanceError
from registry.governance.remote import TeamServer
from registry.governance.signing import fingerprint, parse_public_key, signature_ok

__all__ = ["LOCAL", "PUBLIC_KEY_ENV", "Trust", "trust_for"]

PUBLIC_KEY_ENV = "CREDITGOV_SERVER_PUBLIC_KEY"


@dataclass(frozen=True)
class Trust:
    """How far a chain can be checked here: signatures and the server's head, or hashes only."""

    verifier: EventVerifier | None = None
    head: Callable[[str], ServerHead] | None = None
    server: TeamServer | None = None
    public_key: str | None = None
    pinned: bool = False

    @property
    def signed(self) -> bool:
        return self.verifier is not None

    def describe(self) -> str:
        if self.public_key is None:
            return "local store: hashes and links checked; events are not signed"
        how = (
            "pinned"
            if self.pinned
            else f"offered by the server, not pinned (set ${PUBLIC_KEY_ENV})"
        )
        return f"signatures checked against the team server's key {fingerprint(self.public_key)} ({how})"


#: A local store, or a tracking server without creditgov's app.
LOCAL = Trust()


def trust_for(uri: str) -> Trust:
    """The trust for tracking URI `uri`: signed when it is a creditgov team server.

    A pinned key is a promise that `uri` is a team server signing with that key, so a
    server that does not run creditgov's app, or offers another key, is refused rather
    than silently trusted less.
    """
    pinned = os.environ.get(PUBLIC_KEY_ENV, "").strip()
    server = TeamServer.detect(uri)
    if server is None:
        if pinned and uri.startswith(("http://", "https://")):
            raise GovernanceError(
                f"${PUBLIC_KEY_ENV} pins a team server key, but {uri} does not run creditgov's "
                f"server app; point MLFLOW_TRACKING_URI at the team server or unset the pin"
            )
        return LOCAL
    key = parse_public_key(pinned or server.public_key)
    if pinned and parse_public_key(server.public_key) != key:
        raise GovernanceError(
            f"the team server at {uri} signs with key {fingerprint(server.public_key)}, not the "
            f"pinned {fingerprint(pinned)}; nothing it says is trusted: ask its operator which "
            f"key is right before changing ${PUBLIC_KEY_ENV}"
        )

    def verifier(event: AuditEvent) -> bool:
        return signature_ok(key, event.hash, event.sig)

    return Trust(
        verifier=verifier,
        head=server.head,
        server=server,
        public_key=pinned or server.public_key,
        pinned=bool(pinned),
    )
