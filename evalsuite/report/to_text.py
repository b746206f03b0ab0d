"""Plain aligned terminal text from the table view: values and Δ with a verdict per compared model."""

from __future__ import annotations

from evalsuite.report.table import Cell, ReportView, Table

_WORDS = {"▲ better": "better", "▼ worse": "WORSE"}


def _cell(c: Cell, delta_block: bool) -> str:
    text = _WORDS.get(c.text, c.text)
    return text if delta_block else f"{text}{' ' + c.arrow if c.arrow else ''}"


def _align(rows: list[list[str]], right: list[bool]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.rjust(w) if rt else c.ljust(w) for c, w, rt in zip(r, widths, right)).rstrip()
        for r in rows
    ]


def table(t: Table) -> list[str]:
    """Label and value columns as they are; each compared model's Δ, p and verdict in one column."""
    keep = [i for i, c in enumerate(t.columns) if not c.block]
    blocks = list(dict.fromkeys(c.block for c in t.columns if c.block))
    header = [t.columns[i].header.text for i in keep] + [f"Δ {b}" for b in blocks]
    rows = [header]
    for r in t.rows:
        cells = [_cell(r[i], False) for i in keep]
        for b in blocks:
            d, _, verdict = (r[i] for i, c in enumerate(t.columns) if c.block == b)
            cells.append(
                f"{d.text.split(' [')[0]:>9}  {_cell(verdict, True)}".rstrip() if d.text != "—" else ""
            )
        rows.append(cells)
    right = [bool(t.rows and t.rows[0][i].num) for i in keep] + [False] * len(blocks)
    out = ["  " + a for a in _align(rows, right)]
    for f in t.folded:
        out += [f"  ({len(f.rows)} more rows, {f.title}: see report.md)"]
    return out


def emit(v: ReportView) -> str:
    """The compact plain-text report for the terminal."""
    facts = dict(v.facts)
    lines = [
        f"reference {v.reference}; compared: {', '.join(v.compared) or 'none'}",
        f"data: {facts['ID data']}; OOD: {facts['OOD data']}",
        facts["Statistics"],
    ]
    if v.warnings:
        lines += ["", *(f"WARNING {n}: {w}" for n, w in v.warnings)]
    if v.headline_lines:
        lines += ["", "Can it replace the reference?"]
        lines += [f"  {m}: {a.value} ({d})" for m, a, d in v.headline_lines]
    for t in v.sections:
        lines += ["", t.title, *table(t)]
    if v.seed_tests:
        lines += ["", *(f"test: {t}" for t in v.seed_tests)]
    if v.failed:
        lines += ["", *(f"FAILED {n}: {e}" for n, e in v.failed)]
    lines += [
        "",
        f"verdicts at alpha {v.alpha:g} after multiple-testing correction (Holm primary, BH secondary unless "
        "--correction); n.s. = no significant difference",
    ]
    return "\n".join(lines) + "\n"
