"""The reviewer's report: `report.html`, `evidence.json` and `model_card.md`, and `drift.html`.

All of them render one `Evidence` (or, for the drift page, one `DriftResult`). The HTML is
a single self-contained file — plots embedded as base64 PNG, styles inline, no script and
no external URL — so it opens offline, can be archived with the approval, and reads the
same in ten years. It shows ids and aggregates only, never raw applicant rows. The
package is split by what a change touches: `templates/` the wording and layout,
`context.py` the numbers and tables the templates read, `plots.py` the figures,
`render.py` the jinja2 environment, `files.py` the files written.
"""

from evaluation.report.files import ReportFiles, write_drift_report, write_report

__all__ = ["ReportFiles", "write_drift_report", "write_report"]
