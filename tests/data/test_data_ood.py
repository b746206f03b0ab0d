"""Offline OOD sets: shapes, ranges, determinism, and that photos look like photos rather than noise."""

from __future__ import annotations

import pytest
import torch

from evalsuite.core.errors import UsageError
from evalsuite.data import ImageSet, load_dataset


def _neighbour_correlation(ds: ImageSet) -> float:
    """Correlation of horizontally adjacent pixels: near 1 for photographs, near 0 for i.i.d. noise."""
    x = ds.images()
    left, right = x[..., :-1].flatten(), x[..., 1:].flatten()
    return float(torch.corrcoef(torch.stack([left, right]))[0, 1])


@pytest.mark.parametrize("kind", ["gaussian", "uniform"])
def test_noise_defaults(kind: str) -> None:
    ds = load_dataset(kind)
    assert ds.x.shape == (1000, 3, 32, 32) and ds.x.dtype == torch.float32
    assert float(ds.x.min()) >= 0.0 and float(ds.x.max()) <= 1.0
    assert ds.num_classes == 0 and ds.y.dtype == torch.int64 and not ds.y.any()
    assert abs(float(ds.x.mean()) - 0.5) < 0.01
    assert abs(_neighbour_correlation(ds)) < 0.02


def test_noise_distributions() -> None:
    g = load_dataset("gaussian:200").x
    u = load_dataset("uniform:200").x
    # clipped N(0.5, 0.25^2): std just under 0.25, ~2.3% of pixels on each clip
    assert 0.23 < float(g.std()) < 0.25
    assert 0.015 < float((g == 0).float().mean()) < 0.03
    assert abs(float(u.std()) - 12**-0.5) < 0.005 and not (u == 0).any()


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "photos"])
def test_deterministic_and_split_dependent(kind: str) -> None:
    a = load_dataset(f"{kind}:50")
    b = load_dataset(f"{kind}:50")
    train = load_dataset(f"{kind}:50", split="train")
    assert torch.equal(a.x, b.x)
    assert not torch.equal(a.x, train.x)
    assert torch.equal(load_dataset(f"{kind}:10").x, a.x[:10])  # N only truncates the same stream


@pytest.mark.parametrize("kind", ["gaussian", "uniform", "photos"])
def test_count_and_shape(kind: str) -> None:
    ds = load_dataset(f"{kind}:37", shape=(1, 5, 7))
    assert ds.x.shape == (37, 1, 5, 7) and len(ds.y) == 37 and ds.mean is None


def test_photos_defaults_match_digits() -> None:
    ds = load_dataset("photos")
    digits = load_dataset("digits")
    assert ds.x.shape == (1000, *digits.input_shape) and ds.x.dtype == torch.uint8
    assert ds.num_classes == 0 and not ds.y.any()
    imgs = ds.images()
    assert float(imgs.min()) >= 0.0 and float(imgs.max()) <= 1.0
    assert float(imgs.std()) > 0.1  # not blank
    assert len({bytes(p.numpy().tobytes()) for p in ds.x}) > 990  # patches differ


def test_photos_look_like_photos() -> None:
    photos = load_dataset("photos:300", shape=(3, 32, 32))
    assert photos.x.shape == (300, 3, 32, 32)
    assert _neighbour_correlation(photos) > 0.8
    # colour survives: channels of real photos differ, a grey copy would make them equal
    assert not torch.equal(photos.x[:, 0], photos.x[:, 1])


@pytest.mark.parametrize("spec", ["gaussian:abc", "uniform:0", "photos:-3"])
def test_bad_count(spec: str) -> None:
    with pytest.raises(UsageError):
        load_dataset(spec)


def test_bad_shape() -> None:
    with pytest.raises(UsageError):
        load_dataset("gaussian:4", shape=(2, 8, 8))
    with pytest.raises(UsageError):
        load_dataset("photos:4", shape=(3, 0, 8))
