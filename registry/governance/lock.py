"""The model lock: one governance writer per registered model, across processes and machines.

Writes that read-then-modify shared state (append an event, move aliases) run under a
mutex that is itself a row in the backend: creating a registered model whose name is
taken fails atomically in every MLflow store, so "create the lock model" is a
test-and-set that also works across machines. The holder writes a random `token` tag with
the lock (in the same create call) and releases only a lock bearing its own token. A lock
created more than `LOCK_STALE_S` ago (by the backend's creation time, not a tag anyone
could set to the future) is taken as left behind by a crashed process and broken — but
only if it bears a token: a registered model of that name made by anything else is never
deleted, the command refuses and names it instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from registry.governance.errors import GovernanceError, server_refusals

__all__ = ["LOCK_PREFIX", "LOCK_STALE_S", "LOCK_WAIT_S", "model_lock"]

LOCK_PREFIX = "creditgov-lock."
#: A lock older than this is taken as left behind by a crashed process and broken.
LOCK_STALE_S = 120.0
LOCK_WAIT_S = 60.0


@contextmanager
def model_lock(client: MlflowClient, name: str, *, actor: str) -> Iterator[None]:
    """Serialise governance writes on one model, across processes and machines."""
    with server_refusals(name, actor=actor), _held(client, name, actor=actor):
        yield


@contextmanager
def _held(client: MlflowClient, name: str, *, actor: str) -> Iterator[None]:
    lock = f"{LOCK_PREFIX}{name}"
    token = uuid.uuid4().hex
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            client.create_registered_model(
                lock,
                tags={"token": token, "holder": actor, "since": f"{time.time():.3f}"},
                description="creditgov governance lock; safe to delete if no command is running",
            )
            break
        except MlflowException as err:
            if "RESOURCE_ALREADY_EXISTS" not in str(err.error_code) and "already exists" not in str(
                err
            ):
                raise
            _break_if_stale(client, name, lock)
            if time.monotonic() > deadline:
                raise GovernanceError(
                    f"model {name!r} is locked by another governance command for over {LOCK_WAIT_S:.0f}s; "
                    f"try again, or delete registered model {lock!r} if no command is running"
                ) from None
            time.sleep(0.05 + (uuid.uuid4().int % 100) / 1000)
    try:
        yield
    finally:
        try:
            held = client.get_registered_model(lock)
            if held.tags.get("token") == token:
                client.delete_registered_model(lock)
        except MlflowException:
            pass


def _break_if_stale(client: MlflowClient, name: str, lock: str) -> None:
    try:
        held = client.get_registered_model(lock)
    except MlflowException:
        return  # released meanwhile
    if not held.tags.get("token"):
        raise GovernanceError(
            f"registered model {lock!r} blocks governance commands on {name!r} but was not made "
            f"by creditgov (no token tag); check what it is, then delete it with "
            f"MlflowClient().delete_registered_model({lock!r})"
        )
    created = (held.creation_timestamp or 0) / 1000
    if time.time() - created > LOCK_STALE_S:
        with suppress(MlflowException):
            client.delete_registered_model(lock)
