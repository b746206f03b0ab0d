"""Atomic writes: a temporary file in the target folder, fsync, then rename. Never a half-written result.

Written files get the mode a plain ``open()`` would give (0666 less the umask), and an output path is
checked against the command's inputs before anything runs (``check_output``): an output never lands on an
input, a folder, a device or a fifo.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

from evalsuite.core.errors import DataError, UsageError


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (``os.umask`` alone must set one)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _refuse_special(target: Path) -> None:
    # os.replace over a device or fifo would swap the node itself (as root, /dev/null becomes a file)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return  # absent, or a dangling link (replacing the link touches nothing else)
    except OSError as e:
        raise UsageError(f"{target}: cannot write here ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{target} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{target} is not a regular file (a device, fifo or socket); not writing over it")


def atomic_write(path: str | os.PathLike[str], write: Callable[[IO[bytes]], object]) -> Path:
    """Call ``write(f)`` on a temporary binary file beside ``path``, then rename it over ``path``.

    An existing folder, device, fifo or socket at ``path`` is refused (UsageError), never replaced.
    """
    target = Path(path)
    _refuse_special(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        # mkstemp makes 0600; the result should be as readable as any file the user writes
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 digest of the file at ``path``, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def json_safe(obj: Any) -> Any:
    """NaN/inf become None, tuples and arrays lists, numpy scalars Python numbers (strict JSON)."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "tolist") and callable(obj.tolist):  # numpy arrays and scalars
        return json_safe(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def read_json(path: str | os.PathLike[str]) -> Any:
    """Parse a JSON file; a missing or malformed file is a one-line DataError."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{p}: is a folder, not a JSON file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{p}: not valid JSON ({e})") from None


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_output(
    out: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    suffix: str | None = ".json",
    partner_suffix: str | None = ".npz",
    flag: str = "--out",
) -> Path:
    """Refuse an output path that would destroy something: raise UsageError, write nothing.

    ``out`` (and ``out`` with ``partner_suffix``, written beside it) must not be one of ``inputs`` (same
    path, a link to it or a hard link of it), must not lie inside an input folder, must be a regular file
    or absent, and must end in ``suffix``. Call before any work, so nothing is computed to be thrown away.
    """
    target = Path(out)
    targets = [target]
    if partner_suffix and target.suffix:
        targets.append(target.with_suffix(partner_suffix))
    for t in targets:
        for i in inputs:
            ip = Path(i)
            if not (ip.exists() or ip.is_symlink()):
                continue
            if ip.is_dir() and not ip.is_symlink():
                if _inside(t, ip):
                    raise UsageError(f"{flag} {out}: {t} would land inside the input folder {i}")
            elif ((t.exists() or t.is_symlink()) and _same_file(t, ip)) or t.resolve() == ip.resolve():
                what = "is" if t == target else f"writes {t.name}, which is"
                raise UsageError(f"{flag} {out} {what} an input of this command ({i}); not overwriting it")
    for t in targets:
        try:
            _refuse_special(t)
        except UsageError as e:
            raise UsageError(f"{flag} {out}: {e}") from None
    if suffix and target.suffix.lower() != suffix:
        raise UsageError(f"{flag} {out}: must be a {suffix} file name")
    return target
