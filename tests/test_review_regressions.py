"""Regression tests for the bugs a review found: each one failed before its fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from evalsuite.battery import BatteryConfig, EvalOptions, evaluate, evaluate_with_arrays
from evalsuite.cli import main
from evalsuite.core.errors import CheckpointError, UsageError
from evalsuite.data import load_dataset
from evalsuite.report.compare import ModelEntry, build_comparison, build_group_comparison
from evalsuite.train import InitSpec, TrainJob, TrainOptions, run_training

REPO = Path(__file__).resolve().parents[1]
DENSE = REPO / "checkpoints" / "digits-dense.pt"
CLEAN = BatteryConfig(checks=("clean",))


def _digits_npz(path: Path, shuffle_labels: bool) -> None:
    d = load_dataset("digits", "test")
    x = (d.x.numpy() * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
    y = d.y.numpy().copy()
    if shuffle_labels:
        np.random.default_rng(0).shuffle(y)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=x, y=y)


def test_same_relative_npz_path_in_two_folders_does_not_share_the_cache(tmp_path, monkeypatch):
    _digits_npz(tmp_path / "a" / "data" / "test.npz", shuffle_labels=False)
    _digits_npz(tmp_path / "b" / "data" / "test.npz", shuffle_labels=True)
    opts = {"cache_dir": tmp_path / "cache", "data": "npz:data/test.npz", "ood": []}
    monkeypatch.chdir(tmp_path / "a")
    ra, aa = evaluate_with_arrays(DENSE, CLEAN, EvalOptions(**opts))
    monkeypatch.chdir(tmp_path / "b")
    rb, ab = evaluate_with_arrays(DENSE, CLEAN, EvalOptions(**opts))
    assert ra.metrics["accuracy"] > 0.9 > rb.metrics["accuracy"]
    # and compare refuses to pair them although the spec strings are equal
    with pytest.raises(UsageError, match=r"files .* differ"):
        build_comparison([ModelEntry("a", "a", ra, aa), ModelEntry("b", "b", rb, ab)])


def test_cache_hit_reports_this_calls_name_and_source(tmp_path):
    copy = tmp_path / "my-dense-seed0.pt"
    copy.write_bytes(DENSE.read_bytes())
    opts = {"cache_dir": tmp_path / "cache", "ood": []}
    evaluate(DENSE, CLEAN, EvalOptions(**opts, name="dense"))
    r = evaluate(copy, CLEAN, EvalOptions(**opts))
    assert r.model["name"] == "my-dense-seed0" and r.model["source"] == str(copy)


def test_empty_shard_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="holds no examples"):
        evaluate(
            DENSE, BatteryConfig(checks=("clean",), limit=3, shard=(3, 4)), EvalOptions(cache=False, ood=[])
        )


def _fake(name: str, seed: int, acc: float, ok: bool = True) -> ModelEntry:
    from evalsuite.core.results import EvalResult

    if not ok:
        return ModelEntry(name, name, error="boom")
    res = EvalResult(
        metrics={"accuracy": acc},
        metric_info={},
        config={"checks": ["clean"]},
        conventions={},
        data={"id": {"spec": "digits", "n": 4}, "ood": []},
        model={"name": name, "card": {"seed": seed}},
        provenance={},
    )
    arrays = {
        "id/index": np.arange(4),
        "id/labels": np.arange(4),
        "id/logits": np.zeros((4, 10), np.float32),
        "id/correct": np.array([True, True, False, False]),
    }
    return ModelEntry(name, name, res, arrays)


def test_seed_groups_pair_by_training_seed_not_position():
    dense = [_fake("d0", 0, 0.90), _fake("d1", 1, 0.0, ok=False), _fake("d2", 2, 0.70), _fake("d3", 3, 0.80)]
    erk = [_fake("e3", 3, 0.78), _fake("e0", 0, 0.88), _fake("e1", 1, 0.78), _fake("e2", 2, 0.68)]
    # d1 failed, so the seed sets differ ({0, 2, 3} vs {0, 1, 2, 3}): Welch on every seed, none dropped
    comp = build_group_comparison({"dense": dense, "erk": erk}, settings=None)
    d = comp.row("accuracy").deltas["erk"]
    assert d.paired_seeds is None and d.test.startswith("Welch's t-test on all seeds (3 vs 4)")
    assert d.delta == pytest.approx(0.78 - 0.80)
    # equal seed sets in another order: paired by seed, not by position
    same = build_group_comparison({"dense": dense, "erk": [erk[0], erk[1], erk[3]]}, settings=None)
    d = same.row("accuracy").deltas["erk"]
    assert d.paired_seeds == (0, 2, 3) and d.delta == pytest.approx(-0.02)
    # with --reference erk the example-level comparison is referenced to erk too
    comp2 = build_group_comparison({"dense": dense, "erk": erk}, reference="erk")
    assert comp2.example_level is not None and comp2.example_level.reference == "e3"


def test_resume_with_another_recipe_is_refused(tmp_path):
    def kill(epoch: int, record: dict) -> None:
        raise KeyboardInterrupt

    out = tmp_path / "m.pt"
    job = TrainJob(InitSpec("digits"), {"epochs": 3}, TrainOptions(out=out, on_epoch_end=kill))
    with pytest.raises(KeyboardInterrupt):
        run_training(job)
    again = TrainJob(InitSpec("digits"), {"epochs": 3, "lr": 0.5}, TrainOptions(out=out, resume=True))
    with pytest.raises(CheckpointError, match=r"another recipe.*lr 0\.05 -> 0\.5"):
        run_training(again)


def test_from_rejects_seed_flags(tmp_path, capsys):
    init = tmp_path / "i.pt"
    assert main(["init", "--dataset", "digits", "--out", str(init)]) == 0
    assert main(["train", "--from", str(init), "--seed", "7", "--out", str(tmp_path / "m.pt")]) == 2
    assert "--seed" in capsys.readouterr().err


def test_reference_failure_exits_1_and_names_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"nope")
    code = main(["compare", str(bad), str(DENSE), "--checks", "clean", "-q", "--out", str(tmp_path / "r")])
    assert code == 1 and "reference bad failed" in capsys.readouterr().err


def test_bench_epochs_override_scales_the_recipes_milestones(tmp_path, monkeypatch):
    from evalsuite.bench import runner
    from evalsuite.bench.suite import load_suite

    seen = {}

    def fake_run_training(job):
        seen.update(job.recipe_overrides)
        raise SystemExit  # stop before any work

    monkeypatch.setattr(runner, "run_training", fake_run_training)
    suite = load_suite("smoke")
    with pytest.raises(SystemExit):
        runner._train(
            suite, "x", {"dataset": "digits", "epochs": 30}, tmp_path, runner.Overrides(epochs=6), False
        )
    assert seen["epochs"] == 6 and seen["milestones"] == (4, 5)  # digits recipe: 30 epochs, x0.1 at 20 and 26


def test_bench_command_line_paths_are_relative_to_the_current_folder(tmp_path, monkeypatch):
    from evalsuite.bench import runner
    from evalsuite.bench.suite import load_suite

    captured = {}

    def fake_eval(ckpt, cfg, opts):
        captured["data"], captured["ood"] = opts.data, opts.ood
        raise SystemExit

    monkeypatch.setattr(runner, "evaluate_with_arrays", fake_eval)
    monkeypatch.setattr(runner, "check_inputs", lambda *a, **k: None)  # the files named here do not exist
    monkeypatch.chdir(tmp_path)
    ov = runner.Overrides(data="npz:mine/test.npz", ood=["x=npz:mine/ood.npz"])
    with pytest.raises(SystemExit):
        runner.run_suite(load_suite("smoke"), store=tmp_path / "r.db", ov=ov)
    assert captured == {"data": "npz:mine/test.npz", "ood": ["x=npz:mine/ood.npz"]}
    with pytest.raises(SystemExit):
        runner.run_suite(load_suite("smoke"), store=tmp_path / "r.db")
    assert captured["ood"] == ["photos", "gaussian"] and captured["data"] == "digits"
    assert os.getcwd() == str(tmp_path)
    json.dumps(captured)


def test_untrusted_torchscript_and_export_are_refused(tmp_path):
    import torch

    from evalsuite.models import create_model
    from evalsuite.models.foreign import load_any_model

    net = create_model("test_mlp", 10, (0.5,), (0.5,)).net.eval()
    ts = tmp_path / "m.ts"
    torch.jit.save(torch.jit.script(net), ts)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_any_model(ts, normalize=False)
    assert load_any_model(ts, normalize=False, trust=True).source_format == "torchscript"


def test_refusal_names_the_refused_class(tmp_path):
    import torch

    from evalsuite.models.checkpoint import safe_load

    p = tmp_path / "x.pt"
    torch.save({"m": _Opaque()}, p)
    with pytest.raises(CheckpointError, match=r"refused to unpickle \S*_Opaque"):
        safe_load(p)


class _Opaque:
    pass


def test_malformed_evalsuite_checkpoint_is_one_line(tmp_path):
    import torch

    from evalsuite.models.checkpoint import load_checkpoint

    p = tmp_path / "x.pt"
    torch.save({"format": "evalsuite-checkpoint", "format_version": 1}, p)
    with pytest.raises(CheckpointError, match="lacks its 'card' or 'state_dict'"):
        load_checkpoint(p)


def test_gate_nan_in_both_runs_is_unchanged_and_null_direction_defaults():
    import math

    from evalsuite.bench.gate import check
    from evalsuite.bench.store import MetricRow

    rows = {"m": {"ood/x/msp/auroc": MetricRow(math.nan)}}
    assert check(rows, rows).ok


def test_baseline_null_direction_uses_the_metric_name(tmp_path):
    from evalsuite.bench.gate import load_baseline

    p = tmp_path / "b.json"
    p.write_text(
        json.dumps(
            {
                "schema": "evalsuite-baseline",
                "schema_version": 1,
                "suite": "s",
                "metrics": {"m": {"accuracy": {"value": 0.9, "higher_is_better": None}}},
            }
        )
    )
    _, metrics = load_baseline(p)
    assert metrics["m"]["accuracy"].higher_is_better is True
