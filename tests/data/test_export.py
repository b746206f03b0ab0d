"""``export_npz``: torchvision sets (tiny files in their on-disk formats) to ``.npz``, back via ``npz:``."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite.core.errors import DataError, UsageError
from evalsuite.data import load_dataset
from evalsuite.data.export import export_inputs, export_npz, image_set_arrays
from tests.data.test_data_torchvision import md5_ok, write_cifar10, write_cifar100, write_svhn

__all__ = ["md5_ok"]  # the fixture, imported so that this module's tests can request it


def _same_set(spec: str, split: str, out: Path, root: Path | None) -> None:
    src = load_dataset(spec, split, root=root)
    back = load_dataset(f"npz:{out}", "test")
    assert back.x.dtype == src.x.dtype and torch.equal(back.x, src.x)
    assert back.y.dtype == torch.int64 and torch.equal(back.y, src.y)
    assert back.classes == src.classes
    if src.classes is not None:
        assert back.num_classes == src.num_classes
    else:  # an OOD set has no classes (num_classes 0); npz: counts max(y) + 1
        assert back.num_classes == int(src.y.max()) + 1


@pytest.mark.parametrize("split", ["train", "test"])
def test_cifar10_exports_and_reads_back(tmp_path: Path, md5_ok: None, split: str) -> None:
    ref = write_cifar10(tmp_path / "root")
    out = export_npz("cifar10", split, tmp_path / "c10.npz", root=tmp_path / "root")
    assert out == tmp_path / "c10.npz"
    _same_set("cifar10", split, out, tmp_path / "root")
    with np.load(out) as f:
        assert f["x"].shape == (len(ref[f"{split}_x"]), 32, 32, 3) and f["x"].dtype == np.uint8
        # channels-last on disk: pixel (row 5, col 7) green of image 1 is the CIFAR row's 1024 + 5*32 + 7
        assert int(f["x"][1, 5, 7, 1]) == int(ref[f"{split}_x"][1, 1024 + 5 * 32 + 7])
        assert f["y"].tolist() == ref[f"{split}_y"].tolist()
        assert f["classes"][0] == "airplane"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_cifar100_and_svhn_export(tmp_path: Path, md5_ok: None) -> None:
    root = tmp_path / "root"
    write_cifar100(root)
    _, digits = write_svhn(root, "test")
    _same_set("cifar100", "test", export_npz("cifar100", "test", tmp_path / "c100.npz", root=root), root)
    out = export_npz("far=svhn", "test", tmp_path / "svhn.npz", root=root)  # a named spec exports its set
    _same_set("svhn", "test", out, root)
    assert load_dataset(f"npz:{out}").y.tolist() == digits.tolist()  # digit 0, not the file's 10


def test_float_and_classless_sets(tmp_path: Path) -> None:
    _same_set("digits", "test", export_npz("digits", "test", tmp_path / "d.npz"), None)
    with np.load(tmp_path / "d.npz") as f:
        assert f["x"].dtype == np.float32 and f["x"].shape[1] == 1  # float stays channels-first
    photos = export_npz("photos:6", "test", tmp_path / "p.npz")
    with np.load(photos) as f:
        assert "classes" not in f.files
    _same_set("photos:6", "test", photos, None)


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_never_writes_over_or_into_its_input(tmp_path: Path, md5_ok: None) -> None:
    root = tmp_path / "root"
    write_cifar10(root)
    write_svhn(root, "test")
    mat = root / "test_32x32.mat"
    before = _digest(mat)
    with pytest.raises(UsageError, match="an input of this command"):
        export_npz("svhn", "test", mat.with_suffix(".npz").with_name("test_32x32.mat"), root=root)
    with pytest.raises(UsageError, match="inside the input folder"):
        export_npz("cifar10", "test", root / "cifar-10-batches-py" / "x.npz", root=root)
    src = export_npz("svhn", "test", tmp_path / "s.npz", root=root)
    src_digest = _digest(src)
    with pytest.raises(UsageError, match="an input of this command"):
        export_npz(f"npz:{src}", "test", src)
    with pytest.raises(UsageError, match=r"must be a \.npz file name"):
        export_npz("svhn", "test", tmp_path / "s.json", root=root)
    assert _digest(mat) == before and _digest(src) == src_digest
    assert not (tmp_path / "s.json").exists()
    # another npz beside it is fine, and so is replacing an earlier export
    export_npz(f"npz:{src}", "test", tmp_path / "copy.npz")
    export_npz(f"npz:{tmp_path / 'copy.npz'}", "test", tmp_path / "s.npz")
    _same_set(f"npz:{src}", "test", tmp_path / "copy.npz", None)


def test_missing_dataset_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="cifar100 not found"):
        export_npz("cifar100", "test", tmp_path / "c.npz", root=tmp_path / "empty")
    assert not (tmp_path / "c.npz").exists()


def test_export_inputs(tmp_path: Path) -> None:
    assert export_inputs("cifar10", "train", tmp_path) == [tmp_path / "cifar-10-batches-py"]
    assert export_inputs("svhn", "train", tmp_path) == [tmp_path / "train_32x32.mat"]
    assert export_inputs("x=npz:a/b.npz", "test") == [Path("a/b.npz")]
    assert export_inputs("digits", "test") == []


def test_image_set_arrays_shapes() -> None:
    arrays = image_set_arrays(load_dataset("photos:3", "test", shape=(3, 5, 4)))
    assert arrays["x"].shape == (3, 5, 4, 3) and arrays["y"].dtype == np.int64
