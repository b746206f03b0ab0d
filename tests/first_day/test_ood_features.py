"""Bad input for the feature OOD scores, OOD groups and ``data export``: one error line, non-zero exit, inputs
untouched."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evalsuite.models.foreign import load_any_model
from tests.first_day.harness import CHECKPOINTS, Case, check_case, params

DENSE = "{repo}/checkpoints/digits-dense.pt"
EVAL = ("eval", DENSE, "--no-cache", "-q", "--checks", "clean,ood", "--ood", "photos")


def _npz(tmp: Path, name: str, x: np.ndarray, y: np.ndarray) -> list[Path]:
    path = tmp / name
    np.savez(path, x=x, y=y)
    return [path]


def _other_classes(tmp: Path) -> list[Path]:
    return _npz(tmp, "fit.npz", np.zeros((60, 8, 8, 1), np.uint8), np.full(60, 12, np.int64))


def _rgb(tmp: Path) -> list[Path]:
    return _npz(tmp, "rgb.npz", np.zeros((60, 8, 8, 3), np.uint8), np.zeros(60, np.int64))


def _digits_npz(tmp: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    return _npz(tmp, "test.npz", rng.integers(0, 255, (60, 8, 8, 1), np.uint8), np.arange(60) % 10)


class _NoGrad(nn.Module):
    """A model whose output carries no gradient to its input (inference-only export)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.net(x)


def _no_grad_model(tmp: Path) -> list[Path]:
    net = load_any_model(CHECKPOINTS / "digits-dense.pt").model.eval()
    path = tmp / "nograd.pt"
    with pytest.warns(FutureWarning):  # torch.jit.script is deprecated, still what such exports use
        scripted = torch.jit.script(_NoGrad(net))
    torch.jit.save(scripted, str(path))
    return [path]


GROUPED = ("eval", DENSE, "--no-cache", "-q", "--checks", "clean,ood")

CASES = [
    Case("group-without-set", [*GROUPED, "--ood", "near:,far:gaussian"], "names no OOD set", code=2),
    Case(
        "group-misspelt-kind", [*GROUPED, "--ood", "near:photos,gausian:500"], "did you mean gaussian", code=2
    ),
    Case("group-same-set-twice", [*GROUPED, "--ood", "near:photos,far:photos"], "must differ", code=2),
    Case(
        "export-not-npz",
        ["data", "export", "digits", "--out", "{tmp}/d.txt"],
        "must be a .npz file name",
        code=2,
    ),
    Case("export-unknown-spec", ["data", "export", "digitz", "--out", "{tmp}/d.npz"], "digitz"),
    Case(
        "export-onto-its-input",
        ["data", "export", "npz:{tmp}/test.npz", "--out", "{tmp}/test.npz"],
        "test.npz",
        setup=_digits_npz,
        code=2,
    ),
    Case(
        "export-bad-split",
        ["data", "export", "digits", "--split", "val", "--out", "{tmp}/d.npz"],
        "invalid choice",
        code=2,
    ),
    Case("score-misspelt", [*EVAL, "--ood-scores", "mahalanobys"], "did you mean mahalanobis", code=2),
    Case(
        "feature-layer-unknown",
        [*EVAL, "--ood-scores", "knn", "--feature-layer", "net.fc2"],
        "no such module",
        code=2,
    ),
    Case(
        "feature-layer-not-linear-for-react",
        [*EVAL, "--ood-scores", "react", "--feature-layer", "net.pool"],
        "need the feature layer to be linear",
        code=2,
    ),
    Case(
        "fit-data-without-feature-score",
        [*EVAL, "--ood-scores", "msp", "--fit-data", "digits"],
        "need a fitted feature score",
        code=2,
    ),
    Case("fit-limit-zero", [*EVAL, "--ood-scores", "knn", "--fit-limit", "0"], "--fit-limit", code=2),
    Case(
        "fit-data-other-classes",
        [*EVAL, "--ood-scores", "mahalanobis", "--fit-data", "npz:{tmp}/fit.npz"],
        "labels outside the model's 10 classes",
        setup=_other_classes,
        code=1,
    ),
    Case(
        "fit-data-other-shape",
        [*EVAL, "--ood-scores", "knn", "--fit-data", "npz:{tmp}/rgb.npz"],
        "has images",
        setup=_rgb,
        code=1,
    ),
    Case(
        "fit-data-is-the-test-file",
        [
            *EVAL,
            "--data",
            "npz:{tmp}/test.npz",
            "--norm-stats",
            "digits",
            "--ood-scores",
            "knn",
            "--fit-data",
            "npz:{tmp}/test.npz",
        ],
        "is the test set itself",
        setup=_digits_npz,
        code=2,
    ),
    Case(
        "file-data-without-fit-data",
        [*EVAL, "--data", "npz:{tmp}/test.npz", "--norm-stats", "digits", "--ood-scores", "vim"],
        "pass --fit-data",
        setup=_digits_npz,
        code=2,
    ),
    Case(
        "fit-data-missing-file",
        [*EVAL, "--ood-scores", "knn", "--fit-data", "npz:{tmp}/none.npz"],
        "none.npz",
    ),
    Case(
        "knn-k-larger-than-fit-set",
        [*EVAL, "--ood-scores", "knn", "--fit-limit", "20"],
        "k must be in 1..20",
        code=2,
    ),
    Case(
        "odin-without-gradients",
        [
            "eval",
            "{tmp}/nograd.pt",
            "--trust-checkpoint",
            "--data",
            "digits",
            "--no-normalize",
            "--no-cache",
            "-q",
            "--checks",
            "clean,ood",
            "--ood",
            "photos",
            "--ood-scores",
            "odin",
        ],
        "odin needs input gradients",
        setup=_no_grad_model,
        code=2,
    ),
]


@params(CASES)
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_case(case, tmp_path, capsys)
