"""Store schema 3: a study's jobs and their metrics, upserted by the driver as each job lands; a version-2
(and version-1) store reads as it is and gains the study tables on its first write."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from evalsuite.bench.grid import JobSpec
from evalsuite.bench.store import SCHEMA_VERSION, MetricRow, ModelRun, ResultStore
from evalsuite.core.errors import UsageError

# the version-2 schema as evalsuite wrote it before studies (runs with a status, no jobs tables)
_V2_DDL = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs(id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT NOT NULL, started TEXT, finished TEXT,
    git_revision TEXT, machine TEXT, versions TEXT, durations TEXT, tag TEXT UNIQUE, note TEXT,
    status TEXT NOT NULL DEFAULT 'complete');
CREATE INDEX runs_suite_id ON runs(suite, id);
CREATE TABLE metrics(run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, model TEXT NOT NULL,
    metric TEXT NOT NULL, value REAL, ci_low REAL, ci_high REAL, n INTEGER, higher_is_better INTEGER NOT NULL,
    PRIMARY KEY(run_id, model, metric));
CREATE TABLE results(run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, model TEXT NOT NULL,
    result_json TEXT, status TEXT NOT NULL DEFAULT 'ok', reason TEXT, PRIMARY KEY(run_id, model));
INSERT INTO meta VALUES ('schema_version', '2'), ('created', '2025-01-01'), ('created_by', 'evalsuite 0.1');
INSERT INTO runs(suite, started, tag, status) VALUES ('smoke', '2025-01-01T02:00', 'old', 'incomplete');
INSERT INTO metrics VALUES (1, 'dense', 'accuracy', 0.9, 0.89, 0.91, 1000, 1);
INSERT INTO results VALUES (1, 'dense', '{}', 'ok', NULL);
INSERT INTO results VALUES (1, 'nan', NULL, 'failed', 'NaN logits');
"""


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _spec(job_id: str = "0123456789abcdef", name: str = "smallcnn-erk-d0.1-s0") -> JobSpec:
    return JobSpec(
        job_id=job_id,
        name=name,
        axes={"dataset": "digits", "arch": "smallcnn", "scheme": "erk", "density": 0.1, "seed": 0},
        train={"dataset": "digits", "sparse_init": "erk", "density": 0.1, "seed": 0},
        eval={"id": "digits", "ood": None, "root": None, "download": False},
        battery={"checks": ["clean"]},
        identity={"kind": "test"},
    )


INFO = {"host": "h1", "device": "cpu", "started": "2025-01-01T00:00:00Z", "finished": "x", "duration_s": 2.5}


def _v2(tmp_path: Path) -> Path:
    db = tmp_path / "v2.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(_V2_DDL)
    con.close()
    return db


def test_version_2_store_reads_untouched_and_upgrades_on_first_job(tmp_path: Path) -> None:
    db = _v2(tmp_path)
    before = _sha(db)
    with ResultStore(db, create=False) as s:
        assert s.jobs("study") == [] and s.job_metrics("study") == {} and s.study_suites() == []
        info = s.get_run("tag:old", "smoke")
        assert not info.complete and s.failures(info.id) == {"nan": "NaN logits"}
    assert _sha(db) == before  # reading an older store does not rewrite it
    with ResultStore(db) as s:
        acc = {"accuracy": MetricRow(0.8, 0.7, 0.9, 100)}
        s.put_job("study", _spec(), "done", None, INFO, '{"r": 1}', acc)
        [rec] = s.jobs("study")
        assert (rec.job_id, rec.state, rec.host, rec.device, rec.duration_s) == (
            "0123456789abcdef",
            "done",
            "h1",
            "cpu",
            2.5,
        )
        assert rec.axes["density"] == 0.1 and rec.result_json == '{"r": 1}'
        row = s.job_metrics("study")["0123456789abcdef"]["accuracy"]
        assert (row.value, row.ci_low, row.n, row.higher_is_better) == (0.8, 0.7, 100, True)
        # the runs of version 2 are intact, and a run can still be added
        assert s.metrics(1)["dense"]["accuracy"].value == 0.9
        s.add_run("smoke", {"dense": ModelRun({"accuracy": MetricRow(0.91)})}, {})
        assert s.integrity_check() == "ok"
    con = sqlite3.connect(db)
    meta = dict(con.execute("SELECT key, value FROM meta"))
    con.close()
    assert meta["schema_version"] == str(SCHEMA_VERSION) == "3"
    assert meta["upgraded"].startswith("2 -> 3")


