"""The job config's schema: one frozen pydantic model per section, and what is derived from it.

The key names here are a contract (see CONFIG.md): users keep configs in their own
repositories, so keys may be added but never renamed. Each section validates itself;
reading a YAML file into it, `--set` overrides and the one-line error messages are
`loading.py`. `flatten` and `config_sha256` turn a resolved config into MLflow params
and the lineage digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

from creditgov.errors import BadInput
from evaluation.metrics import METRICS, Metric, get_metric

if TYPE_CHECKING:
    from training.models.policy import ScoreScale

__all__ = [
    "FAIRNESS_OBJECTIVES",
    "AucDrop",
    "ConfigError",
    "DataConfig",
    "DecisionConfig",
    "DriftConfig",
    "EvaluationConfig",
    "FairestWithin",
    "FairnessConfig",
    "GateConfig",
    "JobConfig",
    "ModelConfig",
    "ReasonText",
    "RegistryConfig",
    "ScoreConfig",
    "ScorecardConfig",
    "SearchParam",
    "SplitConfig",
    "TrackingConfig",
    "TuningConfig",
    "config_sha256",
    "flatten",
]


class ConfigError(BadInput):
    """A config that cannot run; the message is one line: file, dotted key, what to do."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


Fraction = Annotated[float, Field(gt=0.0, lt=1.0)]
#: A real number: NaN and ±inf pass every `<` test of a bound, so they are refused here.
Finite = Annotated[float, Field(allow_inf_nan=False)]
Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]
#: Bounds for numbers a typo can make absurd (`n_trials: 1e9`, `seed: 1e30`): a value past
#: them would fail, overflow or run for days after the run started, so the config refuses it.
MAX_TRIALS = 100_000
MAX_SECONDS = 7 * 24 * 3600.0
MAX_SEED = 2**31 - 1  # LightGBM and numpy both take a 32-bit signed seed
MAX_ROWS = 10_000_000
Magnitude = Annotated[float, Field(ge=-1e9, le=1e9, allow_inf_nan=False)]
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
    #: A feature that looks like an identifier (nearly one distinct value per row: a phone or
    #: account number kept as a number, a name): refuse the data (exit 2), or drop the
    #: feature with a warning. training/data.py says what "looks like" means.
    identifier_like: Literal["refuse", "drop"] = "refuse"

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


class ScorecardConfig(_Strict):
    """`model.scorecard`: which characteristics the WOE scorecard keeps (type scorecard)."""

    min_iv: Annotated[float, Field(ge=0.0, le=10.0)] = 0.02
    max_features: Annotated[int, Field(ge=1, le=1000)] | None = None
    max_correlation: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    on_sign_flip: Literal["drop", "fail"] = "drop"
    #: feature -> optbinning monotonic trend; default: model.monotone's sign, else
    #: auto_asc_desc. The scorecard checks names and trends when it bins, before any run.
    monotonic_trend: dict[str, str] = Field(default_factory=dict)


class ModelConfig(_Strict):
    type: str = "lightgbm"  # a model kind: a module of training/models/kinds/
    params: dict[str, Any] = Field(default_factory=dict)
    monotone: dict[str, Literal[-1, 1]] = Field(default_factory=dict)
    calibration: Literal["none", "isotonic", "sigmoid", "auto"] = "none"
    scorecard: ScorecardConfig = Field(default_factory=ScorecardConfig)

    @model_validator(mode="after")
    def _trends_agree(self) -> ModelConfig:
        asc = {"ascending": 1, "descending": -1}
        for feature, trend in self.scorecard.monotonic_trend.items():
            sign = self.monotone.get(feature)
            if sign is not None and asc.get(trend, sign) != sign:
                raise ValueError(
                    f"model.scorecard.monotonic_trend.{feature} is {trend} but model.monotone "
                    f"declares {sign:+d}; make them agree or drop one"
                )
        return self

    @field_validator("type")
    @classmethod
    def _kind_is_registered(cls, value: str) -> str:
        from training.models.registry import kind_names

        if value not in kind_names():
            raise ValueError(f"{value!r} is no model kind; use one of {', '.join(kind_names())}")
        return value


class SearchParam(_Strict):
    type: Literal["int", "float", "categorical"]
    low: Magnitude | None = None
    high: Magnitude | None = None
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


class AucDrop(_Strict):
    auc_drop: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.01


