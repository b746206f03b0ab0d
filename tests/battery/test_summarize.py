"""Summaries and shard merges read the metric catalogue: every family computed from its arrays with its own
function, ``metric_info`` from the catalogue, ``equal`` metrics checked across shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evalsuite import metrics as M
from evalsuite.battery import merge_shards
from evalsuite.battery.summarize import derive_id_arrays, derive_scores, metric_info, summarize
from evalsuite.core.errors import UsageError
from evalsuite.core.results import EvalResult, save_result
from evalsuite.metrics import catalogue as K
from evalsuite.metrics import ood as O

CHECKS = ("clean", "calibration", "ood", "robust")
SCORES = ("msp", "energy")


def _arrays(n: int = 120, m: int = 80, seed: int = 0, offset: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    logits = rng.normal(size=(n, 5)).astype(np.float32)
    logits[np.arange(n), labels] += 1.5
    a = {
        "id/index": np.arange(offset, offset + n),
        "id/labels": labels,
        "id/logits": logits,
        "ood/far/index": np.arange(offset, offset + m),
        "ood/far/logits": rng.normal(size=(m, 5)).astype(np.float32),
        "ood/near/index": np.arange(offset, offset + m),
        "ood/near/logits": (rng.normal(size=(m, 5)) * 2).astype(np.float32),
    }
    a = derive_scores(derive_id_arrays(a), SCORES, ["far", "near"])
    a["robust/pgd_linf/8_255/correct"] = a["id/correct"] & (rng.uniform(size=n) < 0.5)
    a["robust/fgsm/8_255/correct"] = a["id/correct"] & (rng.uniform(size=n) < 0.7)
    return a


def test_every_family_computed_with_its_own_function():
    a = _arrays()
    metrics, details = summarize(a, CHECKS, SCORES, 10)
    probs = M.softmax(a["id/logits"])
    conf, correct = a["id/confidence"], a["id/correct"]
    assert metrics["accuracy"] == M.accuracy(a["id/logits"], a["id/labels"])
    assert metrics["nll"] == pytest.approx(M.nll(a["id/logits"], a["id/labels"]), rel=1e-15)
    assert metrics["brier"] == pytest.approx(M.brier(probs, a["id/labels"]), rel=1e-12)
    assert metrics["ece"] == M.ece(conf, correct, n_bins=10)
    assert metrics["ece_adaptive"] == M.ece_adaptive(conf, correct, n_bins=10)
    assert metrics["mce"] == M.mce(conf, correct, n_bins=10)
    for s in ("far", "near"):
        for score in SCORES:
            sid, sood = a[f"id/score/{score}"], a[f"ood/{s}/score/{score}"]
            base = f"ood/{s}/{score}"
            assert metrics[f"{base}/auroc"] == O.auroc(sid, sood)
            assert metrics[f"{base}/aupr_in"] == O.aupr_in(sid, sood)
            assert metrics[f"{base}/aupr_out"] == O.aupr_out(sid, sood)
            assert metrics[f"{base}/fpr95"] == O.fpr95(sid, sood)
            # the OpenOOD / pytorch-ood convention, computed beside the ID-anchored one and not equal to it
            assert metrics[f"{base}/fpr95_ood"] == O.fpr95_ood(sid, sood)
    assert metrics["ood/far/msp/fpr95_ood"] != metrics["ood/far/msp/fpr95"]
    assert metrics["robust/fgsm/8_255/accuracy"] == a["robust/fgsm/8_255/correct"].mean()
    # one metric per catalogue family and instance present, nothing else, in report order
    assert len(metrics) == 6 + 2 * 2 * 5 + 2
    assert all(K.find(n) is not None for n in metrics)
    # group, then OOD set, then score in the configured order, then the catalogue's family order
    leaves = ("auroc", "aupr_in", "aupr_out", "fpr95", "fpr95_ood")
    assert list(metrics) == [
        *("accuracy", "nll", "brier", "ece", "ece_adaptive", "mce"),
        *(f"ood/{s}/{score}/{leaf}" for s in ("far", "near") for score in SCORES for leaf in leaves),
        "robust/fgsm/8_255/accuracy",
        "robust/pgd_linf/8_255/accuracy",
    ]
    assert len(details["reliability"]["uniform"]["counts"]) == 10


def test_checks_and_scores_select():
    a = _arrays()
    metrics, details = summarize(a, ("ood",), ("energy",), 15)
    assert metrics and all(K.group_of(n) == "ood" and "/energy/" in n for n in metrics)
    assert details == {}
    metrics, _ = summarize(a, ("robust",), SCORES, 15)
    assert set(metrics) == {"robust/fgsm/8_255/accuracy", "robust/pgd_linf/8_255/accuracy"}


def test_metric_info_from_the_catalogue():
    a = _arrays()
    metrics, _ = summarize(a, CHECKS, SCORES, 15)
    metrics["sparsity/params"] = 1000.0
    info = metric_info(metrics, 120, {"far": 80, "near": 70})
    assert info["ood/near/energy/fpr95_ood"] == {
        "higher_is_better": False,
        "group": "ood",
        "kind": "proportion",
        "n": 120,
        "n_ood": 70,
    }
    assert info["nll"] == {"higher_is_better": False, "group": "clean", "kind": "score", "n": 120}
    assert info["sparsity/params"] == {"higher_is_better": False, "group": "sparsity", "kind": "count"}
    for name, entry in info.items():
        assert entry["higher_is_better"] is K.higher_is_better(name)


def test_nan_logits_refused():
    a = _arrays()
    bad = {k: a[k] for k in ("id/index", "id/labels", "id/logits")}
    bad["id/logits"] = bad["id/logits"].copy()
    bad["id/logits"][3, 1] = np.nan
    with pytest.raises(ValueError, match="logits contains NaN"):
        derive_id_arrays(bad)


def _shard(tmp: Path, i: int, n: int, density: float, warnings: list[str]) -> Path:
    a = _arrays(n=40, m=20, seed=i, offset=40 * i)
    metrics, details = summarize(a, CHECKS, SCORES, 15)
    metrics["sparsity/density"] = density
    metrics["sparsity/params"] = 1234.0
    result = EvalResult(
        metrics=metrics,
        metric_info=metric_info(metrics, 40, {"far": 20, "near": 20}),
        config={"checks": [*CHECKS, "sparsity"], "ood_scores": list(SCORES), "n_bins": 15, "shard": [i, n]},
        conventions={},
        data={
            "id": {"spec": "synthetic", "fingerprint": "f", "n": 40},
            "ood": [{"name": "far", "spec": "far", "n": 20}, {"name": "near", "spec": "near", "n": 20}],
        },
        model={"sha256": "ab" * 32, "load_options": {}},
        provenance={},
        sanity={"warnings": warnings} if warnings else {},
        details=details,
    )
    return save_result(result, a, tmp / f"s{i}.json")


def test_merge_recomputes_and_keeps_equal_metrics_and_warnings(tmp_path):
    paths = [
        _shard(tmp_path, 0, 3, 0.25, ["near chance"]),
        _shard(tmp_path, 1, 3, 0.25, []),
        _shard(tmp_path, 2, 3, 0.25, ["odd normalization", "near chance"]),
    ]
    merged, arrays = merge_shards(paths)
    want, _ = summarize(arrays, CHECKS, SCORES, 15)
    for k, v in want.items():
        assert merged.metrics[k] == v, k
    assert "ood/far/energy/fpr95_ood" in merged.metrics
    assert merged.metrics["sparsity/density"] == 0.25 and merged.metrics["sparsity/params"] == 1234.0
    assert merged.sanity["warnings"] == ["near chance", "odd normalization"]
    assert merged.metric_info["accuracy"]["n"] == 120


def test_merge_refuses_shards_that_disagree_on_an_equal_metric(tmp_path):
    paths = [_shard(tmp_path, 0, 2, 0.25, []), _shard(tmp_path, 1, 2, 0.5, [])]
    with pytest.raises(UsageError) as e:
        merge_shards(paths)
    msg = str(e.value)
    assert "\n" not in msg and "sparsity/density is 0.5 but 0.25" in msg and "s1.json" in msg
