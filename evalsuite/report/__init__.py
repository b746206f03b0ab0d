"""Reports from result JSON alone (no torch import anywhere in this package).

``build_comparison`` pairs every model with the reference on the same examples and returns the typed
``Comparison`` (``report.model``); ``report.table`` turns it into one table view that the per-format
emitters (``to_md``, ``to_html``, ``to_tex``, ``to_csv``, ``to_text``) lay out; ``write_report`` writes
them with the plots as one folder, atomically. pandas and matplotlib are imported only where a figure is
drawn, so importing this package stays light.
"""

from evalsuite.report.compare import (
    CompareSettings,
    ModelEntry,
    build_comparison,
    build_group_comparison,
    check_comparable,
)
from evalsuite.report.model import Comparison, Delta, MetricRow, Replaces, Value, Verdict
from evalsuite.report.plots import make_plots, save_plots
from evalsuite.report.render import render_csv, render_html, render_latex, render_markdown, render_terminal
from evalsuite.report.summary import format_result
from evalsuite.report.write import load_comparison, write_report

__all__ = [
    "CompareSettings",
    "Comparison",
    "Delta",
    "MetricRow",
    "ModelEntry",
    "Replaces",
    "Value",
    "Verdict",
    "build_comparison",
    "build_group_comparison",
    "check_comparable",
    "format_result",
    "load_comparison",
    "make_plots",
    "render_csv",
    "render_html",
    "render_latex",
    "render_markdown",
    "render_terminal",
    "save_plots",
    "write_report",
]
