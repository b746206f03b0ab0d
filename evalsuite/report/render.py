"""Render a Comparison as Markdown, HTML, LaTeX, CSV or terminal text.

Each ``render_*`` builds the one table view (``report.table.build_view``) and hands it to its format's
emitter (``to_md``, ``to_html``, ``to_tex``, ``to_csv``, ``to_text``). A Comparison's JSON form (either
schema version) is accepted too. Pure string building: no torch, no files, no network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalsuite.report import to_csv, to_html, to_md, to_tex, to_text
from evalsuite.report.model import Comparison, as_comparison
from evalsuite.report.table import ReportView, build_view

AnyComparison = Comparison | Mapping[str, Any]


def view(comp: AnyComparison) -> ReportView:
    """The table view of a comparison (a Comparison or its JSON mapping)."""
    return build_view(as_comparison(comp))


def render_markdown(comp: AnyComparison) -> str:
    """GitHub-flavoured Markdown: headline, models, one table per metric section, failures and notes."""
    return to_md.emit(view(comp))


def render_html(comp: AnyComparison, images: dict[str, bytes] | None = None) -> str:
    """One self-contained page (inline CSS, PNG plots as data: URIs, no script, no external request)."""
    return to_html.emit(view(comp), images)


def render_latex(comp: AnyComparison) -> str:
    """Booktabs tables (headline and metric sections), split when there are many models."""
    return to_tex.emit(view(comp))


def render_csv(comp: AnyComparison) -> str:
    """Long format: one row per (ok model, metric)."""
    return to_csv.emit(view(comp))


def render_terminal(comp: AnyComparison) -> str:
    """Plain aligned text: headline, one line per metric, Δ with a verdict per compared model."""
    return to_text.emit(view(comp))


__all__ = ["render_csv", "render_html", "render_latex", "render_markdown", "render_terminal", "view"]
