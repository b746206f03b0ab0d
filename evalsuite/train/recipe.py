"""Training recipes as frozen dataclasses; the defaults per dataset."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from evalsuite.core.errors import UsageError


@dataclass(frozen=True)
class Recipe:
    """SGD with step decay. ``milestones`` are epochs where lr is multiplied by ``gamma``.

    ``augment``: ``crop_flip`` (random crop after zero-padding by ``crop_padding`` and horizontal flip,
    done on whole batches on the device) or ``none``.
    """

    epochs: int = 160
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    nesterov: bool = False
    milestones: tuple[int, ...] = (80, 120)
    gamma: float = 0.1
    augment: str = "crop_flip"
    crop_padding: int = 4
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UsageError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise UsageError(f"batch size must be >= 2, got {self.batch_size}")
        if self.lr <= 0:
            raise UsageError(f"lr must be positive, got {self.lr}")
        if self.weight_decay < 0 or not (0 <= self.momentum < 1):
            raise UsageError("weight decay must be >= 0 and momentum in [0, 1)")
        if self.augment not in ("crop_flip", "none"):
            raise UsageError(f"augment must be 'crop_flip' or 'none', got {self.augment!r}")
        if any(int(m) < 1 for m in self.milestones):
            raise UsageError(f"milestones must be epochs >= 1, got {list(self.milestones)}")

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain data, with milestones as a list and the optimizer and schedule named."""
        d = asdict(self)
        d["milestones"] = list(self.milestones)
        d["optimizer"] = "sgd"
        d["schedule"] = "multistep"
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Recipe:
        """A Recipe from ``to_dict`` output; unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in names}
        if "milestones" in kw:
            kw["milestones"] = tuple(int(m) for m in kw["milestones"])
        return cls(**kw)

    def with_overrides(self, **overrides: Any) -> Recipe:
        """A copy with the given fields replaced; None values are ignored."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


RECIPE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Recipe))
"""Every hyperparameter a recipe has (the names of ``train`` flags, suite keys and overrides)."""

# The paper's CIFAR recipe (Liu et al. 2022): SGD 0.9, lr 0.1, wd 5e-4, batch 128, 160 epochs, x0.1 at 80/120.
PAPER_CIFAR = Recipe()

# Seconds on a CPU: the embedded digits set is 1,347 training images of 8x8.
DIGITS = Recipe(
    epochs=30, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4, milestones=(20, 26), augment="none"
)

DEFAULT_RECIPES: dict[str, Recipe] = {"digits": DIGITS}
DEFAULT_ARCH: dict[str, str] = {
    "digits": "smallcnn",
    "cifar10": "resnet20",
    "cifar100": "resnet32",
    "svhn": "resnet20",
}


def default_recipe(dataset: str) -> Recipe:
    """The default recipe of ``dataset``; the paper's CIFAR recipe when it has none."""
    return DEFAULT_RECIPES.get(dataset, PAPER_CIFAR)


def scaled_milestones(milestones: Sequence[int], from_epochs: int, to_epochs: int) -> tuple[int, ...]:
    """The lr milestones of a ``from_epochs`` schedule moved to a ``to_epochs`` run, keeping their shape.

    Each milestone m becomes round(m * to / from), at least 1: the paper's 80/120 of 160 epochs become
    1/2 at 2 epochs and 20/30 at 40. ``bench --epochs`` and ``train --epochs`` (without --milestones)
    both use this.
    """
    return tuple(max(1, round(m * to_epochs / from_epochs)) for m in milestones)


def resolve_recipe(dataset: str, overrides: Mapping[str, Any]) -> tuple[Recipe, str | None]:
    """The dataset's default recipe with ``overrides`` (None values ignored), and a note when it moved
    the milestones: an ``epochs`` override without ``milestones`` scales the default milestones with it,
    so a short run still decays its lr instead of keeping milestones it never reaches."""
    base = default_recipe(dataset)
    recipe = base.with_overrides(**overrides)
    if overrides.get("milestones") is not None or recipe.epochs == base.epochs:
        return recipe, None
    moved = scaled_milestones(base.milestones, base.epochs, recipe.epochs)
    note = (
        f"--epochs {recipe.epochs}: lr milestones scaled from {list(base.milestones)} of {base.epochs} "
        f"epochs to {list(moved)} (pass --milestones to choose them)"
    )
    return replace(recipe, milestones=moved), note


def default_arch(dataset: str) -> str:
    """The default architecture of ``dataset``; UsageError when it has none."""
    if dataset not in DEFAULT_ARCH:
        raise UsageError(f"no default model for dataset {dataset!r}; pass --arch")
    return DEFAULT_ARCH[dataset]
