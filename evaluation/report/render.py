"""The jinja2 environment and the three renderings: report HTML, model card, drift page.

Templates live in `templates/` beside this file and ship inside the package (see
`[tool.setuptools.package-data]`), so an installed creditgov renders the same pages as a
checkout. HTML templates (`*.html.j2`) are autoescaped: every value from the evidence or
the caller's lineage is escaped on the way in, and markup is only what the templates
themselves write. The markdown card (`*.md.j2`) is not escaped; its table cells are made
markdown-safe in `context.py`. `StrictUndefined` makes a misspelt name in a template an
error instead of a silently empty cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jinja2

from evaluation.report.context import drift_context, fmt, model_card_context, report_context

if TYPE_CHECKING:
    from evaluation.drift import DriftResult
    from evaluation.evidence import Evidence

__all__ = ["environment", "render_drift_html", "render_html", "render_model_card"]


def environment() -> jinja2.Environment:
    """A fresh environment over the packaged templates, with `fmt` as a filter."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("evaluation.report", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2",), disabled_extensions=("md.j2",), default=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = fmt
    return env


def render_html(evidence: Evidence, context: Mapping[str, Any]) -> str:
    """`report.html`; `context` is the lineage shown under the title (version, run id…)."""
    template = environment().get_template("report.html.j2")
    return template.render(report_context(evidence, context))


def render_model_card(evidence: Evidence, context: Mapping[str, Any]) -> str:
    """`model_card.md`; `context` supplies the model version for the title."""
    template = environment().get_template("model_card.md.j2")
    return template.render(model_card_context(evidence, context))


def render_drift_html(drift: DriftResult, context: Mapping[str, Any]) -> str:
    """`drift.html` for `creditgov drift --report`; `context` is shown as lineage."""
    template = environment().get_template("drift.html.j2")
    return template.render(drift_context(drift, context))
