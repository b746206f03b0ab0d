"""load_any_model: each layout round-trips logits exactly; bad, unsafe or mismatched files fail cleanly."""

from __future__ import annotations

import io
import os
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

from evalsuite.core.errors import CheckpointError, UsageError
from evalsuite.core.io import sha256_file
from evalsuite.models import NormalizedModel, create_model
from evalsuite.models.checkpoint import ModelCard, save_checkpoint
from evalsuite.models.foreign import load_any_model

MEAN, STD = (0.5,), (0.25,)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


@pytest.fixture
def cnn() -> NormalizedModel:
    torch.manual_seed(0)
    model = create_model("smallcnn", 10, MEAN, STD, width=4)
    # non-trivial BN statistics so a dropped buffer would change the logits
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return model.eval()


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _load(path, **kw):
    kw.setdefault("mean", MEAN)
    kw.setdefault("std", STD)
    return load_any_model(path, **kw)


def _same(a: nn.Module, b: nn.Module, x: torch.Tensor) -> bool:
    with torch.no_grad():
        return torch.equal(a(x), b(x))


LAYOUTS = {
    "bare": lambda sd: sd,
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 3},
    "model": lambda sd: {"model": sd, "best_acc": 0.9},
    "net": lambda sd: {"net": sd},
    "twice": lambda sd: {"model": {"state_dict": sd}, "opt": {"lr": 0.1}},
    "module.": lambda sd: {"state_dict": {"module." + k: v for k, v in sd.items()}},
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_state_dict_layouts(tmp_path, cnn, x, layout):
    p = tmp_path / "w.pt"
    torch.save(LAYOUTS[layout](cnn.net.state_dict()), p)
    got = _load(p, arch="smallcnn", arch_kwargs={"width": 4})
    assert got.source_format == "state_dict"
    assert _same(cnn, got.model, x)
    assert not got.model.training
    assert got.masks == {}
    assert got.sha256 == sha256_file(p)
    assert got.card.num_classes == 10 and got.card.dataset == "unknown"
    assert got.card.mean == MEAN and got.card.std == STD
    if layout == "module.":
        assert "stripped 'module.' prefix" in got.notes
    assert "\n" not in " ".join(got.notes)


def test_wrapper_state_dict_and_normalize_false(tmp_path, cnn, x):
    p = tmp_path / "w.pt"
    torch.save(cnn.state_dict(), p)  # NormalizedModel keys: normalize.mean/std, net.*
    got = load_any_model(p, arch="smallcnn", arch_kwargs={"width": 4})
    assert _same(cnn, got.model, x) and got.card.mean == MEAN

    torch.save(cnn.net.state_dict(), p)
    bare = load_any_model(p, arch="smallcnn", arch_kwargs={"width": 4}, normalize=False)
    assert not isinstance(bare.model, NormalizedModel)
    assert _same(cnn.net, bare.model, x)


def test_prune_orig_and_mask_folded(tmp_path, cnn, x):
    torch.manual_seed(5)
    for m in (cnn.net.conv1, cnn.net.conv2, cnn.net.fc):
        prune.random_unstructured(m, "weight", amount=0.5)
    p = tmp_path / "pruned.pt"
    torch.save({"state_dict": cnn.net.state_dict()}, p)
    assert "conv1.weight_orig" in torch.load(p, weights_only=True)["state_dict"]
    got = _load(p, arch="smallcnn", arch_kwargs={"width": 4})
    assert _same(cnn, got.model, x)
    assert "folded 3 torch.nn.utils.prune masks" in got.notes
    assert sorted(got.masks) == ["net.conv1.weight", "net.conv2.weight", "net.fc.weight"]
    params = dict(got.model.named_parameters())
    for name in ("conv1", "conv2", "fc"):
        mod = getattr(cnn.net, name)
        assert torch.equal(got.masks[f"net.{name}.weight"], mod.weight_mask.bool())
        assert torch.equal(params[f"net.{name}.weight"], mod.weight)
    prunable = [cnn.net.conv1, cnn.net.conv2, cnn.net.conv3, cnn.net.fc]  # conv3 left dense
    kept = sum(int((m.weight != 0).sum()) for m in prunable)
    assert got.card.sparsity["realized_density"] == kept / sum(m.weight.numel() for m in prunable)


