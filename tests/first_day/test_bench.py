"""First day with ``evalsuite bench``: a suite cannot grant itself trust, and a run that cannot finish is
refused before the first model runs, so nothing is stored and no work is thrown away.

Every run case passes ``--cache`` with the cache pointed at the test's folder: an empty cache afterwards
shows that no model was evaluated before the refusal.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from evalsuite.bench.store import SCHEMA_VERSION, MetricRow, ModelRun, ResultStore
from tests.first_day.harness import CHECKPOINTS, Case, check_case, params

DENSE = CHECKPOINTS / "digits-dense.pt"
SECOND_OK = f'name = "b"\ncheckpoint = "{DENSE}"\n'
HEAD = """name = "tiny"

[battery]
checks = ["clean", "ood"]
limit = 100

[data]
id = "{id}"
ood = [{ood}]

[[models]]
name = "dense"
checkpoint = "{dense}"

[[models]]
"""


class _Evil:
    """Unpickling this runs a shell command that leaves a marker file: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return os.system, (f"touch {self.marker}",)


def _store(tmp: Path, failed: bool = False, version: int | None = None) -> Path:
    """A store holding one run of suite tiny, tagged 'taken' (with a failed model when ``failed``)."""
    db = tmp / "results.db"
    models = {"dense": ModelRun({"accuracy": MetricRow(0.9, 0.88, 0.92, 100, True)}, "{}")}
    if failed:
        models["nan"] = ModelRun.failed("ValueError: logits contain NaN")
    with ResultStore(db) as s:
        s.add_run("tiny", models, {"tag": "taken"})
    if version is not None:
        con = sqlite3.connect(db)
        con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
        con.commit()
        con.close()
    return db


def _suite(second: str, id_spec: str = "digits", ood: str = '"gaussian"', **store_kw: object):
    """setup(tmp): suite.toml (dense + the ``second`` model entry), the store, a malicious pickle and a
    user-code file that both leave a marker file if anything runs them."""

    def setup(tmp: Path) -> Sequence[Path]:
        torch.save(_Evil(tmp / "pwned"), tmp / "evil.pt")
        marker = str(tmp / "pwned")
        (tmp / "x.py").write_text(f"open({marker!r}, 'w').close()\n\ndef f(**kw):\n    return None\n")
        (tmp / "garbage.pt").write_bytes(b"PK\x03\x04 this is not a checkpoint" * 10)
        torch.save({"weight": torch.zeros(10, 64)}, tmp / "sd.pt")  # a safe bare state_dict
        text = HEAD.format(id=id_spec, ood=ood, dense=DENSE) + second.replace("{tmp}", str(tmp))
        suite = tmp / "suite.toml"
        suite.write_text(text)
        return [suite, _store(tmp, **store_kw), tmp / "evil.pt", tmp / "x.py"]  # type: ignore[arg-type]

    return setup


def _nothing_ran(tmp: Path) -> None:
    assert not (tmp / "pwned").exists(), "suite code or a pickle ran"
    assert not list((tmp / "cache").glob("*.json")), "a model was evaluated before the refusal"
    with ResultStore(tmp / "results.db", create=False) as s:
        assert len(s.runs("tiny")) == 1


RUN = ["-q", "bench", "run", "{tmp}/suite.toml", "--store", "{tmp}/results.db", "--cache"]

CASES = [
    Case(
        "trust-checkpoint-in-suite",
        RUN,
        "suite.toml:18: model 'evil': trust_checkpoint = true",
        _suite('name = "evil"\ncheckpoint = "evil.pt"\ntrust_checkpoint = true\n'),
        code=2,
        after=_nothing_ran,
    ),
    Case(
        "arch-os-system",
        RUN,
        "suite.toml:18: model 'evil': arch = 'os:system' names code",
        _suite(
            'name = "evil"\ncheckpoint = "sd.pt"\narch = "os:system"\n'
            'arch_kwargs = { command = "touch {tmp}/pwned" }\n'
        ),
        code=2,
        after=_nothing_ran,
    ),
    Case(
        "arch-user-file",
        RUN,
        "suite.toml:18: model 'evil': arch = 'x.py:f' names code",
        _suite('name = "evil"\ncheckpoint = "sd.pt"\narch = "x.py:f"\n'),
        code=2,
        after=_nothing_ran,
    ),
    Case(
        "train-arch-package-code",
        RUN,
        "suite.toml:17: model 'evil': train.arch = 'os.path:join' names code",
        _suite('name = "evil"\ntrain = { dataset = "digits", arch = "os.path:join", epochs = 1 }\n'),
        code=2,
        after=_nothing_ran,
    ),
    Case(
        "taken-tag",
        [*RUN, "--tag", "taken"],
        "tag 'taken' is already used by run 1",
        _suite(SECOND_OK),
        code=2,
        after=_nothing_ran,
    ),
    Case(
        "invalid-tag",
        [*RUN, "--tag", "has space"],
        "bad tag 'has space'",
        _suite(SECOND_OK),
        code=2,
        after=_nothing_ran,
    ),
    Case(
        "reserved-tag",
        [*RUN, "--tag", "latest"],
        "reserved run reference",
        _suite(SECOND_OK),
        code=2,
        after=_nothing_ran,
    ),
    Case(
        "unreadable-second-checkpoint",
        RUN,
        "model 'b':",
        _suite('name = "b"\ncheckpoint = "garbage.pt"\n'),
        code=1,
        after=_nothing_ran,
    ),
    Case(
        "missing-id-data",
        RUN,
        "missing.npz",
        _suite(SECOND_OK, id_spec="npz:missing.npz"),
        code=1,
        after=_nothing_ran,
    ),
    Case(
        "missing-ood-data",
        RUN,
        "nood.npz",
        _suite(SECOND_OK, ood='"far=npz:nood.npz"'),
        code=1,
        after=_nothing_ran,
    ),
    Case(
        "missing-train-data",
        RUN,
        "notrain.npz",
        _suite('name = "b"\ntrain = { dataset = "npz:notrain.npz", epochs = 1 }\n'),
        code=1,
        after=_nothing_ran,
    ),
    Case(
        "store-from-newer-evalsuite",
        RUN,
        "newer than this evalsuite",
        _suite(SECOND_OK, version=SCHEMA_VERSION + 1),
        code=1,
        after=lambda tmp: (not list((tmp / "cache").glob("*.json"))) or pytest.fail("a model ran"),
    ),
    Case(
        "store-cannot-be-created",
        ["-q", "bench", "run", "{tmp}/suite.toml", "--store", "{tmp}/suite.toml/r.db", "--cache"],
        "cannot create the results store",
        _suite(SECOND_OK),
        code=1,
        after=_nothing_ran,
    ),
    Case(
        "cache-and-no-cache",
        [*RUN, "--no-cache"],
        "not allowed with argument",
        _suite(SECOND_OK),
        code=2,
        after=_nothing_ran,
    ),
    Case(
        "baseline-from-incomplete-run",
        ["bench", "baseline", "{tmp}/suite.toml", "--store", "{tmp}/results.db", "--out", "{tmp}/b.json"],
        "run 1 is incomplete (nan failed)",
        _suite(SECOND_OK, failed=True),
        code=2,
        after=lambda tmp: (not (tmp / "b.json").exists()) or pytest.fail("baseline written"),
    ),
]


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))


@params(CASES)
def test_bench_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_case(case, tmp_path, capsys)
