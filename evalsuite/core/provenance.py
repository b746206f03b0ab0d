"""Where a number came from: versions, git revision, device, host, date."""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

_PACKAGES = ("evalsuite", "torch", "torchvision", "torchattacks", "netcal", "scikit-learn", "numpy")


@lru_cache(maxsize=1)
def git_revision() -> str | None:
    """The git commit of the evalsuite source tree (with ``-dirty`` if modified), or None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str | None]:
    """Installed version of each tracked package, None for those not installed."""
    out: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def provenance(device: str | None = None, **extra: Any) -> dict[str, Any]:
    """A plain-data record of the software and machine, for checkpoints and results."""
    rec: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "python": platform.python_version(),
        "git_revision": git_revision(),
        "host": platform.node(),
        "platform": platform.platform(),
        "device": device,
    }
    rec.update(extra)
    return rec
