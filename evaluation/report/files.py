"""Writing the reviewer's files: `report.html`, `evidence.json`, `model_card.md`, `drift.html`.

This is the package's I/O edge and the only part callers use: the job and `creditgov
evaluate` call `write_report`, `creditgov drift --report` calls `write_drift_report`.
Each JSON file holds the caller's lineage `context` beside the evidence it rendered, so
the page and the JSON archived with an approval come from the same object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evaluation.report.render import render_drift_html, render_html, render_model_card

if TYPE_CHECKING:
    from evaluation.drift import DriftResult
    from evaluation.evidence import Evidence

__all__ = ["ReportFiles", "write_drift_report", "write_report"]


@dataclass(frozen=True)
class ReportFiles:
    html: Path
    json: Path
    model_card: Path
    #: The model sheet's tables as CSV (the scorecard's `points_table.csv` …).
    tables: tuple[Path, ...] = ()


def _write_json(path: Path, context: Mapping[str, Any], body: Mapping[str, Any]) -> None:
    document = {"context": dict(context), **body}
    path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")


def write_report(evidence: Evidence, out_dir: Path, context: Mapping[str, Any]) -> ReportFiles:
    """Write the three files (and the sheet's CSVs) into `out_dir`; `context` adds lineage."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sheet_tables = {} if evidence.sheet is None else dict(evidence.sheet.tables)
    paths = ReportFiles(
        out_dir / "report.html",
        out_dir / "evidence.json",
        out_dir / "model_card.md",
        tuple(out_dir / f"{name}.csv" for name in sheet_tables),
    )
    for path, frame in zip(paths.tables, sheet_tables.values(), strict=True):
        path.write_text(frame.to_csv(index=False), encoding="utf-8")
    _write_json(paths.json, context, evidence.to_json())
    paths.html.write_text(render_html(evidence, context), encoding="utf-8")
    paths.model_card.write_text(render_model_card(evidence, context), encoding="utf-8")
    return paths


def write_drift_report(drift: DriftResult, out_dir: Path, context: Mapping[str, Any]) -> Path:
    """`creditgov drift --report DIR`: one self-contained page and the JSON beside it."""
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_json(out_dir / "drift.json", context, drift.to_json())
    path = out_dir / "drift.html"
    path.write_text(render_drift_html(drift, context), encoding="utf-8")
    return path
