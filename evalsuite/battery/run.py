"""``evaluate``: load a model, predict once per dataset, run the configured checks, build the EvalResult.

Cost: one forward pass per dataset (ID test set and each OOD set), shared by every clean, calibration and
OOD metric; the clean-correct set for the attacks comes from that same pass.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evalsuite.attacks import ATTACKS, AttackConfig
from evalsuite.battery import cache
from evalsuite.battery.cache import cache_dir
from evalsuite.battery.config import BatteryConfig
from evalsuite.battery.predict import default_batch_size, predict_logits
from evalsuite.battery.summarize import (
    Arrays,
    derive_id_arrays,
    derive_scores,
    metric_info,
    robust_key,
    summarize,
)
from evalsuite.core.device import device_name, pick_device
from evalsuite.core.errors import DataError, UsageError
from evalsuite.core.io import check_output
from evalsuite.core.provenance import provenance
from evalsuite.core.results import (  # noqa: F401  (EvalResult, load_arrays, save_result re-exported)
    EvalResult,
    format_normalization,
    load_arrays,
    save_result,
)
from evalsuite.data import (
    ImageSet,
    is_registered_name,
    load_dataset,
    named_datasets,
    require_standard_stats,
    standard_stats,
)
from evalsuite.data.base import spec_fingerprint, spec_path, split_named_spec, stratified_indices
from evalsuite.metrics import CONVENTIONS
from evalsuite.models.foreign import NORM_CHOICES, NORM_GIVEN, LoadedModel, load_any_model
from evalsuite.sparsity import density_report, prunable_layers

log = logging.getLogger(__name__)

DEFAULT_OOD: dict[str, tuple[str, ...]] = {
    "digits": ("photos", "gaussian", "uniform"),
    "cifar10": ("svhn", "cifar100"),
    "cifar100": ("svhn", "cifar10"),
    "svhn": ("cifar10",),
}

ATTACK_CONVENTION = (
    "eps in [0,1] pixel units (k_255 = k/255); an example is robust only if clean-correct and no iterate "
    "fooled it; PGD cascades eps upward (attacks at eps_k only the survivors of eps_{k-1}); pgd_linf counts "
    "examples fooled by fgsm at the same eps as fooled (worst case over our L-inf attacks); fgsm is pure "
    "single-step FGSM at each eps"
)


@dataclass
class EvalOptions:
    """How to load and run (not what is measured): model loading flags, data location, device, output.

    Normalization of a model that does not carry its own (at most one of): ``mean``/``std``;
    ``normalize=False`` (it takes [0, 1] images); ``norm_stats`` (a dataset name whose standard statistics
    apply). With none of them a file model gets the standard statistics of a named ``data`` set, and an
    in-memory ``nn.Module`` takes [0, 1] images; on ``npz:``/``folder:`` data a file model needs a choice.
    """

    data: str | None = None
    ood: Sequence[str] | None = None
    arch: str | None = None
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    mean: Sequence[float] | None = None
    std: Sequence[float] | None = None
    normalize: bool | None = None
    norm_stats: str | None = None
    trust_checkpoint: bool = False
    data_root: str | None = None
    download: bool = False
    device: str = "auto"
    batch_size: int | None = None
    out: Path | None = None
    cache: bool = True
    cache_dir: Path | None = None
    progress: bool = False
    name: str | None = None


def _ood_name(spec: str) -> tuple[str, str]:
    """'name=spec' -> (name, spec); a bare spec is named after itself, a path after its folder or stem."""
    name, rest = split_named_spec(spec)
    if name is not None:
        return name, rest
    kind, _, arg = spec.partition(":")
    if not arg or kind in ("gaussian", "uniform", "photos"):
        return kind, spec
    p = Path(arg)
    stem = p.stem if p.suffix else p.name
    if stem in ("test", "train", "val") and p.parent.name:
        stem = p.parent.name
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in stem), spec


def _positions(
    n: int, limit: int | None, labels: torch.Tensor, seed: int, shard: tuple[int, int] | None
) -> torch.Tensor:
    """Indices into the full split: a seeded stratified subset of ``limit``, then every n-th for a shard."""
    idx = stratified_indices(labels, limit, seed) if limit else torch.arange(n)
    if limit:
        idx = idx.sort().values  # keep dataset order; the subset itself is what the seed fixes
    if shard is not None:
        i, k = shard
        idx = idx[i::k]
    return idx


def _arch_file_sha(arch: str | None) -> str | None:
    """sha256 of the source of ``--arch file.py:fn`` or ``package.module:fn`` (code is part of the model)."""
    return cache.arch_sha256(arch)


def _check_out(opts: EvalOptions, model: object, data_spec: str | None) -> None:
    """Refuse an ``--out`` that is (or whose .npz is) one of this evaluation's inputs, before any work."""
    if opts.out is None:
        return
    specs = [data_spec or "", *(opts.ood or ())]
    inputs = [p for p in (spec_path(s) for s in specs) if p is not None]
    if not isinstance(model, nn.Module):
        inputs.append(Path(model))
    arch = cache.arch_source(opts.arch)
    if arch is not None:
        inputs.append(arch)
    check_output(opts.out, inputs)


