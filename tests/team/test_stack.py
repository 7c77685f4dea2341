"""The stack's own commands (`python -m server`): admin password, users, grants."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient

from server import ADMIN, change_password
from tests.team.conftest import MODEL, Team


def _team(team: Team, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    stack = team.stack
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env.update(CREDITGOV_TEAM_USER_PASSWORD=password, PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "server", "--state", str(stack.state),
         "--port", str(stack.port), "--postgres", stack.postgres, *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _as(user: str, password: str, monkeypatch: pytest.MonkeyPatch, url: str) -> AuthServiceClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
    return AuthServiceClient(url)


@pytest.fixture
def admin_password(team: Team) -> Iterator[str]:
    """The admin password now; put back afterwards, whatever the test changed it to."""
    before = team.stack.password_file.read_text(encoding="utf-8").strip()
    yield before
    now = team.stack.password_file.read_text(encoding="utf-8").strip()
    if now != before:
        change_password(team.url, now, ADMIN, before)
        team.stack.password_file.write_text(before + "\n", encoding="utf-8")


def test_admin_password_change_then_users_and_grants(
    team: Team, admin_password: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert oct(team.stack.password_file.stat().st_mode & 0o777) == "0o600"
    new = "admin-" + secrets.token_hex(8)
    changed = _team(team, "admin-password", password=new)
    assert changed.returncode == 0, changed.stderr
    assert team.stack.password_file.read_text(encoding="utf-8").strip() == new
    with pytest.raises(MlflowException, match="401"):
        _as(ADMIN, admin_password, monkeypatch, team.url).get_user(ADMIN)
    assert _as(ADMIN, new, monkeypatch, team.url).get_user(ADMIN).is_admin

    user = "erin" + secrets.token_hex(3)
    added = _team(team, "add-user", user, password="erin-" + secrets.token_hex(6))
    assert added.returncode == 0, added.stderr
    assert f"created user {user} (default permission READ)" in added.stdout
    for permission in ("MANAGE", "READ"):  # a second grant replaces the first
        granted = _team(team, "grant", user, MODEL, permission, password="")
        assert granted.returncode == 0, granted.stderr
        seen = _as(ADMIN, new, monkeypatch, team.url).get_user_permission(
            user, "registered_model", MODEL
        )
        assert seen.permission == permission
