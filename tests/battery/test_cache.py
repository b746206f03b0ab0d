"""The result cache cannot lie: changed code, an edited --arch module or file, an image edited in place, an
edited or malformed entry: each is recomputed (with a warning for a bad entry), never returned as is."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite.battery import BatteryConfig, EvalOptions, evaluate_with_arrays
from evalsuite.battery import cache as C
from evalsuite.core.errors import DataError
from evalsuite.core.results import EvalResult, load_arrays, save_result
from evalsuite.data.base import spec_fingerprint
from evalsuite.models.small import smallcnn

REPO = Path(__file__).resolve().parents[2]
DENSE = REPO / "checkpoints" / "digits-dense.pt"
CLEAN = BatteryConfig(checks=("clean",), limit=60)


@pytest.fixture
def hits(caplog):
    caplog.set_level(logging.INFO, logger="evalsuite.battery.cache")

    def count() -> tuple[int, int]:
        msgs = caplog.messages
        return sum(m.startswith("cached result") for m in msgs), sum("unusable" in m for m in msgs)

    return count


def _eval(tmp: Path, model: Path = DENSE, **kw):
    opts = {"cache_dir": tmp / "cache", "ood": [], "data": "digits"}
    opts.update(kw)
    return evaluate_with_arrays(model, CLEAN, EvalOptions(**opts))


def _entry(tmp: Path) -> tuple[Path, Path, Path]:
    (sum_file,) = (tmp / "cache").glob("*.sum")
    return sum_file.with_suffix(".json"), sum_file.with_suffix(".npz"), sum_file


def test_same_call_hits_and_changed_code_misses(tmp_path, monkeypatch, hits):
    pkg = tmp_path / "pkg"
    shutil.copytree(C._PACKAGE_DIR, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(C, "_PACKAGE_DIR", pkg)
    C.code_fingerprint.cache_clear()
    try:
        first, _ = _eval(tmp_path)
        again, _ = _eval(tmp_path)
        assert hits() == (1, 0) and again.provenance["cache_key"] == first.provenance["cache_key"]
        with open(pkg / "metrics" / "classification.py", "a") as f:
            f.write("\n# an edit to the evaluation code\n")
        C.code_fingerprint.cache_clear()
        edited, _ = _eval(tmp_path)
        assert hits() == (1, 0)  # recomputed, not served from the old entry
        assert edited.provenance["cache_key"] != first.provenance["cache_key"]
    finally:
        C.code_fingerprint.cache_clear()


def test_code_fingerprint_is_the_package_sources(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\n")
    before = C.sources_sha256(tmp_path)
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"compiled")
    assert C.sources_sha256(tmp_path) == before  # compiled caches are not code
    (tmp_path / "a.py").write_text("x = 2\n")
    assert C.sources_sha256(tmp_path) != before


def _arch_setup(tmp: Path, monkeypatch) -> Path:
    pkg = tmp / "userarch"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(
        "from evalsuite.models.small import smallcnn\n\n"
        "def net(num_classes=10, in_channels=1):\n    return smallcnn(num_classes, in_channels)\n"
    )
    monkeypatch.syspath_prepend(str(tmp))
    ckpt = tmp / "sd.pt"
    torch.manual_seed(0)
    torch.save(smallcnn(10, 1).state_dict(), ckpt)
    return ckpt


@pytest.mark.parametrize("form", ["module", "file"])
def test_edited_arch_code_misses(tmp_path, monkeypatch, hits, form):
    ckpt = _arch_setup(tmp_path, monkeypatch)
    source = tmp_path / "userarch" / "nets.py"
    arch = "userarch.nets:net" if form == "module" else f"{source}:net"
    sys.modules.pop("userarch.nets", None)
    try:
        first, _ = _eval(tmp_path, ckpt, arch=arch)
        _eval(tmp_path, ckpt, arch=arch)
        assert hits() == (1, 0)
        assert first.model["load_options"]["arch_file_sha256"] is not None
        source.write_text(source.read_text() + "\n# tuned the net\n")
        edited, _ = _eval(tmp_path, ckpt, arch=arch)
        assert hits() == (1, 0)
        assert (
            edited.model["load_options"]["arch_file_sha256"]
            != first.model["load_options"]["arch_file_sha256"]
        )
    finally:
        sys.modules.pop("userarch.nets", None)
        sys.modules.pop("userarch", None)


def test_arch_module_is_found_without_importing_it(tmp_path, monkeypatch):
    _arch_setup(tmp_path, monkeypatch)
    sys.modules.pop("userarch.nets", None)
    try:
        assert C.arch_source("userarch.nets:net") == tmp_path / "userarch" / "nets.py"
        assert "userarch.nets" not in sys.modules
        assert C.arch_source("resnet20") is None
        assert C.arch_source("no_such_module_anywhere:net") is None  # left to the loader to report
    finally:
        sys.modules.pop("userarch", None)


def test_folder_image_edited_in_place_changes_the_fingerprint(tmp_path):
    from PIL import Image

    img = tmp_path / "imgs" / "a" / "0.png"
    img.parent.mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(img)
    st = img.stat()
    before = spec_fingerprint(f"folder:{tmp_path / 'imgs'}")
    data = bytearray(img.read_bytes())
    Image.fromarray(np.full((8, 8), 255, np.uint8)).save(img)
    os.utime(img, ns=(st.st_atime_ns, st.st_mtime_ns))  # same time stamp, as a careless copy leaves it
    assert spec_fingerprint(f"folder:{tmp_path / 'imgs'}") != before
    img.write_bytes(bytes(data))
    os.utime(img, ns=(st.st_atime_ns + 10**9, st.st_mtime_ns + 10**9))  # touched only: same contents
    assert spec_fingerprint(f"folder:{tmp_path / 'imgs'}") == before


def _edit_json(path: Path) -> None:
    d = json.loads(path.read_text())
    d["metrics"]["accuracy"] = 0.0
    path.write_text(json.dumps(d))


def _garbage_json(path: Path) -> None:
    path.write_text("{not json")


def _empty_dict(path: Path) -> None:
    path.write_text("{}")


@pytest.mark.parametrize(
    ("damage", "which"),
    [
        (_edit_json, 0),
        (_garbage_json, 0),
        (_empty_dict, 0),
        (lambda p: p.write_bytes(b"PK\x03\x04 truncated"), 1),
        (_garbage_json, 2),
        (lambda p: p.unlink(), 2),
        (lambda p: p.unlink(), 1),
    ],
    ids=[
        "edited-metric",
        "json-garbage",
        "json-empty",
        "npz-truncated",
        "sum-garbage",
        "sum-missing",
        "npz-missing",
    ],
)
def test_bad_entry_is_recomputed_with_a_warning(tmp_path, hits, damage, which):
    good, good_arrays = _eval(tmp_path)
    damage(_entry(tmp_path)[which])
    again, arrays = _eval(tmp_path)
    assert hits() == (0, 1)
    assert again.metrics["accuracy"] == good.metrics["accuracy"] > 0.5
    np.testing.assert_array_equal(arrays["id/logits"], good_arrays["id/logits"])
    third, _ = _eval(tmp_path)  # the entry was rewritten and is served again
    assert hits() == (1, 1) and third.metrics == good.metrics


def test_npz_from_another_run_is_refused(tmp_path, monkeypatch):
    a, arrays_a = _eval(tmp_path, out=tmp_path / "r.json")
    loaded = EvalResult.load(tmp_path / "r.json")
    assert loaded.arrays_sha256 and loaded.arrays_file == "r.npz"
    # a second run killed between its NPZ and its JSON: the NPZ is new, the JSON old
    import evalsuite.core.results as R

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(R, "atomic_write_text", killed)
    arrays_b = dict(arrays_a, **{"id/logits": arrays_a["id/logits"] + 1})
    with pytest.raises(KeyboardInterrupt):
        save_result(a, arrays_b, tmp_path / "r.json")
    with pytest.raises(DataError, match=r"r\.npz does not match"):
        load_arrays(tmp_path / "r.json")


def test_results_without_a_checksum_still_load(tmp_path):
    _eval(tmp_path, out=tmp_path / "r.json")
    d = json.loads((tmp_path / "r.json").read_text())
    del d["arrays_sha256"]
    (tmp_path / "r.json").write_text(json.dumps(d))
    assert "id/logits" in load_arrays(tmp_path / "r.json")
