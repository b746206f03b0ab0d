"""GitHub-flavoured Markdown from the table view (folded OOD scores in <details>)."""

from __future__ import annotations

from evalsuite.report.model import Replaces, Verdict
from evalsuite.report.table import Cell, ReportView, Table, one_line


def esc(s: object) -> str:
    """Text safe inside a GitHub table cell."""
    return one_line(s).replace("\\", "\\\\").replace("|", "\\|")


def code(s: object) -> str:
    """``s`` as inline Markdown code, safe inside a table cell."""
    text = one_line(s).replace("|", "\\|")
    fence, pad = ("``", " ") if "`" in text else ("`", "")
    return f"{fence}{pad}{text}{pad}{fence}"


def cell(c: Cell) -> str:
    """One Markdown table cell; best values and worse verdicts in bold."""
    text = code(c.text) if c.code else esc(c.text)
    if c.best or c.verdict is Verdict.WORSE:
        text = f"**{text}**"
    if c.arrow:
        text += f" {c.arrow}"
    return f"{text} {esc(c.sub)}".strip()


def table(t: Table) -> list[str]:
    """The Markdown lines of a table, its legend and its folded tables in <details>."""
    align = ["---:" if (t.rows and t.rows[0][i].num) else ":---" for i in range(len(t.columns))]
    out = ["| " + " | ".join(cell(c.header) for c in t.columns) + " |", "|" + "|".join(align) + "|"]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in t.rows]
    if t.legend:
        out += ["", f"*{esc(t.legend)}*"]
    for f in t.folded:
        out += ["", f"<details><summary>{esc(f.title)}</summary>", "", *table(f), "", "</details>"]
    return out


_ANSWER = {Replaces.YES: "✅", Replaces.WORSE: "❌", Replaces.INCONCLUSIVE: "❔", Replaces.NOT_TESTED: "—"}


def emit(v: ReportView) -> str:
    """The report as GitHub-flavoured Markdown."""
    others = ", ".join(code(x) for x in v.compared) or "no model"
    lines = [f"# Comparison: {others} vs {code(v.reference)}", ""]
    facts = dict(v.facts)
    lines += [
        f"- **Reference:** {code(v.reference)}",
        f"- **ID data:** {esc(facts['ID data'])}; **OOD data:** {esc(facts['OOD data'])}",
        f"- **Statistics:** {esc(facts['Statistics'])}",
        "",
    ]
    if v.warnings:
        lines += ["## ⚠ Warnings", ""]
        lines += [f"> **⚠ {code(n)}:** {esc(w)}  " for n, w in v.warnings]
        lines.append("")
    if v.headline is not None:
        lines += [f"## {v.headline.title}", ""]
        lines += [f"- {_ANSWER[a]} **{code(m)}: {a.value}** — {esc(d)}" for m, a, d in v.headline_lines]
        lines += ["", *table(v.headline), ""]
    lines += ["## Models", "", *table(v.models)]
    for t in v.sections:
        lines += ["", f"## {esc(t.title)}", "", *table(t)]
    if v.seeds is not None:
        lines += ["", f"## {v.seeds.title}", ""]
        lines += [f"- {code(g)}: " + ", ".join(code(x) for x in members) for g, members in v.seed_members]
        lines += [f"- test: {esc(t)}" for t in v.seed_tests]
        lines += ["", *table(v.seeds)]
    if v.failed:
        lines += ["", "## Failed models", ""]
        lines += [f"- {code(n)}: {esc(e)}" for n, e in v.failed]
    lines += ["", "## Notes", ""]
    lines += [f"- **{esc(k)}**: {esc(x)}" if k else f"- {esc(x)}" for k, x in v.notes]
    return "\n".join(lines) + "\n"
