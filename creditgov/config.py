"""The job config: one frozen pydantic schema and `load_config`.

The key names here are a contract (see CONFIG.md): users keep configs in their own
repositories, so keys may be added but never renamed. Every problem is reported once,
at load, as one line naming the file and the dotted key, with what is allowed —
the inner stages then trust what they are given.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from creditgov.errors import BadInput
from evaluation.metrics import METRICS, Metric, get_metric

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


class ConfigError(BadInput):
    """A config that cannot run; the message is one line: file, dotted key, what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
#: A real number: NaN and ±inf pass every `<` test of a bound, so they are refused here.
Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Label = int | str | bool


class DataConfig(_Strict):
    source: Path
    target: str
    positive_label: Label = 1
    id_column: str | None = None
    time_column: str | None = None
    features: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    categorical: list[str] | None = None
    protected: list[str] = Field(default_factory=list)
    pii: list[str] = Field(default_factory=list)

    @field_validator("source")
    @classmethod
    def _known_format(cls, value: Path) -> Path:
        if value.suffix.lower() not in {".csv", ".parquet"}:
            raise ValueError(f"must end in .csv or .parquet (got {value.name!r})")
        return value

    @model_validator(mode="after")
    def _roles_do_not_overlap(self) -> DataConfig:
        if self.features is not None:
            for role in ("protected", "pii"):
                named = [c for c in self.features if c in getattr(self, role)]
                if named:
                    raise ValueError(
                        f"features lists {role} column(s) {named}: {role} columns are never "
                        f"features; remove them from data.features"
                    )
            for role in ("target", "id_column", "time_column"):
                if getattr(self, role) in self.features:
                    raise ValueError(
                        f"features lists the {role} {getattr(self, role)!r}; remove it"
                    )
        both = sorted(set(self.protected) & set(self.pii))
        if both:
            raise ValueError(f"{both} listed as both protected and pii; PII is dropped at load")
        return self


class SplitConfig(_Strict):
    method: Literal["random", "out_of_time", "group"] = "random"
    test_fraction: Fraction = 0.3
    valid_fraction: Fraction = 0.2
    oot_start: date | None = None
    group_column: str | None = None

    @model_validator(mode="after")
    def _method_has_its_keys(self) -> SplitConfig:
        if self.method == "out_of_time" and self.oot_start is None:
            raise ValueError("method out_of_time needs split.oot_start (a date, e.g. 2024-07-01)")
        if self.method == "group" and not self.group_column:
            raise ValueError("method group needs split.group_column")
        return self


class ModelConfig(_Strict):
    type: str = "lightgbm"  # a model kind: a module of training/models/kinds/
    params: dict[str, Any] = Field(default_factory=dict)
    monotone: dict[str, Literal[-1, 1]] = Field(default_factory=dict)
    calibration: Literal["none", "isotonic", "sigmoid"] = "none"

    @field_validator("type")
    @classmethod
    def _kind_is_registered(cls, value: str) -> str:
        from training.models.registry import kind_names

        if value not in kind_names():
            raise ValueError(f"{value!r} is no model kind; use one of {', '.join(kind_names())}")
        return value


