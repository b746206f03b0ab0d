"""``evaluate``: load a model, predict once per dataset, run the configured checks, build the EvalResult.

The battery is a sequence of named stages passing frozen values; ``evaluate_with_arrays`` reads as that
sequence, with the result cache between loading and the work:

    load_stage    -> Loaded        model, ID test set, OOD specs, data fingerprints (the cache key's inputs)
    select_stage  -> Selection     model on its device, the seeded subset/shard of the ID and each OOD set
    predict_stage -> Predictions   logits (and penultimate features for feature scores): one pass per dataset
    feature_stage -> FeatureOutcome feature OOD scores: detectors fit (or cached) on training features, ODIN
    score_stage   -> Arrays        per-example prediction, confidence, correctness, NLL, Brier, OOD scores
    attack_stage  -> RobustOutcome per-example robust masks, sanity flags (None without the robust check)
    measure_stage -> Measured      metrics, details and sanity from the arrays
    audit_stage   -> SparsityAudit density and MACs of the model as loaded
    assemble      -> EvalResult

Cost: one forward pass per dataset (ID test set and each OOD set), shared by every clean, calibration and
OOD metric; the clean-correct set for the attacks comes from that same pass. Feature scores add one pass
over the fit subset of the training split (skipped when its statistics are cached) and, for ODIN, one
forward-backward plus one forward per ID and OOD batch (an FGSM step).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evalsuite.attacks import AttackConfig
from evalsuite.battery import cache
from evalsuite.battery import features as FT
from evalsuite.battery.cache import cache_dir
from evalsuite.battery.config import BatteryConfig
from evalsuite.battery.options import (
    EvalOptions,
    ModelSource,
    check_options,
    check_out,
    load_options,
    norm_request,
)
from evalsuite.battery.predict import default_batch_size, predict_logits
from evalsuite.battery.summarize import (
    Arrays,
    derive_corruption,
    derive_groups,
    derive_id_arrays,
    derive_scores,
    derive_temperature,
    fooled_by_key,
    metric_info,
    ood_set_names,
    robust_key,
    summarize,
)
from evalsuite.core.device import device_name, pick_device
from evalsuite.core.errors import DataError, UsageError
from evalsuite.core.provenance import provenance
from evalsuite.core.results import (  # noqa: F401  (EvalResult, load_arrays, save_result re-exported)
    EvalResult,
    format_normalization,
    load_arrays,
    save_result,
)
from evalsuite.data import ImageSet, is_registered_name, load_dataset, named_datasets
from evalsuite.data.base import DatasetOptions, spec_fingerprint, stratified_indices
from evalsuite.data.ood_groups import ood_groups, parse_ood_groups
from evalsuite.metrics import CONVENTIONS
from evalsuite.metrics import catalogue as K
from evalsuite.models.foreign import LoadedModel, load_any_model
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
    "single-step FGSM at each eps; autoattack(_l2) is the reference package (pyautoattack) at each eps on "
    "the clean-correct examples, seeded with the battery seed, no cascade"
)
AA_CASCADE_CONVENTION = (
    "; with --aa-cascade autoattack(_l2) attacks only what fgsm/pgd of its norm at that eps or below and "
    "itself at a smaller eps left standing, counting the rest fooled (fooled_by/earlier): robust accuracy "
    "against the union of the attacks"
)

CORRUPTION_CONVENTION = (
    "corruption/<c>/<s>/{accuracy,nll,ece} are measured on corrupted set c at severity s "
    "(--corruption-data), "
    "every set on the same positions (--limit: a seeded stratified subset, then --shard); "
    "corruption/mean/<m> and corruption/severity/<s>/<m> weigh every set the same (mean of the per-set "
    "values), and their intervals and permutation tests resample whole images (each with all its corrupted "
    "copies); corrupt:SPEC generates the images with imagecorruptions (ImageNet-C parameters) seeded with 0"
)

OOD_GROUP_CONVENTION = (
    "ood/group/<group>/<score>/<metric> = unweighted mean over the group's OOD sets of each set's metric "
    "(OpenOOD's near/far averages); each set is scored against the same ID examples"
)

# ---------------------------------------------------------------- what passes between the stages


@dataclass(frozen=True)
class Loaded:
    """The model and the identity of everything it is evaluated on: enough for the cache key."""

    source: ModelSource
    model: LoadedModel
    data_spec: str
    id_full: ImageSet
    ood: tuple[tuple[str, str], ...]
    """(name, spec) of each OOD set, in order; empty without the ood check."""
    load_options: dict[str, Any]
    id_fingerprint: dict[str, object]
    ood_fingerprints: tuple[dict[str, object], ...]
    seconds: float
    calib_fingerprint: dict[str, object] | None = None
    """Of ``--calib-data``, when temperature scaling fits on a separate set."""
    fit: FT.FitSource | None = None
    """The feature detectors' fit data, when a fitted feature score is selected."""
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """OOD group -> its sets' names (``--ood near:cifar100,far:svhn``); empty when ungrouped."""
    corruption_fingerprint: dict[str, object] | None = None
    """Of ``--corruption-data``, when the corruption check runs."""

    def cache_parts(self, cfg: BatteryConfig) -> dict[str, Any]:
        """Cache-key parts: model hash, config identity, data and OOD fingerprints, load options."""
        data: dict[str, object] = self.id_fingerprint
        if self.calib_fingerprint is not None:
            data = {**data, "calib": self.calib_fingerprint}
        if self.fit is not None:
            data = {**data, "fit": {"spec": self.fit.spec, "fingerprint": self.fit.fingerprint}}
        if self.corruption_fingerprint is not None:
            data = {**data, "corruption": self.corruption_fingerprint}
        return cache.key_parts(
            model_sha256=self.model.sha256,
            config=cfg.identity(),
            data=data,
            ood=[[n, fp] for (n, _), fp in zip(self.ood, self.ood_fingerprints)],
            **({"ood_groups": self.groups} if self.groups else {}),
            load=self.load_options,
        )


