"""Reports from result JSON alone (no torch import anywhere in this package)."""

from evalsuite.report.summary import format_result

__all__ = ["format_result"]
