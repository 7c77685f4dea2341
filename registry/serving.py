"""`creditgov serve`: MLflow's own REST server, started on a copy whose files verified.

`mlflow models serve -m models:/NAME@champion` downloads the version and runs its
`scoring_model.py` with no check at all. Here the version is downloaded once into a
private folder, the chain and that copy's files are verified (`verified_copy`), and
`mlflow models serve` is pointed at that folder, so what answers requests is exactly what
was registered. The folder is removed when the server stops.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from registry.governance.loading import VerifiedModel, verified_copy

__all__ = ["serve_command", "serve_verified"]


def serve_command(folder: Path, host: str, port: int) -> list[str]:
    """The `mlflow models serve` command line for a verified local copy.

    `--env-manager local` serves in this environment: the copy's requirements were pinned
    from it at training time, and no second environment is built from the network.
    """
    return [
        sys.executable, "-m", "mlflow", "models", "serve", "-m", str(folder),
        "--env-manager", "local", "--host", host, "--port", str(port),
    ]  # fmt: skip


def serve_verified(
    model_uri: str,
    *,
    host: str,
    port: int,
    on_ready: Callable[[VerifiedModel], None] | None = None,
) -> int:
    """Verify `model_uri`, then serve the verified copy until the server exits; its exit code.

    Raises `registry.artifacts.ModelNotFound` or `GovernanceError` before anything is
    served; SIGTERM and Ctrl-C stop the server and remove the copy.
    """
    import mlflow

    from registry.tracking import resolve_tracking_uri, use_tracking

    client = use_tracking(resolve_tracking_uri(None))
    with tempfile.TemporaryDirectory(prefix="creditgov-serve-") as tmp:
        verified = verified_copy(
            client, model_uri, Path(tmp), tracking_uri=mlflow.get_tracking_uri()
        )
        if on_ready is not None:
            on_ready(verified)
        server = subprocess.Popen(serve_command(verified.folder, host, port))
        previous = signal.signal(signal.SIGTERM, lambda *_: server.terminate())
        try:
            return server.wait()
        except KeyboardInterrupt:
            server.terminate()
            return server.wait(timeout=30)
        finally:
            signal.signal(signal.SIGTERM, previous)
            if server.poll() is None:
                server.kill()