def test_zeros_read_as_mask(tmp_path, cnn, x):
    with torch.no_grad():
        cnn.net.conv2.weight[cnn.net.conv2.weight.abs() < 0.1] = 0
    p = tmp_path / "z.pt"
    torch.save(cnn.net.state_dict(), p)
    got = _load(p, arch="smallcnn", arch_kwargs={"width": 4})
    assert _same(cnn, got.model, x)
    assert list(got.masks) == ["net.conv2.weight"]  # only layers holding zeros
    assert torch.equal(got.masks["net.conv2.weight"], cnn.net.conv2.weight != 0)
    assert any("exact zeros" in n for n in got.notes)


def test_num_classes_inferred_and_required(tmp_path):
    torch.manual_seed(0)
    model = create_model("test_mlp", 7, MEAN, STD).eval()
    p = tmp_path / "mlp.pt"
    torch.save(model.net.state_dict(), p)
    got = _load(p, arch="test_mlp")
    assert got.card.num_classes == 7
    assert _same(model, got.model, torch.rand(2, 1, 8, 8))


def test_arch_mismatch(tmp_path, cnn):
    p = tmp_path / "w.pt"
    torch.save(cnn.net.state_dict(), p)
    with pytest.raises(CheckpointError, match="do not fit") as e:
        _load(p, arch="smallcnn", arch_kwargs={"width": 8})
    assert "\n" not in str(e.value)
    with pytest.raises(CheckpointError, match="missing") as e:
        _load(p, arch="test_mlp", num_classes=10)
    assert "\n" not in str(e.value)
    with pytest.raises(UsageError, match="arch"):
        _load(p)


USER_ARCH = """
from torch import nn

class Net(nn.Module):
    def __init__(self, hidden=16):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 3)

    def forward(self, x):
        return self.head(self.body(x))

def build(hidden=16):
    return Net(hidden)
"""


def test_user_file_arch(tmp_path, x):
    (tmp_path / "mynet.py").write_text(USER_ARCH)
    sys.path.insert(0, str(tmp_path))
    try:
        from mynet import Net  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("mynet", None)
    torch.manual_seed(0)
    net = Net(hidden=8).eval()
    p = tmp_path / "w.pt"
    torch.save({"model": net.state_dict()}, p)
    got = _load(p, arch=f"{tmp_path / 'mynet.py'}:build", arch_kwargs={"hidden": 8})
    assert _same(NormalizedModel(net, MEAN, STD), got.model, x)
    assert got.card.num_classes == 3

    with pytest.raises(UsageError, match="available: Net, build"):
        _load(p, arch=f"{tmp_path / 'mynet.py'}:nope")
    (tmp_path / "broken.py").write_text("import no_such_module_xyz\n")
    with pytest.raises(UsageError, match="importing") as e:
        _load(p, arch=f"{tmp_path / 'broken.py'}:build")
    assert "\n" not in str(e.value)


def test_package_module_arch(tmp_path, monkeypatch, x):
    pkg = tmp_path / "userpkg_foreign"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "nets.py").write_text(USER_ARCH)
    monkeypatch.syspath_prepend(str(tmp_path))
    from userpkg_foreign.nets import build  # type: ignore[import-not-found]

    torch.manual_seed(0)
    net = build().eval()
    p = tmp_path / "w.pt"
    torch.save({"net": {"module." + k: v for k, v in net.state_dict().items()}}, p)
    got = _load(p, arch="userpkg_foreign.nets:build")
    assert _same(NormalizedModel(net, MEAN, STD), got.model, x)
    with pytest.raises(UsageError, match="importing"):
        _load(p, arch="userpkg_foreign.missing:build")


@pytest.mark.parametrize("how", ["script", "trace"])
def test_torchscript(tmp_path, cnn, x, how):
    with torch.no_grad():
        cnn.net.fc.weight[:, :3] = 0
    scripted = torch.jit.script(cnn.net) if how == "script" else torch.jit.trace(cnn.net, x)
    p = tmp_path / "ts.pt"
    torch.jit.save(scripted, p)
    with pytest.raises(CheckpointError, match=r"TorchScript archives can run code.*--trust-checkpoint"):
        _load(p)
    got = _load(p, trust=True)
    assert got.source_format == "torchscript"
    assert _same(cnn, got.model, x)
    assert list(got.masks) == ["net.fc.weight"]
    assert got.card.arch == "torchscript:SmallCNN" and got.card.num_classes == 10
    assert set(got.masks) <= {n for n, _ in got.model.named_parameters()}


