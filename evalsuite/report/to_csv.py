"""metrics.csv: the table view's long-format records, full precision, no pandas."""

from __future__ import annotations

import csv
import io

from evalsuite.report.table import CSV_COLUMNS, ReportView


def _field(x: object) -> object:
    if x is None:
        return ""
    if isinstance(x, float):
        return repr(x)  # full precision, as read back by float()
    return x


def emit(v: ReportView) -> str:
    """metrics.csv text: a header of CSV_COLUMNS, then one line per record."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for r in v.records:
        w.writerow([_field(r.get(c)) for c in CSV_COLUMNS])
    return buf.getvalue()
