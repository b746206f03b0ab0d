"""First-day trust in the report: warnings shown everywhere, '±' explained per table, rate CIs within
[0, 1], zero-variance seed verdicts, foreign models' scheme, notes as sentences, wide LaTeX split."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import numpy as np
import pytest

from evalsuite.core.results import EvalResult
from evalsuite.report.compare import (
    CompareSettings,
    ModelEntry,
    build_comparison,
    build_group_comparison,
    value_table,
)
from evalsuite.report.model import Verdict
from evalsuite.report.render import render_html, render_latex, render_markdown, render_terminal
from evalsuite.report.to_tex import TEX_MAX_COLUMNS
from evalsuite.report.write import comparison_json, write_report

WARNING = (
    "clean accuracy 0.1000 is near chance (1/10 classes): the usual cause is wrong input normalization "
    "(check --mean/--std or --no-normalize)"
)
FAST = CompareSettings(n_boot=50)


def _entry(
    name: str, correct: np.ndarray, seed: int = 0, warnings: list[str] | None = None, scheme: Any = "erk"
) -> ModelEntry:
    """A small but complete result: accuracy from ``correct``, logits consistent with it."""
    n = len(correct)
    labels = np.arange(n) % 10
    logits = np.zeros((n, 10), dtype=np.float32)
    logits[np.arange(n), np.where(correct, labels, (labels + 1) % 10)] = 5.0
    sparsity = {"scheme": scheme, "target_density": None} if scheme is not False else {}
    result = EvalResult(
        metrics={"accuracy": float(np.mean(correct)), "sparsity/density": 1.0},
        metric_info={},
        config={"n_bins": 15},
        conventions={"stats": {"wilson_ci": "Wilson score interval", "holm": "Holm step-down"}},
        data={"id": {"spec": "digits", "n": n, "of": n}, "ood": []},
        model={"card": {"arch": "smallcnn", "seed": seed, "sparsity": sparsity}, "sha256": "ab" * 32},
        provenance={"date": "2026-01-01"},
        sanity={"warnings": warnings} if warnings else {},
    )
    arrays = {
        "id/index": np.arange(n),
        "id/labels": labels,
        "id/logits": logits,
        "id/correct": correct.astype(bool),
    }
    return ModelEntry(name=name, source=f"{name}.pt", result=result, arrays=arrays)


def test_result_warning_reaches_every_format(tmp_path):
    rng = np.random.default_rng(0)
    ok = _entry("dense", rng.random(60) < 0.9)
    bad = _entry("foreign", rng.random(60) < 0.1, warnings=[WARNING])
    comp = build_comparison([ok, bad], settings=FAST)
    out = write_report(comp, tmp_path / "r")
    data = json.loads((out / "comparison.json").read_text())
    rec = next(m for m in data["models"] if m["name"] == "foreign")
    assert rec["warnings"] == [WARNING]
    assert next(m for m in data["models"] if m["name"] == "dense")["warnings"] == []
    md = (out / "report.md").read_text()
    # Prominent: before the models table, not buried in the notes.
    assert "## ⚠ Warnings" in md and md.index(WARNING) < md.index("## Models")
    assert "`foreign`" in md.split("## Models")[0]
    page = (out / "report.html").read_text()
    assert 'id="warnings"' in page and page.index("normalization") < page.index('id="models"')
    tex = (out / "tables.tex").read_text()
    assert "% WARNING foreign: clean accuracy 0.1000 is near chance" in tex
    assert r"\textbf{Warning (foreign):}" in tex
    term = render_terminal(data)
    assert f"WARNING foreign: {WARNING}" in term.splitlines()


def test_seed_group_warnings_name_the_member():
    rng = np.random.default_rng(1)
    groups = {
        "dense": [_entry(f"d{s}", rng.random(40) < 0.9, seed=s) for s in range(2)],
        "erk": [
            _entry("e0", rng.random(40) < 0.9, seed=0),
            _entry("e1", rng.random(40) < 0.1, seed=1, warnings=[WARNING]),
        ],
    }
    comp = build_group_comparison(groups, settings=FAST)
    erk = next(m for m in comp.models if m.name == "erk")
    assert erk.warnings == (f"e1: {WARNING}",)
    assert f"e1: {WARNING}" in render_markdown(json.loads(comparison_json(comp)))


def test_rate_cis_stay_in_unit_interval():
    # Every example right, N = 10: the Wilson interval ends exactly at 1.
    entry = _entry("perfect", np.ones(10, dtype=bool))
    acc = value_table(entry, FAST)["accuracy"]
    assert acc["value"] == 1.0 and acc["ci_high"] == 1.0 and 0.0 <= acc["ci_low"] < 1.0
    # Seeds at 1.0 and 0.9: mean +- t sd/sqrt(2) would pass 1; the interval is clipped and says so.
    groups = {
        "a": [_entry("a0", np.ones(10, dtype=bool), seed=0), _entry("a1", np.arange(10) > 0, seed=1)],
        "b": [_entry("b0", np.ones(10, dtype=bool), seed=0), _entry("b1", np.arange(10) > 1, seed=1)],
    }
    comp = build_group_comparison(groups, settings=FAST)
    for v in comp.row("accuracy").values.values():
        assert v.ci_low is not None and v.value is not None and v.ci_high is not None
        assert 0.0 <= v.ci_low <= v.value <= v.ci_high <= 1.0
        assert "clipped to [0, 1]" in str(v.ci_method)
    md = render_markdown(comp)
    assert not re.search(r"1\.0\d*[1-9]", md.split("## Across seeds")[0].split("## Clean")[1])


def test_zero_variance_group_verdict_is_not_blank():
    same = np.arange(20) % 4 != 0
    better = np.arange(20) % 10 != 0
    groups = {
        "dense": [_entry(f"d{s}", same, seed=s) for s in range(3)],
        "copy": [_entry(f"c{s}", same, seed=s) for s in range(3)],
        "erk": [_entry(f"e{s}", better, seed=s) for s in range(3)],
    }
    typed = build_group_comparison(groups, settings=FAST)
    row = typed.row("accuracy")
    assert row.deltas["copy"].verdict is Verdict.SAME
    assert row.deltas["copy"].note == "identical on every seed (zero variance)"
    assert row.deltas["erk"].verdict is Verdict.NOT_TESTED
    assert row.deltas["erk"].note == "zero variance across seeds; higher on every seed"
    comp = json.loads(comparison_json(typed))
    md = render_markdown(comp)
    line = next(x for x in md.splitlines() if x.startswith("| `accuracy`"))
    assert "n.s.; identical on every seed" in line
    assert "not tested (zero variance across seeds; higher on every seed)" in line
    assert "identical" in render_terminal(comp) and "not tested" in render_terminal(comp)
    assert "not tested" in render_latex(comp) and "not tested (zero variance" in render_html(comp, {})


@pytest.mark.parametrize(
    ("scheme", "density", "shown"),
    [(None, 1.0, "dense (no masks)"), (None, 0.4, "unknown (zeros in the weights)"), (None, None, "unknown")],
)
def test_foreign_model_scheme_is_words(make_comparison, scheme, density, shown):
    comp = make_comparison()
    comp["models"][1]["sparsity"] = {"scheme": scheme, "density": density}
    md = render_markdown(comp)
    models = md.split("## Models")[1].split("##")[0]
    assert "None" not in models and f"| {shown} |" in models
    assert f"<td>{shown}</td>" in render_html(comp, {})


def test_notes_have_no_raw_json(make_comparison):
    comp = make_comparison()
    comp["conventions"]["stats"] = {"wilson_ci": "Wilson score interval", "holm": "Holm step-down"}
    comp["conventions"]["bins"] = [15, "uniform"]
    comp["settings"]["extra_setting"] = {"a": 1}
    for text in (render_markdown(comp).split("## Notes")[1], render_html(comp, {}).split('id="notes"')[1]):
        assert not re.search(r'[{}]|":', text), text
    md = render_markdown(comp)
    assert "**stats: wilson ci**: Wilson score interval" in md and "**bins**: 15, uniform" in md


def test_every_table_says_what_plus_minus_means(comparison, make_comparison):
    md = render_markdown(comparison)
    legend = "± = half-width of the 95% CI"
    tables = re.findall(r"((?:^\|.*\|\n)+)\n(.*)\n", md, flags=re.M)
    assert len(tables) == 7  # models, clean, calibration, svhn (msp), svhn's other scores, robust, sparsity
    # Every table with intervals says what they mean; the models and sparsity tables have none.
    for _block, after in tables[1:6]:
        assert legend in after, after
    assert legend not in tables[6][1]
    page = render_html(comparison, {})
    assert page.count('<p class="legend">') == 5 and legend in page
    tex = render_latex(comparison)
    captions = re.findall(r"\\caption\{(.*)\}", tex)
    with_ci = [c for c in captions if not c.startswith("Sparsity")]
    assert tex.count(r"\ensuremath{\pm} = half-width of the 95\% CI") == len(with_ci) > 0
    seed = make_comparison(seed_groups=True)
    md = render_markdown(seed)
    assert "± = half-width of the 95% CI of the mean (t over seeds" in md
    assert "*mean ± sd = mean and sample standard deviation" in md.split("## Across seeds")[1]


def _sibling(name: str) -> Any:
    """The LaTeX structure checkers of the renderer tests (test folders are not packages)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _many_models(comp: dict[str, Any], k: int) -> dict[str, Any]:
    """The fixture widened to ``k`` ok models by copying the last one under new names."""
    comp = copy.deepcopy(comp)
    last = comp["models"][2]
    for i in range(k - 3):
        name = f"extra-{i}"
        comp["models"].insert(3 + i, {**copy.deepcopy(last), "name": name})
        for row in comp["metrics"]:
            if "uniform-0.2" in row["values"]:
                row["values"][name] = copy.deepcopy(row["values"]["uniform-0.2"])
            if "uniform-0.2" in row["deltas"]:
                row["deltas"][name] = copy.deepcopy(row["deltas"]["uniform-0.2"])
    return comp


def test_latex_with_many_models_stays_within_the_page(comparison):
    render_tests = _sibling("test_report_render")
    comp = _many_models(comparison, 8)
    tex = render_latex(comp)
    render_tests._check_balanced_latex(tex)
    render_tests._check_columns(tex)
    specs = re.findall(r"\\begin\{tabular\}\{([a-z]+)\}", tex)
    assert specs and max(len(s) for s in specs) <= TEX_MAX_COLUMNS
    # Every tabular is shrunk to the text width when wider, never enlarged.
    assert tex.count(r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%") == len(specs)
    # Nothing lost: every model's ECE value and every compared model's Δ header is there.
    for name in ["dense", "erk-0.1", "uniform-0.2", *(f"extra-{i}" for i in range(5))]:
        assert name.replace("_", r"\_") in tex
    assert tex.count(r"\ensuremath{-} dense}") == 7 * 4  # 7 compared models x 4 tested tables
    assert "part 1 of" in tex