class SearchParam(_Strict):
    type: Literal["int", "float", "categorical"]
    low: Finite | None = None
    high: Finite | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_is_sound(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical search parameter needs a non-empty 'choices' list")
            return self
        if self.low is None or self.high is None:
            raise ValueError(f"an {self.type} search parameter needs both 'low' and 'high'")
        if self.low > self.high:
            raise ValueError(f"low ({self.low:g}) is greater than high ({self.high:g}); swap them")
        if self.log and self.low <= 0:
            raise ValueError(f"log: true needs low > 0 (got {self.low:g})")
        return self


def _default_search_space() -> dict[str, SearchParam]:
    return {
        "num_leaves": SearchParam(type="int", low=8, high=128, log=True),
        "learning_rate": SearchParam(type="float", low=0.02, high=0.2, log=True),
        "min_child_samples": SearchParam(type="int", low=20, high=400, log=True),
        "feature_fraction": SearchParam(type="float", low=0.5, high=1.0),
        "lambda_l2": SearchParam(type="float", low=1e-3, high=10.0, log=True),
    }


class TuningConfig(_Strict):
    n_trials: Annotated[int, Field(ge=0)] = 20
    timeout_s: Annotated[float, Field(gt=0)] | None = None
    metric: str = "auc"
    pruner: Literal["none", "median"] = "median"
    storage: str | None = None
    study_name: str | None = None
    search_space: dict[str, SearchParam] = Field(default_factory=_default_search_space)

    @field_validator("metric")
    @classmethod
    def _tunable_metric(cls, value: str) -> str:
        metric = _known_metric(value)
        if metric.kind != "score":
            tunable = sorted(n for n, m in METRICS.items() if m.kind == "score")
            raise ValueError(f"{value!r} cannot be tuned on; choose one of {tunable}")
        return value


class ScoreConfig(_Strict):
    base_score: Finite = 600.0
    base_odds: Positive = 50.0
    pdo: Positive = 20.0


class DecisionConfig(_Strict):
    threshold: Fraction | None = None
    approval_rate: Fraction | None = None
    cost_false_negative: Positive | None = None
    cost_false_positive: Positive | None = None

    @model_validator(mode="after")
    def _exactly_one_rule(self) -> DecisionConfig:
        costs = (self.cost_false_negative, self.cost_false_positive)
        if (costs[0] is None) != (costs[1] is None):
            raise ValueError(
                "cost_false_negative and cost_false_positive go together; set both or neither"
            )
        rules = [
            name
            for name, on in (
                ("threshold", self.threshold is not None),
                ("approval_rate", self.approval_rate is not None),
                ("cost_false_negative/cost_false_positive", costs[0] is not None),
            )
            if on
        ]
        if len(rules) > 1:
            raise ValueError(f"set exactly one decision rule, got {len(rules)}: {', '.join(rules)}")
        return self

    @property
    def rule(self) -> Literal["threshold", "approval_rate", "cost"]:
        """Which rule applies; with none set, a fixed threshold of 0.5 (see `effective_threshold`)."""
        if self.approval_rate is not None:
            return "approval_rate"
        if self.cost_false_negative is not None:
            return "cost"
        return "threshold"

    @property
    def effective_threshold(self) -> float:
        return 0.5 if self.threshold is None else self.threshold


class FairnessConfig(_Strict):
    bins: dict[str, list[float]] = Field(default_factory=lambda: {"age": [25.0, 35.0, 50.0, 65.0]})
    min_group_size: Annotated[int, Field(ge=1)] = 30


class DriftConfig(_Strict):
    bins: Annotated[int, Field(ge=2, le=100)] = 10


class EvaluationConfig(_Strict):
    shap_sample: Annotated[int, Field(ge=10)] = 5000
    reason_codes: Annotated[int, Field(ge=1, le=10)] = 4
    reason_texts: dict[str, str] = Field(default_factory=dict)
    fairness: FairnessConfig = Field(default_factory=FairnessConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)


class GateConfig(_Strict):
    metric: str
    split: Literal["train", "valid", "test"] = "test"
    min: Finite | None = None
    max: Finite | None = None

    @field_validator("metric")
    @classmethod
    def _registered(cls, value: str) -> str:
        _known_metric(value)
        return value

    @model_validator(mode="after")
    def _one_bound(self) -> GateConfig:
        if (self.min is None) == (self.max is None):
            raise ValueError("a gate takes exactly one of 'min' or 'max'")
        return self


def _default_gates() -> list[GateConfig]:
    return [
        GateConfig(metric="auc", split="test", min=0.70),
        GateConfig(metric="ks", split="test", min=0.25),
        GateConfig(metric="psi_max", split="test", max=0.25),
        GateConfig(metric="selection_rate_ratio", split="test", min=0.80),
    ]


class RegistryConfig(_Strict):
    model_name: Annotated[str, Field(min_length=1)]


class TrackingConfig(_Strict):
    uri: str | None = None


class JobConfig(_Strict):
    name: Annotated[str, Field(min_length=1)]
    task: Literal["credit_scoring", "fraud_detection"] = "credit_scoring"
    seed: int = 42
    data: DataConfig
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)
    decision: DecisionConfig = Field(default_factory=DecisionConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    gates: list[GateConfig] = Field(default_factory=_default_gates)
    registry: RegistryConfig
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    #: The YAML file it was read from, for errors found later (not a config key).
    _path: Path | None = PrivateAttr(default=None)

    def error_prefix(self) -> str:
        """ "job.yaml: " when the config came from a file, else "": an error found after
        loading (a LightGBM parameter refused while preparing) still names the file."""
        return f"{self._path}: " if self._path is not None else ""

    @model_validator(mode="after")
    def _sections_agree(self) -> JobConfig:
        if self.split.method == "out_of_time" and not self.data.time_column:
            raise ValueError(
                "split.method out_of_time needs data.time_column; name the date column "
                "there, or use split.method random"
            )
        for feature in self.model.monotone:
            if feature in self.data.protected or feature in self.data.pii:
                raise ValueError(
                    f"model.monotone names {feature!r}, a protected/pii column; "
                    f"those are never features"
                )
        return self


# ----------------------------------------------------------------------------- loading


def _known_metric(name: str) -> Metric:
    try:
        return get_metric(name)
    except KeyError as err:
        raise ValueError(str(err.args[0]) if err.args else str(err)) from None


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> JobConfig:
    """Read a YAML job file, apply `--set key=value` overrides and validate it.

    YAML is read with `yaml.safe_load` only: a config is data, and tags that would build
    Python objects are refused. Relative paths resolve against the config's folder, so
    a job runs the same from any working directory.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; pass the path of a YAML job file")
    try:
        raw = _load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(_yaml_message(path, err)) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text; save the config as UTF-8") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{path}: the top level must be a mapping of keys, not {type(raw).__name__}"
        )
    for item in overrides:
        _apply_override(raw, item, path)
    return validate_config(raw, path)


def validate_config(raw: Mapping[str, Any], path: Path) -> JobConfig:
    """Validate a parsed mapping; paths inside resolve against `path`'s folder."""
    try:
        config = JobConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_describe(err, path, raw)) from None
    source = config.data.source
    if not source.is_absolute():
        source = (path.parent / source).resolve()
        config = config.model_copy(
            update={"data": config.data.model_copy(update={"source": source})}
        )
    config._path = path
    return config


