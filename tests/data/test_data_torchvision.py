"""CIFAR-10/100 and SVHN through the real torchvision classes, on tiny files in the real on-disk formats.

Only the md5 comparison is patched (``torchvision.datasets.utils.check_md5``): file-existence checks,
pickle/.mat parsing, the SVHN 10 -> 0 relabelling and all of our conversion run for real.
"""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
import torchvision.datasets.utils as tv_utils

from evalsuite.core.errors import DataError, UsageError
from evalsuite.data import (
    CIFAR10_MEAN,
    CIFAR100_MEAN,
    DATA_ROOT_ENV,
    SVHN_STD,
    data_root,
    load_dataset,
)
from evalsuite.data.base import DatasetOptions


class _Py2Pickler(pickle._Pickler):  # type: ignore[misc,name-defined]
    """Writes str and bytes as Python 2 strings, as the CIFAR pickles (made by Python 2) hold them.

    Loaded with ``encoding='bytes'`` the keys come back as ``b'data'``, with ``'latin1'`` (torchvision) as
    ``'data'``, exactly as with the published files.
    """

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def _binstring(self, data: bytes) -> None:
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)

    def _save_str(self, obj: str) -> None:
        self._binstring(obj.encode("latin1"))
        self.memoize(obj)

    def _save_bytes(self, obj: bytes) -> None:
        self._binstring(obj)
        self.memoize(obj)

    dispatch[str] = _save_str
    dispatch[bytes] = _save_bytes


def _write_py2_pickle(path: Path, obj: dict[str, object]) -> None:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    path.write_bytes(buf.getvalue())


def _rows(rng: np.random.Generator, n: int) -> np.ndarray:
    """CIFAR rows: uint8 ``[n, 3072]``, 1024 red then 1024 green then 1024 blue values, row-major 32x32."""
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


