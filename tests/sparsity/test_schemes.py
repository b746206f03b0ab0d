"""Layer-wise densities against hand-computed values, and global density on real zoo models."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.models import create_model
from evalsuite.sparsity import SCHEMES, SchemeContext, layer_densities, prunable_layers, prune_at_init


class Net(nn.Module):
    """conv 3->4 (3x3, 108 weights), conv 4->8 (3x3, 288), linear 8->10 (80): 476 prunable weights.

    The head is registered FIRST so that registration order differs from graph order.
    """

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(8, 10)
        self.b = nn.Conv2d(4, 8, 3, padding=1, bias=False)
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.b(torch.relu(self.a(x)))))
        return self.head(x.mean((2, 3)))


@pytest.fixture
def layers():
    return prunable_layers(Net(), torch.zeros(1, 3, 6, 6))


def test_graph_order_not_registration_order(layers):
    assert [lay.name for lay in layers] == ["a.weight", "b.weight", "head.weight"]
    assert [lay.numel for lay in layers] == [108, 288, 80]
    assert [lay.out_positions for lay in layers] == [36, 36, 1]


def test_uniform(layers):
    assert layer_densities("uniform", layers, 0.3) == [0.3, 0.3, 0.3]


def test_erk_hand_computed_with_redistribution(layers):
    # raw: a (4+3+3+3)/108, b (8+4+3+3)/288, head (10+8)/80. At density 0.5 (238 of 476 kept) the head
    # would get 238/49 * 18/80 = 1.09 > 1, so it is made dense and the convs share 238 - 80 = 158.
    d = layer_densities("erk", layers, 0.5)
    assert d[2] == 1.0
    assert d[0] == pytest.approx(158 / 31 * 13 / 108, abs=1e-12)
    assert d[1] == pytest.approx(158 / 31 * 18 / 288, abs=1e-12)


def test_erk_no_redistribution_at_low_density(layers):
    d = layer_densities("erk", layers, 0.1)
    eps = 47.6 / 49
    assert d == pytest.approx([eps * 13 / 108, eps * 18 / 288, eps * 18 / 80], abs=1e-12)


def test_er_ignores_kernel(layers):
    d = layer_densities("er", layers, 0.1)
    raw = [7 / 12, 12 / 32, 18 / 80]
    eps = 47.6 / (raw[0] * 108 + raw[1] * 288 + raw[2] * 80)
    assert d == pytest.approx([eps * r for r in raw], abs=1e-12)


def test_erk_plus_keeps_last_dense(layers):
    d = layer_densities("erk+", layers, 0.3)
    budget = 0.3 * 476 - 80
    eps = budget / 31
    assert d == pytest.approx([eps * 13 / 108, eps * 18 / 288, 1.0], abs=1e-12)


def test_uniform_plus_floor_binds(layers):
    # first dense (108), last at 0.2 (16), rest: (142.8 - 108 - 16) / 288
    d = layer_densities("uniform+", layers, 0.3)
    assert d == pytest.approx([1.0, 18.8 / 288, 0.2], abs=1e-12)


def test_uniform_plus_floor_released(layers):
    # at 0.5 the rest would be (238 - 108 - 16) / 288 = 0.396 > 0.2: the last layer joins the rest
    d = layer_densities("uniform+", layers, 0.5)
    assert d == pytest.approx([1.0, 130 / 368, 130 / 368], abs=1e-12)


def test_uniform_plus_infeasible(layers):
    with pytest.raises(UsageError, match="must exceed"):
        layer_densities("uniform+", layers, 0.2)


@pytest.mark.parametrize("density", [0.0, -0.1, 1.5])
def test_density_out_of_range(layers, density):
    with pytest.raises(UsageError, match=r"\(0, 1\]"):
        layer_densities("erk", layers, density)


def test_unknown_scheme_suggests(layers):
    with pytest.raises(UsageError, match=r"did you mean .*erk"):
        layer_densities("ekr", layers, 0.1)


@pytest.mark.parametrize("scheme", ["uniform", "uniform+", "er", "erk", "erk+", "snip", "grasp"])
@pytest.mark.parametrize("density", [0.05, 0.5])
def test_global_density_exact_on_resnet20(scheme, density):
    torch.manual_seed(0)
    model = create_model("resnet20", 10, (0.5,) * 3, (0.25,) * 3, width=8)
    x = torch.rand(10, 3, 16, 16)
    y = torch.arange(10)
    plan = prune_at_init(model, x[:1], scheme, density, mask_seed=3, ctx=SchemeContext(batch=(x, y)))
    total = sum(lay.numel for lay in plan.layers)
    kept = sum(int(plan.masks[lay.name].sum()) for lay in plan.layers)
    # within half a weight per layer of the target
    assert abs(kept - density * total) <= 0.5 * len(plan.layers)
    for lay, d in zip(plan.layers, plan.layer_targets):
        assert int(plan.masks[lay.name].sum()) == int(d * lay.numel + 0.5)


def test_snip_grasp_need_data(layers):
    for scheme in ("snip", "grasp"):
        with pytest.raises(UsageError, match="batch"):
            layer_densities(scheme, layers, 0.1, SchemeContext())


def test_snip_ratios_follow_scores():
    # a net whose second layer's gradients are zero (dead path) must get (almost) nothing kept there
    torch.manual_seed(0)
    model = Net()
    x, y = torch.rand(8, 3, 6, 6), torch.arange(8) % 10
    lays = prunable_layers(model, x[:1])
    with torch.no_grad():
        model.b.weight.zero_()
    d = layer_densities("snip", lays, 0.3, SchemeContext(model=model, batch=(x, y)))
    assert d[1] == 0.0 or d[1] < d[0]
    assert sum(di * lay.numel for di, lay in zip(d, lays)) == pytest.approx(round(0.3 * 476), abs=1e-9)


def test_registry_has_the_paper_schemes():
    assert set(SCHEMES.names()) >= {"dense", "uniform", "uniform+", "er", "erk", "erk+", "snip", "grasp"}


def test_only_snip_and_grasp_need_data() -> None:
    from evalsuite.sparsity.schemes import needs_data

    assert {s for s in SCHEMES.names() if needs_data(s)} == {"snip", "grasp"}
    assert all("training images" in SCHEMES.describe(s) for s in ("snip", "grasp"))
    with pytest.raises(UsageError, match="unknown sparsity scheme"):
        needs_data("snap")