class FairestWithin(_Strict):
    """`tuning.select: {fairest_within: {auc_drop: 0.01}}`."""

    fairest_within: AucDrop


#: The fairness objective a multi-objective search may add to the accuracy metric.
FAIRNESS_OBJECTIVES = ("selection_rate_ratio",)


class TuningConfig(_Strict):
    n_trials: Annotated[int, Field(ge=0, le=MAX_TRIALS)] = 20
    timeout_s: Annotated[float, Field(gt=0, le=MAX_SECONDS)] | None = None
    metric: str = "auc"
    pruner: Literal["none", "median"] = "median"
    storage: str | None = None
    study_name: str | None = None
    search_space: dict[str, SearchParam] = Field(default_factory=_default_search_space)
    #: [metric] (one objective) or [metric, selection_rate_ratio]: the search for a less
    #: discriminatory alternative (evaluation/lda.py)
    objectives: list[str] | None = None
    select: Literal["most_accurate", "most_accurate_passing_gates"] | FairestWithin = (
        "most_accurate"
    )

    @model_validator(mode="after")
    def _objectives_start_with_the_metric(self) -> TuningConfig:
        named = self.objectives
        if named is None:
            return self
        if not named or named[0] != self.metric or len(named) > 2:
            raise ValueError(
                f"objectives must be [{self.metric}] or [{self.metric}, selection_rate_ratio]: "
                "the tuning metric first (tuning.metric), then at most one fairness objective"
            )
        if len(named) == 2 and named[1] not in FAIRNESS_OBJECTIVES:
            raise ValueError(
                f"objectives: {named[1]!r} is no fairness objective; use selection_rate_ratio"
            )
        return self

    @property
    def searches_alternatives(self) -> bool:
        """Whether tuning is the multi-objective search for a less discriminatory model."""
        return self.objectives is not None and len(self.objectives) == 2

    @field_validator("metric")
    @classmethod
    def _tunable_metric(cls, value: str) -> str:
        metric = _known_metric(value)
        if metric.kind != "score":
            tunable = sorted(n for n, m in METRICS.items() if m.kind == "score")
            raise ValueError(f"{value!r} cannot be tuned on; choose one of {tunable}")
        return value


class ScoreConfig(_Strict):
    base_score: Annotated[float, Field(ge=-1e6, le=1e6, allow_inf_nan=False)] = 600.0
    base_odds: Annotated[float, Field(gt=0, le=1e6, allow_inf_nan=False)] = 50.0
    pdo: Annotated[float, Field(gt=0, le=1e4, allow_inf_nan=False)] = 20.0

    @property
    def scale(self) -> ScoreScale:
        """The points scaling as the model code takes it."""
        from training.models.policy import ScoreScale

        return ScoreScale(self.base_score, self.base_odds, self.pdo)


class DecisionConfig(_Strict):
    threshold: Fraction | None = None
    approval_rate: Fraction | None = None
    cost_false_negative: Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False)] | None = None
    cost_false_positive: Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False)] | None = None

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
    bins: dict[str, list[Magnitude]] = Field(
        default_factory=lambda: {"age": [25.0, 35.0, 50.0, 65.0]}
    )
    min_group_size: Annotated[int, Field(ge=1, le=MAX_ROWS)] = 30
    #: a group with fewer bads (or goods) than this is shown but not judged
    min_group_bads: Annotated[int, Field(ge=1, le=MAX_ROWS)] = 20
    #: bootstrap resamples for the fairness confidence intervals (0 = none)
    bootstrap: Annotated[int, Field(ge=0, le=10_000)] = 200


class DriftConfig(_Strict):
    bins: Annotated[int, Field(ge=2, le=100)] = 10


#: A sentence an applicant reads: one line, not blank, no placeholder but {value}.
Sentence = Annotated[
    str, Field(min_length=1, max_length=300, pattern=r"^[^\n{}]*(\{value\}[^\n{}]*)*$")
]


