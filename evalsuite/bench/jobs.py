"""One study job on a worker: init -> train -> battery, every artifact in the job's own folder.

``run_task(payload)`` is what every engine runs (a top-level function, pickled by reference). It never
raises for the job's own failure: it writes ``status.json`` as failed with a one-line reason and returns.
The folder is the job's whole state, so a job survives anything its worker does:

- ``model.pt`` present and no ``model.resume.pt``: training finished; a rerun goes straight to the battery.
- ``model.resume.pt`` present: a training was killed after an epoch; a rerun resumes from it.
- ``status.json`` done and ``result.json`` verifying against its NPZ: the job is finished, never redone.

With ``gpus = K > 1`` training runs under ``torch.distributed.run`` with K processes (gloo on CPU, NCCL
on CUDA); the same code builds the network and recipe (``python -m evalsuite.bench.jobs train JOB_DIR``),
so a K-process job and a one-process job differ only by DDP. With ``shards = K`` the driver runs stage
``train`` once, then stage ``eval`` with ``shard = [i, K]`` for each i, and merges the shards itself.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalsuite.bench.grid import JobSpec
from evalsuite.bench.runner import _reason, battery_from_table
from evalsuite.core.errors import DataError
from evalsuite.core.io import atomic_write_text, read_json

log = logging.getLogger(__name__)

SPEC = "spec.json"
STATUS = "status.json"
RESULT = "result.json"
MODEL = "model.pt"
RESUME = "model.resume.pt"
WORKER_LOG = "worker.log"
STAGES = ("all", "train", "eval")


def now_iso() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def shard_name(i: int, k: int) -> str:
    """The result file of shard ``i`` of ``k``."""
    return f"shard-{i}-of-{k}.json"


def read_status(job_dir: Path) -> dict[str, Any] | None:
    """The job's status.json, or None when absent or unreadable (a job that never started)."""
    try:
        d = read_json(job_dir / STATUS)
    except DataError:
        return None
    return d if isinstance(d, dict) else None


def write_status(job_dir: Path, status: dict[str, Any]) -> None:
    """Replace status.json atomically (a reader sees the old or the new one, never half of one)."""
    atomic_write_text(job_dir / STATUS, _json(status))


def _json(obj: Any) -> str:
    import json

    return json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n"


def write_spec(job_dir: Path, spec: JobSpec) -> None:
    """Write spec.json unless it already holds this spec (a rerun leaves the file as it was)."""
    text = _json(spec.to_dict())
    path = job_dir / SPEC
    try:
        if path.read_text(encoding="utf-8") == text:
            return
    except OSError:
        pass
    atomic_write_text(path, text)


def verified_result(job_dir: Path, name: str = RESULT) -> tuple[Any, Any]:
    """(EvalResult, arrays) of the job's result, its NPZ checked against the JSON's checksum; DataError
    when it is missing, corrupt or does not match."""
    from evalsuite.core.results import EvalResult, load_arrays

    path = job_dir / name
    result = EvalResult.load(path)
    return result, load_arrays(path, result)


def is_finished(job_dir: Path) -> bool:
    """A job is finished iff status.json says done and result.json loads with a verifying NPZ."""
    st = read_status(job_dir)
    if not st or st.get("state") != "done":
        return False
    try:
        verified_result(job_dir)
    except DataError:
        return False
    return True


# -------------------------------------------------------------------------------------------- the work


def train_job(spec: JobSpec, job_dir: Path, device: str, progress: bool = False) -> Any:
    """The TrainJob of ``spec``, writing into ``job_dir`` (resuming when a resume state is there)."""
    from evalsuite.train import InitSpec, TrainJob, TrainOptions
    from evalsuite.train.recipe import RECIPE_FIELDS

    t = spec.train
    init = InitSpec(
        dataset=str(t["dataset"]),
        arch=t.get("arch"),
        arch_kwargs=dict(t.get("arch_kwargs", {})),
        scheme=str(t.get("sparse_init", "dense")),
        density=float(t.get("density", 1.0)),
        seed=int(t.get("seed", 0)),
        mask_seed=t.get("mask_seed"),
        data_root=spec.eval.get("root"),
        download=bool(spec.eval.get("download", False)),
    )
    overrides = {k: (tuple(t[k]) if k == "milestones" else t[k]) for k in RECIPE_FIELDS if k in t}
    opts = TrainOptions(
        out=job_dir / MODEL,
        device=device,
        resume=(job_dir / RESUME).exists(),
        limit_train=t.get("limit_train"),
        limit_test=t.get("limit_test"),
        progress=progress,
    )
    return TrainJob(init=init, recipe_overrides=overrides, options=opts, test_data=t.get("test_data"))


