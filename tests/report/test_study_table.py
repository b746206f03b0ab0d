"""``evalsuite table``: the study table's numbers against an independent pandas groupby, its tests against
scipy and statsmodels, bold, the LaTeX structure (and a pdflatex compile where it exists), the figures."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from evalsuite.cli import main
from evalsuite.core.errors import DataError, UsageError
from evalsuite.report import study as S
from evalsuite.report import study_plots as SP
from tests.report import study_fixtures as F

ROBUST = "robust/pgd_linf/8_255/accuracy"


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    F.write_study(root)
    return root


def _expected() -> pd.DataFrame:
    """The same numbers straight from the fixture's generator, never through the loader."""
    recs = [{**p, "metric": m, "value": v} for p in F.points() for m, v in F.values(**_args(p)).items()]
    return pd.DataFrame(recs)


def _args(p: dict[str, Any]) -> dict[str, Any]:
    return {k: p[k] for k in ("width", "scheme", "density", "seed")}


def test_cells_equal_a_pandas_groupby(runs: Path) -> None:
    t = S.study_table(S.load_folder(runs), ["accuracy", "ece"], ["scheme", "density"], ["width"])
    exp = _expected()
    g = exp.groupby(["metric", "scheme", "density", "width"])["value"].agg(["mean", "std", "count"])
    assert len(t.cells) == 2 * 5 * 2  # 2 metrics x (dense + 2 schemes x 2 densities) x 2 widths
    for (metric, (scheme, density), (width,)), cell in t.cells.items():
        row = g.loc[(metric, scheme, density, width)]
        assert cell.mean == pytest.approx(row["mean"], rel=1e-12)
        assert cell.std == pytest.approx(row["std"], rel=1e-12)
        assert cell.n == row["count"] == 3
    assert t.row_keys[0] == ("dense", 1.0)  # the dense twin's row comes first
    assert t.fixed == {"dataset": "digits", "arch": "smallcnn"}
    csv = pd.read_csv(pd.io.common.StringIO(S.to_csv(t)))
    assert len(csv) == len(t.cells)
    assert {"mean", "std", "n", "delta", "p", "p_adj", "significant"} <= set(csv.columns)
    merged = csv.merge(g.reset_index(), on=["metric", "scheme", "density", "width"])
    assert np.allclose(merged["mean_x"], merged["mean_y"], rtol=1e-12)


def _by_seed(exp: pd.DataFrame, metric: str, **axes: Any) -> dict[int, float]:
    sel = exp[exp["metric"] == metric]
    for k, v in axes.items():
        sel = sel[sel[k] == v]
    return dict(zip(sel["seed"], sel["value"]))


def test_delta_and_p_equal_paired_t_and_bh_equals_statsmodels(runs: Path) -> None:
    t = S.study_table(S.load_folder(runs), ["accuracy", "nll"], ["scheme", "density"], ["width"], alpha=0.05)
    exp = _expected()
    for metric in ("accuracy", "nll"):
        keys = [k for k, c in t.cells.items() if k[0] == metric and not c.dense]
        assert len(keys) == 8
        raw = []
        for key in keys:
            _, (scheme, density), (width,) = key
            dense = _by_seed(exp, metric, scheme="dense", width=width)
            sparse = _by_seed(exp, metric, scheme=scheme, density=density, width=width)
            seeds = sorted(dense)
            a, b = [dense[s] for s in seeds], [sparse[s] for s in seeds]
            cell = t.cells[key]
            assert cell.delta == pytest.approx(np.mean(b) - np.mean(a), abs=1e-12)
            assert cell.p == pytest.approx(sps.ttest_rel(b, a).pvalue, rel=1e-9)
            assert cell.test.startswith("paired t")
            raw.append(cell.p)
        adj = multipletests(raw, method="fdr_bh")[1]
        for key, p in zip(keys, adj):
            assert t.cells[key].p_adj == pytest.approx(p, rel=1e-12)
            assert t.cells[key].significant == (p < 0.05)
    assert any(c.significant for c in t.cells.values())
    assert any(c.p_adj is not None and c.p_adj > c.p for c in t.cells.values())


def test_welch_when_seed_sets_differ(runs: Path) -> None:
    victim = {
        "dataset": "digits",
        "arch": "smallcnn",
        "width": 8,
        "scheme": "erk",
        "density": 0.05,
        "seed": 2,
    }
    shutil.rmtree(runs / F.job_id(victim))
    t = S.study_table(S.load_folder(runs), ["accuracy"], ["scheme", "density"], ["width"])
    cell = t.cells[("accuracy", ("erk", 0.05), (8,))]
    exp = _expected()
    a = list(_by_seed(exp, "accuracy", scheme="dense", width=8).values())
    b = [v for s, v in _by_seed(exp, "accuracy", scheme="erk", density=0.05, width=8).items() if s != 2]
    assert cell.n == 2 and cell.test.startswith("Welch t")
    assert cell.p == pytest.approx(sps.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-9)
    assert cell.delta == pytest.approx(np.mean(b) - np.mean(a), abs=1e-12)
    assert t.common_n() is None
    assert "(n=2)" in S.to_markdown(t)


