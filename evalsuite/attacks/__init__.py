"""Adversarial robustness on top of torchattacks: FGSM and PGD (L-inf, L2) with early retirement,
eps cascades and sanity checks. Images in [0, 1], eps in pixel units, the model attacked in eval mode."""

from evalsuite.attacks.config import ATTACKS, AttackConfig, AttackSpec, parse_eps
from evalsuite.attacks.engines import MultiEpsFGSM, RetiringPGD, pgd_with_retirement, start_noise
from evalsuite.attacks.robust import AttackOutcome, RobustnessResult, run_attacks, sanity_flags

__all__ = [
    "ATTACKS",
    "AttackConfig",
    "AttackOutcome",
    "AttackSpec",
    "MultiEpsFGSM",
    "RetiringPGD",
    "RobustnessResult",
    "parse_eps",
    "pgd_with_retirement",
    "run_attacks",
    "sanity_flags",
    "start_noise",
]
