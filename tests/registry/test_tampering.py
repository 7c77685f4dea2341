"""Writes to the registry that bypass creditgov are detected against the audit chain, on SQLite.

Anyone with write access can set version tags, registered-model tags and aliases with the
plain `MlflowClient`. These tests make each such write and pin that `audit --verify` names
the disagreement and that promote, rollback, approve and score refuse (exit 3) rather than
act on it. One model is trained per module (alice) and registered three times, each
registration recorded in the chain as the job records it; versions 1 and 2 are approved
(bob) and promoted (carol), so champion=2, previous=1, and version 3 is pending. Each test
works on its own copy of that store's database (the artifact files are shared, so a test
that edits one puts it back) and runs the command in-process, as `tests/support.py` does.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from creditgov.config import load_config
from creditgov.errors import BadInput
from creditgov.job import run
from datasets import make_credit
from registry.governance import (
    LOCK_PREFIX,
    GovernanceArgumentError,
    GovernanceError,
    approve,
    evidence_manifest,
    promote,
    read_chain,
    record_event,
    reject,
    rollback,
    verify_chain,
)
from registry.governance.manifests import manifest_sha256, model_manifest
from tests.robustness.jobs import as_user, make_job
from tests.support import creditgov_in_process

NAME = "credit-pd"
PASSING = {"gates": [{"metric": "auc", "split": "test", "min": 0.6}]}


@dataclass(frozen=True)
class Store:
    uri: str
    folder: Path  # the module's job folder: data, artifacts
    rows: Path

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)


def _register_again(client: MlflowClient) -> None:
    """Version 1's model registered once more, with the tags and events the job writes."""
    first = client.get_model_version(NAME, "1")
    again = client.create_model_version(
        NAME, first.source, run_id=first.run_id, tags=dict(first.tags)
    )
    version = str(again.version)
    [registered] = [e for e in read_chain(client, NAME) if e.event == "registered"][:1]
    details = {**registered.details, "model_files": model_manifest(client, NAME, version)}
    record_event(client, NAME, "registered", actor="alice", version=version, details=details)
    record_event(
        client, NAME, "validated", actor="alice", version=version, details={"status": "passed"}
    )


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module's trained and governed store; returns its job folder."""
    folder = tmp_path_factory.mktemp("tampering")
    frame = make_credit(3000, seed=31).frame
    job = make_job(folder, frame, updates=PASSING)
    with as_user("alice"):
        run(load_config(job.config))
    client = job.client()
    _register_again(client)
    _register_again(client)
    for version in ("1", "2"):
        approve(client, NAME, version, actor="bob", comment="report read")
        promote(client, NAME, version, actor="carol")
    frame.drop(columns=["default_12m"]).head(100).to_parquet(folder / "rows.parquet")
    return folder


