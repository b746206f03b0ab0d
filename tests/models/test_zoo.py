"""The CIFAR and ImageNet zoo: every net builds and runs, parameter counts, and the akamaster checkpoints."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.models import MODELS, create_model
from evalsuite.models.cifar_resnet import CifarResNet, ShortcutA

SHARED = Path(__file__).parents[2].parent / "shared"
AKAMASTER = SHARED / "models" / "akamaster_resnet_cifar10"
CIFAR10_TEST = SHARED / "data" / "cifar10" / "test.npz"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

CIFAR_RESNETS = ["resnet20", "resnet32", "resnet44", "resnet56", "resnet110"]
CIFAR_NETS = [*CIFAR_RESNETS, "vgg16", "vgg19", "wrn28", "wrn28_2", "wrn28_10"]
IMAGENET_NETS = ["resnet18", "resnet50", "wide_resnet50_2"]
CHECKPOINTS = {
    "resnet20": "resnet20-12fca82f.th",
    "resnet32": "resnet32-d509ac18.th",
    "resnet44": "resnet44-014dd654.th",
    "resnet56": "resnet56-4bfd9763.th",
}


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@cache
def bare(name: str, num_classes: int = 10, **kwargs: object) -> nn.Module:
    """Built once per session (wrn28_10 and wide_resnet50_2 take a second to initialize); eval mode."""
    return MODELS.get(name)(num_classes=num_classes, in_channels=3, **kwargs).eval()


def test_all_zoo_names_registered() -> None:
    for name in CIFAR_NETS + IMAGENET_NETS:
        assert name in MODELS
        assert MODELS.describe(name)


@pytest.mark.parametrize("name", CIFAR_NETS)
def test_cifar_net_gives_logits(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, mean=IMAGENET_MEAN, std=IMAGENET_STD).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", IMAGENET_NETS)
def test_imagenet_net_gives_logits(name: str) -> None:
    # 64 px is enough: the torchvision nets end in an adaptive pool.
    with torch.no_grad():
        out = bare(name)(torch.rand(1, 3, 64, 64))
    assert out.shape == (1, 10)


@pytest.mark.parametrize("name", IMAGENET_NETS)
def test_imagenet_net_rejects_other_channels_and_weights(name: str) -> None:
    with pytest.raises(ValueError, match="in_channels must be 3"):
        create_model(name, num_classes=10, mean=(0.5,), std=(0.5,))
    with pytest.raises(UsageError, match="weights"):
        create_model(name, num_classes=10, mean=IMAGENET_MEAN, std=IMAGENET_STD, weights="DEFAULT")


@pytest.mark.parametrize(
    ("name", "expected"),
    # akamaster/pytorch_resnet_cifar10's README: 0.27M, 0.46M, 0.66M, 0.85M, 1.7M.
    [
        ("resnet20", 269_722),
        ("resnet32", 464_154),
        ("resnet44", 658_586),
        ("resnet56", 853_018),
        ("resnet110", 1_727_962),
    ],
)
def test_cifar_resnet_option_a_param_counts(name: str, expected: int) -> None:
    assert n_params(bare(name, shortcut="A")) == expected


def test_cifar_resnet_shortcut_b_and_width() -> None:
    a, b = bare("resnet20", shortcut="A"), bare("resnet20")
    # Option B adds two 1x1 projections with BN: 16*32 + 2*32 and 32*64 + 2*64.
    assert n_params(b) - n_params(a) == (16 * 32 + 64) + (32 * 64 + 128)
    assert n_params(b) == 272_474
    assert n_params(bare("resnet20", shortcut="A", width=8)) == 68_050
    assert n_params(bare("resnet20", shortcut="A", width=8)) < n_params(a)
    assert n_params(bare("resnet20", width=32)) > n_params(b)


@pytest.mark.parametrize(("depth", "blocks"), [(20, 3), (32, 5), (44, 7), (56, 9), (110, 18)])
def test_cifar_resnet_depth_sets_blocks(depth: int, blocks: int) -> None:
    net = bare(f"resnet{depth}")
    assert [len(s) for s in (net.layer1, net.layer2, net.layer3)] == [blocks] * 3
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
    assert len(convs) + 1 == depth  # 3x3 convs plus the linear layer count toward the depth


def test_cifar_resnet_module_layout() -> None:
    b = bare("resnet20")
    first = b.layer2[0].shortcut
    assert isinstance(first, nn.Sequential)
    assert isinstance(first[0], nn.Conv2d) and first[0].kernel_size == (1, 1) and first[0].stride == (2, 2)
    assert isinstance(first[1], nn.BatchNorm2d)
    assert n_params(b.layer1[0].shortcut) == 0
    a = bare("resnet20", shortcut="A")
    assert isinstance(a.layer3[0].shortcut, ShortcutA)
    assert n_params(a.layer3[0].shortcut) == 0
    assert isinstance(a.linear, nn.Linear) and a.linear.in_features == 64


def test_shortcut_a_subsamples_and_centres_channels() -> None:
    x = torch.randn(2, 16, 8, 8)
    out = ShortcutA(16, 32, 2)(x)
    assert out.shape == (2, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0


def test_other_zoo_param_counts() -> None:
    # Published sizes: WRN-28-10 36.5M, WRN-28-2 1.5M (Zagoruyko & Komodakis); VGG-16 without conv biases.
    assert n_params(bare("wrn28_10")) == 36_479_194
    assert n_params(bare("wrn28_2")) == 1_467_610
    assert n_params(bare("wrn28", widen_factor=2)) == 1_467_610
    assert n_params(bare("vgg16")) == 14_724_042
    assert n_params(bare("vgg19")) == 20_035_018
    assert n_params(bare("vgg16", width=0.5)) < n_params(bare("vgg16")) / 3
    assert n_params(bare("resnet18")) == 11_181_642  # torchvision's 11,689,512 less 990 classes of head


def test_in_channels_reach_the_first_conv() -> None:
    for name in ("resnet20", "vgg16", "wrn28_2"):
        model = create_model(name, num_classes=10, mean=(0.5,), std=(0.25,)).eval()
        with torch.no_grad():
            assert model(torch.rand(2, 1, 32, 32)).shape == (2, 10)


def test_wrn_dropout_is_used_in_training() -> None:
    net = MODELS.get("wrn28_2")(num_classes=10, in_channels=3, dropout=0.3)
    assert any(isinstance(m, nn.Dropout) and m.p == 0.3 for m in net.modules())


@pytest.mark.parametrize(
    "kwargs",
    [{"depth": 20}, {"shortcut": "C"}, {"width": 0}],
)
def test_bad_kwargs_are_usage_errors(kwargs: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        create_model("resnet20", num_classes=10, mean=IMAGENET_MEAN, std=IMAGENET_STD, **kwargs)


@pytest.mark.parametrize("name", ["vgg16", "wrn28", "wrn28_2", "resnet18"])
def test_unknown_kwarg_is_usage_error(name: str) -> None:
    with pytest.raises(UsageError, match="bad arguments"):
        create_model(name, num_classes=10, mean=IMAGENET_MEAN, std=IMAGENET_STD, no_such_option=1)


def test_depth_must_be_6n_plus_2() -> None:
    with pytest.raises(UsageError, match="6n\\+2"):
        CifarResNet(depth=21)


def _akamaster_state_dict(name: str) -> dict[str, torch.Tensor]:
    path = AKAMASTER / CHECKPOINTS[name]
    if not path.exists():
        pytest.skip(f"{path} is absent")
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    return {k.removeprefix("module."): v for k, v in state.items()}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", sorted(CHECKPOINTS))
def test_akamaster_checkpoint_loads_strict(name: str) -> None:
    net = MODELS.get(name)(num_classes=10, in_channels=3, shortcut="A")
    net.load_state_dict(_akamaster_state_dict(name), strict=True)


@pytest.mark.shared_data
def test_akamaster_resnet20_accuracy() -> None:
    state = _akamaster_state_dict("resnet20")
    if not CIFAR10_TEST.exists():
        pytest.skip(f"{CIFAR10_TEST} is absent")
    model = create_model("resnet20", num_classes=10, mean=IMAGENET_MEAN, std=IMAGENET_STD, shortcut="A")
    model.net.load_state_dict(state, strict=True)
    data = np.load(CIFAR10_TEST)
    x, y = data["x"], data["y"]
    # The file is sorted by class: take a seeded 100 per class, never a prefix.
    rng = np.random.default_rng(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), 100, replace=False) for c in range(10)])
    images = torch.from_numpy(x[idx]).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        pred = model.eval()(images).argmax(1).numpy()
    acc = float((pred == y[idx]).mean())
    # ~81% on the full 10k set (shared/data/README); 1000 images give a standard error of ~1.2 points.
    assert acc > 0.75, acc
