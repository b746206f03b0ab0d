"""Benchmark suites: TOML files naming models (checkpoints, or recipes to train first), the battery
settings, the data and per-metric tolerances. Paths inside a suite are relative to the suite file.

```toml
name = "smoke"
description = "..."

[battery]                 # any BatteryConfig field; eps written like "8/255"
checks = ["clean", "calibration", "ood", "robust", "sparsity"]
eps = ["1/255", "8/255"]

[data]                    # overridable on the command line (--data, --ood, --train-data, --data-root)
id = "digits"
ood = ["photos", "gaussian"]

[tolerances]              # metric glob -> "noise" (the metrics' own CIs) or { abs = 0.01 }; first match wins
"robust/*" = "noise"
"*" = "noise"

[[models]]
name = "dense"
checkpoint = "../checkpoints/digits-dense.pt"

[[models]]
name = "erk-0.1"
train = { dataset = "digits", sparse_init = "erk", density = 0.1, seed = 0, epochs = 30 }
```

Trust comes only from the command line: a suite that switches on unsafe loading (``trust_checkpoint = true``)
or names code to import (``arch = "file.py:fn"`` or ``"package.module:fn"``, in a model or its train recipe)
is refused, naming the key, file and line, unless ``bench run`` is given ``--trust-suite``. Zoo names
(``arch = "resnet20"``) need no trust.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.core.errors import UsageError
from evalsuite.train.recipe import RECIPE_FIELDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SUITE_DIR = Path(__file__).resolve().parents[2] / "benchmarks"

TOP_KEYS = {"name", "description", "battery", "data", "tolerances", "models", "compare", "grid"}
BATTERY_KEYS = {
    "checks",
    "attacks",
    "eps",
    "eps_l2",
    "pgd_steps",
    "pgd_restarts",
    "pgd_step_size",
    "ood_scores",
    "bins",
    "seed",
    "limit",
    "batch_size",
    "device",
}
DATA_KEYS = {"id", "ood", "root", "download", "train"}
MODEL_KEYS = {
    "name",
    "checkpoint",
    "train",
    "arch",
    "arch_kwargs",
    "mean",
    "std",
    "normalize",
    "trust_checkpoint",
}
TRAIN_KEYS = {
    "dataset",
    "arch",
    "arch_kwargs",
    "sparse_init",
    "density",
    "seed",
    "mask_seed",
    "limit_train",
    "limit_test",
    "device",
    "test_data",
    *RECIPE_FIELDS,
}
COMPARE_KEYS = {"n_boot", "alpha", "reference"}


@dataclass(frozen=True)
class SuiteModel:
    """One model of a suite: a ``checkpoint`` to load or a ``train`` spec, plus load options."""

    name: str
    checkpoint: Path | None = None
    train: dict[str, Any] | None = None
    load: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Suite:
    """A parsed suite file: battery, data, tolerances, models and comparison settings."""

    name: str
    path: Path
    description: str
    battery: dict[str, Any]
    data: dict[str, Any]
    tolerances: dict[str, Any]
    models: tuple[SuiteModel, ...]
    compare: dict[str, Any]
    checked_for_run: bool = False  # read with loading=True: trust refused unless given, checkpoints exist
    grid: dict[str, Any] | None = None  # a study: [grid] expands into jobs (evalsuite.bench.grid)

    @property
    def is_study(self) -> bool:
        """Whether the suite is a grid (a study of train-and-evaluate jobs) rather than a model list."""
        return self.grid is not None


def _line_of(text: str, key: str, after: int = 0) -> int:
    """1-based line where ``key`` is assigned (or a [key] table starts), searching from line ``after``."""
    pat = re.compile(rf'^\s*(\[\[?\s*)?"?{re.escape(key)}"?\s*(=|\]|\.)')
    lines = text.splitlines()
    for i in range(after, len(lines)):
        if pat.search(lines[i]) or re.search(rf'[{{,]\s*"?{re.escape(key)}"?\s*=', lines[i]):
            return i + 1
    return 0


def _where(path: Path, text: str, key: str, after: int = 0) -> str:
    line = _line_of(text, key, after)
    return f"{path}:{line}" if line else str(path)


def resolve_suite_path(name_or_path: str) -> Path:
    """A suite name in benchmarks/ (``smoke``) or a path to a suite file."""
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise UsageError(f"suite file {p} does not exist")
        return p.resolve()
    candidate = SUITE_DIR / f"{name_or_path}.toml"
    if candidate.exists():
        return candidate
    known = sorted(q.stem for q in SUITE_DIR.glob("*.toml")) if SUITE_DIR.is_dir() else []
    raise UsageError(
        f"unknown suite {name_or_path!r}; known: {', '.join(known) or 'none'} (or pass a .toml path)"
    )


def _check_keys(
    path: Path, text: str, section: str, got: dict[str, Any], allowed: set[str], after: int = 0
) -> None:
    for key in got:
        if key not in allowed:
            raise UsageError(
                f"{_where(path, text, key, after)}: unknown key {key!r} in {section}; "
                f"allowed: {', '.join(sorted(allowed))}"
            )


_TRUST_HINT = "a suite file cannot grant that; pass --trust-suite if you trust this file"


def _needs_trust(path: Path, text: str, name: str, m: dict[str, Any], after: int) -> str | None:
    """The refusal for a model entry that loads unsafely or runs code, or None."""
    if m.get("trust_checkpoint") is True:
        at = _where(path, text, "trust_checkpoint", after)
        return f"{at}: model {name!r}: trust_checkpoint = true would unpickle arbitrary code; {_TRUST_HINT}"
    for key, arch in (("arch", m.get("arch")), ("train.arch", (m.get("train") or {}).get("arch"))):
        if isinstance(arch, str) and ":" in arch:
            at = _where(path, text, "arch", after)
            return f"{at}: model {name!r}: {key} = {arch!r} names code to run; {_TRUST_HINT}"
    return None


def load_suite(name_or_path: str, *, trust: bool = False, loading: bool = True) -> Suite:
    """Read and check a suite. ``loading=False`` reads it only for its name and tolerances (check, history,
    baseline, tag): checkpoints are not looked for and nothing is trusted, since nothing is loaded.
    ``trust`` (``--trust-suite``) lets the suite enable unsafe loading and name code."""
    path = resolve_suite_path(name_or_path)
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UsageError(f"{path}: not valid TOML ({e})") from None
    _check_keys(path, text, "the suite", raw, TOP_KEYS)
    battery = raw.get("battery", {})
    data = raw.get("data", {})
    tolerances = raw.get("tolerances", {})
    compare = raw.get("compare", {})
    _check_keys(path, text, "[battery]", battery, BATTERY_KEYS, _line_of(text, "battery"))
    _check_keys(path, text, "[data]", data, DATA_KEYS, _line_of(text, "data"))
    _check_keys(path, text, "[compare]", compare, COMPARE_KEYS, _line_of(text, "compare"))
    for pattern, spec in tolerances.items():
        ok = spec == "noise" or (
            isinstance(spec, dict) and set(spec) == {"abs"} and isinstance(spec["abs"], int | float)
        )
        if not ok:
            raise UsageError(
                f"{_where(path, text, pattern)}: tolerance for {pattern!r} must be "
                '"noise" or { abs = NUMBER }'
            )
    models_raw = raw.get("models", [])
    grid = raw.get("grid")
    if grid is not None:
        if not isinstance(grid, dict):
            raise UsageError(f"{_where(path, text, 'grid')}: grid must be a table ([grid])")
        if models_raw:
            raise UsageError(
                f"{_where(path, text, 'grid')}: a suite has [[models]] or a [grid], not both "
                "(put fixed checkpoints in a suite of their own)"
            )
        arches = [a for a in _grid_arches(grid) if isinstance(a, str) and ":" in a]
        if arches and loading and not trust:
            raise UsageError(
                f"{_where(path, text, 'arch', _line_of(text, 'grid'))}: grid arch = {arches[0]!r} names code "
                f"to run; {_TRUST_HINT}"
            )
    elif not models_raw:
        raise UsageError(f"{path}: the suite names no [[models]] (or a [grid])")
    models = []
    search_from = 0
    for m in models_raw:
        start = _line_of(text, "models", search_from)
        search_from = start
        _check_keys(path, text, "[[models]]", m, MODEL_KEYS, max(start - 1, 0))
        name = m.get("name")
        if not name:
            raise UsageError(f"{path}:{start}: a [[models]] entry has no name")
        has_ckpt, has_train = "checkpoint" in m, "train" in m
        if has_ckpt == has_train:
            raise UsageError(
                f"{path}:{start}: model {name!r} needs exactly one of checkpoint = ... or train = {{...}}"
            )
        if not isinstance(m.get("trust_checkpoint", False), bool):
            at = _where(path, text, "trust_checkpoint", max(start - 1, 0))
            raise UsageError(f"{at}: model {name!r}: trust_checkpoint must be true or false")
        if loading and not trust:
            refusal = _needs_trust(path, text, name, m, max(start - 1, 0))
            if refusal:
                raise UsageError(refusal)
        ckpt = None
        if has_ckpt:
            ckpt = (path.parent / m["checkpoint"]).resolve()
            if loading and not ckpt.exists():
                raise UsageError(
                    f"{_where(path, text, 'checkpoint', max(start - 1, 0))}: model {name!r}: "
                    f"checkpoint {m['checkpoint']} not found (looked in {ckpt})"
                )
        train = None
        if has_train:
            train = dict(m["train"])
            _check_keys(path, text, f"train of model {name!r}", train, TRAIN_KEYS, max(start - 1, 0))
            if "dataset" not in train:
                raise UsageError(f"{path}:{start}: model {name!r}: train needs a dataset")
        load = {
            k: m[k] for k in ("arch", "arch_kwargs", "mean", "std", "normalize", "trust_checkpoint") if k in m
        }
        models.append(SuiteModel(name=name, checkpoint=ckpt, train=train, load=load))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise UsageError(f"{path}: model names must be unique, got {names}")
    return Suite(
        name=str(raw.get("name") or path.stem),
        path=path,
        description=str(raw.get("description", "")),
        battery=dict(battery),
        data=dict(data),
        tolerances=dict(tolerances),
        models=tuple(models),
        compare=dict(compare),
        checked_for_run=loading,
        grid=dict(grid) if grid is not None else None,
    )


def _grid_arches(grid: dict[str, Any]) -> list[Any]:
    """Every arch a grid names (its axis and its includes)."""
    out = list(grid["arch"]) if isinstance(grid.get("arch"), list) else [grid.get("arch")]
    for inc in grid.get("include", []) if isinstance(grid.get("include"), list) else []:
        if isinstance(inc, dict) and "arch" in inc:
            out.extend(inc["arch"] if isinstance(inc["arch"], list) else [inc["arch"]])
    return out
