"""The battery's stages one by one on a tiny zoo model, their composition against ``evaluate_with_arrays``,
options that are never mutated, and the attack configs a BatteryConfig builds."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from evalsuite import evaluate as top_level_evaluate
from evalsuite.attacks import AttackConfig
from evalsuite.battery import BatteryConfig, EvalOptions, evaluate, evaluate_with_arrays
from evalsuite.battery import run as R
from evalsuite.battery.summarize import robust_key
from evalsuite.core.errors import UsageError
from evalsuite.data import load_dataset
from evalsuite.models import small
from evalsuite.models.foreign import NORM_NONE

REPO = Path(__file__).resolve().parents[2]
DENSE = REPO / "checkpoints" / "digits-dense.pt"
SPARSE = REPO / "checkpoints" / "digits-erk-0.1.pt"
SMALL = BatteryConfig(checks=("clean", "calibration", "ood", "robust", "sparsity"), limit=40, pgd_steps=2)


@pytest.fixture
def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return small.test_mlp().eval()


def _opts(**kw) -> EvalOptions:
    return EvalOptions(cache=False, data="digits", ood=["gaussian", "u=uniform"], **kw)


def test_overrides_build_a_copy_and_leave_the_callers_options_alone(tmp_path) -> None:
    opts = EvalOptions(cache=False, ood=[], name="mine", cache_dir=tmp_path / "c")
    before = dataclasses.asdict(opts)
    cfg = BatteryConfig(checks=("clean",), limit=30)
    result = evaluate(DENSE, cfg, opts, name="override", data="digits", batch_size=7)
    assert result.model["name"] == "override" and result.data["id"]["spec"] == "digits"
    assert dataclasses.asdict(opts) == before
    again = top_level_evaluate(DENSE, cfg, opts)  # the top-level name takes the same arguments
    assert again.model["name"] == "mine" and again.metrics == result.metrics
    assert dataclasses.asdict(opts) == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.name = "changed"  # type: ignore[misc]
    with pytest.raises(UsageError, match="unknown evaluate option 'bogus'"):
        evaluate(DENSE, cfg, opts, bogus=1)


def test_with_overrides_returns_a_new_options_object() -> None:
    opts = EvalOptions(data="digits")
    new = opts.with_overrides({"batch_size": 9, "name": None})
    assert new is not opts and new.batch_size == 9 and new.data == "digits" and opts.batch_size is None
    assert opts.with_overrides({}) is opts


def test_attack_configs_follow_the_battery() -> None:
    cfg = BatteryConfig(
        attacks=("pgd_l2", "fgsm", "pgd_linf"),
        eps_linf=(8 / 255, 2 / 255),
        eps_l2=(0.5,),
        pgd_steps=5,
        pgd_restarts=2,
        pgd_rel_stepsize=0.2,
        seed=3,
    )
    pgd: dict[str, Any] = {"steps": 5, "rel_stepsize": 0.2, "restarts": 2, "seed": 3}
    assert cfg.attack_configs() == (
        AttackConfig("pgd_l2", (0.5,), **pgd),
        AttackConfig("fgsm", (2 / 255, 8 / 255), seed=3),
        AttackConfig("pgd_linf", (2 / 255, 8 / 255), **pgd),
    )
    fgsm = cfg.attack_configs()[1]
    assert (fgsm.steps, fgsm.restarts, fgsm.random_start) == (1, 1, False)  # single step whatever PGD says
    # an attack whose norm has no eps is left out; no robust check, no attacks
    assert [c.name for c in BatteryConfig(attacks=("fgsm", "pgd_l2"), eps_l2=()).attack_configs()] == ["fgsm"]
    assert BatteryConfig(checks=("clean",)).attack_configs() == ()


def test_load_and_select_stages(mlp) -> None:
    cfg = dataclasses.replace(SMALL, shard=(1, 2))
    loaded = R.load_stage(mlp, cfg, _opts())
    full = load_dataset("digits", "test")
    assert loaded.data_spec == "digits" and len(loaded.id_full) == len(full)
    assert loaded.ood == (("gaussian", "gaussian"), ("u", "uniform"))
    assert len(loaded.ood_fingerprints) == 2 and loaded.model.sha256 is None
    assert loaded.model.normalization["source"] == NORM_NONE  # an in-memory module takes [0, 1] images
    # without the ood check no OOD set is named, read or fingerprinted
    bare = R.load_stage(mlp, BatteryConfig(checks=("clean",)), _opts())
    assert bare.ood == () and bare.ood_fingerprints == ()
    assert bare.cache_parts(BatteryConfig(checks=("clean",))) != loaded.cache_parts(cfg)

    sel = R.select_stage(loaded, cfg, _opts(device="cpu"))
    assert sel.device.type == "cpu" and len(sel.id_set) == 20  # every other of the 40 stratified
    idx = sel.id_index
    assert torch.equal(idx, idx.sort().values) and torch.equal(sel.id_set.y, full.y[idx])
    assert [(s.name, len(s.images)) for s in sel.ood] == [("gaussian", 20), ("u", 20)]
    whole = R.select_stage(loaded, SMALL, _opts(device="cpu"))  # the limit is stratified by class
    np.testing.assert_array_equal(np.bincount(whole.id_set.y.numpy()), [4] * 10)
    assert torch.equal(whole.id_index[1::2], idx)


def test_empty_shard_is_refused_in_select(mlp) -> None:
    cfg = BatteryConfig(checks=("clean",), limit=2, shard=(5, 6))
    loaded = R.load_stage(mlp, cfg, _opts())
    with pytest.raises(UsageError, match="shard 5/6 of digits holds no examples"):
        R.select_stage(loaded, cfg, _opts())


def test_predict_score_attack_measure_audit(mlp) -> None:
    opts = _opts(device="cpu", batch_size=7)  # batches that do not divide the set
    loaded = R.load_stage(mlp, SMALL, opts)
    sel = R.select_stage(loaded, SMALL, opts)
    preds = R.predict_stage(sel)
    with torch.no_grad():
        want = mlp(sel.id_set.images()).numpy()
    np.testing.assert_allclose(preds.arrays["id/logits"], want, rtol=0, atol=1e-6)
    assert preds.arrays["ood/u/logits"].shape == (len(sel.ood[1].images), 10)
    np.testing.assert_array_equal(preds.arrays["id/index"], sel.id_index.numpy())

    arrays = R.score_stage(preds.arrays, SMALL)
    assert "id/logits" in arrays and "id/correct" not in preds.arrays  # a new dict, the input unchanged
    np.testing.assert_array_equal(arrays["id/correct"], want.argmax(1) == arrays["id/labels"])
    assert {f"ood/{s}/score/energy" for s in ("gaussian", "u")} <= set(arrays)
    no_ood = R.score_stage(preds.arrays, dataclasses.replace(SMALL, checks=("clean",)))
    assert not any("/score/" in k for k in no_ood)

    assert R.attack_stage(sel, arrays, ()) is None
    # at eps 0 nothing is fooled: robust exactly where clean-correct
    robust = R.attack_stage(sel, arrays, (AttackConfig("fgsm", (0.0, 0.3)),))
    assert robust is not None and set(robust.arrays) == {robust_key("fgsm", 0.0), robust_key("fgsm", 0.3)}
    np.testing.assert_array_equal(robust.arrays[robust_key("fgsm", 0.0)], arrays["id/correct"])
    assert not (robust.arrays[robust_key("fgsm", 0.3)] & ~arrays["id/correct"]).any()
    assert robust.details["n"] == len(sel.id_set)

    measured = R.measure_stage({**arrays, **robust.arrays}, SMALL, sel.normalization, robust)
    acc = float(arrays["id/correct"].mean())
    assert measured.metrics["accuracy"] == pytest.approx(acc)
    assert measured.metrics["robust/fgsm/0_255/accuracy"] == pytest.approx(acc)
    assert measured.sanity["robust_le_clean"] is True and measured.details["robust"] is robust.details
    # an untrained net is at chance: the normalization warning is raised in the sanity record
    assert "chance" in measured.sanity["warnings"][0]

    audit = R.audit_stage(loaded.model, sel)
    assert audit.metrics()["sparsity/density"] == 1.0 and audit.sanity() == {}
    weights = sum(p.numel() for n, p in mlp.named_parameters() if n.endswith("weight"))
    assert audit.metrics()["sparsity/macs_dense"] == weights  # linear layers: one MAC per weight
    assert audit.metrics()["sparsity/params"] == sum(p.numel() for p in mlp.parameters())


def test_stages_in_sequence_are_evaluate(tmp_path) -> None:
    """The stages called by hand give the result ``evaluate_with_arrays`` gives (but for timings)."""
    opts = EvalOptions(cache=False, ood=["gaussian"])
    result, arrays = evaluate_with_arrays(SPARSE, SMALL, opts)
    loaded = R.load_stage(SPARSE, SMALL, opts)
    sel = R.select_stage(loaded, SMALL, opts)
    preds = R.predict_stage(sel)
    mine = R.score_stage(preds.arrays, SMALL)
    robust = R.attack_stage(sel, mine, SMALL.attack_configs())
    assert robust is not None
    mine = {**mine, **robust.arrays}
    measured = R.measure_stage(mine, SMALL, sel.normalization, robust)
    audit = R.audit_stage(loaded.model, sel)
    key = result.provenance["cache_key"]
    built = R.assemble(loaded, sel, measured, audit, SMALL, opts, key, {"total": 0.0})
    assert list(mine) == list(arrays)
    for k in arrays:
        np.testing.assert_array_equal(mine[k], arrays[k], err_msg=k)

    def body(r) -> dict:
        d = json.loads(r.to_json())
        return {k: v for k, v in d.items() if k not in ("timings", "provenance")}

    assert body(built) == body(result)
    assert built.sanity["masked_weights_zero"] is True and built.metrics["sparsity/mask_density"] < 0.2
    assert set(result.timings) == {"load", "predict", "robust", "sparsity", "total"}
