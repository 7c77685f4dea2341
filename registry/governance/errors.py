"""How a governance write is refused: `GovernanceError`, and the server's own refusals as one.

Two parties can say no to a governance write: creditgov's rules (four eyes, evidence,
integrity) and, in team mode, the tracking server's permissions. Both end as a
`GovernanceError` (exit code 3) whose message says which rule refused and what to do, so a
caller catches one class whoever refused. The lock, the chain and the rules all raise it,
which is why it lives below them all. An argument the user can fix (a comment over the
length limit) is `GovernanceArgumentError`, bad input (exit code 2), raised before anything
is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from mlflow.exceptions import MlflowException

from creditgov.errors import BadInput, Refused

__all__ = ["GovernanceArgumentError", "GovernanceError", "run_refusals", "server_refusals"]


class GovernanceError(Refused):
    """A governance rule refused the action (exit code 3); the message says which and why."""


class GovernanceArgumentError(BadInput):
    """An argument of a governance command to fix and rerun (exit code 2): option and limit named."""


#: What a refused REST call would have done, for the refusal message.
_ACTIONS = {
    "registered-models/alias": "move its aliases",
    "model-versions/set-tag": "set tags on its versions",
    "registered-models/set-tag": "append to its audit chain",
    "registered-models/create": "create registered models",
    "registered-models/delete": "delete it",
}


@contextmanager
def server_refusals(name: str, *, actor: str) -> Iterator[None]:
    """A team server's PERMISSION_DENIED becomes a governance refusal (exit 3), said plainly.

    With `mlflow server --app-name basic-auth`, the server decides who may write to a
    registered model; creditgov's own rules (four eyes, evidence) come on top of that.
    """
    try:
        yield
    except MlflowException as err:
        if err.error_code != "PERMISSION_DENIED":
            raise
        text = str(err)
        action = next((v for k, v in _ACTIONS.items() if k in text), "change it")
        raise GovernanceError(
            f"the tracking server refused {actor!r} permission to {action} on registered model "
            f"{name!r} (PERMISSION_DENIED); an admin grants it with "
            f"`python -m server grant {actor} {name} MANAGE`"
        ) from None


@contextmanager
def run_refusals(experiment: str, *, actor: str) -> Iterator[None]:
    """A team server refusing to start a run becomes exit 3 naming the grant that is missing.

    A trainer role lets an account register versions of a model; starting runs in the
    job's experiment is MLflow's own permission, held by whoever created the experiment.
    """
    try:
        yield
    except MlflowException as err:
        if err.error_code != "PERMISSION_DENIED":
            raise
        raise GovernanceError(
            f"the tracking server refused {actor!r} permission to start runs in experiment "
            f"{experiment!r} (PERMISSION_DENIED); its creator or an admin grants it with "
            f"`python -m server grant {actor} {experiment} EDIT --experiment`"
        ) from None
