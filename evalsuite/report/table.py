"""One table view of a :class:`~evalsuite.report.model.Comparison`, built once and fed to every emitter.

The view decides what a report shows and in which order (headline first, then models, then one table per
metric group, OOD grouped per set with the primary score first and the other scores folded) and holds
plain text cells tagged with what they are (a verdict, a best value, a number). The emitters in
``to_md``, ``to_html``, ``to_tex``, ``to_text`` and ``to_csv`` only escape and lay out; nothing reads a
verdict back from text.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard

from evalsuite.metrics import catalogue as K
from evalsuite.report.model import (
    Comparison,
    Delta,
    Family,
    Headline,
    MetricRow,
    ModelInfo,
    Replaces,
    Value,
    Verdict,
)

GROUP_TITLES = {
    "clean": "Clean",
    "calibration": "Calibration",
    "ood": "OOD detection",
    "robust": "Adversarial robustness",
    "corruption": "Corruption shift",
    "sparsity": "Sparsity",
}
VERDICT_WORDS = {
    Verdict.BETTER: "▲ better",
    Verdict.WORSE: "▼ worse",
    Verdict.SAME: "n.s.",
    Verdict.NOT_TESTED: "not tested",
}
CORRECTION_NAMES = {"holm": "Holm", "bh": "BH", "none": "unadjusted"}


@dataclass(frozen=True)
class Cell:
    """Text of one cell; ``sub``: its secondary part (an interval); the tags say how to style it."""

    text: str = ""
    sub: str = ""
    num: bool = False
    best: bool = False
    code: bool = False
    arrow: str = ""  # "↑" / "↓" after a metric name
    verdict: Verdict | Replaces | None = None


@dataclass(frozen=True)
class Column:
    """A table column: its header cell and the model (and delta block) it belongs to."""

    header: Cell
    block: str = ""  # the compared model whose delta columns these are ("" for label and value columns)
    model: str = ""  # the model whose values the column holds


@dataclass(frozen=True)
class Table:
    """A format-neutral table: titled columns, rows of cells, a legend and folded sub-tables."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[tuple[Cell, ...], ...]
    legend: str = ""
    folded: tuple[Table, ...] = ()  # shown collapsed where the format can (other OOD scores)
    level: int = 2


@dataclass(frozen=True)
class ReportView:
    """Everything a report format shows, already worded and formatted, plus the CSV records."""

    title: str
    reference: str
    compared: tuple[str, ...]
    facts: tuple[tuple[str, str], ...]
    warnings: tuple[tuple[str, str], ...]
    headline_lines: tuple[tuple[str, Replaces, str], ...]  # (model, answer, detail)
    headline: Table | None
    models: Table
    sections: tuple[Table, ...]
    seed_members: tuple[tuple[str, tuple[str, ...]], ...]
    seeds: Table | None
    seed_tests: tuple[str, ...]
    failed: tuple[tuple[str, str], ...]
    notes: tuple[tuple[str | None, str], ...]
    records: tuple[dict[str, Any], ...] = field(default=())
    alpha: float = 0.05


# ------------------------------------------------------------------------------------------ formatting


def finite(x: Any) -> TypeGuard[float]:
    """True when ``x`` is a finite int or float (not a bool)."""
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def fmt_num(x: Any, digits: int = 4, signed: bool = False) -> str:
    """Fixed decimals; large whole numbers (parameter and MAC counts) with thousands separators."""
    if not finite(x):
        return "n/a"
    x = float(x)
    sign = "+" if signed else ""
    if x.is_integer() and abs(x) >= 1000:
        return f"{int(x):{sign},}"
    return f"{x:{sign}.{digits}f}"


def fmt_p(p: Any) -> str:
    """A p-value to three decimals, ``<0.001`` below that, ``—`` if not finite."""
    if not finite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def fmt_count(n: Any) -> str:
    """An integer with thousands separators, ``?`` if not finite."""
    return f"{int(n):,}" if finite(n) else "?"


def _symmetric(v: float, lo: float, hi: float) -> bool:
    # Wilson and bootstrap intervals can be lopsided near 0 or 1; then "±" would misstate a bound.
    return lo <= v <= hi and abs((hi - v) - (v - lo)) <= 0.1 * (hi - lo) + 1e-12


