"""The reviewer's report: `report.html`, `evidence.json` and `model_card.md`.

All three render one `Evidence` object. The HTML is a single self-contained file —
plots embedded as base64 PNG, styles inline, no script and no external URL — so it
opens offline, can be archived with the approval, and reads the same in ten years.
It shows ids and aggregates only, never raw applicant rows.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluation.evidence import Evidence

__all__ = ["ReportFiles", "write_drift_report", "write_report"]

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
METRIC_ORDER = (
    "auc", "gini", "ks", "brier", "log_loss", "ece", "average_precision", "recall_at_1pct_fpr",
    "precision_at_top_1pct", "approval_rate", "bad_rate_approved", "precision", "recall",
    "true_positives", "false_positives", "true_negatives", "false_negatives", "psi_max", "score_psi",
    "selection_rate_ratio", "demographic_parity_difference", "equalized_odds_difference",
    "monotonicity_violations",
)  # fmt: skip

#: An empty inline icon: without it a browser fetches /favicon.ico, the one request the
#: page would otherwise make.
FAVICON = '<link rel="icon" href="data:,">'

STYLE = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:36px 0 8px;border-bottom:2px solid #e3e6eb;padding-bottom:6px}
h3{font-size:15px;margin:20px 0 6px;color:#394150}
.meta{color:#5b6472;font-size:13px}.meta code{font-size:12px}
.badge{display:inline-block;padding:3px 10px;border-radius:12px;font-weight:600;font-size:13px;margin-left:8px}
.pass{background:#dff3e4;color:#17692f}.fail{background:#fbe1df;color:#a1261b}.warn{background:#fdf0d5;color:#8a5a00}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:10px;margin:16px 0}
.card{border:1px solid #e3e6eb;border-radius:8px;padding:10px 12px}.card .v{font-size:22px;font-weight:600}.card .l{font-size:12px;color:#5b6472}
table{border-collapse:collapse;font-size:13px;margin:8px 0 12px;width:auto}
th,td{border-bottom:1px solid #e7e9ee;padding:4px 10px;text-align:right}th{background:#f0f2f5;font-weight:600}
td.l,th.l{text-align:left}tr.small td{color:#8a919c;font-style:italic}tr.bad td{background:#fdf1f0}
.grid2{display:grid;grid-template-columns:1fr 1fr;gap:12px}.grid3{display:grid;grid-template-columns:1fr 1fr 1fr;gap:10px}img{max-width:100%;border:1px solid #eef0f3;border-radius:4px}
nav{font-size:13px;margin:8px 0 0}nav a{margin-right:12px;color:#2b5bd7;text-decoration:none}
p.note{font-size:13px;color:#5b6472;max-width:900px}
"""


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    model_card: Path


