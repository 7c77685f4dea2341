"""What the report templates read: `Evidence` turned into formatted text, tables and figures.

The templates hold the wording and the layout; this module holds every decision about
the numbers — how a value is written (`fmt`), which metrics come first, which table
rows are shaded — so a template never computes anything and a change of format is
made once for the HTML report, the model card and the drift page. Values are plain
text: the HTML environment escapes them, so nothing here builds markup. `lineage` is
the caller's context (version, run id, trainer…) shown in the page header. Everything
shown is an id or an aggregate: the only row-level table is `Evidence.reason_examples`,
which carries ids, scores and reason codes, never applicants' values.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evaluation.report import plots

if TYPE_CHECKING:
    from evaluation.drift import DriftResult
    from evaluation.evidence import Evidence, SplitEvidence

__all__ = [
    "HEADLINE",
    "METRIC_ORDER",
    "Figure",
    "Table",
    "drift_context",
    "fmt",
    "model_card_context",
    "report_context",
    "table",
]

#: The summary cards: metric key and label, read from the test split.
HEADLINE = (
    ("auc", "AUC"),
    ("gini", "Gini"),
    ("ks", "KS"),
    ("brier", "Brier"),
    ("approval_rate", "Approval rate"),
    ("bad_rate_approved", "Bad rate (approved)"),
    ("psi_max", "Max feature PSI"),
    ("selection_rate_ratio", "Selection-rate ratio"),
)
#: The extra card for a cost-based decision rule.
COST_CARD = (("expected_cost", "Expected cost per row"),)
#: Metric table order; metrics not listed follow in the report and are left out of the card.
METRIC_ORDER = (
    "auc", "gini", "ks", "brier", "log_loss", "ece", "average_precision", "recall_at_1pct_fpr",
    "precision_at_top_1pct", "approval_rate", "bad_rate_approved", "precision", "recall",
    "true_positives", "false_positives", "true_negatives", "false_negatives", "expected_cost",
    "psi_max", "score_psi",
    "selection_rate_ratio", "demographic_parity_difference", "equalized_odds_difference",
    "monotonicity_violations", "monotonicity_violation_share", "scorecard_sign_violations",
    "reason_text_coverage", "reason_faithfulness", "reason_stability",
    "proxy_max",
)  # fmt: skip


def fmt(value: Any, digits: int = 4) -> str:
    """A value as the reviewer reads it: "—" for missing, thousands separators, fixed digits."""
    if value is None:
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return f"{int(value):,}"
    if isinstance(value, float | np.floating):
        number = float(value)
        if not np.isfinite(number):
            return "—"
        if number.is_integer() and abs(number) >= 2:  # counts held as floats
            return f"{int(number):,}"
        return f"{number:.{digits}f}"
    return str(value)


@dataclass(frozen=True)
class Table:
    """A frame as formatted text: the column headers, one class per column, the cells.

    `column_classes` is "l" for a left-aligned (text) column and "" otherwise;
    `row_classes`, when given, is one CSS class per row ("bad", "small" or "").
    """

    columns: tuple[str, ...]
    column_classes: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    row_classes: tuple[str, ...] | None = None


def table(
    frame: pd.DataFrame,
    *,
    left: Iterable[str] = (),
    row_class: pd.Series | None = None,
    cell: Callable[[Any], str] = fmt,
) -> Table:
    """`frame` as a `Table`; `left` names the text columns, `cell` formats each value."""
    left = set(left)
    # Column by column, so an integer column stays integer (iterrows would upcast the row).
    columns = [[cell(v) for v in frame[c].tolist()] for c in frame.columns]
    return Table(
        columns=tuple(str(c) for c in frame.columns),
        column_classes=tuple("l" if c in left else "" for c in frame.columns),
        rows=tuple(zip(*columns, strict=True)) if columns else ((),) * len(frame),
        row_classes=None if row_class is None else tuple(str(c) for c in row_class),
    )


def _markdown_cell(value: Any) -> str:
    # Markdown passes inline HTML through, so text is escaped as in the HTML report.
    return html.escape(fmt(value)).replace("|", "/")


@dataclass(frozen=True)
class Figure:
    """A PNG to embed: the page stays one file, with no request for an image."""

    alt: str
    png: bytes

    @property
    def src(self) -> str:
        return f"data:image/png;base64,{base64.b64encode(self.png).decode()}"


def _figure(png: bytes | None, alt: str) -> Figure | None:
    return None if png is None else Figure(alt, png)


def _test_split(evidence: Evidence) -> SplitEvidence:
    return evidence.splits.get("test") or next(iter(evidence.splits.values()))


def _metrics(evidence: Evidence, *, unlisted: bool) -> pd.DataFrame:
    metrics = pd.DataFrame({n: p.metrics for n, p in evidence.splits.items()})
    ordered = [m for m in METRIC_ORDER if m in metrics.index]
    if unlisted:
        ordered += [m for m in metrics.index if m not in METRIC_ORDER]
    return metrics.loc[ordered].reset_index(names="metric")


def _splits(evidence: Evidence) -> pd.DataFrame:
    return pd.DataFrame([s.__dict__ for s in evidence.split_summary])


def _drift_table(drift: DriftResult) -> Table:
    frame = drift.table()
    row_class = frame["drifted"].map({True: "bad", False: ""}) if "drifted" in frame else None
    return table(frame, left=["feature", "kind", "new_levels"], row_class=row_class)


def _gates(evidence: Evidence) -> Table | None:
    rows = pd.DataFrame(evidence.gates.to_json())
    if not len(rows):
        return None
    rows["passed"] = rows["passed"].map({True: "pass", False: "FAIL"})
    classes = rows["passed"].map({"pass": "", "FAIL": "bad"})
    return table(rows, left=["metric", "split", "op", "passed"], row_class=classes)


def _explainability(evidence: Evidence) -> dict[str, Any]:
    shap_plots = evidence.plots
    checks = evidence.reason_checks
    flagged = evidence.proxy.flagged if evidence.proxy is not None else {}
    first = checks.first.assign(
        feature=[
            f"{f} [proxy for {', '.join(flagged[f])}]" if f in flagged else f
            for f in checks.first["feature"]
        ]
    )
    mono = evidence.monotonicity.table()
    examples = evidence.reason_examples
    return {
        "importance": _figure(shap_plots.get("importance"), "mean |SHAP|"),
        "beeswarm": _figure(shap_plots.get("beeswarm"), "beeswarm"),
        "dependence": [
            Figure(name, png) for name, png in shap_plots.items() if name.startswith("dependence_")
        ],
        "examples": table(
            examples, left=[c for c in examples.columns if c not in {"probability", "score"}]
        ),
        "first": table(first, left=["code", "feature", "texts"]),
        "checks": table(
            pd.DataFrame(
                [
                    ("reason_text_coverage", checks.coverage),
                    ("reason_faithfulness", checks.faithfulness),
                    ("reason_stability", checks.stability),
                    ("declines on test", checks.declines),
                    ("declines without an adverse factor", checks.general),
                ],
                columns=["check", "value"],
            ),
            left=["check"],
        ),
        "uncovered": list(checks.uncovered),
        "monotonicity": table(mono, left=["feature"]) if len(mono) else None,
        "monotonicity_summary": _monotonicity_summary(evidence),
    }


def _monotonicity_summary(evidence: Evidence) -> str:
    check = evidence.monotonicity
    return (
        f"{check.total:,} of {check.checked:,} steps checked moved against the declared "
        f"direction ({check.share:.2%}): {check.rows} rows, each monotone feature moved "
        "alone across a grid of its quantiles with the other features held."
    )


#: Sheet columns written as percentages (a share of rows, a bad rate).
PERCENT_COLUMNS = frozenset({"share", "bad_rate"})
#: Sheet column headers as a credit officer reads them (the CSV keeps the plain names).
HEADERS = {"woe": "WOE", "iv": "IV", "characteristic_iv": "characteristic IV"}


def _percent(value: Any) -> str:
    return "—" if value is None or value != value else f"{float(value):.1%}"


def _sheet_table(frame: pd.DataFrame, cell: Callable[[Any], str]) -> Table:
    """A sheet table as text: per-characteristic rows grouped, shares as percentages.

    A table of bins (with a `characteristic` column) names the characteristic and its
    total IV once, on its first bin, and starts each characteristic with a rule; an
    empty bin (count 0, e.g. no missing values in training) is shown in grey.
    """
    shown = pd.DataFrame(
        {c: [(_percent if c in PERCENT_COLUMNS else cell)(v) for v in frame[c]] for c in frame}
    )
    classes = [""] * len(frame)
    if "characteristic" in frame and "bin" in frame:
        first = (~frame["characteristic"].duplicated()).to_numpy()
        for column in ("characteristic", "characteristic_iv"):
            if column in shown:
                shown[column] = shown[column].where(first, "")
        empty = (frame["count"] == 0).to_numpy() if "count" in frame else np.zeros(len(frame))
        classes = [
            " ".join(c for c, on in (("group", f), ("small", e)) if on)
            for f, e in zip(first, empty, strict=True)
        ]
    text = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    headers = {c: HEADERS.get(c, c.replace("_", " ")) for c in frame.columns}
    return table(
        shown.rename(columns=headers),
        left=[headers[c] for c in text],
        row_class=pd.Series(classes, dtype=object),
        cell=str,
    )


def _sheet(evidence: Evidence, *, cell: Callable[[Any], str] = fmt) -> dict[str, Any] | None:
    """The kind's own sheet (the scorecard's points table), as tables and facts."""
    sheet = evidence.sheet
    if sheet is None:
        return None
    facts = [*sheet.facts, ("probability cut-off", f"{evidence.threshold:.4f}")]
    return {
        "title": sheet.title,
        "facts": table(
            pd.DataFrame(facts, columns=["item", "value"]), left=["item", "value"], cell=cell
        ),
        "tables": {
            name.replace("_", " "): _sheet_table(frame, cell)
            for name, frame in sheet.tables.items()
        },
        "notes": list(sheet.notes),
    }


def _cost(evidence: Evidence) -> dict[str, Any] | None:
    """The cost-based rule: its costs, the expected cost and the curve it was chosen on."""
    test = _test_split(evidence)
    if evidence.costs is None or test.cost_curve is None:
        return None
    return {
        "cost_false_negative": evidence.costs[0],
        "cost_false_positive": evidence.costs[1],
        "expected_cost": fmt(test.metrics.get("expected_cost"), 4),
        "plot": Figure("expected cost by threshold", plots.cost_plot(evidence)),
    }


def _proxies(evidence: Evidence) -> dict[str, Any] | None:
    """The proxy screen: every pair at or over the threshold, and the strongest pairs."""
    proxy = evidence.proxy
    if proxy is None or not len(proxy.table):
        return None
    shown = proxy.table[proxy.table["proxy"]]
    if not len(shown):
        shown = proxy.table.head(5)
    classes = shown["proxy"].map({True: "bad", False: ""})
    return {
        "threshold": proxy.threshold,
        "flagged": sorted(proxy.flagged),
        "table": table(shown, left=["feature", "attribute", "group", "proxy"], row_class=classes),
    }


def _summary_flags(evidence: Evidence) -> list[str]:
    """What the summary warns a reviewer of before any number: texts, proxies, reasons."""
    flags = []
    uncovered = evidence.reason_checks.uncovered
    if evidence.task == "credit_scoring" and uncovered:
        names = ", ".join(uncovered[:8]) + (" …" if len(uncovered) > 8 else "")
        flags.append(
            f"{len(uncovered)} feature(s) that can be a reason have no written reason text and "
            f"would reach applicants as column names: {names} (evaluation.reason_texts)"
        )
    if evidence.proxy is not None and evidence.proxy.flagged:
        flags.append(
            "proxy screen: "
            + "; ".join(f"{f} predicts {', '.join(a)}" for f, a in evidence.proxy.flagged.items())
            + f" (AUC ≥ {evidence.proxy.threshold:g})"
        )
    flags.extend(evidence.notes)
    fairness = _test_split(evidence).fairness
    if fairness is not None and fairness.groups:
        from evaluation.fairness_views import verdicts

        flags.extend(verdicts(fairness, min_ratio=_ratio_line(evidence)))
    if evidence.reason_checks.general:
        flags.append(
            f"{evidence.reason_checks.general} test decline(s) have no adverse factor: the "
            "cut-off declines applicants of below-average risk"
        )
    return flags


def _with_ci(value: float, ci: Any) -> str:
    """ "0.79 (0.71–0.86)": the estimate and its 95% bootstrap interval."""
    text = fmt(value, 3)
    if ci is None or text == "—":
        return text
    return f"{text} ({fmt(ci.low, 2)}–{fmt(ci.high, 2)})"


def _fairness(evidence: Evidence) -> dict[str, Any] | None:
    from evaluation.fairness_views import verdicts

    test = _test_split(evidence)
    fairness = test.fairness
    if fairness is None or not fairness.groups:
        return None
    summary = pd.DataFrame(
        [
            {
                "attribute": a.attribute,
                "selection_rate_ratio": _with_ci(a.selection_rate_ratio, a.selection_rate_ratio_ci),
                "demographic_parity_difference": _with_ci(
                    a.demographic_parity_difference, a.demographic_parity_difference_ci
                ),
                "equalized_odds_difference": _with_ci(
                    a.equalized_odds_difference, a.equalized_odds_difference_ci
                ),
                "lowest": a.lowest_group,
                "highest": a.highest_group,
                "not judged (too few rows, bads or goods)": "; ".join(
                    f"{g}: {a.excluded_reasons.get(g, 'small')}" for g in a.excluded_small
                )
                or "—",
            }
            for a in fairness.attributes
        ]
    )
    groups = fairness.table()
    row_class = groups["small"].map({True: "small", False: ""}) if "small" in groups else None
    conditional = test.conditional
    return {
        "min_group_size": fairness.min_group_size,
        "min_group_bads": fairness.min_group_bads,
        "n_boot": fairness.n_boot,
        "verdicts": list(verdicts(fairness, min_ratio=_ratio_line(evidence))),
        "summary": table(summary, left=list(summary.columns)),
        "plot": _figure(plots.fairness_plot(evidence), "approval by group"),
        "groups": table(groups, left=["attribute", "group"], row_class=row_class),
        "opportunity": None
        if conditional is None
        else table(conditional.opportunity_table(), left=["attribute", "group"]),
        "bands": None if conditional is None else _band_pivot(conditional.table()),
    }


def _ratio_line(evidence: Evidence) -> float:
    """The selection-rate ratio gate's line (the four-fifths rule when none is set)."""
    return next(
        (o.threshold for o in evidence.gates.outcomes if o.metric == "selection_rate_ratio"), 0.8
    )


