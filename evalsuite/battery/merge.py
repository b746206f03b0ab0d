"""Merge battery shards (``--shard i/n``) into the result of the whole set, exactly.

Every metric is a function of per-example arrays, and each example's arrays do not depend on which shard
or batch it ran in (attack random starts are keyed by the example's index in the full split), so
concatenating the shards' arrays, ordering by example index and summarizing gives the unsharded numbers.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from evalsuite.battery.summarize import Arrays, metric_info, summarize
from evalsuite.core.errors import UsageError
from evalsuite.core.results import EvalResult, load_arrays


def _order_key(key: str) -> str:
    """The index array that orders ``key``: ``id/index`` for ID and robust arrays, else the OOD set's."""
    if key.startswith("ood/"):
        return "ood/" + key.split("/")[1] + "/index"
    return "id/index"


def merge_shards(paths: Sequence[str | Path]) -> tuple[EvalResult, Arrays]:
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

    merged: Arrays = {k: np.concatenate([a[k] for a in shard_arrays]) for k in keys}
    orders = {k: np.argsort(merged[k], kind="stable") for k in keys if k.endswith("index")}
    merged = {k: v[orders[_order_key(k)]] for k, v in merged.items()}

    cfg = dict(base_cfg, shard=None)
    metrics, details = summarize(merged, tuple(cfg["checks"]), tuple(cfg["ood_scores"]), int(cfg["n_bins"]))
    for k, v in first.metrics.items():
        if k.startswith("sparsity/"):
            metrics[k] = v
    if "sparsity" in first.details:
        details["sparsity"] = first.details["sparsity"]
    data = copy.deepcopy(first.data)
    data["id"]["n"] = int(len(merged["id/index"]))
    data["id"]["shard"] = None
    data["id"]["merged_from"] = [str(p) for p in paths]
    n_ood = {}
    for entry in data["ood"]:
        entry["n"] = int(len(merged[f"ood/{entry['name']}/index"]))
        n_ood[entry["name"]] = entry["n"]
    sanity = {
        "robust_flags": sorted({f for r in results for f in r.sanity.get("robust_flags", [])}),
    }
    if "accuracy" in metrics:
        sanity["robust_le_clean"] = all(
            v <= metrics["accuracy"] + 1e-12 for k, v in metrics.items() if k.startswith("robust/")
        )
    if "masked_weights_zero" in first.sanity:
        sanity["masked_weights_zero"] = first.sanity["masked_weights_zero"]
    timings: dict[str, float] = {}
    for r in results:
        for k, v in r.timings.items():
            timings[k] = round(timings.get(k, 0.0) + v, 4)
    result = EvalResult(
        metrics=metrics,
        metric_info=metric_info(metrics, data["id"]["n"], n_ood),
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
