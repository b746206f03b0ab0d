"""The results store: every benchmark run of every suite in one SQLite file, for history and the gate.

One file, WAL mode, a busy timeout and ``BEGIN IMMEDIATE`` writes, so that nightly jobs on one machine can
append at the same time and a killed job leaves either its whole run or nothing. The file is checked
before anything is written to it: a store from a newer evalsuite, a corrupt file or a foreign SQLite
database is refused with a one-line ``DataError`` and left byte for byte as it was.

Tables (schema version 3)::

    meta(key, value)                      schema_version, created, created_by
    runs(id, suite, started, finished, git_revision, machine, versions json, durations json, tag, note,
         status)                          status: complete | incomplete (some model failed)
    metrics(run_id, model, metric, value, ci_low, ci_high, n, higher_is_better)
    results(run_id, model, result_json, status, reason)    status: ok | failed (reason: one line)
    jobs(suite, job_id, name, axes json, spec json, state, reason, host, device, started, finished,
         duration_s, result_json)          one row per study job, upserted as each job lands
    job_metrics(suite, job_id, metric, value, ci_low, ci_high, n, higher_is_better)

A failed model has a ``results`` row (status failed, its reason) and no metrics. Version 1 lacked the two
status columns: a version-1 store opens and reads as it is (every run complete, every model ok) and is
upgraded in place, in one transaction, by the first write. Version 2 lacked the two study tables: it
reads as a store without jobs and gains them, the same way, at the first write.

Run ids grow monotonically (AUTOINCREMENT: never reused), so "previous" is "largest smaller id of the
same suite". A metric value that is not finite is stored as NULL and read back as NaN.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import re
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from evalsuite.core.errors import DataError, UsageError
from evalsuite.core.version import __version__
from evalsuite.metrics import catalogue as K

if TYPE_CHECKING:
    import pandas as pd

    from evalsuite.bench.grid import JobSpec

SCHEMA_VERSION = 3
_OLDEST_READABLE = 1
MODEL_STATUSES = ("ok", "failed")
DEFAULT_TIMEOUT_S = 30.0
_SQLITE_MAGIC = b"SQLite format 3\x00"
_TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_META_KEYS = {"started", "finished", "git_revision", "machine", "versions", "durations", "note", "tag"}
HISTORY_COLUMNS = [
    "run_id",
    "started",
    "git_revision",
    "tag",
    "model",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "higher_is_better",
]

_DDL = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    suite TEXT NOT NULL,
    started TEXT,
    finished TEXT,
    git_revision TEXT,
    machine TEXT,
    versions TEXT,
    durations TEXT,
    tag TEXT UNIQUE,
    note TEXT,
    status TEXT NOT NULL DEFAULT 'complete'
);
CREATE INDEX IF NOT EXISTS runs_suite_id ON runs(suite, id);
CREATE TABLE IF NOT EXISTS metrics(
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER,
    higher_is_better INTEGER NOT NULL,
    PRIMARY KEY(run_id, model, metric)
);
CREATE TABLE IF NOT EXISTS results(
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    result_json TEXT,
    status TEXT NOT NULL DEFAULT 'ok',
    reason TEXT,
    PRIMARY KEY(run_id, model)
);
CREATE TABLE IF NOT EXISTS jobs(
    suite TEXT NOT NULL,
    job_id TEXT NOT NULL,
    name TEXT NOT NULL,
    axes TEXT NOT NULL,
    spec TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    host TEXT,
    device TEXT,
    started TEXT,
    finished TEXT,
    duration_s REAL,
    result_json TEXT,
    PRIMARY KEY(suite, job_id)
);
CREATE TABLE IF NOT EXISTS job_metrics(
    suite TEXT NOT NULL,
    job_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL,
    ci_low REAL,
    ci_high REAL,
    n INTEGER,
    higher_is_better INTEGER NOT NULL,
    PRIMARY KEY(suite, job_id, metric),
    FOREIGN KEY(suite, job_id) REFERENCES jobs(suite, job_id) ON DELETE CASCADE
);
"""
# version 1 -> 2: the run and per-model status columns; the defaults say what every version-1 row was
_UPGRADE_1_TO_2 = (
    "ALTER TABLE runs ADD COLUMN status TEXT NOT NULL DEFAULT 'complete'",
    "ALTER TABLE results ADD COLUMN status TEXT NOT NULL DEFAULT 'ok'",
    "ALTER TABLE results ADD COLUMN reason TEXT",
)
# version 2 -> 3: the study tables (the CREATE statements of _DDL, which are IF NOT EXISTS)
_STUDY_TABLES = ("jobs", "job_metrics")
JOB_STATES = ("done", "failed")


