"""History views: the text table, the PNG and the self-contained HTML page."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.image import imread

from evalsuite.bench.history import history_figure, history_html, history_png, history_table, plot_history
from evalsuite.bench.store import MetricRow, ModelRun, ResultStore


@pytest.fixture
def df(tmp_path: Path) -> pd.DataFrame:
    with ResultStore(tmp_path / "r.db") as s:
        for i in range(4):
            models = {
                "dense": ModelRun(
                    {
                        "accuracy": MetricRow(0.90 + i / 100, 0.89 + i / 100, 0.91 + i / 100, 1000, True),
                        "ece": MetricRow(0.03, 0.02, 0.04, 1000, False),
                        "robust/pgd_linf/8_255/accuracy": MetricRow(0.2 - i / 50, None, None, 1000, True),
                        "sparsity/nonzero_params": MetricRow(270000 + i, None, None, None, False),
                    }
                ),
                "erk<&>": ModelRun({"accuracy": MetricRow(0.85, 0.84, 0.86, 1000, True)}),
            }
            meta = {"started": f"2024-06-0{i + 1}T02:00:00+00:00", "git_revision": f"rev{i}abcdef0123456"}
            if i == 1:
                meta["tag"] = "v1"
            s.add_run("smoke", models, meta)
        return s.history("smoke")


def test_history_table(df: pd.DataFrame) -> None:
    text = history_table(df)
    lines = text.splitlines()
    # Columns are dated; run ids and tags on the line below.
    assert lines[0].split()[:2] == ["model", "metric"]
    assert lines[0].split()[-4:] == ["2024-06-01", "2024-06-02", "2024-06-03", "2024-06-04"]
    assert lines[1].split() == ["#1", "#2", "v1", "#3", "#4"]
    assert len(lines) == 2 + 5  # one row per (model, metric)
    acc = next(line for line in lines if line.startswith("dense") and " accuracy " in line)
    assert acc.split()[-4:] == ["0.9", "0.91", "0.92", "0.93"] and "↑" in acc
    assert "270003" in text  # counts in full
    assert history_table(df, last=2).splitlines()[1].split() == ["#3", "#4"]
    only = history_table(df, metrics=["ece"])
    assert len(only.splitlines()) == 3 and "ece" in only
    assert history_table(df.iloc[0:0]) == "no runs\n"


def test_history_png_and_html(df: pd.DataFrame, tmp_path: Path) -> None:
    out = plot_history(df, tmp_path / "plots" / "history.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    img = imread(io.BytesIO(data), format="png")
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert history_png(df) == data  # reproducible bytes
    sel = history_png(df, metrics=["accuracy", "ece"])
    assert sel[:8] == b"\x89PNG\r\n\x1a\n" and sel != data
    assert history_png(df.iloc[0:0])[:4] == b"\x89PNG"
    page = history_html(df, data, title="smoke <history>")
    assert page.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," in page
    assert not re.search(r"https?:", page, re.I)  # nothing fetched from outside
    assert all(src.startswith("data:") for src in re.findall(r'(?:src|href)="([^"]*)"', page))
    assert "@import" not in page and "url(" not in page
    assert "erk&lt;&amp;&gt;" in page and "erk<&>" not in page and "smoke &lt;history&gt;" in page
    assert "rev3abcdef01" in page and "<table>" in page
    assert "<th>2024-06-03<br><small>#3</small></th>" in page and "#2 v1" in page
    assert "no runs" in history_html(df.iloc[0:0], None)


def test_history_figure_panels_per_group_dated_and_labelled(df: pd.DataFrame) -> None:
    import matplotlib.dates as mdates

    fig = history_figure(df)
    axes = [ax for ax in fig.axes if ax.axison]
    titles = [ax.get_title() for ax in axes]
    assert titles == ["Clean", "Calibration", "Adversarial robustness", "Sparsity (counts)"]
    clean = axes[0]
    labels = [t.get_text() for t in clean.get_legend().get_texts()]
    assert labels == ["dense · accuracy ↑", "erk<&> · accuracy ↑"]
    robust = axes[2].get_legend().get_texts()[0].get_text()
    assert robust == "dense · pgd_linf 8/255 ↑"
    for ax in axes:
        # A date axis: the locator and formatter are matplotlib's date ones, the data are day numbers.
        assert isinstance(ax.xaxis.get_major_locator(), mdates.AutoDateLocator)
        assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)
        assert ax.get_xlabel() == "run date (UTC)"
    xs = clean.get_lines()[0].get_xdata()
    assert [mdates.num2date(mdates.date2num(x)).strftime("%Y-%m-%d") for x in xs] == [
        "2024-06-01",
        "2024-06-02",
        "2024-06-03",
        "2024-06-04",
    ]
    assert any(t.get_text() == "v1" for t in clean.texts)  # the tagged run is marked
    # A selection still groups by metric group.
    sel = history_figure(df, metrics=["accuracy", "ece", "robust/pgd_linf/8_255/accuracy"])
    assert [ax.get_title() for ax in sel.axes if ax.axison] == [
        "Clean",
        "Calibration",
        "Adversarial robustness",
    ]


def test_history_without_dates_falls_back_to_run_numbers(df: pd.DataFrame) -> None:
    undated = df.assign(started=None)
    fig = history_figure(undated)
    ax = next(a for a in fig.axes if a.axison)
    assert ax.get_xlabel() == "run" and list(ax.get_lines()[0].get_xdata()) == [1, 2, 3, 4]
    assert history_table(undated).splitlines()[0].split()[-4:] == ["?"] * 4


def test_no_pyplot_no_torch() -> None:
    import subprocess

    code = (
        "import sys, evalsuite.bench.store, evalsuite.bench.gate, evalsuite.bench.history;"
        "print('torch' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
