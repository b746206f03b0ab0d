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

Overhead per job, in slot-seconds, two ways: ``all`` = (2 x round wall - M x in-process job time) / M,
what a user pays per job (start-up, imports, pickling, scheduling, polling, a fresh process's slower
first steps, and any contention between the two slots); ``outside`` = (2 x round wall - sum of the
jobs' own times measured inside each job, after its imports) / M, the engine's machinery alone.
Fractions divide by the in-process job time. Engine start (ray.init, pool spawn) is printed on
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
        f"in-process job {t_job:.3f}s ({steps} steps). Overhead per job in slot-seconds, round 1 (cold) and "
        "the best later round (warm); 'all' = beyond the in-process job time, 'outside' = beyond the job's "
        "own time inside the engine; fractions of the in-process job:"
    )
    for name, start, rounds in rows:
        parts = []
        for wall, results in rounds:
            inner = sum(r["seconds"] for r in results)
            n = len(results)
            parts.append(((slots * wall - n * t_job) / n, (slots * wall - inner) / n, wall, inner / n))
        text = f"  {name:8s}"
        picks = [("cold", parts[0])]
        if len(parts) > 1:
            picks.append(("warm", min(parts[1:], key=lambda t: t[0])))
        for label, (over_all, over_out, _, _) in picks:
            text += (
                f" {label} all {over_all:6.3f}s = {over_all / t_job:6.1%} outside {over_out:6.3f}s = "
                f"{over_out / t_job:6.1%};"
            )
        walls = ", ".join(f"{w:.2f}s" for _, _, w, _ in parts)
        inside = ", ".join(f"{i:.2f}s" for _, _, _, i in parts)
        ideal = len(payloads) * t_job / slots
        pids = len({r["pid"] for _, rs in rounds for r in rs})
        print(
            f"{text} (engine start {start:.2f}s; round walls {walls}, ideal {ideal:.2f}s; "
            f"job time inside the engine {inside}; {pids} worker pids)"
        )
    import torch

    print(
        f"  {args.tasks} jobs x {args.rounds} rounds, {slots} slots, torch {torch.__version__}, one thread "
        f"per job, {os.cpu_count()} CPUs; load average before {load:.2f}; repo {ROOT.name}"
    )


if __name__ == "__main__":
    main()
