"""Governance that holds against anyone with write access to the registry (team mode).

One model, `credit-attack`, is trained twice by alice, approved by bob and promoted by
carol (champion 2, previous 1). Then each attack is tried the way an attacker would:
with a plain `MlflowClient` against the server as alice (a trainer, EDIT and MANAGE on
the model) and as admin, or behind the server's back, straight on the backend database
and the artifact disk. Through the server each write is refused (403); behind its back,
the signatures, the server's own head and the registered file hashes catch it, and
`score`, `serve`, `evaluate`, `drift` and the README's plain-MLflow recipe refuse.
Every test puts back what it changed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from datasets import make_credit, write_table
from registry.governance.chain import AUDIT_PREFIX, HEAD_TAG, digest
from registry.governance.signing import generate_key
from server import ADMIN
from tests.team.conftest import PASSWORDS, REPO, Team

NAME = "credit-attack"
CONFIG = str(REPO / "configs" / "credit_scoring.yaml")
SIGNATURE = "its signature does not verify against the team server's key"


@dataclass(frozen=True)
class Attacked:
    team: Team
    versions: tuple[str, str]
    batch: Path  # a labelled batch for score / evaluate / drift

    def run(self, user: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        return self.team.cli(user, *args, **kwargs)


def _client(team: Team, user: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    password = team.admin_password if user == ADMIN else PASSWORDS[user]
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    return MlflowClient(tracking_uri=team.url, registry_uri=team.url)


def _backend(team: Team) -> MlflowClient:
    """The registry as its database sees it: no server, no auth, no guard."""
    uri = team.stack.database_uri("mlflow")
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _line(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join(result.stderr.split())


@pytest.fixture(scope="session")  # not module: xdist may interleave modules, retraining it
def attacked(team: Team, tmp_path_factory: pytest.TempPathFactory) -> Attacked:
    folder = tmp_path_factory.mktemp("attack")
    versions = []
    for _ in range(2):
        out = folder / "train.json"
        trained = team.cli(
            "alice", "train", CONFIG, *team.config(f"registry.model_name={NAME}"),
            "--json", str(out),
        )  # fmt: skip
        assert trained.returncode == 0, trained.stderr[-3000:]
        versions.append(str(json.loads(out.read_text())["model_version"]))
    for version in versions:
        approved = team.cli("bob", "approve", NAME, version, "--comment", "report read")
        assert approved.returncode == 0, approved.stderr
        promoted = team.cli("carol", "promote", NAME, version)
        assert promoted.returncode == 0, promoted.stderr
    batch = folder / "batch.parquet"
    write_table(make_credit(1500, seed=44).frame, batch)
    return Attacked(team=team, versions=(versions[0], versions[1]), batch=batch)


@pytest.fixture
def restored(attacked: Attacked) -> Iterator[MlflowClient]:
    """The backend client; every model tag is put back as it was, whatever the test wrote."""
    backend = _backend(attacked.team)
    before = dict(backend.get_registered_model(NAME).tags)
    yield backend
    after = dict(backend.get_registered_model(NAME).tags)
    for key in set(after) - set(before):
        backend.delete_registered_model_tag(NAME, key)
    for key, value in before.items():
        if after.get(key) != value:
            backend.set_registered_model_tag(NAME, key, value)
    verified = attacked.run("bob", "audit", NAME, "--verify")
    assert verified.returncode == 0, verified.stderr


def _state(client: MlflowClient) -> tuple[dict[str, str], dict[str, dict[str, str]], list[Any]]:
    model = client.get_registered_model(NAME)
    versions = {
        mv.version: dict(mv.tags) for mv in client.search_model_versions(f"name = '{NAME}'")
    }
    return dict(model.tags), versions, sorted(model.aliases.items())


# ----------------------------------------------------------------------------- through the server

_WRITES: dict[str, Callable[[MlflowClient, Attacked], Any]] = {
    "forged approval tag": lambda c, a: c.set_model_version_tag(
        NAME, a.versions[0], "approval_status", "approved"
    ),
    "renamed trainer": lambda c, a: c.set_model_version_tag(NAME, a.versions[1], "trainer", "bob"),
    "recomputed evidence hash": lambda c, a: c.set_model_version_tag(
        NAME, a.versions[1], "evidence_sha256", "0" * 64
    ),
    "deleted validation tag": lambda c, a: c.delete_model_version_tag(
        NAME, a.versions[1], "validation_status"
    ),
    "forged champion alias": lambda c, a: c.set_registered_model_alias(
        NAME, "champion", a.versions[0]
    ),
    "deleted champion alias": lambda c, a: c.delete_registered_model_alias(NAME, "champion"),
    "forged audit event": lambda c, a: c.set_registered_model_tag(
        NAME, f"{AUDIT_PREFIX}000099", "{}"
    ),
    "junk audit tag": lambda c, a: c.set_registered_model_tag(NAME, "audit.note", "hello"),
    "deleted audit head": lambda c, a: c.delete_registered_model_tag(NAME, HEAD_TAG),
    "deleted version": lambda c, a: c.delete_model_version(NAME, a.versions[0]),
    "renamed model": lambda c, a: c.rename_registered_model(NAME, NAME + "-renamed"),
    "deleted model": lambda c, a: c.delete_registered_model(NAME),
    "version created with forged tags": lambda c, a: c.create_model_version(
        NAME,
        c.get_model_version_download_uri(NAME, a.versions[1]),
        tags={"approval_status": "approved", "approver": "bob"},
    ),
    "lock squatted": lambda c, a: c.create_registered_model(f"creditgov-lock.{NAME}"),
}


@pytest.mark.parametrize("attack", sorted(_WRITES))
@pytest.mark.parametrize("user", ["alice", ADMIN, "mallory"])
def test_plain_client_writes_to_governance_state_are_refused(
    attacked: Attacked, user: str, attack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(attacked.team, user, monkeypatch)
    before = _state(client)
    with pytest.raises(MlflowException) as refused:
        _WRITES[attack](client, attacked)
    assert refused.value.error_code == "PERMISSION_DENIED", str(refused.value)
    assert _state(client) == before


def test_a_tag_outside_governance_can_still_be_written(
    attacked: Attacked, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(attacked.team, "alice", monkeypatch)
    client.set_model_version_tag(NAME, attacked.versions[1], "note", "looks stable")
    assert client.get_model_version(NAME, attacked.versions[1]).tags["note"] == "looks stable"
    client.delete_model_version_tag(NAME, attacked.versions[1], "note")


def test_accounts_without_the_role_are_refused_by_the_server(attacked: Attacked) -> None:
    v1, _ = attacked.versions
    for command, role in (
        (("approve", NAME, v1, "--comment", "fine"), "reviewer"),
        (("reject", NAME, v1, "--comment", "no"), "reviewer"),
        (("promote", NAME, v1), "promoter"),
        (("rollback", NAME), "promoter"),
    ):
        refused = attacked.run("mallory", *command)
        assert refused.returncode == 3, refused.stderr
        assert f"creditgov: 'mallory' is not a {role} of '{NAME}'" in _line(refused)
    # An admin holds no role unless granted one: governance is not an admin's shortcut.
    admin = attacked.run(
        "bob", "promote", NAME, v1,
        env={"MLFLOW_TRACKING_USERNAME": ADMIN, "MLFLOW_TRACKING_PASSWORD": attacked.team.admin_password},
    )  # fmt: skip
    assert admin.returncode == 3, admin.stderr
    assert f"'admin' is not a promoter of '{NAME}'" in _line(admin)


def test_an_account_without_the_trainer_role_registers_nothing(
    attacked: Attacked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(attacked.team, "bob", monkeypatch)
    before = len(client.search_model_versions(f"name = '{NAME}'"))
    trained = attacked.run(
        "mallory", "train", CONFIG, *attacked.team.config(f"registry.model_name={NAME}"),
        "--json", str(tmp_path / "out.json"),
    )  # fmt: skip
    assert trained.returncode == 3, trained.stderr[-2000:]
    assert f"'mallory' is not a trainer of '{NAME}' on this team server" in _line(trained)
    assert len(client.search_model_versions(f"name = '{NAME}'")) == before
    experiment = client.get_experiment_by_name("credit-pd-lgbm")
    runs = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`creditgov.trainer` = 'mallory'"
    )
    assert runs == []  # refused before any run (or study) was started


def test_a_100k_comment_is_bad_input_and_writes_nothing(
    attacked: Attacked, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client(attacked.team, "bob", monkeypatch)
    before = _state(client)
    long = attacked.run("bob", "reject", NAME, attacked.versions[0], "--comment", "x" * 100_000)
    assert long.returncode == 2, long.stderr[-500:]
    assert "--comment" in _line(long)
    assert _state(client) == before


def test_a_pinned_key_the_server_does_not_hold_is_refused(
    attacked: Attacked, tmp_path: Path
) -> None:
    other = generate_key(tmp_path / "other.pem").public_key
    result = attacked.run(
        "bob", "audit", NAME, "--verify", env={"CREDITGOV_SERVER_PUBLIC_KEY": other}
    )
    assert result.returncode == 3, result.stderr
    assert "not the pinned" in _line(result)


# ----------------------------------------------------------------------------- behind its back


def _events(backend: MlflowClient) -> dict[str, dict[str, Any]]:
    tags = backend.get_registered_model(NAME).tags
    return {k: json.loads(v) for k, v in tags.items() if re.fullmatch(r"audit\.\d{6}", k)}


def _rehash_from(backend: MlflowClient, events: dict[str, dict[str, Any]], first: int) -> None:
    """What an attacker with the database does: recompute every hash from event `first` on."""
    prev = None
    for key in sorted(events):
        event = events[key]
        if event["seq"] < first:
            prev = event["hash"]
            continue
        event["prev"] = prev
        body = {
            k: event[k] for k in ("seq", "event", "actor", "time", "version", "details", "prev")
        }
        event["hash"] = digest(body)
        prev = event["hash"]
        backend.set_registered_model_tag(NAME, key, json.dumps(event, sort_keys=True))
    last = events[max(events)]
    backend.set_registered_model_tag(
        NAME, HEAD_TAG, json.dumps({"seq": last["seq"], "hash": last["hash"]})
    )


def test_a_consistent_rewrite_in_the_database_fails_its_signature(
    attacked: Attacked, restored: MlflowClient
) -> None:
    events = _events(restored)
    approval = next(
        k for k, e in sorted(events.items())
        if e["event"] == "approved" and e["version"] == attacked.versions[0]
    )  # fmt: skip
    events[approval]["actor"] = "mallory"
    _rehash_from(restored, events, events[approval]["seq"])
    result = attacked.run("bob", "audit", NAME, "--verify")
    assert result.returncode == 3, result.stderr
    assert f"event {events[approval]['seq']} (approved): {SIGNATURE}" in _line(result)
    # The server checks its own signatures before it decides: it will not act on the forgery.
    decided = attacked.run("carol", "promote", NAME, attacked.versions[1])
    assert decided.returncode == 3, decided.stderr
    assert SIGNATURE in _line(decided)
    score = attacked.run(
        "bob", "score", "--model", f"models:/{NAME}@champion", "--input", str(attacked.batch),
        "--output", str(attacked.batch.with_name("out.parquet")),
    )  # fmt: skip
    assert score.returncode == 3 and "does not verify" in _line(score), score.stderr
    assert not attacked.batch.with_name("out.parquet").exists()


def test_dropped_newest_events_fail_the_server_head(
    attacked: Attacked, restored: MlflowClient
) -> None:
    events = _events(restored)
    newest = max(events)
    restored.delete_registered_model_tag(NAME, newest)
    del events[newest]
    last = events[max(events)]
    restored.set_registered_model_tag(
        NAME, HEAD_TAG, json.dumps({"seq": last["seq"], "hash": last["hash"]})
    )
    result = attacked.run("bob", "audit", NAME, "--verify")
    assert result.returncode == 3, result.stderr
    assert "the team server's own record ends at event" in _line(result)


def test_deleting_every_audit_tag_is_not_an_empty_verified_chain(
    attacked: Attacked, restored: MlflowClient
) -> None:
    for key in list(restored.get_registered_model(NAME).tags):
        if key.startswith(AUDIT_PREFIX):
            restored.delete_registered_model_tag(NAME, key)
    result = attacked.run("bob", "audit", NAME, "--verify")
    assert result.returncode == 3, result.stderr
    assert "verified: 0 events" not in result.stdout
    listed = attacked.run("bob", "models", "list")
    assert listed.returncode == 0 and "DISAGREES" in listed.stdout, listed.stdout + listed.stderr


def test_a_junk_audit_tag_in_the_database_is_named_and_crashes_nothing(
    attacked: Attacked, restored: MlflowClient
) -> None:
    restored.set_registered_model_tag(NAME, "audit.note", "hello")
    for command in (("audit", NAME, "--verify"), ("rollback", NAME)):
        result = attacked.run("carol", *command)
        assert result.returncode == 3, result.stderr
        assert "audit.note" in _line(result) and "Traceback" not in result.stderr


# ----------------------------------------------------------------------------- files on disk


def _on_disk(attacked: Attacked, version: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The version's folder in the server's artifact store (`mlflow-artifacts:/…`)."""
    location = _client(attacked.team, "bob", monkeypatch).get_model_version_download_uri(
        NAME, version
    )
    path = location.split(":", 1)[1].lstrip("/")
    folder = attacked.team.stack.state / "artifacts" / path
    assert (folder / "MLmodel").is_file(), folder
    return folder


