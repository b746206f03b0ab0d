"""Training: the digits default learns, masks hold, paired runs, resume after a kill is exact."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evalsuite.core.errors import CheckpointError, UsageError
from evalsuite.data import load_dataset
from evalsuite.models.checkpoint import load_checkpoint, safe_load
from evalsuite.sparsity import density_report, prunable_layers
from evalsuite.train import InitSpec, TrainJob, TrainOptions, init_model, run_training
from evalsuite.train.augment import random_crop_flip


def _job(tmp: Path, name: str, **kw) -> TrainJob:
    overrides = kw.pop("overrides", {})
    opts = kw.pop("opts", {})
    return TrainJob(InitSpec("digits", **kw), overrides, TrainOptions(out=tmp / f"{name}.pt", **opts))


def test_dense_digits_reaches_90_percent(tmp_path):
    card = run_training(_job(tmp_path, "dense", seed=0))
    assert card.metrics["test_accuracy"] >= 0.90
    assert card.metrics["test_examples"] == 450
    _model, card2, masks = load_checkpoint(tmp_path / "dense.pt")
    assert masks == {}
    assert card2.metrics == card.metrics
    log = (tmp_path / "dense.log.jsonl").read_text().splitlines()
    assert len(log) == 30
    assert not (tmp_path / "dense.resume.pt").exists()


def test_sparse_training_keeps_masks_and_learns(tmp_path):
    card = run_training(_job(tmp_path, "erk", scheme="erk", density=0.2, seed=1, overrides={"epochs": 8}))
    model, card, masks = load_checkpoint(tmp_path / "erk.pt")
    layers = prunable_layers(model, torch.zeros(1, 1, 8, 8))
    rep = density_report(model, layers, masks)
    assert rep["masked_nonzero"] == 0
    assert rep["mask_density"] == pytest.approx(0.2, abs=len(layers) / rep["prunable_params"])
    assert card.sparsity["scheme"] == "erk"
    assert card.metrics["test_accuracy"] > 0.5


def test_paired_runs_share_init_and_data_order():
    dense, _, _ = init_model(InitSpec("digits", seed=4))
    sparse, _card, masks = init_model(InitSpec("digits", scheme="snip", density=0.3, seed=4))
    sd, ss = dense.state_dict(), sparse.state_dict()
    for k in sd:
        if k in masks:
            assert torch.equal(ss[k], sd[k] * masks[k])
        else:
            assert torch.equal(ss[k], sd[k]), k


def test_resume_after_kill_gives_identical_weights(tmp_path):
    full = _job(tmp_path / "a", "m", scheme="erk", density=0.3, seed=2, overrides={"epochs": 5})
    run_training(full)

    class Killed(Exception):
        pass

    def kill(epoch: int, record: dict) -> None:
        if epoch == 2:
            raise Killed

    killed = _job(
        tmp_path / "b",
        "m",
        scheme="erk",
        density=0.3,
        seed=2,
        overrides={"epochs": 5},
        opts={"on_epoch_end": kill},
    )
    with pytest.raises(Killed):
        run_training(killed)
    assert (tmp_path / "b" / "m.resume.pt").exists()
    assert not (tmp_path / "b" / "m.pt").exists()
    resumed = _job(
        tmp_path / "b", "m", scheme="erk", density=0.3, seed=2, overrides={"epochs": 5}, opts={"resume": True}
    )
    run_training(resumed)
    a = safe_load(tmp_path / "a" / "m.pt")["state_dict"]
    b = safe_load(tmp_path / "b" / "m.pt")["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert len((tmp_path / "b" / "m.log.jsonl").read_text().splitlines()) == 5


def test_resume_refuses_other_job(tmp_path):
    def kill(epoch: int, record: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(_job(tmp_path, "m", seed=2, overrides={"epochs": 3}, opts={"on_epoch_end": kill}))
    with pytest.raises(CheckpointError, match="seed"):
        run_training(_job(tmp_path, "m", seed=3, overrides={"epochs": 3}, opts={"resume": True}))
    with pytest.raises(CheckpointError, match="masks"):
        run_training(_job(tmp_path, "m", seed=2, scheme="erk", density=0.5, opts={"resume": True}))


def test_resume_without_state_is_an_error(tmp_path):
    with pytest.raises(CheckpointError, match="no resume state"):
        run_training(_job(tmp_path, "none", opts={"resume": True}))


def test_from_init_checkpoint(tmp_path):
    from evalsuite.models.checkpoint import save_checkpoint

    model, card, masks = init_model(InitSpec("digits", scheme="uniform", density=0.5, seed=0))
    save_checkpoint(tmp_path / "init.pt", model, card, masks)
    job = TrainJob(None, {"epochs": 2}, TrainOptions(out=tmp_path / "m.pt"), from_init=tmp_path / "init.pt")
    out = run_training(job)
    assert out.sparsity["mask_hash"] == card.sparsity["mask_hash"]
    assert out.recipe["epochs"] == 2


def test_class_count_mismatch_on_from(tmp_path):
    from evalsuite.models.checkpoint import save_checkpoint
    from evalsuite.train import Recipe, train_model

    model, card, masks = init_model(InitSpec("digits", seed=0))
    train = load_dataset("digits", "train")
    other = train.__class__(**{**train.__dict__, "num_classes": 7})
    with pytest.raises(UsageError, match="classes"):
        train_model(model, card, masks, Recipe(epochs=1), TrainOptions(out=tmp_path / "x.pt"), other, other)
    save_checkpoint(tmp_path / "init.pt", model, card, masks)


def test_random_crop_flip_is_a_crop_and_seeded():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8) + 1
    a = random_crop_flip(x, 2, torch.Generator().manual_seed(0))
    b = random_crop_flip(x, 2, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == x.shape
    # every nonzero output pixel comes from the same image and channel, padding is zero
    for i in range(2):
        for c in range(3):
            vals = set(a[i, c].flatten().tolist()) - {0.0}
            assert vals <= set(x[i, c].flatten().tolist())
    # with no padding the crop is the identity up to a flip
    c = random_crop_flip(x, 0, torch.Generator().manual_seed(1))
    for i in range(2):
        assert torch.equal(c[i], x[i]) or torch.equal(c[i], x[i].flip(2))


def test_torchrun_two_processes_keeps_masks(tmp_path):
    """DDP on CPU (gloo): two ranks take equal shares and the masked weights stay zero."""
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "-m",
        "evalsuite.cli",
        "-q",
        "train",
        "--dataset",
        "digits",
        "--sparse-init",
        "erk",
        "--density",
        "0.2",
        "--epochs",
        "2",
        "--seed",
        "0",
        "--out",
        str(out),
    ]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    model, card, masks = load_checkpoint(out)
    assert card.provenance["world_size"] == 2
    rep = density_report(model, prunable_layers(model, torch.zeros(1, 1, 8, 8)), masks)
    assert rep["masked_nonzero"] == 0
    assert r.stdout.count("wrote") == 1


_RANK_SCRIPT = """
import os, sys
from pathlib import Path
import torch
from evalsuite.data import load_dataset
from evalsuite.train import InitSpec, TrainOptions, init_model
from evalsuite.train.loop import train_model
from evalsuite.train.recipe import resolve_recipe