@dataclass(frozen=True)
class MetricRow:
    """One metric of one model in one run. ``higher_is_better=None`` takes the catalogue's direction."""

    value: float
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    higher_is_better: bool | None = None


@dataclass
class ModelRun:
    """What a run stores for one model: its metrics and, optionally, its full result JSON; or, with
    ``status="failed"``, no metrics and the one-line ``reason`` it failed."""

    metrics: dict[str, MetricRow]
    result_json: str | None = None
    status: str = "ok"
    reason: str | None = None

    @classmethod
    def failed(cls, reason: str) -> ModelRun:
        """A ModelRun for a model that failed with ``reason``: no metrics, status 'failed'."""
        return cls(metrics={}, status="failed", reason=reason)


@dataclass(frozen=True)
class JobRecord:
    """One row of ``jobs``: a study job as the driver recorded it when it landed."""

    job_id: str
    name: str
    axes: dict[str, Any]
    state: str
    reason: str | None
    host: str | None
    device: str | None
    started: str | None
    finished: str | None
    duration_s: float | None
    result_json: str | None


@dataclass(frozen=True)
class RunInfo:
    """One row of ``runs``."""

    id: int
    suite: str
    started: str | None
    finished: str | None
    git_revision: str | None
    machine: str | None
    versions: dict[str, Any] = field(default_factory=dict)
    durations: dict[str, Any] = field(default_factory=dict)
    tag: str | None = None
    note: str | None = None
    status: str = "complete"

    @property
    def complete(self) -> bool:
        """True when the run's status is 'complete'."""
        return self.status == "complete"

    @property
    def label(self) -> str:
        """'#12 (tag nightly-0601, 2024-06-01)': how reports name a run."""
        bits = [f"tag {self.tag}"] if self.tag else []
        if self.started:
            bits.append(self.started[:10])
        return f"#{self.id}" + (f" ({', '.join(bits)})" if bits else "")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _is_locked(e: sqlite3.Error) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def _finite_or_none(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _json_or_none(obj: Any, what: str) -> str | None:
    if obj is None:
        return None
    try:
        return json.dumps(obj, sort_keys=True, allow_nan=False, default=str)
    except ValueError as e:
        raise UsageError(f"run meta {what!r} is not JSON-serializable ({e})") from None


def _metric_rows(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, MetricRow]]:
    """``(owner, metric, value, ci_low, ci_high, n, higher_is_better)`` rows as {owner: {metric: row}}; a
    NULL value (stored for a non-finite one) reads back as NaN."""
    out: dict[str, dict[str, MetricRow]] = {}
    for owner, metric, value, lo, hi, n, hib in rows:
        out.setdefault(owner, {})[metric] = MetricRow(
            value=math.nan if value is None else float(value),
            ci_low=lo,
            ci_high=hi,
            n=n,
            higher_is_better=bool(hib),
        )
    return out


