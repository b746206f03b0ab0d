"""The same tiny digits study on the three engines, for real: local worker processes, a local Ray with 2 CPUs,
and submitit's local executor (one array job, as on Slurm). CPU jobs compute with one thread, so the three
must store the very same metrics for every job."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evalsuite.bench.engines import slurm_minutes
from evalsuite.bench.store import ResultStore
from evalsuite.cli import main
from evalsuite.core.errors import UsageError

from .test_study_run import _suite


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))


def _values(db: Path, suite: str) -> dict[str, dict[str, float]]:
    with ResultStore(db, create=False) as s:
        return {j: {k: r.value for k, r in rows.items()} for j, rows in s.job_metrics(suite).items()}


def test_local_ray_and_slurm_engines_store_the_same_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = _suite(tmp_path / "tiny.toml")
    runs: dict[str, dict[str, dict[str, float]]] = {}
    extra = {
        "local": ["--workers", "2"],
        "ray": ["--workers", "2"],
        "slurm": ["--slurm-cluster", "local", "--slurm-array-parallelism", "2", "--slurm-time", "30"],
    }
    for engine, flags in extra.items():
        db = tmp_path / f"{engine}.db"
        argv = ["bench", "run", str(suite), "--store", str(db), "--runs-dir", str(tmp_path / engine)]
        code = main(["-q", *argv, "--engine", engine, *flags])
        out = capsys.readouterr()
        assert code == 0, (engine, out.err)
        assert "4 of 4 jobs done (0 finished before, 4 ran now), 0 failed" in out.out, engine
        runs[engine] = _values(db, "tiny-study")
    local = runs["local"]
    assert len(local) == 4
    for engine in ("ray", "slurm"):
        assert runs[engine].keys() == local.keys(), engine
        for job, metrics in local.items():
            other = runs[engine][job]
            assert other.keys() == metrics.keys(), (engine, job)
            for name, v in metrics.items():
                w = other[name]
                assert (math.isnan(v) and math.isnan(w)) or v == w, (engine, job, name, v, w)
    # the paper table from the store equals the one from the job folders (the same results, two readers)
    for source, args in (
        ("store", ["--store", str(tmp_path / "local.db"), "--suite", "tiny-study"]),
        ("folder", [str(tmp_path / "local")]),
    ):
        out_dir = str(tmp_path / f"table-{source}")
        flags = ["--rows", "scheme,density", "--cols", "seed", "--metrics", "accuracy,nll", "--out", out_dir]
        code = main(["-q", "table", *args, *flags, "--no-figures"])
        assert code == 0, capsys.readouterr().err
    csv_store = (tmp_path / "table-store" / "table.csv").read_text()
    assert csv_store == (tmp_path / "table-folder" / "table.csv").read_text()
    assert csv_store.count("\n") > 4
    # a rerun on another engine finds every job finished in its runs dir and submits nothing
    rerun = ["--runs-dir", str(tmp_path / "slurm"), "--engine", "ray", "--workers", "2"]
    code = main(["-q", "bench", "run", str(suite), "--store", str(tmp_path / "slurm.db"), *rerun])
    assert code == 0 and "4 of 4 jobs done (4 finished before, 0 ran now)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("720", 720), ("12:00:00", 720), ("1-00:00", 1440), ("90:00", 90), ("0:30:01", 31), ("2-1", 2881)],
)
def test_slurm_time_limits_read_as_slurm_reads_them(text: str, minutes: int) -> None:
    assert slurm_minutes(text) == minutes


@pytest.mark.parametrize("text", ["", "12h", "1:2:3:4", "0", "x-1:00"])
def test_bad_slurm_time_limits_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="--slurm-time"):
        slurm_minutes(text)


def test_a_restarted_slurm_driver_follows_running_array_tasks_instead_of_resubmitting(tmp_path: Path) -> None:
    """kill -9 of the driver alone (the array tasks keep running, as on a cluster when the login shell
    dies), then the same command again: every job ends done and none was submitted twice."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from evalsuite.bench.engines_slurm import SUBMITTED

    from .test_study_run import REPO

    suite = _suite(tmp_path / "tiny.toml", epochs=3, limit_train=600)
    db, runs = tmp_path / "s.db", tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "evalsuite.cli", "-q", "bench", "run", str(suite), "--store", str(db)]
    cmd += ["--runs-dir", str(runs), "--engine", "slurm", "--slurm-cluster", "local"]
    submitted = runs / "_submitit" / SUBMITTED
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if submitted.exists() and len(submitted.read_text().splitlines()) >= 4:
                break
            time.sleep(0.05)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # the driver only: its array tasks go on
        proc.wait()
    assert len(submitted.read_text().splitlines()) == 4
    code = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert code.returncode == 0, code.stderr
    keys = [json.loads(line)["key"] for line in submitted.read_text().splitlines()]
    assert len(keys) == len(set(keys)) == 4, keys
    with ResultStore(db, create=False) as s:
        assert sorted(r.state for r in s.jobs("tiny-study")) == ["done"] * 4
