"""Ed25519 signatures on audit events: what makes a chain no single account can rewrite unseen.

A hash chain alone is only tamper-evident against someone who does not re-hash: whoever
can write the `audit.*` tags can also recompute every hash. So the team server signs
each event's hash with a private key only it holds (`Signer`), and clients check every
signature against the server's public key (`verifier`), pinned by the operator from the
fingerprint `make team-up` prints. Keys travel as text, `ed25519:<base64 of the 32 raw
bytes>`, short enough for an environment variable; the fingerprint is the first 16 bytes
of the key's sha256, in hex.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from registry.governance.errors import GovernanceError

__all__ = [
    "KEY_PREFIX",
    "Signer",
    "fingerprint",
    "generate_key",
    "load_signer",
    "parse_public_key",
    "signature_ok",
]

KEY_PREFIX = "ed25519:"


@dataclass(frozen=True)
class Signer:
    """The server's private key: signs event hashes; `public_key` is what clients pin."""

    key: Ed25519PrivateKey

    @property
    def public_key(self) -> str:
        raw = self.key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return KEY_PREFIX + base64.b64encode(raw).decode()

    def sign(self, event_hash: str) -> str:
        """The base64 signature of an event's hash (the hash already covers its content and the link)."""
        return base64.b64encode(self.key.sign(event_hash.encode())).decode()


def generate_key(path: Path) -> Signer:
    """A new private key in PEM at `path`, readable by its owner only; kept if it exists."""
    if path.exists():
        return load_signer(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    return Signer(key)


def load_signer(path: Path) -> Signer:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise GovernanceError(f"{path}: not an Ed25519 private key")
    return Signer(key)


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A pinned key as given (`ed25519:<base64>`); a malformed one is refused, naming the format."""
    body = text.strip().removeprefix(KEY_PREFIX)
    try:
        raw = base64.b64decode(body, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise GovernanceError(
            "the pinned server public key is not `ed25519:<base64 of 32 bytes>`; copy it as "
            "`make team-up` printed it into $CREDITGOV_SERVER_PUBLIC_KEY"
        ) from None


def fingerprint(public_key: str) -> str:
    """`SHA256:` and the first 16 bytes of the key's sha256 in hex: what a person compares."""
    raw = parse_public_key(public_key).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return "SHA256:" + hashlib.sha256(raw).hexdigest()[:32]


def signature_ok(public_key: Ed25519PublicKey, event_hash: str, signature: str | None) -> bool:
    """True when `signature` is the server's over `event_hash`; a missing one never is."""
    if not signature:
        return False
    try:
        public_key.verify(base64.b64decode(signature, validate=True), event_hash.encode())
    except (InvalidSignature, ValueError):
        return False
    return True
