"""One self-contained HTML page from the table view: inline CSS, PNG plots as data: URIs, no script and no
external request; folded OOD scores in <details>."""

from __future__ import annotations

import base64
import html

from evalsuite.report.model import Replaces, Verdict
from evalsuite.report.table import Cell, ReportView, Table, one_line

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
.v-same, .v-inconclusive, .v-untested { color: #57606a; }
.v-replaces { background: #dafbe1; color: #116329; font-weight: 700; }
details { margin: .2rem 0 1rem; }
ul.headline li { margin: .3rem 0; }
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
    "corruption": "Corruption shift: accuracy and ECE against severity (mean over the corruptions; "
    "clean = the uncorrupted test set)",
}


_CLASS: dict[Verdict | Replaces | None, str] = {
    Verdict.BETTER: "v-better",
    Verdict.WORSE: "v-worse",
    Verdict.SAME: "v-same",
    Verdict.NOT_TESTED: "v-untested",
    Replaces.YES: "v-replaces",
    Replaces.WORSE: "v-worse",
    Replaces.INCONCLUSIVE: "v-inconclusive",
    Replaces.NOT_TESTED: "v-untested",
}


def h(s: object) -> str:
    """HTML-escaped ``s``, on one line."""
    return html.escape(one_line(s), quote=True)


def cell(c: Cell, tag: str = "td") -> str:
    """One HTML table cell (``td`` or ``th``) with its CI, arrow and best/verdict classes."""
    text = f"<code>{h(c.text)}</code>" if c.code else h(c.text)
    if c.arrow:
        text += f" {c.arrow}"
    if c.sub:
        text += f' <span class="ci">{h(c.sub)}</span>'
    cls = [x for x in ("num" if c.num else "", "best" if c.best else "", _CLASS.get(c.verdict, "")) if x]
    attr = f' class="{" ".join(cls)}"' if cls and tag == "td" else ""
    return f"<{tag}{attr}>{text}</{tag}>"


def table(t: Table) -> list[str]:
    """The HTML lines of a table (scrollable), its legend and its folded tables in <details>."""
    out = ['<div class="scroll"><table>', "<thead><tr>" + "".join(cell(c.header, "th") for c in t.columns)]
    out += ["</tr></thead>", "<tbody>", *("<tr>" + "".join(cell(c) for c in r) + "</tr>" for r in t.rows)]
    out += ["</tbody></table></div>"]
    if t.legend:
        out.append(f'<p class="legend">{h(t.legend)}</p>')
    for f in t.folded:
        out += [f"<details><summary>{h(f.title)}</summary>", *table(f), "</details>"]
    return out


def _items(pairs: list[str], cls: str) -> list[str]:
    return [f'<ul class="{cls}">', *(f"<li>{p}</li>" for p in pairs), "</ul>"]


def emit(v: ReportView, images: dict[str, bytes] | None = None) -> str:
    """The self-contained HTML report page; ``images`` maps plot names to PNG bytes."""
    images = images or {}
    facts = dict(v.facts)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        # The page must never reach the network, even if a future edit adds a URL by mistake.
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{h(v.title)}</title>",
        f"<style>{_CSS}</style>",
        "</head>",
        "<body>",
        f"<h1>{h(v.title)}</h1>",
        "<ul>",
        f"<li><b>Reference:</b> <code>{h(v.reference)}</code></li>",
        f"<li><b>ID data:</b> {h(facts['ID data'])}; <b>OOD data:</b> {h(facts['OOD data'])}</li>",
        f"<li><b>Statistics:</b> {h(facts['Statistics'])}</li>",
        "</ul>",
    ]
    if v.warnings:
        out += ['<h2 id="warnings">⚠ Warnings</h2>', '<div class="warnings">']
        out += [*_items([f"<b>⚠ <code>{h(n)}</code>:</b> {h(w)}" for n, w in v.warnings], "warn"), "</div>"]
    if v.headline is not None:
        out.append(f'<h2 id="headline">{h(v.headline.title)}</h2>')
        out += _items(
            [
                f'<b><code>{h(m)}</code>: <span class="{_CLASS[a]}">{h(a.value)}</span></b> — {h(d)}'
                for m, a, d in v.headline_lines
            ],
            "headline",
        )
        out += table(v.headline)
    out += ['<h2 id="models">Models</h2>', *table(v.models)]
    for t in v.sections:
        out += [f'<h2 id="group-{h(t.key)}">{h(t.title)}</h2>', *table(t)]
    if v.seeds is not None:
        out.append('<h2 id="seeds">Across seeds</h2>')
        members = [
            f"<code>{h(g)}</code>: " + ", ".join(f"<code>{h(x)}</code>" for x in m) for g, m in v.seed_members
        ]
        out += _items(members + [f"test: {h(t)}" for t in v.seed_tests], "seeds")
        out += table(v.seeds)
    if v.failed:
        out += ['<h2 id="failed">Failed models</h2>', '<div class="failed">']
        out += [*_items([f"<code>{h(n)}</code>: {h(e)}" for n, e in v.failed], "failed"), "</div>"]
    if images:
        out.append('<h2 id="plots">Plots</h2>')
        for name, png in images.items():
            data = base64.b64encode(png).decode("ascii")
            cap = PLOT_TITLES.get(name, name)
            out += [
                f'<figure id="plot-{h(name)}">',
                f'<img src="data:image/png;base64,{data}" alt="{h(cap)}">',
                f"<figcaption>{h(cap)}</figcaption>",
                "</figure>",
            ]
    out.append('<h2 id="notes">Notes</h2>')
    out += _items([f"<b>{h(k)}</b>: {h(x)}" if k else h(x) for k, x in v.notes], "notes")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"
