"""Why the model said what it said: per-row contributions, reason codes, monotonicity.

Three audiences read these numbers. The model-risk reviewer reads the global views
(mean |SHAP|, beeswarm, dependence plots) in the report. The declined applicant reads the
reason codes, which regulation (adverse-action notices) requires to name the factors that
counted most against them. The gate reads `monotonicity_violations`, which says whether
the model's explanations move in the direction the config declared.

One sign convention throughout: a positive contribution pushes the row toward decline
(credit) or review (fraud).

Each model kind computes its own contributions (`training/models/kinds/`, the
`contributions` of the model protocol): LightGBM's exact TreeSHAP from ``pred_contrib``
in raw log-odds of "bad" (the algorithm ``shap.TreeExplainer`` runs; a test pins the two
equal), the scorecard's points lost against each characteristic's best bin, the
logistic regression's terms against their training average. This module only reads
them, whatever the kind.

Reason-code selection (`reason_indices`) is pure numpy because the served model
(`registry/scoring_model.py`, which may import nothing of ours) mirrors it line for line.

shap, matplotlib and lightgbm are imported inside the functions that need them, so
importing this module (the report, the gates, the CLI) stays cheap.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from training.models.base import Contributions

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from training.models.spec import ModelSpec

__all__ = [
    "MONOTONE_TOLERANCE",
    "Contributions",
    "contributions",
    "directions",
    "global_importance",
    "monotonicity_violations",
    "plots",
    "reason_codes",
    "reason_indices",
    "reason_texts",
]

#: A SHAP step against the declared direction smaller than this is rounding, not a violation.
MONOTONE_TOLERANCE = 1e-9
#: Shown for a categorical feature: naming the level could disclose something sensitive.
CATEGORICAL_TEXT = "{feature} indicates higher risk"
HIGH_TEXT = "{feature} is too high"
LOW_TEXT = "{feature} is too low"
#: What the dependence plots show for a missing categorical value.
MISSING_LEVEL = "(missing)"


def contributions(spec: ModelSpec, frame: pd.DataFrame) -> Contributions:
    """Contributions of every feature for every row of `frame`, from the model's kind.

    LightGBM: the matrix is encoded once and ``pred_contrib`` called once, so explaining
    costs what LightGBM's TreeSHAP costs and almost nothing more (benchmarks/shap_cost.py).
    """
    return spec.contributions(frame)


def directions(
    spec: ModelSpec,
    frame: pd.DataFrame,
    contrib: Contributions,
    monotone: Mapping[str, int],
) -> dict[str, int]:
    """For each feature, +1 if a higher value is riskier, -1 if lower is, 0 if unordered.

    This picks "too high" or "too low" for a reason text, so it is fixed once on the
    reference sample and stored with the model: serving then says the same thing for the
    same feature on every row. A declared ``model.monotone`` sign wins. Otherwise the sign
    of the Spearman correlation between the feature's values and its contributions over
    the rows where the value is present (rank-based, so a step-shaped tree effect counts
    as fully monotone); no correlation at all (a feature the model never uses) reads as
    +1. Categorical features have no order: 0.
    """
    if len(frame) != contrib.values.shape[0]:
        raise ValueError(
            f"frame has {len(frame)} rows but the contributions {contrib.values.shape[0]}"
        )
    kinds = {f.name: f.kind for f in spec.features}
    out: dict[str, int] = {}
    for j, name in enumerate(contrib.features):
        if name in monotone:
            out[name] = 1 if monotone[name] > 0 else -1
        elif kinds.get(name, "numeric") == "categorical":
            out[name] = 0
        else:
            x = pd.to_numeric(frame[name], errors="coerce").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
            present = ~np.isnan(x)
            rho = _spearman(x[present], contrib.values[present, j])
            out[name] = -1 if rho < 0 else 1
    return out


def _spearman(x: NDArray[np.float64], y: NDArray[np.float64]) -> float:
    """Spearman's rho with average ranks; 0 where it is undefined (fewer than 2 rows, a constant)."""
    from scipy.stats import rankdata

    if x.size < 2:
        return 0.0
    rx, ry = rankdata(x), rankdata(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(np.sqrt(np.sum(rx * rx) * np.sum(ry * ry)))
    return float(np.sum(rx * ry)) / denominator if denominator > 0 else 0.0


def reason_texts(
    features: Sequence[str],
    directions: Mapping[str, int],
    custom: Mapping[str, str],
    categorical: Sequence[str],
) -> dict[str, str]:
    """The sentence an applicant reads for each feature.

    ``evaluation.reason_texts`` wins; else a categorical feature reads "<feature>
    indicates higher risk" (never the level, which could be sensitive), a numeric one
    "<feature> is too high" or "... too low" by its direction. A numeric feature without
    a direction is an error rather than a guess, because the guess would be shown to
    an applicant.
    """
    blank = [name for name in features if name in custom and not custom[name].strip()]
    if blank:
        raise ValueError(f"evaluation.reason_texts gives blank sentences for {blank}")
    cats = set(categorical)
    out: dict[str, str] = {}
    for name in features:
        if name in custom:
            out[name] = custom[name]
        elif name in cats:
            out[name] = CATEGORICAL_TEXT.format(feature=name)
        elif name not in directions:
            raise ValueError(f"no direction for numeric feature {name!r}; see directions()")
        else:
            text = LOW_TEXT if directions[name] < 0 else HIGH_TEXT
            out[name] = text.format(feature=name)
    return out


def reason_indices(
    values: NDArray[np.float64], declined: NDArray[np.bool_], k: int
) -> NDArray[np.intp]:
    """Column indices of each row's reasons, -1 for a blank. The rule, exactly:

    For a declined row, order the columns by contribution, largest first; equal
    contributions keep column order (a stable sort of the negated values). The first
    ``min(k, columns)`` are the reasons, so a decline always has reasons even when no
    contribution is positive (the least negative then come first); slots beyond the
    column count, and every slot of an approved row, are -1.

    Vectorised (one stable argsort over the declined rows, no Python loop per row):
    the selection must add next to nothing to the cost of ``pred_contrib``. The served
    model repeats this function verbatim; keep it numpy only.
    """
    n, f = values.shape
    out = np.full((n, k), -1, dtype=np.intp)
    rows = np.flatnonzero(declined)
    m = min(k, f)
    if rows.size and m:
        out[rows, :m] = np.argsort(-values[rows], axis=1, kind="stable")[:, :m]
    return out


def reason_codes(
    contrib: Contributions,
    *,
    declined: NDArray[np.bool_],
    k: int,
    texts: Mapping[str, str],
    protected: Sequence[str] = (),
) -> pd.DataFrame:
    """Columns ``reason_1`` .. ``reason_k``: the texts of `reason_indices`, "" when blank.

    Protected attributes are never features, but a reason naming one would be unlawful,
    so `protected` names are dropped before selection as a second guard; the remaining
    features keep their order, so the tie rule is unchanged. Rows are positional (a
    RangeIndex), in the order of `contrib`.
    """
    declined = np.asarray(declined, dtype=np.bool_)
    if declined.shape != (contrib.values.shape[0],):
        raise ValueError(
            f"declined must hold one flag per row ({contrib.values.shape[0]}), got {declined.shape}"
        )
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    blocked = set(protected)
    keep = np.array(
        [j for j, name in enumerate(contrib.features) if name not in blocked], dtype=np.intp
    )
    eligible = [contrib.features[j] for j in keep]
    untexted = [name for name in eligible if name not in texts]
    if untexted:
        raise ValueError(f"no reason text for {untexted}; see reason_texts()")
    values = contrib.values if keep.size == len(contrib.features) else contrib.values[:, keep]
    if not np.isfinite(values[declined]).all():
        raise ValueError("contributions of declined rows must be finite")
    picked = reason_indices(values, declined, k)
    sentences = np.array([*(texts[name] for name in eligible), ""], dtype=object)
    # -1 (blank) indexes the trailing "".
    return pd.DataFrame(sentences[picked], columns=[f"reason_{i + 1}" for i in range(k)])


def monotonicity_violations(
    spec: ModelSpec,
    frame: pd.DataFrame,
    monotone: Mapping[str, int],
    *,
    rows: int = 200,
    grid: int = 15,
) -> dict[str, int]:
    """Per monotone feature, how often its SHAP value steps against the declared sign.

    For up to `rows` rows of `frame`, the feature alone is moved across `grid` points (the
    quantiles of its values in `frame`) with every other feature held where it is, and
    the feature's own contribution is recomputed at each point. A step where it moves
    against the declared sign by more than `MONOTONE_TOLERANCE` is a violation; the gate
    metric ``monotonicity_violations`` is the sum over features.

    Why held fixed: a feature's TreeSHAP value also depends on the row's other features,
    so comparing different rows sorted by the feature shows "violations" in any model
    with interactions, monotone or not. Moving one feature of one row isolates exactly
    what a monotone constraint promises (risk never falls as the feature rises).
    """
    unknown = [name for name in monotone if name not in spec.feature_names]
    if unknown:
        raise ValueError(f"model.monotone names {unknown}, which the model does not use")
    base = frame.iloc[: min(rows, len(frame))].reset_index(drop=True)
    out: dict[str, int] = {}
    for name, declared in monotone.items():
        x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        x = x[~np.isnan(x)]
        if len(base) == 0 or x.size == 0:
            out[name] = 0
            continue
        points = np.unique(np.quantile(x, np.linspace(0.0, 1.0, grid)))
        moved = pd.concat([base.assign(**{name: v}) for v in points], ignore_index=True)
        column = contributions(spec, moved).values[:, spec.feature_names.index(name)]
        path = column.reshape(len(points), len(base)).T  # one row per base row, along the grid
        steps = np.diff(path, axis=1) * (1.0 if declared > 0 else -1.0)
        out[name] = int(np.count_nonzero(steps < -MONOTONE_TOLERANCE))
    return out


def global_importance(contrib: Contributions) -> pd.DataFrame:
    """Features by mean |contribution|, largest first (ties in feature order); rank from 1."""
    mean_abs = (
        np.abs(contrib.values).mean(axis=0)
        if contrib.values.shape[0]
        else np.zeros(len(contrib.features))
    )
    order = np.argsort(-mean_abs, kind="stable")
    return pd.DataFrame(
        {
            "feature": [contrib.features[j] for j in order],
            "mean_abs": mean_abs[order],
            "rank": np.arange(1, len(order) + 1),
        }
    )


def plots(contrib: Contributions, frame: pd.DataFrame, *, top: int = 6) -> dict[str, bytes]:
    """PNG bytes for the report: "importance", "beeswarm", "dependence_<feature>".

    Drawn with `shap.plots` on a `shap.Explanation` of `contrib`, on whatever rows are
    given (the caller passes the ``evaluation.shap_sample`` rows). Dependence plots are
    made for the `top` features by mean |contribution|. shap's plots shuffle with numpy's
    global generator; it is seeded for reproducible images and then put back, so making
    a report does not change anyone else's random numbers.
    """
    if len(frame) != contrib.values.shape[0]:
        raise ValueError(
            f"frame has {len(frame)} rows but the contributions {contrib.values.shape[0]}"
        )
    if contrib.values.shape[0] < 2:
        raise ValueError("plots need at least 2 rows")
    import shap

    names = list(contrib.features)
    numeric, display = _plot_data(frame, names)
    explanation = shap.Explanation(
        values=np.array(contrib.values),
        base_values=np.array(contrib.base),
        data=numeric,
        feature_names=names,
    )
    shown = min(len(names), 20)
    label = "contribution toward decline"
    out: dict[str, bytes] = {}
    with _plotting() as new_figure:
        fig = new_figure((8, 0.4 * shown + 1.5))
        ax = fig.add_subplot()
        shap.plots.bar(explanation, max_display=shown, ax=ax, show=False)
        ax.set_xlabel(f"mean |{label}|")
        out["importance"] = _png(fig)

        fig = new_figure((8, 0.4 * shown + 1.5))
        ax = fig.add_subplot()
        shap.plots.beeswarm(explanation, max_display=shown, ax=ax, plot_size=None, show=False)
        ax.set_xlabel(label)
        out["beeswarm"] = _png(fig)

        for name in global_importance(contrib)["feature"].head(max(top, 0)):
            j = names.index(name)
            column = shap.Explanation(
                values=np.array(contrib.values[:, j]),
                base_values=np.array(contrib.base),
                data=display[j],
                feature_names=name,
            )
            fig = new_figure((7, 5))
            ax = fig.add_subplot()
            shap.plots.scatter(column, ax=ax, show=False)
            ax.set_ylabel(f"{label}\nfrom {name}")
            out[f"dependence_{name}"] = _png(fig)
    return out


def _plot_data(
    frame: pd.DataFrame, names: Sequence[str]
) -> tuple[NDArray[np.float64], list[NDArray[Any]]]:
    """A numeric matrix (beeswarm colour) and per-feature display values (dependence x-axis).

    Categorical columns (object, string, category or bool dtype) become codes of their
    sorted levels for colour, and their levels, missing shown as "(missing)", on the axis.
    """
    numeric = np.empty((len(frame), len(names)), dtype=np.float64)
    display: list[NDArray[Any]] = []
    for j, name in enumerate(names):
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            numeric[:, j] = column.to_numpy(dtype=np.float64, na_value=np.nan)
            display.append(numeric[:, j])
        else:
            text = column.astype(object).where(column.notna(), None)
            levels = sorted({str(v) for v in text if v is not None})
            codes = pd.Categorical(text.map(lambda v: None if v is None else str(v)), levels).codes
            numeric[:, j] = np.where(codes < 0, np.nan, codes)
            display.append(
                np.array([MISSING_LEVEL if v is None else str(v) for v in text], dtype=object)
            )
    return numeric, display


@contextmanager
def _plotting() -> Iterator[Callable[[tuple[float, float]], Figure]]:
    """Yields a figure factory; closes every figure and restores numpy's global RNG after."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        # Batch jobs have no display; never pick an interactive backend for a report.
        # If pyplot is already loaded (a notebook), its backend is left alone: PNG
        # output is rendered by Agg whatever the backend.
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures: list[Figure] = []

    def new_figure(size: tuple[float, float]) -> Figure:
        fig = plt.figure(figsize=size)
        figures.append(fig)
        return fig

    state = np.random.get_state()
    np.random.seed(0)
    try:
        yield new_figure
    finally:
        np.random.set_state(state)
        for fig in figures:
            plt.close(fig)


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()
