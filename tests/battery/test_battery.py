"""The battery end to end on a tiny trained digits model: one result, right numbers, exact shard merges."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite import metrics as M
from evalsuite.battery import (
    BatteryConfig,
    EvalOptions,
    evaluate,
    evaluate_with_arrays,
    load_arrays,
    merge_shards,
)
from evalsuite.battery.run import save_result
from evalsuite.core.errors import DataError, UsageError
from evalsuite.core.results import EvalResult
from evalsuite.data import load_dataset
from evalsuite.models.checkpoint import load_checkpoint
from evalsuite.ood import OOD_SCORES
from evalsuite.train import InitSpec, TrainJob, TrainOptions, run_training

FAST = {"eps_linf": (0.0, 4 / 255, 16 / 255), "eps_l2": (0.0, 0.5), "pgd_steps": 3}


@pytest.fixture(scope="session")
def sparse_ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("battery") / "erk.pt"
    job = TrainJob(
        InitSpec("digits", scheme="erk", density=0.2, seed=0), {"epochs": 6}, TrainOptions(out=out)
    )
    run_training(job)
    return out


def _opts(tmp_path: Path, **kw) -> EvalOptions:
    return EvalOptions(cache_dir=tmp_path / "cache", **kw)


def test_full_battery_numbers_match_references(sparse_ckpt, tmp_path):
    cfg = BatteryConfig(**FAST)
    result, arrays = evaluate_with_arrays(sparse_ckpt, cfg, _opts(tmp_path, out=tmp_path / "r.json"))
    # the checkpoint's own forward pass gives the same logits
    model, _card, _masks = load_checkpoint(sparse_ckpt)
    test = load_dataset("digits", "test")
    with torch.no_grad():
        logits = model(test.images()).numpy()
    np.testing.assert_allclose(arrays["id/logits"], logits, rtol=0, atol=1e-5)
    labels = test.y.numpy()
    assert result.metrics["accuracy"] == pytest.approx(float((logits.argmax(1) == labels).mean()))
    # NLL against torch, ECE against netcal, AUROC against scikit-learn, all on the stored arrays
    nll_ref = torch.nn.functional.cross_entropy(torch.from_numpy(logits).double(), test.y).item()
    assert result.metrics["nll"] == pytest.approx(nll_ref, abs=1e-6)
    from netcal.metrics import ECE
    from sklearn.metrics import roc_auc_score

    probs = M.softmax(arrays["id/logits"])
    assert len(np.unique(labels)) == 10
    assert result.metrics["ece"] == pytest.approx(ECE(bins=15).measure(probs, labels), abs=1e-6)
    sid, sood = arrays["id/score/energy"], arrays["ood/photos/score/energy"]
    y = np.r_[np.zeros(len(sid)), np.ones(len(sood))]
    assert result.metrics["ood/photos/energy/auroc"] == pytest.approx(
        roc_auc_score(y, np.r_[sid, sood]), abs=1e-9
    )
    # both FPR95 conventions, each its own function of the stored scores
    assert result.metrics["ood/photos/energy/fpr95"] == M.fpr95(sid, sood)
    assert result.metrics["ood/photos/energy/fpr95_ood"] == M.fpr95_ood(sid, sood)
    assert result.metric_info["ood/photos/energy/fpr95_ood"]["higher_is_better"] is False
    # OOD sign: the scores stored are the registry's (higher = more OOD)
    np.testing.assert_array_equal(sid, OOD_SCORES.get("energy")(arrays["id/logits"]))
    # eps 0 reproduces clean accuracy; robust <= clean; PGD <= FGSM; non-increasing in eps
    acc = result.metrics["accuracy"]
    for attack in ("fgsm", "pgd_linf"):
        assert result.metrics[f"robust/{attack}/0_255/accuracy"] == acc
    assert result.metrics["robust/pgd_l2/0_255/accuracy"] == acc
    for eps in ("4_255", "16_255"):
        assert (
            result.metrics[f"robust/pgd_linf/{eps}/accuracy"] <= result.metrics[f"robust/fgsm/{eps}/accuracy"]
        )
    assert (
        result.metrics["robust/pgd_linf/16_255/accuracy"] <= result.metrics["robust/pgd_linf/4_255/accuracy"]
    )
    assert result.sanity["robust_le_clean"] is True
    assert result.metrics["sparsity/masked_nonzero"] == 0
    assert result.metrics["sparsity/density"] == pytest.approx(0.2, abs=1e-3)
    # the result is self-describing
    d = json.loads((tmp_path / "r.json").read_text())
    assert d["schema"] == "evalsuite-result" and d["schema_version"] == 1
    assert d["conventions"]["ood"] and d["conventions"]["attacks"]
    assert d["model"]["sha256"] and d["model"]["card"]["sparsity"]["scheme"] == "erk"
    assert d["metric_info"]["ece"]["higher_is_better"] is False
    assert d["metric_info"]["ood/photos/msp/auroc"]["higher_is_better"] is True
    assert len(d["details"]["reliability"]["uniform"]["counts"]) == 15
    assert set(load_arrays(tmp_path / "r.json")) == set(arrays)


def test_cache_returns_same_result_and_no_cache_recomputes(sparse_ckpt, tmp_path):
    cfg = BatteryConfig(checks=("clean", "calibration"))
    a = evaluate(sparse_ckpt, cfg, _opts(tmp_path))
    b = evaluate(sparse_ckpt, cfg, _opts(tmp_path))
    assert a.provenance["date"] == b.provenance["date"]  # the cached copy
    c = evaluate(sparse_ckpt, cfg, _opts(tmp_path, cache=False))
    assert c.metrics == a.metrics


def test_limit_is_stratified_and_recorded(sparse_ckpt, tmp_path):
    cfg = BatteryConfig(checks=("clean", "calibration"), limit=100, seed=3)
    result, arrays = evaluate_with_arrays(sparse_ckpt, cfg, _opts(tmp_path))
    counts = np.bincount(arrays["id/labels"], minlength=10)
    assert counts.sum() == 100 and counts.min() >= 9 and counts.max() <= 11
    assert result.data["id"]["limit"] == 100 and result.data["id"]["subset_method"] == "stratified"
    _other, arrays2 = evaluate_with_arrays(
        sparse_ckpt, BatteryConfig(checks=("clean",), limit=100, seed=4), _opts(tmp_path)
    )
    assert not np.array_equal(arrays["id/index"], arrays2["id/index"])


def test_shards_merge_exactly(sparse_ckpt, tmp_path):
    cfg = dict(FAST, limit=150)
    whole, whole_arrays = evaluate_with_arrays(
        sparse_ckpt, BatteryConfig(**cfg), _opts(tmp_path, cache=False)
    )
    paths = []
    for i in range(3):
        r, a = evaluate_with_arrays(
            sparse_ckpt, BatteryConfig(**cfg, shard=(i, 3)), _opts(tmp_path, cache=False)
        )
        assert r.data["id"]["n"] == 50
        paths.append(save_result(r, a, tmp_path / f"s{i}.json"))
    merged, arrays = merge_shards(paths)
    assert merged.metrics.keys() == whole.metrics.keys()
    for k, v in whole.metrics.items():
        assert merged.metrics[k] == pytest.approx(v, abs=1e-12), k
    for k in whole_arrays:
        if k.startswith("robust/") or k.endswith("index"):
            np.testing.assert_array_equal(arrays[k], whole_arrays[k], err_msg=k)
    with pytest.raises(UsageError, match="each once"):
        merge_shards(paths[:2])


def test_in_memory_model_and_api(tmp_path):
    model, _, _ = load_checkpoint_or_train(tmp_path)
    result = evaluate(model, BatteryConfig(checks=("clean",)), _opts(tmp_path), data="digits", ood=[])
    assert 0 <= result.metrics["accuracy"] <= 1
    with pytest.raises(UsageError, match="data="):
        evaluate(model, BatteryConfig(checks=("clean",)), _opts(tmp_path))


def load_checkpoint_or_train(tmp_path: Path):
    from evalsuite.train import init_model

    return init_model(InitSpec("digits", seed=0))


def test_foreign_state_dict_needs_arch_and_data(sparse_ckpt, tmp_path):
    model, card, _ = load_checkpoint(sparse_ckpt)
    sd = tmp_path / "sd.pt"
    torch.save({"state_dict": model.net.state_dict()}, sd)
    cfg = BatteryConfig(checks=("clean",))
    with pytest.raises(UsageError):
        evaluate(sd, cfg, _opts(tmp_path))
    r = evaluate(sd, cfg, _opts(tmp_path, data="digits", arch="smallcnn", mean=card.mean, std=card.std))
    ours = evaluate(sparse_ckpt, cfg, _opts(tmp_path))
    assert r.metrics["accuracy"] == ours.metrics["accuracy"]
    assert r.model["source_format"] == "state_dict"


def test_ood_shape_mismatch_and_bad_names(sparse_ckpt, tmp_path, monkeypatch):
    np.savez(tmp_path / "rgb.npz", x=np.zeros((4, 32, 32, 3), np.uint8), y=np.zeros(4, np.int64))
    with pytest.raises(DataError, match="has images"):
        evaluate(
            sparse_ckpt, BatteryConfig(checks=("ood",)), _opts(tmp_path, ood=[f"npz:{tmp_path / 'rgb.npz'}"])
        )
    with pytest.raises(UsageError, match="names must differ"):
        evaluate(
            sparse_ckpt, BatteryConfig(checks=("ood",)), _opts(tmp_path, ood=["gaussian", "gaussian:50"])
        )
    with pytest.raises(UsageError, match="unknown check"):
        BatteryConfig(checks=("clean", "vibes"))


def test_named_npz_ood_set(sparse_ckpt, tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "test.npz", x=rng.integers(0, 255, (30, 8, 8, 1), dtype=np.uint8), y=np.zeros(30, np.int64)
    )
    r = evaluate(
        sparse_ckpt,
        BatteryConfig(checks=("ood",)),
        _opts(tmp_path, ood=[f"noise=npz:{tmp_path / 'test.npz'}"]),
    )
    assert "ood/noise/msp/auroc" in r.metrics
    r2 = evaluate(
        sparse_ckpt, BatteryConfig(checks=("ood",)), _opts(tmp_path, ood=[f"npz:{tmp_path / 'test.npz'}"])
    )
    assert any(k.startswith(f"ood/{tmp_path.name}/") for k in r2.metrics)


def test_result_schema_version_refused(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps({"schema": "evalsuite-result", "schema_version": 99}))
    with pytest.raises(DataError, match="schema version 99"):
        EvalResult.load(p)
