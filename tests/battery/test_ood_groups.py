"""Near/far OOD groups through the battery (group means, shards, compare) and ``evalsuite data export``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from evalsuite.battery import BatteryConfig, EvalOptions, evaluate_with_arrays, merge_shards
from evalsuite.battery.run import save_result
from evalsuite.cli import main
from evalsuite.core.results import ModelEntry
from evalsuite.data import load_dataset
from evalsuite.metrics import catalogue as K
from evalsuite.report.compare import build_comparison

REPO = Path(__file__).resolve().parents[2]
DENSE = REPO / "checkpoints" / "digits-dense.pt"
SPARSE = REPO / "checkpoints" / "digits-erk-0.1.pt"
GROUPS = ["near:photos", "far:gaussian,uniform"]
CFG = BatteryConfig(checks=("clean", "ood"), ood_scores=("msp", "energy", "knn"), fit_limit=300, limit=200)
LEAVES = ("auroc", "aupr_in", "aupr_out", "fpr95", "fpr95_ood")


def _opts(**kw: object) -> EvalOptions:
    return EvalOptions(cache=False, device="cpu", ood=GROUPS, **kw)  # type: ignore[arg-type]


def test_group_metrics_are_the_mean_of_their_sets() -> None:
    r, a = evaluate_with_arrays(DENSE, CFG, _opts())
    assert r.data["ood_groups"] == {"near": ["photos"], "far": ["gaussian", "uniform"]}
    assert [o["group"] for o in r.data["ood"]] == ["near", "far", "far"]
    assert "ood_groups" in r.conventions
    for score in CFG.ood_scores:
        for leaf in LEAVES:
            far = r.metrics[f"ood/group/far/{score}/{leaf}"]
            sets = [r.metrics[f"ood/{s}/{score}/{leaf}"] for s in ("gaussian", "uniform")]
            assert far == pytest.approx(np.mean(sets), abs=1e-12)
            assert r.metrics[f"ood/group/near/{score}/{leaf}"] == pytest.approx(
                r.metrics[f"ood/photos/{score}/{leaf}"], abs=1e-12
            )
    name = "ood/group/far/msp/auroc"
    ref = K.lookup(name)
    assert ref.family.key == "ood_group_auroc" and ref.params == {"group": "far", "score": "msp"}
    assert K.lookup("ood/far/msp/auroc").family.key == "ood_auroc"  # a set named far stays a set
    assert K.merge_rule(name) == "recompute" and K.higher_is_better(name)
    assert r.metric_info[name]["n_ood"] == sum(o["n"] for o in r.data["ood"][1:])
    assert len(a["ood_group/far/member"]) == len(a["ood_group/far/score/knn"])


def test_shards_merge_to_the_whole_groups(tmp_path: Path) -> None:
    whole, _ = evaluate_with_arrays(DENSE, CFG, _opts())
    paths = []
    for i in range(2):
        r, a = evaluate_with_arrays(DENSE, dataclasses.replace(CFG, shard=(i, 2)), _opts())
        paths.append(save_result(r, a, tmp_path / f"s{i}.json"))
    merged, _ = merge_shards(paths)
    for name, v in whole.metrics.items():
        if name.startswith("ood/group/"):
            assert merged.metrics[name] == pytest.approx(v, abs=1e-12), name


def test_compare_tests_the_group_means() -> None:
    cfg = dataclasses.replace(CFG, ood_scores=("msp",))
    entries = []
    for path in (DENSE, SPARSE):
        r, a = evaluate_with_arrays(path, cfg, _opts())
        entries.append(ModelEntry(path.stem, str(path), r, a))
    comp = build_comparison(entries, None, None)
    rows = {row.name: row for row in comp.metrics}
    assert "ood/group/far/msp/auroc" in rows and "ood/group/near/msp/fpr95" in rows


def test_data_export_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "digits_test.npz"
    assert main(["data", "export", "digits", "--split", "test", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    back, orig = load_dataset(f"npz:{out}", "test"), load_dataset("digits", "test")
    np.testing.assert_array_equal(back.y.numpy(), orig.y.numpy())
    np.testing.assert_allclose(back.images().numpy(), orig.images().numpy(), atol=1 / 255)
    # an exported set serves as a named OOD set in a group
    ph = tmp_path / "photos.npz"
    assert main(["data", "export", "photos", "--out", str(ph)]) == 0
    opts = dataclasses.replace(_opts(), ood=[f"far:pics=npz:{ph}", "near:photos"])
    r, _ = evaluate_with_arrays(DENSE, dataclasses.replace(CFG, ood_scores=("msp",)), opts)
    assert r.data["ood_groups"] == {"far": ["pics"], "near": ["photos"]}
    assert "ood/group/far/msp/auroc" in r.metrics
