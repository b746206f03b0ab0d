"""The model zoo (every model takes [0, 1] images and normalizes inside) and checkpoints."""

from evalsuite.models import cifar_resnet, imagenet, small, vgg, wrn  # noqa: F401  (register)
from evalsuite.models.normalize import Normalize, NormalizedModel
from evalsuite.models.zoo import MODELS, create_model

__all__ = ["MODELS", "Normalize", "NormalizedModel", "create_model"]
