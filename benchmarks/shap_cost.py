"""Explanation cost: creditgov's SHAP and reason codes next to LightGBM's bare `pred_contrib`.

The question: what does `evaluation.explain` add on top of the TreeSHAP LightGBM itself
computes? Target: at most 1.05x, i.e. the wrapper (encoding the DataFrame, picking
reasons; the booster is parsed from its text once per fitted model) must be noise next to
TreeSHAP. Two ratios, per 1,000 explained rows, from interleaved repetitions (see
`benchmarks.interleave`):

- (a) `contributions(spec, frame)` vs `booster.predict(x, pred_contrib=True)`;
- (b) `contributions` + `reason_codes` vs the same bare call.

The bare side is given what it cannot do without: the booster already loaded and the
matrix already encoded. The model is the shipped config (`configs/credit_scoring.yaml`:
its params, monotone constraints, calibration, approval rate, reason codes and texts),
trained without tuning on `train_rows` synthetic applications; the explained rows are
`rows` fresh applications. Before timing, the two sides are checked to compute the same
thing (contributions bit-identical; reasons equal to a per-row reference), else
`NotSameWork`.

    python -m benchmarks.shap_cost [--rows 20000] [--train-rows 50000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from benchmarks import BenchResult, Samples, interleave
from evaluation.explain import Contributions, contributions
from evaluation.reasons import ReasonCatalogue, build_catalogue, reason_frame
from training.models.encoding import encode
from training.models.kinds.lightgbm import LightGBMModel
from training.models.spec import ModelSpec

if TYPE_CHECKING:
    from benchmarks.harness import Context

__all__ = ["CONFIG", "TARGET", "NotSameWork", "bench", "bench_shap_cost", "run"]

#: The shipped config the model is trained from; only the data source is redirected.
CONFIG = Path(__file__).resolve().parent.parent / "configs" / "credit_scoring.yaml"
TARGET = 1.05
#: Declined rows whose reasons are checked against the per-row reference before timing.
CHECKED_ROWS = 500

Log = Callable[[str], None]


class NotSameWork(RuntimeError):
    """creditgov's explanation differs from bare `pred_contrib`; a ratio would mislead."""


@dataclass(frozen=True)
class Setup:
    """A trained model, rows to explain and everything scoring needs besides the rows."""

    spec: ModelSpec
    model: LightGBMModel  # spec.model: TreeSHAP is LightGBM's
    frame: pd.DataFrame  # the rows to explain, feature columns only
    declined: NDArray[np.bool_]
    k: int
    catalogue: ReasonCatalogue
    encoded: NDArray[np.float64]  # the rows as the catalogue reads them
    protected: tuple[str, ...]
    train_rows: int
    fit_seconds: float


def make_setup(rows: int, *, train_rows: int, seed: int, folder: Path) -> Setup:
    """Train the shipped config (tuning off) on `train_rows` rows; draw `rows` rows to explain."""
    from creditgov.config import load_config
    from creditgov.stages import prepare
    from datasets import make_credit, write_table
    from training.models.policy import ScoreScale
    from training.models.spec import fit_model

    path = folder / "credit.parquet"
    write_table(make_credit(train_rows, seed=seed).frame, path)
    cfg = load_config(CONFIG, [f"data.source={path}"])
    splits = prepare(cfg)  # the job's own load, validation and split
    assert cfg.decision.approval_rate is not None, "the shipped config decides by approval rate"
    started = time.perf_counter()
    spec = fit_model(
        splits,
        task=cfg.task,
        model_type=cfg.model.type,
        params=cfg.model.params,
        monotone=cfg.model.monotone,
        calibration=cfg.model.calibration,
        score=ScoreScale(cfg.score.base_score, cfg.score.base_odds, cfg.score.pdo),
        decision_rule="approval_rate",
        approval_rate=cfg.decision.approval_rate,
        seed=cfg.seed,
    ).spec
    fit_seconds = time.perf_counter() - started
    if not isinstance(spec.model, LightGBMModel):
        raise ValueError("the SHAP cost benchmark needs a LightGBM model (TreeSHAP)")

    frame = make_credit(rows, seed=seed + 1).frame[list(spec.feature_names)]
    declined = (spec.predict(frame)["decision"] == spec.decision.labels[1]).to_numpy()
    # Directions come from a reference sample once, as the job does; not part of scoring.
    reference = frame.head(cfg.evaluation.shap_sample)
    contrib = contributions(spec, reference)
    catalogue = build_catalogue(
        reference,
        contrib,
        k=cfg.evaluation.reason_codes,
        categorical={f.name: f.levels for f in spec.features if f.kind == "categorical"},
        custom={
            n: t if isinstance(t, str) else t.plain()
            for n, t in cfg.evaluation.reason_texts.items()
        },
        monotone=cfg.model.monotone,
    )
    return Setup(
        spec=spec,
        model=spec.model,
        frame=frame,
        declined=declined,
        k=cfg.evaluation.reason_codes,
        catalogue=catalogue,
        encoded=catalogue.encoded(spec, frame),
        protected=tuple(cfg.data.protected),
        train_rows=train_rows,
        fit_seconds=fit_seconds,
    )


