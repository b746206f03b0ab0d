"""Reports from result JSON alone (no torch import anywhere in this package).

``build_comparison`` pairs every model with the reference on the same examples (CIs, paired tests,
Holm); the renderers turn that Comparison into markdown, HTML, LaTeX, CSV and terminal text, and
``write_report`` writes them with the plots as one folder, atomically.
"""

from evalsuite.report.compare import (
    CompareSettings,
    ModelEntry,
    build_comparison,
    build_group_comparison,
    check_comparable,
)
from evalsuite.report.plots import make_plots, save_plots
from evalsuite.report.render import render_csv, render_html, render_latex, render_markdown, render_terminal
from evalsuite.report.summary import format_result
from evalsuite.report.write import load_comparison, write_report

__all__ = [
    "CompareSettings",
    "ModelEntry",
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
