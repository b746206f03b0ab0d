"""The regression gate: is a new run worse than its baseline by more than the tolerance?

Semantics (what a nightly job relies on):

- Every (model, metric) of the **baseline** is checked. ``delta = new - old``; the bad direction comes from
  the baseline's ``higher_is_better``. A **regression** is a move in the bad direction by strictly more
  than the tolerance, an **improvement** a move in the good direction by strictly more than the tolerance;
  anything else is **unchanged**. Differences at floating-point rounding level (1e-12 relative) never count,
  so ``abs: 0`` means "exactly equal up to rounding".
- A baseline metric (or whole model) absent from the new run, or whose new value is not finite, is
  **missing** and fails the gate: a check that silently stopped running must not pass as "no regression".
- Metrics only in the new run are listed as **new** and never fail. Improvements are reported, never failed.
- A run in which a model failed (stored as failed, with its reason) is **incomplete**: ``check_run`` fails
  it and names each failed model and why, whatever the baseline says. ``previous`` means the last
  *complete* run before it, and an incomplete run is refused as a baseline.
- A baseline value that is not finite cannot be compared: the row is unchanged, with a note.

Tolerances, per metric, from a table of fnmatch patterns (``"robust/*"``, ``"ood/*/auroc"``, ``"ece"``,
``"*"``) to specs; the first pattern that matches, in the order given, wins; after the user's table come
the built-in defaults: ``{"abs": 0}`` for each catalogue family that carries no CI (the sparsity audit,
``sparsity/density`` ... ``sparsity/macs_sparse``), then ``"*": "noise"``:

- ``{"abs": x}`` (or a bare number, or ``"abs:x"``): a fixed amount in the metric's units.
- ``"noise"`` (or ``{"noise": k}``, ``"noise:k"``): ``k * sqrt(h_old**2 + h_new**2)``, k = 1 by default,
  where ``h = (ci_high - ci_low) / 2`` is the half-width of each run's own 95 % CI (Wilson or bootstrap).
  For two independent estimates the standard error of the difference is the root sum of squares of the
  two standard errors, so this is the half-width of the CI of the difference (under normality). A run
  with no CI contributes 0, noted on the row; with neither, the tolerance is 0.
- Metrics the catalogue gives no CI (the sparsity audit: densities, parameter and MAC counts, all
  lower-is-better) are exact properties of the weights, so they default to ``abs: 0``: any rise in density
  or nonzero count is a regression, any fall an improvement. A user pattern that matches them first (even
  ``"*": "noise"``) takes over, and with no CI noise is 0 anyway.

A row's direction is the one stored with the metric; where none was stored, the catalogue's.
"""

from __future__ import annotations

import fnmatch
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.bench.store import MetricRow, ResultStore, RunInfo
from evalsuite.core.errors import DataError, UsageError
from evalsuite.metrics import catalogue as K

BASELINE_SCHEMA = "evalsuite-baseline"
BASELINE_SCHEMA_VERSION = 1
_REL_EPS = 1e-12

Metrics = dict[str, dict[str, MetricRow]]


@dataclass(frozen=True)
class Tolerance:
    """``kind`` "abs" (``amount`` in metric units) or "noise" (``amount`` = multiplier k of the CI width)."""

    kind: str
    amount: float

    def describe(self) -> str:
        """Short label for reports: 'abs 0.01', 'noise' or 'noise x2'."""
        if self.kind == "abs":
            return f"abs {self.amount:g}"
        return "noise" if self.amount == 1 else f"noise x{self.amount:g}"


ToleranceSpec = Tolerance | str | float | int | Mapping[str, Any]
# exact properties (no CI in the catalogue) must not move at all; everything else within its noise
DEFAULT_TOLERANCES: tuple[tuple[str, Tolerance], ...] = (
    *((f.glob, Tolerance("abs", 0.0)) for f in K.FAMILIES if f.value_ci == "none"),
    ("*", Tolerance("noise", 1.0)),
)


