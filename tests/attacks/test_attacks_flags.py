"""The FGSM-vs-PGD sanity flag names attack, eps and the examples FGSM fools that PGD leaves standing, and
tells a too-small PGD budget from gradient masking; FGSM's config records what FGSM does."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from evalsuite.attacks import AttackConfig, AttackOutcome, run_attacks, sanity_flags
from evalsuite.attacks.robust import fgsm_only_message
from evalsuite.data import load_dataset
from evalsuite.models.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parents[2]
EPS = (2 / 255, 8 / 255)


def _cell(eps: float, own: list[bool]) -> AttackOutcome:
    t = torch.tensor(own)
    return AttackOutcome("pgd_linf", eps, t, t, attacked=len(own), example_grads=0)


WEAK = {"pgd_linf": AttackConfig("pgd_linf", (0.1,), steps=5)}
SOUND = {"pgd_linf": AttackConfig("pgd_linf", (0.1,), steps=10)}


def test_flag_counts_the_examples_fgsm_fools_and_pgd_leaves_standing() -> None:
    cc = torch.ones(6, dtype=torch.bool)
    # both attacks leave 3 of 6 standing, so comparing accuracies sees nothing, yet PGD misses example 0
    fgsm = torch.tensor([False, True, False, True, False, True])
    own = [True, False, False, True, False, True]
    flags = sanity_flags({("pgd_linf", 0.1): _cell(0.1, own)}, cc, {0.1: fgsm}, WEAK)
    (msg,) = flags[("pgd_linf", 0.1)]
    assert "fgsm fools 1 example that pgd_linf leaves standing at eps 0.1 (of 6 attacked)" in msg
    # PGD fools everything FGSM fools: no flag, whatever the accuracies
    flags = sanity_flags({("pgd_linf", 0.1): _cell(0.1, [False] * 5 + [True])}, cc, {0.1: fgsm}, WEAK)
    assert flags == {}


@pytest.mark.parametrize(
    ("count", "attacked", "configs", "fires"),
    [
        (1, 400, WEAK, True),  # a budget that cannot reach FGSM's corner: flagged at any count
        (2, 100, SOUND, False),  # a sound PGD missing 2: below the 3-example floor
        (7, 400, SOUND, False),  # 1.75 % < 2 %
        (8, 400, SOUND, True),  # 2 %: possible gradient masking
        (3, 100, None, True),  # no config given: judged as masking
    ],
)
def test_masking_flag_needs_a_meaningful_count(count: int, attacked: int, configs: dict | None, fires: bool):
    cc = torch.ones(attacked, dtype=torch.bool)
    fgsm = torch.ones(attacked, dtype=torch.bool)
    fgsm[:count] = False
    flags = sanity_flags({("pgd_linf", 0.1): _cell(0.1, [True] * attacked)}, cc, {0.1: fgsm}, configs)
    assert bool(flags) == fires, flags
    if fires:
        assert f"fgsm fools {count} example" in flags[("pgd_linf", 0.1)][0]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"steps": 5, "rel_stepsize": 0.25}, "weak PGD (not gradient masking)"),  # 1.25 eps < 2 eps
        ({"steps": 7, "rel_stepsize": 0.25}, "weak PGD"),  # 1.75 < 2
        ({"steps": 8, "rel_stepsize": 0.25}, "possible gradient masking"),  # 2.0: can reach any corner
        ({"steps": 5, "rel_stepsize": 0.4}, "possible gradient masking"),
        ({"steps": 3, "rel_stepsize": 0.25, "random_start": False}, "weak PGD"),  # 0.75 < 1 from x
        ({"steps": 4, "rel_stepsize": 0.25, "random_start": False}, "possible gradient masking"),
    ],
)
def test_message_tells_a_small_budget_from_masking(kwargs: dict, needle: str) -> None:
    cfg = AttackConfig("pgd_linf", (8 / 255,), **kwargs)
    msg = fgsm_only_message(cfg, 8 / 255, 3, 400)
    assert needle in msg and "8/255" in msg and "3 examples" in msg and "of 400 attacked" in msg
    assert ("--pgd-steps" in msg) == needle.startswith("weak")


@pytest.fixture(scope="module")
def committed() -> list[tuple[torch.nn.Module, torch.Tensor, torch.Tensor]]:
    test = load_dataset("digits", "test")
    out = []
    for name in ("digits-dense.pt", "digits-erk-0.1.pt"):
        model = load_checkpoint(REPO / "checkpoints" / name)[0].eval()
        out.append((model, test.images(), test.y))
    return out


def _run(data: tuple, steps: int, rel: float) -> list[str]:
    model, x, y = data
    cfgs = [AttackConfig("fgsm", EPS), AttackConfig("pgd_linf", EPS, steps=steps, rel_stepsize=rel)]
    result = run_attacks(model, x, y, None, cfgs, seed=0)
    rows = {(r["attack"], r["eps"]): r for r in result.to_dict()["results"]}
    assert "fgsm_only" in rows[("pgd_linf", EPS[1])] and "fgsm_only" not in rows[("fgsm", EPS[1])]
    return result.flags


def test_smoke_settings_flag_a_weak_pgd_not_masking(committed: list) -> None:
    # benchmarks/smoke.toml runs PGD-5 at eps/4: from a random start it cannot reach FGSM's corner, and on
    # the committed digits nets FGSM fools a few examples at 8/255 that it leaves standing (5 and 6 of
    # about 440 when measured)
    for data in committed:
        flags = _run(data, steps=5, rel=0.25)
        assert any(f.startswith("pgd_linf@8/255: weak PGD (not gradient masking)") for f in flags), flags
        assert not any("possible gradient masking" in f for f in flags), flags


@pytest.mark.parametrize(("steps", "rel"), [(5, 0.4), (10, 0.25)])
def test_enough_budget_and_the_flag_is_silent(committed: list, steps: int, rel: float) -> None:
    # the same nets with a PGD that can reach the corner: it fools every example FGSM fools
    for data in committed:
        assert _run(data, steps, rel) == []


def test_fgsm_config_records_one_step_without_random_start(committed: list) -> None:
    cfg = AttackConfig("fgsm", EPS, steps=10, rel_stepsize=0.25, restarts=3, random_start=True)
    assert (cfg.steps, cfg.rel_stepsize, cfg.restarts, cfg.random_start) == (1, 1.0, 1, False)
    model, x, y = committed[0]
    cfgs = [cfg, AttackConfig("pgd_linf", EPS, steps=10)]
    rec = run_attacks(model, x[:40], y[:40], None, cfgs).to_dict()["configs"]
    assert rec[0]["name"] == "fgsm" and rec[0]["steps"] == 1 and rec[0]["random_start"] is False
    assert rec[1]["name"] == "pgd_linf" and rec[1]["steps"] == 10 and rec[1]["random_start"] is True
