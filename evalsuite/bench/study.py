"""``evalsuite bench run`` on a study (a suite with a ``[grid]``): plan the jobs, run the unfinished ones on
an engine, record each one in the store as it lands.

The driver is the only writer of the store; workers write only their own job folder
(``evalsuite.bench.jobs``). Before anything is submitted the store is opened (a corrupt or newer store
is refused) and every dataset the remaining jobs read is loaded once. Then:

- a finished job (status done, result verifying) is never redone; it is recorded if the store lacks it
  (the driver was killed between the job's end and its store write);
- a failed job stays failed (and recorded) unless ``retry_failed``;
- every other job is submitted; a killed training resumes from its last epoch in the worker;
- a job that fails, or whose worker dies, is recorded as failed with a one-line reason; the others go on.

Each store write is one short transaction, so a kill -9 of the driver leaves the store consistent and a
rerun picks up where the job folders say the study is.
"""

from __future__ import annotations

import calendar
import concurrent.futures as cf
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.bench.engines import Engine, LocalEngine, Resources, visible_gpus
from evalsuite.bench.grid import JobSpec, Plan, canonical_json
from evalsuite.bench.jobs import (
    RESULT,
    WORKER_LOG,
    is_finished,
    now_iso,
    read_status,
    run_task,
    shard_name,
    verified_result,
    write_spec,
    write_status,
)
from evalsuite.bench.plan import plan_suite
from evalsuite.bench.runner import Overrides, _check_store_path, _reason
from evalsuite.bench.store import JobRecord, MetricRow, ResultStore
from evalsuite.bench.suite import Suite
from evalsuite.core.errors import DataError, EvalsuiteError

log = logging.getLogger(__name__)

MAX_POOL_RESUBMITS = 2  # a job queued behind a worker that died is resubmitted, at most this often


def default_runs_dir(suite: Suite) -> Path:
    """``runs/<suite name>`` under the current folder."""
    return Path("runs") / suite.name


