"""Where a study's jobs run: an ``Engine`` takes picklable payloads and a top-level function and returns one
``concurrent.futures.Future`` per payload. The driver (``evalsuite.bench.study``) only ever sees futures,
so the local process pool, Ray and Slurm (submitit) are interchangeable.

``local`` is a ``ProcessPoolExecutor`` with the spawn start method (a forked child would inherit the
driver's torch threads and CUDA state): N worker processes, each pinned to its own GPU(s) through
``CUDA_VISIBLE_DEVICES`` when GPUs are visible; on CPU one per core by default, since a job computes
with one thread (``evalsuite.bench.jobs``: so its numbers do not depend on the engine or worker count).
``ray`` and ``slurm`` live in their own modules and import their optional dependency there.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import importlib.util
import logging
import multiprocessing as mp
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from evalsuite.core.errors import UsageError

log = logging.getLogger(__name__)

ENGINES = ("local", "ray", "slurm")
_EXTRAS = {"ray": ("ray", "evalsuite[ray]"), "slurm": ("submitit", "evalsuite[slurm]")}


@dataclass(frozen=True)
class Resources:
    """What one task needs: CPU cores and GPUs."""

    cpus: int = 1
    gpus: int = 0


class Engine(ABC):
    """Runs ``fn(payload)`` for each payload somewhere and hands back futures of its return values."""

    name: str

    @abstractmethod
    def submit_many(
        self,
        fn: Callable[[dict[str, Any]], dict[str, Any]],
        payloads: list[dict[str, Any]],
        resources: Resources,
    ) -> list[cf.Future[dict[str, Any]]]:
        """Submit one task per payload; the futures are in payload order."""

    @abstractmethod
    def close(self) -> None:
        """Release the workers (cancelling tasks that have not started)."""

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` entries (empty without CUDA)."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        return []


def _init_worker(slots: Any) -> None:
    """Runs first in each worker process: take a GPU slot, before anything touches CUDA."""
    gpus = slots.get() if slots is not None else ""
    os.environ["CUDA_VISIBLE_DEVICES"] = gpus
    os.environ["EVALSUITE_WORKER_GPUS"] = gpus


class LocalEngine(Engine):
    """Worker processes on this machine. ``workers`` defaults to one per visible GPU (or per group of
    ``resources.gpus`` GPUs), or one per CPU core without GPUs."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and (isinstance(workers, bool) or workers < 1):
            raise UsageError(f"--workers must be a positive number, got {workers}")
        self.workers = workers
        self.gpus = visible_gpus()
        self._pool: cf.ProcessPoolExecutor | None = None
        self._retired: list[cf.ProcessPoolExecutor] = []
        self._per_worker = 0

    def _make_pool(self, gpus_per_task: int) -> cf.ProcessPoolExecutor:
        ctx = mp.get_context("spawn")
        slots = None
        if self.gpus and gpus_per_task > 0:
            groups = [
                ",".join(self.gpus[i : i + gpus_per_task])
                for i in range(0, len(self.gpus) - gpus_per_task + 1, gpus_per_task)
            ]
            if not groups:
                raise UsageError(f"a job asks for {gpus_per_task} GPUs; this machine shows {len(self.gpus)}")
            n = min(self.workers or len(groups), len(groups))
            slots = ctx.Queue()
            for g in groups[:n]:
                slots.put(g)
        else:
            n = self.workers or os.cpu_count() or 1
        log.debug("local engine: %d worker process(es)%s", n, f" on GPUs {self.gpus}" if slots else "")
        return cf.ProcessPoolExecutor(
            max_workers=n, mp_context=ctx, initializer=_init_worker, initargs=(slots,)
        )

    def submit_many(
        self,
        fn: Callable[[dict[str, Any]], dict[str, Any]],
        payloads: list[dict[str, Any]],
        resources: Resources,
    ) -> list[cf.Future[dict[str, Any]]]:
        """Queue the payloads on the pool: a new one when the last one broke (a worker died) or the GPU
        share per task changed (the old one finishes its tasks and is closed with the engine)."""
        per = resources.gpus if self.gpus else 0
        if self._pool is not None and per != self._per_worker:
            self._retired.append(self._pool)
            self._pool = None
        futures = []
        for p in payloads:
            if self._pool is None:
                self._pool, self._per_worker = self._make_pool(per), per
            try:
                futures.append(self._pool.submit(fn, p))
            except BrokenProcessPool:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = self._make_pool(per)
                futures.append(self._pool.submit(fn, p))
        return futures

    def close(self) -> None:
        """Stop the workers; queued tasks are cancelled."""
        for pool in [*self._retired, *([self._pool] if self._pool is not None else [])]:
            pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._retired = None, []


def make_engine(name: str, **options: Any) -> Engine:
    """The engine called ``name`` (local, ray, slurm) built with ``options`` (None values dropped).

    local: ``workers``. ray: ``address``, ``num_cpus``. slurm: ``folder``, ``partition``, ``time`` (minutes
    or Slurm's ``[D-]HH:MM[:SS]``), ``gpus_per_job``, ``array_parallelism``, ``cluster`` (``local`` runs the
    array on this machine with submitit's local executor). A missing optional dependency is a one-line
    UsageError naming the pip command.
    """
    opts = {k: v for k, v in options.items() if v is not None}
    if name == "local":
        return LocalEngine(**opts)
    if name not in _EXTRAS:
        raise UsageError(f"unknown engine {name!r}; choose from {', '.join(ENGINES)}")
    module, extra = _EXTRAS[name]
    if importlib.util.find_spec(module) is None:
        raise UsageError(f"--engine {name} needs {module}: pip install '{extra}'")
    # by name: the two modules import their optional dependency at the top
    if name == "slurm" and "time" in opts:
        opts["time_min"] = slurm_minutes(opts.pop("time"))
    module_obj = importlib.import_module(f"evalsuite.bench.engines_{name}")
    engine: Engine = getattr(module_obj, "RayEngine" if name == "ray" else "SlurmEngine")(**opts)
    return engine


def slurm_minutes(text: str | int) -> int:
    """A Slurm time limit in whole minutes: ``720``, ``12:00:00``, ``1-00:00`` or ``90:00`` (MM:SS).

    Seconds round up, so a limit is never shortened. UsageError on anything else."""
    if isinstance(text, int):
        value = text
    else:
        t = str(text).strip()
        days = 0
        if "-" in t:
            d, _, t = t.partition("-")
            if not d.isdigit():
                raise UsageError(f"--slurm-time {text!r}: expected minutes or [D-]HH:MM[:SS]")
            days = int(d)
        parts = t.split(":")
        if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
            raise UsageError(f"--slurm-time {text!r}: expected minutes or [D-]HH:MM[:SS]")
        nums = [int(p) for p in parts]
        if len(parts) == 1:
            value = nums[0] + days * 1440
        elif len(parts) == 2:
            # Slurm reads MM:SS without a day part and HH:MM with one
            value = days * 1440 + (nums[0] * 60 + nums[1] if days else nums[0] + (nums[1] > 0))
        else:
            value = days * 1440 + nums[0] * 60 + nums[1] + (nums[2] > 0)
    if value < 1:
        raise UsageError(f"--slurm-time {text!r}: the limit must be at least one minute")
    return value