def test_bold_marks_the_best_scheme_per_column(runs: Path) -> None:
    t = S.study_table(S.load_folder(runs), ["accuracy", "ece"], ["scheme", "density"], ["width"])
    md, tex = S.to_markdown(t), S.to_latex(t)
    for metric, pick in (("accuracy", max), ("ece", min)):
        for density in F.DENSITIES:
            for width in F.WIDTHS:
                cells = {s: t.cells[(metric, (s, density), (width,))] for s in F.SCHEMES}
                best = pick(cells, key=lambda s: cells[s].mean)
                for s, c in cells.items():
                    assert c.best == (s == best), (metric, density, width, s)
                    body = S.cell_parts(t, c)
                    shown = f"{body['mean']} ± {body['std']}"
                    assert (f"**{shown}**" in md) == (s == best)
                    assert (f"\\textbf{{{body['mean']} $\\pm$ {body['std']}}}" in tex) == (s == best)
    assert not any(c.best for c in t.cells.values() if c.dense)


def _tex_cells(line: str) -> list[str]:
    return re.split(r"(?<!\\)&", line.rstrip().removesuffix("\\\\"))


def _check_tex_structure(tex: str, ncols: int) -> None:
    assert tex.count("\\begin{tabular}") == tex.count("\\end{tabular}") == 1
    for rule in ("\\toprule", "\\midrule", "\\bottomrule"):
        assert tex.count(rule) == 1, rule
    body = tex[tex.index("\\begin{tabular}") : tex.index("\\end{tabular}")].splitlines()[1:]
    rows = [ln for ln in body if ln.rstrip().endswith("\\\\")]
    assert rows
    for ln in rows:
        n = sum(
            int(m.group(1)) if (m := re.match(r"\s*\\multicolumn\{(\d+)\}", c)) else 1 for c in _tex_cells(ln)
        )
        assert n == ncols, ln
    # every underscore and percent sign in the text is escaped
    # the only bare % ends the \resizebox line (a LaTeX comment that eats the newline)
    assert tex.count("{%\n\\begin{tabular}") == 1
    assert not re.search(r"(?<!\\)[_%]", tex.replace("\\label{tab:study}", "").replace("{%\n", "{\n"))


def test_latex_structure_and_escaping(runs: Path) -> None:
    frame = S.load_folder(runs)
    extra = frame[frame["metric"] == "accuracy"].assign(metric=ROBUST, value=lambda d: d["value"] / 2)
    frame = pd.concat([frame, extra], ignore_index=True)
    frame["scheme"] = frame["scheme"].replace({"uniform": "uniform_50%"})
    t = S.study_table(frame, ["accuracy", ROBUST], ["scheme", "density"], ["width"])
    tex = S.to_latex(t)
    _check_tex_structure(tex, 2 + 2 * 2)
    assert "pgd\\_linf" in tex and "uniform\\_50\\%" in tex
    assert tex.count("\\cmidrule") == 2
    t1 = S.study_table(frame, ["accuracy"], ["width", "scheme", "density"], [])
    _check_tex_structure(S.to_latex(t1), 3 + 1)


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex not installed")
def test_latex_compiles_with_pdflatex(runs: Path, tmp_path: Path) -> None:
    frame = S.load_folder(runs)
    frame["scheme"] = frame["scheme"].replace({"uniform": "uniform_50%"})
    t = S.study_table(frame, ["accuracy", "ece", "nll"], ["scheme", "density"], ["width"])
    (tmp_path / "table.tex").write_text(S.to_latex(t))
    doc = tmp_path / "doc.tex"
    doc.write_text(
        "\\documentclass{article}\\usepackage{booktabs,graphicx}\\begin{document}\\input{table.tex}\\end{document}\n"
    )
    r = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout[-2000:]
    assert (tmp_path / "doc.pdf").read_bytes().startswith(b"%PDF")


def test_store_pairs_equal_the_folder(runs: Path) -> None:
    pairs = [(p, F.make_result(p).to_json()) for p in F.points()]
    a = S.study_table(S.load_pairs(pairs), ["accuracy"], ["scheme", "density"], ["width"])
    b = S.study_table(S.load_folder(runs), ["accuracy"], ["scheme", "density"], ["width"])
    assert S.to_csv(a) == S.to_csv(b)
    assert a.n_jobs == b.n_jobs == len(pairs)
    triples = [(p, F.make_result(p).to_json(), F.job_id(p)) for p in F.points()]
    assert S.load_pairs(triples)["job_id"].nunique() == len(triples)


