"""Corruption shift through the battery: per-set metrics against a direct computation with the model,
the aggregates, the cifar10c layout, shards, the catalogue, and compare's rows (mCE against the reference)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from evalsuite.battery import BatteryConfig, EvalOptions, evaluate_with_arrays, merge_shards
from evalsuite.battery.run import save_result
from evalsuite.cli import main
from evalsuite.core.errors import UsageError
from evalsuite.core.results import ModelEntry
from evalsuite.data import load_dataset
from evalsuite.data.base import stratified_indices
from evalsuite.data.corruptions import load_corruption_sets, write_corruption_folder
from evalsuite.metrics import catalogue as K
from evalsuite.metrics import classification as C
from evalsuite.metrics import corruption as CR
from evalsuite.metrics import inference as I
from evalsuite.models.checkpoint import load_checkpoint
from evalsuite.report.compare import build_comparison

REPO = Path(__file__).resolve().parents[2]
DENSE = REPO / "checkpoints" / "digits-dense.pt"
SPARSE = REPO / "checkpoints" / "digits-erk-0.1.pt"
NAMES = ("gaussian_noise", "fog")
SEVS = (1, 5)
CFG = BatteryConfig(
    checks=("clean",), corruption_data="corrupt:digits", corruptions=NAMES, severities=SEVS, limit=90
)


def _opts(**kw: object) -> EvalOptions:
    return EvalOptions(cache=False, device="cpu", **kw)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def dense() -> tuple[object, dict[str, np.ndarray]]:
    return evaluate_with_arrays(DENSE, CFG, _opts())


def test_per_set_metrics_equal_a_direct_computation(dense: tuple) -> None:
    r, a = dense
    assert CFG.checks == ("clean", "corruption")  # --corruption-data turns the check on
    sets = load_corruption_sets("corrupt:digits", NAMES, SEVS, shape=(1, 8, 8), seed=0)
    labels = sets[0].data.y
    idx = stratified_indices(labels, 90, CFG.seed + 3).sort().values
    assert np.array_equal(a["corruption/index"], idx.numpy())
    model, _, _ = load_checkpoint(DENSE)
    grids: dict[str, dict[tuple[str, int], float]] = {"accuracy": {}, "nll": {}, "ece": {}}
    for cs in sets:
        with torch.inference_mode():
            logits = model(cs.data.images(idx)).double()
        y = labels[idx]
        logp = torch.log_softmax(logits, 1)
        correct = (logits.argmax(1) == y).numpy()
        conf = logp.max(1).values.exp().numpy()
        acc = float(correct.mean())
        nll = float(-logp[torch.arange(len(y)), y].mean())
        ece = C.ece(conf, correct, n_bins=15)
        c, s = cs.corruption, cs.severity
        assert r.metrics[f"corruption/{c}/{s}/accuracy"] == pytest.approx(acc, abs=1e-12)
        assert r.metrics[f"corruption/{c}/{s}/nll"] == pytest.approx(nll, rel=1e-5)
        assert r.metrics[f"corruption/{c}/{s}/ece"] == pytest.approx(ece, abs=1e-5)
        for m, v in (("accuracy", acc), ("nll", nll), ("ece", ece)):
            grids[m][(c, s)] = v
    # corruption hurts: the severe noise and fog sets lose accuracy against the clean set
    assert r.metrics["corruption/fog/5/accuracy"] < r.metrics["accuracy"]
    agg = CR.corruption_metrics(grids)
    by_severity = [f"corruption/severity/{s}/{m}" for s in SEVS for m in ("accuracy", "ece")]
    for name in [*(f"corruption/mean/{m}" for m in grids), *by_severity]:
        assert r.metrics[name] == pytest.approx(agg[name], rel=1e-5, abs=1e-6), name
    assert "corruption/severity/1/nll" not in r.metrics  # ECE and accuracy against severity only
    assert r.data["corruption"]["n"] == 90 and r.data["corruption"]["corruptions"] == list(NAMES)
    assert r.metric_info["corruption/fog/1/accuracy"]["n"] == 90
    assert "corruption/fog/1/logits" not in a  # only what the metrics read is kept


def test_catalogue_lookups() -> None:
    cases = {
        "corruption/fog/3/accuracy": ("corruption_accuracy", True, "wilson", "mcnemar"),
        "corruption/fog/3/nll": ("corruption_nll", False, "bootstrap", "permutation"),
        "corruption/fog/3/ece": ("corruption_ece", False, "calibration_bound", "permutation"),
        "corruption/severity/3/accuracy": ("corruption_severity_accuracy", True, "bootstrap", "permutation"),
        "corruption/severity/3/ece": ("corruption_severity_ece", False, "bootstrap", "permutation"),
        "corruption/mean/accuracy": ("corruption_mean_accuracy", True, "bootstrap", "permutation"),
        "corruption/mce": ("corruption_mce", False, "none", "none"),
        "corruption/relative_mce": ("corruption_relative_mce", False, "none", "none"),
    }
    for name, (key, hib, ci, test) in cases.items():
        ref = K.lookup(name)
        assert (ref.family.key, ref.higher_is_better, ref.family.value_ci, ref.family.paired_test) == (
            key,
            hib,
            ci,
            test,
        ), name
        assert ref.group == "corruption"
    assert K.merge_rule("corruption/fog/3/ece") == "recompute"
    assert K.lookup("corruption/fog/3/ece").display() == "fog severity 3 ECE"
    assert K.calibration_bound_args("corruption/fog/3/ece") == ("ece", "uniform")
    # the eps token is shown as a reader writes it
    assert K.lookup("robust/pgd_linf/8_255/accuracy").display() == "pgd_linf robust accuracy at eps 8/255"
    assert K.lookup("robust/pgd_l2/0.5/accuracy").display() == "pgd_l2 robust accuracy at eps 0.5"


def test_default_runs_are_unchanged() -> None:
    cfg = BatteryConfig()
    assert "corruption" not in cfg.checks
    ident = cfg.identity()
    assert not {"corruption_data", "corruptions", "severities"} & set(ident)
    assert "corruption_data" in CFG.identity()
    with pytest.raises(UsageError, match="need --corruption-data"):
        BatteryConfig(corruptions=("fog",))
    with pytest.raises(UsageError, match="needs --corruption-data"):
        BatteryConfig(checks="clean,corruption")
    with pytest.raises(UsageError, match="unknown corruption"):
        BatteryConfig(corruption_data="corrupt:digits", corruptions=("fogg",))
    with pytest.raises(UsageError, match="severity"):
        BatteryConfig(corruption_data="corrupt:digits", severities="0")


def test_cifar10c_layout_gives_the_same_numbers(dense: tuple, tmp_path: Path) -> None:
    """The folder cache in the official layout, read back as cifar10c:, scores exactly as generating."""
    folder = tmp_path / "digits-c"
    write_corruption_folder(load_dataset("digits", "test"), folder, NAMES, seed=0)
    cfg = dataclasses.replace(CFG, corruption_data=f"cifar10c:{folder}")
    r, a = evaluate_with_arrays(DENSE, cfg, _opts())
    for name, v in dense[0].metrics.items():
        # the same uint8 images; float rounding of the logits may differ in the last bits
        assert r.metrics[name] == pytest.approx(v, rel=1e-6, abs=1e-9), name
    assert np.array_equal(a["corruption_all/correct"], dense[1]["corruption_all/correct"])
    assert r.data["corruption"]["fingerprint"]["files"]


def test_shards_merge_to_the_whole(dense: tuple, tmp_path: Path) -> None:
    paths = []
    for i in range(2):
        r, a = evaluate_with_arrays(DENSE, dataclasses.replace(CFG, shard=(i, 2)), _opts())
        paths.append(save_result(r, a, tmp_path / f"s{i}.json"))
    merged, arrays = merge_shards(paths)
    whole, whole_arrays = dense
    for name, v in whole.metrics.items():
        assert merged.metrics[name] == pytest.approx(v, abs=1e-12), name
    assert np.array_equal(arrays["corruption/index"], whole_arrays["corruption/index"])
    assert np.array_equal(arrays["corruption_all/correct"], whole_arrays["corruption_all/correct"])
    # one row per image, one column per (corruption, severity) set
    assert arrays["corruption_all/correct"].shape == (90, len(CFG.corruptions) * len(CFG.severities))
    assert merged.data["corruption"]["n"] == 90


def test_compare_tests_each_set_and_gives_mce(dense: tuple) -> None:
    r_sparse, a_sparse = evaluate_with_arrays(SPARSE, CFG, _opts())
    comp = build_comparison(
        [ModelEntry("dense", "d", dense[0], dense[1]), ModelEntry("sparse", "s", r_sparse, a_sparse)]
    )
    row = comp.row("corruption/fog/5/accuracy")
    assert row.deltas["sparse"].test == "exact McNemar"
    assert comp.row("corruption/mean/ece").deltas["sparse"].test == "paired permutation"
    assert comp.row("corruption/fog/5/ece").values["dense"].ci_method.startswith("calibration bound")
    grid = {(c, s): r_sparse.metrics[f"corruption/{c}/{s}/accuracy"] for c in NAMES for s in SEVS}
    ref = {(c, s): dense[0].metrics[f"corruption/{c}/{s}/accuracy"] for c in NAMES for s in SEVS}
    mce = comp.row("corruption/mce")
    assert mce.values["dense"].value == pytest.approx(1.0)
    assert mce.values["sparse"].value == pytest.approx(CR.mean_corruption_error(grid, ref))
    rel = CR.relative_mean_corruption_error(
        grid, r_sparse.metrics["accuracy"], ref, dense[0].metrics["accuracy"]
    )
    assert comp.row("corruption/relative_mce").values["sparse"].value == pytest.approx(rel)
    assert mce.deltas["sparse"].p_value is None and mce.family.value == "descriptive"


def test_compare_cli_shows_the_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    argv = ["compare", str(DENSE), str(SPARSE), "--checks", "clean", "--corruption-data", "corrupt:digits",
            "--corruptions", "fog", "--severities", "2", "--limit", "60", "--n-boot", "200", "--no-cache",
            "--out", str(out), "-q"]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    assert (out / "plots" / "corruption.png").stat().st_size > 0
    md = (out / "report.md").read_text()
    for name in (
        "corruption/fog/2/accuracy",
        "corruption/mean/ece",
        "corruption/mce",
        "corruption/relative_mce",
    ):
        assert name in md, name
    comp = json.loads((out / "comparison.json").read_text())
    names = [row["name"] for row in comp["metrics"]]
    assert "corruption/fog/2/nll" in names and "corruption/severity/2/ece" in names
    assert names.index("corruption/mce") > names.index("corruption/fog/2/ece")


def _cells(correct: np.ndarray, names: tuple[str, ...], sevs: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per-set arrays where every set repeats the same per-image outcome (an image right under one
    corruption is right under all): the aggregates then carry no more information than one set."""
    conf = np.where(correct, 0.9, 0.6)
    out: dict[str, np.ndarray] = {"corruption/labels": np.zeros(len(correct), dtype=np.int64)}
    for c in names:
        for s in sevs:
            out[f"corruption/{c}/{s}/correct"] = correct.copy()
            out[f"corruption/{c}/{s}/confidence"] = conf.copy()
            out[f"corruption/{c}/{s}/nll"] = -np.log(np.where(correct, 0.9, 0.1))
    return out


