"""Renderers: every metric and verdict shown, LaTeX escaped and balanced, CSV long format, HTML offline."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from typing import Any

import pandas as pd
import pytest

from evalsuite.report.model import Value, Verdict, as_comparison
from evalsuite.report.render import render_csv, render_html, render_latex, render_markdown, render_terminal
from evalsuite.report.table import best_models, fmt_value_ci
from evalsuite.report.to_tex import tex_escape


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (3, 2), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


PNG = _png()
NASTY = "erk_0.1 & 50%#"


def _metric_names(comp: dict[str, Any]) -> list[str]:
    return [row["name"] for row in comp["metrics"]]


# ---------------------------------------------------------------- Markdown


def test_markdown_has_every_metric_verdict_and_failure(comparison):
    md = render_markdown(comparison)
    for name in _metric_names(comparison):
        assert f"`{name}`" in md
    for group in (
        "## Clean",
        "## Calibration",
        "## OOD detection: svhn (msp score)",
        "## Adversarial robustness",
        "## Sparsity",
    ):
        assert group in md
    assert "`ece` ↓" in md and "`accuracy` ↑" in md
    # erk-0.1 is better on ECE; uniform-0.2 worse on accuracy; the rest n.s.
    ece_line = next(line for line in md.splitlines() if line.startswith("| `ece`"))
    assert "▲ better" in ece_line and "▼ worse" in ece_line
    assert "**0.0240**" in ece_line  # lower ECE is best
    acc_line = next(line for line in md.splitlines() if line.startswith("| `accuracy`"))
    assert "n.s." in acc_line and "-0.0041 [-0.0101, +0.0019]" in acc_line and "0.600" in acc_line
    assert "## Failed models" in md and "`broken`: CheckpointError" in md
    assert "**FAILED**" in md
    # Sparsity has no tests, so its table has no delta columns.
    sp = md.split("## Sparsity")[1].split("##")[0]
    assert "Δ" not in sp and "11,173,962" in sp


def test_markdown_tables_are_well_formed(comparison):
    md = render_markdown(comparison)
    blocks = re.findall(r"((?:^\|.*\|\n)+)", md, flags=re.M)
    assert len(blocks) == 7  # models + five groups, OOD with its folded other scores
    for block in blocks:
        counts = {len(re.findall(r"(?<!\\)\|", line)) for line in block.splitlines()}
        assert len(counts) == 1, block


def test_markdown_escapes_pipes(make_comparison):
    comp = make_comparison(names=("dense", "a|b", "c"))
    md = render_markdown(comp)
    assert "a\\|b" in md
    blocks = re.findall(r"((?:^\|.*\|\n)+)", md, flags=re.M)
    for block in blocks:
        assert len({len(re.findall(r"(?<!\\)\|", line)) for line in block.splitlines()}) == 1


def test_seed_groups_section(make_comparison):
    comp = make_comparison(seed_groups=True)
    md = render_markdown(comp)
    assert "## Across seeds" in md and "`dense-s0`" in md and "0.9312 ± 0.0020 (3)" in md
    assert "Across seeds" in render_html(comp, {})


# ---------------------------------------------------------------- verdicts and formatting


def test_verdict_never_read_from_text(make_comparison):
    """A version 1 file's verdict text is ignored: the numbers (adjusted p, sign, direction) decide."""
    comp = make_comparison()
    ece = next(r for r in comp["metrics"] if r["name"] == "ece")
    ece["deltas"]["erk-0.1"]["verdict"] = "worse"  # p_holm 0.004, delta < 0, lower is better: better
    acc = comp["metrics"][0]
    acc["deltas"]["erk-0.1"]["verdict"] = "better"  # p_holm 0.6: no significant difference
    typed = as_comparison(comp)
    assert typed.row("ece").deltas["erk-0.1"].verdict is Verdict.BETTER
    assert typed.row("accuracy").deltas["erk-0.1"].verdict is Verdict.SAME
    assert typed.row("accuracy").deltas["uniform-0.2"].verdict is Verdict.WORSE
    md = render_markdown(comp)
    assert "▲ better" in next(x for x in md.splitlines() if x.startswith("| `ece`"))
    # and the emitters never parse it either: a verdict enum renders as its words, whatever the note says
    from evalsuite.report.model import replace

    row = typed.row("ece")
    odd = replace(row.deltas["erk-0.1"], note="worse than before")
    assert "better" in render_markdown(replace(typed, metrics=(replace(row, deltas={"erk-0.1": odd}),)))


