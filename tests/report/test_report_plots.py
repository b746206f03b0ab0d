"""Plots: one figure per kind that has data, valid and byte-reproducible PNG and PDF files."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from evalsuite.report.plots import figure_bytes, make_plots, reliability_figure, robust_figure, save_plots

KINDS = {"reliability", "robust", "ood_roc", "ood_hist", "layer_density"}


def _check_png(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as im:
        im.verify()
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        return im.size


def _check_pdf(data: bytes) -> None:
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert b"/Type /Page" in data


def test_saved_plot_files_are_valid(report_dir):
    files = sorted(p.name for p in (report_dir / "plots").iterdir())
    assert files == sorted(f"{k}.{ext}" for k in KINDS for ext in ("png", "pdf"))
    for k in KINDS:
        w, h = _check_png((report_dir / "plots" / f"{k}.png").read_bytes())
        assert w > 200 and h > 200
        pdf = (report_dir / "plots" / f"{k}.pdf").read_bytes()
        _check_pdf(pdf)
        assert b"CreationDate" not in pdf and b"Matplotlib" not in pdf
        assert b"Software" not in (report_dir / "plots" / f"{k}.png").read_bytes()


def test_plots_are_reproducible(make_comparison):
    comp = make_comparison()
    a, b = robust_figure(comp), robust_figure(comp)
    assert figure_bytes(a, "png") == figure_bytes(b, "png")
    assert figure_bytes(a, "pdf") == figure_bytes(b, "pdf")


def test_reliability_panels_and_ece_titles(comparison):
    fig = make_plots(comparison)["reliability"]
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["dense\nECE 0.0310", "erk-0.1\nECE 0.0240", "uniform-0.2\nECE 0.0450"]


def test_robust_panel_per_attack_line_per_model(comparison):
    fig = make_plots(comparison)["robust"]
    assert [ax.get_title() for ax in fig.axes] == ["pgd_linf", "fgsm"]
    for ax in fig.axes:
        assert [line.get_label() for line in ax.get_lines()] == ["dense", "erk-0.1", "uniform-0.2"]
        assert ax.get_xlabel() == "ε (/255)"
        assert max(ax.get_lines()[0].get_xdata()) == pytest.approx(8)


def test_only_plots_with_data(make_comparison):
    comp = make_comparison()
    comp["plots"] = {"robust": comp["plots"]["robust"], "roc": {}, "hist": {}}
    for m in comp["models"]:
        m.pop("layer_density", None)
    assert set(make_plots(comp)) == {"robust"}
    comp["plots"] = {}
    assert make_plots(comp) == {}


def test_save_plots_writes_png_and_pdf(make_comparison, tmp_path):
    comp = make_comparison()
    comp["plots"] = {"robust": comp["plots"]["robust"]}
    for m in comp["models"]:
        m.pop("layer_density", None)
    paths = save_plots(comp, tmp_path / "p")
    assert sorted(p.name for p in paths) == ["robust.pdf", "robust.png"]
    assert all(p.is_file() for p in paths)


def test_missing_bins_and_nan_values(make_comparison):
    comp = make_comparison()
    rel = comp["plots"]["reliability"]["dense"]
    rel["accuracy"] = None  # no per-bin accuracy recorded
    comp["plots"]["robust"]["dense"]["fgsm"].append([16 / 255, None])
    _check_png(figure_bytes(reliability_figure(comp), "png"))
    _check_png(figure_bytes(robust_figure(comp), "png"))