def _apply_override(raw: dict[str, Any], item: str, path: Path) -> None:
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"{path}: --set {item!r}: write KEY=VALUE, e.g. --set tuning.n_trials=5")
    try:
        value = _load_yaml(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    parts = key.split(".")
    shape: Any = JobConfig  # the schema's type at the current depth; None: not checked
    node: dict[str, Any] | list[Any] = raw
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth])
        shape = _schema_step(shape, part, f"{path}: --set {key}: ", ".".join(parts[: depth + 1]))
        slot: str | int = part
        if isinstance(node, list):
            slot = _list_index(node, part, f"{path}: --set {key}: ", here)
        if depth == len(parts) - 1:
            node[slot] = value  # type: ignore[index]
            return
        child = node[slot] if isinstance(node, list) else node.get(part)  # type: ignore[index]
        if not isinstance(child, dict | list):
            child = {}
            node[slot] = child  # type: ignore[index]
        node = child


def _schema_step(shape: Any, part: str, prefix: str, dotted: str) -> Any:
    """The schema type one key below `shape`, refusing keys the schema does not have.

    A model has named fields; a list is entered by item position (`gates.0.min`), a
    mapping by any key (`tuning.search_space.num_leaves`); below a plain value or a free
    mapping such as `model.params` nothing is checked here (validation still is).
    """
    shape = _strip_optional(shape)
    if isinstance(shape, type) and issubclass(shape, BaseModel):
        fields = shape.model_fields
        if part not in fields:
            raise ConfigError(f"{prefix}{dotted} is not a config key{_did_you_mean(part, fields)}")
        return fields[part].annotation
    origin = getattr(shape, "__origin__", None)
    args: tuple[Any, ...] = getattr(shape, "__args__", ())
    if origin is list and args:
        if not part.isdigit():
            parent = dotted.rsplit(".", 1)[0]
            raise ConfigError(
                f"{prefix}{parent} is a list: address an item by its position, "
                f"e.g. --set {parent}.0.<key>=VALUE"
            )
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None


def _strip_optional(shape: Any) -> Any:
    """`X | None` -> X; anything else as it is."""
    args = getattr(shape, "__args__", ())
    rest = [a for a in args if a is not type(None)]
    return rest[0] if len(rest) == 1 and len(args) == 2 else shape