@pytest.fixture
def md5_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accept any md5: the fixture files are not the published ones. Existence is still checked."""
    monkeypatch.setattr(tv_utils, "check_md5", lambda fpath, md5, **kwargs: True)


def write_cifar10(root: Path, per_batch: int = 4, n_test: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(10)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    train_x, train_y = [], []
    for b in range(1, 6):
        data, labels = _rows(rng, per_batch), rng.integers(0, 10, per_batch).tolist()
        _write_py2_pickle(
            folder / f"data_batch_{b}",
            {
                "batch_label": f"training batch {b} of 5",
                "labels": labels,
                "data": data,
                "filenames": [f"img_{b}_{i}.png" for i in range(per_batch)],
            },
        )
        train_x.append(data)
        train_y += labels
    test_x, test_y = _rows(rng, n_test), rng.integers(0, 10, n_test).tolist()
    _write_py2_pickle(
        folder / "test_batch",
        {
            "batch_label": "testing batch 1 of 1",
            "labels": test_y,
            "data": test_x,
            "filenames": ["t.png"] * n_test,
        },
    )
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _write_py2_pickle(
        folder / "batches.meta", {"num_cases_per_batch": 10000, "label_names": names, "num_vis": 3072}
    )
    return {
        "train_x": np.concatenate(train_x),
        "train_y": np.array(train_y),
        "test_x": test_x,
        "test_y": np.array(test_y),
    }


def write_cifar100(root: Path, n_train: int = 12, n_test: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(100)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    out: dict[str, np.ndarray] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        data, fine = _rows(rng, n), rng.integers(0, 100, n).tolist()
        _write_py2_pickle(
            folder / split,
            {
                "filenames": [f"{split}_{i}.png" for i in range(n)],
                "batch_label": f"{split}ing batch 1 of 1",
                "fine_labels": fine,
                "coarse_labels": [f // 5 for f in fine],
                "data": data,
            },
        )
        out[f"{split}_x"], out[f"{split}_y"] = data, np.array(fine)
    fine_names = [f"fine_{i:02d}" for i in range(100)]
    _write_py2_pickle(
        folder / "meta",
        {"fine_label_names": fine_names, "coarse_label_names": [f"coarse_{i}" for i in range(20)]},
    )
    return out


def write_svhn(root: Path, split: str = "test", n: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """``{split}_32x32.mat`` as published: X uint8 [32, 32, 3, N], y double [N, 1] with 10 for digit 0."""
    rng = np.random.default_rng(7)
    root.mkdir(parents=True, exist_ok=True)
    X = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
    digits = np.array([0, 1, 2, 9, 0, 5, 3][:n] + [4] * max(0, n - 7))
    y = np.where(digits == 0, 10, digits).astype(np.float64)[:, None]
    scipy.io.savemat(root / f"{split}_32x32.mat", {"X": X, "y": y})
    return X, digits


# --- the fixtures themselves look like the published files -----------------------------------------------


def test_fixture_pickles_read_like_the_published_ones(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        entry = pickle.load(f, encoding="bytes")  # the loading code on the CIFAR web page
    assert set(entry) == {b"batch_label", b"labels", b"data", b"filenames"}
    assert entry[b"data"].dtype == np.uint8 and entry[b"data"].shape == (4, 3072)


# --- round trips ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_round_trip(tmp_path: Path, md5_ok: None, split: str) -> None:
    ref = write_cifar10(tmp_path)
    ds = load_dataset("cifar10", split=split, root=tmp_path)
    rows, labels = ref[f"{split}_x"], ref[f"{split}_y"]
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (len(rows), 3, 32, 32)
    assert torch.equal(ds.x, torch.from_numpy(rows.reshape(-1, 3, 32, 32)))
    # one pixel by hand: image 1, green channel, row 5, column 7
    assert int(ds.x[1, 1, 5, 7]) == int(rows[1, 1024 + 5 * 32 + 7])
    assert ds.y.dtype == torch.int64 and ds.y.tolist() == labels.tolist()
    assert ds.num_classes == 10 and ds.classes is not None and ds.classes[0] == "airplane"
    assert ds.mean == CIFAR10_MEAN and ds.name == "cifar10" and ds.split == split
    assert ds.images().dtype == torch.float32 and float(ds.images().max()) <= 1.0


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar100_round_trip(tmp_path: Path, md5_ok: None, split: str) -> None:
    ref = write_cifar100(tmp_path)
    ds = load_dataset("cifar100", split=split, root=tmp_path)
    assert torch.equal(ds.x, torch.from_numpy(ref[f"{split}_x"].reshape(-1, 3, 32, 32)))
    assert ds.y.tolist() == ref[f"{split}_y"].tolist()  # fine labels, not coarse
    assert ds.num_classes == 100 and ds.classes is not None and ds.classes[42] == "fine_42"
    assert ds.mean == CIFAR100_MEAN


@pytest.mark.parametrize("split", ["train", "test"])
def test_svhn_round_trip(tmp_path: Path, md5_ok: None, split: str) -> None:
    X, digits = write_svhn(tmp_path, split)
    ds = load_dataset("svhn", split=split, root=tmp_path)
    assert ds.x.dtype == torch.uint8 and ds.x.shape == (7, 3, 32, 32) and ds.x.is_contiguous()
    assert torch.equal(ds.x, torch.from_numpy(X).permute(3, 2, 0, 1))
    assert int(ds.x[3, 2, 4, 9]) == int(X[4, 9, 2, 3])  # [n, c, h, w] <- X[h, w, c, n]
    assert ds.y.tolist() == digits.tolist()  # the file's 10 comes back as digit 0
    assert ds.num_classes == 10 and ds.std == SVHN_STD


# --- failures ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"), [("cifar10", "cifar-10-batches-py"), ("svhn", "test_32x32.mat")]
)
def test_missing_without_download_names_the_folder(tmp_path: Path, spec: str, expected: str) -> None:
    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as err:
        load_dataset(spec, root=root, download=False)
    msg = str(err.value)
    assert str(root) in msg and expected in msg and "--download" in msg and "\n" not in msg
    assert not root.exists()  # nothing was fetched or created


def test_cifar100_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cifar100 not found .*cifar-100-python"):
        load_dataset("cifar100", root=tmp_path)


def test_incomplete_cifar_lists_missing_file(tmp_path: Path, md5_ok: None) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="missing cifar-10-batches-py/data_batch_3"):
        load_dataset("cifar10", root=tmp_path)


def test_md5_mismatch_is_corruption(tmp_path: Path) -> None:
    write_cifar10(tmp_path)  # real md5 check: our fixture bytes are not the published ones
    with pytest.raises(DataError, match=r"corrupted.*checksum mismatch") as err:
        load_dataset("cifar10", root=tmp_path)
    assert "\n" not in str(err.value)


def test_unreadable_pickle_is_corruption(tmp_path: Path, md5_ok: None) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(b"not a pickle at all")
    with pytest.raises(DataError, match=r"cifar10 files under .* are corrupted") as err:
        load_dataset("cifar10", root=tmp_path)
    assert "\n" not in str(err.value)


def test_unreadable_mat_is_corruption(tmp_path: Path, md5_ok: None) -> None:
    (tmp_path / "test_32x32.mat").write_bytes(b"\x00" * 300)
    with pytest.raises(DataError, match=r"svhn files under .* corrupted"):
        load_dataset("svhn", root=tmp_path)


def test_argument_rejected() -> None:
    with pytest.raises(UsageError):
        load_dataset("cifar10:foo")


def test_data_root_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path / "env"))
    assert data_root(DatasetOptions()) == tmp_path / "env"
    assert data_root(DatasetOptions(root=tmp_path / "flag")) == tmp_path / "flag"
    monkeypatch.delenv(DATA_ROOT_ENV)
    assert data_root(DatasetOptions()) == Path("~/.cache/evalsuite/data").expanduser()


def test_env_root_is_used(tmp_path: Path, md5_ok: None, monkeypatch: pytest.MonkeyPatch) -> None:
    write_svhn(tmp_path)
    monkeypatch.setenv(DATA_ROOT_ENV, str(tmp_path))
    assert len(load_dataset("svhn")) == 7
