"""Why the model said what it said: per-row contributions, global views, monotonicity.

Two audiences read these numbers here. The model-risk reviewer reads the global views
(mean |SHAP|, beeswarm, dependence plots) in the report. The gate reads
`monotonicity_violations`, which says whether the model's explanations move in the
direction the config declared. The declined applicant's reasons are built from the same
contributions in `evaluation/reasons.py`.

One sign convention throughout: a positive contribution pushes the row toward decline
(credit) or review (fraud).

Each model kind computes its own contributions (`training/models/kinds/`, the
`contributions` of the model protocol): LightGBM's exact TreeSHAP from ``pred_contrib``
in raw log-odds of "bad" (the algorithm ``shap.TreeExplainer`` runs; a test pins the two
equal), the scorecard's points lost against each characteristic's best bin, the
logistic regression's terms against their training average. This module only reads
them, whatever the kind.

shap, matplotlib and lightgbm are imported inside the functions that need them, so
importing this module (the report, the gates, the CLI) stays cheap.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    "MonotonicityCheck",
    "contributions",
    "global_importance",
    "monotonicity_violations",
    "plots",
]

#: A SHAP step against the declared direction smaller than this is rounding, not a violation.
MONOTONE_TOLERANCE = 1e-9
#: What the dependence plots show for a missing categorical value.
MISSING_LEVEL = "(missing)"


def contributions(spec: ModelSpec, frame: pd.DataFrame) -> Contributions:
    """Contributions of every feature for every row of `frame`, from the model's kind.

    LightGBM: the matrix is encoded once and ``pred_contrib`` called once, so explaining
    costs what LightGBM's TreeSHAP costs and almost nothing more (benchmarks/shap_cost.py).
    """
    return spec.contributions(frame)


@dataclass(frozen=True, eq=False)  # eq: Mapping's, so the check equals a plain dict
class MonotonicityCheck(Mapping[str, int]):
    """Violating steps per monotone feature, and how many steps were checked.

    Reads as the mapping feature -> violating steps; `steps` holds the steps checked per
    feature (rows moved x (grid points - 1)), so a count always comes with its unit:
    "3 of 600 steps (0.5%)", never a bare "60".
    """

    violations: Mapping[str, int] = field(default_factory=dict)
    steps: Mapping[str, int] = field(default_factory=dict)
    rows: int = 0

    def __getitem__(self, name: str) -> int:
        return self.violations[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.violations)

    def __len__(self) -> int:
        return len(self.violations)

    @property
    def total(self) -> int:
        return int(sum(self.violations.values()))

    @property
    def checked(self) -> int:
        return int(sum(self.steps.values()))

    @property
    def share(self) -> float:
        """Violating steps over steps checked; 0 when nothing was checked."""
        return self.total / self.checked if self.checked else 0.0

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "feature": list(self.violations),
                "rows": [self.rows] * len(self.violations),
                "steps_checked": [self.steps.get(n, 0) for n in self.violations],
                "violating_steps": list(self.violations.values()),
                "share": [
                    v / self.steps[n] if self.steps.get(n) else 0.0
                    for n, v in self.violations.items()
                ],
            }
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "steps_checked": dict(self.steps),
            "violating_steps": dict(self.violations),
            "violation_share": self.share,
        }


def monotonicity_violations(
    spec: ModelSpec,
    frame: pd.DataFrame,
    monotone: Mapping[str, int],
    *,
    rows: int = 200,
    grid: int = 15,
) -> MonotonicityCheck:
    """Per monotone feature, how often its SHAP value steps against the declared sign.

    For up to `rows` rows of `frame`, the feature alone is moved across `grid` points (the
    quantiles of its values in `frame`) with every other feature held where it is, and
    the feature's own contribution is recomputed at each point. A step where it moves
    against the declared sign by more than `MONOTONE_TOLERANCE` is a violation; the gate
    metrics are ``monotonicity_violations`` (the sum over features, in steps) and
    ``monotonicity_violation_share`` (that sum over the steps checked).

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
    steps_checked: dict[str, int] = {}
    for name, declared in monotone.items():
        x = pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        x = x[~np.isnan(x)]
        if len(base) == 0 or x.size == 0:
            out[name], steps_checked[name] = 0, 0
            continue
        points = np.unique(np.quantile(x, np.linspace(0.0, 1.0, grid)))
        moved = pd.concat([base.assign(**{name: v}) for v in points], ignore_index=True)
        column = contributions(spec, moved).values[:, spec.feature_names.index(name)]
        path = column.reshape(len(points), len(base)).T  # one row per base row, along the grid
        steps = np.diff(path, axis=1) * (1.0 if declared > 0 else -1.0)
        out[name] = int(np.count_nonzero(steps < -MONOTONE_TOLERANCE))
        steps_checked[name] = int(steps.size)
    return MonotonicityCheck(out, steps_checked, len(base))


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