def test_version_1_store_upgrades_straight_to_3(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    con = sqlite3.connect(db)
    con.executescript(
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE runs(id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT NOT NULL, started TEXT,"
        " finished TEXT, git_revision TEXT, machine TEXT, versions TEXT, durations TEXT, tag TEXT UNIQUE,"
        " note TEXT);"
        "CREATE TABLE metrics(run_id INTEGER NOT NULL, model TEXT NOT NULL, metric TEXT NOT NULL, value REAL,"
        " ci_low REAL, ci_high REAL, n INTEGER, higher_is_better INTEGER NOT NULL,"
        " PRIMARY KEY(run_id, model, metric));"
        "CREATE TABLE results(run_id INTEGER NOT NULL, model TEXT NOT NULL, result_json TEXT,"
        " PRIMARY KEY(run_id, model));"
        "INSERT INTO meta VALUES ('schema_version', '1');"
    )
    con.close()
    with ResultStore(db) as s:
        s.put_job("study", _spec(), "failed", "RuntimeError: boom", INFO, None, {})
        assert [r.state for r in s.jobs("study")] == ["failed"]
        s.add_run("smoke", {"m": ModelRun.failed("x")}, {})
        assert s.failures(1) == {"m": "x"}
    con = sqlite3.connect(db)
    assert dict(con.execute("SELECT key, value FROM meta"))["upgraded"].startswith("1 -> 3")
    con.close()


def test_put_job_upserts_one_row_per_job(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with ResultStore(db) as s:
        s.put_job("study", _spec(), "failed", "RuntimeError: first\nsecond line", INFO, None, {})
        s.put_job(
            "study",
            _spec(),
            "done",
            None,
            INFO,
            "{}",
            {"accuracy": MetricRow(0.5), "nll": MetricRow(float("nan"))},
        )
        s.put_job("study", _spec(), "done", None, INFO, "{}", {"accuracy": MetricRow(0.6)})
        s.put_job("study", _spec("fedcba9876543210", "b"), "failed", "no", INFO, None, {})
        s.put_job("other", _spec(), "done", None, {}, None, {})
        recs = s.jobs("study")
        assert [(r.job_id, r.state, r.reason) for r in recs] == [
            ("fedcba9876543210", "failed", "no"),
            ("0123456789abcdef", "done", None),
        ]
        # the replaced job keeps only its latest metrics
        assert set(s.job_metrics("study")["0123456789abcdef"]) == {"accuracy"}
        assert s.job_metrics("study")["0123456789abcdef"]["accuracy"].value == 0.6
        assert s.study_suites() == ["other", "study"]
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM jobs WHERE suite='study'").fetchone()[0] == 2
    assert con.execute("SELECT COUNT(*) FROM job_metrics WHERE suite='study'").fetchone()[0] == 1
    con.close()


def test_put_job_refuses_bad_states(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "s.db") as s:
        with pytest.raises(UsageError, match="state must be"):
            s.put_job("study", _spec(), "running", None, INFO, None, {})
        with pytest.raises(UsageError, match="needs a reason"):
            s.put_job("study", _spec(), "failed", None, INFO, None, {})
        with pytest.raises(UsageError, match="needs a reason"):
            s.put_job("study", _spec(), "failed", "x", INFO, None, {"accuracy": MetricRow(0.5)})
        assert s.jobs("study") == []


def test_table_takes_the_newest_result_of_a_point_the_store_holds_twice() -> None:
    from evalsuite.bench.store import JobRecord
    from evalsuite.bench.study import newest_per_point

    def rec(job: str, seed: int, finished: str, state: str = "done") -> JobRecord:
        axes = {"scheme": "erk", "density": 0.1, "seed": seed}
        return JobRecord(job, f"j{seed}", axes, state, None, "h", "cpu", None, finished, 1.0, "{}")

    records = [
        rec("old0", 0, "2026-01-01T00:00:00Z"),
        rec("new0", 0, "2026-02-01T00:00:00Z"),
        rec("only1", 1, "2026-01-05T00:00:00Z"),
        rec("failed2", 2, "2026-03-01T00:00:00Z", state="failed"),
    ]
    kept, older = newest_per_point(records)
    assert sorted(r.job_id for r in kept) == ["new0", "only1"] and older == 1
    kept, older = newest_per_point(list(reversed(records)))
    assert sorted(r.job_id for r in kept) == ["new0", "only1"] and older == 1
