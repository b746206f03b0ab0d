"""Write a report folder all at once, and read its comparison.json back.

The folder is built in a hidden temporary sibling and renamed into place, so a reader (or a crash)
sees either the old complete folder or the new complete one, never a mix. With ``force`` the swap is
a single atomic ``renameat2(RENAME_EXCHANGE)`` where Linux offers it; elsewhere the old folder is
renamed away first and put back if the second rename fails.

Every report folder holds a marker, ``.evalsuite-report``, listing the files written. ``force`` replaces
only a folder whose every file is listed there (or, for reports from before the marker, is a known report
file or plot), so a user's own file in the folder stops the command instead of being deleted; and a folder
holding one of the command's inputs is never the output. Temporary siblings left by killed runs (their
name carries the writer's pid) are removed by the next write to the same target.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import re
import secrets
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evalsuite.core.errors import UsageError
from evalsuite.core.io import json_safe, read_json
from evalsuite.report import to_csv, to_html, to_md, to_tex
from evalsuite.report.model import (
    SCHEMA,
    SCHEMA_VERSION,
    Comparison,
    as_comparison,
    from_json_dict,
    to_json_dict,
)
from evalsuite.report.plots import plot_files
from evalsuite.report.table import build_view

__all__ = ["SCHEMA", "SCHEMA_VERSION", "check_comparison", "load_comparison", "write_report"]
REPORT_FILES = ("report.md", "report.html", "tables.tex", "metrics.csv", "comparison.json")
MARKER = ".evalsuite-report"
MARKER_SCHEMA = "evalsuite-report-files"
_PLOT_SUFFIXES = (".png", ".pdf")


def check_comparison(d: Any, where: str = "comparison") -> Comparison:
    """The typed Comparison of ``d`` (a Comparison, or its JSON form of schema version 1 or 2); DataError
    for anything else."""
    return d if isinstance(d, Comparison) else from_json_dict(d, where)


def load_comparison(path: str | os.PathLike[str]) -> Comparison:
    """Read ``comparison.json`` (or a report folder holding one), schema version 2 or 1."""
    p = Path(path)
    if p.is_dir():
        p = p / "comparison.json"
    return check_comparison(read_json(p), str(p))


def comparison_json(comp: Comparison | dict[str, Any]) -> str:
    """The comparison as schema version 2 JSON."""
    d = to_json_dict(as_comparison(comp))
    return json.dumps(json_safe(d), indent=1, ensure_ascii=False, allow_nan=False) + "\n"


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    # Makes the renames themselves durable; not every platform lets a folder be opened.
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def build_report(comp: Comparison, folder: Path) -> None:
    """Write every report file into an existing, empty ``folder``."""
    text = comparison_json(comp)
    clean = json.loads(text)  # renderers see exactly what comparison.json holds (NaN already None)
    view = build_view(from_json_dict(clean))
    plots = folder / "plots"
    plots.mkdir()
    images = {}
    for fname, data in plot_files(clean).items():
        _write(plots / fname, data)
        if fname.endswith(".png"):
            images[fname.removesuffix(".png")] = data
    _write(folder / "report.md", to_md.emit(view).encode("utf-8"))
    _write(folder / "report.html", to_html.emit(view, images).encode("utf-8"))
    _write(folder / "tables.tex", to_tex.emit(view).encode("utf-8"))
    _write(folder / "metrics.csv", to_csv.emit(view).encode("utf-8"))
    _write(folder / "comparison.json", text.encode("utf-8"))
    written = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    marker = {"schema": MARKER_SCHEMA, "files": written}
    _write(folder / MARKER, (json.dumps(marker, indent=1) + "\n").encode("utf-8"))
    _fsync_dir(plots)
    _fsync_dir(folder)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2); False where the OS or filesystem cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, out: Path) -> None:
    """Put ``new`` at ``out``; afterwards ``new`` holds the previous folder, or nothing."""
    if not out.exists():
        os.rename(new, out)
        return
    if _exchange(new, out):
        return
    old = new.with_name(new.name.replace(".tmp-", ".old-", 1))
    os.rename(out, old)
    try:
        os.rename(new, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _make_temp_dir(out: Path) -> Path:
    # Not tempfile.mkdtemp: its 0700 mode would stick to the published report folder.
    for _ in range(100):
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            tmp.mkdir()
            return tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {out}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process, or unknowable: leave its folder alone
    return True


def clean_leftovers(out: Path) -> list[Path]:
    """Remove temporary siblings of ``out`` left by killed writes (their writer's pid is gone)."""
    pattern = re.compile(rf"^\.{re.escape(out.name)}\.(?:tmp|old)-(?:(\d+)-)?[0-9a-f]{{8}}$")
    removed = []
    with contextlib.suppress(OSError):
        for p in out.parent.iterdir():
            m = pattern.match(p.name)
            if not m or p.is_symlink() or not p.is_dir():
                continue
            pid = int(m.group(1)) if m.group(1) else None  # no pid: written before pids were recorded
            if pid is not None and (pid == os.getpid() or _pid_alive(pid)):
                continue
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def _marker_files(folder: Path) -> set[str] | None:
    try:
        d = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(d, dict) or d.get("schema") != MARKER_SCHEMA or not isinstance(d.get("files"), list):
        return None
    return {str(f) for f in d["files"]}


def _foreign_entry(folder: Path) -> str | None:
    """The first thing in ``folder`` this writer did not put there, or None when it is all ours."""
    listed = _marker_files(folder)
    for root, dirs, files in os.walk(folder):
        base = Path(root)
        for name in sorted(dirs):
            rel = (base / name).relative_to(folder).as_posix()
            # os.walk does not enter linked folders, so judge the link itself; files inside real
            # folders are judged one by one below
            if (base / name).is_symlink() or (listed is None and rel != "plots"):
                return rel
        for name in sorted(files):
            rel = (base / name).relative_to(folder).as_posix()
            if rel == MARKER and listed is not None:
                continue
            if listed is not None:
                ok = rel in listed and not (base / name).is_symlink()
            else:  # a report written before the marker: only its known file names
                ok = rel in REPORT_FILES or (rel.startswith("plots/") and rel.endswith(_PLOT_SUFFIXES))
            if not ok:
                return rel
    return None


def check_report_target(
    out_dir: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]] = (), force: bool = False
) -> Path:
    """Raise UsageError unless ``out_dir`` may receive a report: absent, or with ``force`` an earlier
    report folder holding nothing else, and in either case holding none of ``inputs``."""
    out = Path(out_dir).absolute()
    real = out.resolve()
    for i in inputs:
        ip = Path(i)
        if not ip.exists():
            continue
        r = ip.resolve()
        if r == real:
            raise UsageError(f"--out {out_dir} is an input of this command ({i}); not overwriting it")
        if real in r.parents:
            raise UsageError(f"--out {out_dir} holds the input {i}; write the report to another folder")
    if out.exists() or out.is_symlink():
        if not force:
            raise UsageError(f"{out_dir} exists; pass --force to replace it")
        if out.is_symlink() or not out.is_dir():
            raise UsageError(f"{out_dir} exists and is not a report folder; not replacing it")
        foreign = _foreign_entry(out)
        if foreign is not None:
            raise UsageError(
                f"{out_dir} is not an evalsuite report folder: it holds {foreign}, which evalsuite did not "
                "write; not replacing it"
            )
    return out


def write_report(
    comp: Comparison | dict[str, Any],
    out_dir: str | os.PathLike[str],
    force: bool = False,
    inputs: Sequence[str | os.PathLike[str]] = (),
) -> Path:
    """Write report.md, report.html, tables.tex, metrics.csv, comparison.json and plots/ into ``out_dir``.

    The folder appears complete or not at all. An existing ``out_dir`` is an error unless ``force``, and
    even then only an earlier report holding nothing but its own files is replaced; a folder holding one
    of ``inputs`` (the comparison's result files) is refused.
    """
    comp = check_comparison(comp)
    out = check_report_target(out_dir, inputs, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    clean_leftovers(out)
    tmp = _make_temp_dir(out)
    try:
        build_report(comp, tmp)
        _swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _fsync_dir(out.parent)
    return out
