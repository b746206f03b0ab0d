"""ResultStore: round trip, run references, concurrent writers, killed writers, refusal of files it cannot
read (newer schema, corrupt, foreign, locked) without touching them."""

from __future__ import annotations

import hashlib
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from evalsuite.bench.store import HISTORY_COLUMNS, SCHEMA_VERSION, MetricRow, ModelRun, ResultStore
from evalsuite.core.errors import DataError, UsageError

REPO = Path(__file__).resolve().parents[2]


def _models(shift: float = 0.0) -> dict[str, ModelRun]:
    return {
        "dense": ModelRun(
            metrics={
                "accuracy": MetricRow(0.91 + shift, 0.90, 0.92, 1000, True),
                "ece": MetricRow(0.031, 0.025, 0.037, 1000, False),
                "sparsity/density": MetricRow(1.0, None, None, None, False),
            },
            result_json='{"model": "dense"}',
        ),
        "erk": ModelRun(
            metrics={
                "accuracy": MetricRow(0.88 + shift, 0.86, 0.90, 1000, True),
                "robust/pgd_linf/8_255/accuracy": MetricRow(0.12, 0.10, 0.14, 1000, True),
                "nll": MetricRow(float("nan"), None, None, 1000, False),
            },
        ),
    }


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _integrity(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        con.close()


def test_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "results.db"
    with ResultStore(db) as s:
        meta = {
            "started": "2024-06-01T02:00:00+00:00",
            "finished": "2024-06-01T02:10:00+00:00",
            "git_revision": "abc123",
            "machine": "ci-1",
            "versions": {"torch": "2.3.0"},
            "durations": {"dense": 1.5},
            "note": "first",
            "tag": "v1",
        }
        rid = s.add_run("smoke", _models(), meta)
        assert s.integrity_check() == "ok"
    with ResultStore(db, create=False) as s:
        got = s.metrics(rid)
        want = _models()
        assert list(got) == ["dense", "erk"]
        assert got["dense"] == want["dense"].metrics
        assert got["erk"]["accuracy"] == want["erk"].metrics["accuracy"]
        assert math.isnan(got["erk"]["nll"].value)  # NaN is stored as NULL and comes back as NaN
        assert s.result_json(rid, "dense") == '{"model": "dense"}'
        assert s.result_json(rid, "erk") is None
        info = s.get_run(rid, "smoke")
        assert (info.suite, info.git_revision, info.machine, info.tag, info.note) == (
            "smoke",
            "abc123",
            "ci-1",
            "v1",
            "first",
        )
        assert info.versions == {"torch": "2.3.0"} and info.durations == {"dense": 1.5}
        assert info.started == meta["started"] and info.finished == meta["finished"]
        con = sqlite3.connect(db)
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert dict(con.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
        con.close()


def test_default_direction_and_meta(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.db") as s:
        rid = s.add_run("x", {"m": ModelRun({"ece": MetricRow(0.1), "accuracy": MetricRow(0.5)})}, {})
        got = s.metrics(rid)["m"]
        assert got["ece"].higher_is_better is False and got["accuracy"].higher_is_better is True
        info = s.latest("x")
        assert info is not None and info.started and info.machine
        with pytest.raises(UsageError, match="unknown run meta"):
            s.add_run("x", _models(), {"gitrev": "typo"})
        with pytest.raises(UsageError, match="no models"):
            s.add_run("x", {}, {})


def test_refs_and_tags(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.db") as s:
        a = s.add_run("smoke", _models(), {})
        other = s.add_run("other", _models(), {})
        b = s.add_run("smoke", _models(0.01), {})
        c = s.add_run("smoke", _models(0.02), {})
        assert [r.id for r in s.runs("smoke")] == [a, b, c]
        assert s.latest("smoke").id == c  # type: ignore[union-attr]
        assert s.latest("nothing") is None
        assert s.previous("smoke", c).id == b  # type: ignore[union-attr]
        assert s.previous("smoke", b).id == a  # type: ignore[union-attr]  # skips the other suite's run
        assert s.previous("smoke", a) is None
        assert s.get_run("latest", "smoke").id == c
        assert s.get_run("previous", "smoke").id == b
        assert s.get_run(str(a), "smoke").id == a
        s.tag(a, "v1")
        assert s.get_run("tag:v1", "smoke").id == a
        s.tag(a, "v1")  # idempotent
        with pytest.raises(UsageError, match="already on run"):
            s.tag(b, "v1")
        s.tag(b, "v1", move=True)
        assert s.get_run("tag:v1", "smoke").id == b and s.get_run(a, "smoke").tag is None
        s.tag(c, "nightly-2024.06.01")
        with pytest.raises(UsageError, match=r"unknown tag 'v2'.*tags: v1, nightly-2024.06.01"):
            s.get_run("tag:v2", "smoke")
        s.tag(other, "o1")
        with pytest.raises(UsageError, match="suite 'other'"):
            s.get_run("tag:o1", "smoke")
        with pytest.raises(UsageError, match="no run 999"):
            s.get_run(999, "smoke")
        with pytest.raises(UsageError, match=f"no run {other}"):
            s.get_run(other, "smoke")  # exists, but in another suite
        with pytest.raises(UsageError, match="bad run reference"):
            s.get_run("yesterday", "smoke")
        with pytest.raises(UsageError, match="no runs"):
            s.get_run("latest", "nothing")
        for bad in ("latest", "12", "has space", ""):
            with pytest.raises(UsageError, match="bad tag"):
                s.tag(a, bad)
        with pytest.raises(UsageError, match="already used"):
            s.add_run("smoke", _models(), {"tag": "v1"})
        assert len(s.runs("smoke")) == 3  # the refused run left nothing behind
        s.add_run("single", _models(), {})
        with pytest.raises(UsageError, match="only one run"):
            s.get_run("previous", "single")


def test_history_frame(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.db") as s:
        a = s.add_run("smoke", _models(), {"git_revision": "r1", "tag": "t1"})
        b = s.add_run("smoke", _models(0.01), {"git_revision": "r2"})
        s.add_run("other", _models(), {})
        df = s.history("smoke")
        assert s.history("nothing").empty
    assert list(df.columns) == HISTORY_COLUMNS
    assert sorted(set(df["run_id"])) == [a, b]
    row = df[(df.run_id == b) & (df.model == "dense") & (df.metric == "accuracy")].iloc[0]
    assert row.value == pytest.approx(0.92) and row.ci_low == 0.90 and row.n == 1000
    assert row.git_revision == "r2" and bool(row.higher_is_better) is True
    assert df[df.run_id == a]["tag"].unique().tolist() == ["t1"]
    assert len(df) == 2 * 6


def test_missing_store_without_create(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such results store"):
        ResultStore(tmp_path / "nope.db", create=False)
    assert not (tmp_path / "nope.db").exists()


_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from evalsuite.bench.store import MetricRow, ModelRun, ResultStore
    path, who, go = sys.argv[1], sys.argv[2], sys.argv[3]
    print("ready", flush=True)
    while not os.path.exists(go):
        time.sleep(0.005)
    s = ResultStore(path)
    for i in range(20):
        m = {f"m{j}": ModelRun({"accuracy": MetricRow(i / 20, None, None, 10, True)}, "{}") for j in range(3)}
        s.add_run("race", m, {"note": f"{who}-{i}"})
        time.sleep(0.003)  # let the other writer in, so the two really interleave
    s.close()
    """
)


def _python(script: str, *args: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("precreate", [True, False], ids=["existing", "both-create"])
def test_two_concurrent_writers(tmp_path: Path, precreate: bool) -> None:
    db, go = tmp_path / "r.db", tmp_path / "go"
    if precreate:
        ResultStore(db).close()
    procs = [_python(_WRITER, str(db), who, str(go)) for who in ("a", "b")]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    go.touch()  # release both at once so their transactions interleave
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    with ResultStore(db, create=False) as s:
        runs = s.runs("race")
        assert len(runs) == 40 and len({r.id for r in runs}) == 40
        assert sorted(r.note for r in runs) == sorted(f"{w}-{i}" for w in "ab" for i in range(20))
        for r in runs:
            assert len(s.metrics(r.id)) == 3
        # each process's runs were appended in its own order
        for w in "ab":
            mine = [int(r.note.split("-")[1]) for r in runs if r.note.startswith(w)]  # type: ignore[union-attr]
            assert mine == list(range(20))
    assert _integrity(db) == "ok"


_STALLED = textwrap.dedent(
    """
    import sys, time
    from evalsuite.bench.store import MetricRow, ModelRun, ResultStore

    class Stalled(ResultStore):
        def _insert_models(self, con, run_id, metric_rows, result_rows):
            con.executemany(
                "INSERT INTO metrics(run_id, model, metric, value, ci_low, ci_high, n, higher_is_better)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(run_id, *r) for r in metric_rows[:1]],
            )
            print("inside", flush=True)
            time.sleep(60)

    s = Stalled(sys.argv[1])
    m = {"a": ModelRun({"accuracy": MetricRow(0.5), "ece": MetricRow(0.1)}, "{}")}
    s.add_run("smoke", m, {"tag": "half"})
    """
)


def test_killed_writer_leaves_no_partial_run(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with ResultStore(db) as s:
        first = s.add_run("smoke", _models(), {})
    p = _python(_STALLED, str(db))
    try:
        assert p.stdout is not None and p.stdout.readline().strip() == "inside", p.stderr.read()  # type: ignore[union-attr]
        # WAL: a reader opens and reads while the writer holds the lock, and sees no partial run
        with ResultStore(db, create=False, timeout=0.5) as s:
            assert [r.id for r in s.runs("smoke")] == [first]
    finally:
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
    assert p.returncode == -signal.SIGKILL
    with ResultStore(db, create=False, timeout=5) as s:
        assert [r.id for r in s.runs("smoke")] == [first]
        assert s.integrity_check() == "ok"
        con = sqlite3.connect(db)
        assert con.execute("SELECT COUNT(*) FROM metrics WHERE run_id<>?", (first,)).fetchone()[0] == 0
        assert con.execute("SELECT COUNT(*) FROM results WHERE run_id<>?", (first,)).fetchone()[0] == 0
        con.close()
        with pytest.raises(UsageError, match="unknown tag"):
            s.get_run("tag:half", "smoke")
        later = s.add_run("smoke", _models(), {"tag": "half"})  # the lock died with the writer
        assert later > first and s.get_run("tag:half", "smoke").id == later
    assert _integrity(db) == "ok"


def test_newer_schema_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with ResultStore(db) as s:
        s.add_run("smoke", _models(), {})
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
    con.commit()
    con.close()
    before = _sha(db)
    with pytest.raises(DataError) as e:
        ResultStore(db)
    msg = str(e.value)
    assert (
        "\n" not in msg
        and str(db) in msg
        and f"version {SCHEMA_VERSION + 1}" in msg
        and f"evalsuite's {SCHEMA_VERSION}" in msg
    )
    assert _sha(db) == before


def test_corrupt_files_refused_untouched(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(os.urandom(4096))
    before = _sha(junk)
    with pytest.raises(DataError, match="not an SQLite database") as e:
        ResultStore(junk)
    assert "\n" not in str(e.value) and _sha(junk) == before

    # a real store whose schema page is overwritten: valid header, malformed contents
    bad = tmp_path / "bad.db"
    with ResultStore(bad) as s:
        s.add_run("smoke", _models(), {})
    raw = bytearray(bad.read_bytes())
    raw[100:4096] = b"\xa5" * (4096 - 100)
    bad.write_bytes(bytes(raw))
    before = _sha(bad)
    with pytest.raises(DataError, match=r"corrupt|malformed") as e:
        ResultStore(bad)
    assert "\n" not in str(e.value) and _sha(bad) == before

    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t(x)")
    con.commit()
    con.close()
    before = _sha(foreign)
    with pytest.raises(DataError, match="not an evalsuite results store"):
        ResultStore(foreign)
    assert _sha(foreign) == before


def test_locked_store_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    ResultStore(db).close()
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with ResultStore(db, timeout=0.2) as s:
            t0 = time.perf_counter()
            with pytest.raises(DataError, match="store is locked by another process") as e:
                s.add_run("smoke", _models(), {})
            assert time.perf_counter() - t0 < 5
            assert "\n" not in str(e.value)
            assert s.runs("smoke") == []
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with ResultStore(db, timeout=0.2) as s:
        s.add_run("smoke", _models(), {})
        assert len(s.runs("smoke")) == 1


def test_failed_models_are_stored_and_make_the_run_incomplete(tmp_path: Path) -> None:
    with ResultStore(tmp_path / "r.db") as s:
        ok = s.add_run("smoke", _models(), {})
        models = _models()
        models["broken"] = ModelRun.failed("ValueError: logits contain\nNaN")
        bad = s.add_run("smoke", models, {})
        assert s.get_run(ok, "smoke").complete and s.failures(ok) == {}
        info = s.get_run(bad, "smoke")
        assert info.status == "incomplete" and not info.complete
        assert s.failures(bad) == {"broken": "ValueError: logits contain NaN"}  # kept on one line
        assert set(s.metrics(bad)) == {"dense", "erk"}  # the others are kept
        assert s.previous("smoke", bad + 1, complete=True).id == ok  # type: ignore[union-attr]
        assert s.previous("smoke", bad + 1).id == bad  # type: ignore[union-attr]
        with pytest.raises(UsageError, match="needs a reason"):
            s.add_run("smoke", {"x": ModelRun({"accuracy": MetricRow(0.5)}, status="failed")}, {})
        with pytest.raises(UsageError, match="status must be"):
            s.add_run("smoke", {"x": ModelRun({}, status="meh", reason="r")}, {})
        s.tag(ok, "v1")
        with pytest.raises(UsageError, match="already used by run"):
            s.check_new_tag("v1")
        with pytest.raises(UsageError, match="bad tag"):
            s.check_new_tag("no spaces")
        s.check_new_tag("v2")
        assert len(s.runs("smoke")) == 2


# the version-1 schema as evalsuite wrote it before runs and models had a status
_V1_DDL = """
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs(id INTEGER PRIMARY KEY AUTOINCREMENT, suite TEXT NOT NULL, started TEXT, finished TEXT,
    git_revision TEXT, machine TEXT, versions TEXT, durations TEXT, tag TEXT UNIQUE, note TEXT);
CREATE INDEX runs_suite_id ON runs(suite, id);
CREATE TABLE metrics(run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, model TEXT NOT NULL,
    metric TEXT NOT NULL, value REAL, ci_low REAL, ci_high REAL, n INTEGER, higher_is_better INTEGER NOT NULL,
    PRIMARY KEY(run_id, model, metric));
CREATE TABLE results(run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE, model TEXT NOT NULL,
    result_json TEXT, PRIMARY KEY(run_id, model));
INSERT INTO meta VALUES ('schema_version', '1'), ('created', '2024-06-01'), ('created_by', 'evalsuite 0.1');
INSERT INTO runs(suite, started, tag) VALUES ('smoke', '2024-06-01T02:00:00+00:00', 'old');
INSERT INTO metrics VALUES (1, 'dense', 'accuracy', 0.9, 0.89, 0.91, 1000, 1);
INSERT INTO results VALUES (1, 'dense', '{}');
"""


def test_version_1_store_reads_untouched_and_upgrades_on_write(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    con = sqlite3.connect(db)
    con.execute("PRAGMA journal_mode=WAL")
    con.executescript(_V1_DDL)
    con.close()
    before = _sha(db)
    with ResultStore(db, create=False) as s:
        info = s.get_run("tag:old", "smoke")
        assert info.complete and s.failures(info.id) == {}
        assert s.metrics(info.id)["dense"]["accuracy"].value == 0.9
        assert s.previous("smoke", 2, complete=True).id == 1  # type: ignore[union-attr]
        assert s.history("smoke")["value"].tolist() == [0.9]
    assert _sha(db) == before  # reading an older store does not rewrite it
    with ResultStore(db) as s:
        new = s.add_run("smoke", {"dense": _models()["dense"], "nan": ModelRun.failed("NaN")}, {})
        assert s.get_run(1, "smoke").complete and s.get_run(new, "smoke").status == "incomplete"
        assert s.failures(new) == {"nan": "NaN"} and s.result_json(1, "dense") == "{}"
        assert s.integrity_check() == "ok"
    con = sqlite3.connect(db)
    assert dict(con.execute("SELECT key, value FROM meta"))["schema_version"] == str(SCHEMA_VERSION)
    con.close()
