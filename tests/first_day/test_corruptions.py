"""Bad input for corruption shift (--corruption-data, --corruptions, --severities): one error line,
non-zero exit, inputs untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.first_day.harness import Case, check_case, params

DENSE = "{repo}/checkpoints/digits-dense.pt"
EVAL = ("eval", DENSE, "--no-cache", "-q", "--checks", "clean")
COMPARE = ("compare", DENSE, "{repo}/checkpoints/digits-erk-0.1.pt", "--no-cache", "-q", "--checks", "clean")


def _layout(tmp: Path, *, shape: tuple[int, ...] = (5 * 4, 8, 8, 1), classes: int = 10) -> list[Path]:
    folder = tmp / "c"
    folder.mkdir()
    np.save(folder / "fog.npy", np.zeros(shape, dtype=np.uint8))
    np.save(folder / "labels.npy", np.arange(shape[0], dtype=np.int64) % classes)
    return [folder]


CASES = [
    Case(
        "unknown-corruption",
        [*EVAL, "--corruption-data", "corrupt:digits", "--corruptions", "fogg"],
        "unknown corruption 'fogg'; did you mean fog",
        code=2,
    ),
    Case(
        "severity-out-of-range",
        [*EVAL, "--corruption-data", "corrupt:digits", "--severities", "6"],
        "severity must be an integer 1..5, got 6",
        code=2,
    ),
    Case(
        "severity-not-a-number",
        [*EVAL, "--corruption-data", "corrupt:digits", "--severities", "high"],
        "severity must be an integer 1..5",
        code=2,
    ),
    Case("corruptions-without-data", [*EVAL, "--corruptions", "fog"], "need --corruption-data", code=2),
    Case("severities-without-data", [*EVAL, "--severities", "1"], "need --corruption-data", code=2),
    Case(
        "check-without-data",
        ["eval", DENSE, "--no-cache", "-q", "--checks", "clean,corruption"],
        "the corruption check needs --corruption-data",
        code=2,
    ),
    Case(
        "not-a-corruption-spec",
        [*EVAL, "--corruption-data", "digits"],
        "expected cifar10c:ROOT, cifar100c:ROOT or corrupt:SPEC",
        code=2,
    ),
    Case(
        "missing-folder",
        [*EVAL, "--corruption-data", "cifar10c:{tmp}/nowhere"],
        "cifar10c not found: no labels.npy",
        code=1,
    ),
    Case(
        "missing-corruption-file",
        [*EVAL, "--corruption-data", "cifar10c:{tmp}/c", "--corruptions", "snow"],
        "lacks snow.npy",
        setup=_layout,
        code=1,
    ),
    Case(
        "wrong-image-size",
        [*EVAL, "--corruption-data", "cifar10c:{tmp}/c", "--corruptions", "fog"],
        "has images",
        setup=lambda tmp: _layout(tmp, shape=(5 * 4, 16, 16, 1)),
        code=1,
    ),
    Case(
        "selector-and-flag",
        [*EVAL, "--corruption-data", "corrupt:digits#fog", "--corruptions", "snow"],
        "already selects corruptions",
        code=2,
    ),
    Case(
        "compare-unknown-corruption",
        [*COMPARE, "--corruption-data", "corrupt:digits", "--corruptions", "all,rain"],
        "unknown corruption 'rain'",
        code=2,
    ),
    Case(
        "compare-flags-without-data",
        [*COMPARE, "--severities", "3"],
        "need --corruption-data",
        code=2,
    ),
]


@params(CASES)
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_case(case, tmp_path, capsys)
