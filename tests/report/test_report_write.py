"""write_report: every file, all at once; refuses to clobber; an interrupted write changes nothing."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from evalsuite.core.errors import DataError, UsageError
from evalsuite.report import write as W
from evalsuite.report.model import as_comparison
from evalsuite.report.write import load_comparison, write_report

FILES = {"report.md", "report.html", "tables.tex", "metrics.csv", "comparison.json", "plots"}


@pytest.fixture
def fast_plots(monkeypatch):
    """Skip matplotlib where a test is about the folder, not the figures."""
    monkeypatch.setattr(
        W, "plot_files", lambda comp: {"robust.png": b"\x89PNG fake", "robust.pdf": b"%PDF fake"}
    )


def _leftovers(parent: Path, name: str) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


def test_full_report(report_dir, comparison):
    assert {p.name for p in report_dir.iterdir()} == FILES | {".evalsuite-report"}
    assert _leftovers(report_dir.parent, report_dir.name) == []
    assert load_comparison(report_dir / "comparison.json") == as_comparison(comparison)
    assert load_comparison(report_dir).reference == "dense"  # a folder works too
    df = pd.read_csv(report_dir / "metrics.csv")
    assert len(df) == 3 * len(comparison["metrics"])
    md = (report_dir / "report.md").read_text(encoding="utf-8")
    assert "robust/pgd_linf/8_255/accuracy" in md
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    assert html.count("<img ") == 5
    assert (report_dir / "tables.tex").read_text(encoding="utf-8").count(r"\toprule") == 9
    # Ordinary permissions, not tempfile's private 0700.
    assert report_dir.stat().st_mode & 0o055 == (0o755 & ~_umask()) & 0o055


def _umask() -> int:
    out = subprocess.run(["sh", "-c", "umask"], capture_output=True, text=True).stdout.strip()
    return int(out, 8)


def test_refuses_existing_folder_without_force(fast_plots, comparison, tmp_path):
    out = tmp_path / "rep"
    write_report(comparison, out)
    before = (out / "report.md").read_bytes()
    with pytest.raises(UsageError, match="exists; pass --force to replace it"):
        write_report(comparison, out)
    assert (out / "report.md").read_bytes() == before
    assert _leftovers(tmp_path, "rep") == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_force_replaces(fast_plots, comparison, tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(W, "_exchange", lambda a, b: False)
    out = tmp_path / "rep"
    monkeypatch.setattr(W, "plot_files", lambda comp: {"robust.png": b"\x89PNG", "stale.png": b"\x89PNG"})
    write_report(comparison, out)
    monkeypatch.setattr(W, "plot_files", lambda comp: {"robust.png": b"\x89PNG fake"})
    comparison["reference"] = "dense"
    comparison["settings"]["alpha"] = 0.01
    write_report(comparison, out, force=True)
    assert {p.name for p in out.iterdir()} == FILES | {".evalsuite-report"}
    assert {p.name for p in (out / "plots").iterdir()} == {"robust.png"}  # the old report's plot is gone
    assert load_comparison(out).settings.alpha == 0.01
    assert _leftovers(tmp_path, "rep") == []


@pytest.mark.parametrize("stage", ["render", "swap"])
def test_failure_keeps_old_report(fast_plots, comparison, tmp_path, monkeypatch, stage):
    out = tmp_path / "rep"
    write_report(comparison, out)
    snapshot = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    if stage == "render":
        monkeypatch.setattr(W.to_tex, "emit", boom)  # after plots and some files are written
    else:
        monkeypatch.setattr(W, "_exchange", lambda a, b: False)
        real_rename = W.os.rename
        calls = []

        def flaky_rename(src, dst):
            calls.append((src, dst))
            if len(calls) == 2:  # old moved away, new one about to move in
                raise OSError("interrupted")
            return real_rename(src, dst)

        monkeypatch.setattr(W.os, "rename", flaky_rename)
    with pytest.raises((RuntimeError, OSError)):
        write_report(comparison, out, force=True)
    monkeypatch.undo()
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == snapshot
    assert _leftovers(tmp_path, "rep") == []


def test_failure_on_new_folder_leaves_nothing(fast_plots, comparison, tmp_path, monkeypatch):
    monkeypatch.setattr(W.to_html, "emit", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_report(comparison, tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


def test_force_never_replaces_a_foreign_folder(fast_plots, comparison, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    with pytest.raises(UsageError, match="not an evalsuite report"):
        write_report(comparison, tmp_path / "mine", force=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError):
        write_report(comparison, tmp_path / "file", force=True)
    (tmp_path / "empty").mkdir()
    write_report(comparison, tmp_path / "empty", force=True)
    assert (tmp_path / "empty" / "report.md").is_file()


def test_nan_becomes_null(fast_plots, comparison, tmp_path):
    import numpy as np

    comparison["metrics"][0]["values"]["dense"]["ci_low"] = float("nan")
    comparison["metrics"][0]["values"]["erk-0.1"]["value"] = np.float32(0.5)
    comparison["plots"]["roc"]["dense"]["svhn"]["energy"]["auroc"] = math.inf
    out = write_report(comparison, tmp_path / "r")
    text = (out / "comparison.json").read_text(encoding="utf-8")
    assert "NaN" not in text and "Infinity" not in text
    back = load_comparison(out)
    assert back.metrics[0].values["dense"].ci_low is None
    assert back.metrics[0].values["erk-0.1"].value == 0.5
    assert pd.read_csv(io.StringIO((out / "metrics.csv").read_text())).shape[0] > 0


def test_load_comparison_checks_schema(tmp_path, comparison):
    with pytest.raises(DataError, match="no such file"):
        load_comparison(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_comparison(tmp_path / "bad.json")
    (tmp_path / "result.json").write_text(json.dumps({"schema": "evalsuite-result", "schema_version": 1}))
    with pytest.raises(DataError, match="not an evalsuite comparison"):
        load_comparison(tmp_path / "result.json")
    (tmp_path / "v3.json").write_text(json.dumps({**comparison, "schema_version": 3}))
    with pytest.raises(DataError, match="schema version 3, this evalsuite reads 1 and 2"):
        load_comparison(tmp_path / "v3.json")
    (tmp_path / "v2.json").write_text(json.dumps({**comparison, "schema_version": 2}))  # v1 body
    with pytest.raises(DataError, match="malformed comparison"):
        load_comparison(tmp_path / "v2.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DataError):
        load_comparison(tmp_path / "list.json")
    with pytest.raises(DataError):
        write_report({"schema": "nope"}, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_report_from_json_alone_without_torch_or_pyplot(report_dir, tmp_path):
    """What a laptop without torch does: load comparison.json, rebuild the report."""
    code = (
        "import sys\n"
        "from evalsuite.report.write import load_comparison, write_report\n"
        f"comp = load_comparison({str(report_dir)!r})\n"
        # One figure is enough to prove matplotlib works without pyplot; all five take seconds.
        "from evalsuite.report.model import replace\n"
        "models = tuple(replace(m, layer_density=()) for m in comp.models)\n"
        "comp = replace(comp, plots={'robust': comp.plots['robust']}, models=models)\n"
        f"write_report(comp, {str(tmp_path / 'again')!r})\n"
        "assert 'torch' not in sys.modules, 'report imported torch'\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'report imported pyplot'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("report.md", "tables.tex", "metrics.csv", "plots/robust.png", "plots/robust.pdf"):
        assert (tmp_path / "again" / name).read_bytes() == (report_dir / name).read_bytes(), name


def test_force_replaces_only_what_the_marker_lists(fast_plots, comparison, tmp_path):
    out = tmp_path / "rep"
    write_report(comparison, out)
    marker = json.loads((out / ".evalsuite-report").read_text())
    assert set(marker["files"]) == {
        p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file() and p.name != ".evalsuite-report"
    }
    (out / "plots" / "my-figure.svg").write_text("<svg/>")
    with pytest.raises(UsageError, match=r"plots/my-figure\.svg, which evalsuite did not write"):
        write_report(comparison, out, force=True)
    assert (out / "plots" / "my-figure.svg").read_text() == "<svg/>"
    (out / "plots" / "my-figure.svg").unlink()
    write_report(comparison, out, force=True)


def test_force_replaces_a_report_from_before_the_marker(fast_plots, comparison, tmp_path):
    out = tmp_path / "rep"
    write_report(comparison, out)
    (out / ".evalsuite-report").unlink()
    write_report(comparison, out, force=True)
    (out / ".evalsuite-report").unlink()
    (out / "notes.md").write_text("mine")
    with pytest.raises(UsageError, match=r"notes\.md"):
        write_report(comparison, out, force=True)


def test_force_refuses_a_linked_folder_and_inputs_inside(fast_plots, comparison, tmp_path):
    write_report(comparison, tmp_path / "real")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(UsageError, match="not a report folder"):
        write_report(comparison, tmp_path / "link", force=True)
    (tmp_path / "real" / "dense.json").write_text("{}")
    with pytest.raises(UsageError, match="holds the input"):
        write_report(comparison, tmp_path / "real", force=True, inputs=[tmp_path / "real" / "dense.json"])
    assert (tmp_path / "real" / "dense.json").read_text() == "{}"


def test_leftovers_of_dead_writers_are_removed(fast_plots, comparison, tmp_path):
    dead = tmp_path / ".rep.tmp-999999999-0badf00d"
    old_style = tmp_path / ".rep.old-0badf00d"
    alive = tmp_path / ".rep.tmp-1-0badf00d"  # pid 1 is always running: its writer may still be at work
    other = tmp_path / ".report.tmp-999999999-0badf00d"  # another target's
    for d in (dead, old_style, alive, other):
        d.mkdir()
        (d / "report.md").write_text("half")
    write_report(comparison, tmp_path / "rep")
    assert not dead.exists() and not old_style.exists()
    assert alive.exists() and other.exists()
