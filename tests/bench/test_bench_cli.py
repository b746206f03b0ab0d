"""`evalsuite bench` end to end: the smoke suite runs, the gate passes on a rerun and fails on a planted
regression, history and baselines are written."""

from __future__ import annotations

import json

import pytest

from evalsuite.bench.store import ResultStore
from evalsuite.cli import main


@pytest.fixture(scope="module")
def smoke_store(tmp_path_factory):
    """Two runs of the smoke suite (the second reuses the trained checkpoint and the eval cache)."""
    tmp = tmp_path_factory.mktemp("bench")
    store = tmp / "results.db"
    mp = pytest.MonkeyPatch()
    mp.setenv("EVALSUITE_CACHE", str(tmp / "cache"))
    for _ in range(2):
        assert (
            main(
                [
                    "-q",
                    "bench",
                    "run",
                    "smoke",
                    "--store",
                    str(store),
                    "--work-dir",
                    str(tmp / "work"),
                    "--cache",
                ]
            )
            == 0
        )
    yield tmp, store
    mp.undo()


def test_smoke_suite_runs_and_gate_passes_on_rerun(smoke_store, capsys):
    _tmp, store = smoke_store
    s = ResultStore(store, create=False)
    runs = s.runs("smoke")
    assert len(runs) == 2 and runs[0].git_revision == runs[1].git_revision
    metrics = s.metrics(runs[-1].id)
    assert set(metrics) == {"dense", "erk-0.1", "uniform-0.2"}
    assert metrics["erk-0.1"]["accuracy"].ci_low < metrics["erk-0.1"]["accuracy"].value
    assert metrics["uniform-0.2"]["sparsity/density"].value == pytest.approx(0.2, abs=1e-3)
    capsys.readouterr()
    assert main(["bench", "check", "smoke", "--store", str(store)]) == 0
    assert "gate passed" in capsys.readouterr().out


def test_gate_fails_on_planted_regression(smoke_store, capsys):
    tmp, store = smoke_store
    base = tmp / "baseline.json"
    assert main(["bench", "baseline", "smoke", "--store", str(store), "--out", str(base)]) == 0
    d = json.loads(base.read_text())
    # last week the sparse model was 10 points more robust: today's run is a regression
    rows = d["metrics"]["erk-0.1"]
    rows["robust/pgd_linf/8_255/accuracy"]["value"] += 0.10
    base.write_text(json.dumps(d))
    capsys.readouterr()
    assert main(["bench", "check", "smoke", "--store", str(store), "--baseline", str(base)]) == 1
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if "robust/pgd_linf/8_255/accuracy" in ln and "erk-0.1" in ln)
    assert "regression" in line.lower()


def test_tag_history_and_errors(smoke_store, capsys):
    tmp, store = smoke_store
    assert main(["bench", "tag", "smoke", "--store", str(store), "1", "week1"]) == 0
    assert main(["bench", "check", "smoke", "--store", str(store), "--baseline", "tag:week1"]) == 0
    assert main(["bench", "check", "smoke", "--store", str(store), "--baseline", "tag:nope"]) == 2
    out = tmp / "hist"
    assert (
        main(["bench", "history", "smoke", "--store", str(store), "--out", str(out), "--metric", "accuracy"])
        == 0
    )
    assert (out / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http" not in (out / "history.html").read_text()
    capsys.readouterr()
    assert main(["bench", "check", "smoke", "--store", str(tmp / "missing.db")]) == 1
    assert "missing.db" in capsys.readouterr().err
    bad = tmp / "bad.toml"
    bad.write_text('[[models]]\nname = "a"\ncheckpoint = "gone.pt"\n')
    assert main(["bench", "run", str(bad), "--store", str(store)]) == 2
    assert f"{bad}:3" in capsys.readouterr().err


def test_pinned_baseline_fits_the_smoke_suite_and_the_nightly_job(smoke_store):
    """The committed baseline covers exactly what a smoke run measures (values are machine-dependent and not
    compared here), and the example job gates on it, runs without the cache and saves only a passing run."""
    from pathlib import Path

    from evalsuite.bench.gate import load_baseline

    repo = Path(__file__).resolve().parents[2]
    suite, base = load_baseline(repo / "benchmarks" / "baselines" / "smoke.json")
    assert suite == "smoke"
    with ResultStore(smoke_store[1], create=False) as s:
        latest = s.metrics(s.latest("smoke").id)  # type: ignore[union-attr]
    assert {m: set(v) for m, v in base.items()} == {m: set(v) for m, v in latest.items()}
    wf = (repo / ".github" / "workflows" / "nightly.yml").read_text()
    run_step = next(ln for ln in wf.splitlines() if "bench run" in ln and not ln.lstrip().startswith("#"))
    assert "--cache" not in run_step
    assert "--baseline benchmarks/baselines/smoke.json" in " ".join(wf.split())
    save_step = wf[wf.index("name: save the results store") :].split("uses:")[0]
    assert "if: success()" in save_step