def _norm_request(
    source: str | os.PathLike[str] | nn.Module, opts: EvalOptions, id_set: ImageSet | None
) -> dict[str, Any]:
    """The normalization keywords for ``load_any_model``: what the caller chose, else the fallback."""
    given = _one_norm_choice(opts)
    channels = id_set.input_shape[0] if id_set is not None else None
    data = opts.data or (id_set.name if id_set is not None else "the data")
    kw: dict[str, Any] = {"normalize": opts.normalize is not False}
    if given:
        if opts.mean is None or opts.std is None:
            raise UsageError("--mean and --std go together")
        mean, std = tuple(float(v) for v in opts.mean), tuple(float(v) for v in opts.std)
        if len(mean) != len(std) or not mean:
            raise UsageError(f"--mean has {len(mean)} values but --std has {len(std)}")
        if any(not (v > 0) for v in std):
            raise UsageError(f"--std must be positive, got {','.join(f'{v:g}' for v in std)}")
        _check_channels("--mean/--std", len(mean), channels, data)
        kw.update(mean=mean, std=std, norm_source=NORM_GIVEN)
        return kw
    if opts.norm_stats is not None:
        mean, std = require_standard_stats(opts.norm_stats)
        _check_channels(f"--norm-stats {opts.norm_stats}", len(mean), channels, data)
        kw.update(mean=mean, std=std, norm_source=_dataset_source(opts.norm_stats))
        return kw
    if not kw["normalize"] or id_set is None:
        return kw
    name = split_named_spec(opts.data or "")[1] if opts.data else id_set.name
    stats = standard_stats(name) if is_registered_name(name) else None
    if isinstance(source, nn.Module) and opts.normalize is True:
        # normalize=True on an in-memory module asks for the data set's statistics explicitly
        if stats is None:
            raise UsageError(f"normalize=True: {name} has no standard statistics; {NORM_CHOICES}")
        kw.update(mean=stats[0], std=stats[1], norm_source=_dataset_source(name))
    elif stats is not None:
        kw["fallback"] = (stats[0], stats[1], _dataset_source(name))
    return kw


def _one_norm_choice(opts: EvalOptions) -> bool:
    """At most one of --mean/--std, --no-normalize, --norm-stats; True when mean/std were given."""
    given = opts.mean is not None or opts.std is not None
    chosen = [
        flag
        for flag, on in (
            ("--mean/--std", given),
            ("--no-normalize", opts.normalize is False),
            ("--norm-stats", opts.norm_stats is not None),
        )
        if on
    ]
    if len(chosen) > 1:
        raise UsageError(f"choose one way to normalize, got {' and '.join(chosen)}")
    return given


def _dataset_source(name: str) -> str:
    return f"dataset:{name} standard statistics"


