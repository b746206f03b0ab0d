"""Adversarial robustness on top of torchattacks: FGSM and PGD (L-inf, L2) with early retirement,
eps cascades and sanity checks. Images in [0, 1], eps in pixel units, the model attacked in eval mode."""

from typing import Any

from evalsuite.attacks.config import ATTACKS, AttackConfig, AttackSpec, parse_eps

# the engines subclass torchattacks' Attack, so importing them imports torchattacks (about a second):
# they load on first use, and reading the registry or parsing eps stays cheap
_LAZY = {
    "MultiEpsFGSM": "engines",
    "RetiringPGD": "engines",
    "pgd_with_retirement": "engines",
    "start_noise": "engines",
    "AttackOutcome": "robust",
    "RobustnessResult": "robust",
    "run_attacks": "robust",
    "sanity_flags": "robust",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"evalsuite.attacks.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'evalsuite.attacks' has no attribute {name!r}")


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
