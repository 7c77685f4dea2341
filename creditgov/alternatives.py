"""The search for a less discriminatory alternative, as a stage of the job.

With `tuning.objectives: [auc, selection_rate_ratio]` the tuning study scores each trial
on both (`stages.fairness_objective_of`, passed by `stages.tune_splits`); `search_alternatives`
then adds the most accurate parameters fitted without each proxy the screen flags, and
`tuning.select` picks the model the job fits and registers (`evaluation/lda.py` holds
the search's rules and its wording; this module reads them off the config).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from creditgov.config import JobConfig
from creditgov.stages import fairness_objective_of, model_inputs
from training.models.registry import get_kind

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from evaluation.lda import LdaSearch
    from training.models.base import ModelInputs
    from training.tuning import TuneResult

__all__ = ["log_search", "search_alternatives"]


def search_alternatives(
    config: JobConfig, inputs: ModelInputs, result: TuneResult
) -> tuple[LdaSearch, ModelInputs, dict[str, Any]]:
    """The less discriminatory alternatives: the trials, then the proxies dropped, chosen.

    Each feature the proxy screen flags on train is dropped in turn and the most
    accurate trial's parameters fitted without it; its validation (AUC, ratio) joins the
    trials'. `tuning.select` picks one; the job fits it (its inputs and parameters).
    """
    from evaluation.lda import Alternative, select
    from evaluation.metrics import tuning_objective
    from evaluation.proxy import proxy_screen
    from training.models.spec import valid_probabilities

    splits = inputs.splits
    alternatives = [
        Alternative(f"trial {r.number}", dict(r.params), r.values[0], r.values[1], trial=r.number)
        for r in result.alternatives
    ]
    best = max(alternatives, key=lambda a: (a.auc, a.selection_rate_ratio))
    train = splits.train
    fairness = config.evaluation.fairness
    proxies = proxy_screen(
        train.features, train.protected.reset_index(drop=True), categorical=train.categorical,
        bins=fairness.bins, threshold=config.evaluation.proxy_threshold,
        min_group_size=fairness.min_group_size,
    ).flagged  # fmt: skip
    accuracy, ratio = tuning_objective(config.tuning.metric), fairness_objective_of(config, splits)
    reduced: dict[tuple[str, ...], ModelInputs] = {}
    for feature in proxies:
        if feature not in inputs.splits.train.feature_names or len(train.feature_names) < 2:
            continue
        dropped = (feature,)
        reduced[dropped] = model_inputs(config, splits.without(list(dropped)))
        model = get_kind(config.model.type).fit(
            reduced[dropped], params={**config.model.params, **best.params},
            monotone={k: v for k, v in config.model.monotone.items() if k != feature},
            seed=config.seed,
        )  # fmt: skip
        raw = valid_probabilities(model, reduced[dropped])
        y = splits.valid.target
        candidate = Alternative(
            f"{best.label} without {feature}", dict(best.params), accuracy.score(y, raw),
            ratio.score(y, raw), dropped, best.trial,
        )  # fmt: skip
        alternatives.append(candidate)
    gates = [g for g in config.gates if g.metric in (config.tuning.metric, "selection_rate_ratio")]

    def passes(a: Alternative) -> bool:
        values = {config.tuning.metric: a.auc, "selection_rate_ratio": a.selection_rate_ratio}
        return all(
            (g.min is None or values[g.metric] >= g.min)
            and (g.max is None or values[g.metric] <= g.max)
            for g in gates
        )

    line = next((g.min for g in gates if g.metric == "selection_rate_ratio" and g.min), None)
    rule = config.tuning.select
    search = select(
        alternatives,
        rule=rule if isinstance(rule, str) else rule.model_dump(),
        passes=passes,
        gate_ratio=line or 0.8,
    )
    chosen = search.alternatives[search.chosen]
    chosen_inputs = reduced.get(chosen.dropped, inputs) if chosen.dropped else inputs
    return search, chosen_inputs, dict(chosen.params)


def log_search(client: MlflowClient, run_id: str, search: LdaSearch) -> None:
    """Both models named on the run (params, metrics) and every alternative as JSON."""
    import mlflow

    from registry.tracking import log_batch

    chosen = search.alternatives[search.chosen]
    top = search.alternatives[search.most_accurate]
    metrics = {
        "lda_chosen_valid_auc": chosen.auc,
        "lda_chosen_valid_selection_rate_ratio": chosen.selection_rate_ratio,
        "lda_most_accurate_valid_auc": top.auc,
        "lda_most_accurate_valid_selection_rate_ratio": top.selection_rate_ratio,
        "lda_front_size": float(len(search.front)),
        "lda_alternatives": float(len(search.alternatives)),
    }
    log_batch(
        client, run_id,
        params={"lda.chosen": chosen.label, "lda.most_accurate": top.label,
                "lda.select": search.rule},
        metrics={k: v for k, v in metrics.items() if v == v},
    )  # fmt: skip
    mlflow.log_dict({"alternatives": search.to_json()}, "tuning/alternatives.json")
