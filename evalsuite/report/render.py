"""Render a Comparison (the plain JSON-ready dict from ``report.compare``) as Markdown, LaTeX, CSV, HTML
and a terminal table. Pure string building from the dict: no torch, no files, no network.

Every renderer reads the same fields and shows the same things: each model's value with its CI, and for
each non-reference model the paired difference ``model - reference`` with its CI, the Holm-adjusted
p-value and a verdict (better / worse / n.s., always from the point of view of that model, so "better"
already accounts for the metric's direction).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable
from typing import Any

import pandas as pd

Comparison = dict[str, Any]

GROUP_ORDER = ("clean", "calibration", "ood", "robust", "sparsity")
GROUP_TITLES = {
    "clean": "Clean",
    "calibration": "Calibration",
    "ood": "OOD detection",
    "robust": "Adversarial robustness",
    "sparsity": "Sparsity",
}
_MARK_MD = {
    "better": "▲ better",
    "worse": "▼ worse",
    "same": "n.s.",
    "identical": "= identical",
    "untested": "not tested (zero variance)",
    "none": "—",
}
_MARK_TXT = {
    "better": "better",
    "worse": "WORSE",
    "same": "n.s.",
    "identical": "identical",
    "untested": "not tested",
    "none": "",
}

_SAME_WORDS = (
    "no significant",
    "not significant",
    "non-significant",
    "inconclusive",
    "n.s.",
    "no difference",
)


# ---------------------------------------------------------------- reading the comparison


def ok_models(comp: Comparison) -> list[str]:
    """Names of models whose evaluation succeeded, reference first, then in the comparison's order."""
    names = [m["name"] for m in comp.get("models", []) if m.get("status", "ok") == "ok"]
    ref = comp.get("reference")
    return ([ref] if ref in names else []) + [n for n in names if n != ref]


def failed_models(comp: Comparison) -> list[dict[str, Any]]:
    return [m for m in comp.get("models", []) if m.get("status", "ok") != "ok"]


def other_models(comp: Comparison) -> list[str]:
    """The ok models compared against the reference."""
    return [n for n in ok_models(comp) if n != comp.get("reference")]


