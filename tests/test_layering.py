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


def _private_imports() -> list[str]:
    wrong = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and _ours(node.module):
                wrong += [
                    f"{module}: {node.module}.{a.name}"
                    for a in node.names
                    if a.name.startswith("_")
                ]
    return wrong


def test_no_module_imports_another_modules_private_names() -> None:
    assert not _private_imports()


#: Modules without a public face of their own: entry points and the served file.
NO_ALL = {"registry.scoring_model"}


def _public_definitions(path: Path) -> set[str]:
    """Top-level public functions and classes defined (not imported) in the file."""
    return {
        node.name
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
    }


@pytest.mark.parametrize(
    "module",
    sorted(
        m
        for m in MODULES
        if not m.startswith("benchmarks")
        and not m.endswith("__main__")
        and m not in NO_ALL
        and MODULES[m].name != "__init__.py"
    ),
)
def test_all_lists_what_the_module_defines_and_nothing_else(module: str) -> None:
    """`__all__` is the module's public face: every name in it exists, and every public
    function and class the module defines is in it (constants may stay unlisted)."""
    import importlib

    loaded = importlib.import_module(module)
    listed = getattr(loaded, "__all__", None)
    assert listed is not None, f"{module} has no __all__"
    missing = [name for name in listed if not hasattr(loaded, name)]
    assert not missing, f"{module}.__all__ names what it lacks: {missing}"
    defined = _public_definitions(MODULES[module])
    unlisted = sorted(defined - set(listed))
    assert not unlisted, f"{module} defines public names missing from __all__: {unlisted}"