def _check_channels(what: str, n: int, channels: int | None, data: str) -> None:
    if channels is not None and n != channels:
        raise UsageError(f"{what} has {n} channel(s) but the images of {data} have {channels}")


def _load_model(
    source: str | os.PathLike[str] | nn.Module, opts: EvalOptions, id_set: ImageSet | None
) -> LoadedModel:
    kw: dict[str, Any] = {"arch": opts.arch, "arch_kwargs": opts.arch_kwargs}
    kw.update(_norm_request(source, opts, id_set))
    if id_set is not None:
        kw.update(num_classes=id_set.num_classes, input_shape=id_set.input_shape)
    elif "mean" not in kw and kw["normalize"]:
        # only reading the card to find the dataset: an evalsuite checkpoint keeps its own normalization,
        # and any other model is refused right after for lack of --data, so these statistics never apply
        kw["fallback"] = ((0.0,), (1.0,), "undecided")
    return load_any_model(source, trust=opts.trust_checkpoint, **kw)


def _check_options(model: str | os.PathLike[str] | nn.Module, opts: EvalOptions) -> None:
    """Values checked before any work starts."""
    bs = opts.batch_size
    if bs is not None and (isinstance(bs, bool) or not isinstance(bs, int) or bs < 1):
        raise UsageError(f"--batch-size must be a positive integer, got {bs}")
    _one_norm_choice(opts)
    if opts.norm_stats is not None:
        require_standard_stats(opts.norm_stats)
    if isinstance(model, nn.Module):
        return
    path = Path(model)
    kind = _json_kind(path) if path.is_file() else None
    if kind == "result":
        raise UsageError(
            f"{path} is a result file, not a model; to compare results: evalsuite compare {path} OTHER.json"
        )
    if kind == "json":
        raise UsageError(f"{path} is a JSON file, not a model checkpoint")


def _json_kind(path: Path) -> str | None:
    """'result' for an evalsuite result JSON, 'json' for other JSON, None for anything else."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096).lstrip()
            f.seek(max(0, path.stat().st_size - 4096))
            tail = f.read()  # results write their schema last
    except OSError:
        return None
    if not head.startswith((b"{", b"[")):
        return None
    return "result" if b'"evalsuite-result"' in head + tail else "json"


def _dataset_from_card(loaded: LoadedModel) -> str:
    """The checkpoint's dataset, if it is a registered name: metadata never names a path to read."""
    spec = loaded.card.dataset
    if not spec or spec == "unknown":
        raise UsageError("the checkpoint does not say its dataset; pass --data (e.g. --data cifar10)")
    if not is_registered_name(spec):
        raise UsageError(
            f"the checkpoint names dataset {spec!r}, not a registered name ({', '.join(named_datasets())}); "
            "pass --data to choose the test set"
        )
    return spec


def _check_input(loaded: LoadedModel, data: ImageSet, spec: str, device: torch.device) -> None:
    """The model's input size and channels against the data: from the card, then one real forward pass."""
    want = loaded.card.input_shape
    have = data.input_shape
    if want is not None and tuple(want) != tuple(have):
        raise UsageError(
            f"model takes {_shape(want)} images but {spec} has {_shape(have)}; pass data of the model's size"
        )
    try:
        with torch.inference_mode():
            out = loaded.model(data.images(slice(0, 1)).to(device))
    except Exception as e:  # the user's model on the user's data: any failure is an input mismatch
        raise UsageError(f"model fails on {spec} images {_shape(have)}: {_last_line(e)}") from None
    if out.ndim != 2:
        raise UsageError(f"model returns shape {tuple(out.shape)} on {spec}, expected [batch, classes]")
    if out.shape[1] != data.num_classes:
        raise UsageError(f"model outputs {out.shape[1]} classes, {spec} has {data.num_classes}")


def _last_line(e: BaseException) -> str:
    """The cause of a failed forward pass; TorchScript puts it last, after its own traceback."""
    lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()]
    if not lines:
        return type(e).__name__
    line = lines[-1] if "Traceback" in str(e) else " ".join(lines)
    return line[:200]


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in shape)