def parse_tolerance(spec: ToleranceSpec) -> Tolerance:
    """A ``Tolerance`` from ``{"abs": 0.01}``, ``"noise"``, ``{"noise": 2}``, ``"abs:0.01"``, ``"noise:2"``
    or a bare number (absolute). UsageError otherwise."""
    if isinstance(spec, Tolerance):
        return spec
    kind: str
    raw: Any
    if isinstance(spec, bool):
        raise UsageError(f"bad tolerance {spec!r}")
    if isinstance(spec, int | float):
        kind, raw = "abs", spec
    elif isinstance(spec, str):
        text = spec.strip()
        if text == "noise":
            kind, raw = "noise", 1.0
        elif ":" in text:
            kind, raw = (s.strip() for s in text.split(":", 1))
        else:
            kind, raw = "abs", text
    elif isinstance(spec, Mapping) and len(spec) == 1:
        ((kind, raw),) = spec.items()
    else:
        raise UsageError(f"bad tolerance {spec!r}: use {{'abs': x}}, 'noise' or {{'noise': k}}")
    if kind not in ("abs", "noise"):
        raise UsageError(f"bad tolerance {spec!r}: kind must be 'abs' or 'noise'")
    try:
        amount = float(raw)
    except (TypeError, ValueError):
        raise UsageError(f"bad tolerance {spec!r}: {raw!r} is not a number") from None
    if not math.isfinite(amount) or amount < 0:
        raise UsageError(f"bad tolerance {spec!r}: must be a finite number >= 0")
    return Tolerance(kind, amount)


class ToleranceTable:
    """Ordered (pattern, Tolerance) pairs; the first fnmatch match wins, then the built-in defaults."""

    def __init__(
        self, table: Mapping[str, ToleranceSpec] | Iterable[tuple[str, ToleranceSpec]] | None = None
    ) -> None:
        items = table.items() if isinstance(table, Mapping) else (table or [])
        self.rules: list[tuple[str, Tolerance]] = []
        for pattern, spec in items:
            if not isinstance(pattern, str) or not pattern:
                raise UsageError(f"bad tolerance pattern {pattern!r}")
            self.rules.append((pattern, parse_tolerance(spec)))
        self.rules += list(DEFAULT_TOLERANCES)

    @classmethod
    def from_args(cls, args: Iterable[str]) -> ToleranceTable:
        """From CLI strings ``PATTERN=SPEC`` (e.g. ``robust/*=abs:0.02``, ``ece=noise:2``), in order."""
        pairs = []
        for a in args:
            if "=" not in a:
                raise UsageError(f"bad tolerance {a!r}: use PATTERN=SPEC, e.g. 'robust/*=abs:0.02'")
            pattern, spec = a.split("=", 1)
            pairs.append((pattern.strip(), spec))
        return cls(pairs)

    def lookup(self, metric: str) -> tuple[str, Tolerance]:
        """(the pattern that matched, its Tolerance)."""
        for pattern, tol in self.rules:
            if fnmatch.fnmatchcase(metric, pattern):
                return pattern, tol
        raise AssertionError("the '*' default matches every name")


def _half_width(row: MetricRow) -> float | None:
    lo, hi = row.ci_low, row.ci_high
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return abs(hi - lo) / 2


def tolerance_for(tol: Tolerance, old: MetricRow, new: MetricRow) -> tuple[float, str]:
    """The tolerance amount for one comparison and a note (empty unless a CI was missing)."""
    if tol.kind == "abs":
        return tol.amount, ""
    h_old, h_new = _half_width(old), _half_width(new)
    missing = [w for w, h in (("baseline", h_old), ("new run", h_new)) if h is None]
    note = f"no CI in {' and '.join(missing)}: noise counts it as 0" if missing else ""
    return tol.amount * math.hypot(h_old or 0.0, h_new or 0.0), note