@dataclass(frozen=True)
class OODSet:
    """One OOD set as evaluated: its name, spec, the positions taken and the images."""

    name: str
    spec: str
    index: torch.Tensor
    """Positions in the full split."""
    images: ImageSet


@dataclass(frozen=True)
class CorruptionSelection:
    """The corrupted sets to score, all on the same positions ``index`` (their labels agree)."""

    spec: str
    index: torch.Tensor
    """Positions in each corrupted set (every set holds the same images, differently corrupted)."""
    labels: torch.Tensor
    sets: tuple[Any, ...]
    """``data.corruptions.CorruptionSet`` per (corruption, severity), in the paper's order; full sets,
    selected one at a time as they are predicted (CIFAR-10-C is memory-mapped)."""
    of: int


@dataclass(frozen=True)
class Selection:
    """The examples to score and the model that scores them, on its device."""

    net: nn.Module
    device: torch.device
    data_spec: str
    batch_size: int
    id_index: torch.Tensor
    """Positions of the ID examples in the full test split (pairs examples across models)."""
    id_set: ImageSet
    ood: tuple[OODSet, ...]
    normalization: dict[str, Any]
    calib: CalibSplit | None = None
    features: FT.FeatureProbe | None = None
    """The feature layer, when a fitted feature score is selected (the predict pass then records features)."""
    corruption: CorruptionSelection | None = None


@dataclass(frozen=True)
class CalibSplit:
    """The held-out examples a temperature is fit on, disjoint from the test examples."""

    spec: str
    index: torch.Tensor
    """Positions in the full split of ``spec`` (the ID test split for ``--calib-fraction``)."""
    images: ImageSet
    record: dict[str, Any]
    """What the result records under ``data.calibration``."""


@dataclass(frozen=True)
class Predictions:
    """Logits and indices from the prediction stage, with the seconds it took."""

    arrays: Arrays
    """``id/index``, ``id/labels``, ``id/logits`` and ``ood/<set>/index``, ``ood/<set>/logits``."""
    seconds: float


@dataclass(frozen=True)
class FeatureOutcome:
    """Feature OOD scores of every ID and OOD example, the fit record and the seconds of fit and ODIN."""

    arrays: Arrays
    """``id/score/<s>`` and ``ood/<set>/score/<s>`` for each feature score."""
    fit_record: dict[str, Any] | None
    seconds: dict[str, float]


@dataclass(frozen=True)
class RobustOutcome:
    """Per-(attack, eps) robustness masks, sanity flags and details from the attack stage."""

    arrays: Arrays
    """``robust/<attack>/<eps>/correct`` for every (attack, eps)."""
    flags: tuple[str, ...]
    details: dict[str, Any]
    """``RobustnessResult.to_dict()``: configs, clean accuracy, one row per (attack, eps)."""
    seconds: float


@dataclass(frozen=True)
class Measured:
    """Metrics, their details and sanity checks computed from the stage arrays."""

    metrics: dict[str, float]
    details: dict[str, Any]
    sanity: dict[str, Any]