def fmt_value_ci(v: Value | None, digits: int = 4) -> tuple[str, str]:
    """(value, uncertainty): '± half-width' for a symmetric CI, '[lo, hi]' otherwise, '' if none."""
    if v is None or not finite(v.value):
        return "n/a", ""
    x = float(v.value)
    lo, hi = v.ci_low, v.ci_high
    if not (finite(lo) and finite(hi)):
        return fmt_num(x, digits), ""
    assert lo is not None and hi is not None
    if _symmetric(x, lo, hi):
        return fmt_num(x, digits), f"± {fmt_num((hi - lo) / 2, digits)}"
    return fmt_num(x, digits), f"[{fmt_num(lo, digits)}, {fmt_num(hi, digits)}]"


def fmt_delta(d: Delta | None, digits: int = 4) -> str:
    """A signed delta with its signed ``[lo, hi]`` CI when finite; ``—`` if none."""
    if d is None or not finite(d.delta):
        return "—"
    s = fmt_num(d.delta, digits, signed=True)
    if finite(d.ci_low) and finite(d.ci_high):
        s += f" [{fmt_num(d.ci_low, digits, signed=True)}, {fmt_num(d.ci_high, digits, signed=True)}]"
    return s


def one_line(s: Any) -> str:
    """``s`` as one line with whitespace collapsed; None reads ``unknown error``."""
    return " ".join(str(s if s is not None else "unknown error").split())


def plain(v: Any) -> str:
    """A setting or convention value on one line, as words rather than JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "; ".join(f"{str(k).replace('_', ' ')}: {plain(x)}" for k, x in v.items()) or "none"
    if isinstance(v, list | tuple):
        return ", ".join(plain(x) for x in v) or "none"
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def scheme_text(m: ModelInfo) -> str:
    """The sparsity scheme in words; a model without one (a foreign checkpoint) says what is known."""
    scheme, dens = m.sparsity.get("scheme"), m.sparsity.get("density")
    if scheme:
        return str(scheme)
    if not m.ok and not m.sparsity:
        return "—"
    if finite(dens) and dens >= 1.0:
        return "dense (no masks)"
    if finite(dens):
        return "unknown (zeros in the weights)"
    return "unknown"


def group_title(group: str) -> str:
    """The display title of a metric group."""
    return GROUP_TITLES.get(group, group.replace("_", " ").capitalize())


def arrow(row: MetricRow) -> str:
    """``↑`` if higher is better for the row, else ``↓``."""
    return "↑" if row.higher_is_better else "↓"


def best_models(row: MetricRow, models: Sequence[str], digits: int = 4) -> set[str]:
    """Models holding the best shown value of a row (ties as displayed count); sparsity rows have none."""
    if row.group == "sparsity":
        return set()
    vals = {m: round(float(v.value), digits) for m in models if (v := row.values.get(m)) and finite(v.value)}
    if len(vals) < 2:
        return set()
    best = max(vals.values()) if row.higher_is_better else min(vals.values())
    return {m for m, v in vals.items() if v == best}


def verdict_cell(row: MetricRow, d: Delta | None) -> Cell:
    """The verdict of a delta, in words; an untested delta says why (descriptive, zero variance, ...)."""
    if d is None:
        return Cell("—")
    if d.verdict is Verdict.NOT_TESTED:
        why = "descriptive" if row.family is Family.DESCRIPTIVE else d.note
        return Cell(
            why if why == "descriptive" else f"not tested ({why})" if why else "not tested", verdict=d.verdict
        )
    text = VERDICT_WORDS[d.verdict]
    return Cell(f"{text}; {d.note}" if d.note else text, verdict=d.verdict)


def family_text(row: MetricRow) -> str:
    """The row's family in words, with its correction unless descriptive."""
    if row.family is Family.DESCRIPTIVE:
        return "descriptive"
    return f"{row.family.value} ({CORRECTION_NAMES.get(row.correction, row.correction)})"


# ------------------------------------------------------------------------------------------ legend


def ci_text(comp: Comparison) -> str:
    """The CI level as text, e.g. ``95% CI``."""
    return f"{comp.settings.ci_level * 100:g}% CI"