def test_aggregate_intervals_and_tests_resample_images_not_image_set_pairs() -> None:
    """The same images appear under every corruption, so the mean over sets is no more precise than one
    set when the sets agree. A bootstrap or permutation over the stacked (image, set) rows would shrink the
    interval by about sqrt(sets) and make p far smaller; resampling images gives one set's numbers exactly."""
    from evalsuite.battery.summarize import derive_corruption_aggregates
    from evalsuite.report.compare import CompareSettings, metric_value, paired_delta

    rng = np.random.default_rng(0)
    names, sevs = ("fog", "snow", "frost", "blur"), (1, 3, 5)
    a = derive_corruption_aggregates(_cells(rng.random(120) < 0.7, names, sevs))
    b = derive_corruption_aggregates(_cells(rng.random(120) < 0.6, names, sevs))
    assert a["corruption_all/correct"].shape == (120, 12)
    s = CompareSettings(n_boot=500, n_perm=500)
    for leaf, one_set in (("nll", "corruption/fog/1/nll"), ("accuracy", "corruption/fog/1/correct")):
        arr = [a[f"corruption_all/{'correct' if leaf == 'accuracy' else leaf}"]]
        v = metric_value(f"corruption/mean/{leaf}", None, arr, 15, s)
        single = I.value_ci(np.mean, [a[one_set].astype(np.float64)], "basic", 500, 0.95, 0)
        assert v.n == 120
        assert (v.ci_low, v.ci_high) == pytest.approx((single["ci_low"], single["ci_high"]), abs=1e-12), leaf
        # the old layout: the 12 sets end to end, rows resampled independently
        stacked = I.value_ci(np.mean, [np.concatenate([a[one_set]] * 12).astype(np.float64)], "basic", 500)
        assert stacked["ci_high"] - stacked["ci_low"] < 0.5 * (v.ci_high - v.ci_low)
    key = "corruption_all/correct"
    d = paired_delta("corruption/mean/accuracy", [a[key]], [b[key]], 15, s)
    fog_a, fog_b = a["corruption/fog/1/correct"], b["corruption/fog/1/correct"]
    one = I.permutation_test(np.mean, [fog_a.astype(np.float64)], [fog_b.astype(np.float64)], n_perm=500)
    assert d["p_value"] == pytest.approx(one["p_value"], abs=1e-12)
    assert d["delta"] == pytest.approx(one["delta"], abs=1e-12)