@dataclass(frozen=True)
class SparsityAudit:
    """The sparsity report of the loaded model, with the seconds the audit took."""

    report: dict[str, Any]
    """``density_report`` of the model as loaded (its masks when it has them)."""
    seconds: float

    def metrics(self) -> dict[str, float]:
        """The report as ``sparsity/<name>`` metrics (mask entries only when the model has masks)."""
        rep = self.report
        out = {"sparsity/density": rep["density"]}
        if rep["mask_density"] is not None:
            out["sparsity/mask_density"] = rep["mask_density"]
            out["sparsity/masked_nonzero"] = rep["masked_nonzero"]
        for k in ("params", "nonzero_params", "macs_dense", "macs_sparse"):
            out[f"sparsity/{k}"] = rep[k]
        return out

    def sanity(self) -> dict[str, Any]:
        """``{"masked_weights_zero": bool}`` when the model has masks, else an empty dict."""
        if self.report["mask_density"] is None:
            return {}
        return {"masked_weights_zero": self.report["masked_nonzero"] == 0}


# ---------------------------------------------------------------- the sequence


def evaluate(
    model: ModelSource,
    config: BatteryConfig | None = None,
    options: EvalOptions | None = None,
    **option_overrides: Any,
) -> EvalResult:
    """Run the battery on a checkpoint path (any format ``load_any_model`` reads) or an nn.Module.

    ``option_overrides`` are ``EvalOptions`` fields applied to a copy of ``options``. The result is written
    to ``options.out`` (JSON, plus ``.npz`` of per-example arrays) when given, and cached by (checkpoint
    sha256, battery config, data specs) unless ``cache=False``.
    """
    result, _ = evaluate_with_arrays(model, config, options, **option_overrides)
    return result


def evaluate_with_arrays(
    model: ModelSource,
    config: BatteryConfig | None = None,
    options: EvalOptions | None = None,
    **option_overrides: Any,
) -> tuple[EvalResult, Arrays]:
    """``evaluate``, also returning the per-example arrays every metric is computed from."""
    cfg = config or BatteryConfig()
    opts = (options or EvalOptions()).with_overrides(option_overrides)
    t0 = time.perf_counter()
    loaded = load_stage(model, cfg, opts)
    parts = loaded.cache_parts(cfg)
    key = cache.cache_key(parts)
    cacheable = bool(opts.cache and loaded.model.sha256)
    hit = cache.lookup(cache_dir(opts.cache_dir), key) if cacheable else None
    if hit is not None:
        result, arrays = hit
        # the numbers are the cached ones; the name and source are this call's
        result.model["name"] = opts.name or _display_name(model)
        result.model["source"] = str(model)
    else:
        sel = select_stage(loaded, cfg, opts)
        preds = predict_stage(sel, opts.progress)
        feats = feature_stage(loaded, sel, preds, cfg, opts)
        arrays = score_stage(_without_features(preds.arrays), cfg)
        if feats is not None:
            arrays = {**arrays, **feats.arrays}
        if loaded.groups:
            arrays = derive_groups(arrays, loaded.groups)
        robust = attack_stage(sel, arrays, cfg.attack_configs(), opts.progress)
        if robust is not None:
            arrays = {**arrays, **robust.arrays}
        measured = measure_stage(arrays, cfg, sel.normalization, robust)
        audit = audit_stage(loaded.model, sel) if "sparsity" in cfg.checks else None
        seconds = _timings(loaded, preds, robust, audit, time.perf_counter() - t0, feats)
        result = assemble(loaded, sel, measured, audit, cfg, opts, key, seconds, feats)
        if cacheable:
            cache.store(cache_dir(opts.cache_dir), key, parts, result, arrays)
    if opts.out is not None:
        save_result(result, arrays, Path(opts.out))
    return result, arrays


# ---------------------------------------------------------------- the stages


