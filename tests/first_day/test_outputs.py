"""Outputs never destroy inputs: ``eval``/``merge --out`` and ``compare --out --force`` refuse any target that
is, holds or sits inside one of the command's inputs, or is not a plain file (folder, device, fifo); a result
whose NPZ does not match its JSON is one line; and the refusals come before any work."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest

from evalsuite.battery import BatteryConfig, EvalOptions, evaluate
from evalsuite.data import load_dataset
from tests.first_day.harness import CHECKPOINTS, Case, check_case, copy_file, params, run_cli

FAST = ["--checks", "clean", "--limit", "60"]
CMP = [*FAST, "--n-boot", "100", "-q"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))


def _model(tmp: Path) -> list[Path]:
    return [copy_file(CHECKPOINTS / "digits-erk-0.1.pt", tmp / "m.pt")]


def _digits_npz(path: Path) -> Path:
    d = load_dataset("digits", "test")
    x = (d.x.numpy() * 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
    np.savez(path, x=x, y=d.y.numpy())
    return path


def _model_and_data(tmp: Path) -> list[Path]:
    return [*_model(tmp), _digits_npz(tmp / "mydata.npz")]


def _model_and_folder(tmp: Path) -> list[Path]:
    (tmp / "res").mkdir()
    (tmp / "res" / "notes.txt").write_text("mine")
    return [*_model(tmp), tmp / "res"]


def _model_and_fifo(tmp: Path) -> list[Path]:
    os.mkfifo(tmp / "r.json")
    return _model(tmp)  # the fifo itself is checked in `after` (reading it would block)


def _still_fifo(tmp: Path) -> None:
    assert stat.S_ISFIFO(os.lstat(tmp / "r.json").st_mode)


def _device(tmp: Path) -> str:
    """A character device to aim --out at. As root, a private copy of /dev/null in ``tmp``: a regression
    must never be able to replace the machine's own /dev/null (which os.replace does, as root). Without
    root, /dev itself is not writable, so the real /dev/null is safe to aim at."""
    if os.geteuid() != 0:
        return "/dev/null"
    dev = tmp / "null.json"
    if not dev.exists():
        os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return str(dev)


def _model_and_device(tmp: Path) -> list[Path]:
    _device(tmp)
    return _model(tmp)


def _device_intact(tmp: Path) -> None:
    assert stat.S_ISCHR(os.lstat(_device(tmp)).st_mode)


def _model_and_link(tmp: Path) -> list[Path]:
    watched = _model(tmp)
    (tmp / "link.json").symlink_to(tmp / "m.pt")
    return watched


def _model_and_hardlink(tmp: Path) -> list[Path]:
    watched = _model(tmp)
    os.link(tmp / "m.pt", tmp / "hard.json")
    return watched


def _model_and_image_folder(tmp: Path) -> list[Path]:
    (tmp / "imgs" / "a").mkdir(parents=True)
    (tmp / "imgs" / "a" / "0.png").write_bytes(b"\x89PNG not really")
    return [*_model(tmp), tmp / "imgs"]


def _model_and_arch(tmp: Path) -> list[Path]:
    (tmp / "net.py").write_text("def net(num_classes=10, in_channels=1):\n    raise SystemExit\n")
    return [*_model(tmp), tmp / "net.py"]


def _report_with_user_file(tmp: Path) -> list[Path]:
    (tmp / "rep").mkdir()
    (tmp / "rep" / "thesis.tex").write_text("years of work")
    return [tmp / "rep"]


def _report_holding_input(tmp: Path) -> list[Path]:
    (tmp / "rep").mkdir()
    (tmp / "rep" / "dense.json").write_text("{}")
    (tmp / "rep" / "dense.npz").write_bytes(b"")
    return [tmp / "rep"]


def _shards(tmp: Path) -> list[Path]:
    out = []
    for i in range(2):
        for suffix, data in ((".json", b"{}"), (".npz", b"PK")):
            p = tmp / f"s{i}{suffix}"
            p.write_bytes(data)
            out.append(p)
    return out


def _two_runs_mixed(tmp: Path) -> list[Path]:
    """``a.json`` beside the NPZ of another run: what a kill between writing the two used to leave."""
    ckpt = _model(tmp)[0]
    for name, limit in (("a", 60), ("b", 90)):
        cfg = BatteryConfig(checks=("clean",), limit=limit)
        evaluate(ckpt, cfg, EvalOptions(cache=False, out=tmp / f"{name}.json"))
    (tmp / "a.npz").write_bytes((tmp / "b.npz").read_bytes())
    return [tmp / "a.json", tmp / "a.npz"]


EVAL = ["eval", "{tmp}/m.pt", *FAST]

CASES = [
    Case("eval-out-onto-checkpoint", [*EVAL, "--out", "{tmp}/m.pt"], "is an input", _model, code=2),
    Case(
        "eval-out-onto-npz-data",
        [*EVAL, "--data", "npz:{tmp}/mydata.npz", "--out", "{tmp}/mydata.npz"],
        "is an input",
        _model_and_data,
        code=2,
    ),
    Case(
        "eval-npz-partner-is-data",
        [*EVAL, "--data", "npz:{tmp}/mydata.npz", "--out", "{tmp}/mydata.json"],
        "writes mydata.npz, which is an input",
        _model_and_data,
        code=2,
    ),
    Case(
        "eval-npz-partner-is-ood-set",
        [*EVAL, "--ood", "mine=npz:{tmp}/mydata.npz", "--out", "{tmp}/mydata.json"],
        "which is an input",
        _model_and_data,
        code=2,
    ),
    Case(
        "eval-out-device",
        [*EVAL, "--out", "{dev}"],
        "not a regular file",
        _model_and_device,
        code=2,
        after=_device_intact,
    ),
    Case("eval-out-folder", [*EVAL, "--out", "{tmp}/res"], "is a folder", _model_and_folder, code=2),
    Case(
        "eval-out-fifo",
        [*EVAL, "--out", "{tmp}/r.json"],
        "not a regular file",
        _model_and_fifo,
        2,
        _still_fifo,
    ),
    Case("eval-out-wrong-suffix", [*EVAL, "--out", "{tmp}/r.txt"], "must be a .json", _model, code=2),
    Case(
        "eval-out-link-to-checkpoint", [*EVAL, "--out", "{tmp}/link.json"], "is an input", _model_and_link, 2
    ),
    Case(
        "eval-out-hardlink-of-model",
        [*EVAL, "--out", "{tmp}/hard.json"],
        "is an input",
        _model_and_hardlink,
        2,
    ),
    Case(
        "eval-out-inside-image-folder",
        [*EVAL, "--data", "folder:{tmp}/imgs", "--out", "{tmp}/imgs/r.json"],
        "inside the input folder",
        _model_and_image_folder,
        code=2,
    ),
    Case(
        "eval-out-onto-arch-file",
        [*EVAL, "--arch", "{tmp}/net.py:net", "--data", "digits", "--out", "{tmp}/net.py"],
        "is an input",
        _model_and_arch,
        code=2,
    ),
    Case(
        "compare-force-folder-with-user-file",
        [
            "compare",
            "{repo}/checkpoints/digits-dense.pt",
            "{tmp}/m.pt",
            *CMP,
            "--out",
            "{tmp}/rep",
            "--force",
        ],
        "thesis.tex, which evalsuite did not write",
        lambda t: [*_model(t), *_report_with_user_file(t)],
        code=2,
    ),
    Case(
        "compare-force-folder-holding-its-input",
        ["compare", "{tmp}/rep/dense.json", "{tmp}/m.pt", *CMP, "--out", "{tmp}/rep", "--force"],
        "holds the input",
        lambda t: [*_model(t), *_report_holding_input(t)],
        code=2,
    ),
    Case(
        "compare-out-is-an-input",
        [
            "compare",
            "{repo}/checkpoints/digits-dense.pt",
            "{tmp}/m.pt",
            *CMP,
            "--out",
            "{tmp}/m.pt",
            "--force",
        ],
        "is an input",
        _model,
        code=2,
    ),
    Case(
        "compare-out-is-a-file",
        [
            "compare",
            "{repo}/checkpoints/digits-dense.pt",
            "{tmp}/m.pt",
            *CMP,
            "--out",
            "{tmp}/x.md",
            "--force",
        ],
        "not a report folder",
        lambda t: [*_model(t), _write(t / "x.md", "notes")],
        code=2,
    ),
    Case(
        "merge-out-names-a-shard",
        ["merge", "{tmp}/s0.json", "{tmp}/s1.json", "--out", "{tmp}/s1.json"],
        "is an input",
        _shards,
        code=2,
    ),
    Case(
        "merge-out-names-a-shard-npz",
        ["merge", "{tmp}/s0.json", "{tmp}/s1.json", "--out", "{tmp}/s0.npz"],
        "is an input",
        _shards,
        code=2,
    ),
    Case(
        "merge-out-wrong-suffix",
        ["merge", "{tmp}/s0.json", "--out", "{tmp}/all.txt"],
        ".json",
        _shards,
        code=2,
    ),
    Case(
        "npz-checksum-mismatch",
        ["merge", "{tmp}/a.json", "--out", "{tmp}/all.json"],
        "a.npz does not match",
        _two_runs_mixed,
        code=1,
        after=lambda t: None if not (t / "all.json").exists() else pytest.fail("all.json written"),
    ),
]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@params(CASES)
def test_outputs_never_destroy_inputs(case, tmp_path, capsys):
    if any("{dev}" in a for a in case.argv):
        case = dataclasses.replace(case, argv=[a.replace("{dev}", _device(tmp_path)) for a in case.argv])
    check_case(case, tmp_path, capsys)


def _cmp(tmp: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    return run_cli(
        [
            "compare",
            str(CHECKPOINTS / "digits-dense.pt"),
            str(tmp / "m.pt"),
            *CMP,
            "--out",
            str(tmp / "rep"),
            *extra,
        ],
        capsys,
    )


def test_compare_force_twice_on_its_own_folder(tmp_path, capsys):
    _model(tmp_path)
    assert _cmp(tmp_path, capsys)[0] == 0
    marker = json.loads((tmp_path / "rep" / ".evalsuite-report").read_text())
    on_disk = {
        p.relative_to(tmp_path / "rep").as_posix() for p in (tmp_path / "rep").rglob("*") if p.is_file()
    }
    assert set(marker["files"]) == on_disk - {".evalsuite-report"} and "comparison.json" in on_disk
    code, _, err = _cmp(tmp_path, capsys)
    assert code == 2 and "--force" in err
    (tmp_path / ".rep.tmp-999999999-deadbeef").mkdir()  # left by a killed run
    assert _cmp(tmp_path, capsys, "--force")[0] == 0
    assert _cmp(tmp_path, capsys, "--force")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".rep.")) == []


def test_compare_says_which_model_it_is_on(tmp_path, capsys, caplog):
    caplog.set_level("INFO", logger="evalsuite.battery.collect")
    _model(tmp_path)
    evaluate(
        tmp_path / "m.pt", BatteryConfig(checks=("clean",), limit=60), EvalOptions(out=tmp_path / "r.json")
    )
    argv = [
        "compare",
        str(CHECKPOINTS / "digits-dense.pt"),
        str(tmp_path / "r.json"),
        *FAST,
        "--n-boot",
        "100",
    ]
    code, _, err = run_cli([*argv, "--out", str(tmp_path / "rep")], capsys)
    assert code == 0, err
    assert f"evaluating 1/2: digits-dense ({CHECKPOINTS / 'digits-dense.pt'})" in caplog.messages
    assert f"using result {tmp_path / 'r.json'} (2/2)" in caplog.messages


def test_compare_refuses_a_result_whose_arrays_are_another_runs(tmp_path, capsys):
    inputs = _two_runs_mixed(tmp_path)
    before = [p.read_bytes() for p in inputs]
    code, _, err = run_cli(
        ["compare", str(tmp_path / "b.json"), str(tmp_path / "a.json"), *CMP, "--out", str(tmp_path / "rep")],
        capsys,
    )
    assert code == 1 and "a.npz does not match" in err
    assert [p.read_bytes() for p in inputs] == before