def value_legend(comp: Comparison) -> str:
    """What '±' and '[lo, hi]' mean in the value columns of a metric table (one meaning per table)."""
    ci = ci_text(comp)
    if comp.is_seed_comparison:
        return (
            f"Values: mean over seeds; ± = half-width of the {ci} of the mean (t over seeds, clipped to "
            "the metric's range); [lo, hi] where that interval is asymmetric."
        )
    return (
        f"Values: estimate; ± = half-width of the {ci} (Wilson for accuracies, basic bootstrap for NLL and "
        "Brier, two-sample bootstrap for OOD metrics, the bias-aware bound for the ECE family); [lo, hi] "
        "where the interval is asymmetric (rates stay within [0, 1])."
    )


CALIBRATION_LEGEND = (
    "ECE family: the interval is the plug-in value ± the bootstrap bound of sum over bins of |binned "
    "residual noise| (triangle inequality), so it covers the population calibration error (over these bins) "
    "at the stated level whether the model is calibrated or not; 'debiased' is the Kumar et al. (2019) "
    "debiased ECE, the plug-in minus its estimated upward bias (may be below 0 for a calibrated model)."
)
SEED_LEGEND = "mean ± sd = mean and sample standard deviation (ddof 1) over seeds; (n) = number of seeds."


def _alpha_text(a: float) -> str:
    return f"α = {a:g}"


def statistics_line(comp: Comparison) -> str:
    """The statistics settings on one line: CI, alpha, corrections, resamples, permutations and seed."""
    s = comp.settings
    parts = [ci_text(comp), _alpha_text(s.alpha)]
    if s.correction == "none":
        parts.append("no multiple-testing correction")
    else:
        parts.append(
            f"{CORRECTION_NAMES[s.correction]} over the primary family, "
            f"{CORRECTION_NAMES[s.secondary_correction]} over the secondary family, per model"
        )
    parts += [f"{s.n_boot} bootstrap resamples", f"permutations {s.n_perm} to {s.max_perm}", f"seed {s.seed}"]
    return ", ".join(parts)


def legend_lines(comp: Comparison) -> list[str]:
    """The legend lines under the metric tables: values, deltas, families and verdicts."""
    ref = comp.reference
    s = comp.settings
    primary = ", ".join(s.primary) or "none"
    secondary = any(r.family is Family.SECONDARY for r in comp.metrics)
    how = "given with --primary" if s.primary_override else "from the catalogue"
    lines = [
        value_legend(comp) + " Exact bounds are in metrics.csv.",
        f"Δ = model − {ref} on the same "
        + ("seeds (see the tests below)" if comp.is_seed_comparison else "examples (paired)")
        + ", with its uncorrected CI at level 1 − α, from the same test as p: it excludes 0 exactly when "
        "the unadjusted p < α. ↑ / ↓: higher / lower is better.",
        f"Primary family ({how}): {primary}; p corrected with {CORRECTION_NAMES[s.correction]}"
        + (" over that family." if secondary else " over every tested metric.")
        + (
            " Every other tested metric is secondary, p corrected with "
            + CORRECTION_NAMES[s.secondary_correction]
            + (" (false discovery rate)." if s.secondary_correction == "bh" else ".")
            if secondary
            else ""
        )
        + " Descriptive metrics (MCE, the sparsity audit) are reported and never tested.",
        f"Verdict at {_alpha_text(s.alpha)} on the corrected p, from the model's side: better, worse, or "
        "n.s. (no significant difference; not evidence of equivalence: the headline's non-inferiority test "
        "answers that). Bold: best value among successful models.",
    ]
    if any(r.group == "calibration" for r in comp.metrics):
        lines.append(CALIBRATION_LEGEND)
    return lines


def definitions(names: Iterable[str]) -> list[tuple[str, str]]:
    """(pattern, definition) from the catalogue for every family present; FPR95 brings its other reading."""
    names = list(names)
    out = K.legend(names)
    keys = {ref.family.key for n in names if (ref := K.find(n)) is not None}
    if "ood_fpr95" in keys and "ood_fpr95_ood" not in keys:
        fam = K.family("ood_fpr95_ood")
        out.append((fam.pattern, fam.definition + " (not computed in this report)"))
    # placeholders in capitals: braces would read as JSON, angle brackets as HTML in Markdown
    return [(re.sub(r"\{(\w+)\}", lambda m: m.group(1).upper(), p), d) for p, d in out]


# ------------------------------------------------------------------------------------------ building


def _value_cell(row: MetricRow, model: str, best: set[str]) -> Cell:
    v = row.values.get(model)
    text, sub = fmt_value_ci(v)
    if v is not None and finite(v.debiased):
        sub = f"{sub} (debiased {fmt_num(v.debiased)})".strip()
    return Cell(text, sub, num=True, best=model in best)


