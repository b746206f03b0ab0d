"""The Slurm engine: submitit, one array job per ``submit_many``, futures completed by a polling thread.

On a cluster (``cluster=None``) submitit's AutoExecutor finds Slurm through ``srun`` and each
``submit_many`` becomes one ``sbatch --array``. ``cluster="local"`` runs the same pickled jobs as local
processes (submitit's LocalExecutor): the tests use it, and so does a laptop trying the Slurm path.

Every submitted job is appended to ``<folder>/evalsuite-submitted.jsonl`` (payload key, submitit job id,
cluster), so a restarted driver can find its still-running array tasks with ``SlurmEngine.reattach`` and
wait for them with ``track`` instead of submitting them again.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.bench.engines import Engine, Resources
from evalsuite.core.errors import EvalsuiteError, UsageError

log = logging.getLogger(__name__)

SUBMITTED = "evalsuite-submitted.jsonl"
# submitit's LocalExecutor kills a job after 2 minutes unless told otherwise; a training job takes longer
LOCAL_TIMEOUT_MIN = 7 * 24 * 60
_TAIL_CHARS = 300

Payload = dict[str, Any]


def _import_submitit() -> Any:
    try:
        import submitit
    except ImportError as exc:
        raise UsageError("--engine slurm needs submitit: pip install 'evalsuite[slurm]'") from exc
    return submitit


def payload_key(payload: Payload, index: int) -> str:
    """The name a payload is recorded under: its job spec's ``job_id`` when it has one, else its index."""
    spec = payload.get("spec")
    if isinstance(spec, dict) and spec.get("job_id"):
        return str(spec["job_id"])
    if payload.get("job_id"):
        return str(payload["job_id"])
    return str(index)


def _last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    return lines[-1][:_TAIL_CHARS] if lines else ""


def failure_reason(job: Any, exc: BaseException) -> str:
    """One line for a job that did not return: the exception it raised (or why it left no result), and
    the last line of its stderr when that adds something."""
    text = str(exc)
    if "failed during processing with trace:" in text:
        # submitit's FailedJobError carries the worker's traceback between two dashed rules
        parts = text.split("----------------------\n")
        trace = parts[1] if len(parts) >= 3 else ""
        what = _last_line(trace) or "the job raised"
    elif type(exc).__name__ == "UncompletedJobError":
        state = "unknown"
        with contextlib.suppress(Exception):
            state = str(job.state)
        what = f"no result (state {state})"
    else:
        what = _last_line(f"{type(exc).__name__}: {text}")
    reason = f"submitit job {job.job_id} failed: {what}"
    tail = ""
    with contextlib.suppress(Exception):
        tail = _last_line(job.stderr())
    if tail and tail not in what:
        reason += f" (stderr: {tail})"
    return reason


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # an exited child that nobody reaped yet is still listed: a zombie has finished
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _finished(job: Any) -> bool:
    # a LocalJob rebuilt after a driver restart has no process handle, and submitit then calls it done at
    # once: judge it by its result file and its controller's pid instead
    if type(job).__name__ == "LocalJob" and getattr(job, "_process", None) is None:
        return job.paths.result_pickle.exists() or not _pid_alive(int(job.job_id))
    return bool(job.done())


@dataclass(eq=False)
class _Watch:
    key: str
    job: Any
    future: cf.Future[Payload]


@dataclass(eq=False)
class _Queued:
    key: str
    fn: Callable[[Payload], Payload]
    payload: Payload
    resources: Resources
    future: cf.Future[Payload]


