"""The regression gate: tolerances (abs, noise, patterns), verdicts, direction, missing/new, baselines."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evalsuite.bench.gate import (
    BASELINE_SCHEMA,
    Tolerance,
    ToleranceTable,
    baseline_to_json,
    check,
    load_baseline,
    parse_tolerance,
    tolerance_for,
)
from evalsuite.bench.store import MetricRow, ModelRun, ResultStore
from evalsuite.core.errors import DataError, UsageError

ROBUST = "robust/pgd_linf/8_255/accuracy"


def _row(value: float, half: float | None = 0.01, hib: bool | None = None) -> MetricRow:
    if half is None:
        return MetricRow(value, None, None, 1000, hib)
    return MetricRow(value, value - half, value + half, 1000, hib)


def _baseline() -> dict[str, dict[str, MetricRow]]:
    return {
        "erk": {
            "accuracy": _row(0.90, hib=True),
            ROBUST: _row(0.40, hib=True),
            "ece": _row(0.03, 0.005, hib=False),
            "ood/svhn/energy/auroc": _row(0.85, 0.02, hib=True),
            "sparsity/density": _row(0.05, None, hib=False),
        }
    }


def _with(base: dict[str, dict[str, MetricRow]], **changes: float) -> dict[str, dict[str, MetricRow]]:
    """A copy of ``base`` with metric values replaced (keys with '/' spelled with '__')."""
    out = {m: dict(ms) for m, ms in base.items()}
    for key, v in changes.items():
        name = key.replace("__", "/")
        old = out["erk"][name]
        half = None if old.ci_low is None else (old.ci_high - old.ci_low) / 2  # type: ignore[operator]
        out["erk"][name] = _row(v, half, old.higher_is_better)
    return out


def _verdict(report, metric: str, model: str = "erk") -> str:  # type: ignore[no-untyped-def]
    (row,) = [r for r in report.rows if r.metric == metric and r.model == model]
    return row.verdict


def test_planted_regression_fails() -> None:
    base = _baseline()
    new = _with(base, robust__pgd_linf__8_255__accuracy=0.30)
    rep = check(new, base)
    assert not rep.ok
    assert [(r.model, r.metric) for r in rep.regressions] == [("erk", ROBUST)]
    (r,) = rep.regressions
    assert r.delta == pytest.approx(-0.10)
    assert r.tolerance == pytest.approx(math.sqrt(2) * 0.01) and r.tolerance_kind == "noise"
    text = rep.format()
    assert "REGRESSION" in text and ROBUST in text and "gate FAILED" in text
    assert "0.4" in text and "0.3" in text and "±0.014142 (noise)" in text


def test_noise_passes() -> None:
    base = _baseline()
    # each change is inside sqrt(h_old^2 + h_new^2)
    new = _with(
        base, accuracy=0.89, robust__pgd_linf__8_255__accuracy=0.41, ece=0.036, ood__svhn__energy__auroc=0.83
    )
    rep = check(new, base)
    assert rep.ok, rep.format()
    assert len(rep.unchanged) == 5 and not rep.regressions and not rep.improvements
    assert "gate passed" in rep.format()


def test_improvement_reported_not_failed() -> None:
    base = _baseline()
    rep = check(_with(base, accuracy=0.95, ece=0.01), base)
    assert rep.ok
    assert {r.metric for r in rep.improvements} == {"accuracy", "ece"}
    assert "improvement" in rep.format()


def test_lower_is_better_direction() -> None:
    base = _baseline()
    rep = check(_with(base, ece=0.05), base)  # ece up by 0.02 > sqrt(2)*0.005
    assert [r.metric for r in rep.regressions] == ["ece"] and not rep.ok
    # direction comes from the stored higher_is_better, not the name
    flipped = {"m": {"odd": _row(1.0, 0.0, hib=False)}}
    assert not check({"m": {"odd": _row(1.5, 0.0, hib=False)}}, flipped).ok
    assert check({"m": {"odd": _row(0.5, 0.0, hib=False)}}, flipped).improvements
    # and from the catalogue when it is not stored (both FPR95 conventions are lower-is-better)
    for name in ("ood/s/msp/fpr95", "ood/s/msp/fpr95_ood"):
        old = {"m": {name: MetricRow(0.2)}}
        assert not check({"m": {name: MetricRow(0.3)}}, old).ok
        assert check({"m": {name: MetricRow(0.1)}}, old).improvements


def test_abs_vs_noise() -> None:
    base = _baseline()
    new = _with(base, accuracy=0.88)  # -0.02: beyond noise (0.0141), within abs 0.03
    assert _verdict(check(new, base), "accuracy") == "regression"
    rep = check(new, base, {"accuracy": {"abs": 0.03}})
    assert _verdict(rep, "accuracy") == "unchanged"
    (row,) = [r for r in rep.rows if r.metric == "accuracy"]
    assert row.tolerance == 0.03 and row.tolerance_kind == "abs"
    # noise with a multiplier
    assert _verdict(check(new, base, {"*": {"noise": 2}}), "accuracy") == "unchanged"
    # strictly more than the tolerance: a change equal to it passes, even with float rounding in 0.9 - 0.89
    assert _verdict(check(_with(base, accuracy=0.89), base, {"accuracy": {"abs": 0.01}}), "accuracy") == (
        "unchanged"
    )
    assert _verdict(check(_with(base, accuracy=0.8899), base, {"accuracy": {"abs": 0.01}}), "accuracy") == (
        "regression"
    )


def test_noise_without_ci_falls_back_to_zero() -> None:
    old, new = MetricRow(0.5), MetricRow(0.49)
    amount, note = tolerance_for(Tolerance("noise", 1.0), old, new)
    assert amount == 0 and "no CI in baseline and new run" in note
    amount, note = tolerance_for(Tolerance("noise", 1.0), _row(0.5, 0.03), new)
    assert amount == pytest.approx(0.03) and "new run" in note and "baseline" not in note
    rep = check({"m": {"accuracy": new}}, {"m": {"accuracy": old}})
    assert not rep.ok and "no CI" in rep.regressions[0].note and "no CI" in rep.format()


def test_sparsity_defaults_to_exact() -> None:
    base = _baseline()
    assert check(_with(base, sparsity__density=0.05), base).ok
    rep = check(_with(base, sparsity__density=0.0501), base)
    assert [r.metric for r in rep.regressions] == ["sparsity/density"]
    assert rep.regressions[0].tolerance == 0 and rep.regressions[0].tolerance_kind == "abs"
    assert check(_with(base, sparsity__density=0.04), base).improvements[0].metric == "sparsity/density"
    # a user rule can loosen it
    assert check(_with(base, sparsity__density=0.0501), base, {"sparsity/*": {"abs": 0.001}}).ok


def test_missing_and_new() -> None:
    base = _baseline()
    new = _with(base)
    del new["erk"]["ece"]
    new["erk"]["brier"] = _row(0.1)
    new["dense"] = {"accuracy": _row(0.9)}
    rep = check(new, base)
    assert not rep.ok and not rep.regressions
    assert [(r.metric, r.note) for r in rep.missing] == [("ece", "metric absent from new run")]
    assert {(r.model, r.metric) for r in rep.new} == {("erk", "brier"), ("dense", "accuracy")}
    assert "MISSING" in rep.format()
    # a whole model gone: each of its metrics is missing
    rep = check({}, base)
    assert len(rep.missing) == 5 and rep.missing[0].note == "model absent from new run"
    # a value that became NaN counts as missing
    rep = check(_with(base, accuracy=float("nan")), base)
    assert [r.metric for r in rep.missing] == ["accuracy"] and "not finite" in rep.missing[0].note
    # a NaN baseline cannot be compared: not a failure
    nan_base = _with(base, accuracy=float("nan"))
    rep = check(_with(base), nan_base)
    assert rep.ok and "not compared" in next(r.note for r in rep.rows if r.metric == "accuracy")


def test_pattern_precedence() -> None:
    t = ToleranceTable({"robust/*/8_255/*": {"abs": 0.2}, "robust/*": {"abs": 0.05}, "ood/*/auroc": "noise"})
    assert t.lookup(ROBUST) == ("robust/*/8_255/*", Tolerance("abs", 0.2))
    assert t.lookup("robust/fgsm/2_255/accuracy")[1] == Tolerance("abs", 0.05)
    assert t.lookup("ood/svhn/msp/auroc")[1] == Tolerance("noise", 1.0)
    # built-in default: families without a CI (the sparsity audit) at abs 0, from the catalogue
    assert t.lookup("sparsity/params") == ("sparsity/params", Tolerance("abs", 0.0))
    assert t.lookup("sparsity/density") == ("sparsity/density", Tolerance("abs", 0.0))
    assert t.lookup("ece") == ("*", Tolerance("noise", 1.0))
    # first match in the order given: a broad rule first shadows the specific one
    t2 = ToleranceTable([("*", {"abs": 1.0}), ("ece", {"abs": 0.0})])
    assert t2.lookup("ece")[1] == Tolerance("abs", 1.0)
    assert t2.lookup("sparsity/density")[1] == Tolerance("abs", 1.0)
    base = _baseline()
    new = _with(base, robust__pgd_linf__8_255__accuracy=0.30)
    assert check(new, base, t).ok
    assert not check(new, base, {"robust/*": {"abs": 0.05}, "robust/*/8_255/*": {"abs": 0.2}}).ok


def test_parse_tolerance() -> None:
    assert parse_tolerance({"abs": 0.01}) == Tolerance("abs", 0.01)
    assert parse_tolerance("noise") == Tolerance("noise", 1.0)
    assert parse_tolerance("noise:2") == Tolerance("noise", 2.0)
    assert parse_tolerance("abs:0.5") == Tolerance("abs", 0.5)
    assert parse_tolerance(0.02) == Tolerance("abs", 0.02)
    assert parse_tolerance("0.02") == Tolerance("abs", 0.02)
    for bad in ({"rel": 0.1}, {"abs": -1}, "abs:x", "loud", {"abs": 1, "noise": 1}, True, None, float("inf")):
        with pytest.raises(UsageError):
            parse_tolerance(bad)  # type: ignore[arg-type]
    t = ToleranceTable.from_args(["robust/*=abs:0.02", "ece=noise:2"])
    assert t.lookup(ROBUST)[1] == Tolerance("abs", 0.02) and t.lookup("ece")[1] == Tolerance("noise", 2.0)
    with pytest.raises(UsageError, match="PATTERN=SPEC"):
        ToleranceTable.from_args(["robust/*"])


def test_report_format_and_dict() -> None:
    base = _baseline()
    base["erk"]["sparsity/nonzero_params"] = MetricRow(13500, None, None, None, False)
    new = _with(base, accuracy=0.95, robust__pgd_linf__8_255__accuracy=0.2)
    new["erk"]["sparsity/nonzero_params"] = MetricRow(13501, None, None, None, False)
    rep = check(new, base, baseline_label="run 3", new_label="run 4")
    text = rep.format()
    lines = text.splitlines()
    assert lines[0].split()[:2] == ["model", "metric"] and "tolerance" in lines[0] and "verdict" in lines[0]
    assert lines[2].startswith("erk") and "REGRESSION" in lines[2]  # worst first
    assert "13501" in text and "+1" in text  # counts printed in full
    assert "run 4 vs run 3" in text
    short = rep.format(show_unchanged=False)
    assert "ece" not in short and "accuracy" in short
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["ok"] is False and len(d["rows"]) == len(rep.rows)


def test_baseline_json_round_trip(tmp_path: Path) -> None:
    base = _baseline()
    base["erk"]["nll"] = MetricRow(float("nan"), None, None, None, False)
    with ResultStore(tmp_path / "r.db") as s:
        rid = s.add_run(
            "smoke", {m: ModelRun(ms) for m, ms in base.items()}, {"git_revision": "abc", "tag": "v1"}
        )
        info, stored = s.get_run(rid, "smoke"), s.metrics(rid)
    p = tmp_path / "baseline.json"
    p.write_text(baseline_to_json("smoke", info, stored))
    doc = json.loads(p.read_text())
    assert doc["schema"] == BASELINE_SCHEMA and doc["schema_version"] == 1
    assert doc["run"]["git_revision"] == "abc" and doc["run"]["tag"] == "v1"
    suite, loaded = load_baseline(p)
    assert suite == "smoke"
    assert math.isnan(loaded["erk"].pop("nll").value)
    stored["erk"].pop("nll")
    assert loaded == stored
    assert check(stored, loaded).ok
    # no run info is fine too
    p.write_text(baseline_to_json("smoke", None, stored))
    assert load_baseline(p)[1] == stored


def test_baseline_wrong_schema_refused(tmp_path: Path) -> None:
    p = tmp_path / "b.json"
    good = json.loads(baseline_to_json("smoke", None, _baseline()))
    for doc, pattern in [
        ({**good, "schema": "evalsuite-result"}, "not an evalsuite baseline"),
        ({**good, "schema_version": 2}, "schema version 2"),
        ({k: v for k, v in good.items() if k != "suite"}, "lacks"),
        ({**good, "metrics": {"erk": {"accuracy": {"value": "high"}}}}, "malformed"),
        ([1, 2], "not an evalsuite baseline"),
    ]:
        p.write_text(json.dumps(doc))
        with pytest.raises(DataError, match=pattern):
            load_baseline(p)
    p.write_text("{not json")
    with pytest.raises(DataError, match="not a valid baseline"):
        load_baseline(p)
    with pytest.raises(DataError, match="no such baseline"):
        load_baseline(tmp_path / "absent.json")
