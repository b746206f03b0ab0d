"""The CLI end to end: init, train, ls; bad input gives one line and exit 2 (usage) or 1 (runtime)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from evalsuite.cli import main
from evalsuite.models.checkpoint import load_checkpoint


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_ls_lists_every_kind(capsys):
    code, out, _ = run(capsys, "ls")
    assert code == 0
    for name in ("resnet20", "vgg16", "wrn28", "erk", "uniform+", "cifar10", "digits"):
        assert name in out


def test_init_sparse_and_dense_twin(tmp_path, capsys):
    code, out, _ = run(
        capsys,
        "init",
        "--dataset",
        "digits",
        "--sparse-init",
        "erk",
        "--density",
        "0.1",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "s.pt"),
    )
    assert code == 0 and "erk density 0.1" in out
    code, _, _ = run(
        capsys,
        "init",
        "--dataset",
        "digits",
        "--density",
        "1",
        "--seed",
        "1",
        "--out",
        str(tmp_path / "d.pt"),
    )
    assert code == 0
    s, cs, ms = load_checkpoint(tmp_path / "s.pt")
    d, cd, md = load_checkpoint(tmp_path / "d.pt")
    assert cs.sparsity["scheme"] == "erk" and cd.sparsity["scheme"] == "dense" and md == {}
    ds, ss = d.state_dict(), s.state_dict()
    for k, m in ms.items():
        assert torch.equal(ss[k], ds[k] * m)


def test_train_from_init_and_resume_flags(tmp_path, capsys):
    init = tmp_path / "i.pt"
    assert (
        run(
            capsys,
            "init",
            "--dataset",
            "digits",
            "--sparse-init",
            "uniform",
            "--density",
            "0.5",
            "--out",
            str(init),
        )[0]
        == 0
    )
    code, out, err = run(
        capsys, "-q", "train", "--from", str(init), "--epochs", "2", "--out", str(tmp_path / "m.pt")
    )
    assert code == 0, err
    assert "test accuracy" in out
    assert (tmp_path / "m.log.jsonl").read_text().count("\n") == 2


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["init", "--dataset", "digits", "--arch", "resnet21", "--out", "x.pt"], 2, "did you mean"),
        (
            ["init", "--dataset", "digits", "--sparse-init", "erkk", "--density", "0.1", "--out", "x.pt"],
            2,
            "erk",
        ),
        (["init", "--dataset", "digits", "--density", "0", "--out", "x.pt"], 2, "(0, 1]"),
        (["init", "--dataset", "digits", "--density", "1.2", "--out", "x.pt"], 2, "(0, 1]"),
        (["init", "--dataset", "digits", "--arch-kwargs", "{bad", "--out", "x.pt"], 2, "JSON"),
        (
            ["init", "--dataset", "digits", "--arch-kwargs", '{"depth": 3}', "--out", "x.pt"],
            2,
            "bad arguments",
        ),
        (  # random masks need no images; SNIP/GraSP ratios do
            ["init", "--dataset", "cifar10", "--sparse-init", "snip", "--density", "0.1", "--out", "x.pt"],
            1,
            "--download",
        ),
        (["train", "--out", "x.pt"], 2, "--dataset"),
        (["train", "--dataset", "digits", "--epochs", "0", "--out", "x.pt"], 2, "epochs"),
        (["train", "--from", "missing.pt", "--out", "x.pt"], 1, "no such file"),
        (["train", "--dataset", "digits", "--resume", "--out", "fresh.pt"], 1, "no resume state"),
        (["ls", "gizmos"], 2, "unknown kind"),
    ],
)
def test_bad_input_one_line(tmp_path, capsys, monkeypatch, argv, code, needle):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALSUITE_DATA", str(tmp_path / "data"))
    got, _out, err = run(capsys, *argv)
    assert got == code, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert needle in lines[0]
    assert "Traceback" not in err


def test_from_mismatched_dataset(tmp_path, capsys):
    init = tmp_path / "i.pt"
    run(capsys, "init", "--dataset", "digits", "--out", str(init))
    code, _, err = run(
        capsys, "train", "--from", str(init), "--dataset", "cifar10", "--out", str(tmp_path / "m.pt")
    )
    assert code == 2 and "initialized for digits" in err


def test_console_script_subprocess(tmp_path):
    """The installed entry point: a real process, a real exit code, no traceback."""
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "evalsuite.cli",
            "init",
            "--dataset",
            "digits",
            "--arch",
            "nonet",
            "--out",
            "x.pt",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert r.returncode == 2
    assert "unknown model 'nonet'" in r.stderr and "Traceback" not in r.stderr


def test_eval_and_merge_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    ckpt = tmp_path / "m.pt"
    assert run(capsys, "-q", "train", "--dataset", "digits", "--epochs", "3", "--out", str(ckpt))[0] == 0
    fast = ["--eps", "0,8/255", "--eps-l2", "0.5", "--pgd-steps", "2", "--limit", "60", "-q"]
    code, out, err = run(capsys, "eval", str(ckpt), *fast, "--out", str(tmp_path / "r.json"))
    assert code == 0, err
    assert "robust/pgd_linf/8_255/accuracy" in out and "ece" in out and (tmp_path / "r.npz").exists()
    code, out, _ = run(capsys, "eval", str(ckpt), *fast, "--json")
    assert code == 0 and json.loads(out)["metrics"]["accuracy"] >= 0
    shards = []
    for i in range(2):
        s = tmp_path / f"s{i}.json"
        assert run(capsys, "eval", str(ckpt), *fast, "--shard", f"{i}/2", "--out", str(s))[0] == 0
        shards.append(str(s))
    code, out, err = run(capsys, "merge", *shards, "--out", str(tmp_path / "all.json"))
    assert code == 0, err
    whole = json.loads((tmp_path / "r.json").read_text())["metrics"]
    merged = json.loads((tmp_path / "all.json").read_text())["metrics"]
    assert merged == pytest.approx(whole, abs=1e-12)


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    [
        (["eval", "missing.pt"], 1, "no such file"),
        (["eval", "empty.pt"], 1, "empty"),
        (["eval", "sd.pt"], 2, ""),
        (["eval", "m.pt", "--checks", "clean,vibes"], 2, "unknown check"),
        (["eval", "m.pt", "--eps", "8/0"], 2, "eps"),
        (["eval", "m.pt", "--shard", "3/2"], 2, "shard"),
        (["eval", "m.pt", "--attacks", "cw"], 2, "unknown attack"),
        (["eval", "m.pt", "--data", "cifar10"], 1, "--download"),
        (["merge", "nope.json", "--out", "x.json"], 1, "no such file"),
    ],
)
def test_eval_bad_input_one_line(tmp_path, capsys, monkeypatch, argv, code, needle):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALSUITE_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty.pt").write_bytes(b"")
    torch.save({"w": torch.zeros(2)}, tmp_path / "sd.pt")
    from evalsuite.models.checkpoint import save_checkpoint
    from evalsuite.train import InitSpec, init_model

    model, card, masks = init_model(InitSpec("digits"))
    save_checkpoint(tmp_path / "m.pt", model, card, masks)
    got, _out, err = run(capsys, *argv)
    assert got == code, err
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1, err
    assert needle in lines[0] and "Traceback" not in err