def chance_warning(accuracy: float, labels: np.ndarray, normalization: dict[str, Any]) -> str | None:
    """A sentence when clean accuracy is near chance, the usual sign of a wrong input normalization.

    Chance is the majority-class rate; "near" is within max(5, min(10, 100 * chance)) points of it, so
    10 points for 10 classes, 5 for 100.
    """
    if labels.size == 0:
        return None
    chance = float(np.bincount(labels).max() / labels.size)
    margin = min(0.10, max(0.05, chance))
    if accuracy >= chance + margin - 1e-9:  # 0.01 + 0.05 must not fall short of 0.06 by rounding
        return None
    return (
        f"clean accuracy {accuracy:.3f} is within {margin * 100:.0f} points of chance ({chance:.3f}): "
        f"usually wrong normalization (used {format_normalization(normalization)}); "
        "check --mean/--std, --no-normalize or --norm-stats"
    )


def evaluate(
    model: str | os.PathLike[str] | nn.Module,
    config: BatteryConfig | None = None,
    options: EvalOptions | None = None,
    **option_overrides: Any,
) -> EvalResult:
    """Run the battery on a checkpoint path (any format ``load_any_model`` reads) or an nn.Module.

    The result is written to ``options.out`` (JSON, plus ``.npz`` of per-example arrays) when given, and
    cached by (checkpoint sha256, battery config, data specs) unless ``cache=False``.
    """
    result, _ = evaluate_with_arrays(model, config, options, **option_overrides)
    return result