def _metric_columns(comp: Comparison, shown: Sequence[str]) -> tuple[Column, ...]:
    models = comp.ok_models()
    cols = [Column(Cell("Metric")), Column(Cell("family"))]
    cols += [Column(Cell(m, code=True), model=m) for m in models]
    for o in shown:
        cols += [
            Column(Cell(f"Δ {o} − {comp.reference}"), block=o),
            Column(Cell("p (adj.)"), block=o),
            Column(Cell("verdict"), block=o),
        ]
    return tuple(cols)


def _metric_rows(
    comp: Comparison, rows: Sequence[MetricRow], shown: Sequence[str]
) -> tuple[tuple[Cell, ...], ...]:
    models = comp.ok_models()
    out = []
    for row in rows:
        best = best_models(row, models)
        cells = [Cell(row.name, code=True, arrow=arrow(row)), Cell(family_text(row))]
        cells += [_value_cell(row, m, best) for m in models]
        for o in shown:
            d = row.deltas.get(o)
            v = verdict_cell(row, d)
            p = fmt_p(
                d.p_adjusted if d is not None and d.p_adjusted is not None else (d.p_value if d else None)
            )
            cells += [
                Cell(fmt_delta(d), num=True, verdict=v.verdict),
                Cell(p, num=True, verdict=v.verdict),
                v,
            ]
        out.append(tuple(cells))
    return tuple(out)


def _table(comp: Comparison, key: str, title: str, rows: Sequence[MetricRow], level: int = 2) -> Table:
    shown = [o for o in comp.others() if any(o in r.deltas for r in rows)]
    has_ci = any(finite(v.ci_low) for r in rows for v in r.values.values())
    return Table(
        key,
        title,
        _metric_columns(comp, shown),
        _metric_rows(comp, rows, shown),
        legend=value_legend(comp) if has_ci else "",
        level=level,
    )


def _ood_tables(comp: Comparison, rows: Sequence[MetricRow]) -> list[Table]:
    """One table per OOD set: the primary score's rows, the other scores folded beneath."""
    sets: dict[str, list[MetricRow]] = {}
    for r in rows:
        sets.setdefault(r.ood_set or "other", []).append(r)
    out = []
    for name, srows in sets.items():
        scores = list(dict.fromkeys(r.ood_score for r in srows))
        lead = K.PRIMARY_OOD_SCORE if K.PRIMARY_OOD_SCORE in scores else scores[0]
        first = [r for r in srows if r.ood_score == lead]
        rest = [r for r in srows if r.ood_score != lead]
        others = ", ".join(str(x) for x in scores if x != lead)
        folded = (_table(comp, f"ood-{name}-other", f"other scores: {others}", rest, 3),) if rest else ()
        t = _table(comp, f"ood-{name}", f"OOD detection: {name} ({lead} score)", first)
        out.append(Table(t.key, t.title, t.columns, t.rows, t.legend, folded, t.level))
    return out


def _sections(comp: Comparison) -> list[Table]:
    groups: dict[str, list[MetricRow]] = {}
    for r in comp.metrics:
        groups.setdefault(r.group or "other", []).append(r)
    order = [g for g in K.GROUP_ORDER if g in groups] + [g for g in groups if g not in K.GROUP_ORDER]
    out: list[Table] = []
    for g in order:
        if g == "ood":
            out += _ood_tables(comp, groups[g])
        else:
            out.append(_table(comp, g, group_title(g), groups[g]))
    return out


def _headline(comp: Comparison) -> tuple[tuple[tuple[str, Replaces, str], ...], Table | None]:
    if not comp.headlines:
        return (), None
    lines = []
    rows = []
    for h in comp.headlines:
        lines.append((h.model, h.verdict, _headline_detail(comp, h)))
        for m in h.metrics:
            hib = K.higher_is_better(m.metric)
            # the bound on the gain, back in the metric's own direction (an upper bound for lower-is-better)
            bound = None if m.lower is None else (m.lower if hib else -m.lower)
            delta = None if m.delta is None else (m.delta if hib else -m.delta)
            rows.append(
                (
                    Cell(h.model, code=True),
                    Cell(m.metric, code=True, arrow="↑" if hib else "↓"),
                    Cell(fmt_num(delta, signed=True), num=True),
                    Cell(
                        ("≥ " if hib else "≤ ") + fmt_num(bound, signed=True) if bound is not None else "—",
                        num=True,
                    ),
                    Cell(fmt_num(m.margin), num=True),
                    Cell(fmt_num(m.smallest_margin) if m.smallest_margin is not None else "—", num=True),
                    Cell(m.verdict.value, verdict=m.verdict),
                )
            )
    cols = ("Model", "Primary metric", "Δ", "one-sided bound of Δ", "margin", "smallest margin", "answer")
    return tuple(lines), Table(
        "headline",
        "Can it replace the reference?",
        tuple(Column(Cell(c)) for c in cols),
        tuple(rows),
        legend=HEADLINE_LEGEND.format(alpha=comp.settings.alpha, ref=comp.reference),
    )