class SlurmEngine(Engine):
    """Jobs as submitit jobs: a Slurm array per ``submit_many``, or local processes with
    ``cluster="local"``.

    ``resources`` of a ``submit_many`` ask for at least ``cpus``/``gpus`` per job; the constructor's
    ``cpus_per_job``/``gpus_per_job`` are floors. ``time_min`` is Slurm's ``--time`` in minutes.
    ``array_parallelism`` caps how many jobs of an array run at once (Slurm's ``%N``; emulated by a queue
    under the local executor, which otherwise starts every job at once). ``close()`` stops waiting but
    leaves submitted jobs running: a restarted driver can ``reattach`` to them.
    """

    name = "slurm"

    def __init__(
        self,
        folder: str | Path,
        partition: str | None = None,
        time_min: int | None = None,
        gpus_per_job: int = 0,
        cpus_per_job: int = 1,
        array_parallelism: int | None = None,
        cluster: str | None = None,
        poll_s: float | None = None,
    ) -> None:
        submitit = _import_submitit()
        if cluster is None and shutil.which("srun") is None:
            raise UsageError(
                "--engine slurm: no Slurm on this machine (srun not found); run the driver on a login node"
            )
        for label, value in (("--slurm-time", time_min), ("--slurm-array-parallelism", array_parallelism)):
            if value is not None and value < 1:
                raise UsageError(f"{label} must be >= 1, got {value}")
        if gpus_per_job < 0 or cpus_per_job < 1:
            raise UsageError(f"per-job resources out of range: {gpus_per_job} GPUs, {cpus_per_job} CPUs")
        self.folder = Path(folder).absolute()
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            self._executor = submitit.AutoExecutor(folder=self.folder, cluster=cluster)
        except (ValueError, RuntimeError) as exc:
            raise UsageError(f"--engine slurm: {exc}") from exc
        self.cluster: str = self._executor.cluster
        self.partition = partition
        self.time_min = time_min
        self.gpus_per_job = gpus_per_job
        self.cpus_per_job = cpus_per_job
        self.array_parallelism = array_parallelism
        self.poll_s = poll_s if poll_s is not None else (0.2 if self.cluster != "slurm" else 5.0)
        # Slurm throttles arrays itself; the local executor would start every job at once
        self._local_limit = array_parallelism if self.cluster != "slurm" else None
        self.submitted: list[tuple[str, str]] = []  # (payload key, submitit job id), in submission order
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._watched: list[_Watch] = []
        self._queued: deque[_Queued] = deque()
        self._thread: threading.Thread | None = None

    def describe(self) -> str:
        """One line for the logs: where jobs go and what each one asks for."""
        if self.cluster == "slurm":
            where = f"slurm partition {self.partition or '(default)'}"
            time = f"{self.time_min} min" if self.time_min else "the partition's default time"
        else:
            where = f"submitit {self.cluster} executor (no Slurm)"
            time = f"{self.time_min or 'no'} time limit"
        par = f", array parallelism {self.array_parallelism}" if self.array_parallelism else ""
        return (
            f"{where}, {time}, {self.cpus_per_job} CPU(s) and {self.gpus_per_job} GPU(s) per job{par}; "
            f"submitit folder {self.folder}"
        )

    # -- submission --------------------------------------------------------------------------------

    def _parameters(self, resources: Resources) -> dict[str, Any]:
        local = self.cluster != "slurm"
        params: dict[str, Any] = {
            "name": "evalsuite",
            "nodes": 1,
            "tasks_per_node": 1,
            "cpus_per_task": max(resources.cpus, self.cpus_per_job),
            "gpus_per_node": max(resources.gpus, self.gpus_per_job),
            "timeout_min": self.time_min or (LOCAL_TIMEOUT_MIN if local else None),
            # prefixed parameters reach only the executor they name: ignored by the local one
            "slurm_partition": self.partition,
            "slurm_array_parallelism": self.array_parallelism,
        }
        return params

    def submit_many(
        self, fn: Callable[[Payload], Payload], payloads: list[Payload], resources: Resources
    ) -> list[cf.Future[Payload]]:
        """Submit one job per payload (one array job on Slurm); the futures complete as the jobs end."""
        if not payloads:
            return []
        if self._stop.is_set():
            raise RuntimeError("SlurmEngine is closed")
        keys = [payload_key(p, i) for i, p in enumerate(payloads)]
        futures: list[cf.Future[Payload]] = [cf.Future() for _ in payloads]
        if self._local_limit is not None:
            with self._lock:
                self._queued.extend(
                    _Queued(k, fn, p, resources, f) for k, p, f in zip(keys, payloads, futures)
                )
        else:
            with self._lock:
                self._executor.update_parameters(**self._parameters(resources))
                try:
                    with self._executor.batch():
                        jobs = [self._executor.submit(fn, p) for p in payloads]
                except Exception as exc:  # sbatch's refusal (bad partition, time over the limit...)
                    raise EvalsuiteError(f"slurm: submission failed: {_last_line(str(exc))}") from exc
            self._record(keys, jobs)
            with self._lock:
                self._watched.extend(_Watch(k, j, f) for k, j, f in zip(keys, jobs, futures))
            log.info("slurm: submitted %d job(s) as %s", len(jobs), jobs[0].job_id.split("_")[0])
        self._ensure_thread()
        return futures

    def _record(self, keys: list[str], jobs: list[Any]) -> None:
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        lines = [
            json.dumps({"key": k, "job_id": str(j.job_id), "cluster": self.cluster, "submitted": now})
            for k, j in zip(keys, jobs)
        ]
        with (self.folder / SUBMITTED).open("a", encoding="utf-8") as fh:
            fh.write("".join(ln + "\n" for ln in lines))
            fh.flush()
            os.fsync(fh.fileno())
        self.submitted.extend((k, str(j.job_id)) for k, j in zip(keys, jobs))

    # -- restart -----------------------------------------------------------------------------------

    @staticmethod
    def reattach(folder: str | Path) -> list[tuple[str, Any]]:
        """The jobs recorded in ``folder`` that have not finished: ``[(payload key, submitit job)]``.

        For the newest submission of each key only. Slurm jobs are asked of sacct; local-executor jobs
        are judged by their result file and whether their controller process still runs. Pass the list
        to ``track`` to get futures for them.
        """
        submitit = _import_submitit()
        path = Path(folder).absolute() / SUBMITTED
        if not path.is_file():
            return []
        newest: dict[str, dict[str, Any]] = {}
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                rec = json.loads(line)
                newest[str(rec["key"])] = rec
        out: list[tuple[str, Any]] = []
        for key, rec in newest.items():
            if rec.get("cluster") == "slurm":
                job: Any = submitit.SlurmJob(folder=path.parent, job_id=str(rec["job_id"]))
            else:
                from submitit.local.local import LocalJob

                job = LocalJob(folder=path.parent, job_id=str(rec["job_id"]))
            if not _finished(job):
                out.append((key, job))
        return out

    def reattach_running(self) -> list[tuple[str, Any]]:
        """``reattach`` of this engine's own folder: what an earlier driver submitted that still runs."""
        return self.reattach(self.folder)

    def track(self, jobs: list[tuple[str, Any]]) -> list[cf.Future[Payload]]:
        """Futures for already-submitted jobs (from ``reattach``), completed like those of ``submit_many``."""
        futures: list[cf.Future[Payload]] = [cf.Future() for _ in jobs]
        with self._lock:
            self._watched.extend(_Watch(k, j, f) for (k, j), f in zip(jobs, futures))
        self._ensure_thread()
        return futures

    # -- the polling thread ------------------------------------------------------------------------

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._poll, name="evalsuite-slurm-poll", daemon=True)
                self._thread.start()
        self._wake.set()

    def _poll(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                watched = list(self._watched)
            landed: list[_Watch] = []
            for w in watched:
                if self._stop.is_set():
                    return
                if w.future.cancelled():
                    with contextlib.suppress(Exception):
                        w.job.cancel(check=False)
                    landed.append(w)
                    continue
                try:
                    if not _finished(w.job):
                        continue
                except Exception as exc:  # a flaky sacct must not kill the thread: try again next round
                    log.warning("slurm: cannot read the state of job %s: %s", w.job.job_id, exc)
                    continue
                self._settle(w)
                landed.append(w)
            gone = {id(w) for w in landed}
            with self._lock:
                self._watched = [w for w in self._watched if id(w) not in gone]
            self._start_queued()
            with self._lock:
                idle = not self._watched and not self._queued
            if idle:
                self._wake.wait()
                self._wake.clear()
            else:
                self._stop.wait(self.poll_s)

    def _settle(self, w: _Watch) -> None:
        if self.cluster != "slurm":
            # submitit waits up to 15 s for a result file that a shared file system may show late; a local
            # job that exited without one will not produce it
            w.job._results_timeout_s = 1
        try:
            value = w.job.result()
        except Exception as exc:
            reason = failure_reason(w.job, exc)
            log.warning("slurm: %s: %s", w.key, reason)
            err = EvalsuiteError(reason)
            err.__cause__ = exc
            with contextlib.suppress(cf.InvalidStateError):  # cancelled meanwhile
                w.future.set_exception(err)
        else:
            with contextlib.suppress(cf.InvalidStateError):
                w.future.set_result(value)

    def _start_queued(self) -> None:
        with self._lock:
            free = (self._local_limit or 0) - len(self._watched)
            batch: list[_Queued] = []
            while self._queued and len(batch) < free:
                q = self._queued.popleft()
                if not q.future.cancelled():
                    batch.append(q)
        for q in batch:
            try:
                with self._lock:
                    self._executor.update_parameters(**self._parameters(q.resources))
                    job = self._executor.submit(q.fn, q.payload)
            except Exception as exc:
                err = EvalsuiteError(f"slurm: submission failed: {_last_line(str(exc))}")
                err.__cause__ = exc
                with contextlib.suppress(cf.InvalidStateError):
                    q.future.set_exception(err)
                continue
            self._record([q.key], [job])
            with self._lock:
                self._watched.append(_Watch(q.key, job, q.future))

    def close(self) -> None:
        """Stop waiting. Submitted jobs keep running (``reattach`` finds them); futures still pending
        are cancelled so that nobody waits on them forever."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            for w in self._watched:
                w.future.cancel()
            for q in self._queued:
                q.future.cancel()
            self._watched, self._queued = [], deque()
