"""``evalsuite bench run``: train what the suite asks for, evaluate every model, append one run to the store.

Everything that can be checked is checked before the first model runs: the tag (valid, not taken), the
store (readable, not from a newer evalsuite), every checkpoint (loads safely, fits the data) and every
dataset (ID, OOD, the train recipes' data). A model that then fails (NaN logits, a diverged training, a
device error) is stored as failed with its one-line reason, and the others are kept: the run is stored as
incomplete and ``bench check`` fails on it.

A run is appended in one transaction at the end, so a killed run leaves the store as it was; trained
checkpoints live in the work folder and a rerun resumes a killed training from its last epoch. Results are
computed afresh: the evaluation cache is read only when asked (``cache=True``, ``--cache``).
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalsuite.attacks import parse_eps
from evalsuite.battery import DEFAULT_OOD, BatteryConfig, EvalOptions, evaluate_with_arrays, parse_list
from evalsuite.bench.store import MetricRow, ModelRun, ResultStore
from evalsuite.bench.suite import Suite
from evalsuite.core.errors import DataError, EvalsuiteError, UsageError
from evalsuite.core.provenance import git_revision, package_versions
from evalsuite.data import ImageSet, load_dataset
from evalsuite.data.base import split_named_spec
from evalsuite.models.foreign import load_any_model
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
    """The suite's ``battery`` section (and ``--limit``) as a BatteryConfig."""
    return battery_from_table(suite.battery, ov.limit)


def battery_from_table(b: Mapping[str, Any], limit: int | None = None) -> BatteryConfig:
    """A suite's ``battery`` table (as written in the TOML, or carried in a study job's spec) as a
    BatteryConfig; ``limit`` (the command line's) wins over the table's."""
    kw: dict[str, Any] = {}
    for key in ("checks", "attacks", "ood_scores"):
        if key in b:
            kw[key] = parse_list(b[key])
    if "eps" in b:
        kw["eps_linf"] = tuple(parse_eps(e) for e in parse_list([str(x) for x in b["eps"]]))
    if "eps_l2" in b:
        kw["eps_l2"] = tuple(parse_eps(e, "l2") for e in parse_list([str(x) for x in b["eps_l2"]]))
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
    if limit is not None:
        kw["limit"] = limit
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


@dataclass(frozen=True)
class RunOutcome:
    """What ``run_suite`` stored: the run id, how many models, and {model: reason} of those that failed."""

    run_id: int
    models: int
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when no model failed."""
        return not self.failures


def _eval_data(suite: Suite, ov: Overrides) -> tuple[str | None, list[str] | None]:
    """(ID test set spec, OOD specs) for evaluation; None means the battery's default."""
    # paths written in the suite are relative to the suite file; command-line paths to the current folder
    base = suite.path.parent
    if ov.ood is not None:
        ood: list[str] | None = list(ov.ood)
    else:
        ood = [_rel(s, base) for s in parse_list(suite.data["ood"])] if "ood" in suite.data else None
    data = ov.data or (_rel(suite.data["id"], base) if suite.data.get("id") else None)
    return data, ood


def _reason(e: BaseException) -> str:
    """One line saying why a model failed: our own messages as they are, anything else with its type."""
    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    if isinstance(e, EvalsuiteError) and first:
        return first
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


def _check_store_path(path: Path) -> None:
    """A new store is created only at the end of a run: make sure now that it can be."""
    anc = path.parent
    while not anc.exists() and anc != anc.parent:
        anc = anc.parent
    if not anc.is_dir() or not os.access(anc, os.W_OK | os.X_OK):
        raise DataError(f"{path}: cannot create the results store ({anc} is not a writable folder)")