HEADLINE_LEGEND = (
    "Non-inferiority per primary metric, one-sided at α = {alpha:g}: 'replaces it' when the one-sided bound "
    "of Δ = model − {ref} shows it worse by less than the margin, 'worse' when the bound the other way shows "
    "it worse by more than the margin, else 'inconclusive at this N'. Smallest margin: the smallest margin "
    "at which the data would declare 'replaces it'. Overall 'replaces it' only when every primary metric "
    "does (an intersection-union test: no correction needed); 'worse' when any is worse. Margins default to "
    "the catalogue's (accuracy 0.01, NLL 0.02, ECE 0.01, AUROC 0.01, robust accuracy 0.01); set them with "
    "--margin."
)


def _headline_detail(comp: Comparison, h: Headline) -> str:
    counts = {v: sum(1 for m in h.metrics if m.verdict is v) for v in Replaces}
    parts = [f"{counts[v]} {v.value}" for v in Replaces if counts[v]]
    return (
        f"{len(h.metrics)} primary metrics, {h.basis}: " + ", ".join(parts)
        if h.metrics
        else "no primary metric"
    )


def _models_table(comp: Comparison) -> Table:
    rows = []
    for m in comp.models:
        dens = m.sparsity.get("density")
        sha = str(m.sha256 or "")[:12]
        rows.append(
            (
                Cell(m.name, code=True),
                Cell("ok" if m.ok else "FAILED", verdict=None if m.ok else Verdict.WORSE),
                Cell(str(m.arch or "—")),
                Cell(scheme_text(m)),
                Cell(f"{dens:.4g}" if finite(dens) else "—", num=True),
                Cell(str(m.source or "—"), code=True),
                Cell(sha or "—", code=bool(sha)),
            )
        )
    cols = ("Model", "Status", "Arch", "Scheme", "Density", "Source", "sha256")
    return Table("models", "Models", tuple(Column(Cell(c)) for c in cols), tuple(rows))


def _seed_table(comp: Comparison) -> Table | None:
    rows = [r for r in comp.metrics if r.seed_level]
    if not rows:
        return None
    names: list[str] = []
    for r in rows:
        names += [g for g in r.seed_level if g not in names]
    body = []
    for r in rows:
        cells = [Cell(r.name, code=True, arrow=arrow(r))]
        for g in names:
            st = r.seed_level.get(g)
            if st is None or not finite(st.mean):
                cells.append(Cell("n/a", num=True))
                continue
            sd = f" ± {fmt_num(st.std)}" if finite(st.std) else ""
            cells.append(Cell(f"{fmt_num(st.mean)}{sd} ({st.n})", num=True))
        body.append(tuple(cells))
    cols = (Column(Cell("Metric")), *tuple(Column(Cell(f"{g} mean ± sd (n)")) for g in names))
    return Table("seeds", "Across seeds", cols, tuple(body), legend=SEED_LEGEND)


def _seed_tests(comp: Comparison) -> tuple[str, ...]:
    out: list[str] = []
    for r in comp.metrics:
        for g, d in r.deltas.items():
            line = f"{g} vs {comp.reference}: {d.test}"
            if d.test and line not in out:
                out.append(line)
    return tuple(out)


def _provenance_lines(prov: Any) -> list[str]:
    """One short line per input: version, git revision, date, device (the rest stays in the JSON)."""

    def short(p: Any) -> str:
        if not isinstance(p, dict):
            return plain(p)
        parts = []
        ver = (p.get("versions") or {}).get("evalsuite") if isinstance(p.get("versions"), dict) else None
        if ver:
            parts.append(f"evalsuite {ver}")
        if p.get("git_revision"):
            parts.append(f"git {str(p['git_revision'])[:12]}")
        parts += [str(p[k]) for k in ("date", "device") if p.get(k)]
        return ", ".join(parts) or "n/a"

    inputs = prov.get("inputs") if isinstance(prov, dict) else None
    if isinstance(inputs, dict):
        return [f"{name}: {short(p)}" for name, p in inputs.items()]
    return [short(prov)]


