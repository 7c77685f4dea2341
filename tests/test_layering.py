"""Imports point one way (docs/ARCHITECTURE.md, "Layers"), and no module imports itself back.

Read from the source with `ast`, so it sees every import: module-level ones, the lazy
ones inside functions (they run too, only later) and the `TYPE_CHECKING` ones (which
never run, so they count for the layers but not for cycles). The served model may import
nothing of ours: it runs where creditgov is not installed.
"""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("creditgov", "datasets", "training", "evaluation", "registry", "server", "benchmarks")
#: What each package may import besides itself. `creditgov.errors` imports nothing and is
#: open to all; otherwise the stage packages never import `creditgov`.
ALLOWED = {
    "training": set(),
    "datasets": set(),
    "evaluation": {"training"},
    "registry": {"training", "evaluation"},
    "server": {"training", "evaluation", "registry"},
    "creditgov": {"training", "evaluation", "registry", "datasets"},
    "benchmarks": set(PACKAGES),
}
OPEN_TO_ALL = "creditgov.errors"
SELF_CONTAINED = "registry.scoring_model"


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")) if (REPO / package).is_dir() else ():
            parts = list(path.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[tuple[str, bool]]:
    """(imported module, runs) for every import in the file; `runs` is False under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(n) for child in node.body for n in ast.walk(child))
    for node in ast.walk(tree):
        runs = id(node) not in typing_only
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, runs
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                yield (candidate if candidate in MODULES else node.module), runs


def _ours(name: str) -> str | None:
    """The module of ours `name` is (or is inside), else None."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


EDGES = [
    (module, target, runs)
    for module, path in MODULES.items()
    for imported, runs in _imports(path)
    if (target := _ours(imported)) is not None and target != module
]


def test_the_check_sees_the_packages_and_their_imports() -> None:
    """Guard against a check that passes because it read nothing."""
    assert {"creditgov.job", "training.models.base", "registry.scoring_model"} <= set(MODULES)
    assert ("creditgov.job", "creditgov.stages", True) in EDGES
    assert any(m.startswith("evaluation.") and t.startswith("training.") for m, t, _ in EDGES)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_each_package_imports_only_the_layers_below_it(package: str) -> None:
    wrong = sorted(
        f"{module} -> {target}"
        for module, target, _ in EDGES
        if module.split(".")[0] == package
        and (top := target.split(".")[0]) != package
        and top not in ALLOWED[package]
        and target != OPEN_TO_ALL
    )
    assert not wrong, "imports against the layers: " + "; ".join(wrong)


def test_the_errors_module_imports_nothing_of_ours() -> None:
    assert not [t for m, t, _ in EDGES if m == OPEN_TO_ALL]


def test_the_served_model_imports_only_mlflow_numpy_pandas_and_lightgbm() -> None:
    allowed = {
        "mlflow",
        "numpy",
        "pandas",
        "lightgbm",
        "__future__",
        "json",
        "math",
        "warnings",
        "typing",
    }
    tops = {name.split(".")[0] for name, _ in _imports(MODULES[SELF_CONTAINED])}
    assert tops <= allowed, sorted(tops - allowed)


def test_no_import_cycle_between_modules() -> None:
    graph: dict[str, set[str]] = {module: set() for module in MODULES}
    for module, target, runs in EDGES:
        if runs:
            graph[module].add(target)
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import cycle: {' -> '.join(err.args[1])}")
    assert len(order) == len(MODULES)