def test_value_ci_symmetric_and_not():
    assert fmt_value_ci(Value(0.5, 0.49, 0.51)) == ("0.5000", "± 0.0100")
    # Wilson near 1 is lopsided: show both bounds, never a misleading ±.
    assert fmt_value_ci(Value(0.999, 0.994, 0.9998)) == ("0.9990", "[0.9940, 0.9998]")
    assert fmt_value_ci(Value(None)) == ("n/a", "")
    assert fmt_value_ci(Value(0.3)) == ("0.3000", "")


def test_best_respects_direction_and_ok_models(comparison):
    comparison["metrics"][0]["values"]["broken"] = {"value": 0.99}
    comp = as_comparison(comparison)
    ok = ["dense", "erk-0.1", "uniform-0.2"]
    assert best_models(comp.row("ece"), ok) == {"erk-0.1"}
    assert best_models(comp.row("ood/svhn/energy/fpr95"), ok) == {"dense"}
    assert best_models(comp.row("sparsity/density"), ok) == set()
    # A value from a model not in the ok list never wins.
    assert best_models(comp.row("accuracy"), ok) == {"dense"}


# ---------------------------------------------------------------- LaTeX


def _check_balanced_latex(tex: str) -> None:
    stack = []
    for kind, env in re.findall(r"\\(begin|end)\{([^}]*)\}", tex):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack.pop() == env, f"unbalanced \\end{{{env}}}"
    assert not stack, f"unclosed environments {stack}"
    # Braces balance once escaped braces are removed.
    depth = 0
    for c in re.sub(r"\\[{}]", "", tex):
        depth += {"{": 1, "}": -1}.get(c, 0)
        assert depth >= 0
    assert depth == 0
    # Math shifts pair up within each line (no stray $).
    for line in tex.splitlines():
        if not line.startswith("%"):
            assert len(re.findall(r"(?<!\\)\$", line)) % 2 == 0, line


def _check_columns(tex: str) -> None:
    for spec, body in re.findall(r"\\begin\{tabular\}\{([a-z]+)\}(.*?)\\end\{tabular\}", tex, flags=re.S):
        for line in body.splitlines():
            if line.endswith(r"\\"):
                cells = re.split(r"(?<!\\)&", line[:-2])
                span = sum(int(m) for m in re.findall(r"\\multicolumn\{(\d+)\}", line))
                n_multi = len(re.findall(r"\\multicolumn", line))
                assert len(cells) - n_multi + span == len(spec), line


def test_latex_structure_and_best(comparison):
    tex = render_latex(comparison)
    _check_balanced_latex(tex)
    _check_columns(tex)
    # Three models: each tested group splits into a value table and a difference table; sparsity has one.
    assert tex.count(r"\toprule") == tex.count(r"\bottomrule") == tex.count(r"\begin{tabular}") == 9
    assert tex.count(r"\midrule") == 9
    assert r"ece \ensuremath{\downarrow}" in tex and r"accuracy \ensuremath{\uparrow}" in tex
    values_line, delta_line = [line for line in tex.splitlines() if line.startswith("ece ")]
    cells = values_line.split(" & ")
    assert cells[3].startswith(r"\textbf{0.0240}") and r"\textbf" not in cells[2] + cells[4]
    assert "-0.0070 [-0.0130, -0.0010]" in delta_line
    assert "robust/pgd\\_linf/8\\_255/accuracy" in tex
    assert "% FAILED model broken" in tex


def test_latex_escapes_names(make_comparison):
    comp = make_comparison(names=("dense", NASTY, "x~y^z{w}$\\"))
    tex = render_latex(comp)
    assert r"erk\_0.1 \& 50\%\#" in tex
    assert r"x\textasciitilde{}y\textasciicircum{}z\{w\}\$\textbackslash{}" in tex
    assert NASTY not in tex
    _check_balanced_latex(tex)
    _check_columns(tex)


def test_tex_escape_is_single_pass():
    assert tex_escape("\\&") == r"\textbackslash{}\&"
    assert tex_escape("a<b>") == r"a\textless{}b\textgreater{}"


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles(make_comparison, tmp_path):
    comp = make_comparison(names=("dense", NASTY, "uniform-0.2"))
    comp["models"][1]["warnings"] = ["accuracy near chance & 50% off: check normalization (--mean/--std)"]
    doc = (
        # Portrait A4: wide tables must shrink to the text width rather than run off the page.
        "\\documentclass[a4paper]{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
        "\\begin{document}\n" + render_latex(comp) + "\\end{document}\n"
    )
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "t.pdf").read_bytes().startswith(b"%PDF")
    assert "Overfull \\hbox" not in (tmp_path / "t.log").read_text(errors="replace")


# ---------------------------------------------------------------- CSV


