"""core.io: written files follow the umask; check_output refuses every target that would destroy an input."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from evalsuite.core.errors import UsageError
from evalsuite.core.io import atomic_write_text, check_output, current_umask


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_(mask: int) -> None:
        os.umask(mask)

    yield set_
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_write_follows_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert current_umask() == mask
    p = atomic_write_text(tmp_path / "sub" / "r.json", "{}")
    assert stat.S_IMODE(p.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "sub").stat().st_mode) == 0o777 & ~mask


def test_atomic_write_refuses_devices_and_folders(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(UsageError, match="not a regular file"):
        atomic_write_text(tmp_path / "fifo", "x")
    (tmp_path / "dir").mkdir()
    with pytest.raises(UsageError, match="is a folder"):
        atomic_write_text(tmp_path / "dir", "x")
    # as root a regression would replace the device node: use a private one, never the real /dev/null
    dev = tmp_path / "null" if os.geteuid() == 0 else Path("/dev/null")
    if os.geteuid() == 0:
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    with pytest.raises(UsageError, match="not a regular file"):
        atomic_write_text(dev, "x")
    assert stat.S_ISCHR(os.lstat(dev).st_mode)
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)


def test_check_output(tmp_path):
    model = tmp_path / "m.pt"
    model.write_bytes(b"weights")
    data = tmp_path / "d.npz"
    data.write_bytes(b"PK")
    folder = tmp_path / "imgs"
    folder.mkdir()
    inputs = [model, data, folder]
    assert check_output(tmp_path / "r.json", inputs) == tmp_path / "r.json"
    os.link(model, tmp_path / "hard.json")
    (tmp_path / "soft.json").symlink_to(model)
    refused = {
        "m.pt": "is an input",
        "d.json": "writes d.npz, which is an input",
        "hard.json": "is an input",
        "soft.json": "is an input",
        "imgs/r.json": "inside the input folder",
        "imgs": "inside the input folder",
        "r.txt": "must be a .json",
    }
    for name, msg in refused.items():
        with pytest.raises(UsageError, match=msg):
            check_output(tmp_path / name, inputs)
    # a relative spelling of the same file is the same file
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(UsageError, match="is an input"):
            check_output("./../" + tmp_path.name + "/m.pt", [str(model)])
    finally:
        os.chdir(cwd)
    # a link to something that is not an input is replaced as a link, never followed
    other = tmp_path / "other.txt"
    other.write_text("keep")
    (tmp_path / "out.json").symlink_to(other)
    check_output(tmp_path / "out.json", inputs)
    atomic_write_text(tmp_path / "out.json", "{}")
    assert other.read_text() == "keep"
