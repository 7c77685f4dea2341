"""Identities and roles the four-eyes rule can trust: the server authenticates who acts.

alice (trainer) trains through the authenticated server and cannot approve her own
version; mallory, with no role, cannot approve anything; bob (reviewer) approves but may
not promote; carol (promoter) promotes. Each refusal comes from the server itself.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from registry.governance import read_chain, verify_chain
from registry.governance.trust import trust_for
from tests.team.conftest import MODEL, Team


def _as(team: Team, user: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    mlflow.set_tracking_uri(team.url)
    mlflow.set_registry_uri(team.url)
    return team.client(user, monkeypatch)


def _line(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join(result.stderr.split())


def _champion(client: MlflowClient) -> str | None:
    try:
        return str(client.get_model_version_by_alias(MODEL, "champion").version)
    except MlflowException:
        return None


def test_train_as_alice_approve_and_promote_as_bob_carol_refused(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = str(Path(__file__).resolve().parents[2] / "configs" / "credit_scoring.yaml")
    summary = tmp_path / "train.json"
    trained = team.cli("alice", "train", config, *team.config(), "--json", str(summary))
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = json.loads(summary.read_text())
    version = result["model_version"]
    assert result["validation_status"] == "passed"

    client = _as(team, "bob", monkeypatch)
    mv = client.get_model_version(MODEL, version)
    assert mv.tags["trainer"] == "alice"
    assert client.get_run(result["run_id"]).data.tags["creditgov.trainer"] == "alice"

    own = team.cli("alice", "approve", MODEL, version, "--comment", "my own work, looks fine")
    assert own.returncode == 3, own.stderr
    assert f"'alice' trained models:/{MODEL}/{version} and cannot approve it" in _line(own)
    assert client.get_model_version(MODEL, version).tags["approval_status"] == "pending"

    nobody = team.cli("mallory", "approve", MODEL, version, "--comment", "fine by me")
    assert nobody.returncode == 3, nobody.stderr
    assert f"creditgov: 'mallory' is not a reviewer of '{MODEL}'" in _line(nobody)

    approved = team.cli("bob", "approve", MODEL, version, "--comment", "report read; gates pass")
    assert approved.returncode == 0, approved.stderr
    assert client.get_model_version(MODEL, version).tags["approver"] == "bob"

    # bob reviews; moving the champion is the promoter's call, and the server says so.
    refused = team.cli("bob", "promote", MODEL, version)
    assert refused.returncode == 3, refused.stderr
    assert f"creditgov: 'bob' is not a promoter of '{MODEL}' on this team server" in _line(refused)
    assert _champion(client) is None

    promoted = team.cli("carol", "promote", MODEL, version)
    assert promoted.returncode == 0, promoted.stderr
    assert _champion(client) == version

    chain = [e for e in read_chain(client, MODEL) if e.version == version]
    assert [(e.event, e.actor) for e in chain] == [
        ("registered", "alice"),
        ("validated", "alice"),
        ("approved", "bob"),
        ("promoted", "carol"),
    ]
    # Every event carries the server's signature, and the chain ends where its record does.
    trusted = trust_for(team.url)
    assert trusted.signed and all(e.sig for e in chain)
    assert verify_chain(client, MODEL, trust=trusted).ok


def test_a_wrong_password_is_refused_before_anything_runs(team: Team, tmp_path: Path) -> None:
    config = str(Path(__file__).resolve().parents[2] / "configs" / "credit_scoring.yaml")
    wrong = team.cli(
        "alice", "train", config, *team.config(), env={"MLFLOW_TRACKING_PASSWORD": "not-hers"}
    )
    assert wrong.returncode == 2, wrong.stderr
    assert (
        f"tracking server {team.url} did not accept user 'alice': set MLFLOW_TRACKING_USERNAME "
        f"and MLFLOW_TRACKING_PASSWORD" in " ".join(wrong.stderr.split())
    )
    # Claiming to be bob needs bob's password: the identity is the server's, not the shell's.
    impostor = team.cli(
        "alice", "approve", MODEL, "1", "--comment", "x", env={"MLFLOW_TRACKING_USERNAME": "bob"}
    )
    assert impostor.returncode == 2, impostor.stderr
    assert "did not accept user 'bob'" in " ".join(impostor.stderr.split())