def load_stage(model: ModelSource, cfg: BatteryConfig, opts: EvalOptions) -> Loaded:
    """Check the options, load the model and the full ID test set, name the OOD sets, fingerprint the data.

    Everything a bad input can be refused for without a forward pass is refused here; the OOD images are
    read later (``select_stage``), so a cache hit never reads them.
    """
    check_options(model, opts)
    check_out(opts, model, opts.data)
    t0 = time.perf_counter()
    data_spec = opts.data
    loaded: LoadedModel | None = None
    if data_spec is None:
        if isinstance(model, nn.Module):
            raise UsageError("evaluating an in-memory model needs data= (a dataset spec)")
        loaded = _load_model(model, opts, None)
        data_spec = _dataset_from_card(loaded)
        check_out(opts, model, data_spec)
    id_full = load_dataset(data_spec, "test", opts.data_root, opts.download)
    if loaded is None:
        loaded = _load_model(model, opts, id_full)
    elif loaded.card.num_classes and loaded.card.num_classes != id_full.num_classes:
        raise UsageError(
            f"model has {loaded.card.num_classes} classes but {data_spec} has {id_full.num_classes}"
        )
    seconds = time.perf_counter() - t0
    ood, groups = _ood_specs(data_spec, cfg, opts)
    id_fingerprint = spec_fingerprint(data_spec, opts.data_root)
    return Loaded(
        source=model,
        model=loaded,
        data_spec=data_spec,
        id_full=id_full,
        ood=ood,
        load_options=load_options(opts),
        id_fingerprint=id_fingerprint,
        ood_fingerprints=tuple(spec_fingerprint(s, opts.data_root) for _, s in ood),
        seconds=seconds,
        calib_fingerprint=spec_fingerprint(cfg.calib_data, opts.data_root) if cfg.calib_data else None,
        fit=FT.fit_source(cfg, data_spec, id_fingerprint, opts.data_root),
        groups=groups,
        corruption_fingerprint=_corruption_fingerprint(cfg, opts),
    )


def select_stage(loaded: Loaded, cfg: BatteryConfig, opts: EvalOptions) -> Selection:
    """Put the model on its device, check it against the data, and take the examples this run scores."""
    device = pick_device(opts.device)
    net = loaded.model.model.to(device).eval()
    _check_input(loaded.model, loaded.id_full, loaded.data_spec, device)
    probed = FT.probe(net, loaded.id_full.images(slice(0, 1)).to(device), cfg)
    normalization = dict(loaded.model.normalization)
    log.info("normalization: %s", format_normalization(normalization))
    for note in loaded.model.notes:
        if note.startswith("ignored"):
            log.warning("%s", note)
    id_full = loaded.id_full
    calib = _calib_split(loaded, cfg, opts)
    if calib is not None and cfg.calib_data is None:
        # the calibration part is carved from the full split before --limit and --shard, so every shard
        # fits the same temperature and no test example is ever a calibration example
        rest = torch.ones(len(id_full), dtype=torch.bool)
        rest[calib.index] = False
        pool = rest.nonzero().flatten()
        id_idx = pool[_positions(len(pool), cfg.limit, id_full.y[pool], cfg.seed, cfg.shard)]
    else:
        id_idx = _positions(len(id_full), cfg.limit, id_full.y, cfg.seed, cfg.shard)
    if len(id_idx) == 0:
        raise UsageError(
            f"shard {cfg.shard[0]}/{cfg.shard[1]} of {loaded.data_spec} holds no examples"
            if cfg.shard
            else f"{loaded.data_spec} holds no test examples"
        )
    ood = []
    for name, spec in loaded.ood:
        full = load_dataset(spec, "test", opts.data_root, opts.download, shape=id_full.input_shape)
        if full.input_shape != id_full.input_shape:
            raise DataError(
                f"OOD set {name} ({spec}) has images {full.input_shape}, the ID set {id_full.input_shape}"
            )
        # OOD sets have no classes to stratify by: one label for all gives a seeded random subset
        idx = _positions(
            len(full), cfg.limit, torch.zeros(len(full), dtype=torch.long), cfg.seed + 1, cfg.shard
        )
        ood.append(OODSet(name, spec, idx, full.select(idx)))
    corruption = _corruption_selection(id_full, cfg, opts)
    return Selection(
        net=net,
        device=device,
        data_spec=loaded.data_spec,
        batch_size=opts.batch_size or default_batch_size(device),
        id_index=id_idx,
        id_set=id_full.select(id_idx),
        ood=tuple(ood),
        normalization=normalization,
        calib=calib,
        features=probed,
        corruption=corruption,
    )


