"""Evidence: everything a model-risk reviewer needs about one fitted model, in one object.

`evaluate` measures a ModelSpec on each split — ranking, calibration, decisions, SHAP
reason codes, fairness by group, drift against the training population — and `check`
applies the config's gates to it. The report, the JSON evidence and the model card are
all renderings of this one frozen object, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from evaluation.bands import score_bands
from evaluation.curves import calibration_table, cost_curve, roc_table
from evaluation.drift import DriftResult, compare
from evaluation.drift_reference import ReferenceProfile, build_reference
from evaluation.explain import (
    MonotonicityCheck,
    contributions,
    global_importance,
    monotonicity_violations,
    plots,
)
from evaluation.fairness import FairnessResult, assess_fairness
from evaluation.fairness_views import ConditionalView, conditional_view
from evaluation.gates import GateResult, GateSpec, check_gates
from evaluation.metrics import decision_metrics, score_metrics
from evaluation.proxy import ProxyResult, proxy_screen
from evaluation.reason_checks import ReasonChecks, check_reasons, reason_examples
from evaluation.reasons import ReasonCatalogue, build_catalogue
from training.data import Dataset
from training.models.base import Contributions, ModelSheet
from training.models.policy import ScoreScale
from training.models.spec import ModelSpec
from training.split import Splits, SplitSummary

if TYPE_CHECKING:
    from collections.abc import Callable

    from evaluation.lda import LdaSearch

__all__ = [
    "Evidence",
    "ExplainSettings",
    "SplitEvidence",
    "evaluate",
    "evaluate_batch",
    "json_safe",
    "score_split",
]

#: The monotonicity check moves each monotone feature of this many rows over this many
#: points: TreeSHAP costs about 1 s per 1,000 rows, and 60 x 11 paths per feature find
#: any violation a constraint would allow while costing well under a second each.
MONOTONE_ROWS = 60
MONOTONE_GRID = 11


@dataclass(frozen=True)
class ExplainSettings:
    shap_sample: int = 5000
    reason_codes: int = 4
    #: feature -> a sentence, or a catalogue entry {code, high, low, missing} / {code, text}
    reason_texts: Mapping[str, str | Mapping[str, str]] = field(default_factory=dict)
    proxy_threshold: float = 0.7
    monotone: Mapping[str, int] = field(default_factory=dict)
    protected: Sequence[str] = ()
    fairness_bins: Mapping[str, Sequence[float]] = field(default_factory=dict)
    min_group_size: int = 30
    min_group_bads: int = 20
    fairness_bootstrap: int = 200
    drift_bins: int = 10
    drift_threshold: float = 0.25


@dataclass(frozen=True)
class SplitEvidence:
    name: str
    rows: int
    metrics: Mapping[str, float]
    bands: pd.DataFrame
    calibration: pd.DataFrame  # bin, predicted, observed, count
    roc: pd.DataFrame  # fpr, tpr (thinned)
    fairness: FairnessResult | None
    drift: DriftResult | None  # against the training reference; None for train itself
    #: Expected cost per row by threshold, for a cost-based rule (threshold, expected_cost)
    cost_curve: pd.DataFrame | None = None
    #: Approval by group within score bands and among the truly good (test split only)
    conditional: ConditionalView | None = None


@dataclass(frozen=True)
class Evidence:
    model_name: str
    model_type: str
    task: str
    threshold: float
    decision_rule: str
    labels: tuple[str, str]
    features: tuple[str, ...]
    splits: Mapping[str, SplitEvidence]
    split_summary: tuple[SplitSummary, ...]
    importance: pd.DataFrame
    plots: Mapping[str, bytes]
    reason_examples: pd.DataFrame
    monotonicity: MonotonicityCheck
    reference: ReferenceProfile
    catalogue: ReasonCatalogue
    reason_checks: ReasonChecks
    proxy: ProxyResult | None
    gates: GateResult
    #: The kind's own sheet (the scorecard's points table), when it has one.
    sheet: ModelSheet | None = None
    #: What the job changed from what was asked, worded for the summary (calibration).
    notes: tuple[str, ...] = ()
    calibration: str = "none"
    costs: tuple[float, float] | None = None
    score_scale: ScoreScale | None = None
    #: The search for a less discriminatory alternative, when tuning ran it.
    alternatives: LdaSearch | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def metric_values(self) -> dict[str, dict[str, float]]:
        return {name: dict(part.metrics) for name, part in self.splits.items()}

    @property
    def validation_status(self) -> str:
        return self.gates.status

    def to_json(self) -> dict[str, Any]:
        """The whole evidence as plain JSON (plots are left to the HTML report)."""

        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return json_safe(frame.to_dict(orient="records"))

        return json_safe(
            {
                "model": {
                    "name": self.model_name,
                    "type": self.model_type,
                    "task": self.task,
                    "features": list(self.features),
                    "decision": {
                        "threshold": self.threshold,
                        "rule": self.decision_rule,
                        "labels": list(self.labels),
                        **(
                            {}
                            if self.costs is None
                            else {
                                "cost_false_negative": self.costs[0],
                                "cost_false_positive": self.costs[1],
                            }
                        ),
                    },
                    "calibration": self.calibration,
                },
                "notes": list(self.notes),
                "model_sheet": None if self.sheet is None else self.sheet.to_json(),
                "splits": [s.__dict__ for s in self.split_summary],
                "metrics": self.metric_values(),
                "score_bands": {n: records(p.bands) for n, p in self.splits.items()},
                "calibration": {n: records(p.calibration) for n, p in self.splits.items()},
                "fairness_conditional": {
                    n: p.conditional.to_json()
                    for n, p in self.splits.items()
                    if p.conditional is not None
                },
                "cost_curve": {
                    n: records(p.cost_curve)
                    for n, p in self.splits.items()
                    if p.cost_curve is not None
                },
                "fairness": {
                    **{
                        n: p.fairness.to_json()
                        for n, p in self.splits.items()
                        if p.fairness is not None
                    },
                    **(
                        {}
                        if self.alternatives is None
                        else {
                            "alternatives": self.alternatives.to_json(),
                            "search": self.alternatives.summary(),
                        }
                    ),
                },
                "drift": {
                    n: p.drift.to_json() for n, p in self.splits.items() if p.drift is not None
                },
                "explainability": {
                    "importance": records(self.importance),
                    "monotonicity_violations": dict(self.monotonicity),
                    "monotonicity": self.monotonicity.to_json(),
                    "reason_catalogue": self.catalogue.to_state(),
                    "reason_checks": self.reason_checks.to_json(),
                    "reason_examples": records(self.reason_examples),
                },
                "proxy_screen": None if self.proxy is None else self.proxy.to_json(),
                "validation_status": self.validation_status,
                "gates": self.gates.to_json(),
                **self.extra,
            }
        )


def json_safe(value: Any) -> Any:
    """NaN/inf -> None and numpy scalars -> Python, recursively (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def score_split(
    spec: ModelSpec,
    name: str,
    features: pd.DataFrame,
    y: NDArray[np.int8],
    protected: pd.DataFrame,
    *,
    reference: ReferenceProfile | None,
    settings: ExplainSettings,
    monotonicity: MonotonicityCheck | None = None,
    probability: NDArray[np.float64] | None = None,
    model_metrics: Mapping[str, float] | None = None,
    seed: int = 0,
) -> SplitEvidence:
    """Every number about one split: ranking, calibration, decisions, fairness, drift.

    `probability` is the model's output on `features` when the caller has it already:
    scoring a large split is the costliest part of measuring it, so it is done once.
    """
    p = spec.probability(features) if probability is None else probability
    metrics: dict[str, float] = {}
    metrics.update(score_metrics(y, p))
    costs = spec.decision.costs
    metrics.update(
        decision_metrics(
            y,
            p,
            threshold=spec.decision.threshold,
            cost_false_negative=None if costs is None else costs[0],
            cost_false_positive=None if costs is None else costs[1],
        )
    )
    fairness = None
    # The groups, as fairness and its conditional view both read them.
    grouped: dict[str, Any] = {
        "y_true": y,
        "y_prob": p,
        "threshold": spec.decision.threshold,
        "protected": protected,
        "bins": settings.fairness_bins,
        "min_group_size": settings.min_group_size,
        "min_group_bads": settings.min_group_bads,
    }
    if len(protected.columns):
        n_boot = settings.fairness_bootstrap if name == "test" else 0
        fairness = assess_fairness(**grouped, n_boot=n_boot, seed=seed)
        metrics["selection_rate_ratio"] = fairness.selection_rate_ratio
        metrics["demographic_parity_difference"] = fairness.demographic_parity_difference
        metrics["equalized_odds_difference"] = fairness.equalized_odds_difference
    drift = None
    if reference is not None:
        drift = compare(reference, features, scores=p, threshold=settings.drift_threshold)
        metrics["psi_max"] = drift.psi_max
        if drift.score_psi is not None:
            metrics["score_psi"] = drift.score_psi
    else:
        metrics["psi_max"] = 0.0
        metrics["score_psi"] = 0.0
    if monotonicity is not None:
        metrics["monotonicity_violations"] = float(monotonicity.total)
        metrics["monotonicity_violation_share"] = monotonicity.share
    metrics.update(model_metrics or {})
    return SplitEvidence(
        name=name,
        rows=len(y),
        metrics={k: float(v) for k, v in metrics.items()},
        bands=score_bands(y, p),
        calibration=calibration_table(y, p),
        roc=roc_table(y, p),
        fairness=fairness,
        drift=drift,
        cost_curve=None if costs is None else cost_curve(y, p, costs, spec.decision.threshold),
        conditional=None if fairness is None or name != "test" else conditional_view(**grouped),
    )


def _model_metrics(spec: ModelSpec) -> dict[str, float]:
    """The fit's own numbers a gate may read (the scorecard's sign violations)."""
    info = spec.model.info()
    return {k: float(info[k]) for k in ("scorecard_sign_violations",) if k in info}


def _monotone_used(spec: ModelSpec, monotone: Mapping[str, int]) -> dict[str, int]:
    """Declared directions of the features the model uses (a scorecard may drop some)."""
    return {n: s for n, s in monotone.items() if n in spec.feature_names}


def evaluate(
    spec: ModelSpec,
    splits: Splits,
    *,
    model_name: str,
    gates: Sequence[GateSpec],
    settings: ExplainSettings,
    seed: int = 0,
    raw: Mapping[str, NDArray[np.float64]] | None = None,
    refit: Callable[[], ModelSpec] | None = None,
    alternatives: LdaSearch | None = None,
) -> Evidence:
    """Measure `spec` on every split, explain it, and apply the gates.

    `raw` holds the model's uncalibrated probability of each split when the caller has
    them (the job scores every split once, `stages.fit_final`); missing ones are scored.
    `refit` fits the comparison model of the reasons' stability check (the job refits
    on a bootstrap resample); without it stability is NaN.
    """
    train = splits.train
    scored = {
        name: spec.calibration.apply(raw[name])
        if raw is not None and name in raw
        else spec.probability(part.features)
        for name, part in splits.parts().items()
    }
    train_p = scored["train"]
    # The served model's inputs only: a scorecard may leave candidate features out, and a
    # batch sent to `creditgov drift` carries what the model reads.
    used = list(spec.feature_names)
    reference = build_reference(
        train.features[used],
        categorical=[c for c in train.categorical if c in set(used)],
        scores=train_p,
        bins=settings.drift_bins,
    )

    rng = np.random.default_rng(seed)
    n_sample = min(settings.shap_sample, train.n_rows)
    sample_rows = np.sort(rng.choice(train.n_rows, size=n_sample, replace=False))
    sample = train.features.iloc[sample_rows].reset_index(drop=True)
    sample_contrib = contributions(spec, sample)
    catalogue = _catalogue(spec, sample, sample_contrib, settings)
    # A property of the model, not of a split: checked once, reported on every split.
    monotonicity = monotonicity_violations(
        spec, sample, _monotone_used(spec, settings.monotone), rows=MONOTONE_ROWS,
        grid=MONOTONE_GRID,
    )  # fmt: skip
    test_declined = scored["test"] >= spec.decision.threshold
    checks = check_reasons(
        spec,
        splits.test.features,
        test_declined,
        catalogue=catalogue,
        eligible=_eligible(sample_contrib, settings.protected),
        protected=settings.protected,
        refit=refit,
        seed=seed,
    )
    proxy = _proxy(train, settings)
    model_metrics = {
        **checks.metrics(),
        "proxy_max": proxy.proxy_max if proxy else 0.5,
        **_model_metrics(spec),
    }

    parts: dict[str, SplitEvidence] = {}
    for name, part in splits.parts().items():
        parts[name] = score_split(
            spec,
            name,
            part.features,
            part.target,
            part.protected,
            reference=None if name == "train" else reference,
            settings=settings,
            monotonicity=monotonicity,
            probability=scored[name],
            model_metrics=model_metrics,
            seed=seed,
        )

    examples = reason_examples(
        spec,
        splits.test,
        catalogue,
        protected=settings.protected,
        probability=scored["test"],
        proxy=proxy,
    )
    gate_result = check_gates(gates, {n: p.metrics for n, p in parts.items()})
    return Evidence(
        model_name=model_name,
        model_type=spec.model_type,
        task=spec.task,
        threshold=spec.decision.threshold,
        decision_rule=spec.decision.rule,
        labels=spec.decision.labels,
        features=spec.feature_names,
        splits=parts,
        split_summary=splits.summary(),
        importance=global_importance(sample_contrib),
        plots=plots(sample_contrib, sample),
        reason_examples=examples,
        monotonicity=monotonicity,
        reference=reference,
        catalogue=catalogue,
        reason_checks=checks,
        proxy=proxy,
        gates=gate_result,
        alternatives=alternatives,
        **_spec_facts(spec),
    )


def _spec_facts(spec: ModelSpec) -> dict[str, Any]:
    """Evidence fields read off the spec: its sheet, calibration and what it changed."""
    return {
        "sheet": spec.sheet(),
        "notes": (spec.calibration.note,) if spec.calibration.note else (),
        "calibration": spec.calibration.method,
        "costs": spec.decision.costs,
        "score_scale": spec.score,
    }


def _catalogue(
    spec: ModelSpec, sample: pd.DataFrame, contrib: Contributions, settings: ExplainSettings
) -> ReasonCatalogue:
    return build_catalogue(
        sample,
        contrib,
        k=settings.reason_codes,
        categorical={f.name: f.levels for f in spec.features if f.kind == "categorical"},
        custom=settings.reason_texts,
        monotone=settings.monotone,
    )


def _eligible(contrib: Contributions, protected: Sequence[str]) -> list[str]:
    """Features that can be a reason: not protected, and pushing some sampled row toward decline."""
    pushes = [bool(v) for v in np.any(np.asarray(contrib.values) > 0, axis=0)]
    return [n for j, n in enumerate(contrib.features) if pushes[j] and n not in set(protected)]


def _proxy(train: Dataset, settings: ExplainSettings) -> ProxyResult | None:
    if train.protected is None or not len(train.protected.columns):
        return None
    return proxy_screen(
        train.features,
        train.protected.reset_index(drop=True),
        categorical=train.categorical,
        bins=settings.fairness_bins,
        threshold=settings.proxy_threshold,
        min_group_size=settings.min_group_size,
    )


def evaluate_batch(
    spec: ModelSpec,
    dataset: Dataset,
    *,
    reference: ReferenceProfile,
    model_name: str,
    gates: Sequence[GateSpec],
    settings: ExplainSettings,
    catalogue: ReasonCatalogue,
    seed: int = 0,
) -> Evidence:
    """Re-test a registered model on new labelled data (`creditgov evaluate`).

    The batch plays the part of the test split: gates on `test` apply to it, and drift
    is measured against the reference profile stored with the model.
    """
    rng = np.random.default_rng(seed)
    n_sample = min(settings.shap_sample, dataset.n_rows)
    rows = np.sort(rng.choice(dataset.n_rows, size=n_sample, replace=False))
    sample = dataset.features.iloc[rows].reset_index(drop=True)
    contrib = contributions(spec, sample)
    catalogue = catalogue.ordered(contrib.features)
    monotonicity = monotonicity_violations(
        spec, sample, _monotone_used(spec, settings.monotone), rows=MONOTONE_ROWS,
        grid=MONOTONE_GRID,
    )  # fmt: skip
    p = spec.probability(dataset.features)
    checks = check_reasons(
        spec,
        dataset.features,
        p >= spec.decision.threshold,
        catalogue=catalogue,
        eligible=_eligible(contrib, settings.protected),
        protected=settings.protected,
        seed=seed,
    )
    part = score_split(
        spec,
        "test",
        dataset.features,
        dataset.target,
        dataset.protected,
        reference=reference,
        settings=settings,
        monotonicity=monotonicity,
        probability=p,
        model_metrics={**checks.metrics(), **_model_metrics(spec)},
        seed=seed,
    )
    summary = SplitSummary(
        name="test",
        rows=dataset.n_rows,
        bads=int(dataset.target.sum()),
        bad_rate=round(dataset.bad_rate, 6),
        date_min=None if dataset.time is None else str(dataset.time.min().date()),
        date_max=None if dataset.time is None else str(dataset.time.max().date()),
    )
    return Evidence(
        model_name=model_name,
        model_type=spec.model_type,
        task=spec.task,
        threshold=spec.decision.threshold,
        decision_rule=spec.decision.rule,
        labels=spec.decision.labels,
        features=spec.feature_names,
        splits={"test": part},
        split_summary=(summary,),
        importance=global_importance(contrib),
        plots=plots(contrib, sample),
        reason_examples=reason_examples(
            spec, dataset, catalogue, protected=settings.protected, probability=p
        ),
        monotonicity=monotonicity,
        reference=reference,
        catalogue=catalogue,
        reason_checks=checks,
        proxy=None,
        gates=check_gates(gates, {"test": part.metrics}),
        **_spec_facts(spec),
    )
