"""Normalization is never silent, and metadata and values are checked before any work starts.

Bad input: one error line, non-zero exit, inputs untouched (the shared harness). Then the positive side: a
model that normalizes itself scores what it should with --no-normalize, an in-memory module is not
normalized twice, the normalization used is recorded and printed, and accuracy near chance is flagged.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from evalsuite.battery import BatteryConfig, EvalOptions, evaluate
from evalsuite.core.errors import CheckpointError, UsageError
from evalsuite.core.results import EvalResult
from evalsuite.data import load_dataset
from evalsuite.models import create_model
from evalsuite.models.checkpoint import load_checkpoint
from evalsuite.models.foreign import load_any_model
from evalsuite.sparsity import density_report, prunable_layers
from tests.first_day.harness import CHECKPOINTS, Case, check_case, params, run_cli

DENSE = CHECKPOINTS / "digits-dense.pt"
REPO_DENSE = "{repo}/checkpoints/digits-dense.pt"
FAST = ("--checks", "clean", "--no-cache")

SELF_NORM_PY = '''
import torch
from torch import nn
from evalsuite.models.small import SmallCNN


class SelfNorm(nn.Module):
    """A digits net that normalizes its own input (buffers not named like evalsuite's)."""

    def __init__(self, mean: float = {mean!r}, std: float = {std!r}) -> None:
        super().__init__()
        self.register_buffer("mu", torch.tensor(mean))
        self.register_buffer("sigma", torch.tensor(std))
        self.body = SmallCNN(10, 1, 16)

    def forward(self, x):
        return self.body((x - self.mu) / self.sigma)


def make():
    return SelfNorm()
'''


# ------------------------------------------------------------------------------------------- fixtures


def _dense() -> tuple[torch.nn.Module, Any]:
    model, card, _ = load_checkpoint(DENSE)
    return model, card


def _state_dict(tmp: Path) -> list[Path]:
    """The embedded dense net's weights as a bare state_dict (no normalization inside)."""
    model, _ = _dense()
    torch.save(model.net.state_dict(), tmp / "sd.pt")
    return [tmp / "sd.pt"]


def _self_norm(tmp: Path) -> list[Path]:
    """A state_dict of a model that normalizes itself, and the file defining its architecture."""
    model, card = _dense()
    (tmp / "selfnorm.py").write_text(SELF_NORM_PY.format(mean=card.mean[0], std=card.std[0]))
    net = _import_self_norm(tmp)
    net.body.load_state_dict(model.net.state_dict())
    torch.save(net.state_dict(), tmp / "selfnorm.pt")
    return [tmp / "selfnorm.pt", tmp / "selfnorm.py"]


def _import_self_norm(tmp: Path) -> torch.nn.Module:
    from evalsuite.models.foreign import _import_callable

    return _import_callable(f"{tmp / 'selfnorm.py'}:make")()


def _torchscript(tmp: Path) -> list[Path]:
    """The whole evalsuite model (normalization inside) as TorchScript: nothing tells us it normalizes."""
    model, _ = _dense()
    with pytest.warns(FutureWarning):
        torch.jit.script(model).save(str(tmp / "ts.pt"))
    return [tmp / "ts.pt"]


def _digits_u8() -> tuple[np.ndarray, np.ndarray]:
    test = load_dataset("digits", "test")
    x = (test.x.numpy() * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
    return x, test.y.numpy()


def _npz8(tmp: Path) -> list[Path]:
    x, y = _digits_u8()
    np.savez(tmp / "d8.npz", x=x, y=y)
    return [tmp / "d8.npz"]


def _npz16(tmp: Path) -> list[Path]:
    x, y = _digits_u8()
    np.savez(tmp / "d16.npz", x=np.repeat(np.repeat(x, 2, 1), 2, 2), y=y)
    return [tmp / "d16.npz"]


def _npz8_five_classes(tmp: Path) -> list[Path]:
    x, y = _digits_u8()
    np.savez(tmp / "d5.npz", x=x[y < 5], y=y[y < 5])
    return [tmp / "d5.npz"]


def _rgb32(tmp: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    np.savez(tmp / "c32.npz", x=rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8), y=np.arange(20) % 10)
    return [tmp / "c32.npz"]


def _folder(tmp: Path) -> list[Path]:
    """An RGB image folder (2 classes) and a 2-class, 3-channel state_dict to evaluate on it."""
    from PIL import Image

    rng = np.random.default_rng(1)
    for cls in ("a", "b"):
        (tmp / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
                tmp / "imgs" / cls / f"{i}.png"
            )
    torch.save(create_model("smallcnn", 2, (0.5,) * 3, (0.25,) * 3, 3).net.state_dict(), tmp / "sd3.pt")
    return [tmp / "imgs", tmp / "sd3.pt"]


def _card_dataset(spec: str) -> Callable[[Path], list[Path]]:
    def setup(tmp: Path) -> list[Path]:
        obj = torch.load(DENSE, weights_only=True)
        obj["card"]["dataset"] = spec
        torch.save(obj, tmp / "meta.pt")
        return [tmp / "meta.pt"]

    return setup


def _bad_mask(tmp: Path) -> list[Path]:
    obj = torch.load(DENSE, weights_only=True)
    obj["masks"] = {"net.nothere.weight": torch.ones(3, 3, dtype=torch.bool)}
    torch.save(obj, tmp / "badmask.pt")
    return [tmp / "badmask.pt"]


def _result_json(tmp: Path) -> list[Path]:
    evaluate(DENSE, BatteryConfig(checks=("clean",), limit=20), EvalOptions(cache=False, out=tmp / "r.json"))
    return [tmp / "r.json", tmp / "r.npz"]


def _r20_option_a(tmp: Path) -> list[Path]:
    """A ResNet-20 with parameter-free (option A) shortcuts, as the akamaster checkpoints are."""
    net = create_model("resnet20", 10, (0.5,) * 3, (0.25,) * 3, 3, shortcut="A").net
    torch.save(net.state_dict(), tmp / "r20a.pt")
    return [tmp / "r20a.pt", *_rgb32(tmp)]


def _both(*setups: Callable[[Path], list[Path]]) -> Callable[[Path], list[Path]]:
    return lambda tmp: [p for s in setups for p in s(tmp)]


# ------------------------------------------------------------------------------------- the bad inputs

CHOICES = (
    "the model's input normalization is unknown: pass --mean/--std (the model's training statistics), "
    "--no-normalize (it takes [0,1] images itself) or --norm-stats DATASET"
)

CASES = [
    # normalization: a foreign model on data without standard statistics needs a stated choice
    Case(
        "norm-unknown-state-dict-on-npz",
        ["eval", "{tmp}/sd.pt", "--arch", "smallcnn", "--data", "npz:{tmp}/d8.npz", *FAST],
        CHOICES,
        _both(_state_dict, _npz8),
        code=2,
    ),
    Case(
        "norm-unknown-torchscript-on-npz",
        ["eval", "{tmp}/ts.pt", "--trust-checkpoint", "--data", "npz:{tmp}/d8.npz", *FAST],
        CHOICES,
        _both(_torchscript, _npz8),
        code=2,
    ),
    Case(
        "norm-unknown-state-dict-on-folder",
        ["eval", "{tmp}/sd3.pt", "--arch", "smallcnn", "--data", "folder:{tmp}/imgs", *FAST],
        CHOICES,
        _folder,
        code=2,
    ),
    Case(
        "norm-two-choices",
        [
            "eval",
            "{tmp}/sd.pt",
            "--arch",
            "smallcnn",
            "--data",
            "digits",
            "--mean",
            "0.3",
            "--std",
            "0.4",
            "--no-normalize",
            *FAST,
        ],
        "choose one way to normalize, got --mean/--std and --no-normalize",
        _state_dict,
        code=2,
    ),
    Case(
        "norm-stats-and-no-normalize",
        [
            "eval",
            "{tmp}/sd.pt",
            "--arch",
            "smallcnn",
            "--data",
            "digits",
            "--norm-stats",
            "digits",
            "--no-normalize",
            *FAST,
        ],
        "--no-normalize and --norm-stats",
        _state_dict,
        code=2,
    ),
    Case(
        "norm-stats-unknown-name",
        ["eval", "{tmp}/sd.pt", "--arch", "smallcnn", "--data", "digits", "--norm-stats", "mnist", *FAST],
        "--norm-stats takes one of cifar10, cifar100, digits, svhn",
        _state_dict,
        code=2,
    ),
    Case(
        "norm-stats-wrong-channels",
        ["eval", "{tmp}/sd.pt", "--arch", "smallcnn", "--data", "digits", "--norm-stats", "cifar10", *FAST],
        "--norm-stats cifar10 has 3 channel(s) but the images of digits have 1",
        _state_dict,
        code=2,
    ),
    Case(
        "mean-without-std",
        ["eval", "{tmp}/sd.pt", "--arch", "smallcnn", "--data", "digits", "--mean", "0.3", *FAST],
        "--mean and --std go together",
        _state_dict,
        code=2,
    ),
    Case(
        "mean-wrong-channels",
        [
            "eval",
            "{tmp}/sd.pt",
            "--arch",
            "smallcnn",
            "--data",
            "digits",
            "--mean",
            "0.5,0.5,0.5",
            "--std",
            "0.2,0.2,0.2",
            *FAST,
        ],
        "--mean/--std has 3 channel(s) but the images of digits have 1",
        _state_dict,
        code=2,
    ),
    Case(
        "std-zero",
        [
            "eval",
            "{tmp}/sd.pt",
            "--arch",
            "smallcnn",
            "--data",
            "digits",
            "--mean",
            "0.3",
            "--std",
            "0",
            *FAST,
        ],
        "--std must be positive",
        _state_dict,
        code=2,
    ),
    # input size and channels against the data, before any prediction
    Case(
        "input-size-8x8-model-on-16x16",
        ["eval", REPO_DENSE, "--data", "npz:{tmp}/d16.npz", *FAST],
        "model takes 1x8x8 images but npz:",
        _npz16,
        code=2,
        inputs=(REPO_DENSE,),
    ),
    Case(
        "input-channels-grey-model-on-rgb",
        ["eval", REPO_DENSE, "--data", "npz:{tmp}/c32.npz", *FAST],
        "model takes 1x8x8 images but",
        _rgb32,
        code=2,
        inputs=(REPO_DENSE,),
    ),
    Case(
        "input-channels-torchscript-on-rgb",
        ["eval", "{tmp}/ts.pt", "--trust-checkpoint", "--no-normalize", "--data", "npz:{tmp}/c32.npz", *FAST],
        "model fails on npz:",
        _both(_torchscript, _rgb32),
        code=2,
    ),
    Case(
        "classes-10-output-model-on-5-class-data",
        ["eval", "{tmp}/ts.pt", "--trust-checkpoint", "--no-normalize", "--data", "npz:{tmp}/d5.npz", *FAST],
        "model outputs 10 classes, npz:",
        _both(_torchscript, _npz8_five_classes),
        code=2,
    ),
    # checkpoint metadata names registered datasets only, never paths
    Case(
        "metadata-dataset-folder-usr",
        ["eval", "{tmp}/meta.pt", *FAST],
        "the checkpoint names dataset 'folder:/usr', not a registered name",
        _card_dataset("folder:/usr"),
        code=2,
    ),
    Case(
        "metadata-dataset-npz-path",
        ["eval", "{tmp}/meta.pt", *FAST],
        "not a registered name (cifar10, cifar100, digits, gaussian, photos, svhn, uniform)",
        _card_dataset("npz:/etc/passwd"),
        code=2,
    ),
    Case(
        "metadata-dataset-bare-path",
        ["eval", "{tmp}/meta.pt", *FAST],
        "pass --data to choose the test set",
        _card_dataset("/usr"),
        code=2,
    ),
    # eps
    Case(
        "eps-8-means-8-255",
        ["eval", REPO_DENSE, "--eps", "8", "--no-cache"],
        "L-inf eps 8 is above 1 (images are in [0, 1]); did you mean 8/255?",
        code=2,
        inputs=(REPO_DENSE,),
    ),
    Case(
        "eps-fraction-above-1",
        ["eval", REPO_DENSE, "--eps", "1/255,300/255", "--no-cache"],
        "above 1",
        code=2,
        inputs=(REPO_DENSE,),
    ),
    Case("eps-negative", ["eval", REPO_DENSE, "--eps=-1/255"], ">= 0", code=2, inputs=(REPO_DENSE,)),
    Case("eps-garbage", ["eval", REPO_DENSE, "--eps", "eight"], "bad eps", code=2, inputs=(REPO_DENSE,)),
    # empty or unknown selections
    Case(
        "checks-empty",
        ["eval", REPO_DENSE, "--checks", ""],
        "no checks selected",
        code=2,
        inputs=(REPO_DENSE,),
    ),
    Case("checks-commas", ["eval", REPO_DENSE, "--checks", ",,"], "no checks selected", code=2),
    Case("checks-unknown", ["eval", REPO_DENSE, "--checks", "clean,vibes"], "unknown check(s) vibes", code=2),
    Case(
        "attacks-empty-with-robust",
        ["eval", REPO_DENSE, "--checks", "robust", "--attacks", ""],
        "the robust check needs attacks (one or more of autoattack, autoattack_l2, fgsm, pgd_l2, pgd_linf)",
        code=2,
    ),
    Case(
        "eps-empty-with-robust",
        ["eval", REPO_DENSE, "--checks", "robust", "--attacks", "fgsm", "--eps", ""],
        "no eps for its attacks",
        code=2,
    ),
    Case(
        "ood-scores-empty-with-ood",
        ["eval", REPO_DENSE, "--checks", "ood", "--ood-scores", ""],
        "the ood check needs scores",
        code=2,
    ),
    # numbers out of range
    Case(
        "batch-size-negative",
        ["eval", REPO_DENSE, *FAST, "--batch-size", "-3"],
        "--batch-size must be a positive",
    ),
    Case(
        "batch-size-zero", ["eval", REPO_DENSE, *FAST, "--batch-size", "0"], "--batch-size must be a positive"
    ),
    Case(
        "bins-zero", ["eval", REPO_DENSE, "--bins", "0"], "ECE bins must be between 1 and 1000, got 0", code=2
    ),
    Case("bins-absurd", ["eval", REPO_DENSE, "--bins", "1000000"], "between 1 and 1000", code=2),
    # masks for layers that do not exist
    Case(
        "mask-unknown-layer",
        ["eval", "{tmp}/badmask.pt", *FAST],
        "masks for 1 unknown layer(s)",
        _bad_mask,
        code=1,
    ),
    # a result file given to eval
    Case(
        "eval-a-result-file",
        ["eval", "{tmp}/r.json", *FAST],
        "is a result file, not a model; to compare results: evalsuite compare",
        _result_json,
        code=2,
    ),
    # a ResNet-20 state_dict with option-A shortcuts loaded into the default option B
    Case(
        "shortcut-a-hint",
        [
            "eval",
            "{tmp}/r20a.pt",
            "--arch",
            "resnet20",
            "--data",
            "npz:{tmp}/c32.npz",
            "--no-normalize",
            *FAST,
        ],
        """try --arch-kwargs '{"shortcut": "A"}'""",
        _r20_option_a,
        code=1,
    ),
]


# the committed checkpoint is an input of every case that names it
CASES = [
    c if c.inputs or REPO_DENSE not in c.argv else dataclasses.replace(c, inputs=(REPO_DENSE,)) for c in CASES
]


@params(CASES)
def test_bad_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    check_case(case, tmp_path, capsys)


def test_error_names_the_16x16_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _npz16(tmp_path)
    line = check_case(
        Case("size", ["eval", str(DENSE), "--data", f"npz:{tmp_path}/d16.npz", *FAST], "1x16x16"),
        tmp_path,
        capsys,
    )
    assert f"npz:{tmp_path}/d16.npz" in line and "1x8x8" in line


def test_metadata_path_is_never_read(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    """The metadata's folder is refused before any dataset loader runs."""
    import evalsuite.battery.run as run

    calls: list[str] = []
    real = run.load_dataset
    monkeypatch.setattr(run, "load_dataset", lambda spec, *a, **k: calls.append(spec) or real(spec, *a, **k))
    check_case(
        Case("usr", ["eval", "{tmp}/meta.pt", *FAST], "not a registered", _card_dataset("folder:/usr")),
        tmp_path,
        capsys,
    )
    assert calls == []


PY_CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("eps-8", lambda: BatteryConfig(eps_linf=(8,)), UsageError, "did you mean 8/255?"),
    ("eps-string-8", lambda: BatteryConfig(eps_linf="8"), UsageError, "did you mean 8/255?"),
    ("checks-empty", lambda: BatteryConfig(checks=()), UsageError, "no checks selected"),
    ("checks-empty-string", lambda: BatteryConfig(checks=""), UsageError, "no checks selected"),
    ("bins-float", lambda: BatteryConfig(n_bins=2.5), UsageError, "integer"),
    ("bins-huge", lambda: BatteryConfig(n_bins=10**6), UsageError, "between 1 and 1000"),
    (
        "batch-size",
        lambda: evaluate(DENSE, BatteryConfig(checks=("clean",)), EvalOptions(cache=False, batch_size=-3)),
        UsageError,
        "--batch-size",
    ),
    (
        "norm-stats-unknown",
        lambda: evaluate(
            DENSE, BatteryConfig(checks=("clean",)), EvalOptions(cache=False, norm_stats="imagenet")
        ),
        UsageError,
        "--norm-stats takes one of",
    ),
    (
        "mask-unknown-layer-audit",
        lambda: density_report(
            _dense()[0],
            prunable_layers(_dense()[0], torch.zeros(1, 1, 8, 8)),
            {"net.ghost.weight": torch.ones(2)},
        ),
        UsageError,
        "unknown layer",
    ),
    (
        "in-memory-normalize-true-without-statistics",
        lambda: evaluate(
            _dense()[0].net,
            BatteryConfig(checks=("clean",)),
            EvalOptions(cache=False, normalize=True),
            data="gaussian:20",
        ),
        UsageError,
        "no standard statistics",
    ),
]


@pytest.mark.parametrize(("make", "error", "expect"), [c[1:] for c in PY_CASES], ids=[c[0] for c in PY_CASES])
def test_bad_python_values(make: Callable[[], Any], error: type[Exception], expect: str) -> None:
    with pytest.raises(error, match=None) as info:
        make()
    assert expect in str(info.value) and "\n" not in str(info.value)


def test_foreign_mask_checked_on_load(tmp_path: Path) -> None:
    _bad_mask(tmp_path)
    with pytest.raises(CheckpointError, match="unknown layer"):
        load_any_model(tmp_path / "badmask.pt")


# ------------------------------------------------------------------------------------- what works now


def _clean(result: EvalResult) -> float:
    return float(result.metrics["accuracy"])


@pytest.fixture(scope="module")
def reference() -> float:
    """Clean accuracy of the embedded dense checkpoint, which carries its own normalization."""
    return _clean(evaluate(DENSE, BatteryConfig(checks=("clean",)), EvalOptions(cache=False)))


def _eval_cli(argv: list[str], tmp: Path, capsys: pytest.CaptureFixture[str]) -> tuple[EvalResult, str, str]:
    code, out, err = run_cli([*argv, *FAST, "--out", str(tmp / "out.json")], capsys)
    assert code == 0, err
    return EvalResult.load(tmp / "out.json"), out, err


def test_no_normalize_on_a_self_normalizing_state_dict(tmp_path, capsys, reference) -> None:
    _self_norm(tmp_path)
    argv = [
        "eval",
        str(tmp_path / "selfnorm.pt"),
        "--arch",
        f"{tmp_path}/selfnorm.py:make",
        "--data",
        "digits",
    ]
    result, out, _ = _eval_cli([*argv, "--no-normalize"], tmp_path, capsys)
    assert _clean(result) == pytest.approx(reference, abs=1e-12)
    assert result.model["normalization"] == {"mean": None, "std": None, "source": "none (model takes [0,1])"}
    assert "normalization: none (model takes [0,1])" in out
    assert not result.sanity.get("warnings")
    # without the flag the named dataset's statistics are applied a second time, and the output says so
    twice, out, _ = _eval_cli(argv, tmp_path, capsys)
    assert twice.model["normalization"]["source"] == "dataset:digits standard statistics"
    assert "normalization: dataset:digits standard statistics (mean 0.3052; std 0.376)" in out
    assert _clean(twice) < reference - 0.2


def test_no_normalize_on_torchscript(tmp_path, capsys, reference) -> None:
    _torchscript(tmp_path)
    base = ["eval", str(tmp_path / "ts.pt"), "--trust-checkpoint", "--data", "digits"]
    result, _, _ = _eval_cli([*base, "--no-normalize"], tmp_path, capsys)
    assert _clean(result) == pytest.approx(reference, abs=1e-12)
    assert result.model["normalization"]["source"] == "none (model takes [0,1])"
    applied, out, _ = _eval_cli(base, tmp_path, capsys)
    assert applied.model["normalization"]["source"] == "dataset:digits standard statistics"
    assert "normalization: dataset:digits" in out


def test_foreign_state_dict_gets_named_dataset_statistics(tmp_path, capsys, reference) -> None:
    _state_dict(tmp_path)
    _, card = _dense()
    result, _, _ = _eval_cli(
        ["eval", str(tmp_path / "sd.pt"), "--arch", "smallcnn", "--data", "digits"], tmp_path, capsys
    )
    assert _clean(result) == pytest.approx(reference, abs=1e-12)
    assert result.model["normalization"] == {
        "mean": list(card.mean),
        "std": list(card.std),
        "source": "dataset:digits standard statistics",
    }


def test_norm_stats_and_mean_std_on_npz(tmp_path, capsys) -> None:
    _state_dict(tmp_path)
    _npz8(tmp_path)
    base = ["eval", str(tmp_path / "sd.pt"), "--arch", "smallcnn", "--data", f"npz:{tmp_path}/d8.npz"]
    named, _, _ = _eval_cli([*base, "--norm-stats", "digits"], tmp_path, capsys)
    given, _, _ = _eval_cli([*base, "--mean", "0.3052", "--std", "0.376"], tmp_path, capsys)
    assert named.model["normalization"]["source"] == "dataset:digits standard statistics"
    assert given.model["normalization"] == {"mean": [0.3052], "std": [0.376], "source": "--mean/--std"}
    assert _clean(named) > 0.9 and _clean(given) > 0.9


def test_evalsuite_checkpoint_on_npz_needs_no_choice(tmp_path, capsys, caplog) -> None:
    _npz8(tmp_path)
    _, card = _dense()
    result, _out, _err = _eval_cli(["eval", str(DENSE), "--data", f"npz:{tmp_path}/d8.npz"], tmp_path, capsys)
    assert result.model["normalization"] == {
        "mean": list(card.mean),
        "std": list(card.std),
        "source": "checkpoint",
    }
    assert _clean(result) > 0.9
    # an explicit request the checkpoint overrides is reported, never silently dropped
    with caplog.at_level("WARNING"):
        result, _, _ = _eval_cli(["eval", str(DENSE), "--no-normalize"], tmp_path, capsys)
    assert result.model["normalization"]["source"] == "checkpoint"
    assert "ignored --no-normalize" in " ".join(result.model["notes"])
    assert any("ignored --no-normalize" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


def test_in_memory_module_is_not_normalized_twice(tmp_path, reference) -> None:
    _self_norm(tmp_path)
    net = _import_self_norm(tmp_path)
    net.body.load_state_dict(_dense()[0].net.state_dict())
    cfg = BatteryConfig(checks=("clean",))
    result = evaluate(net, cfg, EvalOptions(cache=False), data="digits")
    assert _clean(result) == pytest.approx(reference, abs=1e-12)
    assert result.model["normalization"]["source"] == "none (model takes [0,1])"
    # a zoo model carries its own; a bare net normalizes only when the caller says so
    wrapped = evaluate(_dense()[0], cfg, EvalOptions(cache=False), data="digits")
    assert wrapped.model["normalization"]["source"] == "checkpoint" and _clean(wrapped) == reference
    bare = evaluate(_dense()[0].net, cfg, EvalOptions(cache=False, normalize=True), data="digits")
    assert bare.model["normalization"]["source"] == "dataset:digits standard statistics"
    assert _clean(bare) == pytest.approx(reference, abs=1e-12)


def test_near_chance_accuracy_warns(tmp_path, capsys, caplog) -> None:
    _state_dict(tmp_path)
    argv = [
        "eval",
        str(tmp_path / "sd.pt"),
        "--arch",
        "smallcnn",
        "--data",
        "digits",
        "--mean",
        "0",
        "--std",
        "100",
    ]
    with caplog.at_level("WARNING"):
        result, out, _ = _eval_cli(argv, tmp_path, capsys)
    [warning] = result.sanity["warnings"]
    assert (
        "of chance" in warning and "normalization" in warning and "--mean/--std (mean 0; std 100)" in warning
    )
    assert f"WARNING: {warning}" in out
    assert any(warning in r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["sanity"]["warnings"] == [warning]


def test_good_accuracy_does_not_warn(tmp_path) -> None:
    result = evaluate(DENSE, BatteryConfig(checks=("clean",)), EvalOptions(cache=False))
    assert "warnings" not in result.sanity


def test_chance_threshold() -> None:
    from evalsuite.battery.run import chance_warning

    ten = np.repeat(np.arange(10), 10)
    norm = {"mean": None, "std": None, "source": "none (model takes [0,1])"}
    assert chance_warning(0.19, ten, norm) is not None  # within 10 points of 0.1
    assert chance_warning(0.20, ten, norm) is None
    hundred = np.repeat(np.arange(100), 2)
    assert chance_warning(0.059, hundred, norm) is not None  # within 5 points of 0.01
    assert chance_warning(0.06, hundred, norm) is None
    skewed = np.array([0] * 90 + [1] * 10)  # always predicting class 0 scores 0.9
    assert chance_warning(0.95, skewed, norm) is not None and chance_warning(1.0, skewed, norm) is None


def test_python_accepts_the_command_line_strings() -> None:
    from evalsuite.attacks import parse_eps
    from evalsuite.cli import _battery_config, build_parser

    args = build_parser().parse_args(["eval", "m.pt", "--eps", "1/255,8/255", "--checks", "clean,robust"])
    cli = _battery_config(args)
    py = BatteryConfig(checks="clean,robust", eps_linf="1/255,8/255")
    assert py == cli and py.eps_linf == (1 / 255, 8 / 255)
    assert BatteryConfig(eps_linf=("8/255", 0.5)).eps_linf == (8 / 255, 0.5)
    assert BatteryConfig(eps_l2=("1.5",)).eps_l2 == (1.5,)  # an L2 radius may exceed 1
    assert parse_eps("2", "l2") == 2.0


def test_help_lists_the_valid_values(capsys) -> None:
    from evalsuite.attacks import ATTACKS
    from evalsuite.battery.config import CHECKS
    from evalsuite.data import stats_names
    from evalsuite.ood import OOD_SCORES

    code, out, _ = run_cli(["eval", "--help"], capsys)
    assert code == 0
    text = " ".join(out.split())
    assert "one or more of: " + ", ".join(CHECKS) in text
    assert "--attacks ATTACKS comma-separated, from: " + ", ".join(ATTACKS.names()) in text
    assert "from: " + ", ".join(OOD_SCORES.names()) in text
    assert "standard statistics: " + ", ".join(stats_names()) in text