def _notes(comp: Comparison) -> list[tuple[str | None, str]]:
    notes: list[tuple[str | None, str]] = [(None, line) for line in legend_lines(comp)]
    if comp.is_seed_comparison:
        notes.append((None, "Across seeds: " + SEED_LEGEND))
    notes += [(f"definition: {p}", d) for p, d in definitions(r.name for r in comp.metrics)]
    notes += [(f"test ({k})", plain(v)) for k, v in comp.settings.tests.items()]
    for k, v in comp.conventions.items():
        # A nested convention (the statistics glossary) becomes one sentence per entry, not JSON.
        if isinstance(v, dict):
            notes += [(f"{k}: {str(sk).replace('_', ' ')}", plain(sv)) for sk, sv in v.items()]
        else:
            notes.append((str(k), plain(v)))
    if comp.provenance:
        notes += [("provenance", line) for line in _provenance_lines(comp.provenance)]
    return notes


def _data_parts(comp: Comparison) -> tuple[str, str]:
    idd = comp.data.get("id") or {}
    id_text = f"{idd.get('spec', '?')} (n = {fmt_count(idd.get('n'))})" if idd else "n/a"
    ood = (
        ", ".join(f"{o.get('name')} (n = {fmt_count(o.get('n'))})" for o in comp.data.get("ood") or [])
        or "none"
    )
    return id_text, ood


def records(comp: Comparison) -> tuple[dict[str, Any], ...]:
    """Long format: one record per (ok model, metric) with a value; delta fields empty for the reference."""
    out = []
    for row in comp.metrics:
        for m in comp.ok_models():
            v = row.values.get(m)
            if v is None:
                continue
            d = row.deltas.get(m)
            out.append(
                {
                    "model": m,
                    "metric": row.name,
                    "group": row.group,
                    "family": row.family.value,
                    "correction": row.correction,
                    "higher_is_better": row.higher_is_better,
                    "value": v.value,
                    "ci_low": v.ci_low,
                    "ci_high": v.ci_high,
                    "n": v.n,
                    "ci_method": v.ci_method,
                    "debiased": v.debiased,
                    "delta": d.delta if d else None,
                    "delta_ci_low": d.ci_low if d else None,
                    "delta_ci_high": d.ci_high if d else None,
                    "p_value": d.p_value if d else None,
                    "p_adjusted": d.p_adjusted if d else None,
                    "test": d.test if d else None,
                    "verdict": d.verdict.value if d else None,
                    "note": d.note if d else None,
                }
            )
    return tuple(out)


CSV_COLUMNS = (
    "model",
    "metric",
    "group",
    "family",
    "correction",
    "higher_is_better",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "ci_method",
    "debiased",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "p_adjusted",
    "test",
    "verdict",
    "note",
)


def build_view(comp: Comparison) -> ReportView:
    """Build the format-neutral report view of a comparison."""
    others = comp.others()
    id_text, ood_text = _data_parts(comp)
    lines, head = _headline(comp)
    warns = tuple((m.name, one_line(w)) for m in comp.models for w in m.warnings if str(w).strip())
    return ReportView(
        title=f"Comparison: {', '.join(others) or 'no model'} vs {comp.reference}",
        reference=comp.reference,
        compared=tuple(others),
        facts=(
            ("Reference", comp.reference),
            ("ID data", id_text),
            ("OOD data", ood_text),
            ("Statistics", statistics_line(comp)),
        ),
        warnings=warns,
        headline_lines=lines,
        headline=head,
        models=_models_table(comp),
        sections=tuple(_sections(comp)),
        seed_members=tuple((g, tuple(m)) for g, m in (comp.seed_groups or {}).items()),
        seeds=_seed_table(comp),
        seed_tests=_seed_tests(comp) if comp.is_seed_comparison else (),
        failed=tuple((m.name, one_line(m.error)) for m in comp.failed()),
        notes=tuple(_notes(comp)),
        records=records(comp),
        alpha=comp.settings.alpha,
    )