def predict_stage(sel: Selection, progress: bool = False) -> Predictions:
    """Logits of every selected example: one forward pass per dataset."""
    arrays: Arrays = {
        "id/index": sel.id_index.numpy().astype(np.int64),
        "id/labels": sel.id_set.y.numpy().astype(np.int64),
    }
    for s in sel.ood:
        arrays[f"ood/{s.name}/index"] = s.index.numpy().astype(np.int64)
    t = time.perf_counter()
    cor = sel.corruption
    n_cor = len(cor.index) * len(cor.sets) if cor is not None else 0
    bar = _bar(progress, len(sel.id_set) + sum(len(s.images) for s in sel.ood) + n_cor, "predict")
    if sel.features is not None:
        # the same single pass, also recording the feature layer's input
        for prefix, images in (("id", sel.id_set), *((f"ood/{s.name}", s.images) for s in sel.ood)):
            logits, feats = FT.logits_and_features(
                sel.net, images, sel.features, sel.device, sel.batch_size, bar
            )
            arrays[f"{prefix}/logits"], arrays[f"{prefix}/features"] = logits, feats
    else:
        arrays["id/logits"] = predict_logits(sel.net, sel.id_set, sel.device, sel.batch_size, bar)
        for s in sel.ood:
            arrays[f"ood/{s.name}/logits"] = predict_logits(
                sel.net, s.images, sel.device, sel.batch_size, bar
            )
    if sel.calib is not None:
        arrays["calib/index"] = sel.calib.index.numpy().astype(np.int64)
        arrays["calib/labels"] = sel.calib.images.y.numpy().astype(np.int64)
        arrays["calib/logits"] = predict_logits(sel.net, sel.calib.images, sel.device, sel.batch_size, None)
    if cor is not None:
        arrays["corruption/index"] = cor.index.numpy().astype(np.int64)
        arrays["corruption/labels"] = cor.labels.numpy().astype(np.int64)
        for cs in cor.sets:
            # one set at a time: only its selected images are ever in memory as floats
            arrays[f"corruption/{cs.corruption}/{cs.severity}/logits"] = predict_logits(
                sel.net, cs.data.select(cor.index), sel.device, sel.batch_size, bar
            )
    _close(bar)
    seconds = time.perf_counter() - t
    k = arrays["id/logits"].shape[1]
    if k != sel.id_set.num_classes:
        raise UsageError(f"model outputs {k} classes, {sel.data_spec} has {sel.id_set.num_classes}")
    return Predictions(arrays, seconds)


def feature_stage(
    loaded: Loaded, sel: Selection, preds: Predictions, cfg: BatteryConfig, opts: EvalOptions
) -> FeatureOutcome | None:
    """Feature OOD scores of every ID and OOD example; None when no feature score is selected.

    Fitted detectors score the features of the prediction pass (their statistics cached or fit here); ODIN
    runs its gradient step on the images. Empty sets get empty scores (their metrics are NaN)."""
    names = cfg.feature_scores()
    if not names:
        return None
    prefixes = ["id", *(f"ood/{s.name}" for s in sel.ood)]
    out: Arrays = {}
    seconds: dict[str, float] = {}
    record = None
    if sel.features is not None:
        assert loaded.fit is not None  # both come from cfg.fitted_scores()
        fitted = FT.fit_stage(
            sel.net,
            sel.device,
            sel.batch_size,
            loaded.fit,
            sel.id_set,
            sel.features,
            cfg,
            loaded.model.sha256,
            cache_dir(opts.cache_dir) if opts.cache else None,
            opts.data_root,
            opts.download,
        )
        record, seconds["fit"] = fitted.record, fitted.seconds
        for p in prefixes:
            for n, v in FT.feature_scores(fitted.fits, preds.arrays[f"{p}/features"]).items():
                out[f"{p}/score/{n}"] = np.asarray(v, dtype=np.float64)
    if "odin" in names:
        t = time.perf_counter()
        sets = [sel.id_set, *(s.images for s in sel.ood)]
        for p, images in zip(prefixes, sets):
            out[f"{p}/score/odin"] = FT.odin(sel.net, images, sel.device, sel.batch_size)
        seconds["odin"] = time.perf_counter() - t
    return FeatureOutcome(out, record, seconds)


def _without_features(arrays: Arrays) -> Arrays:
    """The arrays less the penultimate features: only their scores are kept in a result."""
    return {k: v for k, v in arrays.items() if not k.endswith("/features")}


def score_stage(arrays: Arrays, cfg: BatteryConfig) -> Arrays:
    """The per-example arrays every clean, calibration and OOD metric reads, derived from the logits."""
    ood_sets = ood_set_names(arrays)
    scores = cfg.ood_scores if "ood" in cfg.checks else ()
    return derive_corruption(derive_temperature(derive_scores(derive_id_arrays(arrays), scores, ood_sets)))


