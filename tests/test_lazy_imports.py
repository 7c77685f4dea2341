"""`creditgov --help` and `validate` answer without loading the heavy libraries (STYLE 8)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("shap", "lightgbm", "optuna", "mlflow", "matplotlib")

PROBE = """
import sys
from creditgov.cli import app
try:
    app(["--help"], standalone_mode=False)
except SystemExit:
    pass
from creditgov.config import load_config
from creditgov.job import prepare
print("LOADED:" + ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def test_help_config_loading_and_validation_do_not_import_heavy_libraries() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    loaded = done.stdout.rsplit("LOADED:", 1)[1].strip()
    assert loaded == "", f"imported at start-up: {loaded}"
    assert "train" in done.stdout and "approve" in done.stdout  # the help really printed
