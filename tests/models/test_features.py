"""Penultimate features from the logits' forward pass: eager hooks, TorchScript graphs, overrides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.data import load_dataset
from evalsuite.models import create_model
from evalsuite.models.checkpoint import load_checkpoint
from evalsuite.models.features import (
    FEATURE_FLOAT16_BYTES,
    LogitsAndFeatures,
    feature_storage_dtype,
    feature_tap,
    find_last_linear,
    linear_head,
    penultimate_features,
)
from evalsuite.models.foreign import load_any_model

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def digits() -> tuple[nn.Module, torch.Tensor]:
    model, _, _ = load_checkpoint(REPO / "checkpoints" / "digits-dense.pt")
    x = load_dataset("digits", "test").images()[:70]
    return model, x


def _batches(x: torch.Tensor, bs: int = 32) -> list[torch.Tensor]:
    return [x[i : i + bs] for i in range(0, len(x), bs)]


def _manual_smallcnn_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """SmallCNN.forward up to its fc, written out: what the hook must record."""
    net = model.net
    with torch.no_grad():
        h = model.normalize(x)
        h = torch.relu(net.bn1(net.conv1(h)))
        h = net.pool(torch.relu(net.bn2(net.conv2(h))))
        h = torch.relu(net.bn3(net.conv3(h)))
        return torch.flatten(nn.functional.adaptive_avg_pool2d(h, 1), 1)


def test_zoo_model_logits_and_features_in_one_pass(digits: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = digits
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        got = penultimate_features(model, _batches(x))
    finally:
        handle.remove()
    assert isinstance(got, LogitsAndFeatures)
    assert len(calls) == 3  # one forward per batch, nothing more
    assert got.layer == "net.fc" and got.head_is_logits is True
    assert got.logits.dtype == np.float32 and got.features.dtype == np.float32
    with torch.no_grad():
        want_logits = model(x).numpy()
    np.testing.assert_array_equal(got.logits, want_logits)
    np.testing.assert_allclose(
        got.features, _manual_smallcnn_features(model, x).numpy(), rtol=1e-6, atol=1e-6
    )
    w, b = linear_head(model)
    assert w.shape == (10, 64) and b.shape == (10,)
    np.testing.assert_allclose(got.features @ w.T + b, want_logits, rtol=1e-4, atol=1e-4)
    # the hook is gone afterwards
    assert not model.net.fc._forward_pre_hooks


@pytest.mark.parametrize(
    ("arch", "kwargs", "name"),
    [
        ("smallcnn", {}, "net.fc"),
        ("test_mlp", {}, "net.fc2"),
        ("resnet20", {}, "net.linear"),
        ("vgg16", {"width": 0.125}, "net.classifier"),
        ("wrn28_2", {}, "net.linear"),
    ],
)
def test_find_last_linear_on_the_zoo(arch: str, kwargs: dict[str, object], name: str) -> None:
    channels = 1 if arch in ("smallcnn", "test_mlp") else 3
    model = create_model(arch, 10, [0.5] * channels, [0.25] * channels, **kwargs)
    assert find_last_linear(model) == name


def test_feature_layer_override_takes_that_modules_input() -> None:
    torch.manual_seed(0)
    model = create_model("test_mlp", 10, [0.5], [0.25]).eval()
    x = torch.rand(9, 1, 8, 8)
    got = penultimate_features(model, [x], layer="net.fc1")
    np.testing.assert_allclose(got.features, ((x - 0.5) / 0.25).flatten(1).numpy(), rtol=1e-6)
    assert got.layer == "net.fc1"
    assert got.head_is_logits is False  # fc1's output is not the logits


def test_conv_feature_maps_are_average_pooled(digits: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = digits
    got = penultimate_features(model, [x[:5]], layer="net.bn3")
    with torch.no_grad():
        h = model.normalize(x[:5])
        net = model.net
        h = net.pool(torch.relu(net.bn2(net.conv2(torch.relu(net.bn1(net.conv1(h)))))))
        want = net.conv3(h).mean(dim=(2, 3))
    np.testing.assert_allclose(got.features, want.numpy(), rtol=1e-5, atol=1e-6)
    assert got.head_is_logits is None
    assert linear_head(model, "net.bn3") is None


@pytest.mark.parametrize("how", ["script", "trace"])
@pytest.mark.parametrize("wrapped", [False, True])
def test_torchscript_gives_the_eager_features(
    tmp_path: Path, digits: tuple[nn.Module, torch.Tensor], how: str, wrapped: bool
) -> None:
    model, x = digits
    eager = penultimate_features(model, _batches(x))
    scripted = torch.jit.script(model) if how == "script" else torch.jit.trace(model, x[:2])
    p = tmp_path / "m.pt"
    torch.jit.save(scripted, str(p))
    loaded: nn.Module = torch.jit.load(str(p))
    if wrapped:
        # load_any_model's shape: an eager wrapper around the scripted net
        class Wrap(nn.Module):
            def __init__(self, inner: nn.Module) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, t: torch.Tensor) -> torch.Tensor:
                return self.inner(t)

        loaded = Wrap(loaded)
    prefix = "inner." if wrapped else ""
    assert find_last_linear(loaded) == prefix + "net.fc"
    got = penultimate_features(loaded, _batches(x))
    assert got.layer == prefix + "net.fc" and got.head_is_logits is True
    np.testing.assert_allclose(got.logits, eager.logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got.features, eager.features, rtol=1e-5, atol=1e-5)
    if wrapped:
        assert loaded.inner.__class__.__name__ == "RecursiveScriptModule"  # put back after the pass


def test_torchscript_file_through_load_any_model(
    tmp_path: Path, digits: tuple[nn.Module, torch.Tensor]
) -> None:
    model, x = digits
    p = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(model.net), str(p))
    loaded = load_any_model(p, trust=True, mean=[0.0], std=[1.0])
    got = penultimate_features(loaded.model, [x])
    assert got.head_is_logits is True
    with torch.no_grad():
        want = loaded.model(x).numpy()
    np.testing.assert_allclose(got.logits, want, rtol=1e-6, atol=1e-6)


def test_scripted_leaf_under_eager_parents() -> None:
    torch.manual_seed(1)
    eager = nn.Sequential(nn.Flatten(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    mixed = nn.Sequential(eager[0], eager[1], eager[2], torch.jit.script(eager[3])).eval()
    x = torch.randn(5, 3, 2, 2)
    want = penultimate_features(eager, [x])
    got = penultimate_features(mixed, [x])
    assert got.layer == "3"
    np.testing.assert_allclose(got.features, want.features, rtol=1e-6)
    np.testing.assert_allclose(got.logits, want.logits, rtol=1e-6)
    assert type(mixed[3]).__name__ == "RecursiveScriptModule"


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.a(self.a(x)))


def test_bad_layers_are_usage_errors() -> None:
    model = _Twice()
    with pytest.raises(UsageError, match="ran 2 times"):
        penultimate_features(model, [torch.randn(2, 4)], layer="a")
    with pytest.raises(UsageError, match="no such module"):
        penultimate_features(model, [torch.randn(2, 4)], layer="nope")
    with pytest.raises(UsageError, match="no linear layer"):
        find_last_linear(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten()))
    with pytest.raises(UsageError, match="no batches"):
        penultimate_features(model, [])
    scripted = torch.jit.script(model)
    with pytest.raises(UsageError, match="runs 2 times"):
        penultimate_features(scripted, [torch.randn(2, 4)], layer="a")
    relu_first = torch.jit.script(nn.Sequential(nn.ReLU(), nn.Linear(3, 2)))
    with pytest.raises(UsageError, match="linear layer called once"), feature_tap(relu_first, "0"):
        pass


def test_storage_dtype_turns_float16_past_one_gb() -> None:
    assert feature_storage_dtype(10_000, 640) == np.float32
    limit_n = FEATURE_FLOAT16_BYTES // (4 * 512)
    assert feature_storage_dtype(limit_n, 512) == np.float32
    assert feature_storage_dtype(limit_n + 1, 512) == np.float16
    assert feature_storage_dtype(10, 10, limit_bytes=399) == np.float16


def test_float16_storage_and_overflow_fallback(digits: tuple[nn.Module, torch.Tensor]) -> None:
    model, x = digits
    full = penultimate_features(model, _batches(x))
    half = penultimate_features(model, _batches(x), feature_dtype=np.float16)
    assert half.features.dtype == np.float16
    np.testing.assert_allclose(half.features.astype(np.float32), full.features, rtol=1e-3, atol=1e-3)
    np.testing.assert_array_equal(half.logits, full.logits)  # logits always float32

    big = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1)).eval()
    with torch.no_grad():
        big[0].weight.copy_(torch.eye(2))
        big[0].bias.zero_()
    got = penultimate_features(big, [torch.ones(1, 2), torch.full((1, 2), 1e6)], feature_dtype=np.float16)
    assert got.features.dtype == np.float32  # 1e6 does not fit float16: kept float32, nothing lost
    np.testing.assert_array_equal(got.features, [[1, 1], [1e6, 1e6]])