def attack_stage(
    sel: Selection, arrays: Arrays, configs: Sequence[AttackConfig], progress: bool = False
) -> RobustOutcome | None:
    """Attack the clean-correct ID examples with each config (``BatteryConfig.attack_configs()``), each
    with its own seed; None when there are no configs (the robust check is off)."""
    if not configs:
        return None
    t = time.perf_counter()
    clean_correct = torch.from_numpy(arrays["id/correct"].copy())
    rbar = _bar(progress, sum(len(c.eps) for c in configs), "robust", unit="(attack, eps)")
    from evalsuite.attacks.robust import run_attacks  # torchattacks: only when attacking

    rob = run_attacks(
        sel.net,
        sel.id_set.images(),
        sel.id_set.y,
        clean_correct,
        list(configs),
        batch_size=min(sel.batch_size, 256),
        device=sel.device,
        example_ids=sel.id_index,
        on_attack_done=(lambda name, k: rbar.update(k)) if rbar is not None else None,
    )
    _close(rbar)
    masks = {robust_key(a, eps): o.robust.numpy().astype(bool) for (a, eps), o in rob.outcomes.items()}
    for (a, eps), o in rob.outcomes.items():
        for sub, hit in o.fooled_by.items():
            masks[fooled_by_key(a, eps, sub)] = hit.numpy().astype(bool)
    return RobustOutcome(masks, tuple(rob.flags), rob.to_dict(), time.perf_counter() - t)


def measure_stage(
    arrays: Arrays, cfg: BatteryConfig, normalization: dict[str, Any], robust: RobustOutcome | None
) -> Measured:
    """Metrics from the arrays, with the attack details and the sanity checks on them."""
    metrics, details = summarize(arrays, cfg.checks, cfg.ood_scores, cfg.n_bins)
    sanity: dict[str, Any] = {}
    if robust is not None:
        sanity["robust_flags"] = list(robust.flags)
    if "accuracy" in metrics:
        warning = chance_warning(float(metrics["accuracy"]), arrays["id/labels"], normalization)
        if warning is not None:
            log.warning("%s", warning)
            sanity["warnings"] = [warning]
    if robust is not None:
        details["robust"] = robust.details
        acc = metrics.get("accuracy")
        if acc is not None:
            sanity["robust_le_clean"] = all(
                v <= acc + 1e-12 for k, v in metrics.items() if K.group_of(k) == "robust"
            )
    return Measured(metrics, details, sanity)


def audit_stage(model: LoadedModel, sel: Selection) -> SparsityAudit:
    """Density and MACs of every prunable layer (traced with one zero image of the data's shape)."""
    t = time.perf_counter()
    shape = sel.id_set.input_shape
    layers = prunable_layers(model.model, torch.zeros(1, *shape, device=sel.device))
    rep = density_report(model.model, layers, model.masks or None)
    return SparsityAudit(rep, time.perf_counter() - t)


def assemble(
    loaded: Loaded,
    sel: Selection,
    measured: Measured,
    audit: SparsityAudit | None,
    cfg: BatteryConfig,
    opts: EvalOptions,
    cache_key: str,
    timings: dict[str, float],
    features: FeatureOutcome | None = None,
) -> EvalResult:
    """The EvalResult: metrics with their directions and sample sizes, and the context to reproduce them."""
    metrics = dict(measured.metrics)
    details = dict(measured.details)
    sanity = dict(measured.sanity)
    if audit is not None:
        metrics.update(audit.metrics())
        sanity.update(audit.sanity())
        details["sparsity"] = audit.report
    n_ood = {s.name: len(s.images) for s in sel.ood}
    group_of = {n: g for g, names in loaded.groups.items() for n in names}
    card = loaded.model.card
    model = loaded.source
    return EvalResult(
        metrics=metrics,
        metric_info=metric_info(
            metrics,
            len(sel.id_set),
            n_ood,
            loaded.groups,
            len(sel.corruption.index) if sel.corruption is not None else None,
        ),
        config=cfg.to_dict(),
        conventions={
            **CONVENTIONS,
            "attacks": ATTACK_CONVENTION + (AA_CASCADE_CONVENTION if cfg.aa_cascade else ""),
            "density": "fraction of prunable weights kept",
            **({"ood_features": FT.FEATURE_CONVENTION} if features is not None else {}),
            **({"ood_groups": OOD_GROUP_CONVENTION} if loaded.groups else {}),
            **({"corruption": CORRUPTION_CONVENTION} if sel.corruption is not None else {}),
        },
        data={
            "id": {
                "spec": loaded.data_spec,
                "fingerprint": loaded.id_fingerprint,
                "split": "test",
                "n": len(sel.id_set),
                "of": len(loaded.id_full),
                "limit": cfg.limit,
                "subset_seed": cfg.seed if cfg.limit else None,
                "shard": cfg.shard,
                "subset_method": "stratified" if cfg.limit else None,
            },
            "ood": [
                {
                    "name": n,
                    "spec": s,
                    "n": n_ood[n],
                    "limit": cfg.limit,
                    "fingerprint": fp,
                    **({"group": group_of[n]} if n in group_of else {}),
                }
                for (n, s), fp in zip(loaded.ood, loaded.ood_fingerprints)
            ],
            **({"ood_groups": {g: list(v) for g, v in loaded.groups.items()}} if loaded.groups else {}),
            **({"calibration": sel.calib.record} if sel.calib is not None else {}),
            **({"fit": features.fit_record} if features is not None and features.fit_record else {}),
            **({"corruption": _corruption_record(sel.corruption, loaded, cfg)} if sel.corruption else {}),
        },
        model={
            "name": opts.name or _display_name(model),
            "source": str(model) if not isinstance(model, nn.Module) else "<in-memory>",
            "sha256": loaded.model.sha256,
            "source_format": loaded.model.source_format,
            "load_options": loaded.load_options,
            "normalization": sel.normalization,
            "notes": list(loaded.model.notes),
            "card": card.to_dict(),
        },
        provenance=provenance(device=device_name(sel.device), seed=cfg.seed, cache_key=cache_key),
        timings={k: round(v, 4) for k, v in timings.items()},
        sanity=sanity,
        details=details,
    )