def _json_dict(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        out = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return out if isinstance(out, dict) else {}


class ResultStore:
    """A SQLite results store at ``path``; ``timeout`` (seconds) bounds every wait for another writer.

    Use as a context manager or call ``close()``. One instance per process/thread.
    """

    def __init__(self, path: str | Path, create: bool = True, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.path = Path(path)
        self.timeout = float(timeout)
        exists = self.path.exists()
        if not exists and not create:
            raise DataError(f"{self.path}: no such results store")
        if exists:
            if not self.path.is_file():
                raise DataError(f"{self.path}: not a file")
            self._probe()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = self._connect()
        try:
            # Only a new store needs the write lock: readers must not wait behind a running writer.
            if not self._has_schema():
                self._init_schema()
            self._version = self._schema_version()
        except BaseException:
            self._con.close()
            raise

    # -- opening -------------------------------------------------------------------------------------------

    def _probe(self) -> None:
        """Validate an existing file through a read-only connection, so a refused file is never written."""
        with open(self.path, "rb") as f:
            head = f.read(len(_SQLITE_MAGIC))
        if not head:
            return  # an empty file is what sqlite3 itself would create: treat as a new store
        if head != _SQLITE_MAGIC:
            raise DataError(f"{self.path}: not an evalsuite results store (not an SQLite database)")
        try:
            con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=self.timeout)
        except sqlite3.Error as e:
            raise DataError(f"{self.path}: cannot open results store ({e})") from None
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not tables:
                return
            if "meta" not in tables or "runs" not in tables:
                raise DataError(f"{self.path}: an SQLite database but not an evalsuite results store")
            row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        except sqlite3.Error as e:
            if _is_locked(e):
                raise DataError(f"{self.path}: store is locked by another process ({e})") from None
            raise DataError(f"{self.path}: corrupt results store ({e})") from None
        finally:
            con.close()
        try:
            version = int(row[0]) if row else None
        except (TypeError, ValueError):
            version = None
        if version is None:
            raise DataError(f"{self.path}: results store has no valid schema_version")
        if version > SCHEMA_VERSION:
            raise DataError(
                f"{self.path}: results store schema version {version} is newer than this evalsuite's "
                f"{SCHEMA_VERSION}; upgrade evalsuite to use it"
            )
        if version < _OLDEST_READABLE:
            raise DataError(f"{self.path}: results store schema version {version} is not supported")

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves, nothing implicit.
        con = sqlite3.connect(str(self.path), timeout=self.timeout, isolation_level=None)
        try:
            con.execute(f"PRAGMA busy_timeout={int(self.timeout * 1000)}")
            con.execute("PRAGMA foreign_keys=ON")
            mode = self._journal_wal(con)
            if not mode or str(mode[0]).lower() != "wal":
                raise DataError(f"{self.path}: cannot switch results store to WAL mode (got {mode})")
            con.execute("PRAGMA synchronous=NORMAL")  # durable enough in WAL mode; atomic either way
        except sqlite3.Error as e:
            con.close()
            self._raise(e)
        except BaseException:
            con.close()
            raise
        return con

    def _journal_wal(self, con: sqlite3.Connection) -> Any:
        """``PRAGMA journal_mode=WAL``, retried until ``timeout``: SQLite can answer it with "database is
        locked" at once, without calling the busy handler, while another process creates the same file
        (seen as a rare failure of two drivers creating one store together)."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                return con.execute("PRAGMA journal_mode=WAL").fetchone()
            except sqlite3.OperationalError as e:
                if not _is_locked(e) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _has_schema(self) -> bool:
        rows = self._read("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'")
        return bool(rows) and bool(self._read("SELECT 1 FROM meta WHERE key='schema_version'"))

    def _schema_version(self) -> int:
        return int(self._read("SELECT value FROM meta WHERE key='schema_version'")[0][0])

    def _upgrade(self) -> None:
        """Bring an older store to ``SCHEMA_VERSION`` before the first write (one transaction; another
        process may have upgraded it since we opened it, so the version is read again under the lock)."""
        if self._version >= SCHEMA_VERSION:
            return
        with self._write() as con:
            version = int(con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])
            if version < SCHEMA_VERSION:
                if version == 1:
                    for stmt in _UPGRADE_1_TO_2:
                        con.execute(stmt)
                # 2 -> 3: every CREATE of _DDL is IF NOT EXISTS, so only the study tables are new
                for stmt in _DDL.split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION),))
                con.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('upgraded', ?)",
                    (f"{version} -> {SCHEMA_VERSION} by evalsuite {__version__} at {_now()}",),
                )
        self._version = SCHEMA_VERSION

    def _init_schema(self) -> None:
        with self._write() as con:
            # statement by statement: executescript() would COMMIT our transaction
            for stmt in _DDL.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            created = {
                "schema_version": str(SCHEMA_VERSION),
                "created": _now(),
                "created_by": f"evalsuite {__version__} on {platform.node()}",
            }
            for k, v in created.items():
                con.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (k, v))

    def _raise(self, e: sqlite3.Error) -> NoReturn:
        if _is_locked(e):
            raise DataError(
                f"{self.path}: store is locked by another process (waited {self.timeout:g} s)"
            ) from None
        raise DataError(f"{self.path}: results store error ({e})") from None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE takes the write lock up front (waiting up to timeout)."""
        con = self._con
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as e:
            self._raise(e)
        try:
            yield con
            con.execute("COMMIT")
        except BaseException as exc:
            if con.in_transaction:
                con.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                self._raise(exc)
            raise

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._con.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            self._raise(e)

    def close(self) -> None:
        """Close the database connection."""
        self._con.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------------

    def add_run(
        self, suite: str, models: Mapping[str, ModelRun], meta: Mapping[str, Any] | None = None
    ) -> int:
        """Store one run of ``suite`` (all models, metrics and results) in one transaction; return its id.

        ``meta`` keys: started (default now, UTC), finished, git_revision, machine (default this host),
        versions (dict), durations (dict), note, tag.
        """
        meta = dict(meta or {})
        unknown = set(meta) - _META_KEYS
        if unknown:
            raise UsageError(f"unknown run meta keys {sorted(unknown)}; known: {sorted(_META_KEYS)}")
        if not isinstance(suite, str) or not suite:
            raise UsageError("suite must be a non-empty string")
        if not models:
            raise UsageError(f"run of suite {suite!r} has no models")
        tag = meta.get("tag")
        if tag is not None:
            self.check_tag_name(tag)
        metric_rows: list[tuple[Any, ...]] = []
        result_rows: list[tuple[Any, ...]] = []
        for model, mr in models.items():
            if not isinstance(model, str) or not model:
                raise UsageError(f"model names must be non-empty strings, got {model!r}")
            if mr.status not in MODEL_STATUSES:
                raise UsageError(f"model {model!r}: status must be 'ok' or 'failed', got {mr.status!r}")
            if mr.status == "failed":
                if mr.metrics or not mr.reason:
                    raise UsageError(f"failed model {model!r} needs a reason and no metrics")
                result_rows.append((model, mr.result_json, "failed", " ".join(str(mr.reason).split())))
                continue
            for name, row in mr.metrics.items():
                hib = K.higher_is_better(name) if row.higher_is_better is None else bool(row.higher_is_better)
                n = None if row.n is None else int(row.n)
                metric_rows.append(
                    (
                        model,
                        name,
                        _finite_or_none(row.value),
                        _finite_or_none(row.ci_low),
                        _finite_or_none(row.ci_high),
                        n,
                        int(hib),
                    )
                )
            if mr.result_json is not None:
                result_rows.append((model, mr.result_json, "ok", None))
        status = "incomplete" if any(mr.status == "failed" for mr in models.values()) else "complete"
        run_row = (
            suite,
            meta.get("started") or _now(),
            meta.get("finished"),
            meta.get("git_revision"),
            meta.get("machine") or platform.node(),
            _json_or_none(meta.get("versions") or {}, "versions"),
            _json_or_none(meta.get("durations") or {}, "durations"),
            tag,
            meta.get("note"),
            status,
        )
        self._upgrade()
        with self._write() as con:
            if tag is not None and con.execute("SELECT 1 FROM runs WHERE tag=?", (tag,)).fetchone():
                raise UsageError(f"tag {tag!r} is already used by another run")
            cur = con.execute(
                "INSERT INTO runs(suite, started, finished, git_revision, machine, versions, durations, tag,"
                " note, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                run_row,
            )
            run_id = int(cur.lastrowid or 0)
            self._insert_models(con, run_id, metric_rows, result_rows)
        return run_id

    def _insert_models(
        self,
        con: sqlite3.Connection,
        run_id: int,
        metric_rows: list[tuple[Any, ...]],
        result_rows: list[tuple[Any, ...]],
    ) -> None:
        # A separate method so tests can stall a writer between the run row and its metrics.
        con.executemany(
            "INSERT INTO metrics(run_id, model, metric, value, ci_low, ci_high, n, higher_is_better)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, *r) for r in metric_rows],
        )
        con.executemany(
            "INSERT INTO results(run_id, model, result_json, status, reason) VALUES (?, ?, ?, ?, ?)",
            [(run_id, *r) for r in result_rows],
        )

    def put_job(
        self,
        suite: str,
        spec: JobSpec,
        state: str,
        reason: str | None,
        info: Mapping[str, Any],
        result_json: str | None,
        metrics: Mapping[str, MetricRow],
    ) -> None:
        """Insert or replace study job ``spec`` of ``suite`` with its metrics, in one short transaction.

        ``state`` is done (with metrics and the result JSON) or failed (with a one-line ``reason``, no
        metrics); ``info`` keys: host, device, started, finished, duration_s.
        """
        if state not in JOB_STATES:
            raise UsageError(f"job {spec.job_id}: state must be 'done' or 'failed', got {state!r}")
        if state == "failed" and (metrics or not reason):
            raise UsageError(f"failed job {spec.job_id} needs a reason and no metrics")
        duration = info.get("duration_s")
        job_row = (
            suite,
            spec.job_id,
            spec.name,
            json.dumps(spec.axes, sort_keys=True, default=str),
            json.dumps(spec.to_dict(), sort_keys=True, default=str),
            state,
            " ".join(str(reason).split()) if reason else None,
            info.get("host"),
            info.get("device"),
            info.get("started"),
            info.get("finished"),
            None if duration is None else float(duration),
            result_json,
        )
        rows = [
            (
                suite,
                spec.job_id,
                name,
                _finite_or_none(row.value),
                _finite_or_none(row.ci_low),
                _finite_or_none(row.ci_high),
                None if row.n is None else int(row.n),
                int(K.higher_is_better(name) if row.higher_is_better is None else bool(row.higher_is_better)),
            )
            for name, row in metrics.items()
        ]
        self._upgrade()
        with self._write() as con:
            con.execute("DELETE FROM job_metrics WHERE suite=? AND job_id=?", (suite, spec.job_id))
            con.execute(
                "INSERT OR REPLACE INTO jobs(suite, job_id, name, axes, spec, state, reason, host, device,"
                " started, finished, duration_s, result_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                job_row,
            )
            con.executemany(
                "INSERT INTO job_metrics(suite, job_id, metric, value, ci_low, ci_high, n, higher_is_better)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    @staticmethod
    def check_tag_name(name: Any) -> None:
        """UsageError unless ``name`` is a valid tag (letters, digits, '.', '_', '-'; not all digits)."""
        if not isinstance(name, str) or not _TAG_RE.match(name) or name.isdigit():
            raise UsageError(
                f"bad tag {name!r}: use letters, digits, '.', '_' and '-', starting with a letter or digit, "
                "not all digits"
            )
        if name in ("latest", "previous"):
            raise UsageError(f"bad tag {name!r}: reserved run reference")

    def tag(self, run_id: int, name: str, move: bool = False) -> None:
        """Tag run ``run_id`` as ``name``. A run carries at most one tag (a new one replaces it); a tag
        already on another run is refused unless ``move=True``."""
        self.check_tag_name(name)
        self._upgrade()
        with self._write() as con:
            if not con.execute("SELECT 1 FROM runs WHERE id=?", (int(run_id),)).fetchone():
                raise UsageError(f"no run {run_id} in {self.path}")
            other = con.execute("SELECT id FROM runs WHERE tag=? AND id<>?", (name, int(run_id))).fetchone()
            if other:
                if not move:
                    raise UsageError(f"tag {name!r} is already on run {other[0]} (move it with move=True)")
                con.execute("UPDATE runs SET tag=NULL WHERE id=?", (other[0],))
            con.execute("UPDATE runs SET tag=? WHERE id=?", (name, int(run_id)))

    def check_new_tag(self, name: Any) -> None:
        """UsageError unless ``name`` is a valid tag that no run carries yet (checked before a run starts)."""
        self.check_tag_name(name)
        other = self._read("SELECT id, suite FROM runs WHERE tag=?", (name,))
        if other:
            raise UsageError(f"tag {name!r} is already used by run {other[0][0]} of suite {other[0][1]!r}")

    # -- reading -------------------------------------------------------------------------------------------

    @property
    def _run_cols(self) -> str:
        status = "status" if self._version >= 2 else "'complete'"
        cols = "id, suite, started, finished, git_revision, machine, versions, durations, tag, note"
        return f"{cols}, {status}"

    @staticmethod
    def _run_info(r: tuple[Any, ...]) -> RunInfo:
        return RunInfo(
            id=int(r[0]),
            suite=r[1],
            started=r[2],
            finished=r[3],
            git_revision=r[4],
            machine=r[5],
            versions=_json_dict(r[6]),
            durations=_json_dict(r[7]),
            tag=r[8],
            note=r[9],
            status=r[10],
        )

    def suites(self) -> list[str]:
        """Names of every suite with a stored run, sorted."""
        return [r[0] for r in self._read("SELECT DISTINCT suite FROM runs ORDER BY suite")]

    def runs(self, suite: str) -> list[RunInfo]:
        """Every run of ``suite``, oldest first."""
        rows = self._read(f"SELECT {self._run_cols} FROM runs WHERE suite=? ORDER BY id", (suite,))
        return [self._run_info(r) for r in rows]

    def latest(self, suite: str) -> RunInfo | None:
        """The newest run of ``suite``, or None when it has none."""
        rows = self._read(
            f"SELECT {self._run_cols} FROM runs WHERE suite=? ORDER BY id DESC LIMIT 1", (suite,)
        )
        return self._run_info(rows[0]) if rows else None

    def previous(self, suite: str, run_id: int, complete: bool = False) -> RunInfo | None:
        """The run of ``suite`` just before ``run_id`` (with ``complete``, the last complete one), or None."""
        only = " AND status='complete'" if complete and self._version >= 2 else ""
        rows = self._read(
            f"SELECT {self._run_cols} FROM runs WHERE suite=? AND id<?{only} ORDER BY id DESC LIMIT 1",
            (suite, int(run_id)),
        )
        return self._run_info(rows[0]) if rows else None

    def _by_id(self, run_id: int) -> RunInfo | None:
        rows = self._read(f"SELECT {self._run_cols} FROM runs WHERE id=?", (int(run_id),))
        return self._run_info(rows[0]) if rows else None

    def get_run(self, ref: int | str, suite: str) -> RunInfo:
        """Resolve ``ref``: a run id (int or digits), "latest", "previous" (the one before the latest) or
        "tag:NAME". UsageError if it names no run of ``suite``."""
        where = f"suite {suite!r} in {self.path}"
        if isinstance(ref, str) and ref.strip().isdigit():
            ref = int(ref.strip())
        if isinstance(ref, int) and not isinstance(ref, bool):
            info = self._by_id(ref)
            if info is None or info.suite != suite:
                ids = [r.id for r in self.runs(suite)]
                shown = ", ".join(map(str, ids[-10:])) or "none"
                raise UsageError(f"no run {ref} in {where} (latest run ids: {shown})")
            return info
        if ref in ("latest", "previous"):
            latest = self.latest(suite)
            if latest is None:
                raise UsageError(f"no runs of {where}")
            if ref == "latest":
                return latest
            prev = self.previous(suite, latest.id)
            if prev is None:
                raise UsageError(f"{where} has only one run; there is no 'previous'")
            return prev
        if isinstance(ref, str) and ref.startswith("tag:"):
            name = ref[4:]
            rows = self._read(f"SELECT {self._run_cols} FROM runs WHERE tag=?", (name,))
            if rows and rows[0][1] == suite:
                return self._run_info(rows[0])
            tags = [
                r[0] for r in self._read("SELECT tag FROM runs WHERE suite=? AND tag IS NOT NULL", (suite,))
            ]
            extra = f" (it tags a run of suite {rows[0][1]!r})" if rows else ""
            raise UsageError(f"unknown tag {name!r} in {where}{extra}; tags: {', '.join(tags) or 'none'}")
        raise UsageError(f"bad run reference {ref!r}: use a run id, 'latest', 'previous' or 'tag:NAME'")

    def metrics(self, run_id: int) -> dict[str, dict[str, MetricRow]]:
        """{model: {metric: MetricRow}} of one run (models and metrics in insertion order)."""
        rows = self._read(
            "SELECT model, metric, value, ci_low, ci_high, n, higher_is_better FROM metrics WHERE run_id=?"
            " ORDER BY rowid",
            (int(run_id),),
        )
        return _metric_rows(rows)

    def failures(self, run_id: int) -> dict[str, str]:
        """{model: reason} for every model that failed in run ``run_id`` (empty for a complete run)."""
        if self._version < 2:
            return {}
        rows = self._read(
            "SELECT model, reason FROM results WHERE run_id=? AND status='failed' ORDER BY rowid",
            (int(run_id),),
        )
        return {m: r or "no reason recorded" for m, r in rows}

    def result_json(self, run_id: int, model: str) -> str | None:
        """The result JSON stored for ``model`` in run ``run_id``, or None."""
        rows = self._read("SELECT result_json FROM results WHERE run_id=? AND model=?", (int(run_id), model))
        return rows[0][0] if rows else None

    def history(self, suite: str) -> pd.DataFrame:
        """Long table of every metric of every run of ``suite``: columns ``HISTORY_COLUMNS``."""
        import pandas as pd

        rows = self._read(
            "SELECT r.id, r.started, r.git_revision, r.tag, m.model, m.metric, m.value, m.ci_low, m.ci_high,"
            " m.n, m.higher_is_better FROM runs r JOIN metrics m ON m.run_id = r.id WHERE r.suite=?"
            " ORDER BY r.id, m.rowid",
            (suite,),
        )
        df = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        for c in ("value", "ci_low", "ci_high"):
            df[c] = df[c].astype(float)
        df["n"] = df["n"].astype("Int64")
        df["higher_is_better"] = df["higher_is_better"].astype(bool)
        return df

    def _has_jobs(self) -> bool:
        # a version-2 store has no study tables until its first write
        return bool(self._read("SELECT 1 FROM sqlite_master WHERE type='table' AND name='jobs'"))

    def jobs(self, suite: str) -> list[JobRecord]:
        """Every recorded job of study ``suite``, by name."""
        if not self._has_jobs():
            return []
        rows = self._read(
            "SELECT job_id, name, axes, state, reason, host, device, started, finished, duration_s,"
            " result_json FROM jobs WHERE suite=? ORDER BY name, job_id",
            (suite,),
        )
        return [
            JobRecord(
                job_id=r[0],
                name=r[1],
                axes=_json_dict(r[2]),
                state=r[3],
                reason=r[4],
                host=r[5],
                device=r[6],
                started=r[7],
                finished=r[8],
                duration_s=r[9],
                result_json=r[10],
            )
            for r in rows
        ]

    def job_metrics(self, suite: str) -> dict[str, dict[str, MetricRow]]:
        """{job id: {metric: MetricRow}} of every done job of study ``suite``."""
        if not self._has_jobs():
            return {}
        rows = self._read(
            "SELECT job_id, metric, value, ci_low, ci_high, n, higher_is_better FROM job_metrics"
            " WHERE suite=? ORDER BY job_id, rowid",
            (suite,),
        )
        return _metric_rows(rows)

    def study_suites(self) -> list[str]:
        """Names of every study with a recorded job, sorted."""
        if not self._has_jobs():
            return []
        return [r[0] for r in self._read("SELECT DISTINCT suite FROM jobs ORDER BY suite")]

    def integrity_check(self) -> str:
        """SQLite's own check: 'ok' or the first problem found."""
        return str(self._read("PRAGMA integrity_check")[0][0])
