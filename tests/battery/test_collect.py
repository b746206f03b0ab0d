"""``compare``'s inputs: each dataset is read once for all the models it evaluates."""

from __future__ import annotations

from pathlib import Path

from evalsuite.battery import BatteryConfig, EvalOptions
from evalsuite.battery.collect import collect_entries
from evalsuite.data import base

REPO = Path(__file__).resolve().parents[2]


def test_compare_reads_each_dataset_once(monkeypatch, tmp_path) -> None:
    calls: list[tuple[str, str]] = []
    real_get = base.DATASETS.get

    def counting_get(kind: str):
        loader = real_get(kind)

        def wrapped(arg, split, opts):
            calls.append((kind, split))
            return loader(arg, split, opts)

        return wrapped

    monkeypatch.setattr(base.DATASETS, "get", counting_get)
    ckpts = [str(REPO / "checkpoints" / f) for f in ("digits-dense.pt", "digits-erk-0.1.pt")]
    cfg = BatteryConfig(checks=("clean", "ood"), limit=60)
    opts = EvalOptions(ood=["gaussian"], cache=False)
    entries = collect_entries(ckpts, cfg, opts)
    assert all(e.ok for e in entries), [e.error for e in entries]
    assert sorted(calls) == [("digits", "test"), ("gaussian", "test")]
    calls.clear()
    collect_entries(ckpts[:1], cfg, opts)  # the memo lives only for one collect: a new call reads again
    assert sorted(calls) == [("digits", "test"), ("gaussian", "test")]