# ---------------------------------------------------------------- helpers


def _timings(
    loaded: Loaded,
    preds: Predictions,
    robust: RobustOutcome | None,
    audit: SparsityAudit | None,
    total: float,
    features: FeatureOutcome | None = None,
) -> dict[str, float]:
    timings = {"load": loaded.seconds, "predict": preds.seconds}
    if features is not None:
        timings.update(features.seconds)
    if robust is not None:
        timings["robust"] = robust.seconds
    if audit is not None:
        timings["sparsity"] = audit.seconds
    timings["total"] = total
    return timings


def _ood_specs(
    data_spec: str, cfg: BatteryConfig, opts: EvalOptions
) -> tuple[tuple[tuple[str, str], ...], dict[str, tuple[str, ...]]]:
    """(name, spec) of the OOD sets: ``opts.ood`` (``near:cifar100,far:svhn`` groups them), else the data
    set's defaults; none without ``ood``. Also each group's set names (empty when ungrouped)."""
    if "ood" not in cfg.checks:
        return (), {}
    specs = list(opts.ood) if opts.ood is not None else list(DEFAULT_OOD.get(data_spec, ()))
    items = parse_ood_groups(specs)
    return tuple((i.name, i.spec) for i in items), ood_groups(items)


def _corruption_fingerprint(cfg: BatteryConfig, opts: EvalOptions) -> dict[str, object] | None:
    """What identifies ``--corruption-data``: the official folder's files (name, size, mtime; hashing
    2.9 GB per run would cost more than the run), or the source spec's fingerprint and the
    imagecorruptions version for ``corrupt:``. Refuses a missing folder before any forward pass."""
    spec = cfg.corruption_data
    if spec is None:
        return None
    from evalsuite.data import corruptions as CR

    kind, _, arg = spec.partition(":")
    base, _, _ = CR.split_selector(arg)
    if kind in CR.OFFICIAL:
        root = Path(opts.data_root).expanduser() if opts.data_root else None
        folder = CR.official_folder(
            CR.OFFICIAL[kind], base, DatasetOptions(root=root, download=opts.download)
        )
        files = sorted(folder.glob("*.npy"))
        stats = [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]
        return {"spec": spec, "path": str(folder.resolve()), "files": stats}
    if not base:
        raise UsageError("'corrupt' needs a dataset spec: 'corrupt:SPEC', e.g. corrupt:digits")
    return {
        "spec": spec,
        "source": spec_fingerprint(base, opts.data_root),
        "imagecorruptions": CR.imagecorruptions_version(),
    }


def _corruption_selection(
    id_full: ImageSet, cfg: BatteryConfig, opts: EvalOptions
) -> CorruptionSelection | None:
    """The corrupted sets and the positions scored in each: a seeded stratified ``--limit`` subset, then
    the ``--shard``, the same for every set so that the sets' metrics are of the same images."""
    if cfg.corruption_data is None:
        return None
    from evalsuite.data.corruptions import load_corruption_sets

    spec = cfg.corruption_data
    sets = load_corruption_sets(
        spec,
        cfg.corruptions,
        cfg.severities,
        root=opts.data_root,
        download=opts.download,
        shape=id_full.input_shape,
        seed=0,
    )
    first = sets[0].data
    for cs in sets:
        d = cs.data
        if d.input_shape != id_full.input_shape:
            raise DataError(
                f"--corruption-data {cs.name} has images {d.input_shape}, the ID set {id_full.input_shape}"
            )
        if d.num_classes != id_full.num_classes:
            raise DataError(
                f"--corruption-data {cs.name} has {d.num_classes} classes, the ID set {id_full.num_classes}"
            )
        if len(d) != len(first) or not torch.equal(d.y, first.y):
            raise DataError(f"--corruption-data {cs.name}: its labels differ from {sets[0].name}'s")
    idx = _positions(len(first), cfg.limit, first.y, cfg.seed + 3, cfg.shard)
    if len(idx) == 0:
        raise UsageError(f"--corruption-data {spec}: the selection holds no examples")
    return CorruptionSelection(spec, idx, first.y[idx], tuple(sets), len(first))