def grouped_rows(comp: Comparison) -> list[tuple[str, list[dict[str, Any]]]]:
    """Metric rows by group: known groups in a fixed order, unknown ones after, rows in display order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in comp.get("metrics", []):
        groups.setdefault(row.get("group") or "other", []).append(row)
    order = [g for g in GROUP_ORDER if g in groups] + [g for g in groups if g not in GROUP_ORDER]
    return [(g, groups[g]) for g in order]


def _compared(rows: list[dict[str, Any]], others: list[str]) -> list[str]:
    """Models that get Δ columns in a table: none where no row has a difference (sparsity)."""
    return [o for o in others if any(o in (row.get("deltas") or {}) for row in rows)]


def group_title(group: str) -> str:
    return GROUP_TITLES.get(group, group.replace("_", " ").capitalize())


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _alpha(comp: Comparison) -> float:
    a = (comp.get("settings") or {}).get("alpha")
    return float(a) if _finite(a) else 0.05


def verdict_kind(delta: dict[str, Any] | None, higher_is_better: bool, alpha: float = 0.05) -> str:
    """'better' | 'worse' | 'same' | 'identical' | 'untested' | 'none' for the compared model.

    'identical' and 'untested' come from seed groups with zero variance, where a t-test has nothing to say.

    The builder's verdict text wins when it says so plainly; otherwise the sign of the delta and the
    Holm-adjusted p-value (raw p if no Holm) decide, so a renderer never disagrees with the numbers.
    """
    if not delta:
        return "none"
    text = str(delta.get("verdict") or "").lower()
    if text.startswith("identical"):
        return "identical"
    if text.startswith("not tested"):
        return "untested"
    if text:
        if any(w in text for w in _SAME_WORDS):
            return "same"
        if "worse" in text:
            return "worse"
        if "better" in text:
            return "better"
        if "higher" in text or "lower" in text:
            return "better" if ("higher" in text) == higher_is_better else "worse"
    p = delta.get("p_holm", delta.get("p_value"))
    d = delta.get("delta")
    if not (_finite(p) and _finite(d)):
        return "none"
    if p >= alpha or d == 0:
        return "same"
    return "better" if (d > 0) == higher_is_better else "worse"


def verdict_text(delta: dict[str, Any] | None, kind: str, marks: dict[str, str]) -> str:
    """The verdict cell; an untested delta says why (zero variance, too few seeds) instead of a dash."""
    if kind == "untested":
        text = str((delta or {}).get("verdict") or "not tested")
        return text if marks is not _MARK_TXT else "not tested"
    return marks[kind]


def best_models(row: dict[str, Any], models: list[str], digits: int = 4) -> set[str]:
    """Models holding the best shown value of a row (ties as displayed count), among ``models``.

    Sparsity rows describe a model rather than grade it, so they have no best.
    """
    if row.get("group") == "sparsity":
        return set()
    vals = {m: _value(row, m) for m in models}
    vals = {m: round(v, digits) for m, v in vals.items() if v is not None}
    if len(vals) < 2:
        return set()
    best = max(vals.values()) if row.get("higher_is_better", True) else min(vals.values())
    return {m for m, v in vals.items() if v == best}


def _value(row: dict[str, Any], model: str) -> float | None:
    v = (row.get("values") or {}).get(model) or {}
    x = v.get("value")
    return float(x) if _finite(x) else None


# ---------------------------------------------------------------- number formatting


def fmt_num(x: Any, digits: int = 4, signed: bool = False) -> str:
    """Fixed decimals; large whole numbers (parameter and MAC counts) with thousands separators."""
    if not _finite(x):
        return "n/a"
    x = float(x)
    sign = "+" if signed else ""
    if x.is_integer() and abs(x) >= 1000:
        return f"{int(x):{sign},}"
    return f"{x:{sign}.{digits}f}"


def fmt_p(p: Any) -> str:
    if not _finite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _symmetric(v: float, lo: float, hi: float) -> bool:
    # Wilson and bootstrap intervals can be lopsided near 0 or 1; then "±" would misstate a bound.
    return lo <= v <= hi and abs((hi - v) - (v - lo)) <= 0.1 * (hi - lo) + 1e-12


def fmt_value_ci(entry: dict[str, Any] | None, digits: int = 4) -> tuple[str, str]:
    """(value, uncertainty) strings: '± half-width' for a symmetric CI, '[lo, hi]' otherwise, '' if none."""
    if not entry or not _finite(entry.get("value")):
        return "n/a", ""
    v = float(entry["value"])
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    if not (_finite(lo) and _finite(hi)):
        return fmt_num(v, digits), ""
    if _symmetric(v, lo, hi):
        return fmt_num(v, digits), f"± {fmt_num((hi - lo) / 2, digits)}"
    return fmt_num(v, digits), f"[{fmt_num(lo, digits)}, {fmt_num(hi, digits)}]"


def fmt_delta(d: dict[str, Any] | None, digits: int = 4) -> str:
    if not d or not _finite(d.get("delta")):
        return "—"
    s = fmt_num(d["delta"], digits, signed=True)
    lo, hi = d.get("ci_low"), d.get("ci_high")
    if _finite(lo) and _finite(hi):
        s += f" [{fmt_num(lo, digits, signed=True)}, {fmt_num(hi, digits, signed=True)}]"
    return s


def _ci_text(comp: Comparison) -> str:
    level = (comp.get("settings") or {}).get("ci_level", 0.95)
    return f"{level * 100:g}% CI" if _finite(level) else "CI"


def _mt(comp: Comparison) -> str:
    mt = (comp.get("settings") or {}).get("multiple_testing")
    return f"{str(mt).capitalize()}-adjusted" if mt and str(mt).lower() != "none" else "unadjusted"


def _settings_line(comp: Comparison) -> str:
    s = comp.get("settings") or {}
    parts = [_ci_text(comp), f"α = {_alpha(comp):g}"]
    if s.get("multiple_testing"):
        parts.append(f"{str(s['multiple_testing']).capitalize()} correction over all tests")
    if s.get("n_boot") is not None:
        parts.append(f"{s['n_boot']} bootstrap resamples")
    if s.get("seed") is not None:
        parts.append(f"seed {s['seed']}")
    known = {"alpha", "ci_level", "multiple_testing", "n_boot", "seed", "tests"}
    parts += [f"{k} = {_plain(v)}" for k, v in s.items() if k not in known]
    return ", ".join(parts)


def _data_parts(comp: Comparison) -> tuple[str, str]:
    data = comp.get("data") or {}
    idd = data.get("id") or {}
    id_text = f"{idd.get('spec', '?')} (n = {fmt_count(idd.get('n'))})" if idd else "n/a"
    ood = ", ".join(f"{o.get('name')} (n = {fmt_count(o.get('n'))})" for o in data.get("ood") or []) or "none"
    return id_text, ood


def fmt_count(n: Any) -> str:
    return f"{int(n):,}" if _finite(n) else "?"


def _plain(v: Any) -> str:
    """A setting or convention value on one line, as words rather than JSON."""
    if isinstance(v, str):
        return v
    if isinstance(v, dict):
        return "; ".join(f"{str(k).replace('_', ' ')}: {_plain(x)}" for k, x in v.items()) or "none"
    if isinstance(v, list | tuple):
        return ", ".join(_plain(x) for x in v) or "none"
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "yes" if v else "no"
    return str(v)


def _one_line(s: Any) -> str:
    return " ".join(str(s if s is not None else "unknown error").split())


def scheme_text(m: dict[str, Any]) -> str:
    """The sparsity scheme in words; a model without one (a foreign checkpoint) says what is known."""
    sp = m.get("sparsity") or {}
    scheme, dens = sp.get("scheme"), sp.get("density")
    if scheme:
        return str(scheme)
    if m.get("status", "ok") != "ok" and not sp:
        return "—"
    if _finite(dens) and dens >= 1.0:
        return "dense (no masks)"
    if _finite(dens):
        return "unknown (zeros in the weights)"
    return "unknown"


def _sparsity_text(m: dict[str, Any]) -> tuple[str, str]:
    dens = (m.get("sparsity") or {}).get("density")
    return scheme_text(m), (f"{dens:.4g}" if _finite(dens) else "—")


def model_warnings(comp: Comparison) -> list[tuple[str, str]]:
    """(model, sentence) for every warning a result carried (``sanity["warnings"]``), models in order."""
    out = []
    for m in comp.get("models", []):
        out += [(str(m["name"]), _one_line(w)) for w in m.get("warnings") or [] if str(w).strip()]
    return out


# ---------------------------------------------------------------- Markdown


def _md(s: Any) -> str:
    """Text safe inside a GitHub table cell."""
    return _one_line(s).replace("\\", "\\\\").replace("|", "\\|")


def _md_code(s: Any) -> str:
    text = _one_line(s).replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _md_table(header: list[str], rows: Iterable[list[str]], align: list[str]) -> list[str]:
    sep = {"l": ":---", "r": "---:", "c": ":---:"}
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(sep[a] for a in align) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def _arrow(row: dict[str, Any]) -> str:
    return "↑" if row.get("higher_is_better", True) else "↓"


def render_markdown(comp: Comparison) -> str:
    """GitHub-flavoured Markdown: header, models, one table per metric group, failures and notes."""
    ref = comp.get("reference")
    models = ok_models(comp)
    others = other_models(comp)
    alpha = _alpha(comp)
    lines: list[str] = []
    title = ", ".join(f"`{_md(n)}`" for n in others) or "no model"
    lines += [f"# Comparison: {title} vs `{_md(ref)}`", ""]
    id_text, ood_text = _data_parts(comp)
    lines += [
        f"- **Reference:** `{_md(ref)}`",
        f"- **ID data:** {_md(id_text)}; **OOD data:** {_md(ood_text)}",
        f"- **Statistics:** {_md(_settings_line(comp))}",
        "",
    ]
    warns = model_warnings(comp)
    if warns:
        lines += ["## ⚠ Warnings", ""]
        lines += [f"> **⚠ {_md_code(n)}:** {_md(w)}  " for n, w in warns]
        lines.append("")
    lines += ["## Models", ""]
    rows = []
    for m in comp.get("models", []):
        scheme, dens = _sparsity_text(m)
        status = "ok" if m.get("status", "ok") == "ok" else "**FAILED**"
        sha = str(m.get("sha256") or "")[:12]
        rows.append(
            [
                _md_code(m["name"]),
                status,
                _md(m.get("arch") or "—"),
                _md(scheme),
                dens,
                _md(m.get("source") or "—"),
                f"`{sha}`" if sha else "—",
            ]
        )
    lines += _md_table(
        ["Model", "Status", "Arch", "Scheme", "Density", "Source", "sha256"], rows, list("llllrll")
    )

    for group, grows in grouped_rows(comp):
        shown = _compared(grows, others)
        lines += ["", f"## {group_title(group)}", ""]
        header = ["Metric"] + [_md_code(m) for m in models]
        align = ["l"] + ["r"] * len(models)
        for o in shown:
            header += [f"Δ {_md_code(o)} − {_md_code(ref)}", "p (Holm)", "verdict"]
            align += ["r", "r", "l"]
        body = []
        for row in grows:
            best = best_models(row, models)
            cells = [f"{_md_code(row['name'])} {_arrow(row)}"]
            for m in models:
                v, u = fmt_value_ci((row.get("values") or {}).get(m))
                v = f"**{v}**" if m in best else v
                cells.append(f"{v} {u}".strip())
            for o in shown:
                d = (row.get("deltas") or {}).get(o)
                kind = verdict_kind(d, row.get("higher_is_better", True), alpha)
                cells += [
                    fmt_delta(d),
                    fmt_p((d or {}).get("p_holm", (d or {}).get("p_value"))),
                    _md(verdict_text(d, kind, _MARK_MD)),
                ]
            body.append(cells)
        lines += _md_table(header, body, align)
        if _has_ci(grows):
            lines += ["", f"*{_md(value_legend(comp))}*"]

    seed = _seed_table(comp)
    if seed:
        groups, names, seed_rows = seed
        lines += ["", "## Across seeds", ""]
        lines += [f"- {_md_code(g)}: " + ", ".join(_md_code(x) for x in members) for g, members in groups]
        lines.append("")
        header = ["Metric"] + [f"{_md_code(g)} mean ± sd (n)" for g in names]
        body = [[f"{_md_code(name)} {arrow}", *cells] for name, arrow, cells in seed_rows]
        lines += _md_table(header, body, ["l"] + ["r"] * len(names))
        lines += ["", f"*{_md(SEED_LEGEND)}*"]

    failed = failed_models(comp)
    if failed:
        lines += ["", "## Failed models", ""]
        lines += [f"- {_md_code(m['name'])}: {_md(m.get('error'))}" for m in failed]

    lines += ["", "## Notes", ""]
    lines += [f"- **{_md(k)}**: {_md(v)}" if k else f"- {_md(v)}" for k, v in _notes(comp)]
    return "\n".join(lines) + "\n"


def _fmt_seed(s: dict[str, Any] | None) -> str:
    if not s or not _finite(s.get("mean")):
        return "n/a"
    sd = f" ± {fmt_num(s['std'])}" if _finite(s.get("std")) else ""
    n = f" ({s['n']})" if s.get("n") is not None else ""
    return f"{fmt_num(s['mean'])}{sd}{n}"


def _seed_table(
    comp: Comparison,
) -> tuple[list[tuple[str, list[str]]], list[str], list[tuple[str, str, list[str]]]] | None:
    """(groups with members, group names, rows of (metric, arrow, cells)) for seed-group comparisons."""
    if not any(row.get("seed_level") for row in comp.get("metrics", [])):
        return None
    groups = [
        (str(g), [str(x) for x in (v or {}).get("members", [])])
        for g, v in (comp.get("seed_groups") or {}).items()
    ]
    names: list[str] = []
    for row in comp.get("metrics", []):
        names += [g for g in row.get("seed_level") or {} if g != "test" and g not in names]
    rows = [
        (row["name"], _arrow(row), [_fmt_seed(row["seed_level"].get(g)) for g in names])
        for row in comp.get("metrics", [])
        if row.get("seed_level")
    ]
    return groups, names, rows


def _provenance_lines(prov: dict[str, Any]) -> list[str]:
    """One short line per input: version, git revision, date, device (the rest stays in the JSON)."""

    def short(p: Any) -> str:
        if not isinstance(p, dict):
            return _plain(p)
        parts = []
        ver = (p.get("versions") or {}).get("evalsuite") if isinstance(p.get("versions"), dict) else None
        if ver:
            parts.append(f"evalsuite {ver}")
        if p.get("git_revision"):
            parts.append(f"git {str(p['git_revision'])[:12]}")
        parts += [str(p[k]) for k in ("date", "device") if p.get(k)]
        return ", ".join(parts) or "n/a"

    inputs = prov.get("inputs")
    if isinstance(inputs, dict):
        return [f"{name}: {short(p)}" for name, p in inputs.items()]
    return [short(prov)]


def _notes(comp: Comparison) -> list[tuple[str | None, str]]:
    """(label, text) lines closing every report: how to read it, tests, conventions, provenance."""
    notes: list[tuple[str | None, str]] = [(None, line) for line in _legend(comp)]
    if _is_seed_comparison(comp):
        notes.append((None, "Across seeds: " + SEED_LEGEND))
    tests = (comp.get("settings") or {}).get("tests")
    if isinstance(tests, dict):
        notes += [(f"test ({k})", _plain(v)) for k, v in tests.items()]
    elif tests:
        notes.append(("tests", _plain(tests)))
    for k, v in (comp.get("conventions") or {}).items():
        # A nested convention (the statistics glossary) becomes one sentence per entry, not JSON.
        if isinstance(v, dict):
            notes += [(f"{k}: {str(sk).replace('_', ' ')}", _plain(sv)) for sk, sv in v.items()]
        else:
            notes.append((str(k), _plain(v)))
    prov = comp.get("provenance") or {}
    if prov:
        notes += [("provenance", line) for line in _provenance_lines(prov)]
    return notes


def _is_seed_comparison(comp: Comparison) -> bool:
    return bool(comp.get("seed_groups")) or any(row.get("seed_level") for row in comp.get("metrics", []))


def value_legend(comp: Comparison) -> str:
    """What '±' and '[lo, hi]' mean in the value columns of a metric table (one meaning per table)."""
    ci = _ci_text(comp)
    if _is_seed_comparison(comp):
        return (
            f"Values: mean over seeds; ± = half-width of the {ci} of the mean (t over seeds, clipped to "
            "the metric's range); [lo, hi] where that interval is asymmetric."
        )
    return (
        f"Values: estimate; ± = half-width of the {ci} (Wilson for accuracies, bootstrap otherwise); "
        "[lo, hi] where the interval is asymmetric (rates stay within [0, 1])."
    )


SEED_LEGEND = "mean ± sd = mean and sample standard deviation (ddof 1) over seeds; (n) = number of seeds."


def _has_ci(rows: list[dict[str, Any]]) -> bool:
    """Whether any value of a table carries an interval (sparsity rows do not), so it needs the legend."""
    return any(
        _finite(v.get("ci_low"))
        for row in rows
        for v in (row.get("values") or {}).values()
        if isinstance(v, dict)
    )


def _legend(comp: Comparison) -> list[str]:
    ref = comp.get("reference")
    mt = _mt(comp)
    return [
        value_legend(comp) + " Exact bounds are in metrics.csv.",
        f"Δ = model − {ref} on the same examples (paired), with its {_ci_text(comp)}; "
        f"p is {mt}. ↑ / ↓: higher / lower is better.",
        f"Verdict at α = {_alpha(comp):g} from the model's side: better, worse, or n.s. (no significant "
        "difference; not evidence of equivalence). Bold: best value among successful models.",
    ]


# ---------------------------------------------------------------- LaTeX

_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # OT1 fonts print < and > as inverted punctuation.
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "±": r"\ensuremath{\pm}",
}


def tex_escape(s: Any) -> str:
    """Escape text for LaTeX text mode (one character at a time, so escapes are never re-escaped)."""
    return "".join(_TEX_ESCAPES.get(c, c) for c in _one_line(s))


def _tex_num(x: Any, digits: int = 4, signed: bool = False) -> str:
    # Thousands separators as {,} so math mode does not add space after the comma.
    return fmt_num(x, digits, signed).replace(",", "{,}")


def _tex_value(entry: dict[str, Any] | None, bold: bool) -> str:
    if not entry or not _finite(entry.get("value")):
        return "n/a"
    v = float(entry["value"])
    num = _tex_num(v)
    num = rf"\textbf{{{num}}}" if bold else num
    lo, hi = entry.get("ci_low"), entry.get("ci_high")
    if not (_finite(lo) and _finite(hi)):
        return num
    if _symmetric(v, lo, hi):
        return rf"{num}{{\scriptsize${{}}\pm{{}}${_tex_num((hi - lo) / 2)}}}"
    return rf"{num}{{\scriptsize\,[{_tex_num(lo)}, {_tex_num(hi)}]}}"


def _tex_delta(d: dict[str, Any] | None) -> str:
    if not d or not _finite(d.get("delta")):
        return "---"
    s = _tex_num(d["delta"], signed=True)
    lo, hi = d.get("ci_low"), d.get("ci_high")
    if _finite(lo) and _finite(hi):
        s += rf"\,[{_tex_num(lo, signed=True)}, {_tex_num(hi, signed=True)}]"
    return f"${s}$"


def _tex_p(p: Any) -> str:
    if not _finite(p):
        return "---"
    return "$<$0.001" if p < 0.001 else f"{p:.3f}"


_TEX_VERDICT = {
    "better": "better",
    "worse": r"\textbf{worse}",
    "same": "n.s.",
    "identical": "identical",
    "untested": "not tested",
    "none": "---",
}
# Column budget of one tabular: with more models the table is split into value tables of at most
# TEX_MAX_VALUE_MODELS models and difference tables of at most TEX_MAX_DELTA_MODELS compared models.
TEX_MAX_VALUE_MODELS = 3
TEX_MAX_DELTA_MODELS = 2
TEX_MAX_COLUMNS = 1 + 3 * TEX_MAX_DELTA_MODELS
# Shrinks a tabular wider than the text to the text width (never enlarges one); graphicx evaluates
# \width as the natural width of the box inside the size argument.
_TEX_FIT_OPEN = r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"


def _chunks(xs: list[str], k: int) -> list[list[str]]:
    return [xs[i : i + k] for i in range(0, len(xs), k)]


def tex_layout(models: list[str], shown: list[str]) -> list[tuple[list[str], list[str]]]:
    """(models whose values, compared models whose Δ/p/verdict) each tabular of a group shows.

    Two models fit one tabular (6 columns); more are split so no tabular exceeds TEX_MAX_COLUMNS.
    """
    if 1 + len(models) + 3 * len(shown) <= TEX_MAX_COLUMNS:
        return [(models, shown)]
    parts: list[tuple[list[str], list[str]]] = [(c, []) for c in _chunks(models, TEX_MAX_VALUE_MODELS)]
    parts += [([], c) for c in _chunks(shown, TEX_MAX_DELTA_MODELS)]
    return parts


def _tex_tabular(
    grows: list[dict[str, Any]], models: list[str], vmodels: list[str], shown: list[str], comp: Comparison
) -> list[str]:
    ref = comp.get("reference")
    alpha = _alpha(comp)
    ncols = 1 + len(vmodels) + 3 * len(shown)
    spec = "l" + "r" * len(vmodels) + "rrl" * len(shown)
    out = [_TEX_FIT_OPEN, rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    head1 = ["Metric"] + [tex_escape(m) for m in vmodels]
    head1 += [rf"\multicolumn{{3}}{{c}}{{{tex_escape(o)} vs {tex_escape(ref)}}}" for o in shown]
    out.append(" & ".join(head1) + r" \\")
    if shown:
        rules = []
        for i in range(len(shown)):
            start = 2 + len(vmodels) + 3 * i
            rules.append(rf"\cmidrule(lr){{{start}-{start + 2}}}")
        out.append(" ".join(rules))
        head2 = [""] * (1 + len(vmodels)) + [r"$\Delta$ [CI]", r"$p$", "verdict"] * len(shown)
        out.append(" & ".join(head2) + r" \\")
    out.append(r"\midrule")
    for row in grows:
        arrow = r"$\uparrow$" if row.get("higher_is_better", True) else r"$\downarrow$"
        best = best_models(row, models)  # best among all models, even those in another part
        cells = [f"{tex_escape(row['name'])} {arrow}"]
        cells += [_tex_value((row.get("values") or {}).get(m), m in best) for m in vmodels]
        for o in shown:
            d = (row.get("deltas") or {}).get(o)
            kind = verdict_kind(d, row.get("higher_is_better", True), alpha)
            cells += [
                _tex_delta(d),
                _tex_p((d or {}).get("p_holm", (d or {}).get("p_value"))),
                _TEX_VERDICT[kind],
            ]
        assert len(cells) == ncols
        out.append(" & ".join(cells) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", "}"]
    return out


def render_latex(comp: Comparison) -> str:
    """Booktabs tables per metric group, split into parts when there are many models, each shrunk to
    the text width if wider. Needs ``\\usepackage{booktabs}`` and ``\\usepackage{graphicx}``."""
    ref = comp.get("reference")
    models = ok_models(comp)
    others = other_models(comp)
    alpha = _alpha(comp)
    mt = _mt(comp)
    out = [
        "% evalsuite comparison tables; requires \\usepackage{booktabs} and \\usepackage{graphicx}.",
        f"% Reference: {tex_escape(ref)}. {tex_escape(value_legend(comp))}",
    ]
    out += [
        f"% FAILED model {tex_escape(m['name'])}: {tex_escape(m.get('error'))}" for m in failed_models(comp)
    ]
    out += [f"% WARNING {tex_escape(n)}: {tex_escape(w)}" for n, w in model_warnings(comp)]
    warn = model_warnings(comp)
    if warn:
        # Also on the page: a comment alone would be lost once the tables are pasted into a paper.
        out += ["", r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{p{0.95\linewidth}}"]
        out += [rf"\textbf{{Warning ({tex_escape(n)}):}} {tex_escape(w)} \\" for n, w in warn]
        out += [r"\end{tabular}", r"\caption{Warnings raised by the evaluation.}", r"\end{table}"]
    for group, grows in grouped_rows(comp):
        shown = _compared(grows, others)
        parts = tex_layout(models, shown)
        label = "".join(c if c.isalnum() else "-" for c in group)
        legend = tex_escape(value_legend(comp)) + " " if _has_ci(grows) else ""
        for k, (vmodels, pshown) in enumerate(parts):
            what = ""
            if len(parts) > 1:
                kind = "values" if vmodels else f"differences from {tex_escape(ref)}"
                what = f" (part {k + 1} of {len(parts)}: {kind})"
            caption = (
                f"{tex_escape(group_title(group))}{what}. {legend}"
                rf"$\Delta$ = model $-$ {tex_escape(ref)} (paired); $p$ {tex_escape(mt)}; "
                rf"verdict at $\alpha={alpha:g}$. $\uparrow$/$\downarrow$: higher/lower is better"
                + ("." if group == "sparsity" else "; best in bold.")
            )
            suffix = f"-{k + 1}" if len(parts) > 1 else ""
            out += ["", r"\begin{table}[t]", r"\centering", r"\small"]
            out += _tex_tabular(grows, models, vmodels, pshown, comp)
            out += [rf"\caption{{{caption}}}", rf"\label{{tab:evalsuite-{label}{suffix}}}", r"\end{table}"]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- CSV

CSV_COLUMNS = [
    "model",
    "metric",
    "group",
    "higher_is_better",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "ci_method",
    "delta",
    "delta_ci_low",
    "delta_ci_high",
    "p_value",
    "p_holm",
    "test",
    "verdict",
]


def comparison_frame(comp: Comparison) -> pd.DataFrame:
    """Long format: one row per (ok model, metric) with a value; delta columns empty for the reference."""
    records = []
    for row in comp.get("metrics", []):
        for m in ok_models(comp):
            v = (row.get("values") or {}).get(m)
            if not v:
                continue
            d = (row.get("deltas") or {}).get(m) or {}
            records.append(
                {
                    "model": m,
                    "metric": row["name"],
                    "group": row.get("group"),
                    "higher_is_better": bool(row.get("higher_is_better", True)),
                    "value": v.get("value"),
                    "ci_low": v.get("ci_low"),
                    "ci_high": v.get("ci_high"),
                    "n": v.get("n"),
                    "ci_method": v.get("ci_method"),
                    "delta": d.get("delta"),
                    "delta_ci_low": d.get("ci_low"),
                    "delta_ci_high": d.get("ci_high"),
                    "p_value": d.get("p_value"),
                    "p_holm": d.get("p_holm"),
                    "test": d.get("test"),
                    "verdict": d.get("verdict"),
                }
            )
    df = pd.DataFrame.from_records(records, columns=CSV_COLUMNS)
    # Nullable ints keep "n" as 10000 rather than 10000.0 when some rows lack it.
    df["n"] = pd.array(df["n"].tolist(), dtype="Int64") if len(df) else df["n"]
    return df


def render_csv(comp: Comparison) -> str:
    buf = io.StringIO()
    comparison_frame(comp).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


# ---------------------------------------------------------------- terminal


def _align(rows: list[list[str]], right: list[bool]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.rjust(w) if rt else c.ljust(w) for c, w, rt in zip(r, widths, right)]
        out.append("  ".join(cells).rstrip())
    return out


def render_terminal(comp: Comparison) -> str:
    """Plain, aligned text: one line per metric, values per model and Δ with a verdict per compared model."""
    ref = comp.get("reference")
    models = ok_models(comp)
    others = other_models(comp)
    alpha = _alpha(comp)
    id_text, ood_text = _data_parts(comp)
    lines = [
        f"reference {ref}; compared: {', '.join(others) or 'none'}",
        f"data: {id_text}; OOD: {ood_text}",
        _settings_line(comp),
    ]
    warns = model_warnings(comp)
    if warns:
        lines.append("")
        lines += [f"WARNING {n}: {w}" for n, w in warns]
    for group, grows in grouped_rows(comp):
        shown = _compared(grows, others)
        header = ["metric", ""] + models + [f"Δ {o}" for o in shown]
        right = [False, False] + [True] * len(models) + [False] * len(shown)
        table = [header]
        for row in grows:
            cells = [row["name"], _arrow(row)]
            cells += [fmt_num(_value(row, m)) if _value(row, m) is not None else "n/a" for m in models]
            for o in shown:
                d = (row.get("deltas") or {}).get(o)
                kind = verdict_kind(d, row.get("higher_is_better", True), alpha)
                if d and _finite(d.get("delta")):
                    mark = verdict_text(d, kind, _MARK_TXT)
                    cells.append(f"{fmt_num(d['delta'], signed=True):>9}  {mark}".rstrip())
                else:
                    cells.append("")
            table.append(cells)
        aligned = _align(table, right)
        lines += ["", f"{group_title(group)}", *("  " + a for a in aligned)]
    failed = failed_models(comp)
    if failed:
        lines.append("")
        lines += [f"FAILED {m['name']}: {_one_line(m.get('error'))}" for m in failed]
    lines += [
        "",
        f"verdicts at alpha {alpha:g} after multiple-testing correction; n.s. = no significant difference",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- HTML

_CSS = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       color: #1f2328; background: #fff; margin: 2rem auto; max-width: 1400px; padding: 0 1rem; }
h1 { font-size: 1.6rem; border-bottom: 1px solid #d0d7de; padding-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #eaeef2; padding-bottom: .2rem; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; white-space: nowrap; }
th { background: #f6f8fa; }
td.num { text-align: right; }
td .ci { color: #57606a; font-size: .9em; }
td.best { font-weight: 700; }
.v-better { background: #dafbe1; color: #116329; }
.v-worse { background: #ffebe9; color: #a40e26; font-weight: 700; }
.v-same { color: #57606a; }
.failed { border-left: 4px solid #cf222e; background: #fff5f5; padding: .5rem 1rem; }
.warnings { border-left: 4px solid #bf8700; background: #fff8c5; padding: .5rem 1rem; }
p.legend { color: #57606a; font-size: .9em; margin-top: -.5rem; }
figure { margin: 1rem 0 2rem; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
figcaption { color: #57606a; }
ul.notes li { margin: .2rem 0; }
@media print { .scroll { overflow: visible; } body { margin: 0; } }
"""

