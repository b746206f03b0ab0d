"""The Ray engine: one Ray task per job with ``num_cpus``/``num_gpus``, on a joined cluster or a local one.

``address="auto"`` or ``"ray://host:port"`` joins a running cluster (artifacts then go to a ``--runs-dir``
every node sees); without an address a local Ray is started for the run and shut down by ``close()``.
Workers import the job function by name, so evalsuite must be importable on every node: installed
there, or, for a local Ray started from a source checkout, put on the workers' PYTHONPATH here.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import os
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evalsuite.bench.engines import Engine, Resources
from evalsuite.core.errors import EvalsuiteError, UsageError

log = logging.getLogger(__name__)

Payload = dict[str, Any]


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise UsageError("--engine ray needs Ray: pip install 'evalsuite[ray]'") from exc
    return ray


def source_root() -> Path | None:
    """The folder holding the ``evalsuite`` package when it runs from a source checkout (an editable
    install included), None when it is installed in site-packages."""
    root = Path(__file__).resolve().parents[2]  # .../evalsuite/bench/engines_ray.py -> ...
    installed = {Path(p).resolve() for key in ("purelib", "platlib") if (p := sysconfig.get_path(key))}
    return None if root in installed else root


def _worker_pythonpath(runtime_env: dict[str, Any] | None) -> str | None:
    """PYTHONPATH for local workers when they might import another evalsuite than the driver's: the
    checkout first, then what the user set. None when nothing needs to change."""
    root = source_root()
    if root is None:
        return None
    env_vars = (runtime_env or {}).get("env_vars") or {}
    current = env_vars.get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    parts = [p for p in current.split(os.pathsep) if p]
    if parts and Path(parts[0]).resolve() == root:
        return None
    return os.pathsep.join([str(root), *parts])


def failure_reason(exc: BaseException) -> str:
    """One line for a task that did not return: the exception the job raised and where, or Ray's own
    first line (worker died, out of memory, cancelled...)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        where = ""
        if getattr(exc, "pid", None):
            where = f" (pid {exc.pid} on {getattr(exc, 'ip', '?')})"  # type: ignore[attr-defined]
        lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
        return f"ray task failed{where}: {type(cause).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return f"ray task failed: {type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


class RayEngine(Engine):
    """Jobs as Ray tasks. ``address`` joins a cluster; otherwise ``num_cpus``/``num_gpus`` size the local
    Ray started here (None: what Ray detects). ``runtime_env`` goes to ``ray.init`` unchanged except, for
    a local Ray from a source checkout, the checkout prepended to its PYTHONPATH. ``max_retries``: Ray's
    retries of a task whose worker died (a job that raises is never retried)."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        num_gpus: int | None = None,
        runtime_env: dict[str, Any] | None = None,
        log_to_driver: bool = False,
        max_retries: int = 3,
    ) -> None:
        ray = _import_ray()
        self._ray = ray
        self.address = address
        self.max_retries = max_retries
        self._remote: dict[Callable[..., Any], Any] = {}
        self._connected = False
        if ray.is_initialized():
            # the caller's own Ray session: use it, leave it up
            self.started_here = False
            log.info("ray: using the Ray session already initialized in this process")
        else:
            kwargs: dict[str, Any] = {
                "logging_level": logging.WARNING,
                "log_to_driver": log_to_driver,
                "include_dashboard": False,
            }
            env = dict(runtime_env or {})
            if address:
                if num_cpus is not None or num_gpus is not None:
                    log.warning(
                        "ray: CPU/GPU counts size a local Ray; a joined cluster has its own (ignored)"
                    )
                kwargs["address"] = address
                # ray.init refuses options that start or size a cluster when it joins one
                kwargs.pop("include_dashboard")
            else:
                kwargs.update(num_cpus=num_cpus, num_gpus=num_gpus)
                pythonpath = _worker_pythonpath(runtime_env)
                if pythonpath is not None:
                    env["env_vars"] = {**(env.get("env_vars") or {}), "PYTHONPATH": pythonpath}
            if env:
                kwargs["runtime_env"] = env
            try:
                ray.init(**kwargs)
            except ConnectionError as exc:
                raise UsageError(f"--ray-address {address}: cannot join a Ray cluster there ({exc})") from exc
            self.started_here = not address
            self._connected = True
        self.resources = {k: float(v) for k, v in ray.cluster_resources().items()}

    def describe(self) -> str:
        """One line for the logs: which Ray and how big it is."""
        size = f"{self.resources.get('CPU', 0):g} CPUs, {self.resources.get('GPU', 0):g} GPUs"
        if self.started_here:
            return f"ray: local Ray started here ({size})"
        return f"ray: joined {self.address or 'the Ray session of this process'} ({size})"

    def _check_feasible(self, resources: Resources) -> None:
        have_cpu, have_gpu = self.resources.get("CPU", 0.0), self.resources.get("GPU", 0.0)
        if resources.cpus <= have_cpu and resources.gpus <= have_gpu:
            return
        msg = (
            f"a job asks for {resources.cpus} CPU(s) and {resources.gpus} GPU(s) but this Ray has "
            f"{have_cpu:g} CPU(s) and {have_gpu:g} GPU(s)"
        )
        if self.started_here:
            # a local Ray never grows: the task would wait forever
            raise UsageError(f"--engine ray: {msg}")
        log.warning("ray: %s; the tasks wait until the cluster scales up", msg)

    def submit_many(
        self, fn: Callable[[Payload], Payload], payloads: list[Payload], resources: Resources
    ) -> list[cf.Future[Payload]]:
        """One Ray task per payload; a future that fails carries a one-line ``EvalsuiteError`` whose
        ``__cause__`` is Ray's exception."""
        if not payloads:
            return []
        self._check_feasible(resources)
        remote = self._remote.get(fn)
        if remote is None:
            remote = self._remote[fn] = self._ray.remote(fn)
        task = remote.options(
            num_cpus=resources.cpus,
            num_gpus=resources.gpus,
            max_retries=self.max_retries,
            name=getattr(fn, "__name__", "job"),
        )
        return [self._wrap(task.remote(p)) for p in payloads]

    def _wrap(self, ref: Any) -> cf.Future[Payload]:
        out: cf.Future[Payload] = cf.Future()
        inner = ref.future()

        def land(f: cf.Future[Payload]) -> None:
            if out.cancelled():
                return
            try:
                value = f.result()
            except BaseException as exc:
                err = EvalsuiteError(failure_reason(exc))
                err.__cause__ = exc
                with contextlib.suppress(cf.InvalidStateError):
                    out.set_exception(err)
            else:
                with contextlib.suppress(cf.InvalidStateError):
                    out.set_result(value)

        def cancelled(f: cf.Future[Payload]) -> None:
            if f.cancelled():
                with contextlib.suppress(Exception):
                    self._ray.cancel(ref)

        out.add_done_callback(cancelled)
        inner.add_done_callback(land)
        return out

    def close(self) -> None:
        """Shut down the local Ray started here, or disconnect from a joined cluster (which keeps
        running); a Ray session the caller had opened is left alone."""
        if self._connected and self._ray.is_initialized():
            self._ray.shutdown()
        self._connected = False
