"""The battery with temperature scaling (held-out split, shards, compare) and with AutoAttack wired in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite.battery import BatteryConfig, EvalOptions, evaluate_with_arrays, merge_shards
from evalsuite.battery.run import save_result
from evalsuite.cli import main
from evalsuite.core.errors import UsageError
from evalsuite.metrics.temperature import fit_temperature, scaled_arrays

REPO = Path(__file__).resolve().parents[2]
DENSE = REPO / "checkpoints" / "digits-dense.pt"
SPARSE = REPO / "checkpoints" / "digits-erk-0.1.pt"
TS = ("temperature", "nll", "ece", "ece_adaptive", "brier")


def _opts(**kw: object) -> EvalOptions:
    return EvalOptions(cache=False, **kw)  # type: ignore[arg-type]


def test_calib_fraction_is_held_out_and_recorded() -> None:
    cfg = BatteryConfig(checks=("clean", "calibration"), calibrate="temperature", calib_fraction=0.2)
    r, a = evaluate_with_arrays(DENSE, cfg, _opts())
    calib = a["calib/index"]
    assert len(calib) == round(0.2 * r.data["id"]["of"]) == r.data["calibration"]["n"]
    assert not set(calib) & set(a["id/index"])  # disjoint from every test example
    assert len(calib) + len(a["id/index"]) == r.data["id"]["of"]
    assert np.bincount(a["calib/labels"]).min() >= len(calib) // 10 - 1  # stratified
    t = fit_temperature(a["calib/logits"], a["calib/labels"])
    assert r.metrics["calibration/ts/temperature"] == t
    ts = scaled_arrays(a["id/logits"], a["id/labels"], t)
    assert r.metrics["calibration/ts/nll"] == pytest.approx(float(ts["nll"].mean()), abs=1e-12)
    for leaf in TS:
        assert r.metric_info[f"calibration/ts/{leaf}"]["group"] == "calibration"
    assert r.data["calibration"]["fraction"] == 0.2 and r.config["calibrate"] == "temperature"
    # the raw metrics are computed on the same (reduced) test examples
    assert r.data["id"]["n"] == len(a["id/index"])


def test_without_calibrate_nothing_changes() -> None:
    r, a = evaluate_with_arrays(DENSE, BatteryConfig(checks=("clean", "calibration"), limit=100), _opts())
    assert not any(k.startswith("calibration/ts") for k in r.metrics)
    assert "calibration" not in r.data and not any(k.startswith("calib/") for k in a)


def test_calib_data_and_shards(tmp_path: Path) -> None:
    from evalsuite.data import load_dataset

    train = load_dataset("digits", "train")
    held = tmp_path / "calib.npz"
    x = (train.images()[:200].numpy() * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
    np.savez(held, x=x, y=train.y[:200].numpy())
    cfg = {"checks": ("clean", "calibration"), "calibrate": "temperature", "calib_data": f"npz:{held}"}
    whole, wa = evaluate_with_arrays(DENSE, BatteryConfig(**cfg), _opts())  # type: ignore[arg-type]
    assert whole.data["calibration"]["n"] == 200 and len(wa["id/index"]) == whole.data["id"]["of"]
    paths = []
    for i in range(2):
        r, a = evaluate_with_arrays(DENSE, BatteryConfig(**cfg, shard=(i, 2)), _opts())  # type: ignore[arg-type]
        paths.append(save_result(r, a, tmp_path / f"s{i}.json"))
    merged, _ = merge_shards(paths)
    for leaf in TS:
        name = f"calibration/ts/{leaf}"
        assert merged.metrics[name] == pytest.approx(whole.metrics[name], abs=1e-12), name
    with pytest.raises(UsageError, match="test set itself"):
        evaluate_with_arrays(
            DENSE,
            BatteryConfig(checks=("clean",), calibrate="temperature", calib_data="digits"),
            _opts(),
        )


def test_compare_tests_the_scaled_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    argv = ["compare", str(DENSE), str(SPARSE), "--checks", "clean,calibration", "--calibrate", "temperature"]
    code = main([*argv, "--no-cache", "--out", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    comp = json.loads((out / "comparison.json").read_text())
    rows = {m["name"]: m for m in comp["metrics"]}
    for leaf in ("nll", "ece", "ece_adaptive", "brier"):
        raw = rows["nll" if leaf == "nll" else leaf if leaf != "brier" else "brier"]
        d = rows[f"calibration/ts/{leaf}"]["deltas"]["digits-erk-0.1"]
        assert d["p_value"] is not None and d["test"] == raw["deltas"]["digits-erk-0.1"]["test"], leaf
    t = rows["calibration/ts/temperature"]
    assert t["family"] == "descriptive" and t["deltas"]["digits-erk-0.1"]["p_value"] is None


def test_autoattack_in_the_battery() -> None:
    """Tiny standard AutoAttack through evaluate: arrays, fooled_by metrics, details, and the package's own
    number on the same clean-correct examples."""
    from pyautoattack import AutoAttack

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # Square's thousands of tiny forward passes
    try:
        eps = 16 / 255
        cfg = BatteryConfig(
            checks=("clean", "robust"), attacks=("autoattack",), eps_linf=(eps,), limit=10, seed=5
        )
        r, a = evaluate_with_arrays(DENSE, cfg, _opts())
        robust = a["robust/autoattack/16_255/correct"]
        fooled = {k.rsplit("/", 1)[1]: v for k, v in a.items() if "/fooled_by/" in k}
        assert set(fooled) == {"apgd-ce", "apgd-t", "fab-t", "square"}
        assert np.array_equal(sum(v.astype(int) for v in fooled.values()) == 1, a["id/correct"] & ~robust)
        assert r.metrics["robust/autoattack/16_255/fooled_by/apgd-ce"] == fooled["apgd-ce"].mean()
        row = r.details["robust"]["results"][0]
        assert row["attack"] == "autoattack" and sum(row["fooled_by"].values()) == int(
            (~robust & a["id/correct"]).sum()
        )
        assert r.config["aa_version"] == "standard"

        from evalsuite.data import load_dataset
        from evalsuite.models.checkpoint import load_checkpoint

        model = load_checkpoint(DENSE)[0].eval()
        test = load_dataset("digits", "test")
        idx = torch.from_numpy(a["id/index"])
        cc = torch.from_numpy(a["id/correct"])
        x, y = test.images()[idx][cc], test.y[idx][cc]
        _, y_adv = AutoAttack(
            model, eps=eps, norm="Linf", seed=5, version="standard"
        ).run_standard_evaluation(x, y, batch_size=256)
        assert int((y_adv == y).sum()) == int(robust.sum())
    finally:
        torch.set_num_threads(n_threads)
