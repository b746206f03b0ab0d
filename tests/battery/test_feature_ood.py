"""Feature OOD scores through the battery: equal to the detectors called directly, one pass per dataset,
statistics cached by model hash and fit data, metrics in the catalogue like the logit scores."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite.battery import BatteryConfig, EvalOptions, evaluate_with_arrays
from evalsuite.cli import main
from evalsuite.data import load_dataset
from evalsuite.data.base import stratified_indices
from evalsuite.metrics import auroc
from evalsuite.metrics import catalogue as K
from evalsuite.models.features import linear_head, penultimate_features
from evalsuite.models.foreign import load_any_model
from evalsuite.ood.features import fit_detectors, odin_scores, score_detectors
from evalsuite.report.compare import ModelEntry, build_comparison

REPO = Path(__file__).resolve().parents[2]
DENSE = REPO / "checkpoints" / "digits-dense.pt"
SPARSE = REPO / "checkpoints" / "digits-erk-0.1.pt"
FITTED = ("mahalanobis", "knn", "react", "vim")
ALL = ("msp", "energy", *FITTED, "odin")
CFG = BatteryConfig(checks=("clean", "ood"), ood_scores=ALL, fit_limit=600)


def _opts(**kw: object) -> EvalOptions:
    return EvalOptions(cache=False, device="cpu", **kw)  # type: ignore[arg-type]


def test_battery_equals_the_detectors_called_directly() -> None:
    result, arrays = evaluate_with_arrays(SPARSE, CFG, _opts())
    net = load_any_model(SPARSE).model.eval()
    train = load_dataset("digits", "train")
    sub = train.select(stratified_indices(train.y, 600, CFG.seed + 3).sort().values)
    fit = penultimate_features(net, [sub.images()])
    fits = fit_detectors(FITTED, fit.features, sub.y.numpy(), linear_head(net))
    test = load_dataset("digits", "test")
    sets = {"id": test}
    for name in ("photos", "gaussian", "uniform"):
        sets[name] = load_dataset(name, "test", shape=test.input_shape)
    direct: dict[str, dict[str, np.ndarray]] = {}
    for key, data in sets.items():
        got = penultimate_features(net, [data.images()])
        direct[key] = score_detectors(fits, got.features)
        direct[key]["odin"] = odin_scores(net, data.images())
    assert result.data["fit"]["n"] == 600 and result.data["fit"]["layer"] == "net.fc"
    assert result.data["fit"]["head_is_logits"] is True
    for name in ("photos", "gaussian", "uniform"):
        for score in (*FITTED, "odin"):
            want = auroc(direct["id"][score], direct[name][score])
            assert result.metrics[f"ood/{name}/{score}/auroc"] == pytest.approx(want, abs=1e-9)
            np.testing.assert_allclose(arrays[f"ood/{name}/score/{score}"], direct[name][score], rtol=1e-6)
        # the logit scores are still there, and the features are not kept
        assert f"ood/{name}/msp/auroc" in result.metrics
    assert not any(k.endswith("/features") for k in arrays)
    assert "ood_features" in result.conventions and result.timings["fit"] >= 0 and "odin" in result.timings


class _Counter:
    def __init__(self, net: torch.nn.Module) -> None:
        self.sizes: list[int] = []
        net.register_forward_pre_hook(lambda _m, inp: self.sizes.append(int(inp[0].shape[0])))


def test_one_forward_pass_per_dataset() -> None:
    """Feature scores add the fit subset's pass and a one-image probe, never a second pass over a test set."""
    n = {}
    for scores in (("msp",), ("msp", *FITTED)):
        net = load_any_model(DENSE).model
        count = _Counter(net)
        cfg = BatteryConfig(checks=("clean", "ood"), ood_scores=scores, fit_limit=300)
        result, _ = evaluate_with_arrays(net, cfg, _opts(data="digits", batch_size=64))
        n[scores] = count.sizes
    tested = 450 + sum(d["n"] for d in result.data["ood"])
    # the logit run: the one-image input check, then the test sets once
    assert sum(n[("msp",)]) == 1 + tested
    # with features: plus a one-image probe of the layer and one pass over the 300 fit examples
    assert sum(n[("msp", *FITTED)]) == 1 + 1 + tested + 300
    assert n[("msp", *FITTED)].count(64) == n[("msp",)].count(64) + 300 // 64


def test_statistics_cached_by_model_and_fit_data(tmp_path: Path) -> None:
    cfg = dataclasses.replace(CFG, ood_scores=("msp", "knn", "mahalanobis"))
    opts = EvalOptions(cache_dir=tmp_path, device="cpu")
    first, a1 = evaluate_with_arrays(DENSE, cfg, opts)
    assert first.data["fit"]["statistics"] == "computed"
    assert len(list((tmp_path / "fits").glob("*.npz"))) == 2
    # another result (a subset of the test set) from the same fit statistics
    second, a2 = evaluate_with_arrays(DENSE, dataclasses.replace(cfg, limit=200), opts)
    assert second.data["fit"]["statistics"] == "cached"
    pos = np.searchsorted(a1["id/index"], a2["id/index"])
    np.testing.assert_array_equal(a2["id/score/knn"], a1["id/score/knn"][pos])
    # another fit limit or another model: not the cached statistics
    third, _ = evaluate_with_arrays(DENSE, dataclasses.replace(cfg, fit_limit=500), opts)
    assert third.data["fit"]["statistics"] == "computed"
    other, _ = evaluate_with_arrays(SPARSE, cfg, opts)
    assert other.data["fit"]["statistics"] == "computed"
    assert len(list((tmp_path / "fits").glob("*.npz"))) == 6
    off, a4 = evaluate_with_arrays(DENSE, cfg, _opts())
    assert off.data["fit"]["statistics"].startswith("computed (cache off")
    np.testing.assert_array_equal(a4["id/score/knn"], a1["id/score/knn"])


def test_feature_metrics_are_catalogued_and_compare() -> None:
    # one OOD set and 200 examples: the point is the catalogue and compare's rows, not the statistics' power
    cfg = dataclasses.replace(CFG, ood_scores=("msp", "knn", "vim"), limit=200)
    entries = []
    for path in (DENSE, SPARSE):
        r, a = evaluate_with_arrays(path, cfg, _opts(ood=["photos"]))
        entries.append(ModelEntry(path.stem, str(path), r, a))
    for name in entries[0].result.metrics:
        if "/knn/" in name or "/vim/" in name:
            ref = K.lookup(name)
            assert ref.family.group == "ood" and ref.params["score"] in ("knn", "vim")
    comp = build_comparison(entries, None, None)
    names = {row.name for row in comp.metrics}
    assert "ood/photos/knn/auroc" in names and "ood/photos/vim/fpr95" in names


def test_cli_lists_and_runs_feature_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ls", "ood-scores"]) == 0
    listed = capsys.readouterr().out
    for s in (*FITTED, "odin"):
        assert f"  {s} " in listed
    out = tmp_path / "r.json"
    argv = ["eval", str(DENSE), "--no-cache", "-q", "--checks", "clean,ood", "--ood", "photos"]
    argv += ["--ood-scores", "msp,knn", "--fit-limit", "200", "--feature-layer", "net.fc", "--out", str(out)]
    assert main(argv) == 0
    r = json.loads(out.read_text())
    assert r["config"]["fit_limit"] == 200 and r["data"]["fit"]["n"] == 200
    assert 0.5 < r["metrics"]["ood/photos/knn/auroc"] <= 1.0
