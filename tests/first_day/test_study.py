"""First day with studies (suites with a [grid]): a study that cannot run is refused in one line before any
job is submitted, so no job folder and no store appear; flags that belong to the other kind of suite or to
another engine are usage errors; a missing optional engine names its pip command."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from evalsuite.bench.store import SCHEMA_VERSION, MetricRow, ModelRun, ResultStore
from tests.first_day.harness import CHECKPOINTS, Case, check_case, params

STUDY = """name = "tiny-study"

[grid]
dataset = "{dataset}"
arch = "smallcnn"
scheme = "erk"
density = 0.1
seed = [0, 1]

[grid.recipe]
epochs = 1

[battery]
checks = ["clean", "ood"]
limit = 100

[data]
ood = [{ood}]
"""

MODELS = f"""name = "tiny"

[battery]
checks = ["clean"]

[[models]]
name = "dense"
checkpoint = "{CHECKPOINTS / "digits-dense.pt"}"
"""


def _setup(dataset: str = "digits", ood: str = '"gaussian"', store: str | None = None) -> object:
    """setup(tmp): study.toml, models.toml and, when asked, a store (``newer``: from a newer evalsuite;
    ``garbage``: not a database)."""

    def setup(tmp: Path) -> Sequence[Path]:
        (tmp / "study.toml").write_text(STUDY.format(dataset=dataset, ood=ood))
        (tmp / "models.toml").write_text(MODELS)
        (tmp / "afile").write_text("not a folder\n")
        paths = [tmp / "study.toml", tmp / "models.toml", tmp / "afile"]
        if store == "garbage":
            (tmp / "s.db").write_bytes(b"garbage, not SQLite" * 20)
            paths.append(tmp / "s.db")
        elif store == "newer":
            with ResultStore(tmp / "s.db") as s:
                s.add_run("tiny", {"dense": ModelRun({"accuracy": MetricRow(0.9)})}, {})
            con = sqlite3.connect(tmp / "s.db")
            con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),))
            con.commit()
            con.close()
            paths.append(tmp / "s.db")
        return paths

    return setup


def _nothing_ran(tmp: Path) -> None:
    assert not (tmp / "runs").exists(), "job folders were made before the refusal"
    assert not (tmp / "new.db").exists(), "a store was created before the refusal"


RUN = ["-q", "bench", "run", "{tmp}/study.toml", "--store", "{tmp}/new.db", "--runs-dir", "{tmp}/runs"]

CASES = [
    Case("plan-of-a-model-suite", ["bench", "plan", "{tmp}/models.toml"], "is for study suites", _setup(), 2),
    Case(
        "status-of-a-model-suite",
        ["bench", "status", "{tmp}/models.toml"],
        "is for study suites",
        _setup(),
        2,
    ),
    Case(
        "runs-dir-on-a-model-suite",
        ["-q", "bench", "run", "{tmp}/models.toml", "--store", "{tmp}/new.db", "--runs-dir", "{tmp}/runs"],
        "--runs-dir is for study suites",
        _setup(),
        2,
        after=_nothing_ran,
    ),
    Case(
        "workers-zero",
        [*RUN, "--workers", "0"],
        "--workers must be a positive number",
        _setup(),
        2,
        _nothing_ran,
    ),
    Case(
        "epochs-zero",
        [*RUN, "--epochs", "0"],
        "--epochs must be a positive number",
        _setup(),
        2,
        _nothing_ran,
    ),
    Case("unknown-engine", [*RUN, "--engine", "dask"], "invalid choice: 'dask'", _setup(), 2, _nothing_ran),
    Case(
        "ray-address-without-ray",
        [*RUN, "--ray-address", "auto"],
        "--ray-address needs --engine ray",
        _setup(),
        2,
        _nothing_ran,
    ),
    Case(
        "slurm-flag-on-ray",
        [*RUN, "--engine", "ray", "--slurm-partition", "gpu"],
        "--slurm-partition needs --engine slurm",
        _setup(),
        2,
        _nothing_ran,
    ),
    Case(
        "tag-on-a-study",
        [*RUN, "--tag", "v1"],
        "--tag is for suites that list models",
        _setup(),
        2,
        _nothing_ran,
    ),
    Case(
        "cache-on-a-study",
        [*RUN, "--cache"],
        "--cache is for suites that list models",
        _setup(),
        2,
        _nothing_ran,
    ),
    Case("unknown-device", [*RUN, "--device", "gpu"], "unknown device 'gpu'", _setup(), 2, _nothing_ran),
    Case(
        "missing-train-data",
        RUN,
        "(checked before any job ran)",
        _setup(dataset="npz:missing.npz"),
        1,
        _nothing_ran,
    ),
    Case(
        "missing-ood-data",
        RUN,
        "nood.npz",
        _setup(ood='"far=npz:nood.npz"'),
        1,
        _nothing_ran,
    ),
    Case(
        "store-from-newer-evalsuite",
        [*RUN[:4], "--store", "{tmp}/s.db", *RUN[6:]],
        "newer than this evalsuite",
        _setup(store="newer"),
        1,
        _nothing_ran,
    ),
    Case(
        "store-not-a-database",
        [*RUN[:4], "--store", "{tmp}/s.db", *RUN[6:]],
        "not an evalsuite results store",
        _setup(store="garbage"),
        1,
        _nothing_ran,
    ),
    Case(
        "runs-dir-under-a-file",
        [*RUN[:6], "--runs-dir", "{tmp}/afile/runs"],
        "cannot create the job folders",
        _setup(),
        1,
        _nothing_ran,
    ),
    Case(
        "check-without-store",
        ["bench", "check", "{tmp}/study.toml", "--store", "{tmp}/new.db"],
        "no such results store",
        _setup(),
        1,
        _nothing_ran,
    ),
    Case(
        "status-without-store",
        ["bench", "status", "{tmp}/study.toml", "--store", "{tmp}/new.db"],
        "no such results store",
        _setup(),
        1,
        _nothing_ran,
    ),
]


@params(CASES)
def test_study_refusals(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_case(case, tmp_path, capsys)


ENGINE_CASES = [
    Case(
        "ray-not-installed",
        [*RUN, "--engine", "ray"],
        "pip install 'evalsuite[ray]'",
        _setup(),
        2,
        _nothing_ran,
    ),
    Case(
        "submitit-not-installed",
        [*RUN, "--engine", "slurm"],
        "pip install 'evalsuite[slurm]'",
        _setup(),
        2,
        _nothing_ran,
    ),
]


@params(ENGINE_CASES)
def test_missing_engine_names_its_extra(
    case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # as on a machine without the extra: the import system finds neither package
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setitem(sys.modules, "submitit", None)
    check_case(case, tmp_path, capsys)
