"""Paths and the pretrained model's settings, shared by the perf scripts (run as scripts, never imported
by the package)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
MODEL = SHARED / "models" / "akamaster_resnet_cifar10" / "resnet20-12fca82f.th"
CIFAR_TEST = SHARED / "data" / "cifar10" / "test.npz"
IMAGENET = SHARED / "data" / "imagenet_sample" / "test.npz"
# the akamaster ResNets were trained with ImageNet statistics and option-A shortcuts
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
ARCH_KWARGS: dict[str, Any] = {"shortcut": "A"}


def load_resnet20(path: str | Path) -> Any:
    """The akamaster-format ResNet-20 at ``path`` (or a checkpoint of the same layout), in eval mode."""
    from evalsuite.models.foreign import load_any_model

    loaded = load_any_model(
        path,
        arch="resnet20",
        arch_kwargs=ARCH_KWARGS,
        num_classes=10,
        input_shape=(3, 32, 32),
        mean=MEAN,
        std=STD,
    )
    return loaded.model.eval()


def resnet20_options(**kw: Any) -> Any:
    """``EvalOptions`` for the pretrained ResNet-20 on the CPU with the cache off, plus ``kw``."""
    from evalsuite.battery import EvalOptions

    return EvalOptions(
        arch="resnet20", arch_kwargs=ARCH_KWARGS, mean=MEAN, std=STD, device="cpu", cache=False, **kw
    )