def _corruption_record(cor: CorruptionSelection, loaded: Loaded, cfg: BatteryConfig) -> dict[str, Any]:
    return {
        "spec": cor.spec,
        "fingerprint": loaded.corruption_fingerprint,
        "corruptions": list(dict.fromkeys(cs.corruption for cs in cor.sets)),
        "severities": sorted({cs.severity for cs in cor.sets}),
        "sets": [cs.name for cs in cor.sets],
        "n": len(cor.index),
        "of": cor.of,
        "limit": cfg.limit,
        "subset_seed": cfg.seed + 3 if cfg.limit else None,
        "subset_method": "stratified" if cfg.limit else None,
        "generation_seed": 0 if cor.spec.startswith("corrupt:") else None,
    }


def _calib_split(loaded: Loaded, cfg: BatteryConfig, opts: EvalOptions) -> CalibSplit | None:
    """The temperature-scaling split: ``--calib-data``, or a seeded stratified part of the ID test split."""
    if cfg.calibrate is None:
        return None
    id_full = loaded.id_full
    if cfg.calib_data is not None:
        if loaded.calib_fingerprint == loaded.id_fingerprint or cfg.calib_data == loaded.data_spec:
            raise UsageError(
                f"--calib-data {cfg.calib_data} is the test set itself; the temperature must be fit on "
                "held-out data (or use --calib-fraction)"
            )
        full = load_dataset(cfg.calib_data, "test", opts.data_root, opts.download, shape=id_full.input_shape)
        if full.input_shape != id_full.input_shape:
            raise DataError(
                f"--calib-data {cfg.calib_data} has images {full.input_shape}, "
                f"the ID set {id_full.input_shape}"
            )
        if len(full) == 0 or int(full.y.max()) >= id_full.num_classes or int(full.y.min()) < 0:
            raise DataError(
                f"--calib-data {cfg.calib_data} needs labelled examples of the "
                f"{id_full.num_classes} ID classes"
            )
        index = torch.arange(len(full))
        record: dict[str, Any] = {
            "method": cfg.calibrate,
            "spec": cfg.calib_data,
            "fingerprint": loaded.calib_fingerprint,
        }
        return CalibSplit(cfg.calib_data, index, full, {**record, "n": len(full)})
    assert cfg.calib_fraction is not None  # BatteryConfig defaults it
    n = len(id_full)
    k = round(cfg.calib_fraction * n)
    if not (1 <= k < n):
        raise UsageError(
            f"--calib-fraction {cfg.calib_fraction} of {n} test examples leaves none for one side"
        )
    # its own seed offset: the calibration part must not be the --limit subset of the same seed
    seed = cfg.seed + 2
    index = stratified_indices(id_full.y, k, seed).sort().values
    record = {
        "method": cfg.calibrate,
        "spec": loaded.data_spec,
        "split": "test",
        "fraction": cfg.calib_fraction,
        "seed": seed,
        "subset_method": "stratified",
        "n": k,
    }
    return CalibSplit(loaded.data_spec, index, id_full.select(index), record)


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


def _load_model(source: ModelSource, opts: EvalOptions, id_set: ImageSet | None) -> LoadedModel:
    kw: dict[str, Any] = {"arch": opts.arch, "arch_kwargs": opts.arch_kwargs}
    kw.update(norm_request(source, opts, id_set))
    if id_set is not None:
        kw.update(num_classes=id_set.num_classes, input_shape=id_set.input_shape)
    elif "mean" not in kw and kw["normalize"]:
        # only reading the card to find the dataset: an evalsuite checkpoint keeps its own normalization,
        # and any other model is refused right after for lack of --data, so these statistics never apply
        kw["fallback"] = ((0.0,), (1.0,), "undecided")
    return load_any_model(source, trust=opts.trust_checkpoint, **kw)


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


def _display_name(model: ModelSource) -> str:
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
