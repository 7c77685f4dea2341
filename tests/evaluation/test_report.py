"""Pins the report package's rendering rules: formatting, escaping, self-containment, shipping.

The whole report is rendered from a trained model in tests/e2e; these checks need only a
hand-made `DriftResult`, so they run in a second.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pandas as pd

from evaluation.drift import DriftResult
from evaluation.report import write_drift_report
from evaluation.report.context import fmt, table

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "evaluation" / "report" / "templates"


def _drift() -> DriftResult:
    return DriftResult(
        psi={"income": 0.4, "region": 0.02},
        ks={"income": 0.2},
        score_psi=None,
        new_levels={"region": {"<Atlantis>": 3}},
        missing={"income": (0.0, 0.1), "region": (0.0, 0.0)},
        psi_max=0.4,
        threshold=0.25,
        drifted=("income",),
        n_rows=1234,
    )


def test_values_read_as_a_reviewer_expects() -> None:
    assert [fmt(None), fmt(float("nan")), fmt(True), fmt(1234), fmt(3.0), fmt(0.5)] == [
        "—", "—", "yes", "1,234", "3", "0.5000",
    ]  # fmt: skip
    assert fmt(0.12345, 3) == "0.123"


def test_a_table_keeps_integer_columns_integer_and_marks_text_columns() -> None:
    frame = pd.DataFrame({"feature": ["a", "b"], "count": [1000, 2], "share": [0.5, 0.25]})
    shown = table(frame, left=["feature"])
    assert shown.column_classes == ("l", "", "")
    assert shown.rows == (("a", "1,000", "0.5000"), ("b", "2", "0.2500"))
    assert shown.row_classes is None


def test_drift_page_escapes_lineage_and_requests_nothing(tmp_path: Path) -> None:
    page = write_drift_report(_drift(), tmp_path, {"data": "<b>o'neil & co</b>"}).read_text()
    assert "<b>" not in page and "&lt;b&gt;o&#39;neil &amp; co&lt;/b&gt;" in page
    assert "1,234 rows" in page and "Features over PSI 0.25: income." in page
    assert "Score PSI: —." in page and '<tr class="bad">' in page
    links = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert links and all(link.startswith("data:") for link in links), links
    assert "<script" not in page and "url(" not in page


def test_every_template_ships_in_the_package() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["evaluation.report"]
    shipped = {p for pattern in globs for p in (REPO / "evaluation" / "report").glob(pattern)}
    assert shipped == set(TEMPLATES.iterdir())