def evaluate_with_arrays(
    model: str | os.PathLike[str] | nn.Module,
    config: BatteryConfig | None = None,
    options: EvalOptions | None = None,
    **option_overrides: Any,
) -> tuple[EvalResult, Arrays]:
    cfg = config or BatteryConfig()
    opts = options or EvalOptions()
    for k, v in option_overrides.items():
        if not hasattr(opts, k):
            raise UsageError(f"unknown evaluate option {k!r}")
        setattr(opts, k, v)
    _check_options(model, opts)
    _check_out(opts, model, opts.data)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()

    data_spec = opts.data
    loaded: LoadedModel | None = None
    if data_spec is None:
        if isinstance(model, nn.Module):
            raise UsageError("evaluating an in-memory model needs data= (a dataset spec)")
        loaded = _load_model(model, opts, None)
        data_spec = _dataset_from_card(loaded)
        _check_out(opts, model, data_spec)
    id_full = load_dataset(data_spec, "test", opts.data_root, opts.download)
    if loaded is None:
        loaded = _load_model(model, opts, id_full)
    elif loaded.card.num_classes and loaded.card.num_classes != id_full.num_classes:
        raise UsageError(
            f"model has {loaded.card.num_classes} classes but {data_spec} has {id_full.num_classes}"
        )
    timings["load"] = time.perf_counter() - t0

    ood_specs = list(opts.ood) if opts.ood is not None else list(DEFAULT_OOD.get(data_spec, ()))
    if "ood" not in cfg.checks:
        ood_specs = []
    named = [_ood_name(s) for s in ood_specs]
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise UsageError(f"OOD set names must differ, got {names}; name them like --ood imagenet=npz:PATH")

    load_options = {
        "arch": opts.arch,
        "arch_file_sha256": _arch_file_sha(opts.arch),
        "arch_kwargs": opts.arch_kwargs,
        "mean": list(opts.mean) if opts.mean else None,
        "std": list(opts.std) if opts.std else None,
        "normalize": opts.normalize,
        "norm_stats": opts.norm_stats,
    }
    id_fingerprint = spec_fingerprint(data_spec, opts.data_root)
    ood_fingerprints = [spec_fingerprint(s, opts.data_root) for _, s in named]
    cache_parts = cache.key_parts(
        model_sha256=loaded.sha256,
        config=cfg.identity(),
        data=id_fingerprint,
        ood=[[n, fp] for (n, _), fp in zip(named, ood_fingerprints)],
        load=load_options,
    )
    key = cache.cache_key(cache_parts)
    hit = cache.lookup(cache_dir(opts.cache_dir), key) if opts.cache and loaded.sha256 else None
    if hit is not None:
        result, arrays = hit
        # the numbers are the cached ones; the name and source are this call's
        result.model["name"] = opts.name or _display_name(model, loaded.card)
        result.model["source"] = str(model)
        if opts.out is not None:
            save_result(result, arrays, Path(opts.out))
        return result, arrays

    device = pick_device(opts.device)
    net = loaded.model.to(device).eval()
    bs = opts.batch_size or default_batch_size(device)
    _check_input(loaded, id_full, data_spec, device)
    normalization = dict(loaded.normalization)
    log.info("normalization: %s", format_normalization(normalization))
    for note in loaded.notes:
        if note.startswith("ignored"):
            log.warning("%s", note)

    id_idx = _positions(len(id_full), cfg.limit, id_full.y, cfg.seed, cfg.shard)
    if len(id_idx) == 0:
        raise UsageError(
            f"shard {cfg.shard[0]}/{cfg.shard[1]} of {data_spec} holds no examples"
            if cfg.shard
            else f"{data_spec} holds no test examples"
        )
    id_set = id_full.select(id_idx)
    arrays: Arrays = {
        "id/index": id_idx.numpy().astype(np.int64),
        "id/labels": id_set.y.numpy().astype(np.int64),
    }
    ood_sets: dict[str, ImageSet] = {}
    for name, spec in named:
        full = load_dataset(spec, "test", opts.data_root, opts.download, shape=id_full.input_shape)
        if full.input_shape != id_full.input_shape:
            raise DataError(
                f"OOD set {name} ({spec}) has images {full.input_shape}, the ID set {id_full.input_shape}"
            )
        idx = _positions(
            len(full), cfg.limit, torch.zeros(len(full), dtype=torch.long), cfg.seed + 1, cfg.shard
        )
        ood_sets[name] = full.select(idx)
        arrays[f"ood/{name}/index"] = idx.numpy().astype(np.int64)

    t = time.perf_counter()
    bar = _bar(opts.progress, len(id_set) + sum(len(s) for s in ood_sets.values()), "predict")
    arrays["id/logits"] = predict_logits(net, id_set, device, bs, bar)
    for name, s in ood_sets.items():
        arrays[f"ood/{name}/logits"] = predict_logits(net, s, device, bs, bar)
    _close(bar)
    timings["predict"] = time.perf_counter() - t
    if arrays["id/logits"].shape[1] != id_full.num_classes:
        raise UsageError(
            f"model outputs {arrays['id/logits'].shape[1]} classes, {data_spec} has {id_full.num_classes}"
        )
    arrays = derive_id_arrays(arrays)
    arrays = derive_scores(arrays, cfg.ood_scores if "ood" in cfg.checks else (), list(ood_sets))

    sanity: dict[str, Any] = {}
    robust_details: dict[str, Any] = {}
    if "robust" in cfg.checks and cfg.attacks:
        t = time.perf_counter()
        configs = []
        for a in cfg.attacks:
            spec = ATTACKS.get(a)
            eps = cfg.eps_linf if spec.norm == "linf" else cfg.eps_l2
            if eps:
                configs.append(
                    AttackConfig(
                        a,
                        tuple(eps),
                        steps=cfg.pgd_steps,
                        rel_stepsize=cfg.pgd_rel_stepsize,
                        restarts=cfg.pgd_restarts,
                        seed=cfg.seed,
                    )
                )
        clean_correct = torch.from_numpy(arrays["id/correct"].copy())
        rbar = _bar(opts.progress, sum(len(c.eps) for c in configs), "robust", unit="(attack, eps)")
        from evalsuite.attacks.robust import run_attacks  # torchattacks: only when attacking

        rob = run_attacks(
            net,
            id_set.images(),
            id_set.y,
            clean_correct,
            configs,
            batch_size=min(bs, 256),
            device=device,
            seed=cfg.seed,
            example_ids=id_idx,
            on_attack_done=(lambda name, k: rbar.update(k)) if rbar is not None else None,
        )
        _close(rbar)
        for (attack, eps), outcome in rob.outcomes.items():
            arrays[robust_key(attack, eps)] = outcome.robust.numpy().astype(bool)
        sanity["robust_flags"] = rob.flags
        robust_details = rob.to_dict()
        timings["robust"] = time.perf_counter() - t

    metrics, details = summarize(arrays, cfg.checks, cfg.ood_scores, cfg.n_bins)
    if "accuracy" in metrics:
        warning = chance_warning(float(metrics["accuracy"]), arrays["id/labels"], normalization)
        if warning is not None:
            log.warning("%s", warning)
            sanity.setdefault("warnings", []).append(warning)
    if robust_details:
        details["robust"] = robust_details
        acc = metrics.get("accuracy")
        if acc is not None:
            sanity["robust_le_clean"] = all(
                v <= acc + 1e-12 for k, v in metrics.items() if k.startswith("robust/")
            )
    if "sparsity" in cfg.checks:
        t = time.perf_counter()
        cpu_model = loaded.model
        layers = prunable_layers(cpu_model, torch.zeros(1, *id_full.input_shape, device=device))
        rep = density_report(cpu_model, layers, loaded.masks or None)
        metrics["sparsity/density"] = rep["density"]
        if rep["mask_density"] is not None:
            metrics["sparsity/mask_density"] = rep["mask_density"]
            metrics["sparsity/masked_nonzero"] = rep["masked_nonzero"]
            sanity["masked_weights_zero"] = rep["masked_nonzero"] == 0
        for k in ("params", "nonzero_params", "macs_dense", "macs_sparse"):
            metrics[f"sparsity/{k}"] = rep[k]
        details["sparsity"] = rep
        timings["sparsity"] = time.perf_counter() - t
    timings["total"] = time.perf_counter() - t0

    card = loaded.card
    n_ood = {n: len(s) for n, s in ood_sets.items()}
    result = EvalResult(
        metrics=metrics,
        metric_info=metric_info(metrics, len(id_set), n_ood),
        config=cfg.to_dict(),
        conventions={
            **CONVENTIONS,
            "attacks": ATTACK_CONVENTION,
            "density": "fraction of prunable weights kept",
        },
        data={
            "id": {
                "spec": data_spec,
                "fingerprint": id_fingerprint,
                "split": "test",
                "n": len(id_set),
                "of": len(id_full),
                "limit": cfg.limit,
                "subset_seed": cfg.seed if cfg.limit else None,
                "shard": cfg.shard,
                "subset_method": "stratified" if cfg.limit else None,
            },
            "ood": [
                {"name": n, "spec": s, "n": n_ood[n], "limit": cfg.limit, "fingerprint": fp}
                for (n, s), fp in zip(named, ood_fingerprints)
            ],
        },
        model={
            "name": opts.name or _display_name(model, card),
            "source": str(model) if not isinstance(model, nn.Module) else "<in-memory>",
            "sha256": loaded.sha256,
            "source_format": loaded.source_format,
            "load_options": load_options,
            "normalization": normalization,
            "notes": list(loaded.notes),
            "card": card.to_dict(),
        },
        provenance=provenance(device=device_name(device), seed=cfg.seed, cache_key=key),
        timings={k: round(v, 4) for k, v in timings.items()},
        sanity=sanity,
        details=details,
    )
    if opts.cache and loaded.sha256:
        cache.store(cache_dir(opts.cache_dir), key, cache_parts, result, arrays)
    if opts.out is not None:
        save_result(result, arrays, Path(opts.out))
    return result, arrays


def _display_name(model: Any, card: Any) -> str:
    if isinstance(model, nn.Module):
        return type(model).__name__
    return Path(str(model)).stem


def _bar(enabled: bool, total: int, desc: str, unit: str = "img") -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True)


def _close(bar: Any) -> None:
    if bar is not None:
        bar.close()
