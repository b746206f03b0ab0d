"""Bad input for AutoAttack and temperature scaling: one error line, non-zero exit, inputs untouched."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.first_day.harness import Case, check_case, params

DENSE = "{repo}/checkpoints/digits-dense.pt"
EVAL = ("eval", DENSE, "--no-cache", "-q")
CLEAN = ("--checks", "clean,calibration")


def _calib_3ch(tmp: Path) -> list[Path]:
    path = tmp / "rgb.npz"
    np.savez(path, x=np.zeros((20, 8, 8, 3), dtype=np.uint8), y=np.zeros(20, dtype=np.int64))
    return [path]


def _calib_labels(tmp: Path) -> list[Path]:
    path = tmp / "bad.npz"
    np.savez(path, x=np.zeros((20, 8, 8, 1), dtype=np.uint8), y=np.full(20, 12, dtype=np.int64))
    return [path]


CASES = [
    Case(
        "aa-version-unknown",
        [*EVAL, "--attacks", "autoattack", "--aa-version", "fast"],
        "invalid choice",
        code=2,
    ),
    Case(
        "aa-cascade-without-autoattack",
        [*EVAL, "--attacks", "pgd_linf", "--aa-cascade"],
        "--aa-cascade needs AutoAttack",
        code=2,
    ),
    Case("calibrate-unknown", [*EVAL, *CLEAN, "--calibrate", "platt"], "invalid choice", code=2),
    Case(
        "calib-fraction-without-calibrate",
        [*EVAL, *CLEAN, "--calib-fraction", "0.2"],
        "need --calibrate",
        code=2,
    ),
    Case(
        "calib-fraction-out-of-range",
        [*EVAL, *CLEAN, "--calibrate", "temperature", "--calib-fraction", "1.5"],
        "must be in (0, 1)",
        code=2,
    ),
    Case(
        "calib-fraction-and-data",
        [*EVAL, *CLEAN, "--calibrate", "temperature", "--calib-fraction", "0.2", "--calib-data", "digits"],
        "choose one of --calib-data and --calib-fraction",
        code=2,
    ),
    Case(
        "calib-data-is-the-test-set",
        [*EVAL, *CLEAN, "--calibrate", "temperature", "--calib-data", "digits"],
        "test set itself",
        code=2,
    ),
    Case(
        "calib-data-wrong-channels",
        [*EVAL, *CLEAN, "--calibrate", "temperature", "--calib-data", "npz:{tmp}/rgb.npz"],
        "rgb.npz",
        setup=_calib_3ch,
    ),
    Case(
        "calib-data-foreign-labels",
        [*EVAL, *CLEAN, "--calibrate", "temperature", "--calib-data", "npz:{tmp}/bad.npz"],
        "10 ID classes",
        setup=_calib_labels,
    ),
    Case(
        "autoattack-eps-above-1",
        [*EVAL, "--attacks", "autoattack", "--eps", "8"],
        "did you mean 8/255",
        code=2,
    ),
]


@params(CASES)
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_case(case, tmp_path, capsys)


def test_missing_package_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyautoattack" else real(name, *a)
    )
    case = Case("no-pyautoattack", [*EVAL, "--attacks", "autoattack"], "pip install 'evalsuite[autoattack]'")
    check_case(case, tmp_path, capsys)
