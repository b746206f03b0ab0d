"""The result cache: a hit is returned only when it is the result this call would compute.

The key covers everything the numbers depend on: the checkpoint's sha256, the battery settings, the
contents of the data (``spec_fingerprint``), the model-loading options with the source of any ``--arch``
module or file, and the evaluation code itself (a hash of evalsuite's sources, so an edited checkout or a
new install never gets an old answer). An entry is ``KEY.json`` + ``KEY.npz`` + ``KEY.sum``, the last
written last and holding both files' sha256: an entry that was edited, half written or is malformed is
recomputed with a warning and overwritten, never returned and never fatal.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from evalsuite.core.io import atomic_write_text, read_json, sha256_file
from evalsuite.core.results import Arrays, EvalResult, load_arrays, save_result
from evalsuite.core.version import __version__

log = logging.getLogger(__name__)

ENTRY_SCHEMA = "evalsuite-cache-entry"
_PACKAGE_DIR = Path(__file__).resolve().parents[1]


def cache_dir(explicit: Path | None = None) -> Path:
    """``explicit``, else ``$EVALSUITE_CACHE``, else ``~/.cache/evalsuite/results``."""
    if explicit is not None:
        return explicit
    env = os.environ.get("EVALSUITE_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "evalsuite" / "results"


def sources_sha256(package_dir: Path) -> str:
    """sha256 over every file of a package (relative path and content), compiled caches excluded."""
    h = hashlib.sha256()
    files = sorted(
        p
        for p in package_dir.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    )
    for p in files:
        h.update(f"{p.relative_to(package_dir).as_posix()}\0{sha256_file(p)}\n".encode())
    return h.hexdigest()


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """The evaluation code's identity: a hash of the installed (or checked-out) evalsuite sources.

    Hashing the sources rather than asking git covers uncommitted edits exactly and works in a wheel
    install alike; it reads a few hundred kB once per process.
    """
    return sources_sha256(_PACKAGE_DIR)


def arch_source(arch: str | None) -> Path | None:
    """The source file behind ``--arch file.py:fn`` or ``--arch package.module:fn``; None for zoo names.

    A module is located with ``importlib.util.find_spec`` (which imports only its parent packages), so
    the key can be built before the model is loaded; a module that cannot be found is left to the loader
    to report.
    """
    if not arch or ":" not in arch:
        return None
    target = arch.rsplit(":", 1)[0]
    if target.endswith(".py") or "/" in target or os.sep in target:
        path = Path(target).expanduser()
        return path if path.is_file() else None
    try:
        spec = importlib.util.find_spec(target)
    except BaseException as e:  # broad on purpose: a parent package failing to import: the loader reports it
        if isinstance(e, KeyboardInterrupt):
            raise
        return None
    if spec is None or not spec.origin or not spec.has_location:
        return None
    path = Path(spec.origin)
    return path if path.is_file() else None


def arch_sha256(arch: str | None) -> str | None:
    """sha256 of the file ``arch_source`` finds (the model's code is part of the model)."""
    path = arch_source(arch)
    try:
        return sha256_file(path) if path is not None else None
    except OSError:
        return None


def key_parts(**parts: Any) -> dict[str, Any]:
    """What a cache key is made of: the caller's parts plus the evalsuite version and code."""
    return {"version": __version__, "code": code_fingerprint(), **parts}


def cache_key(parts: dict[str, Any]) -> str:
    """A 32-hex-char SHA-256 prefix of the key parts as sorted-key JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _paths(directory: Path, key: str) -> tuple[Path, Path, Path]:
    return directory / f"{key}.json", directory / f"{key}.npz", directory / f"{key}.sum"


def lookup(directory: Path, key: str) -> tuple[EvalResult, Arrays] | None:
    """The cached result and arrays for ``key``, or None (absent, or unusable: then with a warning)."""
    result_path, npz_path, sum_path = _paths(directory, key)
    if not result_path.exists() and not sum_path.exists():
        return None
    try:
        entry = read_json(sum_path)
        if not isinstance(entry, dict) or entry.get("schema") != ENTRY_SCHEMA:
            raise ValueError(f"{sum_path.name} is not a cache checksum file")
        if sha256_file(result_path) != entry.get("json_sha256") or sha256_file(npz_path) != entry.get(
            "npz_sha256"
        ):
            raise ValueError("its checksum does not match: edited or damaged")
        result = EvalResult.load(result_path)
        arrays = load_arrays(result_path, result)
    except Exception as e:  # broad on purpose: any unusable entry is recomputed, never fatal
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        log.warning("cache entry %s is unusable (%s); recomputing", result_path, msg)
        return None
    log.info("cached result %s", result_path)
    return result, arrays


def store(directory: Path, key: str, parts: dict[str, Any], result: EvalResult, arrays: Arrays) -> None:
    """Write the entry (NPZ, JSON, then the checksum file as the commit point); a failure only warns."""
    result_path, npz_path, sum_path = _paths(directory, key)
    try:
        save_result(result, arrays, result_path)
        entry = {
            "schema": ENTRY_SCHEMA,
            "key": key,
            "json_sha256": sha256_file(result_path),
            "npz_sha256": sha256_file(npz_path),
            "parts": parts,
        }
        atomic_write_text(sum_path, json.dumps(entry, indent=1, sort_keys=True, default=str) + "\n")
    except OSError as e:
        log.warning("could not write the cache (%s)", e)
