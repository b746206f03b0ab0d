"""Feature-based OOD scores in the battery: the fit split, the cached statistics, ODIN's gradient step.

The detectors themselves are pure functions in :mod:`evalsuite.ood.features`; this module decides what
they run on:

- **features** are the input of the last linear layer (``--feature-layer NAME`` overrides), recorded in the
  battery's one forward pass per dataset (``predict_stage``), never kept in the result's arrays;
- **statistics** (Mahalanobis, KNN, ReAct, ViM) are fit on a seeded stratified subset of ``--fit-limit``
  examples of the training split of ``--fit-data`` (default: the evaluated dataset's training split), one
  extra forward pass over that subset, and cached by model sha256 + fit data fingerprint + limit + seed +
  layer + evalsuite code in ``<cache dir>/fits/``; with the cache off, or for an in-memory model, they are
  recomputed, and ``data.fit.statistics`` says which;
- **ODIN** needs input gradients: it runs in the score stage on the ID and OOD images, one forward with a
  backward and one forward per batch (the cost of one FGSM step).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evalsuite.battery import cache
from evalsuite.battery.config import BatteryConfig
from evalsuite.core.errors import DataError, EvalsuiteError, UsageError
from evalsuite.data import ImageSet, is_registered_name, load_dataset
from evalsuite.data.base import spec_fingerprint, spec_path, stratified_indices
from evalsuite.models.features import (
    feature_storage_dtype,
    linear_head,
    penultimate_features,
)
from evalsuite.ood.features import (
    FITTED_TYPES,
    KNN_K,
    ODIN_EPS,
    ODIN_TEMPERATURE,
    REACT_PERCENTILE,
    _Fitted,
    fit_detectors,
    load_fitted,
    odin_scores,
    score_detectors,
)

log = logging.getLogger(__name__)

FIT_SPLIT = "train"
# the fit subset's seed offset from the battery seed: never the --limit subset (+0), the OOD subsets (+1)
# or the --calib-fraction part (+2) of the same seed
FIT_SEED_OFFSET = 3
ODIN_MAX_BATCH = 256

FEATURE_CONVENTION = (
    "features = input of the last linear layer (or --feature-layer), conv maps global-average-pooled; "
    f"mahalanobis/knn/react/vim fit on a seeded stratified subset of the fit data's training split; "
    f"knn k={KNN_K}, react clips at the {REACT_PERCENTILE:g}th percentile of training activations, "
    f"odin T={ODIN_TEMPERATURE:g}, eps={ODIN_EPS} pixel units; all scores higher = more OOD"
)


@dataclass(frozen=True)
class FitSource:
    """Where the detectors' statistics come from, resolved before any work (part of the cache key)."""

    spec: str
    fingerprint: dict[str, object]


def fit_source(
    cfg: BatteryConfig, data_spec: str, id_fingerprint: dict[str, object], root: str | None
) -> FitSource | None:
    """The fit data of the fitted feature scores (None when none is selected); refuses the test set itself."""
    if not cfg.fitted_scores():
        return None
    spec = cfg.fit_data
    if spec is None:
        if not is_registered_name(data_spec):
            raise UsageError(
                f"--ood-scores {','.join(cfg.fitted_scores())} fit on training data, and {data_spec} has no "
                "known training split; pass --fit-data SPEC"
            )
        spec = data_spec
    fingerprint = spec_fingerprint(spec, root)
    if spec_path(spec) is not None and fingerprint == id_fingerprint:
        # a file is its own split: fitting on it would fit on the test examples themselves
        raise UsageError(f"--fit-data {spec} is the test set itself; fit on training data")
    return FitSource(spec, fingerprint)


@dataclass(frozen=True)
class FeatureProbe:
    """The feature layer resolved on one image: name, feature size, whether its linear map is the logits."""

    layer: str
    dim: int
    head_is_logits: bool | None


def probe(net: nn.Module, first: torch.Tensor, cfg: BatteryConfig) -> FeatureProbe | None:
    """Check the feature scores on one image before the real passes: the layer exists and runs once, ODIN's
    gradient flows. None when no feature score is selected."""
    if not cfg.feature_scores():
        return None
    if "odin" in cfg.feature_scores():
        _odin_batch(net, first)
    if not cfg.fitted_scores():
        return None
    got = penultimate_features(net, [first], cfg.feature_layer)
    if {"react", "vim"} & set(cfg.fitted_scores()) and linear_head(net, got.layer) is None:
        raise UsageError(
            f"react and vim need the feature layer to be linear; --feature-layer {got.layer} is not"
        )
    if got.head_is_logits is False:
        log.warning(
            "the feature layer %s does not produce the logits (W f + b != model output): react and vim "
            "score its linear map, not the model's output",
            got.layer,
        )
    return FeatureProbe(got.layer, int(got.features.shape[1]), got.head_is_logits)


def batches(data: ImageSet, batch_size: int) -> Iterator[torch.Tensor]:
    """The images of ``data`` in order, ``batch_size`` at a time."""
    for start in range(0, len(data), batch_size):
        yield data.images(slice(start, start + batch_size))


