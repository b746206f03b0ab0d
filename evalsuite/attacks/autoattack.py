"""AutoAttack (Croce & Hein 2020) as packaged by its authors (``pyautoattack``), on clean-correct examples.

The package's ``run_standard_evaluation`` is run, not re-implemented: each sub-attack of the version is one
call of it on the examples still standing, with the package's own batching and seeding. That gives exactly
the package's result on the full set with the same seed and batch size (the package attacks only what the
model classifies correctly, in order, ``batch_size`` at a time, and reseeds every batch from ``seed``), and
it tells which sub-attack fooled each example, which a single call does not report.

The package reseeds per batch, so an example's outcome depends on which examples share its batch: a run
is reproducible for a fixed selection, batch size and seed, and shards are AutoAttack on each shard.
"""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from evalsuite.attacks.config import AA_VERSIONS, Norm
from evalsuite.core.errors import UsageError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'evalsuite[autoattack]'"
# every sub-attack the package knows, in a fixed order (the fooled_by arrays are named after them)
SUB_ATTACKS: tuple[str, ...] = ("apgd-ce", "apgd-dlr", "apgd-t", "fab", "fab-t", "square")

Adversary = Any
"""A ``pyautoattack.AutoAttack`` (the package ships no type information)."""


def require_autoattack() -> None:
    """UsageError naming the install command when ``pyautoattack`` is missing; cheap (no import)."""
    if importlib.util.find_spec("pyautoattack") is None:
        raise UsageError(f"the autoattack attacks need the pyautoattack package: {INSTALL_HINT}")


def make_adversary(
    model: nn.Module, eps: float, norm: Norm, version: str, seed: int, device: torch.device | str
) -> Adversary:
    """The package's ``AutoAttack`` for one eps, configured for ``version`` (standard | plus | rand)."""
    require_autoattack()
    from pyautoattack import AutoAttack

    if version not in AA_VERSIONS:
        raise UsageError(f"unknown AutoAttack version {version!r}; choose from {', '.join(AA_VERSIONS)}")
    return AutoAttack(
        model,
        eps=eps,
        norm="Linf" if norm == "linf" else "L2",
        seed=seed,
        version=version,
        device=str(device),
    )


@dataclass(frozen=True)
class AutoAttackOutcome:
    """One eps. Masks are CPU bool [N] over the examples passed in."""

    robust: Tensor
    fooled_by: dict[str, Tensor]
    """Sub-attack -> [N] bool: the examples that sub-attack fooled first (the version's sub-attacks only)."""
    attacked: int
    """Examples attacked (the clean-correct ones)."""
    sub_attacks: tuple[str, ...]


def run_autoattack(
    adversary: Adversary,
    x: Tensor,
    y: Tensor,
    clean_correct: Tensor,
    batch_size: int,
    device: torch.device,
    on_sub_attack: Callable[[str, int], None] | None = None,
) -> AutoAttackOutcome:
    """Run ``adversary`` (``make_adversary`` or any ``pyautoattack.AutoAttack``) on ``x[clean_correct]``.

    x [N, C, H, W] in [0, 1], y [N], clean_correct [N] bool (CPU). The package's sub-attacks run one
    ``run_standard_evaluation`` call each, on the survivors of the previous ones, with ``batch_size``. The
    global RNG (which the package reseeds) is restored afterwards. ``on_sub_attack(name, fooled)`` is called
    after each sub-attack.
    """
    subs: Sequence[str] = list(adversary.attacks_to_run or ())
    unknown = [s for s in subs if s not in SUB_ATTACKS]
    if unknown:
        raise UsageError(f"unknown AutoAttack sub-attack(s) {unknown}; the package knows {list(SUB_ATTACKS)}")
    clean_correct = clean_correct.cpu().bool()
    standing = clean_correct.clone()
    fooled_by = {s: torch.zeros_like(clean_correct) for s in subs}
    verbose = adversary.verbose
    # the package logs every batch at DEBUG and prints nothing; its checks warn through its own logger
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        try:
            for sub in subs:
                index = standing.nonzero().flatten()
                if index.numel() == 0:
                    break
                adversary.attacks_to_run = [sub]
                # contiguous: the package's zero-gradient check .view()s the gradient, which fails on the
                # channels-last strides of images decoded from HWC arrays
                _, y_adv = adversary.run_standard_evaluation(
                    x[index].to(device).contiguous(), y[index].to(device), batch_size=batch_size
                )
                hit = index[(y_adv.cpu() != y[index].cpu())]
                fooled_by[sub][hit] = True
                standing[hit] = False
                if on_sub_attack is not None:
                    on_sub_attack(sub, int(hit.numel()))
        finally:
            adversary.attacks_to_run = list(subs)
            adversary.verbose = verbose
    return AutoAttackOutcome(standing, fooled_by, int(clean_correct.sum()), tuple(subs))