@dataclass(frozen=True)
class GateRow:
    """One (model, metric) verdict: regression | improvement | unchanged | missing | new."""

    model: str
    metric: str
    old: float | None
    new: float | None
    delta: float | None
    tolerance: float | None
    tolerance_kind: str
    verdict: str
    higher_is_better: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The row as a JSON-safe dict; non-finite old/new/delta/tolerance become None."""
        d = dict(self.__dict__)
        for k in ("old", "new", "delta", "tolerance"):
            v = d[k]
            d[k] = v if v is None or math.isfinite(v) else None
        return d


_ORDER = ("regression", "missing", "improvement", "new", "unchanged")


@dataclass
class GateReport:
    """All verdicts of one gate check; ``ok`` when nothing regressed and nothing went missing."""

    rows: list[GateRow]
    baseline_label: str = "baseline"
    new_label: str = "new"
    notes: list[str] = field(default_factory=list)

    def _of(self, verdict: str) -> list[GateRow]:
        return [r for r in self.rows if r.verdict == verdict]

    @property
    def regressions(self) -> list[GateRow]:
        """Rows whose verdict is 'regression'."""
        return self._of("regression")

    @property
    def improvements(self) -> list[GateRow]:
        """Rows whose verdict is 'improvement'."""
        return self._of("improvement")

    @property
    def unchanged(self) -> list[GateRow]:
        """Rows whose verdict is 'unchanged'."""
        return self._of("unchanged")

    @property
    def missing(self) -> list[GateRow]:
        """Rows whose verdict is 'missing' (in the baseline, absent from the new run)."""
        return self._of("missing")

    @property
    def new(self) -> list[GateRow]:
        """Rows whose verdict is 'new' (absent from the baseline)."""
        return self._of("new")

    @property
    def ok(self) -> bool:
        """True when no row regressed and no row went missing."""
        return not self.regressions and not self.missing

    def summary(self) -> str:
        """One line: 'gate FAILED: 1 regression, 0 missing; 2 improvements, 30 unchanged, 1 new'."""
        head = "gate passed" if self.ok else "gate FAILED"
        c = {v: len(self._of(v)) for v in _ORDER}
        return (
            f"{head} ({self.new_label} vs {self.baseline_label}): {c['regression']} regression(s), "
            f"{c['missing']} missing; {c['improvement']} improvement(s), {c['unchanged']} unchanged, "
            f"{c['new']} new"
        )

    def format(self, show_unchanged: bool = True) -> str:
        """A plain-text table (worst verdicts first) and the summary line."""
        rows = sorted(
            (r for r in self.rows if show_unchanged or r.verdict != "unchanged"),
            key=lambda r: _ORDER.index(r.verdict),
        )
        header = ("model", "metric", "", "old", "new", "delta", "tolerance", "verdict")
        table = [header]
        for r in rows:
            tol = "" if r.tolerance is None else f"±{_fmt(r.tolerance)} ({r.tolerance_kind})"
            verdict = r.verdict.upper() if r.verdict in ("regression", "missing") else r.verdict
            if r.note:
                verdict += f"  [{r.note}]"
            arrow = "↑" if r.higher_is_better else "↓"
            table.append(
                (r.model, r.metric, arrow, _fmt(r.old), _fmt(r.new), _fmt(r.delta, sign=True), tol, verdict)
            )
        widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(row[:-1], widths)) + "  " + row[-1] for row in table]
        lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * len("verdict"))
        return "\n".join([*lines, "", *self.notes, self.summary()]).rstrip() + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The report as a JSON-ready dict: ok, baseline and new labels, summary and every row."""
        return {
            "ok": self.ok,
            "baseline": self.baseline_label,
            "new": self.new_label,
            "summary": self.summary(),
            "rows": [r.to_dict() for r in self.rows],
        }


def _fmt(x: float | None, sign: bool = False) -> str:
    if x is None:
        return "-"
    if not math.isfinite(x):
        return "nan"
    if x == 0:
        return "0"
    if float(x).is_integer() and abs(x) >= 1e4:  # counts (params, MACs): every digit matters
        return f"{int(x):+d}" if sign else f"{int(x):d}"
    return f"{x:+.5g}" if sign else f"{x:.5g}"


def _direction(metric: str, row: MetricRow) -> bool:
    """The stored direction, else the catalogue's."""
    return K.higher_is_better(metric) if row.higher_is_better is None else bool(row.higher_is_better)


