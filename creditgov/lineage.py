"""Who trained what from which data and code: the lineage a run and its version carry.

`Lineage` is tagged on the run and the registered version (trainer, git commit, config
and data digests); `dataset_input` is the MLflow dataset the run records as its input.
The job's `log_lineage` stage (`creditgov/stages.py`) logs both.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from creditgov.config import JobConfig, config_sha256

if TYPE_CHECKING:
    from training.split import Splits

__all__ = ["Lineage", "dataset_input"]


@dataclass(frozen=True)
class Lineage:
    """Who trained what from which data and code: tagged on the run and the version."""

    trainer: str
    commit: str
    config_sha256: str
    data_digest: str

    @classmethod
    def of(cls, config: JobConfig, splits: Splits) -> Lineage:
        from registry.tracking import git_commit, identity

        commit = git_commit(Path(config.data.source).parent) or git_commit(Path.cwd())
        return cls(identity(), commit or "unknown", config_sha256(config), splits.train.digest)


def dataset_input(splits: Splits, config: JobConfig) -> tuple[Any, dict[str, str]]:
    """The MLflow dataset the run records as its input, and the input's tags.

    A MetaDataset with the schema we already know: `mlflow.data.from_pandas` would scan
    every value of every text column to infer types, seconds on a large table.
    """
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.types import ColSpec, Schema, TensorSpec

    train = splits.train
    columns: list[ColSpec | TensorSpec] = [
        ColSpec("string" if name in train.categorical else "double", name)
        for name in train.feature_names
    ]
    columns.append(ColSpec("long", config.data.target))
    with warnings.catch_warnings():
        # MLflow notes that a local path could be read as two kinds of source; either will do.
        warnings.simplefilter("ignore", UserWarning)
        source = resolve_dataset_source(str(config.data.source))
    # MetaDataset's `profile` is abstract to mypy but optional at run time.
    dataset = MetaDataset(  # type: ignore[abstract]
        source, name=Path(config.data.source).name, digest=train.digest, schema=Schema(columns)
    )
    rows = {f"rows_{name}": str(part.n_rows) for name, part in splits.parts().items()}
    return dataset, {"target": config.data.target, **rows}
