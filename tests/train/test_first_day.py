"""What a newcomer hits first: init without data, --epochs moving the milestones, where the log goes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from evalsuite.cli import main
from evalsuite.data import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, SVHN_STD, ImageSet
from evalsuite.models.checkpoint import load_checkpoint
from evalsuite.train import InitSpec, TrainOptions, init_model
from evalsuite.train.datainfo import KNOWN, dataset_info
from evalsuite.train.recipe import DIGITS, PAPER_CIFAR, resolve_recipe, scaled_milestones

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "no-data"
    empty.mkdir()
    monkeypatch.setenv("EVALSUITE_DATA", str(empty))
    return empty


@pytest.mark.parametrize("scheme", ["uniform", "uniform+", "er", "erk", "erk+"])
def test_init_cifar_needs_no_data_for_data_free_schemes(scheme: str, no_data: Path, tmp_path: Path, capsys):
    out = tmp_path / "init.pt"
    argv = [
        "init",
        "--arch",
        "resnet20",
        "--dataset",
        "cifar10",
        "--sparse-init",
        scheme,
        "--density",
        "0.05",
    ]
    assert main([*argv, "--out", str(out)]) == 0, capsys.readouterr().err
    _, card, masks = load_checkpoint(out)
    assert (card.num_classes, card.input_shape) == (10, (3, 32, 32))
    assert (card.mean, card.std) == (CIFAR10_MEAN, CIFAR10_STD)
    assert card.sparsity["scheme"] == scheme and masks
    assert list(no_data.iterdir()) == []  # nothing downloaded or created


def test_dense_init_needs_no_data(no_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "dense.pt"
    assert main(["init", "--dataset", "svhn", "--density", "1", "--out", str(out)]) == 0, (
        capsys.readouterr().err
    )
    _, card, masks = load_checkpoint(out)
    assert masks == {} and card.arch == "resnet20" and card.std == SVHN_STD


def test_init_without_data_equals_init_with_data(no_data: Path) -> None:
    # `evalsuite init` (no images) and `evalsuite train --dataset` (images loaded) must build the same
    # network, or init.pt and its trained twin would not be paired
    fake = ImageSet(
        "cifar100",
        "train",
        torch.zeros(4, 3, 32, 32, dtype=torch.uint8),
        torch.arange(4),
        100,
        *_stats("cifar100"),
    )
    spec = InitSpec("cifar100", arch="resnet20", scheme="erk", density=0.1, seed=3)
    a_model, a_card, a_masks = init_model(spec)
    b_model, b_card, b_masks = init_model(spec, fake)
    assert a_card.to_dict() | {"provenance": None} == b_card.to_dict() | {"provenance": None}
    assert a_card.mean == CIFAR100_MEAN
    for k, v in a_model.state_dict().items():
        assert torch.equal(v, b_model.state_dict()[k]), k
    assert a_masks.keys() == b_masks.keys() and all(torch.equal(a_masks[k], b_masks[k]) for k in a_masks)


def _stats(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    return KNOWN[name].mean, KNOWN[name].std


def test_dataset_info_reads_other_specs() -> None:
    info = dataset_info("digits")
    assert (info.num_classes, info.input_shape) == (10, (1, 8, 8)) and 0 < info.mean[0] < 1


@pytest.mark.parametrize(
    ("epochs", "expect"),
    [(160, (80, 120)), (2, (1, 2)), (40, (20, 30)), (1, (1, 1)), (320, (160, 240))],
)
def test_scaled_milestones(epochs: int, expect: tuple[int, ...]) -> None:
    assert scaled_milestones(PAPER_CIFAR.milestones, PAPER_CIFAR.epochs, epochs) == expect


def test_resolve_recipe_scales_only_when_epochs_move_and_milestones_are_not_given() -> None:
    recipe, note = resolve_recipe("cifar10", {"epochs": 2})
    assert recipe.milestones == (1, 2) and note and "[80, 120]" in note and "[1, 2]" in note
    recipe, note = resolve_recipe("cifar10", {"epochs": 2, "milestones": (5,)})
    assert recipe.milestones == (5,) and note is None
    recipe, note = resolve_recipe("digits", {"epochs": None, "lr": 0.1})
    assert recipe.milestones == DIGITS.milestones and note is None
    assert resolve_recipe("digits", {"epochs": 6})[0].milestones == (4, 5)  # what bench --epochs 6 gives


def test_train_epochs_says_it_scaled_the_milestones(tmp_path: Path, caplog, capsys) -> None:
    out = tmp_path / "m.pt"
    with caplog.at_level(logging.INFO, logger="evalsuite.train.loop"):
        assert main(["train", "--dataset", "digits", "--epochs", "3", "--out", str(out)]) == 0
    assert "lr milestones scaled from [20, 26] of 30 epochs to [2, 3]" in caplog.text
    _, card, _ = load_checkpoint(out)
    assert card.recipe["milestones"] == [2, 3] and card.recipe["epochs"] == 3
    lrs = [json.loads(line)["lr"] for line in (tmp_path / "m.log.jsonl").read_text().splitlines()]
    # a milestone m means lr x gamma after m epochs, as 80/120 do in the paper's 160
    assert lrs == pytest.approx([0.05, 0.05, 0.005])


def test_log_is_named_after_the_checkpoint_as_readme_says(tmp_path: Path) -> None:
    assert TrainOptions(out=tmp_path / "model.pt").log_path == tmp_path / "model.log.jsonl"
    assert TrainOptions(out=tmp_path / "model.pt").resume_path == tmp_path / "model.resume.pt"
    readme = (REPO / "README.md").read_text()
    assert "`--out model.pt`" in readme and "`model.log.jsonl`" in readme and "`model.resume.pt`" in readme


@pytest.mark.parametrize("name", ["digits-dense", "digits-erk-0.1"])
def test_committed_logs_sit_beside_their_checkpoints(name: str) -> None:
    _, card, _ = load_checkpoint(REPO / "checkpoints" / f"{name}.pt")
    log = TrainOptions(out=REPO / "checkpoints" / f"{name}.pt").log_path
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == list(range(1, card.recipe["epochs"] + 1))
    assert records[-1]["test_accuracy"] == card.metrics["test_accuracy"]
