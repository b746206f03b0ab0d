"""Out-of-distribution sets that need no download: synthetic noise and patches of real photographs.

Specs: ``gaussian[:N]``, ``uniform[:N]``, ``photos[:N]`` with N images (default 1,000), shaped by the
requested ``(C, H, W)``. Each set is a fixed function of (N, shape, split): the generator is seeded with
a constant per set, plus one for the train split so the two splits never share images.

Labels are unused for OOD detection: ``y`` is all zeros and ``num_classes`` is 0, so nothing can mistake
an OOD set for a classification test. They have no normalization statistics (``mean``/``std`` None): the
model's own normalization applies to them.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from evalsuite.core.errors import UsageError
from evalsuite.data.base import DATASETS, DatasetOptions, ImageSet
from evalsuite.data.files import check_shape

DEFAULT_N = 1000
NOISE_SHAPE = (3, 32, 32)
PHOTOS_SHAPE = (1, 8, 8)  # the embedded digits model's input
GAUSSIAN_MEAN = 0.5
GAUSSIAN_STD = 0.25

_SEEDS = {"gaussian": 1001, "uniform": 1002, "photos": 1003}


def _count(kind: str, arg: str) -> int:
    if not arg:
        return DEFAULT_N
    try:
        n = int(arg)
    except ValueError:
        raise UsageError(f"'{kind}:N' takes a number of images, got '{kind}:{arg}'") from None
    if n <= 0:
        raise UsageError(f"'{kind}:N' needs N > 0, got {n}")
    return n


def _seed(kind: str, split: str) -> int:
    return _SEEDS[kind] + (1 if split == "train" else 0)


def _ood_set(kind: str, split: str, x: torch.Tensor) -> ImageSet:
    y = torch.zeros(x.shape[0], dtype=torch.int64)
    return ImageSet(kind, split, x, y, num_classes=0, mean=None, std=None)


@DATASETS.register("gaussian", help="OOD: Gaussian noise N(0.5, 0.25^2) clipped to [0,1]; gaussian:N images")
def load_gaussian(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
    """Float32 ``[N, C, H, W]`` i.i.d. N(0.5, 0.25^2) per pixel, clipped to [0, 1] (default (3, 32, 32)).

    Std 0.25 matches the Gaussian-noise OOD set of Hendrycks et al. (std 0.5 in [-1, 1] units); about 5%
    of pixels land on the clip at 0 or 1.
    """
    n = _count("gaussian", arg)
    c, h, w = check_shape(opts.shape, "gaussian") or NOISE_SHAPE
    g = torch.Generator().manual_seed(_seed("gaussian", split))
    x = torch.randn((n, c, h, w), generator=g).mul_(GAUSSIAN_STD).add_(GAUSSIAN_MEAN).clamp_(0.0, 1.0)
    return _ood_set("gaussian", split, x)


@DATASETS.register("uniform", help="OOD: uniform noise U[0,1] per pixel; uniform:N images")
def load_uniform(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
    """Float32 ``[N, C, H, W]`` i.i.d. U[0, 1) per pixel (default shape (3, 32, 32))."""
    n = _count("uniform", arg)
    c, h, w = check_shape(opts.shape, "uniform") or NOISE_SHAPE
    g = torch.Generator().manual_seed(_seed("uniform", split))
    return _ood_set("uniform", split, torch.rand((n, c, h, w), generator=g))


@lru_cache(maxsize=1)
def _sample_photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_images

    # china.jpg and flower.jpg, each uint8 [427, 640, 3]; they ship inside scikit-learn
    return tuple(load_sample_images().images)


@DATASETS.register("photos", help="OOD: random patches of scikit-learn's two sample photos; photos:N images")
def load_photos(arg: str, split: str, opts: DatasetOptions) -> ImageSet:
    """uint8 ``[N, C, H, W]``: seeded random patches of the two photographs shipped with scikit-learn.

    Each patch has a random height of 1/16 to 1/3 of the photo's and the requested aspect ratio, and is
    resized to H x W (bilinear, which averages when shrinking) and made grey for C = 1. Default shape
    (1, 8, 8) matches the embedded digits model.
    """
    from PIL import Image

    n = _count("photos", arg)
    c, h, w = check_shape(opts.shape, "photos") or PHOTOS_SHAPE
    photos = [Image.fromarray(p).convert("L" if c == 1 else "RGB") for p in _sample_photos()]
    rng = np.random.default_rng(_seed("photos", split))
    out = np.empty((n, h, w, c), dtype=np.uint8)
    for i in range(n):
        photo = photos[int(rng.integers(len(photos)))]
        pw_max, ph_max = photo.size
        ph = int(rng.integers(max(ph_max // 16, 2), ph_max // 3 + 1))
        pw = min(max(round(ph * w / h), 2), pw_max)
        top = int(rng.integers(0, ph_max - ph + 1))
        left = int(rng.integers(0, pw_max - pw + 1))
        patch = photo.crop((left, top, left + pw, top + ph)).resize((w, h), Image.Resampling.BILINEAR)
        out[i] = np.asarray(patch, dtype=np.uint8).reshape(h, w, c)
    # PIL gives [H, W, C]; the package works in [N, C, H, W]
    x = torch.from_numpy(np.ascontiguousarray(out.transpose(0, 3, 1, 2)))
    return _ood_set("photos", split, x)
