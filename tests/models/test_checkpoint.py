"""Checkpoints are plain data: weights_only round trip, bit-exact logits, atomic writes, clean errors."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from evalsuite.core.errors import CheckpointError
from evalsuite.data import load_dataset
from evalsuite.models.checkpoint import load_checkpoint, save_checkpoint
from evalsuite.train import InitSpec, init_model


@pytest.fixture
def sparse_ckpt(tmp_path):
    model, card, masks = init_model(InitSpec("digits", scheme="erk", density=0.1, seed=3))
    path = save_checkpoint(tmp_path / "m.pt", model, card, masks)
    return path, model, card, masks


def test_round_trip_bit_exact(sparse_ckpt):
    path, model, card, masks = sparse_ckpt
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "evalsuite-checkpoint"
    loaded, card2, masks2 = load_checkpoint(path)
    x = load_dataset("digits", "test").images()[:64]
    model.eval()
    assert torch.equal(model(x), loaded(x))
    assert card2.to_dict() == card.to_dict()
    assert masks2.keys() == masks.keys() and all(torch.equal(masks[k], masks2[k]) for k in masks)
    sp = card2.sparsity
    assert sp["scheme"] == "erk" and sp["mask_seed"] == 3 and sp["mask_hash"].startswith("sha256:")
    assert abs(sp["realized_density"] - 0.1) < 1e-3
    assert card2.provenance["versions"]["torch"]
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/evalsuite_pwned_marker",))


def test_malicious_pickle_refused_and_not_run(tmp_path):
    marker = "/tmp/evalsuite_pwned_marker"
    if os.path.exists(marker):
        os.unlink(marker)
    p = tmp_path / "evil.pt"
    torch.save({"state_dict": {}, "x": Evil()}, p)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_checkpoint(p)
    assert not os.path.exists(marker)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", None])
def test_corrupt_files(tmp_path, sparse_ckpt, content):
    p = tmp_path / "bad.pt"
    if content is None:  # truncated real checkpoint
        data = sparse_ckpt[0].read_bytes()
        content = data[: len(data) // 2]
    p.write_bytes(content)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(p)
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")


def test_not_our_format(tmp_path):
    p = tmp_path / "sd.pt"
    torch.save({"conv.weight": torch.zeros(1)}, p)
    with pytest.raises(CheckpointError, match="not an evalsuite checkpoint"):
        load_checkpoint(p)


def test_plain_pickle_file_refused(tmp_path):
    p = tmp_path / "plain.pkl"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError):
        load_checkpoint(p)
