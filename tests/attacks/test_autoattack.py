"""AutoAttack through evalsuite against the reference package (pyautoattack) run directly on all examples.

The package's standard version runs minutes on CPU (Square's 5,000 queries on every survivor), so the exact
checks use its ``custom`` version with all four standard sub-attacks at small budgets, and one standard run
stays on a handful of examples.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from pyautoattack import AutoAttack
from torch import nn

from evalsuite.attacks import AttackConfig, run_attacks
from evalsuite.attacks.autoattack import make_adversary, run_autoattack
from evalsuite.attacks.robust import AttackOutcome, aa_over_pgd_flag, sanity_flags
from evalsuite.core.errors import UsageError

Digits = tuple[nn.Module, torch.Tensor, torch.Tensor]
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    # thousands of tiny forward passes (Square, FAB): intra-op threads only add overhead, many-fold on a
    # loaded machine
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _small(model: nn.Module, eps: float, norm: str, seed: int) -> AutoAttack:
    """The four standard sub-attacks at small budgets, as the package allows with version='custom'."""
    aa = AutoAttack(
        model,
        attacks=["apgd-ce", "apgd-t", "fab-t", "square"],
        eps=eps,
        norm=norm,
        seed=seed,
        version="custom",
        device="cpu",
    )
    aa.apgd.n_iter = 10
    aa.apgd_targeted.n_iter = 10
    aa.apgd_targeted.n_target_classes = 3
    aa.fab.n_iter = 10
    aa.fab.n_target_classes = 3
    aa.square.n_queries = 100
    return aa


@pytest.mark.parametrize(("norm", "eps"), [("Linf", 0.06), ("L2", 0.6)])
def test_equals_package_on_all_examples(digits_model: Digits, norm: str, eps: float) -> None:
    model, x, y = digits_model
    x, y = x[:96], y[:96]
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    assert not correct.all()  # the package must skip the misclassified examples as we do
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    ours = run_autoattack(_small(model, eps, norm, 7), x, y, correct, 32, CPU)
    assert torch.equal(torch.random.get_rng_state(), before)  # the package's reseeding does not leak

    _, y_adv = _small(model, eps, norm, 7).run_standard_evaluation(x, y, batch_size=32)
    theirs = (y_adv == y).cpu()
    assert torch.equal(ours.robust, theirs)
    n_robust = int(ours.robust.sum())
    assert 0 < n_robust < int(correct.sum())  # some survive, some are fooled: the comparison means something
    hits = torch.stack(list(ours.fooled_by.values()))
    assert ours.sub_attacks == ("apgd-ce", "apgd-t", "fab-t", "square")
    assert torch.equal(hits.sum(0) == 1, correct & ~ours.robust)  # each fooled example has one sub-attack
    assert int(ours.fooled_by["apgd-ce"].sum()) > 0


def test_seeded_runs_repeat(digits_model: Digits) -> None:
    model, x, y = digits_model
    x, y = x[:64], y[:64]
    with torch.no_grad():
        correct = model(x).argmax(1) == y
    a = run_autoattack(_small(model, 0.06, "Linf", 7), x, y, correct, 32, CPU)
    b = run_autoattack(_small(model, 0.06, "Linf", 7), x, y, correct, 32, CPU)
    assert torch.equal(a.robust, b.robust)  # seeded: no clock in it
    assert all(torch.equal(a.fooled_by[k], b.fooled_by[k]) for k in a.fooled_by)


def test_standard_version_matches_package(digits_model: Digits) -> None:
    """The real standard version (APGD-CE, APGD-T, FAB-T, Square at the package's budgets) on 8 examples,
    through run_attacks with the battery's bookkeeping; eps so that a few survive to Square."""
    model, x, y = digits_model
    x, y = x[:8], y[:8]
    eps = 0.12
    cfg = AttackConfig("autoattack", (eps,), seed=3)
    assert cfg.version == "standard" and cfg.steps == 1
    res = run_attacks(model, x, y, None, [cfg], batch_size=250, seed=3)
    out = res.outcomes[("autoattack", eps)]
    _, y_adv = AutoAttack(model, eps=eps, norm="Linf", seed=3, version="standard").run_standard_evaluation(
        x, y, batch_size=250
    )
    assert torch.equal(out.robust, (y_adv == y).cpu())
    assert out.robust.any() and int(out.fooled_by["apgd-t"].sum()) > 0  # two sub-attacks decide here
    assert set(out.fooled_by) == {"apgd-ce", "apgd-t", "fab-t", "square"}
    row = res.to_dict()["results"][0]
    assert row["robust_accuracy"] == out.accuracy
    assert sum(row["fooled_by"].values()) == int((res.clean_correct & ~out.robust).sum())
    assert "fgsm_only" not in row


def test_eps_zero_is_clean(digits_model: Digits, clean_correct: torch.Tensor) -> None:
    model, x, y = digits_model
    res = run_attacks(model, x, y, clean_correct, [AttackConfig("autoattack", (0.0,))])
    assert torch.equal(res.outcomes[("autoattack", 0.0)].robust, clean_correct)
    assert res.flags == []


def test_config_versions() -> None:
    assert AttackConfig("autoattack", (0.1,), version="plus").version == "plus"
    assert AttackConfig("pgd_linf", (0.1,), version="plus").version is None
    assert AttackConfig("autoattack_l2", (0.5,)).spec.norm == "l2"
    with pytest.raises(UsageError, match="unknown AutoAttack version 'custom'"):
        AttackConfig("autoattack", (0.1,), version="custom")
    with pytest.raises(UsageError, match="unknown AutoAttack version"):
        make_adversary(nn.Linear(2, 2), 0.1, "linf", "fast", 0, "cpu")
    from evalsuite.battery import BatteryConfig

    cfgs = BatteryConfig(attacks="pgd_linf,autoattack", aa_cascade=True).attack_configs()
    assert [(c.name, c.cascade) for c in cfgs] == [("pgd_linf", False), ("autoattack", True)]
    assert not any(c.cascade for c in BatteryConfig(attacks="pgd_linf,autoattack").attack_configs())


def _cell(attack: str, robust: list[bool]) -> AttackOutcome:
    t = torch.tensor(robust)
    return AttackOutcome(attack, 0.1, t, t, attacked=len(robust), example_grads=0)


def test_aa_over_pgd_flag() -> None:
    # b = AA standing where PGD fools; c = the reverse
    pgd = _cell("pgd_linf", [False] * 10 + [True] * 10)
    assert aa_over_pgd_flag(_cell("autoattack", [False] * 10 + [True] * 10), pgd) is None
    few = _cell("autoattack", [True] * 2 + [False] * 8 + [True] * 10)  # b = 2 < 3
    assert aa_over_pgd_flag(few, pgd) is None
    many = _cell("autoattack", [True] * 6 + [False] * 4 + [True] * 10)  # b = 6 >= max(3, 2 sqrt 6)
    msg = aa_over_pgd_flag(many, pgd)
    assert msg is not None and "AutoAttack <= PGD fails" in msg and "6 examples" in msg
    noisy = _cell("autoattack", [True] * 6 + [False] * 4 + [False] * 5 + [True] * 5)  # b = 6, c = 5
    assert aa_over_pgd_flag(noisy, pgd) is None
    cc = torch.ones(20, dtype=torch.bool)
    flags = sanity_flags({("autoattack", 0.1): many, ("pgd_linf", 0.1): pgd}, cc, {})
    assert any("AutoAttack <= PGD" in f for f in flags[("autoattack", 0.1)])
    l2 = {("autoattack_l2", 0.1): _cell("autoattack_l2", many.robust.tolist()), ("pgd_linf", 0.1): pgd}
    assert ("autoattack_l2", 0.1) not in sanity_flags(l2, cc, {})  # checked against PGD of its own norm


def test_cascade_attacks_only_what_nothing_fooled_and_equals_the_package_on_those(
    digits_model: Digits,
) -> None:
    """--aa-cascade: AutoAttack runs on the clean-correct examples that PGD (at this eps or below) and
    AutoAttack at a smaller eps left standing, and on those it is exactly the package's own evaluation."""
    model, x, y = digits_model
    x, y = x[:10], y[:10]
    eps = (0.08, 0.15)
    pgd = AttackConfig("pgd_linf", eps, steps=5, seed=3)
    aa = AttackConfig("autoattack", eps, seed=3, cascade=True)
    assert AttackConfig("pgd_linf", eps, cascade=True).cascade is False  # AutoAttack only
    # listed first, run last: the cascade needs PGD's outcomes
    res = run_attacks(model, x, y, None, [aa, pgd], batch_size=250, seed=3)
    cc = res.clean_correct
    standing = cc.clone()
    for e in eps:
        standing &= res.outcomes[("pgd_linf", e)].robust
        out = res.outcomes[("autoattack", e)]
        assert torch.equal(out.fooled_by["earlier"], cc & ~standing)
        assert out.attacked == int(standing.sum()) > 0
        index = standing.nonzero().flatten()
        _, y_adv = AutoAttack(model, eps=e, norm="Linf", seed=3, version="standard").run_standard_evaluation(
            x[index], y[index], batch_size=250
        )
        expected = torch.zeros_like(cc)
        expected[index] = (y_adv == y[index]).cpu()
        assert torch.equal(out.robust, expected), e
        hits = torch.stack(list(out.fooled_by.values()))
        assert torch.equal(hits.sum(0) == 1, cc & ~out.robust)  # each fooled example counted once
        standing = out.robust.clone()
    assert int(res.outcomes[("autoattack", eps[0])].fooled_by["earlier"].sum()) > 0  # PGD did fool some
    assert not any("AutoAttack <= PGD" in f for f in res.flags)
