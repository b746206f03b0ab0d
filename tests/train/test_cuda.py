"""The CUDA path (bf16 autocast, channels_last, data held on the device). Skipped where CUDA is absent
(conftest's ``gpu`` marker); run on a GPU machine with ``pytest -m gpu``."""

from __future__ import annotations

import pytest
import torch

from evalsuite.battery import BatteryConfig, EvalOptions, evaluate
from evalsuite.models.checkpoint import load_checkpoint
from evalsuite.sparsity import density_report, prunable_layers
from evalsuite.train import InitSpec, TrainJob, TrainOptions, run_training


@pytest.mark.gpu
def test_masked_training_and_battery_on_cuda(tmp_path):
    out = tmp_path / "m.pt"
    card = run_training(
        TrainJob(
            InitSpec("digits", scheme="erk", density=0.2, seed=0),
            {"epochs": 5},
            TrainOptions(out=out, device="cuda"),
        )
    )
    assert card.provenance["amp"] is True and card.provenance["channels_last"] is True
    assert card.metrics["test_accuracy"] > 0.8
    model, card, masks = load_checkpoint(out)
    rep = density_report(model, prunable_layers(model, torch.zeros(1, 1, 8, 8)), masks)
    assert rep["masked_nonzero"] == 0
    cpu = evaluate(
        out,
        BatteryConfig(checks=("clean", "robust"), eps_linf=(0.0, 8 / 255), eps_l2=()),
        EvalOptions(cache=False, device="cpu", ood=[]),
    )
    gpu = evaluate(
        out,
        BatteryConfig(checks=("clean", "robust"), eps_linf=(0.0, 8 / 255), eps_l2=()),
        EvalOptions(cache=False, device="cuda", ood=[]),
    )
    assert gpu.metrics["accuracy"] == pytest.approx(cpu.metrics["accuracy"], abs=2 / 450)
    assert gpu.metrics["robust/pgd_linf/0_255/accuracy"] == gpu.metrics["accuracy"]
