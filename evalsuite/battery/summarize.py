"""Per-example arrays -> metrics. Every number in a result is a pure function of these arrays, so a
result can be rebuilt from its ``.npz`` and shards merge exactly (concatenate, then summarize).

Array keys (the ``.npz`` written beside each result):

- ``id/index`` int64 [N]: position of each example in the full ID split (pairs examples across models)
- ``id/labels`` int64 [N], ``id/logits`` float32 [N, K]
- ``id/pred`` int64, ``id/confidence`` float64 (top-label softmax), ``id/correct`` bool,
  ``id/nll`` float64 and ``id/brier`` float64 per example (derived from the logits)
- ``id/score/<score>`` float64 [N]: OOD score of each ID example (higher = more OOD)
- ``ood/<set>/index`` int64 [M], ``ood/<set>/logits`` float32 [M, K], ``ood/<set>/score/<score>`` [M]
- ``robust/<attack>/<eps>/correct`` bool [N]: clean-correct and never fooled at that eps
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalsuite import metrics as M
from evalsuite.core.results import eps_name, metric_direction
from evalsuite.ood import OOD_SCORES

Arrays = dict[str, np.ndarray]


def derive_id_arrays(arrays: Arrays) -> Arrays:
    """Add prediction, confidence, correctness, per-example NLL and Brier from ``id/logits``."""
    logits = arrays["id/logits"].astype(np.float64)
    labels = arrays["id/labels"]
    logp = M.log_softmax(logits)
    probs = np.exp(logp)
    out = dict(arrays)
    out["id/pred"] = probs.argmax(1).astype(np.int64)
    out["id/confidence"] = probs.max(1)
    out["id/correct"] = out["id/pred"] == labels
    out["id/nll"] = -logp[np.arange(len(labels)), labels]
    onehot = np.zeros_like(probs)
    onehot[np.arange(len(labels)), labels] = 1.0
    out["id/brier"] = ((probs - onehot) ** 2).sum(1)
    return out


def derive_scores(arrays: Arrays, scores: tuple[str, ...], ood_sets: list[str]) -> Arrays:
    out = dict(arrays)
    for s in scores:
        fn = OOD_SCORES.get(s)
        out[f"id/score/{s}"] = np.asarray(fn(arrays["id/logits"]), dtype=np.float64)
        for name in ood_sets:
            out[f"ood/{name}/score/{s}"] = np.asarray(fn(arrays[f"ood/{name}/logits"]), dtype=np.float64)
    return out


def ood_set_names(arrays: Arrays) -> list[str]:
    return sorted({k.split("/")[1] for k in arrays if k.startswith("ood/") and k.endswith("/logits")})


def summarize(
    arrays: Arrays, checks: tuple[str, ...], scores: tuple[str, ...], n_bins: int
) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, details) from the arrays. ``details`` holds the reliability-diagram bins."""
    a = arrays
    n = int(len(a["id/labels"]))
    metrics: dict[str, float] = {}
    details: dict[str, Any] = {}
    if "clean" in checks:
        metrics["accuracy"] = float(a["id/correct"].mean()) if n else float("nan")
        metrics["nll"] = M.nll(a["id/logits"], a["id/labels"])
        metrics["brier"] = float(a["id/brier"].mean())
    if "calibration" in checks:
        conf, correct = a["id/confidence"], a["id/correct"]
        uni = M.calibration_bins(conf, correct, n_bins, "uniform")
        ada = M.calibration_bins(conf, correct, n_bins, "adaptive")
        metrics["ece"] = uni.ece()
        metrics["ece_adaptive"] = ada.ece()
        metrics["mce"] = uni.mce()
        details["reliability"] = {"uniform": uni.to_dict(), "adaptive": ada.to_dict()}
    if "ood" in checks:
        for name in ood_set_names(a):
            for s in scores:
                sid, sood = a[f"id/score/{s}"], a[f"ood/{name}/score/{s}"]
                base = f"ood/{name}/{s}"
                metrics[f"{base}/auroc"] = M.auroc(sid, sood)
                metrics[f"{base}/aupr_in"] = M.aupr_in(sid, sood)
                metrics[f"{base}/aupr_out"] = M.aupr_out(sid, sood)
                metrics[f"{base}/fpr95"] = M.fpr95(sid, sood)
    if "robust" in checks:
        for key in sorted(k for k in a if k.startswith("robust/") and k.endswith("/correct")):
            _, attack, eps, _ = key.split("/")
            metrics[f"robust/{attack}/{eps}/accuracy"] = float(a[key].mean()) if n else float("nan")
    return metrics, details


def metric_info(metrics: dict[str, float], n_id: int, n_ood: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Direction and sample size for every metric."""
    info: dict[str, dict[str, Any]] = {}
    for name in metrics:
        entry: dict[str, Any] = {"higher_is_better": metric_direction(name)}
        if name.startswith("ood/"):
            entry["n"] = n_id
            entry["n_ood"] = n_ood.get(name.split("/")[1])
        elif not name.startswith("sparsity/"):
            entry["n"] = n_id
        info[name] = entry
    return info


def robust_key(attack: str, eps: float) -> str:
    return f"robust/{attack}/{eps_name(eps)}/correct"