@pytest.fixture
def store(golden: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Store:
    """A fresh copy of the governed store's database for one test."""
    shutil.copyfile(golden / "mlflow.db", tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return Store(uri, golden, golden / "rows.parquet")


def cli(uri: str, *args: str, user: str = "alice") -> subprocess.CompletedProcess[str]:
    """`creditgov ARGS` against the store at `uri`, as `user`, in this process."""
    with as_user(user):
        return creditgov_in_process(*args, cwd=Path.cwd(), tracking_uri=uri)


def _error(done: subprocess.CompletedProcess[str]) -> str:
    """The one `error:` line of a finished command."""
    [line] = [x for x in done.stderr.splitlines() if x.startswith("error:")]
    return line


def _aliases(client: MlflowClient) -> dict[str, str]:
    return {k: str(v) for k, v in dict(client.get_registered_model(NAME).aliases or {}).items()}


def _run_file(client: MlflowClient, version: str, path: str) -> Path:
    run_id = client.get_model_version(NAME, version).run_id
    root = client.get_run(run_id).info.artifact_uri.removeprefix("file://")
    target = Path(root) / path
    assert target.is_file(), target
    return target


@contextmanager
def _edited(client: MlflowClient, version: str, path: str) -> Iterator[str]:
    """One of a version's run files changed in the artifact store, put back afterwards."""
    target = _run_file(client, version, path)
    original = target.read_bytes()
    if target.suffix == ".json":
        document = json.loads(original)
        document["seed"] = int(document.get("seed") or 0) + 1
        target.write_text(json.dumps(document), encoding="utf-8")
    else:
        target.write_bytes(original + b"<p>all gates passed</p>")
    try:
        yield f"run/{path}"
    finally:
        target.write_bytes(original)


def test_the_governed_store_verifies_and_lists_ok(store: Store) -> None:
    assert verify_chain(store.client(), NAME).ok
    assert _aliases(store.client()) == {"champion": "2", "previous": "1"}
    listing = cli(store.uri, "models", "list", user="bob")
    assert listing.returncode == 0, listing.stderr
    [row] = [line for line in listing.stdout.splitlines() if NAME in line]
    assert row.rstrip(" │|").endswith("ok"), row


# ----------------------------------------------------------------------------- 1. forged approval


def test_a_forged_approval_is_reported_and_promotion_refused(store: Store) -> None:
    client = store.client()
    evidence = manifest_sha256(evidence_manifest(client, NAME, "3"))
    for key, value in {"approval_status": "approved", "approver": "bob"}.items():
        client.set_model_version_tag(NAME, "3", key, value)
    client.set_model_version_tag(NAME, "3", "evidence_sha256", evidence)

    expected = "version 3 is tagged approved but the chain has no approval of it"
    assert expected in verify_chain(client, NAME).problems
    promoted = cli(store.uri, "promote", NAME, "3", user="carol")
    assert promoted.returncode == 3 and expected in _error(promoted), promoted.stderr
    assert _aliases(client)["champion"] == "2"
    audit = cli(store.uri, "audit", NAME, "--verify", user="bob")
    assert audit.returncode == 3 and expected in audit.stderr, audit.stdout
    assert "verified" not in audit.stdout


def test_promotion_reads_the_approval_from_the_chain_not_the_tag(store: Store) -> None:
    """Even with the tag check out of the way, promote asks the chain whether 3 was approved."""
    client = store.client()
    reject(client, NAME, "3", actor="dave", comment="unstable bands")
    with pytest.raises(GovernanceError, match="is rejected, not approved"):
        promote(client, NAME, "3", actor="carol")
    with pytest.raises(GovernanceError, match="was rejected"):
        approve(client, NAME, "3", actor="bob", comment="second look")


# ----------------------------------------------------------------------------- 2. renamed trainer


def test_a_trainer_who_renames_herself_still_cannot_approve(store: Store) -> None:
    client = store.client()
    client.set_model_version_tag(NAME, "3", "trainer", "zed")
    mine = cli(store.uri, "approve", NAME, "3", "--comment", "fine", user="alice")
    assert mine.returncode == 3, mine.stderr
    assert "trained models:/credit-pd/3 and cannot approve it" in _error(mine)
    expected = "version 3: tag trainer differs from the actor of its `registered` event"
    assert expected in verify_chain(client, NAME).problems
    with pytest.raises(GovernanceError, match="tag trainer differs"):
        approve(client, NAME, "3", actor="bob", comment="report read")
    assert client.get_model_version(NAME, "3").tags["approval_status"] == "pending"


# ----------------------------------------------------------------------------- 3. forged champion


def test_a_forged_champion_is_flagged_and_refused_by_score_evaluate_and_drift(
    store: Store, tmp_path: Path
) -> None:
    from creditgov.checks import check_drift, retest

    client = store.client()
    client.set_registered_model_alias(NAME, "champion", "3")
    expected = (
        "alias 'champion' points at version 3 but the last promote or rollback put it on version 2"
    )
    assert expected in verify_chain(client, NAME).problems

    out = tmp_path / "scores.csv"
    uri = f"models:/{NAME}@champion"
    scored = cli(
        store.uri, "score", "--model", uri, "--input", str(store.rows), "--output", str(out)
    )
    assert scored.returncode == 3 and expected in _error(scored), scored.stderr
    assert not out.exists()
    with pytest.raises(GovernanceError, match="alias 'champion' points at version 3"):
        retest(uri, store.rows)
    with pytest.raises(GovernanceError, match="alias 'champion' points at version 3"):
        check_drift(uri, store.rows)

    listing = cli(store.uri, "models", "list", user="bob")
    assert listing.returncode == 0, listing.stderr
    [row] = [line for line in listing.stdout.splitlines() if NAME in line]
    assert "DISAGREES" in row, listing.stdout


def test_a_hand_set_challenger_on_an_unapproved_version_never_serves(store: Store) -> None:
    from creditgov.checks import check_drift

    store.client().set_registered_model_alias(NAME, "challenger", "3")
    with pytest.raises(
        GovernanceError, match="alias 'challenger' points at version 3 but no promote"
    ):
        check_drift(f"models:/{NAME}@challenger", store.rows)


# ----------------------------------------------------------------------------- 4. rollback


def test_rollback_refuses_a_previous_rejected_since(store: Store) -> None:
    client = store.client()
    reject(client, NAME, "1", actor="dave", comment="found a leak in a feature")
    with pytest.raises(GovernanceError, match=r"models:/credit-pd/1 is rejected, not approved"):
        rollback(client, NAME, actor="carol")
    assert _aliases(client) == {"champion": "2", "previous": "1"}
    assert read_chain(client, NAME)[-1].event == "rollback_refused"
    assert verify_chain(client, NAME).ok


def test_rollback_refuses_a_previous_whose_validation_tag_was_forged(store: Store) -> None:
    client = store.client()
    client.set_model_version_tag(NAME, "1", "validation_status", "failed")
    done = cli(store.uri, "rollback", NAME, user="carol")
    assert done.returncode == 3, done.stderr
    assert "version 1: tag validation_status differs from its `validated` event" in _error(done)
    assert _aliases(client)["champion"] == "2"


def test_rollback_refuses_a_previous_whose_evidence_changed(store: Store) -> None:
    client = store.client()
    file = "run/reports/report.html"
    with (
        _edited(client, "1", "reports/report.html"),
        pytest.raises(
            GovernanceError, match=re.escape(f"evidence changed since approval ({file})")
        ),
    ):
        rollback(client, NAME, actor="carol")
    assert _aliases(client)["champion"] == "2"


def test_rollback_to_an_unchanged_previous_works(store: Store) -> None:
    """The refusals above come from the change: untouched, version 1 goes back."""
    client = store.client()
    event = rollback(client, NAME, actor="carol")
    assert (event.version, _aliases(client)) == ("1", {"champion": "1"})
    assert verify_chain(client, NAME).ok


# ----------------------------------------------------------------------------- 5. truncation


def test_an_emptied_chain_on_a_model_with_versions_is_broken(store: Store) -> None:
    client = store.client()
    for key in list(client.get_registered_model(NAME).tags):
        if key.startswith("audit."):
            client.delete_registered_model_tag(NAME, key)
    result = verify_chain(client, NAME)
    assert not result.ok and result.events == 0
    assert result.problems[0].startswith("the audit chain is empty but the model has 3 versions")
    audit = cli(store.uri, "audit", NAME, "--verify", user="bob")
    assert audit.returncode == 3 and "audit chain is empty" in audit.stderr
    assert "verified" not in audit.stdout
    with pytest.raises(GovernanceError, match="audit chain is empty"):
        promote(client, NAME, "1", actor="carol")


def test_verify_chain_passes_each_event_to_a_signature_verifier(store: Store) -> None:
    """The seam for server signatures: an event the verifier rejects is named."""
    client = store.client()
    seen: list[int] = []

    def verifier(event) -> bool:  # type: ignore[no-untyped-def]
        seen.append(event.seq)
        return event.seq != 2

    result = verify_chain(client, NAME, verifier=verifier)
    assert seen == list(range(1, result.events + 1))
    assert result.problems == (
        "event 2 (validated): its signature does not verify against the team server's key "
        "(written or rewritten around the server)",
    )


# ----------------------------------------------------------------------------- 6. junk tags


def test_a_junk_audit_tag_is_named_and_crashes_no_command(store: Store, tmp_path: Path) -> None:
    client = store.client()
    client.set_registered_model_tag(NAME, "audit.note", "hello")
    client.set_registered_model_tag(NAME, "audit.000999", "{not json")
    problems = verify_chain(client, NAME).problems
    assert "tag 'audit.note' is not an audit event (unknown audit.* key); delete it" in problems
    assert any(
        p.startswith("tag 'audit.000999' does not hold a readable audit event") for p in problems
    )

    promoted = cli(store.uri, "promote", NAME, "1", user="carol")
    assert promoted.returncode == 3 and "tag 'audit.000999'" in _error(promoted), promoted.stderr
    with pytest.raises(GovernanceError, match=r"tag 'audit\.000999'.*\(and 1 more\)"):
        rollback(client, NAME, actor="carol")
    out = tmp_path / "scores.csv"
    scored = cli(
        store.uri, "score", "--model", f"models:/{NAME}@champion",
        "--input", str(store.rows), "--output", str(out),
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    audit = cli(store.uri, "audit", NAME, "--verify", user="bob")
    assert audit.returncode == 3 and "audit.note" in audit.stderr, audit.stderr


# ----------------------------------------------------------------------------- 7. the lock


def test_a_lock_model_not_made_by_creditgov_is_refused_and_never_deleted(store: Store) -> None:
    client = store.client()
    lock = f"{LOCK_PREFIX}{NAME}"
    client.create_registered_model(lock, tags={"since": "99999999999"})
    with pytest.raises(GovernanceError) as refused:
        promote(client, NAME, "1", actor="carol")
    message = str(refused.value)
    assert f"registered model {lock!r}" in message and "not made by creditgov" in message
    assert "delete_registered_model" in message
    assert client.get_registered_model(lock).name == lock  # still there


def test_a_stale_creditgov_lock_is_broken_by_its_age_not_its_since_tag(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from registry.governance import lock as lock_module

    client = store.client()
    lock = f"{LOCK_PREFIX}{NAME}"
    client.create_registered_model(lock, tags={"token": "abc", "since": "99999999999"})
    monkeypatch.setattr(lock_module, "LOCK_STALE_S", 0.5)
    time.sleep(0.6)
    promote(client, NAME, "1", actor="carol")  # the far-future "since" does not keep it
    assert _aliases(client)["champion"] == "1"


# ----------------------------------------------------------------------------- 8. sizes


def test_an_over_long_comment_is_bad_input_and_writes_nothing(store: Store) -> None:
    client = store.client()
    events = len(read_chain(client, NAME))
    done = cli(store.uri, "approve", NAME, "3", "--comment", "x" * 100_000, user="bob")
    assert done.returncode == 2, done.stderr
    assert "--comment is 100,000 characters; the limit is 5,000" in _error(done)
    with pytest.raises(GovernanceArgumentError, match="--justification is 6,000 characters") as err:
        approve(
            client, NAME, "3", actor="bob", comment="ok",
            override_gates=True, justification="y" * 6_000,
        )  # fmt: skip
    assert isinstance(err.value, BadInput)
    with pytest.raises(GovernanceArgumentError, match="--comment"):
        reject(client, NAME, "3", actor="bob", comment="z" * 5_001)
    assert client.get_model_version(NAME, "3").tags["approval_status"] == "pending"
    assert len(read_chain(client, NAME)) == events
    with pytest.raises(GovernanceError, match="pending, not approved"):
        promote(client, NAME, "3", actor="carol")


# ----------------------------------------------------------------------------- 9. evidence


@pytest.mark.parametrize("path", ["reports/report.html", "config/resolved_config.json"])
def test_promote_refuses_a_run_file_edited_after_approval(store: Store, path: str) -> None:
    """The approval binds the report the reviewer read and the config the model was trained on."""
    client = store.client()
    approve(client, NAME, "3", actor="bob", comment="report read")
    with _edited(client, "3", path) as file:
        done = cli(store.uri, "promote", NAME, "3", user="carol")
    assert done.returncode == 3, done.stderr
    assert f"evidence changed since approval ({file})" in _error(done)
    assert _aliases(client)["champion"] == "2"
    refused = read_chain(client, NAME)[-1]
    assert (refused.event, refused.details["changed"]) == ("promotion_refused", [file])
    promote(client, NAME, "3", actor="carol")  # the file put back, the approval stands
    assert _aliases(client)["champion"] == "3"
