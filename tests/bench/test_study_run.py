"""Studies end to end on the real local engine (spawned worker processes, CPU): every job lands in the store
once; a kill -9 of the driver loses nothing and redoes nothing; a failing job is recorded and never blocks
the others; a killed training resumes; sharded batteries merge exactly; ``gpus = 2`` trains under torchrun.

Each study is a tiny slice of study-digits (smallcnn width 8, 1-3 epochs on 300-600 training images, a
battery on 100 test images with one attack), so a test takes seconds, most of them process start-up.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from evalsuite.bench.engines import LocalEngine
from evalsuite.bench.jobs import RESUME, is_finished, read_status, train_job
from evalsuite.bench.plan import plan_suite
from evalsuite.bench.runner import Overrides
from evalsuite.bench.store import ResultStore
from evalsuite.bench.study import run_study
from evalsuite.bench.suite import load_suite
from evalsuite.cli import main
from evalsuite.core.results import EvalResult
from evalsuite.models.checkpoint import load_checkpoint
from evalsuite.train import run_training

REPO = Path(__file__).resolve().parents[2]


def _suite(
    path: Path,
    *,
    name: str = "tiny-study",
    width: str = "8",
    seeds: str = "[0, 1]",
    twins: bool = True,
    epochs: int = 1,
    limit_train: int = 300,
    grid_extra: str = "",
    tail: str = "",
) -> Path:
    path.write_text(
        f"""name = "{name}"

[grid]
dataset = "digits"
arch = "smallcnn"
scheme = "erk"
density = 0.1
seed = {seeds}
dense_twins = {str(twins).lower()}
{grid_extra}

[grid.arch_kwargs]
width = {width}

[grid.recipe]
epochs = {epochs}

[grid.train]
limit_train = {limit_train}

[battery]
checks = ["clean", "calibration", "ood", "robust", "sparsity"]
attacks = ["fgsm"]
eps = ["8/255"]
limit = 100

[data]
id = "digits"
ood = ["gaussian"]