def _trained(job_dir: Path) -> bool:
    # save_checkpoint writes model.pt atomically and only then removes the resume state
    return (job_dir / MODEL).exists() and not (job_dir / RESUME).exists()


def train(spec: JobSpec, job_dir: Path, device: str, progress: bool = False) -> Path:
    """Train the job's network into ``job_dir/model.pt`` (skipped when already trained; resumed when a
    killed training left its resume state); ``gpus > 1`` runs it under torchrun."""
    out = job_dir / MODEL
    if _trained(job_dir):
        log.info("%s: already trained (%s); skipping training", spec.name, out)
        return out
    if (job_dir / RESUME).exists():
        log.info("%s: resuming a killed training from %s", spec.name, job_dir / RESUME)
    if spec.gpus > 1:
        _train_ddp(spec, job_dir, device)
    else:
        from evalsuite.train import run_training

        run_training(train_job(spec, job_dir, device, progress))
    if not out.exists():
        raise DataError(f"{spec.name}: training ended without writing {out}")
    return out


def _train_ddp(spec: JobSpec, job_dir: Path, device: str) -> None:
    """``python -m torch.distributed.run --standalone --nproc_per_node K -m evalsuite.bench.jobs train``;
    its output goes to worker.log; a failure is raised with the last error line of that output."""
    package_root = str(Path(__file__).resolve().parents[2])  # the folder holding the evalsuite package
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([package_root, *filter(None, [env.get("PYTHONPATH")])])
    env["OMP_NUM_THREADS"] = "1"  # one thread per rank, as every CPU job computes
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={spec.gpus}",
        "-m",
        "evalsuite.bench.jobs",
        "train",
        str(job_dir),
        "--device",
        device,
    ]
    log.info("%s: %s", spec.name, " ".join(cmd))
    for h in logging.getLogger().handlers:
        h.flush()
    with open(job_dir / WORKER_LOG, "ab") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=job_dir, check=False)
    if r.returncode != 0:
        raise DataError(
            f"torchrun with {spec.gpus} processes exited with {r.returncode}: {_last_error(job_dir)}"
        )


def _last_error(job_dir: Path) -> str:
    """The most telling line of a failed subprocess's output in worker.log."""
    try:
        lines = (job_dir / WORKER_LOG).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "see worker.log"
    for marker in ("error:", "Error:", "Error", "error"):
        hits = [ln.strip() for ln in lines if marker in ln and "Traceback" not in ln]
        if hits:
            return hits[-1][:300]
    return "see worker.log"


def evaluate(
    spec: JobSpec, job_dir: Path, device: str, shard: tuple[int, int] | None, progress: bool
) -> Path:
    """Run the battery of ``spec`` on the trained model; write result.json (or the shard's file)."""
    from evalsuite.battery import EvalOptions, evaluate_with_arrays, save_result

    cfg = battery_from_table(spec.battery)
    if shard is not None and shard[1] > 1:
        cfg = dataclasses.replace(cfg, shard=(int(shard[0]), int(shard[1])))
        out = job_dir / shard_name(*shard)
    else:
        out = job_dir / RESULT
    opts = EvalOptions(
        data=spec.eval.get("id"),
        ood=spec.eval.get("ood"),
        data_root=spec.eval.get("root"),
        download=bool(spec.eval.get("download", False)),
        device=device,
        batch_size=spec.battery.get("batch_size"),
        progress=progress,
        cache=False,
        name=spec.name,
    )
    result, arrays = evaluate_with_arrays(job_dir / MODEL, cfg, opts)
    return save_result(result, arrays, out)