def _recipe(attacked: Attacked) -> subprocess.CompletedProcess[str]:
    """The README's verify-then-load recipe as a serving system runs it: no creditgov."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    code = text.split("<!-- verify-then-load -->\n```python\n", 1)[1].split("```", 1)[0]
    assert 'name, alias = "credit-pd", "champion"' in code
    code = code.replace('"credit-pd"', repr(NAME))
    blocked = ("creditgov", "registry", "training", "evaluation", "datasets", "server")
    prelude = f"import sys\nfor m in {blocked!r}:\n    sys.modules[m] = None\n"
    check = (
        "\nimport pandas as pd\n"
        f"out = model.predict(pd.read_parquet({str(attacked.batch)!r}).head(20))\n"
        "print(sorted(out.columns)[:3], len(out))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + code + check],
        env=attacked.team.env("bob"), capture_output=True, text=True, timeout=180,
        cwd=attacked.team.folder,
    )  # fmt: skip


def test_the_intact_champion_is_scored_and_loads_by_the_readme_recipe_without_creditgov(
    attacked: Attacked, tmp_path: Path
) -> None:
    out = tmp_path / "scores.parquet"
    scored = attacked.run(
        "bob", "score", "--model", f"models:/{NAME}@champion", "--input", str(attacked.batch),
        "--output", str(out),
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr[-2000:]
    assert f"models:/{NAME}/{attacked.versions[1]}" in scored.stdout and out.is_file()
    result = _recipe(attacked)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "['decision', 'probability', 'reason_1'] 20", result.stdout


def _refused_everywhere(
    attacked: Attacked, tmp_path: Path, expected: str, recipe_error: str
) -> None:
    uri = f"models:/{NAME}@champion"
    out = tmp_path / "scores.parquet"
    commands = {
        "score": ("score", "--model", uri, "--input", str(attacked.batch), "--output", str(out)),
        "evaluate": ("evaluate", "--model", uri, "--data", str(attacked.batch)),
        "drift": ("drift", "--model", uri, "--data", str(attacked.batch)),
        "serve": ("serve", uri, "--port", "1"),  # never reaches the port
    }
    for command, args in commands.items():
        result = attacked.run("bob", *args)
        assert result.returncode == 3, (command, result.stderr[-2000:])
        assert expected in _line(result), (command, result.stderr[-2000:])
    assert not out.exists()
    recipe = _recipe(attacked)
    assert recipe.returncode != 0 and recipe_error in recipe.stderr, recipe.stderr[-2000:]


def test_a_model_file_edited_on_the_artifact_disk_is_refused_before_it_runs(
    attacked: Attacked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _on_disk(attacked, attacked.versions[1], monkeypatch) / "scoring_model.py"
    original = code.read_bytes()
    marker = tmp_path / "ran"
    code.write_bytes(original + f"\nopen({str(marker)!r}, 'w').close()\n".encode())
    try:
        _refused_everywhere(
            attacked, tmp_path, "model/scoring_model.py edited", "model files changed"
        )
        assert not marker.exists(), "the appended code ran"
    finally:
        code.write_bytes(original)


def test_files_edited_with_their_recorded_hashes_rewritten_fail_the_signature(
    attacked: Attacked, restored: MlflowClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib

    code = _on_disk(attacked, attacked.versions[1], monkeypatch) / "scoring_model.py"
    original = code.read_bytes()
    edited = original + b"\n# nobody reviewed this\n"
    code.write_bytes(edited)
    try:
        events = _events(restored)
        key = next(
            k for k, e in sorted(events.items())
            if e["event"] == "registered" and e["version"] == attacked.versions[1]
        )  # fmt: skip
        events[key]["details"]["model_files"]["model/scoring_model.py"] = hashlib.sha256(
            edited
        ).hexdigest()
        _rehash_from(restored, events, events[key]["seq"])
        _refused_everywhere(attacked, tmp_path, "does not verify", "InvalidSignature")
    finally:
        code.write_bytes(original)


# ----------------------------------------------------------------------------- a failed job


def test_a_job_that_fails_after_registering_withdraws_its_version(
    attacked: Attacked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No one may delete a version on the team server, the failing job included: a name
    typed into a reason text fails the personal-data scan after registration, and the
    version is withdrawn — rejected by its trainer in the signed chain — never served."""
    import pandas as pd

    team = attacked.team
    name = str(pd.read_parquet(team.data, columns=["full_name"])["full_name"].iloc[0])
    text = json.dumps({"debt_to_income": f"As discussed with {name}"})
    client = _client(team, "bob", monkeypatch)
    before = {mv.version for mv in client.search_model_versions(f"name = '{NAME}'")}
    failed = attacked.run(
        "alice", "train", CONFIG,
        *team.config(f"registry.model_name={NAME}", f"evaluation.reason_texts={text}"),
    )  # fmt: skip
    assert failed.returncode == 1, failed.stderr[-2000:]
    assert "personal data" in _line(failed).lower() and name not in failed.stderr
    (version,) = {mv.version for mv in client.search_model_versions(f"name = '{NAME}'")} - before
    tags = client.get_model_version(NAME, version).tags
    assert tags["approval_status"] == "rejected" and tags["approver"] == "alice"
    assert "withdrawn" in tags["approval_comment"]
    promote = attacked.run("carol", "promote", NAME, version)
    assert promote.returncode == 3 and "is rejected, not approved" in _line(promote)
    verified = attacked.run("bob", "audit", NAME, "--verify")
    assert verified.returncode == 0, verified.stderr