@dataclass(frozen=True)
class StudyOutcome:
    """What ``run_study`` did: the plan's job count, the ids it found finished, the ids it ran to the end,
    and {job id: reason} of every failed job (those that failed now and, unless retried, before)."""

    suite: str
    runs_dir: Path
    jobs: int
    skipped: tuple[str, ...]
    ran: tuple[str, ...]
    failures: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every job of the plan is done."""
        return not self.failures


def check_study_inputs(jobs: list[JobSpec]) -> None:
    """Every dataset the jobs read (training, test, ID, OOD) loads, each once; the battery tables parse.
    Raises the first problem, naming the job."""
    from evalsuite.battery import DEFAULT_OOD
    from evalsuite.bench.runner import battery_from_table
    from evalsuite.data import ImageSet, load_dataset
    from evalsuite.data.base import split_named_spec

    loaded: dict[tuple[str, str], ImageSet] = {}

    def need(spec: str, split: str, root: Any, download: bool, shape: Any = None) -> ImageSet:
        key = (spec, split)
        if key not in loaded:
            loaded[key] = load_dataset(spec, split, root, download, shape=shape)
        return loaded[key]

    for job in jobs:
        t, e = job.train, job.eval
        root, download = e.get("root"), bool(e.get("download", False))
        try:
            cfg = battery_from_table(job.battery)
            train = str(t["dataset"])
            need(train, "train", root, download)
            need(str(t.get("test_data") or train), "test", root, download)
            id_spec = str(e.get("id") or train)
            id_set = need(id_spec, "test", root, download)
            if "ood" in cfg.checks:
                ood = e.get("ood")
                for s in ood if ood is not None else DEFAULT_OOD.get(id_spec, ()):
                    need(split_named_spec(s)[1], "test", root, download, shape=id_set.input_shape)
        except EvalsuiteError as err:
            raise type(err)(f"job {job.name}: {_reason(err)} (checked before any job ran)") from None


def _metrics(job: JobSpec, result: Any, arrays: Any, n_boot: int) -> dict[str, MetricRow]:
    from evalsuite.report.compare import CompareSettings, ModelEntry, value_table

    table = value_table(ModelEntry(job.name, job.job_id, result, arrays), CompareSettings(n_boot=n_boot))
    return {
        k: MetricRow(v["value"], v["ci_low"], v["ci_high"], v["n"], bool(v["higher_is_better"]))
        for k, v in table.items()
    }


def _info(status: dict[str, Any] | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    keys = ("host", "device", "started", "finished", "duration_s")
    out = {k: (status or {}).get(k) for k in keys}
    out.update({k: v for k, v in (extra or {}).items() if k in keys and v is not None})
    return out


class _Driver:
    """The bookkeeping of one ``run_study`` call: futures in flight, shards, outcomes, the store."""

    def __init__(
        self,
        plan: Plan,
        store: ResultStore,
        runs_dir: Path,
        engine: Engine,
        device: str,
        gpus: bool,
        n_boot: int,
    ) -> None:
        self.plan, self.store, self.runs_dir, self.engine = plan, store, runs_dir, engine
        self.device, self.gpus, self.n_boot = device, gpus, n_boot
        self.token = uuid.uuid4().hex
        self.pending: dict[cf.Future[dict[str, Any]], tuple[JobSpec, str, list[int] | None]] = {}
        self.shards_left: dict[str, int] = {}
        self.closed: set[str] = set()
        self.ran: list[str] = []
        self.failures: dict[str, str] = {}
        self.resubmits: dict[str, int] = {}
        self.retry: list[tuple[JobSpec, str, list[int] | None]] = []

    def job_dir(self, job: JobSpec) -> Path:
        return self.runs_dir / job.job_id

    # -- recording ------------------------------------------------------------------------------------

    def record_done(self, job: JobSpec, extra: dict[str, Any] | None = None) -> bool:
        """Read the job's verified result, store it with its metrics; False (and recorded failed) when the
        result does not verify."""
        d = self.job_dir(job)
        try:
            result, arrays = verified_result(d)
            rows = _metrics(job, result, arrays, self.n_boot)
        except Exception as e:  # broad on purpose: a result that cannot be read fails this job only
            self.record_failed(job, f"its result cannot be read: {_reason(e)}", extra)
            return False
        self.store.put_job(
            self.plan.suite, job, "done", None, _info(read_status(d), extra), result.to_json(), rows
        )
        return True

    def record_failed(self, job: JobSpec, reason: str, extra: dict[str, Any] | None = None) -> None:
        """Record ``job`` failed (status.json too, when the worker could not write it) and remember why."""
        d = self.job_dir(job)
        st = read_status(d) or {}
        if st.get("state") != "failed" or st.get("error") != reason:
            st.update(
                state="failed",
                job_id=job.job_id,
                name=job.name,
                error=reason,
                finished=st.get("finished") or now_iso(),
                log=str(d / WORKER_LOG),
            )
            st.setdefault("started", None)
            try:
                write_status(d, st)
            except EvalsuiteError as e:
                log.warning("%s: cannot write status.json (%s)", job.job_id, _reason(e))
        self.store.put_job(self.plan.suite, job, "failed", reason, _info(st, extra), None, {})
        self.failures[job.job_id] = reason
        self.closed.add(job.job_id)
        log.warning("job %s (%s) failed: %s", job.name, job.job_id, reason)

    # -- submitting -----------------------------------------------------------------------------------

    def payload(self, job: JobSpec, stage: str, shard: list[int] | None) -> dict[str, Any]:
        return {
            "spec": job.to_dict(),
            "job_dir": str(self.job_dir(job)),
            "stage": stage,
            "shard": shard,
            "device": self.device,
            "progress": False,
            "token": self.token,
        }

    def submit(self, tasks: list[tuple[JobSpec, str, list[int] | None]]) -> None:
        """Submit tasks grouped by the resources they need (one ``submit_many`` per group)."""
        groups: dict[Resources, list[tuple[JobSpec, str, list[int] | None]]] = {}
        for job, stage, shard in tasks:
            # every stage asks for the job's GPUs: a study's tasks then share one local pool (grid gpus is
            # one number), at the price of idle GPUs while a shard of a multi-GPU job evaluates on one
            gpus = job.gpus if self.gpus else 0
            groups.setdefault(Resources(cpus=1, gpus=gpus), []).append((job, stage, shard))
        for res, group in groups.items():
            futures = self.engine.submit_many(run_task, [self.payload(*t) for t in group], res)
            for fut, t in zip(futures, group, strict=True):
                self.pending[fut] = t

    def start(self, jobs: list[JobSpec]) -> None:
        tasks = [(job, "train" if job.shards > 1 else "all", None) for job in jobs]
        # a restarted driver on Slurm: array tasks an earlier driver submitted may still run (a driver's
        # death does not cancel them); follow those instead of submitting the same jobs twice
        reattach = getattr(self.engine, "reattach_running", None)
        running = dict(reattach()) if reattach is not None else {}
        followed = [t for t in tasks if t[0].job_id in running]
        if followed:
            track = self.engine.track  # type: ignore[attr-defined]
            futures = track([(t[0].job_id, running[t[0].job_id]) for t in followed])
            for fut, t in zip(futures, followed, strict=True):
                self.pending[fut] = t
            log.info(
                "%d job(s) an earlier driver submitted still run: followed, not resubmitted", len(followed)
            )
        self.submit([t for t in tasks if t[0].job_id not in running])

    # -- landing --------------------------------------------------------------------------------------

    def land(self, fut: cf.Future[dict[str, Any]]) -> bool:
        """Handle one finished future; True when its job is now closed (done or failed)."""
        job, stage, shard = self.pending.pop(fut)
        if job.job_id in self.closed:
            return False  # a sibling shard already failed the job
        try:
            out = fut.result()
        except Exception as e:  # the worker died or the engine lost the task: the job never returned
            return self._lost(job, stage, shard, e)
        if out.get("state") != "done":
            self.record_failed(job, str(out.get("error") or "failed without a reason"), out)
            return True
        if stage == "all":
            if self.record_done(job, out):
                self.ran.append(job.job_id)
            self.closed.add(job.job_id)
            return True
        if stage == "train":
            k = job.shards
            self.shards_left[job.job_id] = k
            self.submit([(job, "eval", [i, k]) for i in range(k)])
            return False
        self.shards_left[job.job_id] -= 1
        if self.shards_left[job.job_id] > 0:
            return False
        self._merge(job)
        return True

    def _merge(self, job: JobSpec) -> None:
        from evalsuite.battery import merge_shards, save_result

        d = self.job_dir(job)
        st = read_status(d) or {}
        t0 = time.perf_counter()
        try:
            k = job.shards
            result, arrays = merge_shards([d / shard_name(i, k) for i in range(k)])
            save_result(result, arrays, d / RESULT)
        except Exception as e:  # broad on purpose: a merge failure fails this job only
            self.record_failed(job, f"merging its {job.shards} shards failed: {_reason(e)}")
            return
        st.update(state="done", stage="merge", error=None, finished=now_iso())
        started = st.get("started")
        st["duration_s"] = round(float(st.get("duration_s") or 0.0) + time.perf_counter() - t0, 3)
        if started:
            st["duration_s"] = round(max(st["duration_s"], _since(started)), 3)
        write_status(d, st)
        if self.record_done(job):
            self.ran.append(job.job_id)
        self.closed.add(job.job_id)

    def _lost(self, job: JobSpec, stage: str, shard: list[int] | None, e: BaseException) -> bool:
        st = read_status(self.job_dir(job)) or {}
        started_here = st.get("token") == self.token and st.get("state") == "running"
        broken = isinstance(e, BrokenProcessPool)
        n = self.resubmits.get(job.job_id, 0)
        if broken and not started_here and n < MAX_POOL_RESUBMITS:
            # queued behind the worker that died: it never ran, so it runs again on a fresh pool
            self.resubmits[job.job_id] = n + 1
            self.retry.append((job, stage, shard))
            return False
        if started_here:
            reason = f"its worker process died while running it ({_reason(e)})"
        else:
            reason = f"the engine lost it ({_reason(e)})"
        self.record_failed(job, reason)
        return True

    def running(self) -> int:
        """Jobs whose worker has started them: an engine marks a queued future running early (the local
        pool's call queue), so each candidate's status.json must say it runs for this driver."""
        ids = {self.pending[f][0].job_id for f in self.pending if f.running()}
        return sum(
            1
            for j in ids
            if (st := read_status(self.runs_dir / j))
            and st.get("token") == self.token
            and st.get("state") == "running"
        )


def _since(iso: str) -> float:
    try:
        t = calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))
    except (ValueError, OverflowError):
        return 0.0
    return max(0.0, time.time() - t)


def _progress_bar(total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="job", file=sys.stderr, dynamic_ncols=True, smoothing=0.1)


def _check_device(device: str, local: bool) -> None:
    """A device name every job would refuse is refused once, now; on this machine's workers it must also
    exist (a cluster's workers may have the CUDA that the driver lacks)."""
    import torch

    from evalsuite.core.device import pick_device
    from evalsuite.core.errors import UsageError

    if local:
        pick_device(device)
    elif device != "auto":
        try:
            torch.device(device)
        except RuntimeError:
            raise UsageError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None


def _check_runs_dir(path: Path) -> None:
    anc = path
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir() or not os.access(anc, os.W_OK | os.X_OK):
        raise DataError(f"{path}: cannot create the job folders ({anc} is not a writable folder)")


def run_study(
    suite: Suite,
    store_path: str | Path,
    ov: Overrides | None = None,
    runs_dir: str | Path | None = None,
    engine: Engine | None = None,
    retry_failed: bool = False,
    progress: bool = False,
    on_land: Callable[[str, str], None] | None = None,
) -> StudyOutcome:
    """Run the study ``suite`` (see the module docstring). ``engine`` defaults to one local worker and is
    not closed here; ``on_land(job_id, state)`` is called after each job's store write."""
    ov = ov or Overrides()
    plan = plan_suite(suite, ov)
    runs = Path(runs_dir) if runs_dir is not None else default_runs_dir(suite)
    store_path = Path(store_path)
    if store_path.exists():
        ResultStore(store_path, create=False).close()  # refuses a corrupt or newer store before any work
    else:
        _check_store_path(store_path)
    _check_runs_dir(runs)

    finished: list[JobSpec] = []
    failed_before: list[tuple[JobSpec, str]] = []
    todo: list[JobSpec] = []
    for job in plan.jobs:
        d = runs / job.job_id
        if is_finished(d):
            finished.append(job)
            continue
        st = read_status(d)
        if st and st.get("state") == "failed" and not retry_failed:
            failed_before.append((job, str(st.get("error") or "failed without a reason")))
        else:
            todo.append(job)
    device = ov.device or str(suite.battery.get("device", "auto"))
    _check_device(device, local=engine is None or isinstance(engine, LocalEngine))
    check_study_inputs(todo)

    gpus = device.startswith("cuda") or (device == "auto" and bool(visible_gpus()))
    own_engine = engine is None
    eng = engine or LocalEngine(workers=1)
    n_boot = int(suite.compare.get("n_boot", 1000))
    with ResultStore(store_path) as store:
        drv = _Driver(plan, store, runs, eng, device, gpus, n_boot)
        recorded = {r.job_id: r for r in store.jobs(plan.suite)}
        for job in plan.jobs:
            (runs / job.job_id).mkdir(parents=True, exist_ok=True)
            write_spec(runs / job.job_id, job)
        for job in finished:
            if _state(recorded.get(job.job_id)) != "done":
                drv.record_done(job)
        for job, reason in failed_before:
            if _state(recorded.get(job.job_id)) != "failed":
                drv.record_failed(job, reason)
            drv.failures[job.job_id] = reason
        if finished or failed_before:
            log.info(
                "%s: %d of %d jobs already finished, %d failed before%s",
                plan.suite,
                len(finished),
                len(plan.jobs),
                len(failed_before),
                "" if retry_failed else " (--retry-failed runs them again)",
            )
        bar = _progress_bar(len(todo), plan.suite) if progress and todo else None
        try:
            if todo:
                drv.start(todo)
            done_now = failed_now = 0
            while drv.pending:
                ready, _ = cf.wait(list(drv.pending), timeout=1.0, return_when=cf.FIRST_COMPLETED)
                for fut in ready:
                    jid = drv.pending[fut][0].job_id
                    if drv.land(fut):
                        failed = jid in drv.failures
                        done_now += not failed
                        failed_now += failed
                        if bar is not None:
                            bar.update(1)
                        if on_land is not None:
                            on_land(jid, "failed" if failed else "done")
                if drv.retry:
                    retry, drv.retry = drv.retry, []
                    drv.submit(retry)
                if bar is not None:
                    bar.set_postfix_str(f"done {done_now}, running {drv.running()}, failed {failed_now}")
        finally:
            if bar is not None:
                bar.close()
            if own_engine:
                eng.close()
    names = {j.job_id: j.name for j in plan.jobs}
    return StudyOutcome(
        suite=plan.suite,
        runs_dir=runs,
        jobs=len(plan.jobs),
        skipped=tuple(j.job_id for j in finished),
        ran=tuple(drv.ran),
        failures=dict(drv.failures),
        names=names,
    )


def _state(rec: JobRecord | None) -> str | None:
    return rec.state if rec is not None else None


# ------------------------------------------------------------------------------------------- status


@dataclass(frozen=True)
class JobStatus:
    """One line of ``bench status``."""

    job_id: str
    name: str
    state: str  # pending | running | done | failed | interrupted
    host: str | None = None
    device: str | None = None
    duration_s: float | None = None
    error: str | None = None
    log: str | None = None
    stage: str | None = None


def _pid_alive(pid: Any) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError, TypeError):
        return False
    return True


def job_status(job: JobSpec, job_dir: Path, record: JobRecord | None = None) -> JobStatus:
    """The state of one job from its folder (and its store record when the folder has none)."""
    st = read_status(job_dir)
    if st is None:
        if record is not None:
            return JobStatus(
                job.job_id,
                job.name,
                record.state,
                record.host,
                record.device,
                record.duration_s,
                record.reason,
            )
        return JobStatus(job.job_id, job.name, "pending")
    state = str(st.get("state"))
    duration = st.get("duration_s")
    if state == "running":
        here = st.get("host") == socket.gethostname()
        if here and not _pid_alive(st.get("pid")):
            state = "interrupted"  # its worker is gone: a rerun resumes it
        elif st.get("started"):
            duration = round(_since(str(st["started"])), 1)
    elif state == "done" and not is_finished(job_dir):
        state = "interrupted"
    return JobStatus(
        job.job_id,
        job.name,
        state,
        st.get("host"),
        st.get("device"),
        duration,
        st.get("error"),
        st.get("log"),
        st.get("stage"),
    )


def study_status(plan: Plan, runs_dir: Path, store: ResultStore | None = None) -> list[JobStatus]:
    """Every job of the plan with its state (pending, running, done, failed, interrupted)."""
    records = {r.job_id: r for r in store.jobs(plan.suite)} if store is not None else {}
    return [job_status(j, runs_dir / j.job_id, records.get(j.job_id)) for j in plan.jobs]


def _duration(s: float | None) -> str:
    if s is None:
        return "-"
    s = float(s)
    if s < 60:
        return f"{s:.1f}s"
    if s < 3600:
        return f"{s / 60:.1f}m"
    return f"{s / 3600:.2f}h"


def format_status(rows: list[JobStatus], runs_dir: Path, others: int = 0) -> str:
    """The job table of ``bench status``: counts, then one line per job (errors on the line below)."""
    from collections import Counter

    counts = Counter(r.state for r in rows)
    order = ("done", "running", "failed", "interrupted", "pending")
    head = f"{len(rows)} jobs in {runs_dir}: " + ", ".join(f"{counts[s]} {s}" for s in order if counts[s])
    cols = [
        (
            r.state,
            r.name,
            r.job_id,
            r.host or "-",
            r.device or "-",
            _duration(r.duration_s),
            r.log if r.state in ("running", "failed", "interrupted") and r.log else "",
        )
        for r in rows
    ]
    titles = ("state", "job", "id", "host", "device", "duration", "log")
    widths = [max(len(t), *(len(c[i]) for c in cols)) for i, t in enumerate(titles)] if cols else []
    lines = [head, "  " + "  ".join(t.ljust(w) for t, w in zip(titles, widths)).rstrip()]
    for r, c in zip(rows, cols):
        lines.append("  " + "  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())
        if r.error:
            lines.append(f"      error: {r.error}")
    if others:
        lines.append(
            f"({others} other job folder(s) in {runs_dir} belong to another plan: other overrides such as "
            "--epochs/--limit, or another code revision; pass the run's flags to see them)"
        )
    return "\n".join(lines) + "\n"


def other_job_folders(plan: Plan, runs_dir: Path) -> int:
    """How many job folders in ``runs_dir`` are not jobs of ``plan``."""
    if not runs_dir.is_dir():
        return 0
    ids = {j.job_id for j in plan.jobs}
    return sum(
        1
        for p in runs_dir.iterdir()
        if p.name not in ids and ((p / "spec.json").exists() or (p / "status.json").exists())
    )


def check_study(plan: Plan, store: ResultStore) -> tuple[bool, str]:
    """``bench check`` of a study: every job of the plan done in the store; the text names each failed or
    missing job."""
    records = {r.job_id: r for r in store.jobs(plan.suite)}
    bad: list[str] = []
    done = 0
    for j in plan.jobs:
        rec = records.get(j.job_id)
        if rec is None:
            bad.append(f"  MISSING {j.name} ({j.job_id}): not in the store (run bench run)")
        elif rec.state != "done":
            bad.append(f"  FAILED  {j.name} ({j.job_id}): {rec.reason}")
        else:
            done += 1
    head = f"study {plan.suite}: {done} of {len(plan.jobs)} jobs done in {store.path}"
    planned = {j.job_id for j in plan.jobs}
    others = sum(1 for k in records if k not in planned)
    # the usual cause of "missing" jobs: results made by other code or with other flags than this check's
    note = (
        f"  ({others} job(s) of {plan.suite} in the store belong to another plan: other overrides such as "
        "--epochs/--limit, or another version of evalsuite's code; pass the run's flags)\n"
        if others and bad
        else ""
    )
    if bad:
        return False, head + f"; {len(bad)} not done:\n" + "\n".join(bad) + "\n" + note
    return True, head + "\n"


def newest_per_point(records: Sequence[JobRecord]) -> tuple[list[JobRecord], int]:
    """The finished jobs of a store, one per grid point: where the store holds a point more than once (the
    study was rerun with other code or flags, so under new job ids) the most recently finished is kept.
    Returns the jobs and how many older duplicates were left out."""
    best: dict[str, JobRecord] = {}
    done = [r for r in records if r.state == "done" and r.result_json]
    for r in done:
        key = canonical_json(r.axes)
        old = best.get(key)
        if old is None or (r.finished or "", r.job_id) > (old.finished or "", old.job_id):
            best[key] = r
    return list(best.values()), len(done) - len(best)
