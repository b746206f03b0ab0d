"""The Ray and Slurm engines with the real engines: a local Ray (2 CPUs) and submitit's local executor.

Workers import the task functions of ``_engine_tasks.py`` by name, through PYTHONPATH, as a study's
workers import ``evalsuite.bench.jobs.run_task``.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import evalsuite
from evalsuite.bench.engines import Resources
from evalsuite.bench.engines_ray import RayEngine
from evalsuite.bench.engines_slurm import SUBMITTED, SlurmEngine
from evalsuite.core.errors import EvalsuiteError, UsageError

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import _engine_tasks as tasks  # noqa: E402

TIMEOUT = 180


@pytest.fixture(scope="module")
def ray_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayEngine]:
    # Workers get only the tasks' folder on PYTHONPATH and start outside the checkout: evalsuite itself
    # must reach them through the engine (this venv's editable install points at another checkout).
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", str(HERE))
        mp.chdir(tmp_path_factory.mktemp("ray-cwd"))
        engine = RayEngine(num_cpus=2, max_retries=0)
    yield engine
    engine.close()


def test_ray_runs_tasks_with_their_resources(ray_engine: RayEngine) -> None:
    assert ray_engine.name == "ray"
    assert ray_engine.started_here
    assert "local Ray started here (2 CPUs, 0 GPUs)" in ray_engine.describe()
    one = ray_engine.submit_many(tasks.square, [{"x": x} for x in range(4)], Resources(cpus=1))
    two = ray_engine.submit_many(tasks.square, [{"x": 7}], Resources(cpus=2))
    got = [f.result(timeout=TIMEOUT) for f in one + two]
    assert [r["y"] for r in got] == [0, 1, 4, 9, 49]
    # Ray sizes a task's thread pool by its num_cpus: the request reached the scheduler
    assert [r["omp"] for r in got] == ["1", "1", "1", "1", "2"]
    assert all(r["pid"] != os.getpid() for r in got)
    where = ray_engine.submit_many(tasks.evalsuite_file, [{}], Resources())[0].result(timeout=TIMEOUT)
    assert where["file"] == evalsuite.__file__


def test_ray_failures_are_failed_futures_with_one_line(ray_engine: RayEngine) -> None:
    futs = ray_engine.submit_many(tasks.boom, [{"x": x} for x in range(3)], Resources())
    died = ray_engine.submit_many(tasks.hard_exit, [{"x": 0}], Resources())[0]
    assert futs[0].result(timeout=TIMEOUT)["y"] == 0
    assert futs[2].result(timeout=TIMEOUT)["y"] == 4
    err = futs[1].exception(timeout=TIMEOUT)
    assert isinstance(err, EvalsuiteError)
    assert "\n" not in str(err) and "ValueError: boom on x=1" in str(err)
    assert isinstance(err.__cause__, ValueError)
    crash = died.exception(timeout=TIMEOUT)
    assert isinstance(crash, EvalsuiteError)
    assert "\n" not in str(crash) and "WorkerCrashedError" in str(crash)


def test_ray_refuses_what_a_local_ray_cannot_give(ray_engine: RayEngine) -> None:
    with pytest.raises(UsageError, match=r"asks for 1 CPU\(s\) and 1 GPU\(s\).*has 2 CPU\(s\) and 0 GPU"):
        ray_engine.submit_many(tasks.square, [{"x": 1}], Resources(gpus=1))
    with pytest.raises(UsageError, match="asks for 3 CPU"):
        ray_engine.submit_many(tasks.square, [{"x": 1}], Resources(cpus=3))


def test_ray_leaves_a_session_it_did_not_open(ray_engine: RayEngine) -> None:
    import ray

    guest = RayEngine()
    assert not guest.started_here
    assert guest.submit_many(tasks.square, [{"x": 3}], Resources())[0].result(timeout=TIMEOUT)["y"] == 9
    guest.close()
    assert ray.is_initialized()


@pytest.fixture
def task_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # submitit's local jobs inherit the driver's environment, as sbatch exports it on a cluster
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), str(HERE)]))


def test_slurm_local_runs_an_array_and_records_it(tmp_path: Path, task_env: None) -> None:
    engine = SlurmEngine(tmp_path / "_submitit", cluster="local", cpus_per_job=1)
    try:
        assert engine.name == "slurm"
        assert "submitit local executor" in engine.describe()
        payloads = [{"x": x, "spec": {"job_id": f"job{x}"}} for x in range(3)]
        futs = engine.submit_many(tasks.square, payloads, Resources(cpus=2))
        assert [f.result(timeout=TIMEOUT)["y"] for f in futs] == [0, 1, 4]
        assert len({f.result()["pid"] for f in futs} | {os.getpid()}) == 4
        lines = (tmp_path / "_submitit" / SUBMITTED).read_text().splitlines()
        records = [json.loads(ln) for ln in lines]
        assert [r["key"] for r in records] == ["job0", "job1", "job2"]
        assert [(r["key"], r["job_id"]) for r in records] == engine.submitted
        assert SlurmEngine.reattach(tmp_path / "_submitit") == []
    finally:
        engine.close()


def test_slurm_local_failures_carry_a_one_line_reason(tmp_path: Path, task_env: None) -> None:
    engine = SlurmEngine(tmp_path, cluster="local")
    try:
        futs = engine.submit_many(tasks.boom, [{"x": 0}, {"x": 1}], Resources())
        died = engine.submit_many(tasks.hard_exit, [{"x": 0}], Resources())[0]
        assert futs[0].result(timeout=TIMEOUT)["y"] == 0
        err = futs[1].exception(timeout=TIMEOUT)
        assert isinstance(err, EvalsuiteError)
        assert "\n" not in str(err) and "ValueError: boom on x=1" in str(err)
        crash = died.exception(timeout=TIMEOUT)
        assert isinstance(crash, EvalsuiteError)
        assert "\n" not in str(crash)
        assert "no result" in str(crash) and "stderr: dying on purpose" in str(crash)
        with pytest.raises(EvalsuiteError, match=r"slurm: submission failed: .*lock"):
            engine.submit_many(tasks.square, [{"x": threading.Lock()}], Resources())
    finally:
        engine.close()


def test_slurm_local_array_parallelism_runs_one_at_a_time(tmp_path: Path, task_env: None) -> None:
    engine = SlurmEngine(tmp_path, cluster="local", array_parallelism=1)
    try:
        futs = engine.submit_many(tasks.stamp, [{"x": x, "sleep": 0.5} for x in range(3)], Resources())
        spans = sorted((r["start"], r["end"]) for r in (f.result(timeout=TIMEOUT) for f in futs))
        assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
        # a queued job that cannot be submitted fails alone
        bad, good = engine.submit_many(tasks.square, [{"x": threading.Lock()}, {"x": 3}], Resources())
        assert good.result(timeout=TIMEOUT)["y"] == 9
        assert "submission failed" in str(bad.exception(timeout=TIMEOUT))
    finally:
        engine.close()


def test_slurm_local_restarted_driver_reattaches(tmp_path: Path, task_env: None) -> None:
    first = SlurmEngine(tmp_path, cluster="local")
    fut = first.submit_many(tasks.square, [{"x": 5, "sleep": 4.0, "spec": {"job_id": "abc"}}], Resources())[0]
    first.close()  # the driver goes away; the job keeps running
    assert fut.cancelled()
    found = SlurmEngine.reattach(tmp_path)
    assert [key for key, _ in found] == ["abc"]
    assert found[0][1].job_id == first.submitted[0][1]
    second = SlurmEngine(tmp_path, cluster="local")
    try:
        assert second.track(found)[0].result(timeout=TIMEOUT)["y"] == 25
    finally:
        second.close()
    assert SlurmEngine.reattach(tmp_path) == []


def test_slurm_without_slurm_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UsageError, match="no Slurm on this machine"):
        SlurmEngine(tmp_path / "f")
    with pytest.raises(UsageError, match="--slurm-array-parallelism must be >= 1"):
        SlurmEngine(tmp_path / "f", cluster="local", array_parallelism=0)


@pytest.mark.parametrize(
    ("module", "call", "message"),
    [
        (
            "ray",
            "from evalsuite.bench.engines_ray import RayEngine; RayEngine()",
            "Ray: pip install 'evalsuite[ray]'",
        ),
        (
            "submitit",
            "from evalsuite.bench.engines_slurm import SlurmEngine; SlurmEngine('f', cluster='local')",
            "submitit: pip install 'evalsuite[slurm]'",
        ),
    ],
)
def test_missing_extra_names_the_install_command(
    module: str, call: str, message: str, tmp_path: Path
) -> None:
    code = (
        f"import sys; sys.modules[{module!r}] = None\n"
        "from evalsuite.core.errors import UsageError\n"
        f"try:\n    {call}\nexcept UsageError as e:\n    print(e, file=sys.stderr); sys.exit(2)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"--engine {'ray' if module == 'ray' else 'slurm'} needs {message}"
    ]
    assert not (tmp_path / "f").exists()