def test_torch_export(tmp_path, cnn, x):
    with torch.no_grad():
        cnn.net.conv1.weight[0] = 0
    ep = torch.export.export(cnn.net, (x,))
    p = tmp_path / "m.pt2"
    torch.export.save(ep, p)
    with pytest.raises(CheckpointError, match=r"torch\.export archives can run code.*--trust-checkpoint"):
        _load(p)
    got = _load(p, trust=True)
    assert got.source_format == "export"
    assert _same(cnn, got.model, x)
    assert list(got.masks) == ["net.conv1.weight"]
    assert set(got.masks) <= {n for n, _ in got.model.named_parameters()}
    got.model.eval()  # exported modules refuse .eval() unless we let the flag through

    # content, not the extension, decides the format
    q = tmp_path / "m.bin"
    q.write_bytes(p.read_bytes())
    assert _load(q, mean=None, std=None, normalize=False, trust=True).source_format == "export"


class Evil:
    def __reduce__(self):
        return (os.system, (f"touch {Evil.marker}",))


def test_malicious_pickle_refused_and_not_run(tmp_path):
    Evil.marker = str(tmp_path / "pwned")
    p = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "x": Evil()}, p)
    with pytest.raises(CheckpointError, match="--trust-checkpoint") as e:
        load_any_model(p, arch="smallcnn", mean=MEAN, std=STD)
    assert "\n" not in str(e.value)
    assert not os.path.exists(Evil.marker)


def test_export_with_pickled_payload_refused(tmp_path, cnn, x):
    import zipfile

    Evil.marker = str(tmp_path / "pwned")
    good = tmp_path / "good.pt2"
    torch.export.save(torch.export.export(cnn.net, (x,)), good)
    evil = tmp_path / "evil.pt2"
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith("sample_inputs/model.pt"):
                buf = io.BytesIO()
                torch.save(((Evil(),), {}), buf)  # torch.export would fall back to full unpickling
                data = buf.getvalue()
            dst.writestr(item, data)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        _load(evil)
    assert not os.path.exists(Evil.marker)


def test_full_module_needs_trust(tmp_path, cnn, x):
    p = tmp_path / "full.pt"
    torch.save(cnn.net, p)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        _load(p)
    got = _load(p, trust=True)
    assert got.source_format == "module"
    assert _same(cnn, got.model, x)


def test_in_memory_module(cnn, x):
    got = load_any_model(cnn)
    assert got.model is cnn and got.sha256 is None and got.card.mean == MEAN


def test_evalsuite_checkpoint(tmp_path, cnn, x):
    card = ModelCard("smallcnn", 10, (1, 8, 8), MEAN, STD, "digits", arch_kwargs={"width": 4})
    masks = {"net.fc.weight": torch.rand(10, 16) > 0.5}
    p = save_checkpoint(tmp_path / "ours.pt", cnn, card, masks)
    got = load_any_model(p)
    assert got.source_format == "evalsuite" and got.card.dataset == "digits"
    assert _same(cnn, got.model, x)
    assert torch.equal(got.masks["net.fc.weight"], masks["net.fc.weight"])