def test_flat_folder_counts_every_result(tmp_path: Path) -> None:
    for p in F.points():
        (tmp_path / f"{F.job_id(p)}.json").write_text(F.make_result(p).to_json())
    t = S.study_table(S.load_folder(tmp_path), ["accuracy"], ["scheme", "density"], ["width"])
    assert t.n_jobs == len(F.points()) and t.common_n() == 3


def test_axes_from_the_card_without_spec(tmp_path: Path, runs: Path) -> None:
    # any evalsuite result JSON counts, whatever its name
    F.write_study(tmp_path / "bare", with_spec=False, file_name="{job}.json")
    a = S.study_table(S.load_folder(tmp_path / "bare"), ["accuracy"], ["scheme", "density"], ["width"])
    b = S.study_table(S.load_folder(runs), ["accuracy"], ["scheme", "density"], ["width"])
    assert S.to_csv(a) == S.to_csv(b)


def test_loader_skips_unfinished_and_shards_and_refuses_duplicates(runs: Path) -> None:
    n = S.load_folder(runs)["job_id"].nunique()
    some = sorted(runs.iterdir())[0]
    (some / "status.json").write_text(json.dumps({"state": "failed"}))
    shard = F.make_result(F.points()[0])
    shard.config["shard"] = [0, 2]
    (runs / "x").mkdir()
    (runs / "x" / "shard-0-of-2.json").write_text(shard.to_json())
    (runs / "comparison.json").write_text(json.dumps({"schema": "evalsuite-comparison"}))
    assert S.load_folder(runs)["job_id"].nunique() == n - 1
    (runs / "copy").mkdir()
    shutil.copy(
        runs / sorted(p.name for p in runs.iterdir() if p.name.startswith("j"))[1] / "result.json",
        runs / "copy",
    )
    with pytest.raises(DataError, match="same grid point"):
        S.load_folder(runs)


def test_layout_errors(runs: Path) -> None:
    frame = S.load_folder(runs)
    with pytest.raises(UsageError, match=r"unknown metric 'acc'.*accuracy"):
        S.study_table(frame, ["acc"])
    with pytest.raises(UsageError, match=r"unknown axis 'depth'.*width"):
        S.study_table(frame, ["accuracy"], ["scheme", "depth"], ["width"])
    with pytest.raises(UsageError, match="overlap: density"):
        S.study_table(frame, ["accuracy"], ["scheme", "density"], ["density"])
    with pytest.raises(UsageError, match="'width' has 2 values"):
        S.study_table(frame, ["accuracy"], ["scheme", "density"], [])
    # the defaults: rows scheme x density, cols the other varying axis
    t = S.study_table(frame, ["accuracy"])
    assert (t.rows, t.cols) == (("scheme", "density"), ("width",))
    assert S.resolve_metrics(frame, ["*cc*"]) == ["accuracy"]


def test_cli_writes_tables_and_figures(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "table"
    argv = ["table", str(runs), "--metrics", "accuracy,ece", "--rows", "scheme,density", "--cols", "width"]
    assert main([*argv, "--out", str(out), "-q"]) == 0
    for name in ("table.tex", "table.md", "table.csv"):
        assert (out / name).stat().st_size > 0
    for m in ("accuracy", "ece"):
        for kind in ("vs-density", "gap-vs-size"):
            png, pdf = out / "figures" / f"{m}-{kind}.png", out / "figures" / f"{m}-{kind}.pdf"
            assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 5000
            assert pdf.read_bytes().startswith(b"%PDF")
    assert "wrote" in capsys.readouterr().out
    assert main([*argv, "--out", str(out), "-q"]) == 2  # exists: needs --force
    assert main([*argv, "--out", str(out), "-q", "--force", "--no-figures"]) == 0
    assert not (out / "figures").exists()
    (out / "mine.txt").write_text("keep")
    assert main([*argv, "--out", str(out), "-q", "--force"]) == 2
    assert (out / "mine.txt").read_text() == "keep"


def test_gap_figure_size_source(runs: Path) -> None:
    frame = S.load_folder(runs)
    sizes, where = SP.model_sizes(frame, ["width"])
    assert sizes == {(8,): F.params_of(8), (16,): F.params_of(16)} and "sparsity/params" in where
    sizes, where = SP.model_sizes(frame[frame["metric"] != SP.SIZE_METRIC], ["width"])
    assert sizes == {(8,): 100 * 8, (16,): 100 * 16} and "model card" in where
    fig, why = SP.gap_figure(frame[frame["width"] == 8], "accuracy")
    assert fig is None and "one model size" in why
