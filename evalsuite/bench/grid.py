"""Grids in suites: a ``[grid]`` table expands into train-and-evaluate jobs, each addressed by a hash.

```toml
[grid]
dataset = "digits"                  # a scalar is fixed; a list is an axis
arch = "smallcnn"
scheme = ["erk", "er", "uniform"]   # sparse ratio schemes ("dense" is added as each point's twin)
density = [0.05, 0.1, 0.2]          # fraction of weights kept
seed = [0, 1, 2]
gpus = 1                            # > 1: training runs under torchrun with that many processes (DDP)
shards = 1                          # > 1: the battery is split with --shard i/K over workers, merged exactly
dense_twins = true                  # add the dense twin of every (dataset, arch, arch kwargs, recipe, seed)

[grid.arch_kwargs]                  # keyword arguments of the architecture; lists are axes
width = [8, 16]

[grid.recipe]                       # recipe overrides (epochs, lr, milestones, ...); lists are axes
epochs = 10                         # (milestones is a list itself: write [[5, 8], [6, 9]] for an axis)

[grid.train]                        # fixed training options: limit_train, limit_test, mask_seed, test_data
limit_train = 1000

[[grid.exclude]]                    # drop every point matching all the keys (a list matches any of it)
scheme = "er"
density = 0.05

[[grid.include]]                    # add points; axes it does not name take all the grid's values
arch = "resnet32"
scheme = "erk"
density = 0.1
```

The product of the axes, minus the excludes, plus the includes, plus one dense twin per (every axis but
scheme and density) is the plan. Each job's id is the sha256 of everything that determines its numbers
(``JobSpec.identity``): the resolved recipe, arch, scheme, density, seeds, subset sizes, the content
identity of its data (files hashed; registered datasets by name), the battery config, the evalsuite
version and a hash of evalsuite's own source files. The git revision is recorded with the plan but not
hashed: a commit that touches only docs, tests or suites must not restart a study of a thousand GPU jobs,
while any change to the code that computes the numbers (committed or not) does give new ids.
Device, progress and sharding are not part of it: a job's numbers do not depend
on them (sharded batteries merge exactly). The number of DDP processes is: it changes the per-rank batch.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from evalsuite.core.errors import UsageError
from evalsuite.core.provenance import git_revision
from evalsuite.core.version import __version__
from evalsuite.train.recipe import RECIPE_FIELDS, resolve_recipe, scaled_milestones

GRID_KEYS = {
    "dataset",
    "arch",
    "scheme",
    "density",
    "seed",
    "gpus",
    "shards",
    "dense_twins",
    "arch_kwargs",
    "recipe",
    "train",
    "include",
    "exclude",
}
BASE_AXES = ("dataset", "arch", "scheme", "density", "seed")
GRID_TRAIN_KEYS = {"limit_train", "limit_test", "mask_seed", "test_data"}
JOB_KIND = "evalsuite-study-job"
ID_LENGTH = 16  # hex digits of the sha256 kept in the id (64 bits: no collision in any real grid)


@dataclass(frozen=True)
class JobSpec:
    """One train-and-evaluate job of a grid. Plain JSON-able data, so it travels to any worker.

    ``axes`` are the job's grid coordinates (what tables pivot on). ``train`` is a ``[[models]] train``
    table (dataset, arch, arch_kwargs, sparse_init, density, seed, recipe fields, limits) with paths
    resolved. ``eval`` holds the evaluation data (``id``, ``ood``, ``root``, ``download``) and ``battery``
    the suite's battery table (plus ``limit`` from the command line). ``twin`` is the job id of the dense
    twin (None for a dense job). ``identity`` is what ``job_id`` hashes.
    """

    job_id: str
    name: str
    axes: dict[str, Any]
    train: dict[str, Any]
    eval: dict[str, Any]
    battery: dict[str, Any]
    identity: dict[str, Any]
    gpus: int = 1
    shards: int = 1
    twin: str | None = None

    @property
    def dense(self) -> bool:
        """Whether this job trains the dense network."""
        return self.train.get("sparse_init", "dense") == "dense"

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (``from_dict`` reads it back)."""
        return {
            "job_id": self.job_id,
            "name": self.name,
            "axes": dict(self.axes),
            "train": dict(self.train),
            "eval": dict(self.eval),
            "battery": dict(self.battery),
            "identity": dict(self.identity),
            "gpus": self.gpus,
            "shards": self.shards,
            "twin": self.twin,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobSpec:
        """A JobSpec from ``to_dict`` output."""
        return cls(
            job_id=str(d["job_id"]),
            name=str(d["name"]),
            axes=dict(d["axes"]),
            train=dict(d["train"]),
            eval=dict(d["eval"]),
            battery=dict(d["battery"]),
            identity=dict(d["identity"]),
            gpus=int(d.get("gpus", 1)),
            shards=int(d.get("shards", 1)),
            twin=d.get("twin"),
        )


@dataclass(frozen=True)
class Plan:
    """A suite's grid expanded: its jobs in a stable order (dense twins first within each group)."""

    suite: str
    jobs: tuple[JobSpec, ...]
    axes: tuple[str, ...]
    revision: str | None = None

    def by_id(self) -> dict[str, JobSpec]:
        """{job id: job}."""
        return {j.job_id: j for j in self.jobs}


def canonical_json(obj: Any) -> str:
    """The one JSON text of ``obj`` that is hashed: sorted keys, no spaces, floats by repr."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False, default=str)


def job_hash(identity: Mapping[str, Any]) -> str:
    """The job id: the first ID_LENGTH hex digits of sha256(canonical JSON of ``identity``)."""
    return hashlib.sha256(canonical_json(identity).encode()).hexdigest()[:ID_LENGTH]


def data_identity(spec: str | None) -> dict[str, Any] | None:
    """What identifies a dataset's contents regardless of where it is mounted: registered datasets by
    name (torchvision checks their files itself), ``npz:``/``folder:`` by the sha256 of their contents."""
    if spec is None:
        return None
    from evalsuite.data.base import spec_fingerprint, split_named_spec

    name, rest = split_named_spec(spec)
    fp = spec_fingerprint(rest)
    out: dict[str, Any] = {"spec": rest.partition(":")[0] if "sha256" in fp else rest}
    if "sha256" in fp:
        out["sha256"] = fp["sha256"]
    if name:
        out["name"] = name
    return out


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _check_scalar(where: str, key: str, value: Any) -> None:
    if isinstance(value, dict):
        raise UsageError(f"{where}: {key} must be a value or a list of values, not a table")


def _axis_values(where: str, key: str, value: Any, list_valued: bool = False) -> tuple[bool, list[Any]]:
    """(is it an axis?, its values). For a list-valued field (milestones) only a list of lists is an axis."""
    _check_scalar(where, key, value)
    if list_valued:
        if isinstance(value, list) and value and all(isinstance(v, list) for v in value):
            return True, list(value)
        return False, [value]
    if isinstance(value, list):
        if not value:
            raise UsageError(f"{where}: {key} = [] leaves no jobs")
        if len({canonical_json(v) for v in value}) != len(value):
            raise UsageError(f"{where}: {key} lists a value twice: {value}")
        return True, list(value)
    return False, [value]


@dataclass(frozen=True)
class _Space:
    """The grid's axes: name -> values, and where each axis goes in a job (base, arch_kwargs, recipe)."""

    values: dict[str, list[Any]]
    kind: dict[str, str]  # "base" | "arch_kwargs" | "recipe"
    axes: tuple[str, ...]  # the names that vary (lists), in file order
    train_fixed: dict[str, Any]


def _space(grid: Mapping[str, Any], where: str) -> _Space:
    for key in grid:
        if key not in GRID_KEYS:
            raise UsageError(
                f"{where}: unknown key {key!r} in [grid]; allowed: {', '.join(sorted(GRID_KEYS))}"
            )
    values: dict[str, list[Any]] = {}
    kind: dict[str, str] = {}
    axes: list[str] = []
    for key in BASE_AXES:
        if key not in grid:
            if key == "dataset":
                raise UsageError(f"{where}: [grid] needs a dataset")
            continue
        is_axis, vals = _axis_values(where, key, grid[key])
        values[key], kind[key] = vals, "base"
        if is_axis:
            axes.append(key)
    for key, default in (("arch", None), ("scheme", "dense"), ("density", 1.0), ("seed", 0)):
        if key not in values:
            values[key], kind[key] = [default], "base"
    for section, allowed in (("arch_kwargs", None), ("recipe", set(RECIPE_FIELDS))):
        table = grid.get(section, {})
        if not isinstance(table, dict):
            raise UsageError(f"{where}: grid.{section} must be a table")
        for key, value in table.items():
            if allowed is not None and key not in allowed:
                raise UsageError(
                    f"{where}: unknown recipe field {key!r} in [grid.recipe]; "
                    f"allowed: {', '.join(sorted(allowed))}"
                )
            if key in values:
                raise UsageError(f"{where}: axis {key!r} is named twice in [grid]")
            is_axis, vals = _axis_values(where, key, value, list_valued=key == "milestones")
            values[key], kind[key] = vals, section
            if is_axis:
                axes.append(key)
    train_fixed = dict(grid.get("train", {}))
    for key in train_fixed:
        if key not in GRID_TRAIN_KEYS:
            raise UsageError(
                f"{where}: unknown key {key!r} in [grid.train]; allowed: {', '.join(sorted(GRID_TRAIN_KEYS))}"
            )
    return _Space(values=values, kind=kind, axes=tuple(axes), train_fixed=train_fixed)


def _matches(point: Mapping[str, Any], rule: Mapping[str, Any]) -> bool:
    return all(canonical_json(point.get(k)) in {canonical_json(v) for v in _as_list(rule[k])} for k in rule)


def _rules(grid: Mapping[str, Any], key: str, space: _Space, where: str) -> list[dict[str, Any]]:
    rules = grid.get(key, [])
    if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
        raise UsageError(f"{where}: grid.{key} must be an array of tables ([[grid.{key}]])")
    for r in rules:
        if not r:
            raise UsageError(f"{where}: an empty [[grid.{key}]] entry")
        for k in r:
            if k not in space.values:
                raise UsageError(
                    f"{where}: [[grid.{key}]] names {k!r}, not an axis of the grid "
                    f"(axes: {', '.join(space.values)})"
                )
    return [dict(r) for r in rules]


def _product(values: Mapping[str, list[Any]]) -> Iterable[dict[str, Any]]:
    names = list(values)
    for combo in itertools.product(*(values[n] for n in names)):
        yield dict(zip(names, combo, strict=True))


def grid_points(grid: Mapping[str, Any], where: str = "[grid]") -> tuple[list[dict[str, Any]], _Space]:
    """The grid's points (axis -> value, every axis present), deduplicated, dense twins included."""
    space = _space(grid, where)
    excludes = _rules(grid, "exclude", space, where)
    includes = _rules(grid, "include", space, where)
    points = [p for p in _product(space.values) if not any(_matches(p, r) for r in excludes)]
    for inc in includes:
        vals = dict(space.values)
        for k, v in inc.items():
            vals[k] = _axis_values(where, k, v, list_valued=k == "milestones")[1]
        points.extend(_product(vals))
    if not points:
        raise UsageError(f"{where}: the grid's excludes leave no jobs")
    for p in points:
        if p["scheme"] == "dense" and float(p["density"]) != 1.0:
            raise UsageError(
                f"{where}: scheme 'dense' with density {p['density']}; a dense net keeps every weight"
            )
        if p["scheme"] != "dense" and not 0.0 < float(p["density"]) < 1.0:
            raise UsageError(
                f"{where}: scheme {p['scheme']!r} with density {p['density']}; "
                "density is the fraction kept, in (0, 1)"
            )
    # an axis is any key that takes more than one value in the end (an include can make a fixed key vary)
    varying = [k for k in space.values if len({canonical_json(p.get(k)) for p in points}) > 1]
    space = _Space(values=space.values, kind=space.kind, axes=tuple(varying), train_fixed=space.train_fixed)
    if bool(grid.get("dense_twins", True)):
        twins = [{**p, "scheme": "dense", "density": 1.0} for p in points if p["scheme"] != "dense"]
        points = twins + points
    seen: set[str] = set()
    unique = []
    for p in points:
        key = canonical_json(p)
        if key not in seen:
            seen.add(key)
            unique.append(p)
    return unique, space


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "-".join(_fmt(x) for x in v)
    return str(v)


def job_name(point: Mapping[str, Any], space: _Space) -> str:
    """A readable label: the varying axes and the scheme/density, e.g. ``smallcnn-width8-erk-d0.1-s1``."""
    parts: list[str] = []
    if "dataset" in space.axes:
        parts.append(_fmt(point["dataset"]).replace(":", "_").replace("/", "_"))
    if point.get("arch"):
        parts.append(_fmt(point["arch"]))
    parts.extend(f"{name}{_fmt(point[name])}" for name in space.axes if space.kind[name] != "base")
    parts.append(str(point["scheme"]))
    if point["scheme"] != "dense":
        parts.append(f"d{_fmt(float(point['density']))}")
    parts.append(f"s{_fmt(point['seed'])}")
    return "-".join(parts)


def _resolved_recipe(train: Mapping[str, Any]) -> dict[str, Any]:
    overrides = {k: (tuple(train[k]) if k == "milestones" else train[k]) for k in RECIPE_FIELDS if k in train}
    recipe, _ = resolve_recipe(str(train["dataset"]), overrides)
    return recipe.to_dict()


def build_job(
    point: Mapping[str, Any],
    space: _Space,
    *,
    eval_data: Mapping[str, Any],
    battery: Mapping[str, Any],
    battery_identity: Mapping[str, Any],
    gpus: int,
    shards: int,
    code: str | None,
    train_extra: Mapping[str, Any] | None = None,
) -> JobSpec:
    """The JobSpec of one grid point (its id hashes everything that determines its numbers)."""
    arch_kwargs = {k: point[k] for k in space.values if space.kind[k] == "arch_kwargs"}
    train: dict[str, Any] = {
        "dataset": point["dataset"],
        "sparse_init": point["scheme"],
        "density": float(point["density"]),
        "seed": int(point["seed"]),
        "arch_kwargs": arch_kwargs,
    }
    if point.get("arch"):
        train["arch"] = point["arch"]
    for k in space.values:
        if space.kind[k] == "recipe":
            train[k] = point[k]
    train.update(space.train_fixed)
    extra = dict(train_extra or {})
    if "epochs" in extra and "milestones" in train and "milestones" not in extra:
        # a shortened run keeps the schedule's shape: the grid's milestones scale with the epochs
        base = resolve_recipe(str(train["dataset"]), {k: v for k, v in train.items() if k in RECIPE_FIELDS})[
            0
        ]
        extra["milestones"] = list(scaled_milestones(base.milestones, base.epochs, int(extra["epochs"])))
    train.update(extra)
    recipe = _resolved_recipe(train)
    identity = {
        "kind": JOB_KIND,
        "train": {
            "data": data_identity(str(train["dataset"])),
            "test_data": data_identity(train.get("test_data")),
            "arch": train.get("arch"),
            "arch_kwargs": arch_kwargs,
            "scheme": train["sparse_init"],
            "density": train["density"],
            "seed": train["seed"],
            "mask_seed": train.get("mask_seed"),
            "recipe": recipe,
            "limit_train": train.get("limit_train"),
            "limit_test": train.get("limit_test"),
            "processes": gpus,
        },
        "eval": {
            "data": data_identity(eval_data.get("id")) if eval_data.get("id") else None,
            "ood": [data_identity(s) for s in eval_data.get("ood") or []]
            if eval_data.get("ood") is not None
            else None,
        },
        "battery": dict(battery_identity),
        "evalsuite": __version__,
        "code": code,
    }
    axes = {k: point[k] for k in ("dataset", "arch") if k in point}
    axes.update({k: point[k] for k in space.values if space.kind[k] == "arch_kwargs"})
    axes.update(scheme=point["scheme"], density=float(point["density"]), seed=int(point["seed"]))
    axes.update({k: point[k] for k in space.values if space.kind[k] == "recipe" and k in space.axes})
    return JobSpec(
        job_id=job_hash(identity),
        name=job_name(point, space),
        axes=axes,
        train=train,
        eval=dict(eval_data),
        battery=dict(battery),
        identity=identity,
        gpus=gpus,
        shards=shards,
    )


def twin_key(axes: Mapping[str, Any]) -> str:
    """What a job shares with its dense twin: every axis but scheme and density."""
    return canonical_json({k: v for k, v in axes.items() if k not in ("scheme", "density")})


def link_twins(jobs: Sequence[JobSpec]) -> tuple[JobSpec, ...]:
    """Each sparse job with ``twin`` set to its dense twin's id (None when the grid has no twin for it)."""
    dense = {twin_key(j.axes): j.job_id for j in jobs if j.dense}
    out = []
    for j in jobs:
        twin = None if j.dense else dense.get(twin_key(j.axes))
        out.append(JobSpec(**{**j.__dict__, "twin": twin}))
    return tuple(out)


def _positive_int(where: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{where}: grid {key} must be a positive integer, got {value!r}")
    return value


def expand(
    grid: Mapping[str, Any],
    *,
    suite: str,
    eval_data: Mapping[str, Any],
    battery: Mapping[str, Any],
    battery_identity: Mapping[str, Any],
    where: str = "[grid]",
    train_extra: Mapping[str, Any] | None = None,
    revision: str | bool | None = True,
    code: str | bool | None = True,
) -> Plan:
    """Expand a ``[grid]`` table into a Plan. ``train_extra`` (command-line overrides such as epochs)
    applies to every job and enters its id; ``revision=True`` reads the git revision now (recorded, not
    hashed) and ``code=True`` hashes evalsuite's sources now (hashed into every id)."""
    gpus = _positive_int(where, "gpus", grid.get("gpus", 1))
    shards = _positive_int(where, "shards", grid.get("shards", 1))
    rev = git_revision() if revision is True else (revision or None)
    if code is True:
        from evalsuite.battery.cache import code_fingerprint

        code = code_fingerprint()
    points, space = grid_points(grid, where)
    jobs = [
        build_job(
            p,
            space,
            eval_data=eval_data,
            battery=battery,
            battery_identity=battery_identity,
            gpus=gpus,
            shards=shards,
            code=code or None,
            train_extra=train_extra,
        )
        for p in points
    ]
    ids = [j.job_id for j in jobs]
    if len(set(ids)) != len(ids):  # two points that resolve to the same job (e.g. an include repeating one)
        seen: set[str] = set()
        jobs = [j for j in jobs if not (j.job_id in seen or seen.add(j.job_id))]  # type: ignore[func-returns-value]
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise UsageError(f"{where}: two jobs share the name {dup[0]!r}; give them different axes")
    return Plan(suite=suite, jobs=link_twins(jobs), axes=space.axes, revision=rev)