def logits_and_features(
    net: nn.Module,
    data: ImageSet,
    probed: FeatureProbe,
    device: torch.device,
    batch_size: int,
    progress: object | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One forward pass over ``data``: float32 logits [N, K] and features [N, D] (float16 past 1 GB)."""
    if len(data) == 0:
        return np.zeros((0, 0), dtype=np.float32), np.zeros((0, probed.dim), dtype=np.float32)
    dtype = feature_storage_dtype(len(data), probed.dim)
    layer = probed.layer
    got = penultimate_features(net, batches(data, batch_size), layer, device, dtype, progress)
    return got.logits, got.features


@dataclass(frozen=True)
class FitOutcome:
    """The fitted statistics per detector, what the result records under ``data.fit``, and the seconds."""

    fits: dict[str, _Fitted]
    record: dict[str, Any]
    seconds: float


def fit_stage(
    net: nn.Module,
    device: torch.device,
    batch_size: int,
    source: FitSource,
    id_set: ImageSet,
    probed: FeatureProbe,
    cfg: BatteryConfig,
    model_sha256: str | None,
    cache_root: Path | None,
    data_root: str | None,
    download: bool,
) -> FitOutcome:
    """Statistics of each fitted detector: from the cache when there, else one pass over the fit subset.

    ``cache_root`` None (cache off) or no model hash: always recomputed, never written.
    """
    t = time.perf_counter()
    names = cfg.fitted_scores()
    seed = cfg.seed + FIT_SEED_OFFSET
    record: dict[str, Any] = {
        "spec": source.spec,
        "split": FIT_SPLIT,
        "fingerprint": source.fingerprint,
        "limit": cfg.fit_limit,
        "seed": seed,
        "subset_method": "stratified",
        "layer": probed.layer,
        "feature_dim": probed.dim,
        "head_is_logits": probed.head_is_logits,
        "detectors": list(names),
    }
    folder = cache_root / "fits" if cache_root is not None and model_sha256 else None
    keys = {n: _fit_key(model_sha256, source, cfg.fit_limit, seed, probed.layer, n) for n in names}
    fits: dict[str, _Fitted] = {}
    if folder is not None:
        for n in names:
            hit = _read_fit(folder / f"{keys[n]}.npz", n)
            if hit is not None:
                fits[n] = hit
    if len(fits) == len(names):
        record.update(statistics="cached", n=None)
        return FitOutcome(fits, record, time.perf_counter() - t)
    full = load_dataset(source.spec, FIT_SPLIT, data_root, download, shape=id_set.input_shape)
    if full.input_shape != id_set.input_shape:
        raise DataError(
            f"--fit-data {source.spec} has images {full.input_shape}, the ID set {id_set.input_shape}"
        )
    k = id_set.num_classes
    if len(full) == 0 or int(full.y.min()) < 0 or int(full.y.max()) >= k:
        raise DataError(
            f"--fit-data {source.spec} has labels outside the model's {k} classes; fit on training data of "
            "the ID classes"
        )
    index = stratified_indices(full.y, cfg.fit_limit, seed).sort().values
    subset = full.select(index)
    logits, feats = logits_and_features(net, subset, probed, device, batch_size)
    head = linear_head(net, probed.layer)
    todo = tuple(n for n in names if n not in fits)
    fits.update(fit_detectors(todo, feats, subset.y.numpy(), head))
    if folder is not None:
        for n in todo:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                fits[n].to_npz(folder / f"{keys[n]}.npz")
            except OSError as e:
                log.warning("could not cache the %s statistics (%s)", n, e)
    record.update(
        statistics="computed" if folder is not None else "computed (cache off: not stored)",
        n=len(subset),
        of=len(full),
    )
    del logits
    return FitOutcome({n: fits[n] for n in names}, record, time.perf_counter() - t)


def _fit_key(
    model_sha256: str | None, source: FitSource, limit: int, seed: int, layer: str, name: str
) -> str:
    return cache.cache_key(
        cache.key_parts(
            kind="feature-fit",
            model_sha256=model_sha256,
            fit_data=source.fingerprint,
            split=FIT_SPLIT,
            limit=limit,
            seed=seed,
            layer=layer,
            detector=name,
        )
    )


def _read_fit(path: Path, name: str) -> _Fitted | None:
    if not path.exists():
        return None
    try:
        fit = load_fitted(path)
    except DataError as e:
        log.warning("cached %s statistics %s are unusable (%s); recomputing", name, path, e)
        return None
    if not isinstance(fit, FITTED_TYPES[name]):
        log.warning("cached statistics %s are not %s's; recomputing", path, name)
        return None
    log.info("cached %s statistics %s", name, path)
    return fit


def _odin_batch(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    try:
        return odin_scores(net, x)
    except EvalsuiteError:
        raise
    except RuntimeError as e:  # autograd refuses: the model's output carries no gradient to its input
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise UsageError(f"odin needs input gradients, and this model gives none ({first})") from None


def odin(net: nn.Module, data: ImageSet, device: torch.device, batch_size: int) -> np.ndarray:
    """[N] ODIN scores of ``data``: per batch one forward with a backward and one forward (an FGSM step)."""
    bs = min(batch_size, ODIN_MAX_BATCH)
    out = [_odin_batch(net, x.to(device)) for x in batches(data, bs)]
    return np.concatenate(out) if out else np.zeros(0)


def feature_scores(fits: dict[str, _Fitted], features: np.ndarray) -> dict[str, np.ndarray]:
    """``{detector: [N] float64}`` of the fitted detectors on one dataset's features."""
    if not fits:
        return {}
    if len(features) == 0:
        return {n: np.zeros(0) for n in fits}
    return score_detectors(fits, features, None)
