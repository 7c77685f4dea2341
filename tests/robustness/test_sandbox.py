"""A job stays inside its folders: no network, and no file read outside what it needs.

`creditgov validate` and `creditgov train` run under `strace -f` (every process and
thread), once with a clean config and once with LightGBM parameters that would read a
file, write one and listen on a socket. The trace must show no socket connecting,
listening or bound to anything but loopback port 0 (urllib3 probes IPv6 support that way
at import), and every file opened must lie in the job's folder, the repository, the
Python installation, the temporary folder or the few system files a process needs
(shared libraries, locale, OpenSSL's config, the user database for the login name, git's
config for the commit tag, matplotlib's font cache). MLflow's usage telemetry is what this caught first: the CLI turns it off.

`CI` is unset for the traced process: MLflow skips telemetry on CI machines, which would
hide exactly what this test is for. Without strace the test skips locally and fails in
CI (`.ci/run` installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from datasets import make_credit, write_table

REPO = Path(__file__).resolve().parents[2]
#: System files a Python process reads whatever it runs.
SYSTEM_FILES = {
    "/etc/ld.so.cache", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/gitconfig",
    "/etc/localtime", "/etc/timezone", "/etc/host.conf", "/etc/hosts", "/etc/gai.conf",
    "/etc/mime.types", "/etc/os-release", "/usr/lib/os-release", "/etc/ssl/openssl.cnf",
}  # fmt: skip
SYSTEM_DIRS = (
    "/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/", "/usr/local/lib/", "/usr/share/locale/",
    "/usr/share/zoneinfo/", "/usr/share/mime/", "/proc/", "/sys/", "/dev/",
)  # fmt: skip
OPENED = re.compile(r'open(?:at)?\((?:AT_FDCWD, |\d+, )?"([^"]+)".*\) = \d+$')
NETWORK = re.compile(r"(connect|listen|bind)\((\d+), (.*)\) = (-?\d+)")


def _strace() -> str:
    found = shutil.which("strace")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("strace is not installed (.ci/run installs it); the sandbox test needs it")
        pytest.skip("strace not installed: apt-get install strace to run the sandbox check")
    return found


def _allowed(path: str, roots: tuple[str, ...]) -> bool:
    home = str(Path.home())
    return (
        path in SYSTEM_FILES
        or path.startswith(SYSTEM_DIRS)
        or path.startswith(roots)
        or path in {f"{home}/.gitconfig", f"{home}/.config/git/config"}
        or path.startswith((f"{home}/.cache/matplotlib/", f"{home}/.config/matplotlib/"))
    )


def _traced(folder: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    log = folder / f"trace-{args[0]}.log"
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("MLFLOW_")}
    env.pop("MLFLOW_DISABLE_TELEMETRY", None)  # the CLI's own default is under test
    result = subprocess.run(
        [_strace(), "-f", "-qq", "-e", "trace=openat,open,creat,connect,listen,bind",
         "-o", str(log), sys.executable, "-m", "creditgov", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    return result, log.read_text(errors="replace").splitlines()


def _violations(lines: list[str], folder: Path) -> list[str]:
    roots = tuple(
        str(p).rstrip("/") + "/"
        for p in {
            folder,
            REPO,
            Path(sys.prefix),
            Path(sys.base_prefix),
            Path(tempfile.gettempdir()),
        }
    )
    problems = []
    for line in lines:
        network = NETWORK.search(line)
        if network:
            call, address = network[1], network[3]
            loopback_probe = call == "bind" and ("::1" in address or "127.0.0.1" in address)
            if "AF_UNIX" not in address and not loopback_probe:
                problems.append(f"{call}: {address[:120]}")
            if call == "listen":
                problems.append(f"listen on fd {network[2]}")
            continue
        opened = OPENED.search(line)
        if opened:
            path = opened[1]
            absolute = path if path.startswith("/") else str(folder / path)
            if not _allowed(os.path.normpath(absolute), roots):
                problems.append(f"opened {absolute}")
    return sorted(set(problems))


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("sandbox")
    write_table(make_credit(3000, seed=3).frame, folder / "credit.parquet")
    shutil.copy(REPO / "configs" / "credit_scoring.yaml", folder / "job.yaml")
    return folder


def _settings(folder: Path, *extra: str) -> list[str]:
    pairs = [
        f"data.source={folder / 'credit.parquet'}",
        f"tracking.uri=sqlite:///{folder / 'mlflow.db'}",
        "tuning.n_trials=2",
        "evaluation.shap_sample=300",
        "model.params.num_threads=1",
        *extra,
    ]
    return [item for pair in pairs for item in ("--set", pair)]


def test_validate_and_train_touch_no_network_and_no_outside_file(job: Path) -> None:
    for command in ("validate", "train"):
        result, lines = _traced(job, command, "job.yaml", *_settings(job))
        assert result.returncode == 0, result.stderr[-2000:]
        assert len(lines) > 100  # the trace really followed the job
        assert _violations(lines, job) == [], command


@pytest.mark.parametrize(
    "param",
    [
        "model.params.input_model=/etc/hostname",
        "model.params.machines=127.0.0.1:12400",
    ],
)
def test_a_hostile_lightgbm_parameter_reaches_nothing(job: Path, param: str) -> None:
    result, lines = _traced(job, "validate", "job.yaml", *_settings(job, param))
    assert result.returncode == 2, result.stderr[-2000:]
    assert "not a LightGBM parameter a job may set" in result.stderr
    assert _violations(lines, job) == []
    assert not any("/etc/hostname" in line for line in lines)
