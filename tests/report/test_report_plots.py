"""Plots: one figure per kind that has data, valid and byte-reproducible PNG and PDF files."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from evalsuite.report.plots import (
    attack_title,
    figure_bytes,
    hist_figure,
    layer_density_figure,
    layer_order,
    make_plots,
    reliability_figure,
    robust_figure,
    save_plots,
)

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
    assert [ax.get_title() for ax in fig.axes] == ["PGD (L∞)", "FGSM (L∞)"]
    for ax in fig.axes:
        assert [line.get_label() for line in ax.get_lines()] == ["dense", "erk-0.1", "uniform-0.2"]
        assert ax.get_xlabel().startswith("ε (L∞")
        assert max(ax.get_lines()[0].get_xdata()) == pytest.approx(8 / 255)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["0", "2/255", "4/255", "8/255"]


def test_robust_ci_bands(make_comparison):
    comp = make_comparison()
    for curves in comp["plots"]["robust"].values():
        for pts in curves.values():
            for p in pts:
                p += [max(0.0, p[1] - 0.05), min(1.0, p[1] + 0.05)]
    fig = robust_figure(comp)
    ax = fig.axes[0]
    assert len(ax.collections) == 3  # one band per model
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() >= 0.0 and band[:, 1].max() <= 1.0
    # Older comparisons (points without CIs) still plot, without bands.
    assert len(robust_figure(make_comparison()).axes[0].collections) == 0


@pytest.mark.parametrize(
    ("attack", "title"), [("pgd_l2", "PGD (L2)"), ("apgd_linf", "APGD (L∞)"), ("square", "SQUARE")]
)
def test_attack_titles(attack, title):
    assert attack_title(attack) == title


def test_reliability_legend_is_complete(comparison):
    fig = reliability_figure(comparison)
    for ax in (a for a in fig.axes if a.get_visible()):
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == ["perfect calibration", "accuracy per bin", "gap to mean confidence"]


def test_msp_histogram_on_log_tail_axis(make_comparison):
    comp = make_comparison()
    rng = np.random.default_rng(0)
    # A trained net: ID confidences pile up within 1e-4 of 1, OOD ones a little lower.
    for m in comp["plots"]["hist"]:
        comp["plots"]["hist"][m]["svhn"]["msp"] = {
            "id": (-(1 - 10 ** rng.uniform(-6, -3, 300))).tolist(),
            "ood": (-(1 - 10 ** rng.uniform(-3, -0.5, 300))).tolist(),
        }
    comp["metrics"].insert(0, {"name": "ood/svhn/msp/auroc", "group": "ood", "values": {}, "deltas": {}})
    fig = hist_figure(comp)
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel().startswith("1 − max softmax")
    id_bars = [p for p in ax.patches if p.get_label() != "_nolegend_"][:1]
    heights = np.array([p.get_height() for p in ax.containers[0]])
    lefts = np.array([p.get_x() for p in ax.containers[0]])
    # The ID mass is spread over many bins between 1e-6 and 1e-3, not squashed into one bar.
    assert id_bars and (heights[(lefts >= 1e-6) & (lefts < 1e-3)] > 0).sum() >= 10
    # The energy score keeps its linear axis.
    comp["metrics"].pop(0)
    comp["metrics"] = [r for r in comp["metrics"] if "msp" not in r["name"]]
    assert hist_figure(comp).axes[0].get_xscale() == "linear"


def test_layer_order_by_depth_across_models():
    shallow = [{"layer": n, "depth": i} for i, n in enumerate(["stem", "block1", "zhead"])]
    deep = [{"layer": n, "depth": i} for i, n in enumerate(["stem", "block1", "block2", "block3", "zhead"])]
    # Names in neither alphabetical nor first-seen order: depth decides.
    assert layer_order([shallow, deep]) == ["stem", "block1", "block2", "block3", "zhead"]
    rev = [{"layer": n, "depth": i} for i, n in enumerate(["z.conv", "a.conv", "m.fc"])]
    assert layer_order([rev]) == ["z.conv", "a.conv", "m.fc"]
    # No depth recorded (older comparisons): list order is the depth.
    assert layer_order([[{"layer": "b"}, {"layer": "a"}]]) == ["b", "a"]


def test_layer_density_plot_aligns_models(make_comparison):
    comp = make_comparison()
    names = ["stem", "block1", "block2", "block3", "zhead"]
    comp["models"][0]["layer_density"] = [
        {"layer": n, "density": 1.0, "numel": 10, "depth": i} for i, n in enumerate(names)
    ]
    comp["models"][1]["layer_density"] = [
        {"layer": n, "density": 0.1, "numel": 10, "depth": i}
        for i, n in enumerate(["stem", "block1", "zhead"])
    ]
    comp["models"][2].pop("layer_density")
    ax = layer_density_figure(comp).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    assert list(ax.get_lines()[1].get_xdata()) == [0, 1, 4]  # the shallow model's head sits at the end


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
