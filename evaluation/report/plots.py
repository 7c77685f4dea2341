"""The report's figures: matplotlib charts drawn from `Evidence`, returned as PNG bytes.

Each function draws one chart and hands back the encoded image, never a figure object,
so the templates only ever see bytes to embed and nothing here knows about HTML. The
SHAP plots are not here: `evaluation.explain.plots` draws them with the evidence and
they arrive in `Evidence.plots`. matplotlib is imported inside the functions, on the
non-interactive Agg backend, so importing the report stays cheap and a batch job never
opens a display.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from evaluation.drift import DriftResult
    from evaluation.evidence import Evidence

__all__ = [
    "calibration_plot",
    "cost_plot",
    "fairness_plot",
    "lda_plot",
    "psi_plot",
    "roc_ks_plot",
]


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(fig)
    return buffer.getvalue()


def roc_ks_plot(evidence: Evidence) -> bytes:
    """ROC of every split beside the cumulative bads and goods by score band on test."""
    fig, (roc_ax, ks_ax) = _pyplot().subplots(1, 2, figsize=(9.5, 3.8))
    for name, part in evidence.splits.items():
        roc_ax.plot(
            part.roc.fpr,
            part.roc.tpr,
            label=f"{name} (AUC {part.metrics.get('auc', float('nan')):.3f})",
        )
    roc_ax.plot([0, 1], [0, 1], color="#bbb", lw=1, ls="--")
    roc_ax.set(
        xlabel="false positive rate (goods declined)",
        ylabel="true positive rate (bads declined)",
        title="ROC",
    )
    roc_ax.legend(fontsize=8, loc="lower right")
    test = evidence.splits.get("test") or next(iter(evidence.splits.values()))
    bands = test.bands
    bads = bands["bads"].to_numpy(dtype=np.float64)[::-1]
    goods = bands["count"].to_numpy(dtype=np.float64)[::-1] - bads
    x = np.arange(1, len(bands) + 1)
    ks_ax.plot(x, np.cumsum(bads) / max(1.0, bads.sum()), marker="o", label="bads (cumulative)")
    ks_ax.plot(x, np.cumsum(goods) / max(1.0, goods.sum()), marker="o", label="goods (cumulative)")
    ks_ax.set(
        xlabel="score band, riskiest first",
        ylabel="cumulative share",
        title=f"KS on test: {test.metrics.get('ks', float('nan')):.3f}",
    )
    ks_ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def calibration_plot(evidence: Evidence) -> bytes:
    """Observed rate against mean predicted probability by decile, one line per split."""
    fig, ax = _pyplot().subplots(figsize=(4.6, 3.8))
    top = 0.0
    for name, part in evidence.splits.items():
        cal = part.calibration
        ax.plot(cal.predicted, cal.observed, marker="o", label=name)
        top = max(top, float(cal.predicted.max()), float(cal.observed.max()))
    ax.plot([0, top], [0, top], color="#bbb", lw=1, ls="--", label="perfect")
    ax.set(
        xlabel="predicted probability (decile mean)", ylabel="observed rate", title="Calibration"
    )
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def fairness_plot(evidence: Evidence) -> bytes | None:
    """Approval rate by group on test with the four-fifths line; None without groups."""
    test = evidence.splits.get("test")
    if test is None or test.fairness is None or not test.fairness.groups:
        return None
    groups = [g for g in test.fairness.groups if "×" not in g.attribute]
    fig, ax = _pyplot().subplots(figsize=(9.5, 0.32 * len(groups) + 1.2))
    labels = [f"{g.attribute} = {g.group}" + (" (small)" if g.small else "") for g in groups]
    colors = ["#c9ced6" if g.small else "#4c78a8" for g in groups]
    ax.barh(labels, [g.approval_rate for g in groups], color=colors)
    best = max((g.approval_rate for g in groups if not g.small), default=0)
    ax.axvline(0.8 * best, color="#a1261b", ls="--", lw=1, label="4/5 of the highest group")
    ax.invert_yaxis()
    ax.set(xlabel="approval rate on test", title="Approval rate by group")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def psi_plot(drift: DriftResult) -> bytes:
    """PSI by feature, coloured stable / moderate / over the drift threshold."""
    psi = pd.Series(dict(drift.psi), dtype="float64").sort_values()
    fig, ax = _pyplot().subplots(figsize=(9.5, 0.28 * len(psi) + 1.2))
    colors = [
        "#a1261b" if v > drift.threshold else "#e2a400" if v > 0.1 else "#4c78a8" for v in psi
    ]
    ax.barh(psi.index, psi.to_numpy(), color=colors)
    ax.axvline(0.1, color="#e2a400", ls=":", lw=1)
    ax.axvline(
        drift.threshold, color="#a1261b", ls="--", lw=1, label=f"threshold {drift.threshold:g}"
    )
    ax.set(xlabel="PSI against the training population", title="Population stability by feature")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _png(fig)


def cost_plot(evidence: Evidence) -> bytes:
    """Expected cost per row on test by threshold, with the cost-optimal cut-off marked.

    The cut-off was chosen on the validation split; the test curve shows whether it sits
    near the bottom of the test split's curve too.
    """
    test = evidence.splits.get("test") or next(iter(evidence.splits.values()))
    curve = test.cost_curve
    fig, ax = _pyplot().subplots(figsize=(6.0, 3.4))
    if curve is not None and len(curve):
        ax.plot(curve.threshold, curve.expected_cost, color="#2b5bd7")
        chosen = curve[curve.chosen]
        ax.scatter(chosen.threshold, chosen.expected_cost, color="#d9822b", zorder=3,
                   label=f"chosen on valid: {evidence.threshold:.4f}")  # fmt: skip
        ax.legend(fontsize=8)
        if (curve.threshold > 0).all():
            ax.set_xscale("log")
    ax.set(xlabel="threshold (flag at probability ≥ it)", ylabel="expected cost per row",
           title="Expected cost on test")  # fmt: skip
    fig.tight_layout()
    return _png(fig)


def lda_plot(evidence: Evidence) -> bytes:
    """Every alternative's validation (AUC, selection-rate ratio): the front, the gate line,
    the chosen model and the most accurate one."""
    search = evidence.alternatives
    fig, ax = _pyplot().subplots(figsize=(6.4, 3.8))
    if search is not None:
        points = [(a.auc, a.selection_rate_ratio) for a in search.alternatives]
        trials = [p for p, a in zip(points, search.alternatives, strict=True) if not a.dropped]
        drops = [p for p, a in zip(points, search.alternatives, strict=True) if a.dropped]
        if trials:
            ax.scatter(*zip(*trials, strict=True), s=16, color="#9aa3b2", label="trials")
        if drops:
            ax.scatter(*zip(*drops, strict=True), s=30, marker="s", color="#6b8e23",
                       label="without a proxy")  # fmt: skip
        front = [points[i] for i in search.front]
        ax.plot(*zip(*front, strict=True), color="#2b5bd7", lw=1.5, marker="o", ms=4,
                label="Pareto front")  # fmt: skip
        top = points[search.most_accurate]
        ax.scatter([top[0]], [top[1]], s=90, facecolors="none", edgecolors="#1d2330", lw=1.5,
                   label="most accurate", zorder=4)  # fmt: skip
        chosen = points[search.chosen]
        ax.scatter([chosen[0]], [chosen[1]], s=110, marker="*", color="#d9822b",
                   label="chosen", zorder=5)  # fmt: skip
        ax.axhline(search.gate_ratio, color="#a1261b", ls="--", lw=1,
                   label=f"gate {search.gate_ratio:g}")  # fmt: skip
        ax.legend(fontsize=7, loc="best")
    ax.set(xlabel="validation AUC", ylabel="selection-rate ratio (validation)",
           title="Less discriminatory alternatives")  # fmt: skip
    fig.tight_layout()
    return _png(fig)