def write_report(evidence: Evidence, out_dir: Path, context: Mapping[str, Any]) -> ReportFiles:
    """Write the three files into `out_dir`; `context` adds lineage (version, run id, trainer…)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    document = {"context": dict(context), **evidence.to_json()}
    paths = ReportFiles(
        out_dir / "report.html", out_dir / "evidence.json", out_dir / "model_card.md"
    )
    paths.json.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
    paths.html.write_text(render_html(evidence, context), encoding="utf-8")
    paths.model_card.write_text(render_model_card(evidence, context), encoding="utf-8")
    return paths


# ----------------------------------------------------------------------------- HTML


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any, digits: int = 4) -> str:
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
    return _e(value)


def _table(
    frame: pd.DataFrame, *, left: Iterable[str] = (), row_class: pd.Series | None = None
) -> str:
    left = set(left)
    head = "".join(f'<th class="{"l" if c in left else ""}">{_e(c)}</th>' for c in frame.columns)
    body = []
    # Column by column, so an integer column stays integer (iterrows would upcast the row).
    columns = [frame[c].tolist() for c in frame.columns]
    for i in range(len(frame)):
        cls = "" if row_class is None else f' class="{row_class.iloc[i]}"'
        cells = "".join(
            f'<td class="{"l" if c in left else ""}">{_fmt(columns[j][i])}</td>'
            for j, c in enumerate(frame.columns)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _figure_png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _roc_ks_plot(evidence: Evidence) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (roc_ax, ks_ax) = plt.subplots(1, 2, figsize=(9.5, 3.8))
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
    return _figure_png(fig)


def _calibration_plot(evidence: Evidence) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.8))
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
    return _figure_png(fig)


def _fairness_plot(evidence: Evidence) -> bytes | None:
    test = evidence.splits.get("test")
    if test is None or test.fairness is None or not test.fairness.groups:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in test.fairness.groups if "×" not in g.attribute]
    fig, ax = plt.subplots(figsize=(9.5, 0.32 * len(groups) + 1.2))
    labels = [f"{g.attribute} = {g.group}" + (" (small)" if g.small else "") for g in groups]
    colors = ["#c9ced6" if g.small else "#4c78a8" for g in groups]
    ax.barh(labels, [g.approval_rate for g in groups], color=colors)
    best = max((g.approval_rate for g in groups if not g.small), default=0)
    ax.axvline(0.8 * best, color="#a1261b", ls="--", lw=1, label="4/5 of the highest group")
    ax.invert_yaxis()
    ax.set(xlabel="approval rate on test", title="Approval rate by group")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return _figure_png(fig)


def _drift_plot(evidence: Evidence) -> bytes | None:
    test = evidence.splits.get("test")
    if test is None or test.drift is None:
        return None
    return _psi_plot(test.drift)


def _psi_plot(drift: Any) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    psi = pd.Series(dict(drift.psi), dtype="float64").sort_values()
    fig, ax = plt.subplots(figsize=(9.5, 0.28 * len(psi) + 1.2))
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
    return _figure_png(fig)


def render_html(evidence: Evidence, context: Mapping[str, Any]) -> str:
    status = evidence.validation_status
    badge = (
        f'<span class="badge {"pass" if status == "passed" else "fail"}">validation {status}</span>'
    )
    test = evidence.splits.get("test") or next(iter(evidence.splits.values()))
    version = context.get("model_version", "")
    title = f"{evidence.model_name}" + (f" version {version}" if version else "")
    meta = " · ".join(
        f"{_e(k.replace('_', ' '))}: <code>{_e(v)}</code>"
        for k, v in context.items()
        if k != "model_version" and v not in (None, "")
    )
    sections: list[str] = []

    cards = "".join(
        f'<div class="card"><div class="v">{_fmt(test.metrics.get(key), 3)}</div><div class="l">{label} (test)</div></div>'
        for key, label in HEADLINE
        if key in test.metrics
    )
    sections.append(
        f'<section id="summary"><h2>Summary</h2>'
        f'<p class="note">A {_e(evidence.model_type)} model for {_e(evidence.task.replace("_", " "))}: '
        f"it {_e(evidence.labels[1])}s when the calibrated probability is at least "
        f"{evidence.threshold:.4f} (rule: {_e(evidence.decision_rule)}), otherwise it {_e(evidence.labels[0])}s. "
        f"{len(evidence.features)} features.</p><div class='cards'>{cards}</div></section>"
    )

    gate_rows = pd.DataFrame(evidence.gates.to_json())
    if len(gate_rows):
        gate_rows["passed"] = gate_rows["passed"].map({True: "pass", False: "FAIL"})
        classes = gate_rows["passed"].map({"pass": "", "FAIL": "bad"})
        gate_html = _table(gate_rows, left=["metric", "split", "op", "passed"], row_class=classes)
    else:
        gate_html = "<p class='note'>No gates are configured.</p>"
    sections.append(f'<section id="gates"><h2>Gates {badge}</h2>{gate_html}</section>')

    split_frame = pd.DataFrame([s.__dict__ for s in evidence.split_summary])
    sections.append(
        f'<section id="data"><h2>Data and splits</h2>{_table(split_frame, left=["name", "date_min", "date_max"])}'
        f"<p class='note'>Train fits the model, valid stops boosting early, tunes and calibrates "
        f"and sets the cut-off; test is held out (out of time where configured).</p></section>"
    )

    metrics = pd.DataFrame({n: p.metrics for n, p in evidence.splits.items()})
    ordered = [m for m in METRIC_ORDER if m in metrics.index] + [
        m for m in metrics.index if m not in METRIC_ORDER
    ]
    metrics = metrics.loc[ordered].reset_index(names="metric")
    sections.append(
        f'<section id="performance"><h2>Performance</h2>{_table(metrics, left=["metric"])}'
        f"<h3>Score bands on test (band 1 = lowest risk)</h3>{_table(test.bands)}"
        f"<div class='grid2'><div>{_img(_roc_ks_plot(evidence), 'ROC and KS')}</div>"
        f"<div>{_img(_calibration_plot(evidence), 'calibration')}</div></div></section>"
    )

    plots = evidence.plots
    dependence = "".join(
        _img(png, name) for name, png in plots.items() if name.startswith("dependence_")
    )
    texts = pd.DataFrame(
        {
            "feature": list(evidence.reason_texts),
            "reason text": list(evidence.reason_texts.values()),
        }
    )
    mono = pd.DataFrame(
        {"feature": list(evidence.monotonicity), "violations": list(evidence.monotonicity.values())}
    )
    explain = [
        '<section id="explainability"><h2>Explainability</h2>',
        "<p class='note'>Contributions are exact TreeSHAP values from LightGBM (log-odds; positive "
        "pushes toward decline) or, for scorecards, each characteristic's points below its best bin.</p>",
        "<div class='grid2'>",
        f"<div>{_img(plots['importance'], 'mean |SHAP|')}</div>" if "importance" in plots else "",
        f"<div>{_img(plots['beeswarm'], 'beeswarm')}</div>" if "beeswarm" in plots else "",
        "</div>",
        f"<h3>Dependence of the top features</h3><div class='grid3'>{dependence}</div>"
        if dependence
        else "",
        "<h3>Reason codes: declined test rows across the declined range (ids only)</h3>",
        _table(
            evidence.reason_examples,
            left=[c for c in evidence.reason_examples.columns if c not in {"probability", "score"}],
        ),
        f"<h3>Reason texts</h3>{_table(texts, left=['feature', 'reason text'])}",
    ]
    if len(mono):
        explain.append(
            "<h3>Monotone constraints: SHAP moving against the declared direction</h3>"
            + _table(mono, left=["feature"])
        )
    explain.append("</section>")
    sections.append("".join(explain))

    fairness = test.fairness
    if fairness is not None and fairness.groups:
        summary = pd.DataFrame(
            [
                {
                    "attribute": a.attribute,
                    "selection_rate_ratio": a.selection_rate_ratio,
                    "demographic_parity_difference": a.demographic_parity_difference,
                    "equalized_odds_difference": a.equalized_odds_difference,
                    "lowest": a.lowest_group,
                    "highest": a.highest_group,
                    "groups_excluded_as_small": ", ".join(a.excluded_small) or "—",
                }
                for a in fairness.attributes
            ]
        )
        groups = fairness.table()
        row_class = groups["small"].map({True: "small", False: ""}) if "small" in groups else None
        plot = _fairness_plot(evidence)
        sections.append(
            f'<section id="fairness"><h2>Fairness on test</h2>{_table(summary, left=["attribute", "lowest", "highest", "groups_excluded_as_small"])}'
            f"<p class='note'>Selection-rate ratio is the lowest group's approval rate over the highest "
            f"(the four-fifths screen). Groups under {fairness.min_group_size} rows are shown in grey "
            f"and left out of the summary numbers.</p>"
            f"{_img(plot, 'approval by group') if plot else ''}"
            f"<h3>By group</h3>{_table(groups, left=['attribute', 'group'], row_class=row_class)}</section>"
        )
    else:
        sections.append(
            '<section id="fairness"><h2>Fairness</h2><p class="note">No protected attributes are '
            "configured (data.protected), so no group comparison was made.</p></section>"
        )

    drift = test.drift
    if drift is not None:
        table = drift.table()
        row_class = table["drifted"].map({True: "bad", False: ""}) if "drifted" in table else None
        plot = _drift_plot(evidence)
        score_psi = "—" if drift.score_psi is None else f"{drift.score_psi:.4f}"
        sections.append(
            f'<section id="drift"><h2>Drift: test against the training population</h2>'
            f"<p class='note'>PSI below 0.1 is stable, 0.1–0.25 a moderate shift, above "
            f"{drift.threshold:g} a significant one. Score PSI: {score_psi}.</p>"
            f"{_img(plot, 'PSI by feature') if plot else ''}{_table(table, left=['feature', 'kind', 'new_levels'], row_class=row_class)}</section>"
        )

    nav = "".join(
        f'<a href="#{anchor}">{label}</a>'
        for anchor, label in (
            ("summary", "Summary"), ("gates", "Gates"), ("data", "Data"), ("performance", "Performance"),
            ("explainability", "Explainability"), ("fairness", "Fairness"), ("drift", "Drift"),
        )
    )  # fmt: skip
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)} — model validation report</title>{FAVICON}<style>{STYLE}</style></head>"
        f"<body><main><div class='meta'>creditgov model validation report</div>"
        f"<h1>{_e(title)} {badge}</h1><div class='meta'>{meta}</div><nav>{nav}</nav>"
        f"{''.join(sections)}</main></body></html>"
    )


# ----------------------------------------------------------------------------- model card


def _md_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = [
        "| " + " | ".join(_fmt(v).replace("|", "/") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([head, rule, *rows])


def render_model_card(evidence: Evidence, context: Mapping[str, Any]) -> str:
    test = evidence.splits.get("test") or next(iter(evidence.splits.values()))
    use = (
        "Scores card transactions for fraud review; a flagged transaction goes to a human reviewer."
        if evidence.task == "fraud_detection"
        else "Estimates the probability that a credit applicant defaults within 12 months, "
        "for approve/decline decisions together with the lender's policy rules."
    )
    metrics = pd.DataFrame({n: p.metrics for n, p in evidence.splits.items()})
    keep = [m for m in METRIC_ORDER if m in metrics.index]
    metrics = metrics.loc[keep].reset_index(names="metric")
    lines = [
        f"# Model card: {evidence.model_name} {context.get('model_version', '')}".rstrip(),
        "",
        f"Validation status: **{evidence.validation_status}**.",
        "",
        "## Intended use",
        use,
        f"Decision: {evidence.labels[1]} when probability >= {evidence.threshold:.4f} "
        f"(rule: {evidence.decision_rule}).",
        "",
        "## Data",
        _md_table(pd.DataFrame([s.__dict__ for s in evidence.split_summary])),
        "",
        f"Features ({len(evidence.features)}): {', '.join(evidence.features)}.",
        "",
        "## Metrics",
        _md_table(metrics),
        "",
        "## Fairness",
    ]
    if test.fairness is not None and test.fairness.groups:
        f = test.fairness
        lines += [
            f"Selection-rate ratio {_fmt(f.selection_rate_ratio)}, demographic parity difference "
            f"{_fmt(f.demographic_parity_difference)}, equalized odds difference "
            f"{_fmt(f.equalized_odds_difference)} (test; groups under {f.min_group_size} rows excluded).",
        ]
    else:
        lines.append("No protected attributes configured.")
    lines += ["", "## Explainability", _md_table(evidence.importance.head(10)), ""]
    if evidence.monotonicity:
        lines.append(
            "Monotonicity violations: "
            + ", ".join(f"{k} {v}" for k, v in evidence.monotonicity.items())
            + "."
        )
    lines += ["", "## Drift"]
    if test.drift is not None:
        drifted = ", ".join(test.drift.drifted) or "none"
        lines.append(
            f"Max feature PSI on test {test.drift.psi_max:.4f}; drifted features: {drifted}."
        )
    lines += ["", "## Gates", *(f"- {o.describe()}" for o in evidence.gates.outcomes), ""]
    lines += [
        "## Limitations",
        "- Measured on the splits above; a population unlike the training data needs re-validation "
        "(watch `creditgov drift`).",
        "- Reason codes explain the model, not the applicant's circumstances.",
        "- Protected attributes are used only to measure fairness, never as features; proxies for them "
        "may remain among the features.",
        "",
    ]
    return "\n".join(lines)


def write_drift_report(drift: Any, out_dir: Path, context: Mapping[str, Any]) -> Path:
    """`creditgov drift --report DIR`: one self-contained page and the JSON beside it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "drift.json").write_text(
        json.dumps({"context": dict(context), **drift.to_json()}, indent=2, default=str),
        encoding="utf-8",
    )
    table = drift.table()
    row_class = table["drifted"].map({True: "bad", False: ""}) if "drifted" in table else None
    drifted = ", ".join(drift.drifted) or "none"
    badge = f'<span class="badge {"fail" if drift.drifted else "pass"}">{"drift" if drift.drifted else "stable"}</span>'
    meta = " · ".join(
        f"{_e(k.replace('_', ' '))}: <code>{_e(v)}</code>" for k, v in context.items()
    )
    score_psi = "—" if drift.score_psi is None else f"{drift.score_psi:.4f}"
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Drift check</title>{FAVICON}<style>{STYLE}</style></head><body><main>"
        f"<div class='meta'>creditgov drift check</div><h1>Population stability {badge}</h1>"
        f"<div class='meta'>{meta}</div>"
        f"<p class='note'>{drift.n_rows:,} rows compared with the model's training population. "
        f"Features over PSI {drift.threshold:g}: {_e(drifted)}. Score PSI: {score_psi}.</p>"
        f"{_img(_psi_plot(drift), 'PSI by feature')}"
        f"{_table(table, left=['feature', 'kind', 'new_levels'], row_class=row_class)}</main></body></html>"
    )
    path = out_dir / "drift.html"
    path.write_text(page, encoding="utf-8")
    return path
