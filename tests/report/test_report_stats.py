"""The comparison's statistics on hand-built results: families and corrections, consistent accuracy CIs,
seed pairing, descriptive MCE, the non-inferiority headline, the legend and the v2 schema."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evalsuite.core.results import EvalResult
from evalsuite.metrics import classification as C
from evalsuite.metrics import inference as I
from evalsuite.metrics import stats as S
from evalsuite.report.compare import CompareSettings, ModelEntry, build_comparison, build_group_comparison
from evalsuite.report.model import Family, Replaces, Verdict, from_json_dict, to_json_dict
from evalsuite.report.render import render_html, render_latex, render_markdown, render_terminal

FAST = CompareSettings(n_boot=100, n_perm=500, max_perm=4000)


def _entry(name: str, correct: np.ndarray, conf: np.ndarray, seed: int = 0, ood: bool = False) -> ModelEntry:
    """A result whose every clean and calibration metric is computed from ``correct`` and ``conf``."""
    n = len(correct)
    correct = correct.astype(bool)
    p_true = np.where(correct, conf, (1 - conf) / 9)
    nll = -np.log(p_true)
    brier = (1 - p_true) ** 2 + (1 - p_true) ** 2 / 9  # the other 9 classes share the rest equally
    metrics = {
        "accuracy": float(np.mean(correct)),
        "nll": float(np.mean(nll)),
        "brier": float(np.mean(brier)),
        "ece": C.ece(conf, correct),
        "mce": C.mce(conf, correct),
    }
    arrays = {
        "id/index": np.arange(n),
        "id/labels": np.arange(n) % 10,
        "id/logits": np.zeros((n, 10), dtype=np.float32),
        "id/correct": correct,
        "id/confidence": conf,
        "id/nll": nll,
        "id/brier": brier,
    }
    data = {"id": {"spec": "hand", "n": n, "of": n}, "ood": []}
    if ood:
        rng = np.random.default_rng(seed + 100)
        arrays["id/score/msp"] = -conf
        arrays["ood/noise/score/msp"] = -rng.uniform(0.3, 0.9, 200)
        metrics["ood/noise/msp/auroc"] = 0.0
        metrics["ood/noise/msp/fpr95"] = 0.0
        metrics["ood/noise/msp/aupr_in"] = 0.0
        data["ood"] = [{"name": "noise", "spec": "noise", "n": 200}]
    result = EvalResult(
        metrics=metrics,
        metric_info={},
        config={"n_bins": 15, "ood_scores": ["msp"] if ood else []},
        conventions={},
        data=data,
        model={"card": {"arch": "hand", "seed": seed, "sparsity": {"scheme": "erk"}}, "sha256": "cd" * 32},
        provenance={},
    )
    return ModelEntry(name=name, source=f"{name}.json", result=result, arrays=arrays)


def _pair(n: int, acc_a: float, acc_b: float, seed: int = 0, **kw: bool) -> list[ModelEntry]:
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    conf_a = np.clip(rng.beta(8, 2, n), 0.11, 0.999)
    conf_b = np.clip(conf_a + rng.normal(0, 0.05, n), 0.11, 0.999)
    return [_entry("ref", u < acc_a, conf_a, **kw), _entry("new", u < acc_b, conf_b, **kw)]


def test_primary_holm_secondary_bh_and_none():
    entries = _pair(600, 0.8, 0.75)
    comp = build_comparison(entries, settings=FAST)
    rows = {r.name: r for r in comp.metrics}
    assert {n for n, r in rows.items() if r.family is Family.PRIMARY} == {"accuracy", "nll", "ece"}
    assert rows["brier"].family is Family.SECONDARY and rows["mce"].family is Family.DESCRIPTIVE
    prim = ["accuracy", "nll", "ece"]
    raw = [rows[n].deltas["new"].p_value for n in prim]
    assert [rows[n].deltas["new"].p_adjusted for n in prim] == pytest.approx(S.holm(raw))
    # one secondary test: BH leaves it alone
    assert rows["brier"].correction == "bh"
    assert rows["brier"].deltas["new"].p_adjusted == pytest.approx(rows["brier"].deltas["new"].p_value)
    # --primary moves brier into the Holm family and the others out
    comp2 = build_comparison(entries, settings=CompareSettings(**{**FAST.__dict__, "primary": ("brier",)}))
    r2 = {r.name: r for r in comp2.metrics}
    assert r2["brier"].family is Family.PRIMARY and r2["accuracy"].family is Family.SECONDARY
    sec = ["accuracy", "nll", "ece"]
    raw2 = [r2[n].deltas["new"].p_value for n in sec]
    assert [r2[n].deltas["new"].p_adjusted for n in sec] == pytest.approx(I.benjamini_hochberg(raw2))
    none = build_comparison(entries, settings=CompareSettings(**{**FAST.__dict__, "correction": "none"}))
    for r in none.metrics:
        for d in r.deltas.values():
            assert d.p_adjusted == d.p_value
    assert "no multiple-testing correction" in render_markdown(none)


def test_bad_primary_word_is_a_usage_error():
    from evalsuite.core.errors import UsageError

    with pytest.raises(UsageError, match="matches no metric"):
        build_comparison(_pair(50, 0.8, 0.8), settings=CompareSettings(primary=("auroc",)))


@pytest.mark.parametrize("seed", range(8))
def test_accuracy_ci_excludes_zero_iff_p_below_alpha(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(80, 400))
    entries = _pair(n, 0.8, float(rng.uniform(0.7, 0.9)), seed=seed)
    d = build_comparison(entries, settings=FAST).row("accuracy").deltas["new"]
    assert d.test == "exact McNemar" and d.ci_low is not None and d.ci_high is not None
    assert (d.ci_low > 0 or d.ci_high < 0) == (d.p_value < FAST.alpha)


def test_permutation_deltas_agree_with_their_ci():
    comp = build_comparison(_pair(300, 0.8, 0.7, ood=True), settings=FAST)
    for name in ("nll", "brier", "ece", "ood/noise/msp/fpr95", "ood/noise/msp/aupr_in"):
        d = comp.row(name).deltas["new"]
        assert d.test.startswith("paired permutation") and d.n_perm is not None
        assert (d.ci_low > 0 or d.ci_high < 0) == (d.p_value < FAST.alpha), name
    assert comp.row("ood/noise/msp/auroc").deltas["new"].test == "DeLong"
    assert comp.row("ood/noise/msp/auroc").family is Family.PRIMARY


def test_mce_is_descriptive_everywhere():
    comp = build_comparison(_pair(200, 0.8, 0.8), settings=FAST)
    d = comp.row("mce").deltas["new"]
    assert d.verdict is Verdict.NOT_TESTED and d.p_value is None and d.ci_low is None
    assert comp.row("mce").values["ref"].ci_low is not None  # the value still has its interval
    md = render_markdown(comp)
    line = next(x for x in md.splitlines() if x.startswith("| `mce`"))
    assert line.count("descriptive") == 2 and "n.s." not in line  # family column and verdict
    assert "descriptive" in render_terminal(comp) and "descriptive" in render_latex(comp)
    assert "descriptive" in render_html(comp)


def test_ece_value_has_bias_aware_interval_and_debiased_estimate():
    comp = build_comparison(_pair(400, 0.8, 0.8), settings=FAST)
    v = comp.row("ece").values["ref"]
    assert v.ci_method is not None and v.ci_method.startswith("calibration bound")
    assert v.debiased is not None and v.debiased < v.value  # the plug-in is biased upwards
    assert "debiased" in render_markdown(comp)
    assert "covers the population calibration error" in render_markdown(comp)


def _headline(n: int, acc_a: float, acc_b: float) -> Replaces:
    s = CompareSettings(n_boot=100, n_perm=300, max_perm=600, primary=("accuracy",))
    comp = build_comparison(_pair(n, acc_a, acc_b), settings=s)
    (h,) = comp.headlines
    (m,) = h.metrics
    assert m.metric == "accuracy" and m.margin == 0.01
    # "replaces it" exactly when the one-sided bound is above -margin
    assert (m.verdict is Replaces.YES) == (m.lower is not None and m.lower > -m.margin)
    return h.verdict


def test_headline_answers():
    assert _headline(20_000, 0.8, 0.8) is Replaces.YES  # same predictions, large N
    assert _headline(2_000, 0.8, 0.7) is Replaces.WORSE
    assert _headline(100, 0.8, 0.8) is Replaces.INCONCLUSIVE


def test_headline_leads_the_report_and_margins_override():
    entries = _pair(3000, 0.8, 0.8)
    comp = build_comparison(entries, settings=CompareSettings(n_boot=100, n_perm=300, max_perm=600))
    md = render_markdown(comp)
    assert md.index("## Can it replace the reference?") < md.index("## Models") < md.index("## Clean")
    assert "**`new`: " in md
    wide = build_comparison(
        entries,
        settings=CompareSettings(n_boot=100, n_perm=300, max_perm=600, margins={"accuracy": 0.2}),
    )
    acc = next(m for m in wide.headlines[0].metrics if m.metric == "accuracy")
    assert acc.margin == 0.2 and acc.verdict is Replaces.YES


def test_seed_groups_with_different_seed_sets_use_welch_on_all_seeds():
    rng = np.random.default_rng(3)

    def member(name: str, seed: int, acc: float) -> ModelEntry:
        u = rng.random(100)
        return _entry(name, u < acc, np.clip(rng.beta(8, 2, 100), 0.11, 0.999), seed=seed)

    dense = [member(f"d{s}", s, 0.8 + 0.01 * s) for s in range(5)]
    sparse = [member(f"s{s}", s, 0.75 + 0.02 * s) for s in range(3)]
    comp = build_group_comparison({"dense": dense, "sparse": sparse}, settings=FAST)
    d = comp.row("accuracy").deltas["sparse"]
    assert d.test.startswith("Welch's t-test on all seeds (5 vs 3): the seed sets differ")
    assert d.paired_seeds is None
    a = [e.result.metrics["accuracy"] for e in dense]  # type: ignore[union-attr]
    b = [e.result.metrics["accuracy"] for e in sparse]  # type: ignore[union-attr]
    assert d.p_value == pytest.approx(S.seed_level_test(a, b, paired=False)["p_value"], rel=1e-9)
    assert d.ci_low is not None and d.ci_high is not None
    assert (d.ci_low > 0 or d.ci_high < 0) == (d.p_value < 0.05)
    md = render_markdown(comp)
    assert "test: sparse vs dense: Welch's t-test on all seeds (5 vs 3): the seed sets differ" in md
    # the same seed set: paired
    same = build_group_comparison({"dense": dense[:3], "sparse": sparse}, settings=FAST)
    assert same.row("accuracy").deltas["sparse"].paired_seeds == (0, 1, 2)


def test_legend_lists_the_definitions():
    comp = build_comparison(_pair(200, 0.8, 0.8, ood=True), settings=FAST)
    md = render_markdown(comp)
    notes = md.split("## Notes")[1]
    assert "ood/SET/SCORE/fpr95**: fraction of OOD examples accepted as ID when 95 % of ID" in notes
    assert "average precision with ID as the positive class" in notes
    assert "ood/SET/SCORE/fpr95_ood**: fraction of ID examples flagged as OOD when 95 % of OOD" in notes
    assert "**definition: mce**" in notes


def test_schema_v2_round_trips():
    comp = build_comparison(_pair(150, 0.8, 0.7, ood=True), settings=FAST)
    d = json.loads(json.dumps(to_json_dict(comp)))
    assert d["schema_version"] == 2
    assert d["metrics"][0]["deltas"]["new"]["verdict"] in {v.value for v in Verdict}
    back = from_json_dict(d)
    assert back == comp or to_json_dict(back) == d
    assert render_markdown(back) == render_markdown(comp)


def test_public_compare_takes_results_and_arrays():
    import evalsuite
    from evalsuite.core.errors import UsageError

    a, b = _pair(120, 0.8, 0.7)
    assert a.result is not None and a.arrays is not None and b.result is not None and b.arrays is not None
    comp = evalsuite.compare(
        [(a.result, a.arrays), (b.result, b.arrays)], names=["dense", "erk"], settings=FAST
    )
    assert comp.reference == "dense" and comp.others() == ["erk"]
    assert comp.row("accuracy").deltas["erk"].delta == pytest.approx(
        b.result.metrics["accuracy"] - 0.0 - a.result.metrics["accuracy"]
    )
    with pytest.raises(UsageError, match="not both"):
        evalsuite.compare([a, b], groups={"x": [a]})