[compare]
n_boot = 50
{tail}"""
    )
    return path


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["-q", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(
        (math.isnan(a[k]) and math.isnan(b[k]))
        if isinstance(a[k], float) and math.isnan(a[k])
        else a[k] == b[k]
        for k in a
    )


def _store_counts(db: Path, suite: str) -> tuple[int, int]:
    con = sqlite3.connect(db)
    try:
        n, distinct = con.execute(
            "SELECT COUNT(*), COUNT(DISTINCT job_id) FROM jobs WHERE suite=?", (suite,)
        ).fetchone()
    finally:
        con.close()
    return int(n), int(distinct)


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))


def test_two_local_workers_run_every_job_once_into_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = _suite(tmp_path / "tiny.toml")
    db, runs = tmp_path / "s.db", tmp_path / "runs"
    code, out, err = _cli(
        capsys, "bench", "run", str(suite), "--store", str(db), "--runs-dir", str(runs), "--workers", "2"
    )
    assert code == 0, err
    assert "4 of 4 jobs done (0 finished before, 4 ran now), 0 failed" in out
    plan = plan_suite(load_suite(str(suite), loading=False), Overrides())
    with ResultStore(db, create=False) as s:
        recs = {r.job_id: r for r in s.jobs("tiny-study")}
        metrics = s.job_metrics("tiny-study")
    assert set(recs) == {j.job_id for j in plan.jobs}
    assert _store_counts(db, "tiny-study") == (4, 4)
    for job in plan.jobs:
        d = runs / job.job_id
        assert is_finished(d)
        st = read_status(d)
        assert st is not None and st["state"] == "done" and st["device"] == "cpu" and st["error"] is None
        assert Path(st["log"]).exists() and json.loads((d / "spec.json").read_text()) == json.loads(
            json.dumps(job.to_dict())
        )
        result = EvalResult.load(d / "result.json")
        rec = recs[job.job_id]
        assert rec.state == "done" and rec.axes == job.axes and rec.host == st["host"]
        assert json.loads(rec.result_json or "") == json.loads(result.to_json())
        stored = metrics[job.job_id]
        assert set(stored) == set(result.metrics)
        for name, value in result.metrics.items():
            assert stored[name].value == pytest.approx(value, nan_ok=True, rel=0, abs=0)
    # the sparse job's metrics are its own, not its twin's
    sparse = next(j for j in plan.jobs if not j.dense)
    assert (
        metrics[sparse.job_id]["sparsity/density"].value
        != metrics[sparse.twin or ""]["sparsity/density"].value
    )
    code, out, _ = _cli(capsys, "bench", "check", str(suite), "--store", str(db))
    assert code == 0 and "4 of 4 jobs done" in out
    # one worker gives the very same numbers: a job's arithmetic does not depend on the engine's width
    alone = run_study(
        load_suite(str(suite)), tmp_path / "one.db", Overrides(), tmp_path / "one", LocalEngine(1)
    )
    assert alone.complete and len(alone.ran) == 4
    with ResultStore(tmp_path / "one.db", create=False) as s:
        single = s.job_metrics("tiny-study")
    assert single.keys() == metrics.keys()
    for j, rows in single.items():
        assert _same({k: v.value for k, v in rows.items()}, {k: v.value for k, v in metrics[j].items()}), j
    code, out, _ = _cli(capsys, "bench", "status", str(suite), "--runs-dir", str(runs))
    assert code == 0 and out.startswith(f"4 jobs in {runs}: 4 done") and "smallcnn-width8" not in out
    assert out.count(" done ") == 4 and "smallcnn-erk-d0.1-s1" in out


def test_kill_9_of_the_driver_then_rerun_redoes_nothing_finished(tmp_path: Path) -> None:
    suite = _suite(tmp_path / "tiny.toml", seeds="[0, 1, 2]", epochs=2, limit_train=500)
    db, runs = tmp_path / "s.db", tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "evalsuite.cli", "-q", "bench", "run", str(suite), "--store", str(db)]
    cmd += ["--runs-dir", str(runs), "--workers", "1"]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            states = [(read_status(d) or {}).get("state") for d in runs.glob("*")] if runs.exists() else []
            if "done" in states:
                break
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its workers, as a crash or the OOM killer would
        proc.wait()
    plan = plan_suite(load_suite(str(suite), loading=False), Overrides())
    finished = {j.job_id for j in plan.jobs if is_finished(runs / j.job_id)}
    assert 0 < len(finished) < len(plan.jobs), (
        f"the kill came too late to leave work: {len(finished)} finished"
    )
    before = {j: (runs / j / "status.json").read_bytes() for j in finished}
    model_before = {j: (runs / j / "model.pt").stat().st_mtime_ns for j in finished}

    outcome = run_study(load_suite(str(suite)), db, Overrides(), runs, LocalEngine(workers=1))
    assert set(outcome.skipped) == finished
    assert set(outcome.ran) == {j.job_id for j in plan.jobs} - finished
    assert outcome.complete and not outcome.failures
    for j in finished:  # not redone: status and checkpoint untouched
        assert (runs / j / "status.json").read_bytes() == before[j]
        assert (runs / j / "model.pt").stat().st_mtime_ns == model_before[j]
    assert _store_counts(db, "tiny-study") == (6, 6)
    with ResultStore(db, create=False) as s:
        assert all(r.state == "done" for r in s.jobs("tiny-study"))
        counts = {j: len(m) for j, m in s.job_metrics("tiny-study").items()}
    assert counts == {j: len(EvalResult.load(runs / j / "result.json").metrics) for j in counts}
    # a third run finds everything finished
    again = run_study(load_suite(str(suite)), db, Overrides(), runs)
    assert set(again.skipped) == {j.job_id for j in plan.jobs} and again.ran == ()
    assert _store_counts(db, "tiny-study") == (6, 6)


def test_failing_job_is_recorded_and_retried_only_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = "\n[[grid.include]]\nwidth = -2\nseed = 0\n"
    suite = _suite(tmp_path / "tiny.toml", twins=False, tail=bad)
    db, runs = tmp_path / "s.db", tmp_path / "runs"
    argv = ["bench", "run", str(suite), "--store", str(db), "--runs-dir", str(runs), "--workers", "2"]
    code, out, err = _cli(capsys, *argv)
    assert code == 1
    assert "2 of 3 jobs done" in out and "1 failed" in out
    [line] = [ln for ln in err.splitlines() if "error:" in ln]
    assert "1 job(s) failed: smallcnn-width-2-erk-d0.1-s0" in line
    assert "RuntimeError: Trying to create tensor with negative dimension" in line
    plan = plan_suite(load_suite(str(suite), loading=False), Overrides())
    failed = next(j for j in plan.jobs if j.axes["width"] == -2)
    with ResultStore(db, create=False) as s:
        recs = {r.job_id: r for r in s.jobs("tiny-study")}
    assert recs[failed.job_id].state == "failed" and "negative dimension" in (
        recs[failed.job_id].reason or ""
    )
    assert sorted(r.state for r in recs.values()) == ["done", "done", "failed"]
    st = read_status(runs / failed.job_id)
    assert st is not None and st["state"] == "failed" and "negative dimension" in st["error"]
    assert "negative dimension" in Path(st["log"]).read_text()

    code, out, _ = _cli(capsys, "bench", "check", str(suite), "--store", str(db))
    assert code == 1
    assert f"FAILED  smallcnn-width-2-erk-d0.1-s0 ({failed.job_id}): RuntimeError" in out
    code, out, _ = _cli(capsys, "bench", "status", str(suite), "--runs-dir", str(runs), "--store", str(db))
    assert code == 0 and "3 jobs in" in out and "2 done, 1 failed" in out
    assert "error: RuntimeError: Trying to create tensor" in out and st["log"] in out

    snapshot = {j.job_id: (runs / j.job_id / "status.json").read_bytes() for j in plan.jobs}
    code, out, _ = _cli(capsys, *argv)  # a plain rerun leaves the failure as it is
    assert code == 1 and "(2 finished before, 0 ran now), 1 failed" in out
    assert {j: (runs / j / "status.json").read_bytes() for j in snapshot} == snapshot
    code, out, _ = _cli(capsys, *argv, "--retry-failed")  # runs only the failed job again (it fails again)
    assert code == 1 and "(2 finished before, 0 ran now), 1 failed" in out
    for j in plan.jobs:
        same = (runs / j.job_id / "status.json").read_bytes() == snapshot[j.job_id]
        assert same == (j.job_id != failed.job_id), j.name
    assert _store_counts(db, "tiny-study") == (3, 3)


def test_killed_training_resumes_from_its_last_epoch(tmp_path: Path) -> None:
    suite = _suite(tmp_path / "tiny.toml", seeds="[0]", twins=False, epochs=3)
    plan = plan_suite(load_suite(str(suite)), Overrides())
    [job] = plan.jobs
    runs = tmp_path / "runs"
    d = runs / job.job_id
    d.mkdir(parents=True)

    class Killed(Exception):
        pass

    def kill_after_first(epoch: int, record: dict[str, object]) -> None:
        if epoch == 1:
            raise Killed

    tj = train_job(job, d, "cpu")
    tj.options.on_epoch_end = kill_after_first
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a job computes on CPU: the same arithmetic as the worker below
    try:
        with pytest.raises(Killed):
            run_training(tj)
    finally:
        torch.set_num_threads(threads)
    assert (d / RESUME).exists() and not (d / "model.pt").exists()
    first_epoch = (d / "model.log.jsonl").read_text()

    out = run_study(load_suite(str(suite)), tmp_path / "s.db", Overrides(), runs, LocalEngine(workers=1))
    assert out.complete and out.ran == (job.job_id,)
    assert "resuming from" in (d / "worker.log").read_text() and not (d / RESUME).exists()
    log = (d / "model.log.jsonl").read_text()
    assert log.startswith(first_epoch)
    assert [json.loads(line)["epoch"] for line in log.splitlines()] == [1, 2, 3]
    # the same job never interrupted: the same weights
    fresh = tmp_path / "fresh"
    run_study(load_suite(str(suite)), tmp_path / "f.db", Overrides(), fresh, LocalEngine(workers=1))
    resumed, _, _ = load_checkpoint(d / "model.pt")
    straight, _, _ = load_checkpoint(fresh / job.job_id / "model.pt")
    for (k, a), b in zip(resumed.state_dict().items(), straight.state_dict().values()):
        assert torch.equal(a, b), k


def test_two_shards_merge_to_the_unsharded_result(tmp_path: Path) -> None:
    one = _suite(tmp_path / "one.toml", seeds="[0]", twins=False)
    two = _suite(
        tmp_path / "two.toml", name="tiny-sharded", seeds="[0]", twins=False, grid_extra="shards = 2"
    )
    r1 = run_study(
        load_suite(str(one)), tmp_path / "s.db", Overrides(), tmp_path / "r1", LocalEngine(workers=2)
    )
    r2 = run_study(
        load_suite(str(two)), tmp_path / "s.db", Overrides(), tmp_path / "r2", LocalEngine(workers=2)
    )
    assert r1.complete and r2.complete and r1.ran == r2.ran  # sharding is not part of a job's identity
    job_id = r1.ran[0]
    d1, d2 = tmp_path / "r1" / job_id, tmp_path / "r2" / job_id
    assert (d2 / "shard-0-of-2.json").exists() and (d2 / "shard-1-of-2.json").exists()
    assert not (d1 / "shard-0-of-2.json").exists()
    m1, _, _ = load_checkpoint(d1 / "model.pt")
    m2, _, _ = load_checkpoint(d2 / "model.pt")
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    a, b = EvalResult.load(d1 / "result.json"), EvalResult.load(d2 / "result.json")
    assert _same(a.metrics, b.metrics)
    st = read_status(d2)
    assert st is not None and st["state"] == "done" and st["stage"] == "merge"
    with ResultStore(tmp_path / "s.db", create=False) as s:
        m_one, m_two = s.job_metrics("tiny-study")[job_id], s.job_metrics("tiny-sharded")[job_id]
    assert {k: v.value for k, v in m_one.items()}.keys() == {k: v.value for k, v in m_two.items()}.keys()
    assert _same({k: v.value for k, v in m_one.items()}, {k: v.value for k, v in m_two.items()})


def test_job_with_two_gpus_trains_under_torchrun_on_cpu(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = _suite(tmp_path / "tiny.toml", seeds="[0]", twins=False, grid_extra="gpus = 2")
    runs = tmp_path / "runs"
    code, _, err = _cli(
        capsys, "bench", "run", str(suite), "--store", str(tmp_path / "s.db"), "--runs-dir", str(runs)
    )
    assert code == 0, err
    [d] = list(runs.iterdir())
    _, card, _ = load_checkpoint(d / "model.pt")
    assert card.provenance["world_size"] == 2
    log = (d / "worker.log").read_text()
    assert "torch.distributed.run" in log and "--nproc_per_node=2" in log and "[rank 1]" in log


def test_status_shows_pending_and_interrupted_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = _suite(tmp_path / "tiny.toml")
    runs = tmp_path / "runs"
    plan = plan_suite(load_suite(str(suite), loading=False), Overrides())
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs: the worker of an interrupted job
    import socket

    d = runs / plan.jobs[0].job_id
    d.mkdir(parents=True)
    (d / "status.json").write_text(
        json.dumps(
            {
                "state": "running",
                "host": socket.gethostname(),
                "pid": gone.pid,
                "started": "2025-01-01T00:00:00Z",
                "device": "cpu",
                "log": str(d / "worker.log"),
            }
        )
    )
    code, out, _ = _cli(capsys, "bench", "status", str(suite), "--runs-dir", str(runs))
    assert code == 0
    assert out.splitlines()[0] == f"4 jobs in {runs}: 1 interrupted, 3 pending"
    assert out.count("pending  ") == 3 and str(d / "worker.log") in out
    code, out, _ = _cli(capsys, "bench", "status", str(suite), "--runs-dir", str(runs), "--epochs", "2")
    assert "4 pending" in out and "1 other job folder(s)" in out


def test_plan_lists_the_digits_study(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "bench", "plan", "study-digits")
    assert code == 0
    assert out.startswith("study study-digits: 60 jobs")
    assert "dense twins: 6; sparse jobs: 54" in out and "width: 8 (30), 16 (30)" in out
    jobs = [ln.split() for ln in out.splitlines() if re.fullmatch(r"  [0-9a-f]{16}  \S+ +\S+", ln)]
    assert len(jobs) == 60 and len({j[0] for j in jobs}) == 60
    assert sum(j[2] == "-" for j in jobs) == 6
    assert "60 jobs, 480 training epochs in all" in out and "no time estimate" in out


def test_a_worker_killed_mid_job_fails_that_job_only(tmp_path: Path) -> None:
    """The OOM killer takes a worker: its job is recorded failed with the reason, the jobs queued behind it
    run on a fresh pool."""
    import threading

    suite = _suite(tmp_path / "tiny.toml", seeds="[0, 1]", epochs=3, limit_train=600)
    runs = tmp_path / "runs"
    victim: dict[str, object] = {}

    def kill_first_running() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not victim:
            for d in runs.glob("*") if runs.exists() else []:
                st = read_status(d) or {}
                if st.get("state") == "running" and st.get("pid"):
                    os.kill(int(st["pid"]), signal.SIGKILL)
                    victim.update(job_id=d.name, pid=st["pid"])
                    return
            time.sleep(0.01)

    watcher = threading.Thread(target=kill_first_running, daemon=True)
    watcher.start()
    out = run_study(load_suite(str(suite)), tmp_path / "s.db", Overrides(), runs, LocalEngine(workers=1))
    watcher.join()
    assert victim, "no job was seen running"
    assert list(out.failures) == [victim["job_id"]]
    assert "worker process died while running it (BrokenProcessPool" in out.failures[str(victim["job_id"])]
    assert len(out.ran) == 3 and victim["job_id"] not in out.ran
    st = read_status(runs / str(victim["job_id"]))
    assert st is not None and st["state"] == "failed" and "worker process died" in st["error"]
    with ResultStore(tmp_path / "s.db", create=False) as s:
        states = {r.job_id: r.state for r in s.jobs("tiny-study")}
    assert sorted(states.values()) == ["done", "done", "done", "failed"]
    assert states[str(victim["job_id"])] == "failed"