@pytest.mark.parametrize("content", ["empty", "garbage", "truncated", "truncated_ts", "truncated_pt2"])
def test_corrupt_files(tmp_path, cnn, x, content):
    src = tmp_path / "src"
    if content == "truncated_ts":
        torch.jit.save(torch.jit.script(cnn.net), src)
    elif content == "truncated_pt2":
        torch.export.save(torch.export.export(cnn.net, (x,)), src)
    else:
        torch.save(cnn.net.state_dict(), src)
    data = {"empty": b"", "garbage": b"not a checkpoint at all"}.get(content, src.read_bytes())
    if content.startswith("truncated"):
        data = data[: len(data) // 2]
    p = tmp_path / "bad.pt"
    p.write_bytes(data)
    with pytest.raises(CheckpointError) as e:
        _load(p, arch="smallcnn", arch_kwargs={"width": 4})
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_any_model(tmp_path / "nope.pt")


AKAMASTER = "models/akamaster_resnet_cifar10/resnet20-12fca82f.th"


@pytest.mark.shared_data
def test_akamaster_resnet20_accuracy(shared_dir):
    got = load_any_model(
        shared_dir / AKAMASTER,
        arch="resnet20",
        arch_kwargs={"shortcut": "A"},
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
    )
    assert got.source_format == "state_dict" and got.card.num_classes == 10
    assert "stripped 'module.' prefix" in got.notes
    assert got.card.provenance["checkpoint_extras"]["best_prec1"] > 90
    data = np.load(shared_dir / "data/cifar10/test.npz")
    # the file is sorted by class: a seeded random subset, never a prefix
    idx = np.random.default_rng(0).choice(len(data["y"]), size=500, replace=False)
    xs = torch.from_numpy(data["x"][idx]).permute(0, 3, 1, 2).float() / 255
    ys = torch.from_numpy(data["y"][idx])
    with torch.no_grad():
        acc = (got.model(xs).argmax(1) == ys).float().mean().item()
    assert acc > 0.75, acc


def test_normalization_is_recorded_and_never_guessed(tmp_path, cnn, x):
    p = tmp_path / "w.pt"
    torch.save(cnn.net.state_dict(), p)
    kw = {"arch": "smallcnn", "arch_kwargs": {"width": 4}}
    with pytest.raises(UsageError, match=r"--mean/--std .*--no-normalize .*--norm-stats DATASET"):
        load_any_model(p, **kw)
    given = load_any_model(p, mean=MEAN, std=STD, **kw)
    assert given.normalization == {"mean": [0.5], "std": [0.25], "source": "--mean/--std"}
    fallback = load_any_model(p, fallback=(MEAN, STD, "dataset:x standard statistics"), **kw)
    assert fallback.normalization["source"] == "dataset:x standard statistics" and _same(
        cnn, fallback.model, x
    )
    bare = load_any_model(p, normalize=False, fallback=((0.1,), (0.2,), "unused"), **kw)
    assert bare.normalization == {"mean": None, "std": None, "source": "none (model takes [0,1])"}
    assert bare.card.to_dict()["normalization"] == {"mean": None, "std": None}  # used to crash here
    with pytest.raises(UsageError, match="not both"):
        load_any_model(p, mean=MEAN, std=STD, normalize=False, **kw)
    # carried normalization wins, and an explicit different request is noted
    torch.save(cnn.state_dict(), p)
    own = load_any_model(p, mean=(0.1,), std=(0.2,), **kw)
    assert own.normalization["source"] == "checkpoint" and own.normalization["mean"] == [0.5]
    assert any("ignored --mean/--std" in n for n in own.notes)


def test_in_memory_module_takes_unit_range_images(cnn, x):
    got = load_any_model(cnn.net, fallback=(MEAN, STD, "dataset:x standard statistics"))
    assert got.model is cnn.net and got.normalization["source"] == "none (model takes [0,1])"
    assert load_any_model(cnn).normalization["source"] == "checkpoint"
    wrapped = load_any_model(cnn.net, mean=MEAN, std=STD)
    assert _same(cnn, wrapped.model, x) and wrapped.normalization["source"] == "--mean/--std"


def test_shortcut_mismatch_suggests_the_other_option(tmp_path):
    a = create_model("resnet20", 10, (0.5,) * 3, (0.25,) * 3, 3, shortcut="A").net
    torch.save(a.state_dict(), tmp_path / "a.pt")
    with pytest.raises(CheckpointError, match="""try --arch-kwargs '\\{"shortcut": "A"\\}'"""):
        load_any_model(tmp_path / "a.pt", arch="resnet20", normalize=False)
    b = create_model("resnet20", 10, (0.5,) * 3, (0.25,) * 3, 3, shortcut="B").net
    torch.save(b.state_dict(), tmp_path / "b.pt")
    with pytest.raises(CheckpointError, match='"shortcut": "B"'):
        load_any_model(tmp_path / "b.pt", arch="resnet20", arch_kwargs={"shortcut": "A"}, normalize=False)