# ----------------------------------------------------------------------------- a second trainer


def _server_cli(team: Team, *args: str) -> subprocess.CompletedProcess[str]:
    stack = team.stack
    return subprocess.run(
        [sys.executable, "-m", "server", "--state", str(stack.state), "--port", str(stack.port),
         "--postgres", stack.postgres, *args],
        capture_output=True, text=True, timeout=120,
        env={k: v for k, v in team.env("bob").items() if not k.startswith("MLFLOW_")},
    )  # fmt: skip


def test_a_second_trainer_is_told_the_experiment_grant_she_needs(
    attacked: Attacked, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team = attacked.team
    experiment = "credit-pd-lgbm"  # the shipped config's name, created by alice
    granted = _server_cli(team, "role", "mallory", NAME, "trainer")
    assert granted.returncode == 0, granted.stderr
    try:
        out = tmp_path / "train.json"
        args = ("train", CONFIG, *team.config(f"registry.model_name={NAME}"), "--json", str(out))
        refused = attacked.run("mallory", *args)
        assert refused.returncode == 3, refused.stderr[-2000:]
        hint = f"`python -m server grant mallory {experiment} EDIT --experiment`"
        assert f"refused 'mallory' permission to start runs in experiment '{experiment}'" in _line(
            refused
        ) and hint in _line(refused)
        done = _server_cli(team, "grant", "mallory", experiment, "EDIT", "--experiment")
        assert done.returncode == 0, done.stderr
        trained = attacked.run("mallory", *args)
        assert trained.returncode == 0, trained.stderr[-2000:]
        version = str(json.loads(out.read_text())["model_version"])
        client = _client(team, "bob", monkeypatch)
        assert client.get_model_version(NAME, version).tags["trainer"] == "mallory"
    finally:
        _server_cli(team, "role", "mallory", NAME, "trainer", "--revoke")


# ----------------------------------------------------------------------------- rollback


def test_rollback_onto_a_previous_rejected_since_is_refused(
    attacked: Attacked, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last in the module: a rollback that works, then version 1 rejected for good."""
    v1, v2 = attacked.versions
    client = _client(attacked.team, "bob", monkeypatch)
    back = attacked.run("carol", "rollback", NAME)
    assert back.returncode == 0, back.stderr
    assert client.get_model_version_by_alias(NAME, "champion").version == v1
    again = attacked.run("carol", "promote", NAME, v2)
    assert again.returncode == 0, again.stderr
    assert client.get_model_version_by_alias(NAME, "previous").version == v1
    rejected = attacked.run("bob", "reject", NAME, v1, "--comment", "superseded; bands unstable")
    assert rejected.returncode == 0, rejected.stderr
    result = attacked.run("carol", "rollback", NAME)
    assert result.returncode == 3, result.stderr
    assert f"models:/{NAME}/{v1} is rejected, not approved" in _line(result)
    assert client.get_model_version_by_alias(NAME, "champion").version == v2
    verified = attacked.run("bob", "audit", NAME, "--verify")
    assert verified.returncode == 0, verified.stderr
