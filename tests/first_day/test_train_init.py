"""Bad input to ``evalsuite init`` and ``evalsuite train``: one line, non-zero exit, inputs untouched, and
nothing written where the run was refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.first_day.harness import CHECKPOINTS, Case, check_case, copy_file, params


@pytest.fixture(autouse=True)
def _no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a machine without CIFAR: torchvision sets resolve to an empty folder
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("EVALSUITE_DATA", str(empty))


def _file(name: str, data: bytes = b"not a checkpoint"):
    def setup(tmp: Path) -> list[Path]:
        p = tmp / name
        p.write_bytes(data)
        return [p]

    return setup


def _committed(tmp: Path) -> list[Path]:
    return [copy_file(CHECKPOINTS / "digits-erk-0.1.pt", tmp / "erk.pt")]


def _nothing_written(*names: str):
    def after(tmp: Path) -> None:
        for name in names:
            assert not (tmp / name).exists(), name

    return after


INIT = ["init", "--out", "{tmp}/i.pt"]
TRAIN = ["train", "--dataset", "digits", "--epochs", "1", "-q", "--out", "{tmp}/t.pt"]
NO_INIT = _nothing_written("i.pt")
NO_TRAIN = _nothing_written("t.pt", "t.log.jsonl", "t.resume.pt")

INIT_CASES = [
    Case("init-no-dataset", ["init", "--out", "{tmp}/i.pt"], "--dataset", code=2, after=NO_INIT),
    Case("init-no-out", ["init", "--dataset", "digits"], "--out", code=2),
    Case(
        "init-density-zero", [*INIT, "--dataset", "digits", "--density", "0"], "(0, 1]", code=2, after=NO_INIT
    ),
    Case("init-density-text", [*INIT, "--dataset", "digits", "--density", "half"], "number", code=2),
    Case("init-density-above-1", [*INIT, "--dataset", "digits", "--density", "1.5"], "(0, 1]", code=2),
    Case(
        "init-unknown-scheme",
        [*INIT, "--dataset", "digits", "--sparse-init", "erdos", "--density", "0.1"],
        "unknown sparsity scheme",
        code=2,
        after=NO_INIT,
    ),
    Case(
        "init-dense-below-1",
        [*INIT, "--dataset", "digits", "--sparse-init", "dense", "--density", "0.5"],
        "keeps every weight",
        code=2,
    ),
    Case(
        "init-uniform-plus-too-sparse",
        [*INIT, "--dataset", "digits", "--sparse-init", "uniform+", "--density", "0.01"],
        "density must exceed",
        code=2,
    ),
    Case(
        "init-unknown-dataset",
        [*INIT, "--dataset", "imagenet", "--arch", "resnet20"],
        "unknown dataset",
        code=2,
    ),
    Case("init-no-default-arch", [*INIT, "--dataset", "imagenet"], "pass --arch", code=2),
    Case("init-unknown-arch", [*INIT, "--dataset", "digits", "--arch", "resnet21"], "unknown model", code=2),
    Case(
        "init-arch-kwargs-not-json", [*INIT, "--dataset", "digits", "--arch-kwargs", "{w:1}"], "JSON", code=2
    ),
    Case(
        "init-arch-kwargs-unknown",
        [*INIT, "--dataset", "digits", "--arch-kwargs", '{"depth": 3}'],
        "bad arguments",
        code=2,
        after=NO_INIT,
    ),
    Case(
        # the README's own example minus data: SNIP/GraSP must say they need the training set
        "init-snip-without-cifar",
        [*INIT, "--arch", "resnet20", "--dataset", "cifar10", "--sparse-init", "snip", "--density", "0.05"],
        "SNIP/GraSP ratios need the training data (--data-root/--download)",
        code=1,
        after=NO_INIT,
    ),
    Case(
        "init-grasp-without-cifar",
        [*INIT, "--dataset", "cifar100", "--sparse-init", "grasp", "--density", "0.1"],
        "SNIP/GraSP ratios need the training data",
        code=1,
    ),
    Case(
        "init-out-under-a-file",
        ["init", "--dataset", "digits", "--out", "{tmp}/plain.txt/i.pt"],
        "is a file, not a folder",
        code=2,
        setup=_file("plain.txt", b"x"),
    ),
    Case("init-out-is-a-folder", ["init", "--dataset", "digits", "--out", "{tmp}"], "is a folder", code=2),
]

TRAIN_CASES = [
    Case(
        "train-out-is-its-from-init",
        ["train", "--from", "{tmp}/init.pt", "--out", "{tmp}/init.pt"],
        "an input of this command",
        code=2,
        setup=_file("init.pt", (CHECKPOINTS / "digits-dense.pt").read_bytes()),
    ),
    Case("train-no-dataset-no-from", ["train", "--out", "{tmp}/t.pt"], "--dataset", code=2, after=NO_TRAIN),
    Case("train-epochs-zero", [*TRAIN, "--epochs", "0"], "epochs must be >= 1", code=2, after=NO_TRAIN),
    Case("train-batch-one", [*TRAIN, "--batch-size", "1"], "batch size", code=2, after=NO_TRAIN),
    Case("train-lr-negative", [*TRAIN, "--lr", "-0.1"], "lr must be positive", code=2),
    Case("train-momentum-one", [*TRAIN, "--momentum", "1"], "momentum", code=2),
    Case("train-milestones-text", [*TRAIN, "--milestones", "80,late"], "integers", code=2),
    Case("train-milestone-zero", [*TRAIN, "--milestones", "0,3"], "milestones must be epochs >= 1", code=2),
    Case("train-augment-unknown", [*TRAIN, "--augment", "mixup"], "invalid choice", code=2),
    Case(
        "train-limit-train-zero", [*TRAIN, "--limit-train", "0"], "--limit-train must be a positive", code=2
    ),
    Case(
        "train-limit-test-negative", [*TRAIN, "--limit-test", "-5"], "--limit-test must be a positive", code=2
    ),
    Case(
        "train-cifar-missing", [*TRAIN, "--dataset", "cifar10"], "cifar10 not found", code=1, after=NO_TRAIN
    ),
    Case("train-test-data-missing", [*TRAIN, "--test-data", "npz:{tmp}/nope.npz"], "not found", code=1),
    Case("train-resume-nothing", [*TRAIN, "--resume"], "no resume state", code=1, after=NO_TRAIN),
    Case("train-cuda-absent", [*TRAIN, "--device", "cuda:7"], "cuda", after=NO_TRAIN),
    Case(
        "train-from-and-density",
        ["train", "--from", "{tmp}/erk.pt", "--density", "0.5", "--out", "{tmp}/t.pt"],
        "--from takes arch, sparsity and seeds",
        code=2,
        setup=_committed,
    ),
    Case(
        "train-from-other-dataset",
        ["train", "--from", "{tmp}/erk.pt", "--dataset", "cifar10", "--out", "{tmp}/t.pt", "-q"],
        "initialized for digits",
        setup=_committed,
        after=NO_TRAIN,
    ),
    Case(
        "train-from-missing",
        ["train", "--from", "{tmp}/none.pt", "--out", "{tmp}/t.pt"],
        "no such file",
        code=1,
    ),
    Case(
        "train-from-garbage",
        ["train", "--from", "{tmp}/junk.pt", "--out", "{tmp}/t.pt"],
        "junk.pt",
        code=1,
        setup=_file("junk.pt"),
        after=NO_TRAIN,
    ),
    Case(
        "train-out-under-a-file",
        [*TRAIN[:-1], "{tmp}/plain.txt/t.pt"],
        "is a file, not a folder",
        code=2,
        setup=_file("plain.txt", b"x"),
    ),
]


@params(INIT_CASES)
def test_init_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_case(case, tmp_path, capsys)


@params(TRAIN_CASES)
def test_train_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_case(case, tmp_path, capsys)
