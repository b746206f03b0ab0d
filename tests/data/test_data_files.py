"""``npz:PATH`` and ``folder:PATH``: exact round trips and one-line errors that name the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from evalsuite.core.errors import DataError, UsageError
from evalsuite.data import channel_stats, load_dataset


def _rng() -> np.random.Generator:
    return np.random.default_rng(0)


def test_npz_uint8_channels_last_round_trip(tmp_path: Path) -> None:
    x = _rng().integers(0, 256, size=(6, 5, 4, 3), dtype=np.uint8)  # [N, H, W, C]
    y = np.array([0, 2, 1, 2, 0, 4])
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (6, 3, 5, 4)
    assert torch.equal(ds.x, torch.from_numpy(x).permute(0, 3, 1, 2))
    assert int(ds.x[2, 1, 4, 3]) == int(x[2, 4, 3, 1])
    assert ds.y.dtype == torch.int64 and ds.y.tolist() == y.tolist()
    assert ds.num_classes == 5 and ds.classes is None
    # no statistics are measured on evaluation images; training measures its own set's on request
    assert ds.mean is None and ds.std is None
    ref = x.astype(np.float64) / 255.0
    mean, std = ds.training_stats()
    np.testing.assert_allclose(mean, ref.mean(axis=(0, 1, 2)), rtol=1e-9)
    np.testing.assert_allclose(std, ref.std(axis=(0, 1, 2)), rtol=1e-9)


def test_npz_float_round_trip_with_classes(tmp_path: Path) -> None:
    x = _rng().random((4, 1, 3, 3), dtype=np.float32)  # [N, C, H, W]
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 0.0, 1.0  # both ends of the range are allowed
    np.savez_compressed(
        tmp_path / "f.npz", x=x, y=np.array([1, 0, 1, 1], dtype=np.int32), classes=["a", "b", "c"]
    )
    ds = load_dataset(f"npz:{tmp_path / 'f.npz'}")
    assert ds.x.dtype == torch.float32 and torch.equal(ds.x, torch.from_numpy(x))
    assert ds.num_classes == 3 and ds.classes == ("a", "b", "c")
    assert ds.y.dtype == torch.int64


def test_npz_ignores_split(tmp_path: Path) -> None:
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 4, 4, 1), np.uint8), y=np.array([0, 1]))
    a = load_dataset(f"npz:{tmp_path / 'd.npz'}", split="train")
    b = load_dataset(f"npz:{tmp_path / 'd.npz'}", split="test")
    assert torch.equal(a.x, b.x) and a.split == "train" and b.split == "test"
    assert a.training_stats()[1] == (1.0,)  # a constant channel gets std 1, never 0


def _bad_npz_cases() -> dict[str, Callable[[Path], None]]:
    u8 = np.zeros((3, 8, 8, 3), np.uint8)
    y = np.array([0, 1, 2])

    def savez(**arrays: object) -> Callable[[Path], None]:
        return lambda p: np.savez(p, **arrays)  # type: ignore[arg-type]

    nan = np.full((3, 3, 8, 8), 0.5, np.float32)
    nan[1, 2, 3, 4] = np.nan
    return {
        "missing y": savez(x=u8),
        "missing x": savez(y=y),
        "3-d x": savez(x=np.zeros((3, 8, 8), np.uint8), y=y),
        "uint8 channels-first": savez(x=np.zeros((3, 3, 8, 8), np.uint8), y=y),
        "float channels-last": savez(x=np.zeros((3, 8, 8, 3), np.float32), y=y),
        "NaN": savez(x=nan, y=y),
        "float above 1": savez(x=np.full((3, 3, 8, 8), 1.5, np.float32), y=y),
        "float below 0": savez(x=np.full((3, 3, 8, 8), -0.1, np.float32), y=y),
        "float 0..255": savez(x=np.full((3, 3, 8, 8), 255.0, np.float32), y=y),
        "int16 x": savez(x=np.zeros((3, 8, 8, 3), np.int16), y=y),
        "empty": savez(x=np.zeros((0, 8, 8, 3), np.uint8), y=np.zeros(0, np.int64)),
        "y too short": savez(x=u8, y=y[:2]),
        "y 2-d": savez(x=u8, y=y[:, None]),
        "y float": savez(x=u8, y=y.astype(np.float32)),
        "y negative": savez(x=u8, y=np.array([0, -1, 2])),
        "too few class names": savez(x=u8, y=y, classes=["a", "b"]),
        "pickled object array": savez(x=u8, y=np.array([0, "a", None], dtype=object)),
        "not a zip": lambda p: p.write_bytes(b"garbage, not an archive"),
        "single npy": lambda p: p.write_bytes(_npy_bytes(u8)),
    }


def _npy_bytes(a: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@pytest.mark.parametrize("case", list(_bad_npz_cases()))
def test_bad_npz_is_one_line_data_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / "bad.npz"
    _bad_npz_cases()[case](path)
    with pytest.raises(DataError) as err:
        load_dataset(f"npz:{path}")
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg


def test_npz_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(f"npz:{tmp_path / 'absent.npz'}")


def test_npz_needs_path() -> None:
    with pytest.raises(UsageError):
        load_dataset("npz")


def _write_folder(root: Path, sizes: dict[str, list[tuple[int, int]]]) -> dict[str, list[np.ndarray]]:
    """PATH/CLASS/i.png with random RGB pixels; ``sizes`` gives (W, H) per image."""
    rng = _rng()
    out: dict[str, list[np.ndarray]] = {}
    for cls, whs in sizes.items():
        (root / cls).mkdir(parents=True)
        out[cls] = []
        for i, (w, h) in enumerate(whs):
            arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"{i}.png")
            out[cls].append(arr)
    return out


def test_folder_round_trip(tmp_path: Path) -> None:
    # class folders are sorted by name, so "ant" is 0 although written second
    ref = _write_folder(tmp_path, {"bee": [(5, 4)] * 2, "ant": [(5, 4)] * 3})
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.classes == ("ant", "bee") and ds.num_classes == 2
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (5, 3, 4, 5)
    assert ds.y.tolist() == [0, 0, 0, 1, 1]
    expected = np.stack(ref["ant"] + ref["bee"]).transpose(0, 3, 1, 2)
    assert torch.equal(ds.x, torch.from_numpy(expected))  # PNG is lossless
    assert ds.mean is None and ds.training_stats() == channel_stats(ds.x)


def test_folder_unequal_sizes(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"a": [(5, 4), (6, 4)], "b": [(5, 4)]})
    with pytest.raises(DataError, match="4x6 but earlier images are 4x5") as err:
        load_dataset(f"folder:{tmp_path}")
    assert str(tmp_path) in str(err.value)


def test_folder_resize_and_grey(tmp_path: Path) -> None:
    _write_folder(tmp_path, {"a": [(5, 4), (9, 7)], "b": [(12, 12)]})
    rgb = load_dataset(f"folder:{tmp_path}", shape=(3, 6, 8))
    assert rgb.x.shape == (3, 3, 6, 8) and rgb.x.dtype == torch.uint8
    grey = load_dataset(f"folder:{tmp_path}", shape=(1, 6, 8))
    assert grey.x.shape == (3, 1, 6, 8) and len(grey.training_stats()[0]) == 1


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_dataset(f"folder:{tmp_path / 'absent'}")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    _write_folder(tmp_path / "broken", {"a": [(5, 4)]})
    (tmp_path / "broken" / "a" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"bad\.png"):
        load_dataset(f"folder:{tmp_path / 'broken'}")
    with pytest.raises(UsageError):
        load_dataset(f"folder:{tmp_path / 'broken'}", shape=(2, 4, 4))
