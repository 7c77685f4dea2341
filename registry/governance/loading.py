"""Verify, then load: one local copy of a registered model, checked before anything reads it.

Checking the artifact store and then loading from it again leaves a window in which the
files can change, and MLflow's models-from-code flavour runs the `scoring_model.py` it
is given. So `score`, `evaluate`, `drift` and `serve` download the version once, check
*that copy* against the file hashes recorded at registration (signed by the team
server in team mode, after the chain itself verifies against the server's key and head),
and load only that copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from registry.governance.errors import GovernanceError
from registry.governance.manifests import DOWNLOADS, verify_model_files
from registry.governance.state import resolve_governed
from registry.governance.trust import Trust, trust_for

__all__ = ["VerifiedModel", "verified_copy"]


@dataclass(frozen=True)
class VerifiedModel:
    """A registered version and the local folder whose files matched its registration record."""

    name: str
    version: str
    folder: Path
    trust: Trust

    @property
    def pinned(self) -> str:
        """`models:/NAME/VERSION`: the version resolved, whatever alias named it."""
        return f"models:/{self.name}/{self.version}"


def verified_copy(client: MlflowClient, uri: str, dst: Path, *, tracking_uri: str) -> VerifiedModel:
    """Download `uri` into `dst` and refuse it unless the chain and that copy's files verify.

    Raises `registry.artifacts.ModelNotFound` for a URI naming no version and
    `GovernanceError` (exit 3) for an alias the chain did not set, a signed chain that
    does not verify, or a file edited, deleted or added since registration.
    """
    trust = trust_for(tracking_uri)
    name, version = resolve_governed(client, uri, trust=trust)
    try:
        folder = DOWNLOADS.fetch(f"models:/{name}/{version}", dst)
    except (MlflowException, OSError) as err:
        raise GovernanceError(
            f"models:/{name}/{version}: its files could not be downloaded ({type(err).__name__}); "
            f"check the artifact store, then retry"
        ) from None
    verify_model_files(client, name, version, local=folder)
    return VerifiedModel(name=name, version=version, folder=folder, trust=trust)
