"""Bad input to ``evalsuite table``: one line, non-zero exit, inputs untouched, and no table folder written
where the run was refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.first_day.harness import Case, check_case, params
from tests.report import study_fixtures as F


def _runs(tmp: Path) -> list[Path]:
    F.write_study(tmp / "runs")
    return [tmp / "runs"]


def _no_out(tmp: Path) -> None:
    assert not (tmp / "out").exists()


def _empty(tmp: Path) -> list[Path]:
    (tmp / "runs").mkdir()
    (tmp / "runs" / "notes.json").write_text(json.dumps({"hello": 1}))
    return [tmp / "runs"]


def _duplicate(tmp: Path) -> list[Path]:
    _runs(tmp)
    first = sorted(p for p in (tmp / "runs").iterdir() if p.is_dir())[0]
    (tmp / "runs" / "copy").mkdir()
    shutil.copy(first / "result.json", tmp / "runs" / "copy" / "result.json")
    return [tmp / "runs"]


def _corrupt(tmp: Path) -> list[Path]:
    _runs(tmp)
    first = sorted(p for p in (tmp / "runs").iterdir() if p.is_dir())[0]
    (first / "result.json").write_text("{not json")
    return [tmp / "runs"]


def _existing_out(tmp: Path) -> list[Path]:
    paths = _runs(tmp)
    (tmp / "out").mkdir()
    (tmp / "out" / "mine.txt").write_text("keep")
    return [*paths, tmp / "out"]


def _store_file(tmp: Path) -> list[Path]:
    (tmp / "results.db").write_bytes(b"")
    return [tmp / "results.db"]


T = ["table", "{tmp}/runs", "--out", "{tmp}/out"]
CASES = [
    Case("no-input", ["table", "--out", "{tmp}/out"], "results folder or --store", code=2, after=_no_out),
    Case("missing-folder", T, "no such folder", code=2, after=_no_out),
    Case("no-results", T, "no results found", setup=_empty, code=1, after=_no_out),
    Case(
        "unknown-metric",
        [*T, "--metrics", "accuracy,acc"],
        "unknown metric 'acc'; the results have: accuracy",
        setup=_runs,
        code=2,
        after=_no_out,
    ),
    Case(
        "unknown-axis",
        [*T, "--rows", "scheme,depth"],
        "unknown axis 'depth'; the results' axes: dataset, arch, width, scheme, density, seed",
        setup=_runs,
        code=2,
        after=_no_out,
    ),
    Case(
        "rows-cols-overlap",
        [*T, "--rows", "scheme,density", "--cols", "width,density"],
        "overlap: density",
        setup=_runs,
        code=2,
        after=_no_out,
    ),
    Case(
        "varying-axis-left-out",
        [*T, "--rows", "scheme,density", "--cols", ""],
        "'width' has 2 values",
        setup=_runs,
        code=2,
        after=_no_out,
    ),
    Case("empty-rows", [*T, "--rows", ","], "--rows wants AXIS", setup=_runs, code=2, after=_no_out),
    Case("alpha-out-of-range", [*T, "--alpha", "1.5"], "--alpha must be in (0, 1)", setup=_runs, code=2),
    Case("out-is-input", ["table", "{tmp}/runs", "--out", "{tmp}/runs"], "is an input", setup=_runs, code=2),
    Case(
        "out-inside-input",
        ["table", "{tmp}/runs", "--out", "{tmp}/runs/table"],
        "inside the input folder",
        setup=_runs,
        code=2,
        after=lambda tmp: None if not (tmp / "runs" / "table").exists() else pytest.fail("wrote"),
    ),
    Case("out-exists", T, "exists; pass --force", setup=_existing_out, code=2),
    Case(
        "force-over-foreign-folder",
        [*T, "--force"],
        "not an evalsuite report folder",
        setup=_existing_out,
        code=2,
    ),
    Case("duplicate-grid-point", T, "same grid point", setup=_duplicate, code=1, after=_no_out),
    Case("corrupt-result", T, "not valid JSON", setup=_corrupt, code=1, after=_no_out),
    Case(
        "store-without-suite",
        ["table", "--store", "{tmp}/results.db", "--out", "{tmp}/out"],
        "--store needs --suite",
        setup=_store_file,
        code=2,
    ),
    Case(
        "folder-and-store",
        ["table", "{tmp}/runs", "--store", "{tmp}/results.db", "--suite", "s", "--out", "{tmp}/out"],
        "one of them",
        setup=_store_file,
        code=2,
    ),
    Case(
        "store-missing",
        ["table", "--store", "{tmp}/nope.db", "--suite", "s", "--out", "{tmp}/out"],
        "no such results store",
        code=2,
        after=_no_out,
    ),
    Case(
        "out-is-the-store",
        ["table", "--store", "{tmp}/results.db", "--suite", "s", "--out", "{tmp}/results.db"],
        "is an input",
        setup=_store_file,
        code=2,
    ),
]


@params(CASES)
def test_table_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_case(case, tmp_path, capsys)
