"""The server's Ed25519 signatures on audit events, checked against `cryptography` directly."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry.governance.chain import AuditEvent, ServerHead, chain_problems, digest
from registry.governance.errors import GovernanceError
from registry.governance.signing import (
    fingerprint,
    generate_key,
    load_signer,
    parse_public_key,
    signature_ok,
)


def _chain(signer, n: int = 3) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Tags of a chain of `n` signed events, built the way the server appends them."""
    import json

    tags: dict[str, str] = {}
    prev = "0" * 64
    for seq in range(1, n + 1):
        body = {
            "seq": seq, "event": "registered", "actor": "alice", "time": "2026-12-03T00:00:00Z",
            "version": str(seq), "details": {}, "prev": prev,
        }  # fmt: skip
        event_hash = digest(body)
        tags[f"audit.{seq:06d}"] = json.dumps(
            {**body, "hash": event_hash, "sig": signer.sign(event_hash)}
        )
        prev = event_hash
    tags["audit.head"] = json.dumps({"seq": n, "hash": prev})
    return tags


def test_a_key_is_made_once_private_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    signer = generate_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert generate_key(path).public_key == signer.public_key  # kept, not replaced
    assert load_signer(path).public_key == signer.public_key


def test_signatures_verify_with_plain_cryptography_and_fail_for_any_change(tmp_path: Path) -> None:
    signer = generate_key(tmp_path / "key.pem")
    other = generate_key(tmp_path / "other.pem")
    event_hash = hashlib.sha256(b"event").hexdigest()
    sig = signer.sign(event_hash)
    # independently: the raw key from the text form, the signature over the hash's bytes
    raw = base64.b64decode(signer.public_key.removeprefix("ed25519:"))
    Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(sig), event_hash.encode())
    key = parse_public_key(signer.public_key)
    assert signature_ok(key, event_hash, sig)
    assert not signature_ok(key, hashlib.sha256(b"other").hexdigest(), sig)
    assert not signature_ok(parse_public_key(other.public_key), event_hash, sig)
    assert not signature_ok(key, event_hash, None)
    assert not signature_ok(key, event_hash, "not base64!")


def test_the_fingerprint_is_the_keys_sha256_prefix(tmp_path: Path) -> None:
    signer = generate_key(tmp_path / "key.pem")
    raw = base64.b64decode(signer.public_key.removeprefix("ed25519:"))
    assert fingerprint(signer.public_key) == "SHA256:" + hashlib.sha256(raw).hexdigest()[:32]


@pytest.mark.parametrize("text", ["", "ed25519:", "ed25519:AAAA", "rsa:" + "A" * 44, "ed25519:***"])
def test_a_malformed_pinned_key_is_refused_naming_the_format(text: str) -> None:
    with pytest.raises(GovernanceError, match=r"ed25519:<base64 of 32 bytes>"):
        parse_public_key(text)


def test_a_chain_checks_every_signature_and_the_servers_head(tmp_path: Path) -> None:
    import json

    signer = generate_key(tmp_path / "key.pem")
    key = parse_public_key(signer.public_key)

    def verifier(event: AuditEvent) -> bool:
        return signature_ok(key, event.hash, event.sig)

    tags = _chain(signer)
    last = json.loads(tags["audit.000003"])
    head = ServerHead(seq=3, hash=last["hash"])
    assert chain_problems(tags, verifier=verifier, head=head)[1] == []

    # signed by another key: every event is named
    forged = _chain(generate_key(tmp_path / "other.pem"))
    problems = chain_problems(forged, verifier=verifier, head=head)[1]
    assert [p.split(":")[0] for p in problems[:3]] == [
        "event 1 (registered)",
        "event 2 (registered)",
        "event 3 (registered)",
    ]

    # the newest event dropped and the tag head reset: only the server's head knows
    dropped = {k: v for k, v in tags.items() if k != "audit.000003"}
    dropped["audit.head"] = json.dumps({"seq": 2, "hash": json.loads(tags["audit.000002"])["hash"]})
    assert chain_problems(dropped, verifier=verifier)[1] == []
    problems = chain_problems(dropped, verifier=verifier, head=head)[1]
    assert len(problems) == 1 and "the team server's own record ends at event 3" in problems[0]
