"""Training dense and randomly pruned networks (masked at init, static sparse training)."""

from evalsuite.train.loop import (
    InitSpec,
    TrainJob,
    TrainOptions,
    evaluate_accuracy,
    init_model,
    pick_device,
    run_training,
    train_model,
)
from evalsuite.train.recipe import DEFAULT_ARCH, DIGITS, PAPER_CIFAR, Recipe, default_arch, default_recipe

__all__ = [
    "DEFAULT_ARCH",
    "DIGITS",
    "PAPER_CIFAR",
    "InitSpec",
    "Recipe",
    "TrainJob",
    "TrainOptions",
    "default_arch",
    "default_recipe",
    "evaluate_accuracy",
    "init_model",
    "pick_device",
    "run_training",
    "train_model",
]