def _band_pivot(frame: pd.DataFrame) -> Table | None:
    """Observed bad rate by group (rows) and score band (columns): risk at equal scores."""
    if not len(frame):
        return None
    pivot = frame.pivot_table(
        index=["attribute", "group"], columns="band", values="bad_rate", sort=False
    )
    pivot.columns = [f"band {c}" for c in pivot.columns]
    return table(pivot.reset_index(), left=["attribute", "group"])


def _drift(drift: DriftResult | None) -> dict[str, Any] | None:
    if drift is None:
        return None
    return {
        "result": drift,
        "plot": Figure("PSI by feature", plots.psi_plot(drift)),
        "table": _drift_table(drift),
    }


def report_context(evidence: Evidence, lineage: Mapping[str, Any]) -> dict[str, Any]:
    """The names `report.html.j2` reads."""
    test = _test_split(evidence)
    version = lineage.get("model_version", "")
    return {
        "evidence": evidence,
        "title": f"{evidence.model_name}" + (f" version {version}" if version else ""),
        "lineage": [
            (key.replace("_", " "), str(value))
            for key, value in lineage.items()
            if key != "model_version" and value not in (None, "")
        ],
        "headline": [
            (label, fmt(test.metrics.get(key), 3))
            for key, label in (*HEADLINE, *(COST_CARD if evidence.costs else ()))
            if key in test.metrics
        ],
        "cutoff_points": _cutoff_points(evidence),
        "sheet": _sheet(evidence),
        "cost": _cost(evidence),
        "alternatives": _alternatives(evidence),
        "gates": _gates(evidence),
        "splits": table(_splits(evidence), left=["name", "date_min", "date_max"]),
        "metrics": table(_metrics(evidence, unlisted=True), left=["metric"]),
        "bands": table(test.bands),
        "roc_ks": Figure("ROC and KS", plots.roc_ks_plot(evidence)),
        "calibration": Figure("calibration", plots.calibration_plot(evidence)),
        "explain": _explainability(evidence),
        "fairness": _fairness(evidence),
        "proxies": _proxies(evidence),
        "flags": _summary_flags(evidence),
        "drift": _drift(test.drift),
    }


