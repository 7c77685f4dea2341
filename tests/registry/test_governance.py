"""Four-eyes approval, promotion by alias, rollback and the audit chain, on a real store.

Versions are trained once per module as `alice`; reviewers act as other identities
through $MLFLOW_TRACKING_USERNAME, the way the CLI reads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from creditgov.config import load_config
from creditgov.job import run
from datasets import make_credit, write_table
from registry.governance import (
    GovernanceError,
    approve,
    promote,
    read_chain,
    reject,
    verify_chain,
)
from tests.robustness.jobs import as_user

REPO = Path(__file__).resolve().parents[2]
NAME = "credit-pd"
PASSING = "gates=[{metric: auc, split: test, min: 0.6}]"
FAILING = "gates=[{metric: auc, split: test, min: 0.99}]"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """Four versions by alice: 1-3 pass their gates, 4 fails them."""
    folder = tmp_path_factory.mktemp("governance")
    write_table(make_credit(4000, seed=8).frame, folder / "credit.parquet")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with as_user("alice"):
        for gates in (PASSING, PASSING, PASSING, FAILING):
            config = load_config(
                REPO / "configs" / "credit_scoring.yaml",
                [
                    f"data.source={folder / 'credit.parquet'}",
                    f"tracking.uri={uri}",
                    "tuning.n_trials=0",
                    gates,
                ],
            )
            run(config)
    yield uri, folder


def _client(uri: str) -> MlflowClient:
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _cli(uri: str, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_TRACKING_USERNAME": user,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "creditgov", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _alias(client: MlflowClient, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(NAME, alias).version)
    except mlflow.exceptions.MlflowException:
        return None


def test_the_registered_versions_carry_registered_and_validated_events(store) -> None:  # type: ignore[no-untyped-def]
    uri, _ = store
    chain = read_chain(_client(uri), NAME)
    assert [(e.event, e.version, e.actor) for e in chain[:2]] == [
        ("registered", "1", "alice"),
        ("validated", "1", "alice"),
    ]
    assert {e.details["status"] for e in chain if e.event == "validated"} == {"passed", "failed"}


def test_train_approve_promote_serve_rollback(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    uri, folder = store
    client = _client(uri)
    mine = _cli(uri, "alice", "approve", NAME, "1", "--comment", "looks fine to me")
    assert mine.returncode == 3 and "cannot approve" in mine.stderr and "alice" in mine.stderr

    for version in ("1", "2"):
        done = _cli(uri, "bob", "approve", NAME, version, "--comment", "report read; gates pass")
        assert done.returncode == 0, done.stderr
    assert client.get_model_version(NAME, "1").tags["approver"] == "bob"
    assert _cli(uri, "bob", "promote", NAME, "1").returncode == 0
    assert _alias(client, "champion") == "1"

    # A fresh process that has never imported creditgov loads the champion and scores.
    rows = pd.read_parquet(folder / "credit.parquet").head(50)
    rows.to_parquet(tmp_path / "rows.parquet")
    code = (
        "import sys, mlflow, pandas as pd; mlflow.set_tracking_uri(sys.argv[1]);"
        "m = mlflow.pyfunc.load_model('models:/credit-pd@champion');"
        "out = m.predict(pd.read_parquet(sys.argv[2])); print(len(out), sorted(set(out.decision)));"
        "assert not [k for k in sys.modules if k.split('.')[0] in {'creditgov', 'training', 'evaluation', 'registry'}]"
    )
    env = {**os.environ, "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false", "PYTHONWARNINGS": "ignore"}
    served = subprocess.run(
        [sys.executable, "-c", code, uri, str(tmp_path / "rows.parquet")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert served.returncode == 0, served.stderr[-2000:]
    assert served.stdout.startswith("50 ")

    assert _cli(uri, "bob", "promote", NAME, "2").returncode == 0
    assert (_alias(client, "champion"), _alias(client, "previous")) == ("2", "1")
    back = _cli(uri, "carol", "rollback", NAME)
    assert back.returncode == 0, back.stderr
    assert _alias(client, "champion") == "1"
    chain = read_chain(client, NAME)
    assert [e.event for e in chain if e.event in {"promoted", "rolled_back"}][-3:] == [
        "promoted",
        "promoted",
        "rolled_back",
    ]
    assert chain[-1].actor == "carol" and chain[-1].details["from"] == "2"
    verified = _cli(uri, "bob", "audit", NAME, "--verify")
    assert verified.returncode == 0 and "verified" in verified.stdout
    listing = _cli(uri, "bob", "models", "list")
    assert (
        listing.returncode == 0
        and "credit-pd" in listing.stdout
        and "creditgov-lock" not in listing.stdout
    )


def test_failed_gates_need_an_override_with_a_justification(store) -> None:  # type: ignore[no-untyped-def]
    uri, _ = store
    client = _client(uri)
    assert client.get_model_version(NAME, "4").tags["validation_status"] == "failed"
    with pytest.raises(GovernanceError, match=r"failed its gates \(auc\).*--override-gates"):
        approve(client, NAME, "4", actor="bob", comment="ok")
    with pytest.raises(GovernanceError, match="--justification"):
        approve(client, NAME, "4", actor="bob", comment="ok", override_gates=True)
    approve(
        client,
        NAME,
        "4",
        actor="bob",
        comment="ok",
        override_gates=True,
        justification="AUC gate set for a larger sample",
    )
    tags = client.get_model_version(NAME, "4").tags
    assert tags["gates_overridden"] == "true" and tags["approval_status"] == "approved"
    events = [e.event for e in read_chain(client, NAME) if e.version == "4"]
    assert events[-2:] == ["overridden", "approved"]


def test_unapproved_and_rejected_versions_cannot_be_promoted(store) -> None:  # type: ignore[no-untyped-def]
    uri, _ = store
    client = _client(uri)
    done = _cli(uri, "bob", "promote", NAME, "3")
    assert done.returncode == 3 and "pending, not approved" in done.stderr
    reject(client, NAME, "3", actor="dave", comment="unstable bands")
    with pytest.raises(GovernanceError, match="is rejected, not approved"):
        promote(client, NAME, "3", actor="bob")
    with pytest.raises(GovernanceError, match="was rejected"):
        approve(client, NAME, "3", actor="bob", comment="second look")
    refused = [
        e for e in read_chain(client, NAME) if e.event == "promotion_refused" and e.version == "3"
    ]
    assert len(refused) == 2


def test_a_changed_artifact_after_approval_blocks_promotion(store) -> None:  # type: ignore[no-untyped-def]
    uri, _ = store
    client = _client(uri)
    approve(
        client,
        NAME,
        "4",
        actor="erin",
        comment="re-review",
        override_gates=True,
        justification="as before",
    ) if client.get_model_version(NAME, "4").tags.get("approval_status") != "approved" else None
    mv = client.get_model_version(NAME, "4")
    model_id = mv.source.split("/")[-1]
    location = client.get_logged_model(model_id).artifact_location
    state = Path(location.removeprefix("file://")) / "artifacts" / "state.json"
    assert state.exists(), state
    document = json.loads(state.read_text())
    document["decision"]["threshold"] = 0.99  # a quiet edit that would approve almost everyone
    state.write_text(json.dumps(document))
    with pytest.raises(
        GovernanceError, match=r"evidence changed since approval \(model/artifacts/state.json\)"
    ):
        promote(client, NAME, "4", actor="bob")
    assert _alias(client, "champion") != "4"


def test_concurrent_promotions_leave_one_champion_and_both_events(store) -> None:  # type: ignore[no-untyped-def]
    uri, _ = store
    client = _client(uri)
    for version in ("1", "2"):
        if client.get_model_version(NAME, version).tags.get("approval_status") != "approved":
            approve(client, NAME, version, actor="bob", comment="ok")
    before = len(read_chain(client, NAME))
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "MLFLOW_TRACKING_USERNAME": "bob"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "creditgov", "promote", NAME, v],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for v in ("1", "2")
    ]
    outcomes = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outcomes
    champion, previous = _alias(client, "champion"), _alias(client, "previous")
    assert champion in {"1", "2"}
    chain = read_chain(client, NAME)
    promoted = [e for e in chain[before:] if e.event == "promoted"]
    assert sorted(e.version for e in promoted) == ["1", "2"]
    assert promoted[-1].version == champion  # the last writer's alias is what stands
    assert previous in {"1", "2", None}
    assert verify_chain(client, NAME).ok


def test_tampering_with_the_audit_chain_is_detected(store) -> None:  # type: ignore[no-untyped-def]
    uri, _ = store
    client = _client(uri)
    assert verify_chain(client, NAME).ok
    key = "audit.000002"
    original = client.get_registered_model(NAME).tags[key]
    edited = json.loads(original)
    edited["actor"] = "mallory"
    client.set_registered_model_tag(NAME, key, json.dumps(edited))
    result = _cli(uri, "bob", "audit", NAME, "--verify")
    assert (
        result.returncode == 3
        and "event 2 (validated): content does not match its hash" in result.stderr
    )
    client.set_registered_model_tag(NAME, key, original)
    assert verify_chain(client, NAME).ok

    # Removing an event in the middle breaks the sequence and the links.
    client.delete_registered_model_tag(NAME, key)
    problems = verify_chain(client, NAME).problems
    assert any("removed or reordered" in p for p in problems)
    client.set_registered_model_tag(NAME, key, original)

    # Reordering two events, even re-hashing each so it is consistent on its own, breaks
    # the links between them.
    third = client.get_registered_model(NAME).tags["audit.000003"]
    swapped = []
    for text, seq in ((original, 3), (third, 2)):
        event = json.loads(text)
        event["seq"] = seq
        body = {k: v for k, v in event.items() if k != "hash"}
        event["hash"] = hashlib.sha256(
            json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
        ).hexdigest()
        swapped.append(json.dumps(event))
    client.set_registered_model_tag(NAME, "audit.000003", swapped[0])
    client.set_registered_model_tag(NAME, key, swapped[1])
    reordered = verify_chain(client, NAME)
    assert not reordered.ok
    assert any("does not link" in p for p in reordered.problems)
    assert not any("does not match its hash" in p for p in reordered.problems)
    client.set_registered_model_tag(NAME, key, original)
    client.set_registered_model_tag(NAME, "audit.000003", third)

    # Dropping the newest event is caught by the chain head.
    chain = read_chain(client, NAME)
    last_key = f"audit.{chain[-1].seq:06d}"
    last = client.get_registered_model(NAME).tags[last_key]
    client.delete_registered_model_tag(NAME, last_key)
    assert any("removed at the end" in p for p in verify_chain(client, NAME).problems)
    client.set_registered_model_tag(NAME, last_key, last)
    assert verify_chain(client, NAME).ok