def check_same_work(setup: Setup, booster: lgb.Booster, x: NDArray[np.float64]) -> None:
    """Contributions bit-identical to bare pred_contrib; reasons as a per-row loop picks them."""
    bare = np.asarray(booster.predict(x, pred_contrib=True), dtype=np.float64)
    ours = contributions(setup.spec, setup.frame)
    if not (np.array_equal(ours.values, bare[:, :-1]) and np.array_equal(ours.base, bare[:, -1])):
        raise NotSameWork("contributions differ from pred_contrib on the same booster and rows")
    frame = _reasons(setup, ours)
    reasons = frame[[f"reason_code_{i + 1}" for i in range(setup.k)]].to_numpy()
    if (reasons[~setup.declined] != "").any() or (reasons[setup.declined, 0] == "").any():
        raise NotSameWork("reasons are not blank exactly for approved rows")
    eligible = [j for j, f in enumerate(ours.features) if f not in setup.protected]
    codes = {e.feature: e.code for e in setup.catalogue.entries}
    for i in np.flatnonzero(setup.declined)[:CHECKED_ROWS]:
        ranked = sorted(eligible, key=lambda j: (-ours.values[i, j], j))[: setup.k]
        expected = [codes[ours.features[j]] for j in ranked if ours.values[i, j] > 0]
        expected = (expected or ["GENERAL"]) + [""] * (setup.k - max(len(expected), 1))
        if reasons[i].tolist() != expected:
            raise NotSameWork(f"row {i}: reasons {reasons[i].tolist()} != {expected}")


def _reasons(setup: Setup, contrib: Contributions) -> pd.DataFrame:
    return reason_frame(
        contrib,
        setup.encoded,
        declined=setup.declined,
        catalogue=setup.catalogue,
        protected=setup.protected,
    )


def bench_shap_cost(
    rows: int = 20_000,
    *,
    train_rows: int = 50_000,
    repeats: int = 5,
    seed: int = 7,
    log: Log | None = None,
) -> tuple[list[BenchResult], dict[str, Any]]:
    """The two ratio rows, and a record of the model and settings they were measured on."""
    say = log or (lambda _message: None)
    with tempfile.TemporaryDirectory(prefix="creditgov-shap-") as tmp:
        setup = make_setup(rows, train_rows=train_rows, seed=seed, folder=Path(tmp))
    spec, model = setup.spec, setup.model
    say(
        f"model: {model.best_iteration} trees, {len(spec.features)} features, trained on "
        f"{train_rows} rows in {setup.fit_seconds:.1f} s; explaining {rows} rows, "
        f"{int(setup.declined.sum())} declined"
    )
    booster = lgb.Booster(model_str=model.model_text)
    x = encode(setup.frame, spec.features)
    check_same_work(setup, booster, x)
    contrib = contributions(spec, setup.frame)

    def reasons_only() -> object:
        return _reasons(setup, contrib)

    def with_reasons() -> object:
        return _reasons(setup, contributions(spec, setup.frame))

    sides: dict[str, Callable[[], object]] = {
        "bare_pred_contrib": lambda: booster.predict(x, pred_contrib=True),
        "contributions": lambda: contributions(spec, setup.frame),
        "contributions_and_reasons": with_reasons,
        # The wrapper's own parts, for the breakdown.
        "encode": lambda: encode(setup.frame, spec.features),
        "load_booster": lambda: lgb.Booster(model_str=model.model_text),
        "reason_selection": reasons_only,
    }
    samples = interleave(
        sides,
        repeats,
        on_sample=lambda name, round_, wall: say(f"round {round_ + 1}: {name} {wall:.3f} s"),
    )
    bare = samples["bare_pred_contrib"]
    per_1k = 1000.0 / rows
    breakdown = {
        "title": f"explaining {rows} rows (medians, whole batch)",
        "rows": [
            {"part": name.replace("_", " "), "median_s": samples[name].median} for name in sides
        ],
    }
    common = {
        "rows": rows,
        "repeats": repeats,
        "declined": int(setup.declined.sum()),
        "k": setup.k,
        "samples": {name: s.to_json() for name, s in samples.items()},
        "breakdown": breakdown,
    }

    def result(name: str, title: str, side: Samples, includes: str) -> BenchResult:
        return BenchResult(
            name=name,
            title=title,
            kind="ratio",
            creditgov=side.median * per_1k,
            reference=bare.median * per_1k,
            value=side.median / bare.median,
            target=TARGET,
            unit="s",
            includes={
                "creditgov": includes,
                "reference": "booster.predict(x, pred_contrib=True), booster loaded, x encoded",
            },
            details={**common, "cpu_ratio": side.cpu_median / bare.cpu_median},
        )

    results = [
        result(
            "shap_contributions",
            "SHAP contributions per 1k rows",
            samples["contributions"],
            "contributions(spec, frame): encode + pred_contrib (the booster is parsed from "
            "its text once per fitted model, at the first call)",
        ),
        result(
            "shap_reason_codes",
            "SHAP + reason codes per 1k rows",
            samples["contributions_and_reasons"],
            "contributions + reason_frame (adverse selection, per-row wording, codes)",
        ),
    ]
    record = {
        "model": {
            "train_rows": train_rows,
            "trees": model.best_iteration,
            "features": len(spec.features),
            "fit_s": setup.fit_seconds,
            "config": str(CONFIG),
        },
        "settings": {"rows": rows, "train_rows": train_rows, "repeats": repeats, "seed": seed},
    }
    return results, record