def test_csv_long_format(comparison):
    df = pd.read_csv(io.StringIO(render_csv(comparison)))
    for col in (
        "model",
        "metric",
        "value",
        "ci_low",
        "ci_high",
        "n",
        "delta",
        "delta_ci_low",
        "delta_ci_high",
    ):
        assert col in df.columns
    for col in ("p_value", "p_adjusted", "family", "correction", "verdict"):
        assert col in df.columns
    assert len(df) == len(comparison["metrics"]) * 3
    assert set(df["model"]) == {"dense", "erk-0.1", "uniform-0.2"}  # failed model has no rows
    ref = df[df["model"] == "dense"]
    assert ref["delta"].isna().all() and ref["verdict"].isna().all()
    row = df[(df["model"] == "erk-0.1") & (df["metric"] == "ece")].iloc[0]
    assert row["value"] == pytest.approx(0.024)
    assert row["delta"] == pytest.approx(-0.007)
    assert row["p_adjusted"] == pytest.approx(0.004)
    assert row["verdict"] == Verdict.BETTER.value
    acc = df[(df["model"] == "dense") & (df["metric"] == "accuracy")].iloc[0]
    assert acc["n"] == 10000
    sp = df[df["metric"] == "sparsity/density"]
    assert sp["delta"].isna().all() and len(sp) == 3


def test_csv_full_precision_and_escaping(make_comparison):
    comp = make_comparison(names=("dense", NASTY, 'q"uote,comma'))
    df = pd.read_csv(io.StringIO(render_csv(comp)))
    assert {NASTY, 'q"uote,comma'} <= set(df["model"])
    lo = comp["metrics"][0]["values"]["dense"]["ci_low"]
    assert df[(df["model"] == "dense") & (df["metric"] == "accuracy")]["ci_low"].iloc[0] == lo


# ---------------------------------------------------------------- terminal


def test_terminal_aligned_with_verdicts(comparison):
    txt = render_terminal(comparison)
    for name in _metric_names(comparison):
        # the OOD set's other scores are folded: counted, not listed
        assert name in txt or "/energy/" in name
    assert "(2 more rows, other scores: energy: see report.md)" in txt
    assert "WORSE" in txt and "better" in txt and "n.s." in txt and "FAILED broken" in txt
    lines = txt.splitlines()
    ece = next(line for line in lines if line.strip().startswith("ece"))
    assert "-0.0070  better" in ece and "+0.0140  WORSE" in ece
    # Within one group, the value columns line up: "dense" header right edge = each value's right edge.
    i = lines.index("Clean")
    header, acc = lines[i + 1], lines[i + 2]
    assert header.index("dense") + len("dense") == acc.index("0.9312") + len("0.9312")
    assert "\x1b" not in txt  # plain text, no colour codes


# ---------------------------------------------------------------- HTML


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.attrs: list[tuple[str, str, str]] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [(tag, k, v or "") for k, v in attrs]


def check_offline_html(page: str, no_url_text: bool = True) -> list[bytes]:
    """Assert the page cannot reach the network; return its decoded images.

    ``no_url_text`` also forbids URLs in plain text (the fixture has none; user text may).
    """
    p = _Collect()
    p.feed(page)
    assert "script" not in p.tags and "link" not in p.tags and "iframe" not in p.tags
    for tag, k, v in p.attrs:
        if k in ("src", "href", "srcset", "action", "poster", "data"):
            assert v.startswith("data:") or v.startswith("#"), (tag, k, v[:80])
    assert not re.search(r"(?i)url\(|@import", page)
    if no_url_text:
        assert not re.search(r"(?i)https?://|//[a-z0-9.-]+\.[a-z]{2,}/", page)
    images = []
    for tag, k, v in p.attrs:
        if tag == "img" and k == "src":
            head, b64 = v.split(",", 1)
            assert head == "data:image/png;base64"
            images.append(base64.b64decode(b64, validate=True))
    return images


def test_html_self_contained(comparison):
    page = render_html(comparison, {"reliability": PNG, "robust": PNG})
    images = check_offline_html(page)
    assert len(images) == 2
    from PIL import Image

    for data in images:
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    for name in _metric_names(comparison):
        assert name in page
    assert page.count("<table>") == 7
    assert 'class="v-worse"' in page and "v-better" in page
    assert 'id="failed"' in page and "CheckpointError" in page
    assert "Content-Security-Policy" in page


def test_html_escapes(make_comparison):
    comp = make_comparison(names=("dense", "<script>alert(1)</script>", "a&b"))
    comp["models"][-1]["error"] = '<img src="http://evil.example/x.png">'
    page = render_html(comp, {})
    assert "<script>" not in page and "&lt;script&gt;" in page and "a&amp;b" in page
    assert "&lt;img src=&quot;http://evil.example/x.png&quot;&gt;" in page
    assert check_offline_html(page, no_url_text=False) == []
