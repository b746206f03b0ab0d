"""Exact-count masks from a dedicated generator; masked weights stay zero through training."""

from __future__ import annotations

import torch
from torch import nn

from evalsuite.models import create_model
from evalsuite.sparsity import (
    MaskedParameters,
    density_report,
    draw_masks,
    mask_hash,
    prunable_layers,
    prune_at_init,
)


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return create_model("smallcnn", 10, (0.3,), (0.4,))


X1 = torch.zeros(1, 1, 8, 8)


def test_exact_count_and_reproducible():
    layers = prunable_layers(_model(), X1)
    dens = [0.31, 0.07, 0.5, 0.123]
    a = draw_masks(layers, dens, mask_seed=5)
    b = draw_masks(layers, dens, mask_seed=5)
    c = draw_masks(layers, dens, mask_seed=6)
    for lay, d in zip(layers, dens):
        assert int(a[lay.name].sum()) == int(d * lay.numel + 0.5)
        assert torch.equal(a[lay.name], b[lay.name])
    assert any(not torch.equal(a[n], c[n]) for n in a)
    assert mask_hash(a) == mask_hash(b) != mask_hash(c)


def test_masks_ignore_global_rng():
    layers = prunable_layers(_model(), X1)
    torch.manual_seed(1)
    a = draw_masks(layers, [0.2] * 4, 9)
    torch.manual_seed(2)
    torch.rand(100)
    b = draw_masks(layers, [0.2] * 4, 9)
    assert mask_hash(a) == mask_hash(b)


def test_masks_nested_across_densities():
    layers = prunable_layers(_model(), X1)
    lo = draw_masks(layers, [0.05] * 4, 3)
    hi = draw_masks(layers, [0.2] * 4, 3)
    for n in lo:
        assert bool((lo[n] <= hi[n]).all())


def test_paired_init_same_weights_masked():
    dense = _model(7)
    sparse = _model(7)
    plan = prune_at_init(sparse, X1, "erk", 0.1, mask_seed=7)
    for name, p in sparse.named_parameters():
        q = dict(dense.named_parameters())[name]
        if name in plan.masks:
            assert torch.equal(p, q * plan.masks[name])
        else:
            assert torch.equal(p, q)


def test_masked_weights_stay_zero_with_momentum_and_weight_decay():
    model = _model(0)
    plan = prune_at_init(model, X1, "uniform", 0.2, mask_seed=0)
    masked = MaskedParameters(model, plan.masks)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True)
    g = torch.Generator().manual_seed(0)
    for _ in range(25):
        x = torch.rand(16, 1, 8, 8, generator=g)
        y = torch.randint(0, 10, (16,), generator=g)
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        masked.mask_grads()
        for name, p in model.named_parameters():
            if name in plan.masks:
                assert not bool(p.grad[~plan.masks[name]].any())
        opt.step()
        masked.after_step(opt)
    report = density_report(model, plan.layers, plan.masks)
    assert report["masked_nonzero"] == 0
    for name, p in model.named_parameters():
        if name in plan.masks:
            m = plan.masks[name]
            assert not bool(p[~m].any())
            assert not bool(opt.state[p]["momentum_buffer"][~m].any())
            # the kept weights did move
            assert bool(p[m].any())


def test_without_masking_weights_leak():
    """The check above can fail: plain SGD with weight decay and momentum revives pruned weights."""
    model = _model(0)
    plan = prune_at_init(model, X1, "uniform", 0.2, mask_seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    assert density_report(model, plan.layers, plan.masks)["masked_nonzero"] > 0


def test_density_report_macs():
    model = _model(0)
    plan = prune_at_init(model, X1, "uniform", 0.5, mask_seed=0)
    r = density_report(model, plan.layers, plan.masks)
    # smallcnn at width 16 on 8x8: conv1 144 w x 64 pos, conv2 4608 x 64, conv3 18432 x 16, fc 640 x 1
    assert r["macs_dense"] == 144 * 64 + 4608 * 64 + 18432 * 16 + 640
    assert r["prunable_params"] == 144 + 4608 + 18432 + 640
    assert abs(r["mask_density"] - 0.5) < 2 / r["prunable_params"]