def _finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def check(
    new: Metrics,
    baseline: Metrics,
    tolerances: ToleranceTable
    | Mapping[str, ToleranceSpec]
    | Iterable[tuple[str, ToleranceSpec]]
    | None = None,
    baseline_label: str = "baseline",
    new_label: str = "new",
    failed: Mapping[str, str] | None = None,
) -> GateReport:
    """Compare ``new`` against ``baseline`` ({model: {metric: MetricRow}}); see the module docstring.
    ``failed`` ({model: reason}) names the new run's failed models in their rows' notes."""
    failed = failed or {}
    table = tolerances if isinstance(tolerances, ToleranceTable) else ToleranceTable(tolerances)
    rows: list[GateRow] = []
    for model, base_metrics in baseline.items():
        new_metrics = new.get(model)
        for metric, old in base_metrics.items():
            hib = _direction(metric, old)
            _, tol = table.lookup(metric)
            cur = (new_metrics or {}).get(metric)
            if cur is not None and not _finite(old.value) and not _finite(cur.value):
                # undefined before and after (e.g. an AUROC with no OOD examples): nothing changed
                note = "not finite in both runs: not compared"
                rows.append(
                    GateRow(model, metric, old.value, cur.value, None, None, tol.kind, "unchanged", hib, note)
                )
                continue
            if cur is None or not _finite(cur.value):
                note = (
                    f"model failed in new run: {failed[model]}"
                    if new_metrics is None and model in failed
                    else "model absent from new run"
                    if new_metrics is None
                    else "metric absent from new run"
                    if cur is None
                    else "new value is not finite"
                )
                rows.append(
                    GateRow(model, metric, old.value, None, None, None, tol.kind, "missing", hib, note)
                )
                continue
            amount, note = tolerance_for(tol, old, cur)
            if not _finite(old.value):
                note = "baseline value is not finite: not compared"
                rows.append(
                    GateRow(
                        model, metric, old.value, cur.value, None, amount, tol.kind, "unchanged", hib, note
                    )
                )
                continue
            delta = cur.value - old.value
            good = delta if hib else -delta
            slack = _REL_EPS * max(1.0, abs(old.value), abs(cur.value))
            if -good > amount + slack:
                verdict = "regression"
            elif good > amount + slack:
                verdict = "improvement"
            else:
                verdict = "unchanged"
            rows.append(
                GateRow(model, metric, old.value, cur.value, delta, amount, tol.kind, verdict, hib, note)
            )
    for model, new_metrics in new.items():
        for metric, cur in new_metrics.items():
            if metric not in baseline.get(model, {}):
                hib = _direction(metric, cur)
                rows.append(GateRow(model, metric, None, cur.value, None, None, "", "new", hib))
    return GateReport(rows, baseline_label=baseline_label, new_label=new_label)


@dataclass
class RunCheck:
    """``bench check``'s verdict on one run: its failed models, and the gate against a baseline (None when
    there is no baseline to compare with and the run already failed for being incomplete)."""

    suite: str
    run: RunInfo
    failures: dict[str, str]
    report: GateReport | None
    baseline_label: str | None

    @property
    def ok(self) -> bool:
        """True when no model failed and the gate report exists and passed."""
        return not self.failures and self.report is not None and self.report.ok

    def format(self) -> str:
        """Multi-line text: a header, the gate report, and one line per failed model."""
        head = f"{self.suite}: run {self.run.id} ({self.run.started})"
        lines = [head + (f" against {self.baseline_label}" if self.baseline_label else "")]
        if self.report is not None:
            lines.append(self.report.format().rstrip("\n"))
        if self.failures:
            lines += [f"FAILED model {m!r}: {r}" for m, r in self.failures.items()]
            lines.append(
                f"gate FAILED: run {self.run.id} is incomplete, {len(self.failures)} model(s) failed: "
                + ", ".join(self.failures)
            )
        return "\n".join(lines) + "\n"