def check_inputs(suite: Suite, cfg: BatteryConfig, ov: Overrides | None = None) -> None:
    """Before the first model runs: every dataset the run will read is present and every checkpoint loads
    (with the suite's loading options) and fits its test set. Raises the first problem, naming the model."""
    ov = ov or Overrides()
    data, ood = _eval_data(suite, ov)
    root = ov.data_root or suite.data.get("root")
    download = ov.download or bool(suite.data.get("download", False))
    loaded_sets: dict[tuple[str, str], ImageSet] = {}

    def need(spec: str, split: str, shape: tuple[int, int, int] | None = None) -> ImageSet:
        key = (spec, split)
        if key not in loaded_sets:
            loaded_sets[key] = load_dataset(spec, split, root, download, shape=shape)
        return loaded_sets[key]

    for m in suite.models:
        try:
            if m.checkpoint is not None:
                load = _load_options(m.load, suite.path.parent)
                kw: dict[str, Any] = {
                    "arch": load.get("arch"),
                    "arch_kwargs": dict(load.get("arch_kwargs", {})),
                    "normalize": bool(load.get("normalize", True)),
                    "trust": bool(load.get("trust_checkpoint", False)),
                }
                id_spec = data
                if id_spec is None:
                    id_spec = load_any_model(m.checkpoint, **kw).card.dataset
                    if not id_spec or id_spec == "unknown":
                        raise UsageError("the checkpoint does not say its dataset; give [data] id or --data")
                id_set = need(id_spec, "test")
                mean, std = load.get("mean"), load.get("std")
                loaded = load_any_model(
                    m.checkpoint,
                    num_classes=id_set.num_classes,
                    input_shape=id_set.input_shape,
                    mean=tuple(mean) if mean else id_set.mean,
                    std=tuple(std) if std else id_set.std,
                    **kw,
                )
                if loaded.card.num_classes and loaded.card.num_classes != id_set.num_classes:
                    raise UsageError(
                        f"{m.checkpoint}: model has {loaded.card.num_classes} classes, "
                        f"{id_spec} has {id_set.num_classes}"
                    )
                del loaded
            else:
                spec = m.train or {}
                train_data = ov.train_data or _rel(str(spec["dataset"]), suite.path.parent)
                need(train_data, "train")
                test_data = ov.test_data or (
                    _rel(spec["test_data"], suite.path.parent) if "test_data" in spec else None
                )
                need(test_data or train_data, "test")
                id_spec = data or train_data
                id_set = need(id_spec, "test")
            if "ood" in cfg.checks:
                for s in ood if ood is not None else DEFAULT_OOD.get(id_spec, ()):
                    need(split_named_spec(s)[1], "test", shape=id_set.input_shape)
        except EvalsuiteError as e:
            raise type(e)(f"model {m.name!r}: {_reason(e)} (checked before any model ran)") from None


def run_suite(
    suite: Suite,
    store: ResultStore | str | Path,
    ov: Overrides | None = None,
    work_dir: Path | None = None,
    progress: bool = False,
    note: str | None = None,
    tag: str | None = None,
    cache: bool = False,
) -> RunOutcome:
    """Check every input, evaluate every model of ``suite`` and append the run to ``store`` (an open store,
    or a path: opened now to check it, created at the end if new). A model that fails is stored as failed
    with its reason; the run is then incomplete (see ``RunOutcome.failures``)."""
    if not suite.checked_for_run:
        raise UsageError(f"suite {suite.name} was read without its run checks (load_suite(loading=True))")
    ov = ov or Overrides()
    cfg = battery_config(suite, ov)
    if tag is not None:
        ResultStore.check_tag_name(tag)
    if isinstance(store, ResultStore):
        if tag is not None:
            store.check_new_tag(tag)
    else:
        store = Path(store)
        if store.exists():
            with ResultStore(store, create=False) as s:  # refuses a corrupt or newer store before any work
                if tag is not None:
                    s.check_new_tag(tag)
        else:
            _check_store_path(store)
    check_inputs(suite, cfg, ov)

    work = work_dir or Path("runs") / "bench" / suite.name
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    durations: dict[str, float] = {}
    models: dict[str, ModelRun] = {}
    base = suite.path.parent
    data, ood = _eval_data(suite, ov)
    settings = CompareSettings(n_boot=int(suite.compare.get("n_boot", 1000)))
    for m in suite.models:
        t0 = time.perf_counter()
        try:
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
        except Exception as e:  # broad on purpose: one model's failure must not throw away the others
            reason = _reason(e)
            log.warning("model %s failed: %s; going on with the others", m.name, reason)
            log.debug("model %s failed", m.name, exc_info=True)
            models[m.name] = ModelRun.failed(reason)
        durations[m.name] = round(time.perf_counter() - t0, 3)
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
    if isinstance(store, ResultStore):
        run_id = store.add_run(suite.name, models, meta)
    else:
        with ResultStore(store) as s:
            run_id = s.add_run(suite.name, models, meta)
    failures = {name: str(mr.reason) for name, mr in models.items() if mr.status == "failed"}
    return RunOutcome(run_id=run_id, models=len(models), failures=failures)
