"""Model kinds by name: every module in `training/models/kinds/` is one kind.

The name a config gives in `model.type` is the module's file name, so adding a kind is
adding one file there (with a class implementing `base.ModelKind` bound to `KIND`) —
nothing else lists the kinds. `kind_names` only looks at file names, so loading a
config never imports a modelling library; `get_kind` imports the one module asked for.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, cast

import training.models.kinds as _kinds

if TYPE_CHECKING:
    from training.models.base import ModelKind

__all__ = ["get_kind", "kind_names"]


def kind_names() -> tuple[str, ...]:
    """Every registered kind's name, sorted (from the kinds/ folder, nothing imported)."""
    return tuple(
        sorted(m.name for m in pkgutil.iter_modules(_kinds.__path__) if not m.name.startswith("_"))
    )


def get_kind(name: str) -> ModelKind:
    """The kind called `name`; a ValueError listing the valid names if there is none."""
    if name not in kind_names():
        raise ValueError(f"unknown model kind {name!r}; valid kinds: {', '.join(kind_names())}")
    module = importlib.import_module(f"{_kinds.__name__}.{name}")
    return cast("ModelKind", module.KIND)