def check_run(
    store: ResultStore,
    suite: str,
    tolerances: ToleranceTable | Mapping[str, ToleranceSpec] | None = None,
    run: int | str = "latest",
    baseline: str = "previous",
) -> RunCheck:
    """Check run ``run`` of ``suite`` against ``baseline``: "previous" (the last complete run before it), a
    run reference (id, "tag:NAME") or a baseline JSON path. UsageError for a baseline that cannot serve."""
    new = store.get_run(run, suite)
    failures = store.failures(new.id)
    if baseline.endswith(".json"):
        base_suite, base_metrics = load_baseline(baseline)
        if base_suite != suite:
            raise UsageError(f"baseline {baseline} is for suite {base_suite!r}, not {suite!r}")
        label = baseline
    else:
        if baseline == "previous":
            base = store.previous(suite, new.id, complete=True)
            if base is None:
                if failures:  # the run fails anyway; say why rather than that a baseline is missing
                    return RunCheck(suite, new, failures, None, None)
                raise UsageError(f"run {new.id} of {suite} has no complete run before it to check against")
        else:
            base = store.get_run(baseline, suite)
            if not base.complete:
                names = ", ".join(store.failures(base.id))
                raise UsageError(
                    f"baseline run {base.id} is incomplete ({names} failed); choose a complete run"
                )
        base_metrics = store.metrics(base.id)
        label = f"run {base.id} ({base.started}{', tag ' + base.tag if base.tag else ''})"
    report = check(store.metrics(new.id), base_metrics, tolerances, failed=failures)
    return RunCheck(suite, new, failures, report, label)


# -- baseline files -----------------------------------------------------------------------------------------


def _num(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def baseline_to_json(suite: str, run_info: RunInfo | None, metrics: Metrics) -> str:
    """A baseline file (schema ``evalsuite-baseline`` v1): the suite, where the run came from, its metrics.

    Commit it beside the training code; ``load_baseline`` reads it back. Non-finite values become null.
    """
    run = None
    if run_info is not None:
        run = {
            "id": run_info.id,
            "started": run_info.started,
            "finished": run_info.finished,
            "git_revision": run_info.git_revision,
            "machine": run_info.machine,
            "tag": run_info.tag,
            "note": run_info.note,
            "versions": run_info.versions,
        }
    doc = {
        "schema": BASELINE_SCHEMA,
        "schema_version": BASELINE_SCHEMA_VERSION,
        "suite": suite,
        "run": run,
        "metrics": {
            model: {
                name: {
                    "value": _num(r.value),
                    "ci_low": _num(r.ci_low),
                    "ci_high": _num(r.ci_high),
                    "n": r.n,
                    "higher_is_better": _direction(name, r),
                }
                for name, r in ms.items()
            }
            for model, ms in metrics.items()
        },
    }
    return json.dumps(doc, indent=1, allow_nan=False) + "\n"


def load_baseline(path: str | Path) -> tuple[str, Metrics]:
    """(suite, {model: {metric: MetricRow}}) from a baseline file; DataError if it is not one we read."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{p}: no such baseline file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{p}: not a valid baseline file ({e})") from None
    if not isinstance(doc, dict) or doc.get("schema") != BASELINE_SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise DataError(f"{p}: not an evalsuite baseline (schema {got!r}, expected {BASELINE_SCHEMA!r})")
    if doc.get("schema_version") != BASELINE_SCHEMA_VERSION:
        raise DataError(
            f"{p}: baseline schema version {doc.get('schema_version')!r}, this evalsuite reads "
            f"{BASELINE_SCHEMA_VERSION}"
        )
    suite, raw = doc.get("suite"), doc.get("metrics")
    if not isinstance(suite, str) or not isinstance(raw, dict):
        raise DataError(f"{p}: baseline lacks 'suite' or 'metrics'")
    out: Metrics = {}
    try:
        for model, ms in raw.items():
            out[model] = {}
            for name, r in ms.items():
                value = r.get("value")
                out[model][name] = MetricRow(
                    value=math.nan if value is None else float(value),
                    ci_low=_num(r.get("ci_low")),
                    ci_high=_num(r.get("ci_high")),
                    n=None if r.get("n") is None else int(r["n"]),
                    higher_is_better=(
                        K.higher_is_better(name)
                        if r.get("higher_is_better") is None
                        else bool(r["higher_is_better"])
                    ),
                )
    except (AttributeError, TypeError, ValueError) as e:
        raise DataError(f"{p}: malformed baseline metrics ({e})") from None
    return suite, out
