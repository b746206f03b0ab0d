"""``bench run`` keeps what it did: a model with NaN logits is stored as failed while the others are kept,
and ``bench check`` fails the incomplete run naming it; ``--trust-suite`` is the only way a suite gets to
name code or unpickle; every action takes a suite path; results are computed afresh unless ``--cache``."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from evalsuite.bench.store import ResultStore
from evalsuite.cli import main
from evalsuite.models.checkpoint import safe_load, save_payload

REPO = Path(__file__).resolve().parents[2]
DENSE = REPO / "checkpoints" / "digits-dense.pt"
ERK = REPO / "checkpoints" / "digits-erk-0.1.pt"

HEAD = """name = "tiny"

[battery]
checks = ["clean", "calibration"]
limit = 120

[data]
id = "digits"

[compare]
n_boot = 50
"""


def _model(name: str, checkpoint: Path | str, extra: str = "") -> str:
    return f'\n[[models]]\nname = "{name}"\ncheckpoint = "{checkpoint}"\n{extra}'


def _write(path: Path, *models: str) -> Path:
    path.write_text(HEAD + "".join(models))
    return path


def _nan_checkpoint(path: Path) -> Path:
    """The dense digits net with every weight NaN: loads fine, and its logits are NaN."""
    obj = safe_load(DENSE)
    for v in obj["state_dict"].values():
        if v.is_floating_point():
            v.fill_(float("nan"))
    save_payload(path, obj)
    return path


@pytest.fixture(autouse=True)
def _cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVALSUITE_CACHE", str(tmp_path / "cache"))


def _bench(*argv: str) -> int:
    return main(["-q", "bench", *argv])


def test_nan_model_is_stored_as_failed_and_the_others_kept(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "r.db")
    good = _write(tmp_path / "good.toml", _model("dense", DENSE), _model("erk", ERK))
    assert _bench("run", str(good), "--store", db) == 0
    nan = _nan_checkpoint(tmp_path / "nan.pt")
    # the failing model sits between two good ones: the one after it still runs
    bad = _write(tmp_path / "bad.toml", _model("dense", DENSE), _model("nan", nan), _model("erk", ERK))
    capsys.readouterr()
    assert _bench("run", str(bad), "--store", db) == 1
    err = capsys.readouterr().err
    errors = [ln for ln in err.splitlines() if "error:" in ln]
    assert len(errors) == 1 and "run 2 stored as incomplete" in errors[0]
    assert re.search(r"model 'nan' failed: ValueError: logits contains? NaN", errors[0])
    with ResultStore(db, create=False) as s:
        run = s.latest("tiny")
        assert run is not None and run.id == 2 and run.status == "incomplete"
        assert set(s.failures(run.id)) == {"nan"}
        reason = s.failures(run.id)["nan"]
        assert re.fullmatch(r"ValueError: logits contains? NaN", reason)
        kept = s.metrics(run.id)
        assert set(kept) == {"dense", "erk"}
        assert kept["erk"]["accuracy"].value == s.metrics(1)["erk"]["accuracy"].value
        assert s.result_json(run.id, "erk") is not None

    assert _bench("check", str(bad), "--store", db) == 1  # against run 1, the last complete run
    out = capsys.readouterr().out
    assert "against run 1" in out
    assert f"FAILED model 'nan': {reason}" in out
    assert "gate FAILED: run 2 is incomplete, 1 model(s) failed: nan" in out
    # the older runs alone still pass: the failure is the newest run's, not the gate's arithmetic
    assert _bench("check", str(bad), "--store", db, "--run", "1", "--baseline", "1") == 0
    assert _bench("baseline", str(bad), "--store", db, "--out", str(tmp_path / "b.json")) == 2
    assert "incomplete" in capsys.readouterr().err and not (tmp_path / "b.json").exists()
    # a baseline file does not hide the failure either
    assert _bench("baseline", str(bad), "--store", db, "--run", "1", "--out", str(tmp_path / "b.json")) == 0
    assert _bench("check", str(bad), "--store", db, "--baseline", str(tmp_path / "b.json")) == 1
    assert "FAILED model 'nan'" in capsys.readouterr().out


def test_first_run_incomplete_fails_check_without_a_baseline(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "r.db")
    bad = _write(tmp_path / "bad.toml", _model("nan", _nan_checkpoint(tmp_path / "nan.pt")))
    assert _bench("run", str(bad), "--store", db) == 1
    capsys.readouterr()
    assert _bench("check", str(bad), "--store", db) == 1
    assert re.search(r"FAILED model 'nan': ValueError: logits contains? NaN", capsys.readouterr().out)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1))


def test_trust_suite_allows_code_and_unpickling(tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    torch.save(_Net().state_dict(), tmp_path / "sd.pt")
    (tmp_path / "net.py").write_text(
        "from torch import nn\n\n"
        "class Net(nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = nn.Linear(64, 10)\n\n"
        "    def forward(self, x):\n"
        "        return self.fc(x.flatten(1))\n"
    )
    pickled = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    torch.save(pickled, tmp_path / "module.pt")  # a whole pickled module: needs trust to load
    suite = _write(
        tmp_path / "t.toml",
        _model("code", "sd.pt", 'arch = "net.py:Net"\n'),
        _model("pickle", "module.pt", "trust_checkpoint = true\n"),
    )
    db = str(tmp_path / "r.db")
    assert _bench("run", str(suite), "--store", db) == 2
    assert "--trust-suite" in capsys.readouterr().err
    assert not (tmp_path / "r.db").exists()
    assert _bench("run", str(suite), "--store", db, "--trust-suite") == 0
    with ResultStore(db, create=False) as s:
        run = s.latest("tiny")
        assert run is not None and run.complete
        assert set(s.metrics(run.id)) == {"code", "pickle"}


def test_every_action_takes_a_suite_path(tmp_path: Path, capsys) -> None:
    db = str(tmp_path / "r.db")
    suite = _write(tmp_path / "s.toml", _model("dense", DENSE))
    for _ in range(2):
        assert _bench("run", str(suite), "--store", db) == 0
    # the same suite elsewhere, where its checkpoint path no longer resolves and it names code: reading it
    # for its name and tolerances loads nothing, so neither matters
    moved = tmp_path / "elsewhere" / "s.toml"
    moved.parent.mkdir()
    _write(moved, _model("dense", "gone.pt", 'arch = "net.py:Net"\n'))
    assert _bench("tag", str(moved), "--store", db, "1", "first") == 0
    assert _bench("tag", str(suite), "--store", db, "latest", "second") == 0
    with ResultStore(db, create=False) as s:
        assert s.get_run("tag:first", "tiny").id == 1 and s.get_run("tag:second", "tiny").id == 2
    assert _bench("check", str(moved), "--store", db, "--baseline", "tag:first") == 0
    assert _bench("baseline", str(moved), "--store", db, "--out", str(tmp_path / "b.json")) == 0
    assert json.loads((tmp_path / "b.json").read_text())["suite"] == "tiny"
    assert _bench("history", str(moved), "--store", db) == 0


def test_run_reads_no_cache_unless_asked(tmp_path: Path) -> None:
    db = str(tmp_path / "r.db")
    suite = _write(tmp_path / "s.toml", _model("dense", DENSE))
    assert _bench("run", str(suite), "--store", db) == 0
    assert not list((tmp_path / "cache").glob("*.json"))  # nor written
    assert _bench("run", str(suite), "--store", db, "--cache") == 0
    (entry,) = (tmp_path / "cache").glob("*.json")
    doc = json.loads(entry.read_text())
    true_acc = doc["metrics"]["accuracy"]
    doc["metrics"]["accuracy"] = 0.123  # poison the cache, checksum file and all (as a stale entry would be)
    entry.write_text(json.dumps(doc))
    sums = entry.with_suffix(".sum")
    entry_sum = json.loads(sums.read_text())
    entry_sum["json_sha256"] = hashlib.sha256(entry.read_bytes()).hexdigest()
    sums.write_text(json.dumps(entry_sum))
    assert _bench("run", str(suite), "--store", db) == 0
    assert _bench("run", str(suite), "--store", db, "--cache") == 0
    with ResultStore(db, create=False) as s:
        acc = [s.metrics(r.id)["dense"]["accuracy"].value for r in s.runs("tiny")]
    assert acc[2] == pytest.approx(true_acc)  # default: evaluated afresh, the poison unread
    assert acc[3] == pytest.approx(0.123)  # --cache reads it: the poison was real