class ReasonText(_Strict):
    """A reason-catalogue entry: numeric {code, high, low, missing}, categorical {code, text}."""

    code: (
        Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")] | None
    ) = None
    high: Sentence | None = None
    low: Sentence | None = None
    missing: Sentence | None = None
    text: Sentence | None = None

    @model_validator(mode="after")
    def _some_text(self) -> ReasonText:
        if not any((self.high, self.low, self.missing, self.text)):
            raise ValueError(
                "give at least one of high, low, missing (numeric) or text (categorical)"
            )
        if self.text is not None and (self.high is not None or self.low is not None):
            raise ValueError(
                "text is for a categorical feature, high/low for a numeric one: not both"
            )
        for key in ("high", "low", "missing"):
            if "{value}" in (getattr(self, key) or ""):
                raise ValueError(f"{key}: only a categorical text may quote the level as {{value}}")
        return self

    def plain(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


def _reason_kind(value: Any) -> str:
    return "entry" if isinstance(value, dict | ReasonText) else "sentence"


#: A reason_texts value: a plain sentence, or a catalogue entry (a mapping).
ReasonEntry = Annotated[
    Annotated[Sentence, Tag("sentence")] | Annotated[ReasonText, Tag("entry")],
    Discriminator(_reason_kind),
]

#: Words that say a value is too low / too high, for the direction check of monotone features.
_LOW_WORDS = re.compile(
    r"\b(low|lower|too few|few|fewer|short|shorter|little|insufficient|not enough|lack|limited|small)\b",
    re.IGNORECASE,
)
_HIGH_WORDS = re.compile(
    r"\b(high|higher|many|more|much|long|excessive|large|too many|too much)\b", re.IGNORECASE
)


def _direction_problem(feature: str, sign: int, entry: str | ReasonText) -> str | None:
    """Why a reason text contradicts `model.monotone` (sign +1: risk rises), or None."""
    key = f"evaluation.reason_texts.{feature}"
    adverse, opposite = ("high", "low") if sign > 0 else ("low", "high")
    declared = f"model.monotone declares {feature!r} {sign:+d} (only a {adverse} value counts against an applicant)"
    if isinstance(entry, ReasonText) and getattr(entry, opposite) is not None:
        return f"{key}.{opposite}: {declared}, so this text could never be shown; remove it or fix model.monotone"
    texts = (
        [entry] if isinstance(entry, str) else [t for t in (entry.high, entry.low, entry.text) if t]
    )
    wrong, right = (_LOW_WORDS, _HIGH_WORDS) if sign > 0 else (_HIGH_WORDS, _LOW_WORDS)
    for text in texts:
        if wrong.search(text) and not right.search(text):
            return (
                f"{key}: the text says {opposite}, but {declared}; reword it or fix model.monotone"
            )
    return None


class EvaluationConfig(_Strict):
    shap_sample: Annotated[int, Field(ge=10, le=MAX_ROWS)] = 5000
    reason_codes: Annotated[int, Field(ge=1, le=10)] = 4
    reason_texts: dict[str, ReasonEntry] = Field(default_factory=dict)
    proxy_threshold: Annotated[float, Field(gt=0.5, le=1.0)] = 0.7
    fairness: FairnessConfig = Field(default_factory=FairnessConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)


class GateConfig(_Strict):
    metric: str
    split: Literal["train", "valid", "test"] = "test"
    min: Magnitude | None = None
    max: Magnitude | None = None

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
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 42
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
        if self.tuning.searches_alternatives and not self.data.protected:
            raise ValueError(
                "tuning.objectives names selection_rate_ratio, which needs data.protected "
                "(the attributes fairness is measured on); list them or drop the objective"
            )
        for feature, sign in self.model.monotone.items():
            entry = self.evaluation.reason_texts.get(feature)
            problem = None if entry is None else _direction_problem(feature, sign, entry)
            if problem:
                raise ValueError(problem)
        return self


def _known_metric(name: str) -> Metric:
    try:
        return get_metric(name)
    except KeyError as err:
        raise ValueError(str(err.args[0]) if err.args else str(err)) from None


#: What MLflow accepts in a param key; a column name as a map key may hold anything.
_PARAM_KEY = re.compile(r"^[\w\-. :/]+$", re.ASCII)


def flatten(config: JobConfig) -> dict[str, str]:
    """Dotted key -> string value, for MLflow params (one value per key, 6000 chars max).

    A map keyed by names MLflow refuses in a param key (warehouse column names with
    brackets, quotes or non-ASCII letters, as in `model.monotone`) is logged whole, as
    one JSON value under the map's own key; the resolved config artifact has it too.
    """
    out: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            if not value:
                out[prefix] = "{}"
            elif prefix and not all(_PARAM_KEY.match(str(key)) for key in value):
                out[prefix] = json.dumps(value, default=str, ensure_ascii=False)
                return
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