def _prepare_device(device: str) -> str:
    """Pin a CPU job to one thread and return the device's label for status.json. One thread, because
    the order of a float sum depends on the thread count and a job's numbers must not depend on the
    engine or on how many workers share the machine."""
    try:
        import torch

        from evalsuite.core.device import pick_device

        dev = pick_device(device)
    except Exception as e:  # a bad device is the job's own failure, raised again by the work itself
        return f"{device} ({_reason(e)})"
    if dev.type == "cpu":
        torch.set_num_threads(1)
    label = str(dev)
    pinned = os.environ.get("EVALSUITE_WORKER_GPUS")
    if dev.type == "cuda" and pinned:
        label += f" (CUDA_VISIBLE_DEVICES={pinned})"
    return label


def run_task(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one stage of one job (see the module docstring); returns {job_id, state, error, host, device,
    duration_s, stage}. The job's own failure is caught, recorded in status.json and returned."""
    spec = JobSpec.from_dict(payload["spec"])
    job_dir = Path(payload["job_dir"]).resolve()
    stage = str(payload.get("stage") or "all")
    shard = payload.get("shard")
    device = str(payload.get("device") or "auto")
    progress = bool(payload.get("progress", False))
    job_dir.mkdir(parents=True, exist_ok=True)
    handler = _log_to(job_dir / WORKER_LOG)
    t0 = time.perf_counter()
    host = socket.gethostname() or platform.node()
    status: dict[str, Any] = {
        "state": "running",
        "job_id": spec.job_id,
        "name": spec.name,
        "host": host,
        "device": _prepare_device(device),
        "pid": os.getpid(),
        "started": now_iso(),
        "finished": None,
        "duration_s": None,
        "error": None,
        "log": str(job_dir / WORKER_LOG),
        "stage": stage,
        "token": payload.get("token"),
    }
    if shard is not None:
        status["shard"] = list(shard)
    # the shards of one job run side by side: only the first reports "running" (a done shard is no done job)
    writes_status = shard is None or int(shard[0]) == 0
    try:
        if stage not in STAGES:
            raise DataError(f"unknown stage {stage!r}")
        if writes_status:
            write_status(job_dir, status)
        log.info("%s %s: stage %s on %s, device %s", spec.job_id, spec.name, stage, host, status["device"])
        if stage in ("all", "train"):
            train(spec, job_dir, device, progress)
        if stage in ("all", "eval"):
            if not (job_dir / MODEL).exists():
                raise DataError(
                    f"{job_dir / MODEL}: no trained model to evaluate (run the train stage first)"
                )
            evaluate(spec, job_dir, device, tuple(shard) if shard else None, progress)
        state, error = "done", None
    except Exception as e:  # broad on purpose: a job's failure is recorded, never raised into the engine
        state, error = "failed", _reason(e)
        log.error("%s %s failed: %s", spec.job_id, spec.name, error)
        log.debug("%s failed", spec.job_id, exc_info=True)
    duration = round(time.perf_counter() - t0, 3)
    status.update(finished=now_iso(), duration_s=duration, error=error)
    # a done train stage or shard leaves the job running: the driver closes it after the merge
    status["state"] = state if (stage == "all" or state == "failed") else "running"
    if state == "failed" or writes_status:
        try:
            write_status(job_dir, status)
        except Exception as e:
            log.error("%s: cannot write status.json (%s)", spec.job_id, _reason(e))
    _unlog(handler)
    return {
        "job_id": spec.job_id,
        "state": state,
        "error": error,
        "host": host,
        "device": status["device"],
        "duration_s": duration,
        "stage": stage,
        "started": status["started"],
        "finished": status["finished"],
    }


def _log_to(path: Path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    return handler


def _unlog(handler: logging.Handler) -> None:
    logging.getLogger().removeHandler(handler)
    handler.close()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m evalsuite.bench.jobs train JOB_DIR [--device D]``: the training of one job, run by each
    process that torchrun starts for a ``gpus > 1`` job."""
    p = argparse.ArgumentParser(prog="evalsuite.bench.jobs")
    p.add_argument("stage", choices=["train"])
    p.add_argument("job_dir")
    p.add_argument("--device", default="auto")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"[rank {os.environ.get('RANK', '0')}] %(message)s")
    job_dir = Path(args.job_dir)
    spec = JobSpec.from_dict(read_json(job_dir / SPEC))
    from evalsuite.train import run_training

    run_training(train_job(spec, job_dir, args.device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
