"""Engine overhead per job: M identical small CPU jobs in-process vs through each engine with 2 slots.

The job is a fixed number of training steps of a small MLP (batch 256, 784-256-256-10, SGD, one torch
thread), calibrated once in this process to take about ``--task-s`` seconds (default 1 s), then fixed:
every job does the same work. It imports torch itself, as a study's ``run_task`` does.

Engines, each with 2 slots on this machine: ``pool`` = ``ProcessPoolExecutor(2)`` with spawn (what
``--engine local --workers 2`` uses); ``ray`` = evalsuite's RayEngine on a local Ray with 2 CPUs, 1 CPU per
job; ``submitit`` = evalsuite's SlurmEngine on submitit's local executor, array parallelism 2 (one fresh
process per job, as on Slurm). Each engine runs ``--rounds`` rounds of ``--tasks`` jobs (default 2 x 8)
on the same engine: round 1 meets cold workers (process start, torch import), later rounds find Ray's
and the pool's workers warm. submitit starts a process per job in every round.

Overhead per job = (2 x round wall time - sum of the jobs' own times, measured inside each job) / M: the
slot-seconds a job holds without doing its work (start-up, pickling, scheduling, polling, imports).
The fraction divides it by the in-process job time. Engine start (ray.init, pool spawn) is printed on
its own; a study pays it once. Wall times come from a shared 2-core machine: run it quiet.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing as mp
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _shared import ROOT


def job(payload: dict[str, Any]) -> dict[str, Any]:
    """``payload["steps"]`` SGD steps of a seeded MLP on a fixed random batch; its own time inside,
    from after the imports (a fresh worker's torch import is the engine's cost, not the job's)."""
    import torch
    from torch import nn

    t0 = time.perf_counter()
    torch.set_num_threads(1)
    torch.manual_seed(payload["seed"])
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.rand(256, 784), torch.randint(0, 10, (256,))
    t1 = time.perf_counter()
    for _ in range(payload["steps"]):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    t2 = time.perf_counter()
    return {"seconds": t2 - t0, "work_s": t2 - t1, "loss": float(loss.detach()), "pid": os.getpid()}


def calibrate(target_s: float) -> int:
    job({"seed": 0, "steps": 5})  # import torch and warm the kernels first
    probe = 40
    per_step = min(job({"seed": 0, "steps": probe})["work_s"] for _ in range(3)) / probe
    return max(1, round(target_s / per_step))


def run_rounds(
    submit: Callable[[list[dict[str, Any]]], list[cf.Future[dict[str, Any]]]],
    payloads: list[dict[str, Any]],
    rounds: int,
) -> list[tuple[float, list[dict[str, Any]]]]:
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        results = [f.result() for f in submit(payloads)]
        out.append((time.perf_counter() - t0, results))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", type=int, default=8, help="jobs per round (M)")
    p.add_argument("--rounds", type=int, default=2, help="rounds per engine, on the same engine")
    p.add_argument("--task-s", type=float, default=1.0, help="target in-process time of one job")
    p.add_argument("--engines", default="pool,ray,submitit")
    args = p.parse_args()
    slots = 2
    load = os.getloadavg()[0]

    steps = calibrate(args.task_s)
    payloads = [{"seed": i, "steps": steps} for i in range(args.tasks)]
    direct = [job(pl) for pl in payloads]
    t_job = statistics.mean(r["seconds"] for r in direct)
    losses = [r["loss"] for r in direct]

    from evalsuite.bench.engines import Resources

    rows: list[tuple[str, float, list[tuple[float, list[dict[str, Any]]]]]] = []
    for name in args.engines.split(","):
        t0 = time.perf_counter()
        if name == "pool":
            pool = cf.ProcessPoolExecutor(slots, mp_context=mp.get_context("spawn"))
            # spawn starts workers lazily: time their start with the first round, as a study would
            start = time.perf_counter() - t0
            rounds = run_rounds(lambda ps, e=pool: [e.submit(job, x) for x in ps], payloads, args.rounds)
            pool.shutdown()
        elif name == "ray":
            from evalsuite.bench.engines_ray import RayEngine

            ray_engine = RayEngine(num_cpus=slots)
            start = time.perf_counter() - t0
            rounds = run_rounds(
                lambda ps, e=ray_engine: e.submit_many(job, ps, Resources(cpus=1)), payloads, args.rounds
            )
            ray_engine.close()
        elif name == "submitit":
            from evalsuite.bench.engines_slurm import SlurmEngine

            tmp = tempfile.TemporaryDirectory(prefix="evalsuite-engines-")
            sub = SlurmEngine(Path(tmp.name), cluster="local", array_parallelism=slots)
            start = time.perf_counter() - t0
            rounds = run_rounds(
                lambda ps, e=sub: e.submit_many(job, ps, Resources(cpus=1)), payloads, args.rounds
            )
            sub.close()
            tmp.cleanup()
        else:
            raise SystemExit(f"unknown engine {name!r}: pool, ray, submitit")
        for _, results in rounds:
            # the same seeds and steps give the same loss in any process: the engines ran the same jobs
            assert [r["loss"] for r in results] == losses, name
        rows.append((name, start, rounds))

    print(
        f"in-process job {t_job:.3f}s ({steps} steps); overhead per job, round 1 (cold) / best later round "
        "(warm), as a fraction of the in-process job:"
    )
    for name, start, rounds in rows:
        parts = []
        for wall, results in rounds:
            inner = sum(r["seconds"] for r in results)
            over = (slots * wall - inner) / len(results)
            parts.append((over, wall, inner))
        cold = parts[0]
        warm = min(parts[1:], key=lambda t: t[0]) if len(parts) > 1 else None
        text = f"  {name:8s} cold {cold[0]:6.3f}s = {cold[0] / t_job:6.1%}"
        if warm is not None:
            text += f"  warm {warm[0]:6.3f}s = {warm[0] / t_job:6.1%}"
        walls = ", ".join(f"{w:.2f}s" for _, w, _ in parts)
        inner_mean = statistics.mean(i for _, _, i in parts) / len(payloads)
        print(
            f"{text}  (engine start {start:.2f}s; round walls {walls}; ideal wall "
            f"{len(payloads) * t_job / slots:.2f}s; job time inside the engine {inner_mean:.3f}s; "
            f"{len({r['pid'] for _, rs in rounds for r in rs})} worker pids)"
        )
    import torch

    print(
        f"  {args.tasks} jobs x {args.rounds} rounds, {slots} slots, torch {torch.__version__}, one thread "
        f"per job, {os.cpu_count()} CPUs; load average before {load:.2f}; repo {ROOT.name}"
    )


if __name__ == "__main__":
    main()
