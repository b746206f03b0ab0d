"""Merge battery shards (``--shard i/n``) into the result of the whole set, exactly.

Every metric is a function of per-example arrays, and each example's arrays do not depend on which shard
or batch it ran in (attack random starts are keyed by the example's index in the full split), so
concatenating the shards' arrays, ordering by example index and summarizing gives the unsharded numbers.

How each metric merges is the catalogue's ``merge`` rule: ``recompute`` (from the concatenated arrays, as
above) or ``equal`` (a property of the model, e.g. the sparsity audit, which every shard must report
identically; shards that disagree are refused).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evalsuite.battery.summarize import (
    CORRUPTION_DERIVED,
    CORRUPTION_PREFIX,
    GROUP_PREFIX,
    Arrays,
    derive_corruption_aggregates,
    derive_groups,
    metric_info,
    ood_set_of,
    summarize,
)
from evalsuite.core.errors import DataError, UsageError
from evalsuite.core.results import EvalResult, load_arrays
from evalsuite.metrics import catalogue as K


def _order_key(key: str) -> str:
    """The index array that orders ``key``: ``id/index`` for ID and robust arrays, the OOD set's, or
    ``corruption/index`` for every corrupted set's."""
    if key.startswith(CORRUPTION_PREFIX):
        return "corruption/index"
    ood_set = ood_set_of(key)
    return "id/index" if ood_set is None else f"ood/{ood_set}/index"


def _equal_of(path: str | Path, result: EvalResult) -> dict[str, float]:
    out = {}
    for name, value in result.metrics.items():
        try:
            rule = K.merge_rule(name)
        except K.UnknownMetric as e:
            raise DataError(f"{path}: {e}") from None
        if rule == "equal":
            out[name] = value
    return out


def _equal_metrics(paths: Sequence[str | Path], results: Sequence[EvalResult]) -> dict[str, float]:
    """The metrics whose catalogue merge rule is ``equal``, checked to agree across shards."""
    first = _equal_of(paths[0], results[0])
    for p, r in zip(paths[1:], results[1:]):
        other = _equal_of(p, r)
        for name in sorted(first.keys() | other.keys(), key=K.sort_key):
            if name not in other or name not in first:
                has, lacks = (paths[0], p) if name in first else (p, paths[0])
                raise UsageError(f"{lacks}: no {name}, which {has} has; shards of one model must agree on it")
            a, b = first[name], other[name]
            if a != b and not (math.isnan(a) and math.isnan(b)):
                raise UsageError(
                    f"{p}: {name} is {b!r} but {a!r} in {paths[0]}; shards of one model must agree on it"
                )
    return first