def run(
    rows: int = 20_000,
    *,
    train_rows: int = 50_000,
    repeats: int = 5,
    seed: int = 7,
    log: Log | None = None,
) -> dict[str, Any]:
    """JSON-ready: {"benchmark", "settings", "model", "results": [BenchResult.to_json()]}."""
    results, record = bench_shap_cost(
        rows, train_rows=train_rows, repeats=repeats, seed=seed, log=log
    )
    return {"benchmark": "shap_cost", **record, "results": [r.to_json() for r in results]}


def bench(context: Context) -> list[BenchResult]:
    """`python -m benchmarks --only shap`: its own model and rows; the record is noted."""
    results, record = bench_shap_cost(repeats=context.few_repeats, log=context.log)
    context.note("shap", record)
    return results


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.shap_cost",
        description="SHAP and reason-code cost against bare LightGBM pred_contrib.",
    )
    parser.add_argument("--rows", type=int, default=20_000, help="rows to explain")
    parser.add_argument("--train-rows", type=int, default=50_000, help="rows to train on")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.repeats < 3:
        parser.error("--repeats must be at least 3: a median of fewer is not a median")

    err = Console(stderr=True)
    t0 = time.perf_counter()
    document = run(
        args.rows,
        train_rows=args.train_rows,
        repeats=args.repeats,
        seed=args.seed,
        log=lambda m: err.print(f"[dim]{time.perf_counter() - t0:7.1f}s[/] {m}", highlight=False),
    )
    out = Console()
    model = document["model"]
    table = Table(
        title=f"explaining {args.rows} rows with a {model['trees']}-tree model trained on "
        f"{model['train_rows']} rows (medians of {args.repeats} interleaved runs)"
    )
    for column in ("benchmark", "creditgov", "bare pred_contrib", "ratio", "cpu ratio", "target"):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for r in document["results"]:
        verdict = "[green]PASS[/]" if r["passed"] else "[red]FAIL[/]"
        table.add_row(
            r["title"],
            f"{r['creditgov']:.4f} s",
            f"{r['reference']:.4f} s",
            f"{r['value']:.3f}×",
            f"{r['details']['cpu_ratio']:.3f}×",
            f"≤ {r['target']:.2f}× {verdict}",
        )
    out.print(table)
    parts = Table(title=document["results"][0]["details"]["breakdown"]["title"])
    parts.add_column("part")
    parts.add_column("seconds", justify="right")
    for row in document["results"][0]["details"]["breakdown"]["rows"]:
        parts.add_row(row["part"], f"{row['median_s']:.4f}")
    out.print(parts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