PLOT_TITLES = {
    "reliability": "Reliability diagrams, one panel per model: accuracy per confidence bin (bars), gap to "
    "the bin's mean confidence (hatched), perfect calibration (dashed diagonal)",
    "robust": "Robust accuracy against attack strength, one panel per attack (ε in 255ths for L∞, pixel "
    "units for L2; ε = 0 is clean accuracy; shaded: 95% Wilson CI)",
    "ood_roc": "OOD detection: ROC curves (OOD positive), AUROC in the legend",
    "ood_hist": "OOD detection: score histograms of ID and OOD examples (MSP drawn as 1 − max softmax on "
    "a log axis, so confidences piled up near 1 stay apart)",
    "layer_density": "Per-layer density, layers in execution order (depth), aligned across models",
}


def _h(s: Any) -> str:
    return html.escape(_one_line(s), quote=True)


def _html_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Cells are pre-rendered ``<td ...>`` / ``<th>`` strings."""
    out = ['<div class="scroll"><table>', "<thead><tr>" + "".join(header) + "</tr></thead>", "<tbody>"]
    out += ["<tr>" + "".join(r) + "</tr>" for r in rows]
    out += ["</tbody></table></div>"]
    return out


def render_html(comp: Comparison, images: dict[str, bytes] | None = None) -> str:
    """One self-contained page: inline CSS, PNG plots as data: URIs, no script and no external request."""
    images = images or {}
    ref = comp.get("reference")
    models = ok_models(comp)
    others = other_models(comp)
    alpha = _alpha(comp)
    title = f"Comparison: {', '.join(others) or 'no model'} vs {ref}"
    id_text, ood_text = _data_parts(comp)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        # The page must never reach the network, even if a future edit adds a URL by mistake.
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_h(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{_h(title)}</h1>",
        "<ul>",
        f"<li><b>Reference:</b> <code>{_h(ref)}</code></li>",
        f"<li><b>ID data:</b> {_h(id_text)}; <b>OOD data:</b> {_h(ood_text)}</li>",
        f"<li><b>Statistics:</b> {_h(_settings_line(comp))}</li>",
        "</ul>",
    ]
    warns = model_warnings(comp)
    if warns:
        out += ['<h2 id="warnings">⚠ Warnings</h2>', '<div class="warnings"><ul>']
        out += [f"<li><b>⚠ <code>{_h(n)}</code>:</b> {_h(w)}</li>" for n, w in warns]
        out += ["</ul></div>"]
    out.append('<h2 id="models">Models</h2>')
    rows = []
    for m in comp.get("models", []):
        scheme, dens = _sparsity_text(m)
        ok = m.get("status", "ok") == "ok"
        status = "ok" if ok else '<span class="v-worse">FAILED</span>'
        rows.append(
            [
                f"<td><code>{_h(m['name'])}</code></td>",
                f"<td>{status}</td>",
                f"<td>{_h(m.get('arch') or '—')}</td>",
                f"<td>{_h(scheme)}</td>",
                f'<td class="num">{_h(dens)}</td>',
                f"<td><code>{_h(m.get('source') or '—')}</code></td>",
                f"<td><code>{_h(str(m.get('sha256') or '')[:12]) or '—'}</code></td>",
            ]
        )
    th = [f"<th>{c}</th>" for c in ("Model", "Status", "Arch", "Scheme", "Density", "Source", "sha256")]
    out += _html_table(th, rows)

    for group, grows in grouped_rows(comp):
        shown = _compared(grows, others)
        out.append(f'<h2 id="group-{_h(group)}">{_h(group_title(group))}</h2>')
        th = ["<th>Metric</th>"] + [f"<th><code>{_h(m)}</code></th>" for m in models]
        for o in shown:
            th += [
                f"<th>Δ <code>{_h(o)}</code> − <code>{_h(ref)}</code></th>",
                "<th>p (Holm)</th>",
                "<th>verdict</th>",
            ]
        body = []
        for row in grows:
            best = best_models(row, models)
            cells = [f"<td><code>{_h(row['name'])}</code> {_arrow(row)}</td>"]
            for m in models:
                v, u = fmt_value_ci((row.get("values") or {}).get(m))
                cls = "num best" if m in best else "num"
                cells.append(f'<td class="{cls}">{_h(v)} <span class="ci">{_h(u)}</span></td>')
            for o in shown:
                d = (row.get("deltas") or {}).get(o)
                kind = verdict_kind(d, row.get("higher_is_better", True), alpha)
                p = fmt_p((d or {}).get("p_holm", (d or {}).get("p_value")))
                tip = _h((d or {}).get("verdict") or "")
                cells += [
                    f'<td class="num v-{kind}">{_h(fmt_delta(d))}</td>',
                    f'<td class="num v-{kind}">{_h(p)}</td>',
                    f'<td class="v-{kind}" title="{tip}">{_h(verdict_text(d, kind, _MARK_MD))}</td>',
                ]
            body.append(cells)
        out += _html_table(th, body)
        if _has_ci(grows):
            out.append(f'<p class="legend">{_h(value_legend(comp))}</p>')

    seed = _seed_table(comp)
    if seed:
        groups, names, seed_rows = seed
        out.append('<h2 id="seeds">Across seeds</h2><ul>')
        for g, members in groups:
            out.append(
                f"<li><code>{_h(g)}</code>: " + ", ".join(f"<code>{_h(x)}</code>" for x in members) + "</li>"
            )
        out.append("</ul>")
        th = ["<th>Metric</th>"] + [f"<th><code>{_h(g)}</code> mean ± sd (n)</th>" for g in names]
        body = [
            [f"<td><code>{_h(name)}</code> {arrow}</td>"] + [f'<td class="num">{_h(c)}</td>' for c in cells]
            for name, arrow, cells in seed_rows
        ]
        out += _html_table(th, body)
        out.append(f'<p class="legend">{_h(SEED_LEGEND)}</p>')

    failed = failed_models(comp)
    if failed:
        out += ['<h2 id="failed">Failed models</h2>', '<div class="failed"><ul>']
        out += [f"<li><code>{_h(m['name'])}</code>: {_h(m.get('error'))}</li>" for m in failed]
        out += ["</ul></div>"]

    if images:
        out.append('<h2 id="plots">Plots</h2>')
        for name, png in images.items():
            data = base64.b64encode(png).decode("ascii")
            cap = PLOT_TITLES.get(name, name)
            out += [
                f'<figure id="plot-{_h(name)}">',
                f'<img src="data:image/png;base64,{data}" alt="{_h(cap)}">',
                f"<figcaption>{_h(cap)}</figcaption>",
                "</figure>",
            ]

    out += ['<h2 id="notes">Notes</h2>', '<ul class="notes">']
    out += [f"<li><b>{_h(k)}</b>: {_h(v)}</li>" if k else f"<li>{_h(v)}</li>" for k, v in _notes(comp)]
    out += ["</ul>", "</body>", "</html>"]
    return "\n".join(out) + "\n"
