"""``evalsuite bench run``: train what the suite asks for, evaluate every model, append one run to the store.

A run is appended in one transaction at the end, so a killed run leaves the store as it was; trained
checkpoints live in the work folder and a rerun resumes a killed training from its last epoch.
"""

from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalsuite.attacks import parse_eps
from evalsuite.battery import BatteryConfig, EvalOptions, evaluate_with_arrays, parse_list
from evalsuite.bench.store import MetricRow, ModelRun, ResultStore
from evalsuite.bench.suite import Suite
from evalsuite.core.errors import UsageError
from evalsuite.core.provenance import git_revision, package_versions
from evalsuite.data.base import split_named_spec
from evalsuite.report.compare import CompareSettings, ModelEntry, value_table
from evalsuite.train import InitSpec, TrainJob, TrainOptions, run_training
from evalsuite.train.recipe import RECIPE_FIELDS, default_recipe, scaled_milestones

log = logging.getLogger(__name__)


@dataclass
class Overrides:
    """Command-line overrides of a suite's data (so a CIFAR suite also runs on local copies)."""

    data: str | None = None
    ood: list[str] | None = None
    train_data: str | None = None
    test_data: str | None = None
    data_root: str | None = None
    download: bool = False
    limit: int | None = None
    device: str | None = None
    epochs: int | None = None
    limit_train: int | None = None


def _rel(spec: str, base: Path) -> str:
    """Resolve the path in ``npz:PATH`` / ``folder:PATH`` / ``name=npz:PATH`` against the suite folder."""
    name, rest = split_named_spec(spec)
    kind, colon, arg = rest.partition(":")
    if colon and kind in ("npz", "folder") and not Path(arg).is_absolute():
        rest = f"{kind}:{(base / arg).resolve()}"
    return f"{name}={rest}" if name else rest


def _load_options(load: dict[str, Any], base: Path) -> dict[str, Any]:
    """A suite model's loading options, with a ``file.py:callable`` arch resolved against the suite folder."""
    out = dict(load)
    arch = out.get("arch")
    if isinstance(arch, str) and ":" in arch:
        file, _, fn = arch.rpartition(":")
        if file.endswith(".py") and not Path(file).is_absolute():
            out["arch"] = f"{(base / file).resolve()}:{fn}"
    return out


def battery_config(suite: Suite, ov: Overrides) -> BatteryConfig:
    b = suite.battery
    kw: dict[str, Any] = {}
    for key in ("checks", "attacks", "ood_scores"):
        if key in b:
            kw[key] = parse_list(b[key])
    if "eps" in b:
        kw["eps_linf"] = tuple(parse_eps(e) for e in parse_list([str(x) for x in b["eps"]]))
    if "eps_l2" in b:
        kw["eps_l2"] = tuple(parse_eps(e) for e in parse_list([str(x) for x in b["eps_l2"]]))
    for src, dst in (
        ("pgd_steps", "pgd_steps"),
        ("pgd_restarts", "pgd_restarts"),
        ("pgd_step_size", "pgd_rel_stepsize"),
        ("bins", "n_bins"),
        ("seed", "seed"),
        ("limit", "limit"),
    ):
        if src in b:
            kw[dst] = b[src]
    if ov.limit is not None:
        kw["limit"] = ov.limit
    return BatteryConfig(**kw)


def _train(suite: Suite, name: str, spec: dict[str, Any], work: Path, ov: Overrides, progress: bool) -> Path:
    out = work / f"{name}.pt"
    overrides = {k: (tuple(spec[k]) if k == "milestones" else spec[k]) for k in RECIPE_FIELDS if k in spec}
    if ov.epochs is not None:
        # a shortened run keeps the schedule's shape: the recipe's milestones scale with the epochs
        base = default_recipe(str(spec["dataset"])).with_overrides(**overrides)
        overrides["epochs"] = ov.epochs
        overrides["milestones"] = scaled_milestones(base.milestones, base.epochs, ov.epochs)
    dataset = ov.train_data or _rel(str(spec["dataset"]), suite.path.parent)
    init = InitSpec(
        dataset=dataset,
        arch=spec.get("arch"),
        arch_kwargs=dict(spec.get("arch_kwargs", {})),
        scheme=spec.get("sparse_init", "dense"),
        density=float(spec.get("density", 1.0)),
        seed=int(spec.get("seed", 0)),
        mask_seed=spec.get("mask_seed"),
        data_root=ov.data_root or suite.data.get("root"),
        download=ov.download or bool(suite.data.get("download", False)),
    )
    opts = TrainOptions(
        out=out,
        device=ov.device or spec.get("device", "auto"),
        resume=(work / f"{name}.resume.pt").exists(),
        limit_train=ov.limit_train or spec.get("limit_train"),
        limit_test=spec.get("limit_test"),
        progress=progress,
    )
    test_data = ov.test_data or (_rel(spec["test_data"], suite.path.parent) if "test_data" in spec else None)
    log.info("training %s -> %s", name, out)
    run_training(TrainJob(init=init, recipe_overrides=overrides, options=opts, test_data=test_data))
    return out


def run_suite(
    suite: Suite,
    store: ResultStore,
    ov: Overrides | None = None,
    work_dir: Path | None = None,
    progress: bool = False,
    note: str | None = None,
    tag: str | None = None,
    cache: bool = True,
) -> int:
    """Evaluate every model of ``suite`` and append the run to ``store``; returns the run id."""
    ov = ov or Overrides()
    cfg = battery_config(suite, ov)
    work = work_dir or Path("runs") / "bench" / suite.name
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    durations: dict[str, float] = {}
    models: dict[str, ModelRun] = {}
    # paths written in the suite are relative to the suite file; command-line paths to the current folder
    base = suite.path.parent
    if ov.ood is not None:
        ood: list[str] | None = list(ov.ood)
    else:
        ood = [_rel(s, base) for s in parse_list(suite.data["ood"])] if "ood" in suite.data else None
    data = ov.data or (_rel(suite.data["id"], base) if suite.data.get("id") else None)
    settings = CompareSettings(n_boot=int(suite.compare.get("n_boot", 1000)))
    for m in suite.models:
        t0 = time.perf_counter()
        ckpt = (
            m.checkpoint
            if m.checkpoint is not None
            else _train(suite, m.name, m.train or {}, work, ov, progress)
        )
        opts = EvalOptions(
            data=data,
            ood=ood,
            data_root=ov.data_root or suite.data.get("root"),
            download=ov.download or bool(suite.data.get("download", False)),
            device=ov.device or suite.battery.get("device", "auto"),
            batch_size=suite.battery.get("batch_size"),
            progress=progress,
            cache=cache,
            name=m.name,
            **_load_options(m.load, base),
        )
        result, arrays = evaluate_with_arrays(ckpt, cfg, opts)
        table = value_table(ModelEntry(m.name, str(ckpt), result, arrays), settings)
        rows = {
            k: MetricRow(v["value"], v["ci_low"], v["ci_high"], v["n"], bool(v["higher_is_better"]))
            for k, v in table.items()
        }
        models[m.name] = ModelRun(metrics=rows, result_json=result.to_json())
        durations[m.name] = round(time.perf_counter() - t0, 3)
    if not models:
        raise UsageError(f"suite {suite.name} has no models")
    meta = {
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_revision": git_revision(),
        "machine": f"{platform.node()} ({platform.machine()}, {platform.processor() or platform.system()})",
        "versions": package_versions(),
        "durations": durations,
        "note": note,
        "tag": tag,
    }
    return store.add_run(suite.name, models, meta)