def _list_index(items: list[Any], part: str, prefix: str, parent: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ConfigError(
            f"{prefix}{parent} has {len(items)} item(s) in the config, so there is no item "
            f"{part}; use a position from 0 to {len(items) - 1} or set the whole list, "
            f"e.g. --set '{parent}=[...]'"
            if items
            else f"{prefix}{parent} is not in the config file, so it has no item {part}; "
            f"set the whole list, e.g. --set '{parent}=[...]'"
        )
    return int(part)


class _ConfigLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` with YAML 1.2 booleans: only true/false, never yes/no/on/off.

    Under YAML 1.1 `positive_label: yes` arrives as True and no target value matches
    it; read as the text the user wrote, it matches a target of "yes"/"no". Keys typed
    bool by the schema still accept yes/no, through pydantic.
    """


_BOOL = "tag:yaml.org,2002:bool"
_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_ConfigLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A YAML date, or a marked YAML error: `2024-02-30` is no date, and no crash either."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as err:
        raise yaml.MarkedYAMLError(
            problem=f"{node.value} is not a valid date ({err})", problem_mark=node.start_mark
        ) from None


_ConfigLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def _load_yaml(text: str) -> Any:
    """Safe loading only (no tag builds a Python object), with YAML 1.2 booleans."""
    return yaml.load(text, Loader=_ConfigLoader)


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _did_you_mean(word: str, choices: Mapping[str, Any] | Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe(err: ValidationError, path: Path, raw: Mapping[str, Any]) -> str:
    """One line for the first problem: file, dotted key, what is wrong and what to do."""
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    key = ".".join(loc)
    kind = first["type"]
    if kind == "extra_forbidden":
        parent_model = _model_at(loc[:-1])
        hint = _did_you_mean(loc[-1], parent_model.model_fields) if parent_model else ""
        allowed = f"; allowed: {', '.join(parent_model.model_fields)}" if parent_model else ""
        return f"{path}: unknown key {key}{hint}{allowed if not hint else ''}"
    if kind == "missing":
        return f"{path}: {key} is required"
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    given = first.get("input")
    shown = (
        ""
        if isinstance(given, dict | list) or kind.startswith("value_error")
        else f" (got {given!r})"
    )
    # A rule across sections (loc empty) names its keys in the message itself.
    return f"{path}: {key + ': ' if key else ''}{message}{shown}"


def _model_at(loc: Sequence[str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = JobConfig
    for part in loc:
        if model is None:
            return None
        field = model.model_fields.get(part)
        if field is None:
            # Inside a list or dict (e.g. gates.0, search_space.num_leaves): step into its item type.
            continue
        annotation = field.annotation
        model = _submodel(annotation) or _item_model(annotation)
    return model


def _item_model(annotation: Any) -> type[BaseModel] | None:
    for arg in getattr(annotation, "__args__", ()):
        found = _submodel(arg) or _item_model(arg)
        if found is not None:
            return found
    return None


def _yaml_message(path: Path, err: yaml.YAMLError) -> str:
    where = f"{path}{_yaml_position(err)}"
    if isinstance(err, yaml.constructor.ConstructorError) and "for the tag" in str(err.problem):
        return (
            f"{where}: YAML tag {_yaml_tag(err)} is not allowed; configs are plain data "
            f"(safe loading only)"
        )
    return f"{where}: malformed YAML: {_yaml_problem(err)}; fix the syntax at that line and column"


def _yaml_position(err: yaml.YAMLError) -> str:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    if mark is None:
        return ""
    return f":{mark.line + 1}:{mark.column + 1}"


def _yaml_problem(err: yaml.YAMLError) -> str:
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return str(problem)


def _yaml_tag(err: yaml.YAMLError) -> str:
    problem = str(getattr(err, "problem", ""))
    start = problem.find("'")
    return problem[start:] if start >= 0 else "(unknown)"


# ----------------------------------------------------------------------------- helpers


def flatten(config: JobConfig) -> dict[str, str]:
    """Dotted key -> string value, for MLflow params (one value per key, 6000 chars max)."""
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            if not value:
                out[prefix] = "{}"
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list):
            out[prefix] = json.dumps(value, default=str)
        else:
            out[prefix] = "" if value is None else str(value)

    walk("", config.model_dump(mode="json"))
    return out


def config_sha256(config: JobConfig) -> str:
    """Digest of the resolved config, stable across key order, for lineage tags."""
    text = json.dumps(config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
