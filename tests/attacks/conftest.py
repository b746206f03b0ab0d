"""A tiny MLP trained for a moment on the embedded digits, so attacks have something to break."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evalsuite.data import load_dataset
from evalsuite.models import create_model


@pytest.fixture(scope="session")
def digits_model() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """(trained test_mlp in eval mode, x [450, 1, 8, 8] in [0, 1], y [450]) on the digits test split."""
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = create_model("test_mlp", train.num_classes, train.mean, train.std)
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        x_tr, y_tr = train.images(), train.y
        for _ in range(100):
            opt.zero_grad()
            F.cross_entropy(model(x_tr), y_tr).backward()
            opt.step()
    model.eval()
    return model, test.images(), test.y


@pytest.fixture
def clean_correct(digits_model: tuple[nn.Module, torch.Tensor, torch.Tensor]) -> torch.Tensor:
    model, x, y = digits_model
    with torch.no_grad():
        return model(x).argmax(dim=1) == y