def merge_shards(paths: Sequence[str | Path]) -> tuple[EvalResult, Arrays]:
    """Merge shard results 0/n .. n-1/n of one run into one result and its arrays, in index order."""
    if not paths:
        raise UsageError("merge needs at least one shard result")
    results = [EvalResult.load(p) for p in paths]
    shard_arrays = [load_arrays(Path(p), r) for p, r in zip(paths, results)]
    first = results[0]
    shards = [tuple(r.config.get("shard") or (0, 1)) for r in results]
    n = shards[0][1]
    if sorted(shards) != [(i, n) for i in range(n)]:
        raise UsageError(
            f"shards must be 0/{n} .. {n - 1}/{n}, each once; got {[f'{i}/{k}' for i, k in shards]}"
        )
    base_cfg = {k: v for k, v in first.config.items() if k != "shard"}
    for p, r in zip(paths, results):
        if r.model.get("sha256") != first.model.get("sha256"):
            raise UsageError(f"{p}: a different model from {paths[0]}")
        if {k: v for k, v in r.config.items() if k != "shard"} != base_cfg:
            raise UsageError(f"{p}: battery settings differ from {paths[0]}")
        if r.data["id"]["spec"] != first.data["id"]["spec"] or r.data["id"].get("fingerprint") != first.data[
            "id"
        ].get("fingerprint"):
            raise UsageError(f"{p}: evaluated on {r.data['id']['spec']}, not {first.data['id']['spec']}")
        if [o.get("fingerprint") or o["spec"] for o in r.data["ood"]] != [
            o.get("fingerprint") or o["spec"] for o in first.data["ood"]
        ]:
            raise UsageError(f"{p}: OOD sets differ from {paths[0]}")
        if r.model.get("load_options") != first.model.get("load_options"):
            raise UsageError(f"{p}: model loading options (--arch, --mean/--std, --no-normalize) differ")
    keys = set(shard_arrays[0])
    for p, a in zip(paths, shard_arrays):
        if set(a) != keys:
            raise UsageError(f"{p}: its arrays differ from {paths[0]} ({sorted(set(a) ^ keys)[:3]})")

    # the temperature-scaling split is not sharded: every shard carries (and fit on) the same one
    whole = sorted(k for k in keys if k.startswith("calib/"))
    for p, a in zip(paths[1:], shard_arrays[1:]):
        for k in whole:
            if not np.array_equal(a[k], shard_arrays[0][k]):
                raise UsageError(f"{p}: its calibration split ({k}) differs from {paths[0]}")
    # group arrays are re-derived from the merged sets (their order follows each set's index)
    # as are the corruption aggregates' concatenations
    per_example = {k for k in keys.difference(whole) if not k.startswith((GROUP_PREFIX, *CORRUPTION_DERIVED))}
    merged: Arrays = {k: np.concatenate([a[k] for a in shard_arrays]) for k in per_example}
    orders = {k: np.argsort(merged[k], kind="stable") for k in per_example if k.endswith("index")}
    merged = {k: v[orders[_order_key(k)]] for k, v in merged.items()}
    merged.update({k: shard_arrays[0][k] for k in whole})
    if first.data.get("ood_groups"):
        merged = derive_groups(merged, first.data["ood_groups"])
    merged = derive_corruption_aggregates(merged)

    cfg = dict(base_cfg, shard=None)
    metrics, details = summarize(merged, tuple(cfg["checks"]), tuple(cfg["ood_scores"]), int(cfg["n_bins"]))
    for name, value in _equal_metrics(paths, results).items():
        metrics[name] = value
    if "sparsity" in first.details:
        details["sparsity"] = first.details["sparsity"]
    data = copy.deepcopy(first.data)
    data["id"]["n"] = len(merged["id/index"])
    data["id"]["shard"] = None
    data["id"]["merged_from"] = [str(p) for p in paths]
    n_ood = {}
    for entry in data["ood"]:
        entry["n"] = len(merged[f"ood/{entry['name']}/index"])
        n_ood[entry["name"]] = entry["n"]
    n_corruption = None
    if "corruption" in data:
        data["corruption"]["n"] = n_corruption = len(merged["corruption/index"])
    sanity: dict[str, object] = {
        "robust_flags": sorted({f for r in results for f in r.sanity.get("robust_flags", [])}),
    }
    # each shard's warnings (e.g. near-chance accuracy), once each, in the order the shards gave them
    warnings = list(dict.fromkeys(w for r in results for w in r.sanity.get("warnings") or []))
    if warnings:
        sanity["warnings"] = warnings
    if "accuracy" in metrics:
        sanity["robust_le_clean"] = all(
            v <= metrics["accuracy"] + 1e-12 for k, v in metrics.items() if K.group_of(k) == "robust"
        )
    if "masked_weights_zero" in first.sanity:
        sanity["masked_weights_zero"] = first.sanity["masked_weights_zero"]
    timings: dict[str, float] = {}
    for r in results:
        for k, v in r.timings.items():
            timings[k] = round(timings.get(k, 0.0) + v, 4)
    result = EvalResult(
        metrics=metrics,
        metric_info=metric_info(metrics, data["id"]["n"], n_ood, data.get("ood_groups"), n_corruption),
        config=cfg,
        conventions=first.conventions,
        data=data,
        model=first.model,
        provenance={**first.provenance, "merged_shards": [r.provenance for r in results]},
        timings=timings,
        sanity=sanity,
        details=details,
    )
    return result, merged
