"""The job config: its schema (`schema.py`) and how a YAML file becomes one (`loading.py`).

Import the names from here: `from creditgov.config import JobConfig, load_config`.
"""

from creditgov.config.loading import load_config, validate_config
from creditgov.config.schema import (
    ConfigError,
    DataConfig,
    DecisionConfig,
    DriftConfig,
    EvaluationConfig,
    FairnessConfig,
    GateConfig,
    JobConfig,
    ModelConfig,
    ReasonText,
    RegistryConfig,
    ScoreConfig,
    SearchParam,
    SplitConfig,
    TrackingConfig,
    TuningConfig,
    config_sha256,
    flatten,
)

__all__ = [
    "ConfigError",
    "DataConfig",
    "DecisionConfig",
    "DriftConfig",
    "EvaluationConfig",
    "FairnessConfig",
    "GateConfig",
    "JobConfig",
    "ModelConfig",
    "ReasonText",
    "RegistryConfig",
    "ScoreConfig",
    "SearchParam",
    "SplitConfig",
    "TrackingConfig",
    "TuningConfig",
    "config_sha256",
    "flatten",
    "load_config",
    "validate_config",
]