out = Path(sys.argv[1])
model, card, masks = init_model(InitSpec("digits", scheme="erk", density=0.2, seed=3))
recipe, _ = resolve_recipe("digits", {"epochs": 2})
opts = TrainOptions(out=out / "model.pt", device="cpu", limit_train=400, limit_test=200)
train_model(model, card, masks, recipe, opts, load_dataset("digits", "train"), load_dataset("digits", "test"))
torch.save({"state": model.state_dict(), "masks": masks}, out / f"rank{os.environ['RANK']}.pt")
"""


def test_torchrun_ranks_end_with_identical_weights(tmp_path):
    """DDP on CPU (gloo): each rank sees half of every batch, yet both end with the very same weights (the
    gradients are averaged before the step), equal to the checkpoint rank 0 writes; masks hold on both."""
    import os
    import subprocess
    import sys

    script = tmp_path / "rank_weights.py"
    script.write_text(_RANK_SCRIPT)
    repo = str(Path(__file__).resolve().parents[2])
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(script),
    ]
    r = subprocess.run([*cmd, str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    ranks = [torch.load(tmp_path / f"rank{i}.pt", weights_only=True) for i in (0, 1)]
    saved, card, masks = load_checkpoint(tmp_path / "model.pt")
    assert card.provenance["world_size"] == 2
    state0, state1 = ranks[0]["state"], ranks[1]["state"]
    assert state0.keys() == state1.keys() == saved.state_dict().keys()
    moved = 0
    init, _, _ = init_model(InitSpec("digits", scheme="erk", density=0.2, seed=3))
    for k, v in state0.items():
        assert torch.equal(v, state1[k]), f"{k} differs between ranks"
        assert torch.equal(v, saved.state_dict()[k]), f"{k} differs from the checkpoint"
        moved += not torch.equal(v, init.state_dict()[k])
    assert moved > 0  # it trained
    for name, mask in masks.items():
        for r in ranks:
            assert torch.equal(r["masks"][name], mask)
            assert not r["state"][name][~mask].any(), f"pruned weights of {name} grew back"
