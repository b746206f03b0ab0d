"""Corruption sets: the official layout from tiny fixtures (never downloaded), and generated corruptions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite.core.errors import DataError, EvalsuiteError, UsageError
from evalsuite.data import CIFAR10_MEAN, CIFAR100_STD, ImageSet, is_registered_name, load_dataset
from evalsuite.data import corruptions as corr
from evalsuite.data.corruptions import (
    ALL_CORRUPTIONS,
    BENCHMARK_CORRUPTIONS,
    META_FILE,
    corrupt_images,
    corrupt_set,
    load_corruption_sets,
    resolve_corruptions,
    resolve_severities,
    write_corruption_folder,
)

N = 3  # images per severity in the fixtures


def _image(c: int, s: int, i: int) -> np.ndarray:
    """A fixture image that says which corruption, severity and image it is."""
    img = np.zeros((32, 32, 3), dtype=np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = c, s, i
    img[0, 0, 0] = 200  # not constant along H, W: catches a transposed read
    return img


def write_official(folder: Path, names: tuple[str, ...] = ("fog", "snow"), num_classes: int = 10) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for c, name in enumerate(names):
        arr = np.stack([_image(c, s, i) for s in range(1, 6) for i in range(N)])
        np.save(folder / f"{name}.npy", arr)
    # labels differ between severity blocks here (not in the real files) so a wrong block shows
    np.save(folder / "labels.npy", (np.arange(5 * N) % num_classes).astype(np.uint8))
    return folder


def test_reads_the_official_layout(tmp_path: Path) -> None:
    root = write_official(tmp_path / "c10c")
    sets = load_corruption_sets(f"cifar10c:{root}", ["snow", "fog"], [5, 2])
    assert [(s.corruption, s.severity) for s in sets] == [("snow", 2), ("snow", 5), ("fog", 2), ("fog", 5)]
    snow5 = sets[1]
    assert snow5.name == f"cifar10c:{root}#snow:5" == snow5.data.name
    x = snow5.data.x
    assert x.dtype == torch.uint8 and x.shape == (N, 3, 32, 32)
    want = torch.from_numpy(np.stack([_image(1, 5, i) for i in range(N)])).permute(0, 3, 1, 2)
    assert torch.equal(x, want)
    assert snow5.data.y.tolist() == [12 % 10, 13 % 10, 14 % 10] and snow5.data.y.dtype == torch.int64
    assert snow5.data.num_classes == 10 and snow5.data.mean == CIFAR10_MEAN and snow5.data.split == "test"
    assert snow5.data.images().max() <= 1.0


def test_files_are_memory_mapped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_official(tmp_path / "c10c")
    seen: list[tuple[object, bool]] = []
    real = np.load

    def spy(*args: object, **kwargs: object) -> object:
        out = real(*args, **kwargs)  # type: ignore[call-overload]
        seen.append((kwargs.get("mmap_mode"), isinstance(out, np.memmap)))
        return out

    monkeypatch.setattr(np, "load", spy)
    sets = load_corruption_sets(f"cifar10c:{root}", "fog", [1])
    assert seen and all(mode == "c" and mapped for mode, mapped in seen)
    before = (root / "fog.npy").read_bytes()
    sets[0].data.x[0, 0, 0, 0] = 7  # copy-on-write: the file never changes
    assert (root / "fog.npy").read_bytes() == before


def test_root_may_hold_the_extracted_folder_and_data_root_is_the_default(tmp_path: Path) -> None:
    write_official(tmp_path / "CIFAR-100-C", num_classes=100)
    via_parent = load_corruption_sets(f"cifar100c:{tmp_path}", "fog", [3])
    via_root = load_corruption_sets("cifar100c", "fog", [3], root=tmp_path)
    assert torch.equal(via_parent[0].data.x, via_root[0].data.x)
    assert via_root[0].data.std == CIFAR100_STD and via_root[0].data.num_classes == 100
    assert via_root[0].name == "cifar100c#fog:3"


def test_download_fetches_the_official_tar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets.utils as tv_utils

    calls: list[dict[str, object]] = []

    def fake(url: str, download_root: str, **kwargs: object) -> None:
        calls.append({"url": url, "root": download_root, **kwargs})
        write_official(Path(download_root) / "CIFAR-10-C")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", fake)
    with pytest.raises(DataError, match="pass --download") as err:
        load_corruption_sets(f"cifar10c:{tmp_path}", "fog")
    assert "\n" not in str(err.value) and not calls
    sets = load_corruption_sets(f"cifar10c:{tmp_path}", "fog", download=True)
    assert len(sets) == 5 and len(calls) == 1
    assert calls[0]["url"] == "https://zenodo.org/records/2535967/files/CIFAR-10-C.tar?download=1"
    assert calls[0]["md5"] == "56bf5dcef84df0e2308c6dcbcbbd8499" and calls[0]["filename"] == "CIFAR-10-C.tar"
    assert calls[0]["root"] == str(tmp_path)
    load_corruption_sets(f"cifar10c:{tmp_path}", "fog", download=True)
    assert len(calls) == 1  # present: not fetched again
    assert corr.CIFAR100C.md5 == "11f0ed0f1191edbf9fa23466ae6021d3"

    def failing(url: str, download_root: str, **kwargs: object) -> None:
        raise RuntimeError("File not found or corrupted.")

    monkeypatch.setattr(tv_utils, "download_and_extract_archive", failing)
    with pytest.raises(DataError, match="could not be downloaded"):
        load_corruption_sets(f"cifar100c:{tmp_path / 'other'}", download=True)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda r: np.save(r / "labels.npy", np.zeros(7, dtype=np.int64)), "5 severities"),
        (lambda r: np.save(r / "labels.npy", np.full(5 * N, 10)), "outside 0..9"),
        (lambda r: np.save(r / "labels.npy", np.zeros(5 * N, dtype=np.float32)), "integer"),
        (lambda r: np.save(r / "fog.npy", np.zeros((5 * N, 32, 32, 3), dtype=np.float32)), "uint8"),
        (lambda r: np.save(r / "fog.npy", np.zeros((4 * N, 32, 32, 3), dtype=np.uint8)), "match labels"),
        (lambda r: (r / "fog.npy").write_bytes((r / "fog.npy").read_bytes()[:500]), "not a readable"),
        (lambda r: (r / "fog.npy").unlink(), "lacks fog.npy"),
        (lambda r: (r / META_FILE).write_text("{"), "unreadable"),
    ],
)
def test_damaged_folders_give_one_line(tmp_path: Path, damage: object, match: str) -> None:
    root = write_official(tmp_path / "c10c")
    damage(root)  # type: ignore[operator]
    with pytest.raises(DataError, match=match) as err:
        load_corruption_sets(f"cifar10c:{root}", "fog")
    assert "\n" not in str(err.value)


def test_selection_and_specs(tmp_path: Path) -> None:
    root = write_official(tmp_path / "c10c")
    one = load_dataset(f"cifar10c:{root}#fog:3")
    assert isinstance(one, ImageSet) and len(one) == N and one.name == f"cifar10c:{root}#fog:3"
    many = load_dataset(f"cifar10c:{root}#fog,snow")
    assert len(many) == 2 * 5 * N and many.subset == {
        "corruptions": ["fog", "snow"],
        "severities": [1, 2, 3, 4, 5],
    }
    with pytest.raises(UsageError, match="19 corruptions x 5 severities"):
        load_dataset(f"cifar10c:{root}")
    with pytest.raises(UsageError, match="already selects corruptions"):
        load_corruption_sets(f"cifar10c:{root}#fog", corruptions="snow")
    with pytest.raises(UsageError, match="only a test split"):
        load_corruption_sets(f"cifar10c:{root}", "fog", split="train")
    with pytest.raises(DataError, match=r"lacks gaussian_noise\.npy"):
        load_corruption_sets(f"cifar10c:{root}")  # default: the 15 benchmark corruptions
    with pytest.raises(UsageError, match="not a corruption spec"):
        load_corruption_sets("cifar10")
    assert resolve_corruptions(None) == BENCHMARK_CORRUPTIONS and len(BENCHMARK_CORRUPTIONS) == 15
    assert resolve_corruptions("all") == ALL_CORRUPTIONS and len(ALL_CORRUPTIONS) == 19
    assert resolve_corruptions("snow,noise") == ("gaussian_noise", "shot_noise", "impulse_noise", "snow")
    assert resolve_corruptions(["extra"]) == ("speckle_noise", "gaussian_blur", "spatter", "saturate")
    with pytest.raises(UsageError, match="did you mean gaussian_noise"):
        resolve_corruptions("gausian_noise")
    assert resolve_severities("5,1,1") == (1, 5) and resolve_severities(None) == (1, 2, 3, 4, 5)
    for bad in ("0", "6", "x", [2.5], [True]):
        with pytest.raises(UsageError, match="severity"):
            resolve_severities(bad)  # type: ignore[arg-type]
    for spec in ("cifar10c", "cifar100c", "corrupt"):
        assert not is_registered_name(spec)


# ------------------------------------------------------------------------------------------------ generated


@pytest.fixture(scope="module")
def digits6() -> ImageSet:
    return load_dataset("digits").select(torch.arange(6))


def test_generated_corruptions_are_seeded_per_image(digits6: ImageSet) -> None:
    state = np.random.get_state()
    a = corrupt_set(digits6, "gaussian_noise", 3, seed=1, chunk=4)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # the caller's global state is restored
    b = corrupt_set(digits6, "gaussian_noise", 3, seed=1, chunk=100)
    assert torch.equal(a.x, b.x)  # chunking does not matter
    tail = corrupt_images(digits6.x[4:], "gaussian_noise", 3, seed=1, indices=[4, 5])
    assert torch.equal(a.x[4:], tail)  # nor do the other images
    assert not torch.equal(a.x, corrupt_set(digits6, "gaussian_noise", 3, seed=2).x)
    assert not torch.equal(a.x, corrupt_set(digits6, "gaussian_noise", 4, seed=1).x)
    imp = [corrupt_set(digits6, "impulse_noise", 5, seed=0).x for _ in range(2)]
    assert torch.equal(imp[0], imp[1])  # scikit-image's own rng is seeded too
    assert a.x.dtype == torch.uint8 and a.x.shape == digits6.x.shape
    assert torch.equal(a.y, digits6.y) and a.mean == digits6.mean and a.num_classes == 10


@pytest.mark.parametrize("corruption", ALL_CORRUPTIONS)
def test_every_corruption_runs_on_rgb_and_small_grey_images(corruption: str) -> None:
    g = torch.Generator().manual_seed(0)
    rgb = torch.randint(0, 256, (2, 3, 32, 40), dtype=torch.uint8, generator=g)
    grey = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8, generator=g)
    for x in (rgb, grey):
        out = corrupt_images(x, corruption, 5)
        assert out.dtype == torch.uint8 and out.shape == x.shape
        assert not torch.equal(out, x), corruption


def test_small_grey_images_keep_point_wise_corruptions_exact() -> None:
    """Enlarge-corrupt-reduce is exactly the corruption at the native size for a point-wise corruption."""
    from PIL import Image

    g = torch.Generator().manual_seed(3)
    grey = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8, generator=g)
    out = corrupt_images(grey, "brightness", 4)
    fn = corr.corruption_functions()["brightness"]
    for j in range(4):
        rgb = np.repeat(grey[j].numpy().transpose(1, 2, 0), 3, axis=2)
        want = np.uint8(np.asarray(fn(Image.fromarray(rgb), 4)))[..., 0]
        assert np.array_equal(out[j, 0].numpy(), want)
    floats = grey.float() / 255.0  # float input is quantized back to the same uint8
    assert torch.equal(corrupt_images(floats, "brightness", 4), out)


def test_corrupt_spec(digits6: ImageSet, tmp_path: Path) -> None:
    path = tmp_path / "six.npz"
    np.savez(
        path, x=(digits6.x.numpy() * 255).round().astype(np.uint8).transpose(0, 2, 3, 1), y=digits6.y.numpy()
    )
    sets = load_corruption_sets(f"corrupt:npz:{path}#contrast,fog:2,4")
    assert [(s.corruption, s.severity) for s in sets] == [
        ("fog", 2),
        ("fog", 4),
        ("contrast", 2),
        ("contrast", 4),
    ]
    assert sets[0].name == f"corrupt:npz:{path}#fog:2" and sets[0].data.x.shape == (6, 1, 8, 8)
    again = load_dataset(f"corrupt:npz:{path}#fog:2")
    assert torch.equal(again.x, sets[0].data.x)
    with pytest.raises(UsageError, match="needs a dataset spec"):
        load_corruption_sets("corrupt:#fog")
    with pytest.raises(UsageError, match="already corrupted"):
        load_corruption_sets(f"corrupt:cifar10c:{tmp_path}#fog")


def test_folder_cache_reads_back_as_cifar10c(digits6: ImageSet, tmp_path: Path) -> None:
    folder = tmp_path / "cache"
    names = ["gaussian_noise", "brightness"]
    write_corruption_folder(digits6, folder, names, seed=4, chunk=4)
    assert not list(folder.glob("*.part"))
    assert np.load(folder / "gaussian_noise.npy").shape == (5 * 6, 8, 8, 1)
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["seed"] == 4 and meta["num_classes"] == 10 and meta["mean"] == list(digits6.mean)
    back = load_corruption_sets(f"cifar10c:{folder}", names)
    assert len(back) == 10
    for s in back:
        fresh = corrupt_set(digits6, s.corruption, s.severity, seed=4)
        assert torch.equal(s.data.x, fresh.x), s.name
        assert torch.equal(s.data.y, digits6.y) and s.data.mean == digits6.mean

    # resumable: finished files are kept, a leftover .part is redone
    (folder / "brightness.npy").rename(folder / "brightness.npy.part")
    kept = (folder / "gaussian_noise.npy").stat().st_mtime_ns
    write_corruption_folder(digits6, folder, names, seed=4)
    assert (folder / "gaussian_noise.npy").stat().st_mtime_ns == kept
    assert torch.equal(load_corruption_sets(f"cifar10c:{folder}", "brightness", [2])[0].data.x,
                       corrupt_set(digits6, "brightness", 2, seed=4).x)  # fmt: skip
    with pytest.raises(UsageError, match="differs in seed"):
        write_corruption_folder(digits6, folder, names, seed=5)
    with pytest.raises(UsageError, match="unknown origin"):
        write_corruption_folder(digits6, write_official(tmp_path / "official"), names)


def test_missing_package_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    corr.corruption_functions.cache_clear()
    monkeypatch.setitem(sys.modules, "imagecorruptions", None)
    monkeypatch.setitem(sys.modules, "imagecorruptions.corruptions", None)
    try:
        with pytest.raises(EvalsuiteError, match=r"pip install 'evalsuite\[corruptions\]'") as err:
            corrupt_images(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), "fog", 1)
        assert "\n" not in str(err.value)
    finally:
        corr.corruption_functions.cache_clear()
