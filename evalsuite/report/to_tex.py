r"""Booktabs LaTeX tables from the table view: the headline, then one table per metric section, split into
parts when there are many models, each shrunk to the text width if wider. Needs ``\\usepackage{booktabs}``
and ``\\usepackage{graphicx}``."""

from __future__ import annotations

from evalsuite.report.model import Verdict
from evalsuite.report.table import Cell, Column, ReportView, Table, one_line

TEX_ESCAPES = {
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
    "Δ": r"\ensuremath{\Delta}",
    "−": r"\ensuremath{-}",
    "↑": r"\ensuremath{\uparrow}",
    "↓": r"\ensuremath{\downarrow}",
    "≥": r"\ensuremath{\geq}",
    "≤": r"\ensuremath{\leq}",
    "α": r"\ensuremath{\alpha}",
    "▲": "",
    "▼": "",
}
# Column budget of one tabular: with more models the table is split into value tables of at most
# TEX_MAX_VALUE_MODELS models and difference tables of at most TEX_MAX_DELTA_MODELS compared models.
TEX_MAX_VALUE_MODELS = 3
TEX_MAX_DELTA_MODELS = 2
TEX_MAX_COLUMNS = 2 + 3 * TEX_MAX_DELTA_MODELS
# Shrinks a tabular wider than the text to the text width (never enlarges one); graphicx evaluates
# \width as the natural width of the box inside the size argument.
_TEX_FIT_OPEN = r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%"


def tex_escape(s: object) -> str:
    """Escape text for LaTeX text mode (one character at a time, so escapes are never re-escaped)."""
    return "".join(TEX_ESCAPES.get(c, c) for c in one_line(s)).strip()


def cell(c: Cell) -> str:
    """One LaTeX table cell; best values and worse verdicts in bold, the CI in script size."""
    text = tex_escape(c.text)
    if c.best or c.verdict is Verdict.WORSE:
        text = rf"\textbf{{{text}}}"
    if c.arrow:
        text += " " + tex_escape(c.arrow)
    if c.sub:
        text += rf"{{\scriptsize\,{tex_escape(c.sub)}}}"
    return text


def _chunks(xs: list[str], k: int) -> list[list[str]]:
    return [xs[i : i + k] for i in range(0, len(xs), k)]


def layout(t: Table) -> list[list[int]]:
    """Column indices of each tabular of a table: all of it when it fits, else value parts and delta parts."""
    if len(t.columns) <= TEX_MAX_COLUMNS:
        return [list(range(len(t.columns)))]
    label = [i for i, c in enumerate(t.columns) if not c.block and not c.model]
    models = list(dict.fromkeys(c.model for c in t.columns if c.model))
    blocks = list(dict.fromkeys(c.block for c in t.columns if c.block))
    parts = [
        label + [i for i, c in enumerate(t.columns) if c.model in chunk]
        for chunk in _chunks(models, TEX_MAX_VALUE_MODELS)
    ]
    parts += [
        label[:1] + [i for i, c in enumerate(t.columns) if c.block in chunk]
        for chunk in _chunks(blocks, TEX_MAX_DELTA_MODELS)
    ]
    return parts


def _header(cols: list[Column]) -> list[str]:
    blocks = [c.block for c in cols]
    if not any(blocks):
        return [" & ".join(cell(c.header) for c in cols) + r" \\"]
    top, rules, second = [], [], []
    i = 0
    while i < len(cols):
        b = blocks[i]
        if not b:
            top.append(cell(cols[i].header))
            second.append("")
            i += 1
            continue
        n = blocks.count(b)
        top.append(rf"\multicolumn{{{n}}}{{c}}{{{tex_escape(cols[i].header.text)}}}")
        rules.append(rf"\cmidrule(lr){{{i + 1}-{i + n}}}")
        second += ["[CI]"] + [cell(c.header) for c in cols[i + 1 : i + n]]
        i += n
    return [" & ".join(top) + r" \\", " ".join(rules), " & ".join(second) + r" \\"]


def tabular(t: Table, idx: list[int]) -> list[str]:
    """A booktabs tabular of the columns ``idx`` of a table, folded rows appended."""
    cols = [t.columns[i] for i in idx]
    spec = "".join("r" if (t.rows and t.rows[0][i].num) else "l" for i in idx)
    out = [_TEX_FIT_OPEN, rf"\begin{{tabular}}{{{spec}}}", r"\toprule", *_header(cols), r"\midrule"]
    rows = list(t.rows) + [r for f in t.folded for r in f.rows]
    out += [" & ".join(cell(r[i]) for i in idx) + r" \\" for r in rows]
    return [*out, r"\bottomrule", r"\end{tabular}", "}"]


def float_table(t: Table, caption: str) -> list[str]:
    """The table as one or more LaTeX table floats (one per layout part), captioned and labelled."""
    parts = layout(t)
    out = []
    for k, idx in enumerate(parts):
        what = f" (part {k + 1} of {len(parts)})" if len(parts) > 1 else ""
        suffix = f"-{k + 1}" if len(parts) > 1 else ""
        label = "".join(c if c.isalnum() else "-" for c in t.key)
        out += ["", r"\begin{table}[t]", r"\centering", r"\small", *tabular(t, idx)]
        out += [
            rf"\caption{{{tex_escape(t.title)}{what}. {caption}}}",
            rf"\label{{tab:evalsuite-{label}{suffix}}}",
        ]
        out.append(r"\end{table}")
    return out


def emit(v: ReportView) -> str:
    """The LaTeX tables file: comments on failures and warnings, then the booktabs tables."""
    caption = (
        f"Δ = model − {v.reference} with its uncorrected CI; p adjusted within its family; verdict at "
        f"α = {v.alpha:g}. ↑/↓: higher/lower is better; best in bold."
    )
    out = [
        "% evalsuite comparison tables; requires \\usepackage{booktabs} and \\usepackage{graphicx}.",
        f"% Reference: {tex_escape(v.reference)}.",
    ]
    out += [f"% FAILED model {tex_escape(n)}: {tex_escape(e)}" for n, e in v.failed]
    out += [f"% WARNING {tex_escape(n)}: {tex_escape(w)}" for n, w in v.warnings]
    if v.warnings:
        # Also on the page: a comment alone would be lost once the tables are pasted into a paper.
        out += ["", r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{p{0.95\linewidth}}"]
        out += [rf"\textbf{{Warning ({tex_escape(n)}):}} {tex_escape(w)} \\" for n, w in v.warnings]
        out += [r"\end{tabular}", r"\caption{Warnings raised by the evaluation.}", r"\end{table}"]
    if v.headline is not None:
        out += float_table(v.headline, tex_escape(v.headline.legend))
    for t in v.sections:
        legend = tex_escape(t.legend) + " " if t.legend else ""
        out += float_table(t, legend + tex_escape(caption))
    return "\n".join(out) + "\n"