def _alternatives(evidence: Evidence) -> dict[str, Any] | None:
    """The LDA section: the front plot, the front as a table, the statement it supports."""
    search = evidence.alternatives
    if search is None:
        return None
    rows = []
    for i in search.front:
        a = search.alternatives[i]
        rows.append(
            {
                "alternative": a.label,
                "auc": a.auc,
                "selection_rate_ratio": a.selection_rate_ratio,
                "dropped": ", ".join(a.dropped) or "—",
                "chosen": "chosen" if i == search.chosen else "",
                "most_accurate": "most accurate" if i == search.most_accurate else "",
            }
        )
    frame = pd.DataFrame(rows)
    classes = frame["chosen"].map({"chosen": "pick"}).fillna("")
    return {
        "statement": search.statement(),
        "plot": Figure("less discriminatory alternatives", plots.lda_plot(evidence)),
        "front": table(
            frame, left=["alternative", "dropped", "chosen", "most_accurate"], row_class=classes
        ),
        "size": len(search.alternatives),
    }


def _cutoff_points(evidence: Evidence) -> str:
    """The cut-off in points: the sheet's exact integer one, else the PD cut-off's points."""
    if evidence.sheet is not None:
        facts = dict(evidence.sheet.facts)
        if "cut-off" in facts:
            return facts["cut-off"]
    scale = evidence.score_scale
    if scale is None:
        return "—"
    points = float(scale.points(np.array([evidence.threshold]))[0])
    return f"{points:.1f} points: a lower score is {evidence.labels[1]}ed"


