"""A real team stack per test session: PostgreSQL databases and an authenticated mlflow server.

Each session gets fresh databases `creditgov_test_<random>_{mlflow,auth,optuna}`, a real
`mlflow server --app-name creditgov` on a free loopback port (started by `server.up`,
the code behind `make team-up`), and four accounts with creditgov roles on the models
the tests train: alice (trainer), bob (reviewer), carol (promoter) and mallory (no role,
the default READ). Everything is stopped and dropped at the end.

Without PostgreSQL the tests skip saying so; with CREDITGOV_REQUIRE_POSTGRES=1 (CI) they
fail instead, so a broken database can never pass as "skipped".
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from datasets import make_credit, write_table
from server import Stack, TeamError, add_user, down, drop_databases, grant_role, up

REPO = Path(__file__).resolve().parents[2]
POSTGRES = os.environ.get("CREDITGOV_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
MODEL = "credit-team"
#: A gate this small data passes, so versions can be approved and promoted.
PASSING = "gates=[{metric: auc, split: test, min: 0.6}]"
PASSWORDS = {"alice": "alice-" + secrets.token_hex(6), "bob": "bob-" + secrets.token_hex(6)}
PASSWORDS["carol"] = "carol-" + secrets.token_hex(6)
PASSWORDS["mallory"] = "mallory-" + secrets.token_hex(6)
#: Every model name a team test registers, and who holds which role on each.
MODELS = (MODEL, "credit-mlproject", "credit-attack")
ROLES = {"alice": "trainer", "bob": "reviewer", "carol": "promoter"}


def unavailable(reason: str) -> None:
    if os.environ.get("CREDITGOV_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason} (CREDITGOV_REQUIRE_POSTGRES=1, so this fails instead of skipping)")
    pytest.skip(reason)


@dataclass(frozen=True)
class Team:
    stack: Stack
    admin_password: str
    data: Path  # a small credit table
    folder: Path

    @property
    def url(self) -> str:
        return self.stack.url

    def env(self, user: str) -> dict[str, str]:
        """The environment of `user` at a shell pointed at the team server."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env.update(
            MLFLOW_TRACKING_URI=self.url,
            MLFLOW_TRACKING_USERNAME=user,
            MLFLOW_TRACKING_PASSWORD=PASSWORDS[user],
            COLUMNS="200",
            PYTHONWARNINGS="ignore",
            # pinned, as the README tells every team member to do
            CREDITGOV_SERVER_PUBLIC_KEY=self.stack.public_key(),
        )
        return env

    def cli(
        self, user: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "creditgov", *args],
            env={**self.env(user), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.folder,
        )

    def client(self, user: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
        """A client on the team server as `user`, for both stores.

        Both URIs are explicit: another test in this worker process may have left
        `mlflow.set_registry_uri` pointing at its own SQLite file, and a client built with
        only a tracking URI would then search that registry instead of the team's. The
        credentials go through `monkeypatch`, so they do not leak into later tests.
        """
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORDS[user])
        return MlflowClient(tracking_uri=self.url, registry_uri=self.url)

    def config(self, *overrides: str) -> list[str]:
        """`--set` arguments: the shipped credit config on the small table, cheap and single-threaded."""
        settings = [
            f"data.source={self.data}",
            f"registry.model_name={MODEL}",
            "model.params.num_threads=1",
            "evaluation.shap_sample=500",
            "tuning.n_trials=0",
            PASSING,
            *overrides,
        ]
        return [item for setting in settings for item in ("--set", setting)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres() -> str:
    import psycopg2

    try:
        psycopg2.connect(f"{POSTGRES}/postgres", connect_timeout=5).close()
    except psycopg2.OperationalError as err:
        unavailable(f"PostgreSQL at {POSTGRES} is not reachable ({str(err).strip()[:120]})")
    return POSTGRES


@pytest.fixture(scope="session")
def team(postgres: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    folder = tmp_path_factory.mktemp("team")
    stack = Stack(
        state=folder / "state",
        port=_free_port(),
        postgres=postgres,
        prefix=f"creditgov_test_{secrets.token_hex(4)}",
    )
    databases = [stack.database(role) for role in ("mlflow", "auth", "optuna")]
    try:
        admin = up(stack, workers=2, timeout_s=120)
    except TeamError as err:
        drop_databases(postgres, databases)
        unavailable(f"the team mlflow server could not be started: {err}")
    try:
        for user, password in PASSWORDS.items():
            add_user(stack.url, admin, user, password)
        for model in MODELS:
            for user, role in ROLES.items():
                grant_role(stack.url, admin, user, model, role)
        data = folder / "credit.parquet"
        write_table(make_credit(4000, seed=8).frame, data)
        yield Team(stack=stack, admin_password=admin, data=data, folder=folder)
    finally:
        down(stack, timeout_s=5)  # nothing to flush: the databases are dropped next
        drop_databases(postgres, databases)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under `pytest -n 2 --dist loadgroup` (make test) every team test that needs the
    server runs on one xdist worker, so a session starts one server, not one per worker."""
    for item in items:
        if "team" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("team-server"))