def model_card_context(evidence: Evidence, lineage: Mapping[str, Any]) -> dict[str, Any]:
    """The names `model_card.md.j2` reads; its tables are markdown-safe text."""
    test = _test_split(evidence)
    fairness = test.fairness
    return {
        "evidence": evidence,
        "title": f"{evidence.model_name} {lineage.get('model_version', '')}".rstrip(),
        "splits": table(_splits(evidence), cell=_markdown_cell),
        "metrics": table(_metrics(evidence, unlisted=False), cell=_markdown_cell),
        "fairness": fairness if fairness is not None and fairness.groups else None,
        "importance": table(evidence.importance.head(10), cell=_markdown_cell),
        "drift": test.drift,
        "sheet": _sheet(evidence, cell=_markdown_cell),
        "cutoff_points": _cutoff_points(evidence),
        "monotonicity_summary": _monotonicity_summary(evidence),
        "expected_cost": fmt(test.metrics.get("expected_cost"), 4) if evidence.costs else None,
    }


def drift_context(drift: DriftResult, lineage: Mapping[str, Any]) -> dict[str, Any]:
    """The names `drift.html.j2` reads (`creditgov drift --report`)."""
    return {
        "drift": _drift(drift),
        "lineage": [(key.replace("_", " "), str(value)) for key, value in lineage.items()],
    }
