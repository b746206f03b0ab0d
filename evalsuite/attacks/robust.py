"""Robust accuracy of one model over a list of attack configs, with sanity checks.

An example is robust at (attack, eps) only if it is clean-correct and no iterate of the attack fooled it.
PGD walks each eps list upward and attacks at eps_k only the examples that survived eps_{k-1} (an
adversarial example inside a small ball lies inside every larger one), and an L-inf PGD result also
counts the examples FGSM fooled at the same eps, so it is the worst case over our L-inf attacks.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from evalsuite.attacks.config import ATTACKS, AttackConfig
from evalsuite.attacks.engines import MultiEpsFGSM, RetiringPGD, start_noise
from evalsuite.core.errors import UsageError
from evalsuite.core.results import eps_name

log = logging.getLogger(__name__)

Key = tuple[str, float]


@dataclass(frozen=True)
class AttackOutcome:
    """One (attack, eps) cell. Masks are CPU bool [N] over the full input set."""

    attack: str
    eps: float
    robust: Tensor
    """Clean-correct and never fooled; for pgd_linf also not fooled by FGSM at this eps."""
    own_robust: Tensor
    """Robust against this attack's own iterates (and the cascade below this eps), before folding in FGSM."""
    attacked: int
    """Examples the attack ran on after the cascade removed the already-fooled."""
    example_grads: int
    """Rows backpropagated: the cost (plain PGD-10 on N examples costs 10 N); 0 for AutoAttack, whose
    package does not count them."""
    flags: tuple[str, ...] = ()
    fooled_by: Mapping[str, Tensor] = field(default_factory=dict)
    """AutoAttack only: sub-attack -> [N] bool, the examples that sub-attack fooled first."""

    @property
    def accuracy(self) -> float:
        """Fraction of examples still robust in this cell; NaN for an empty set."""
        return int(self.robust.sum()) / self.robust.numel() if self.robust.numel() else float("nan")


@dataclass(frozen=True)
class RobustnessResult:
    """Everything ``run_attacks`` found: per-(attack, eps) outcomes, the inputs that shaped them, flags."""

    outcomes: dict[Key, AttackOutcome]
    clean_correct: Tensor
    configs: tuple[AttackConfig, ...]

    @property
    def robust(self) -> dict[Key, Tensor]:
        """(attack, eps) -> robust mask [N] bool."""
        return {k: o.robust for k, o in self.outcomes.items()}

    @property
    def clean_accuracy(self) -> float:
        """Fraction of examples the model classifies correctly unattacked; NaN for an empty set."""
        n = self.clean_correct.numel()
        return int(self.clean_correct.sum()) / n if n else float("nan")

    def accuracy(self, attack: str, eps: float) -> float:
        """Robust accuracy of the (attack, eps) cell."""
        return self.outcomes[(attack, eps)].accuracy

    @property
    def flags(self) -> list[str]:
        """Every sanity flag as ``"attack@eps: message"``; empty when all checks pass."""
        return [f"{o.attack}@{eps_label(o.eps)}: {f}" for o in self.outcomes.values() for f in o.flags]

    def _fgsm_only(self, o: AttackOutcome) -> dict[str, int]:
        """``{"fgsm_only": k}`` for a pgd_linf cell: examples FGSM fools that PGD's own iterates do not."""
        fgsm = self.outcomes.get(("fgsm", o.eps))
        spec = ATTACKS.get(o.attack)
        if fgsm is None or not spec.iterative or spec.engine != "torchattacks" or spec.norm != "linf":
            return {}
        return {"fgsm_only": int((o.own_robust & ~fgsm.robust).sum())}

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON: configs, clean accuracy and one row per (attack, eps); no tensors."""
        return {
            "clean_accuracy": self.clean_accuracy,
            "n": int(self.clean_correct.numel()),
            "configs": [dataclasses.asdict(c) for c in self.configs],
            "results": [
                {
                    "attack": o.attack,
                    "eps": o.eps,
                    "robust_accuracy": o.accuracy,
                    "attacked": o.attacked,
                    "example_grads": o.example_grads,
                    "flags": list(o.flags),
                    **self._fgsm_only(o),
                    **(
                        {"fooled_by": {k: int(v.sum()) for k, v in o.fooled_by.items()}}
                        if o.fooled_by
                        else {}
                    ),
                }
                for o in self.outcomes.values()
            ],
        }


@contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _model_device(model: nn.Module, device: str | torch.device | None) -> torch.device:
    param = next(iter(model.parameters()), None)
    have = param.device if param is not None else torch.device("cpu")
    if device is None:
        return have
    want = torch.device(device)
    same_index = want.index is None or have.index is None or want.index == have.index
    if want.type != have.type or not same_index:
        raise UsageError(f"the model is on {have} but device={want}; move the model first")
    return have


def _check_inputs(x: Tensor, y: Tensor, clean_correct: Tensor | None, batch_size: int) -> None:
    if x.ndim != 4 or not x.is_floating_point():
        raise UsageError(f"images must be float [N, C, H, W], got {x.dtype} of shape {tuple(x.shape)}")
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise UsageError(f"{x.shape[0]} images but labels of shape {tuple(y.shape)}")
    if x.numel() and (float(x.min()) < 0 or float(x.max()) > 1):
        raise UsageError("images must lie in [0, 1]; the model normalizes inside")
    if clean_correct is not None and (clean_correct.dtype != torch.bool or clean_correct.shape != y.shape):
        raise UsageError(f"clean_correct must be bool of shape {tuple(y.shape)}")
    if batch_size < 1:
        raise UsageError(f"batch_size must be >= 1, got {batch_size}")


def _chunks(index: Tensor, batch_size: int) -> Iterator[Tensor]:
    yield from torch.split(index, batch_size)


def _take(t: Tensor, index: Tensor, dev: torch.device) -> Tensor:
    """Rows ``index`` (CPU) of ``t`` (wherever the caller keeps it) on ``dev``; one batch at a time."""
    return t[index.to(t.device)].to(dev)


@torch.no_grad()
def _correct(
    model: nn.Module, x: Tensor, y: Tensor, index: Tensor, batch_size: int, dev: torch.device
) -> Tensor:
    """[len(index)] bool: the model classifies x[index] correctly."""
    out = [
        model(_take(x, i, dev)).argmax(dim=1).cpu() == y[i.to(y.device)].cpu()
        for i in _chunks(index, batch_size)
    ]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.bool)


def run_attacks(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    clean_correct: Tensor | None,
    configs: Sequence[AttackConfig],
    batch_size: int = 256,
    device: str | torch.device | None = None,
    seed: int | None = None,
    example_ids: Tensor | None = None,
    on_attack_done: Callable[[str, int], None] | None = None,
) -> RobustnessResult:
    """Robust masks for every (attack, eps) in ``configs``.

    model: takes [B, C, H, W] in [0, 1], normalizes inside; attacked in eval mode (restored after), never
    moved: it must already be on ``device`` (default: wherever its parameters are).
    x [N, C, H, W] in [0, 1] and y [N] stay where they are (CPU or device); ``batch_size`` rows at a time are
    copied to the device. Masks come back on the CPU.
    clean_correct [N] bool, or None to compute it here. Only clean-correct examples are attacked.
    seed, if given, replaces every config's seed. Random starts for example i depend only on
    (seed, attack, eps, restart, example_ids[i]), so results do not depend on batch_size, on global RNG
    state, or (with ``example_ids`` = positions in the full split) on which shard an example ran in.
    example_ids [N] int, default ``arange(N)``. ``on_attack_done(name, n_eps)`` is called after each
    attack (for progress bars).
    """
    if not configs:
        raise UsageError("no attacks configured")
    cfgs = tuple(dataclasses.replace(c, seed=seed) if seed is not None else c for c in configs)
    names = [c.name for c in cfgs]
    if len(set(names)) != len(names):
        raise UsageError(f"each attack may appear once, got {names}")
    _check_inputs(x, y, clean_correct, batch_size)
    dev = _model_device(model, device)
    x, y = x.detach(), y.detach().long()
    everyone = torch.arange(x.shape[0])
    ids = everyone if example_ids is None else example_ids.detach().cpu().long()
    if ids.shape != everyone.shape:
        raise UsageError(f"example_ids must have shape {tuple(everyone.shape)}, got {tuple(ids.shape)}")

    outcomes: dict[Key, AttackOutcome] = {}
    with _eval_mode(model):
        if clean_correct is None:
            clean_correct = _correct(model, x, y, everyone, batch_size, dev)
        clean_correct = clean_correct.cpu()
        fgsm_robust: dict[float, Tensor] = {}
        # FGSM first: PGD L-inf folds its results in at equal eps; AutoAttack last: with cascade it
        # skips what the others fooled
        for cfg in sorted(cfgs, key=lambda c: (c.spec.iterative, c.spec.engine == "autoattack")):
            if cfg.spec.engine == "autoattack":
                prior = outcomes if cfg.cascade else {}
                outcomes.update(_run_autoattack(model, x, y, clean_correct, cfg, batch_size, dev, prior))
                if on_attack_done is not None:
                    on_attack_done(cfg.name, len(cfg.eps))
            elif cfg.spec.iterative:
                outcomes.update(_run_pgd(model, x, y, clean_correct, cfg, fgsm_robust, batch_size, dev, ids))
                if on_attack_done is not None:
                    on_attack_done(cfg.name, len(cfg.eps))
            else:
                fgsm = _run_fgsm(model, x, y, clean_correct, cfg, batch_size, dev)
                fgsm_robust.update({o.eps: o.robust for o in fgsm.values()})
                outcomes.update(fgsm)
                if on_attack_done is not None:
                    on_attack_done(cfg.name, len(cfg.eps))

    flagged = sanity_flags(outcomes, clean_correct, fgsm_robust, {c.name: c for c in cfgs})
    outcomes = {k: dataclasses.replace(o, flags=flagged.get(k, ())) for k, o in outcomes.items()}
    result = RobustnessResult(outcomes=outcomes, clean_correct=clean_correct, configs=cfgs)
    for f in result.flags:
        log.warning("attack sanity: %s", f)
    return result


def _run_fgsm(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    clean_correct: Tensor,
    cfg: AttackConfig,
    batch_size: int,
    dev: torch.device,
) -> dict[Key, AttackOutcome]:
    atk = MultiEpsFGSM(model, cfg.eps)
    robust = clean_correct.unsqueeze(0).repeat(len(cfg.eps), 1)
    index = clean_correct.nonzero().flatten()
    for i in _chunks(index, batch_size):
        robust[:, i] &= ~atk.fooled(_take(x, i, dev), _take(y, i, dev)).cpu()
    n = int(index.numel())
    # one gradient serves every eps: charge it to the first row, so summing example_grads gives the cost
    return {
        (cfg.name, e): AttackOutcome(
            cfg.name, e, robust[k], robust[k], attacked=n, example_grads=n if k == 0 else 0
        )
        for k, e in enumerate(cfg.eps)
    }


def _run_autoattack(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    clean_correct: Tensor,
    cfg: AttackConfig,
    batch_size: int,
    dev: torch.device,
    prior: Mapping[Key, AttackOutcome] | None = None,
) -> dict[Key, AttackOutcome]:
    """The packaged AutoAttack at each eps on every clean-correct example.

    By default no cascade: each eps is the package's own evaluation of the clean-correct set, so every
    cell is the number the package reports for the same seed and batch size.

    With ``cfg.cascade`` an example is attacked only if nothing has fooled it yet: not an outcome in
    ``prior`` of the same norm at this eps or a smaller one (FGSM, PGD: their adversarial images lie in
    this eps ball too), nor this AutoAttack at a smaller eps. Those examples are counted fooled (array
    ``fooled_by/earlier``) and the package runs on the rest. The cell is then the robust accuracy against
    the union of the attacks (below the package's own number only where the other attacks found what
    AutoAttack missed, or where the package's per-batch reseeding draws differently on the smaller set),
    and far cheaper on a net PGD already breaks. "AutoAttack <= PGD" then holds by construction.
    """
    from evalsuite.attacks.autoattack import make_adversary, run_autoattack

    out: dict[Key, AttackOutcome] = {}
    norm = cfg.spec.norm
    for eps in cfg.eps:
        target = clean_correct
        earlier = torch.zeros_like(clean_correct)
        if cfg.cascade:
            standing = clean_correct.clone()
            for (name, e), o in (*(prior or {}).items(), *out.items()):
                if ATTACKS.get(name).norm == norm and (e < eps or (e == eps and name != cfg.name)):
                    standing &= o.robust
            earlier = clean_correct & ~standing
            target = standing
        if eps == 0:
            # AutoAttack at eps 0 returns the clean images: one forward decides, as for PGD
            index = clean_correct.nonzero().flatten()
            own = clean_correct.clone()
            own[index] = _correct(model, x, y, index, batch_size, dev)
            out[(cfg.name, eps)] = AttackOutcome(cfg.name, eps, own, own, int(index.numel()), 0)
            continue
        adversary = make_adversary(model, eps, norm, cfg.version or "standard", cfg.seed, dev)
        res = run_autoattack(adversary, x, y, target, batch_size, dev)
        fooled_by = {"earlier": earlier, **res.fooled_by} if cfg.cascade else dict(res.fooled_by)
        out[(cfg.name, eps)] = AttackOutcome(
            cfg.name, eps, res.robust, res.robust, res.attacked, 0, fooled_by=fooled_by
        )
    return out


def _run_pgd(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    clean_correct: Tensor,
    cfg: AttackConfig,
    fgsm_robust: dict[float, Tensor],
    batch_size: int,
    dev: torch.device,
    ids: Tensor,
) -> dict[Key, AttackOutcome]:
    norm = cfg.spec.norm
    out: dict[Key, AttackOutcome] = {}
    survivors = clean_correct.clone()
    for eps in cfg.eps:
        own = survivors.clone()
        attacked = int(own.sum())
        grads = 0
        if eps == 0:
            # Every PGD iterate at eps 0 is exactly the clean image (the step is projected back to it), so
            # one forward decides; no gradient is needed.
            index = own.nonzero().flatten()
            own[index] = _correct(model, x, y, index, batch_size, dev)
        else:
            atk = RetiringPGD(model, eps, cfg.alpha(eps), cfg.steps, norm, cfg.random_start, retire=True)
            for restart in range(cfg.restarts):
                index = own.nonzero().flatten()
                key = f"{cfg.seed}/{cfg.name}/{eps!r}/{restart}"
                for i in _chunks(index, batch_size):
                    start = (
                        start_noise(norm, eps, ids[i], x.shape[1:], key).to(dev) if cfg.random_start else None
                    )
                    atk(_take(x, i, dev), _take(y, i, dev), start=start)
                    assert atk.fooled is not None
                    own[i[atk.fooled.cpu()]] = False
                    grads += atk.example_grads
        robust = own & fgsm_robust[eps] if norm == "linf" and eps in fgsm_robust else own
        out[(cfg.name, eps)] = AttackOutcome(cfg.name, eps, robust, own, attacked, example_grads=grads)
        survivors = robust
    return out


PGD_REACH_NEEDED = {True: 2.0, False: 1.0}
"""Travel, in units of eps, a PGD L-inf run needs to reach any corner of the ball (FGSM's point is one):
from a random start a coordinate may sit at -eps and FGSM's corner at +eps (2 eps); from the clean image,
eps. Keyed by ``random_start``."""


MASKING_MIN_FRACTION = 0.02
MASKING_MIN_COUNT = 3
"""A PGD that can reach FGSM's corner still ends elsewhere on a few examples: it climbs the loss, and a
higher loss is not always a wrong label. Measured with PGD-10 at eps/4: none of about 2,100 attacked
(example, eps) pairs on the committed digits nets (2/255, 8/255) and the akamaster CIFAR ResNet-20 (1-8/255),
but 2 of 364 and 2 of 175 on the tests' small MLP at eps 0.1 and 0.2. So "possible gradient masking" needs at
least 3 examples and 2 % of those attacked; fewer are recorded (``fgsm_only`` in the details), not flagged.
A PGD too short to reach the corner is flagged at any count: the cause is known, and a larger step size
fixes it at no cost."""


def fgsm_only_flag(cfg: AttackConfig | None, eps: float, count: int, attacked: int) -> str | None:
    """The flag for ``count`` examples FGSM fools at ``eps`` and PGD L-inf leaves standing, or None."""
    if count == 0:
        return None
    weak = cfg is not None and cfg.steps * cfg.rel_stepsize < PGD_REACH_NEEDED[cfg.random_start]
    if not weak and count < max(MASKING_MIN_COUNT, MASKING_MIN_FRACTION * attacked):
        return None
    return fgsm_only_message(cfg, eps, count, attacked)


def fgsm_only_message(cfg: AttackConfig | None, eps: float, count: int, attacked: int) -> str:
    """The flag for an L-inf PGD that leaves standing ``count`` examples FGSM fools at ``eps``.

    When the steps cannot travel as far as FGSM's corner the cause is the budget, not the model: say so
    and how to fix it. Otherwise FGSM beating PGD is the textbook symptom of gradient masking.
    """
    name = cfg.name if cfg is not None else "pgd_linf"
    examples = f"{count} example{'s' if count != 1 else ''}"
    what = (
        f"fgsm fools {examples} that {name} leaves standing at eps {eps_label(eps)} (of {attacked} attacked)"
    )
    if cfg is None:
        return f"possible gradient masking: {what}"
    reach = cfg.steps * cfg.rel_stepsize
    need = PGD_REACH_NEEDED[cfg.random_start]
    budget = f"{cfg.steps} steps x {cfg.rel_stepsize:g} eps"
    if reach < need:
        start = "a random start" if cfg.random_start else "the clean image"
        return (
            f"weak PGD (not gradient masking): {what}; {budget} = {reach:g} eps cannot reach FGSM's corner "
            f"({need:g} eps from {start}): raise --pgd-steps or --pgd-step-size"
        )
    return f"possible gradient masking: {what} with {budget}"


AA_OVER_PGD_MIN_COUNT = 3
AA_OVER_PGD_Z = 2.0
"""AutoAttack is the stronger attack, but it is a different random attack: on a given example PGD may win.
"AutoAttack <= PGD" fails only when the examples AutoAttack leaves standing and PGD fools (b) outnumber the
reverse (c) beyond count noise: b - c >= max(3, 2 sqrt(b + c)), a one-sided sign test at about z = 2 on
the discordant pairs."""

# the PGD attack of the same threat model that each AutoAttack is checked against
AA_PGD_TWIN = {"autoattack": "pgd_linf", "autoattack_l2": "pgd_l2"}


def aa_over_pgd_flag(aa: AttackOutcome, pgd: AttackOutcome) -> str | None:
    """The flag when AutoAttack's robust accuracy exceeds PGD's at the same eps beyond count noise."""
    b = int((aa.robust & ~pgd.robust).sum())
    c = int((pgd.robust & ~aa.robust).sum())
    if b - c < max(AA_OVER_PGD_MIN_COUNT, AA_OVER_PGD_Z * math.sqrt(b + c)):
        return None
    return (
        f"AutoAttack <= PGD fails: {aa.attack} robust accuracy {aa.accuracy:.4f} > {pgd.attack} "
        f"{pgd.accuracy:.4f} at eps {eps_label(aa.eps)} ({b} examples {aa.attack} leaves standing that "
        f"{pgd.attack} fools, {c} the other way): AutoAttack should be the stronger attack"
    )


def eps_label(eps: float) -> str:
    """8/255 -> '8/255' where eps is a whole number of 255ths, else the decimal."""
    return eps_name(eps).replace("_", "/")


def sanity_flags(
    outcomes: dict[Key, AttackOutcome],
    clean_correct: Tensor,
    fgsm_robust: dict[float, Tensor],
    configs: dict[str, AttackConfig] | None = None,
) -> dict[Key, tuple[str, ...]]:
    """Checks that hold for any sound attack; a failure is a bug, a too-small budget or gradient masking.

    * eps 0 reproduces the clean-correct set;
    * robust implies clean-correct;
    * PGD L-inf on its own fools every example FGSM fools at equal eps. The flag counts the examples where
      it does not (they are still counted fooled in pgd_linf's robust accuracy) and, given the attack's
      ``configs``, says whether its steps could reach FGSM's point at all ("weak PGD", any count) or could
      and did not ("possible gradient masking", above ``MASKING_MIN_COUNT`` and ``MASKING_MIN_FRACTION``);
    * robust accuracy does not rise with eps (by construction for PGD; FGSM and AutoAttack can fail it);
    * AutoAttack <= PGD: AutoAttack's robust accuracy does not exceed that of PGD of the same norm at the
      same eps beyond count noise (``aa_over_pgd_flag``).
    """
    n = max(int(clean_correct.numel()), 1)
    clean_acc = float(clean_correct.sum()) / n
    flags: dict[Key, list[str]] = {k: [] for k in outcomes}
    by_attack: dict[str, list[AttackOutcome]] = {}
    for key, o in outcomes.items():
        by_attack.setdefault(o.attack, []).append(o)
        if o.eps == 0 and not torch.equal(o.robust, clean_correct):
            flags[key].append(f"eps 0 gives accuracy {o.accuracy:.4f}, clean is {clean_acc:.4f}")
        extra = int((o.robust & ~clean_correct).sum())
        if extra:
            flags[key].append(f"{extra} examples robust but not clean-correct")
        spec = ATTACKS.get(o.attack)
        if spec.iterative and spec.engine == "torchattacks" and spec.norm == "linf" and o.eps in fgsm_robust:
            fgsm_only = int((o.own_robust & ~fgsm_robust[o.eps]).sum())
            msg = fgsm_only_flag((configs or {}).get(o.attack), o.eps, fgsm_only, o.attacked)
            if msg:
                flags[key].append(msg)
        twin = outcomes.get((AA_PGD_TWIN.get(o.attack, ""), o.eps))
        if twin is not None:
            msg = aa_over_pgd_flag(o, twin)
            if msg:
                flags[key].append(msg)
    for cells in by_attack.values():
        cells.sort(key=lambda o: o.eps)
        for lo, hi in itertools.pairwise(cells):
            if hi.accuracy > lo.accuracy:
                flags[(hi.attack, hi.eps)].append(
                    f"accuracy rises with eps: {lo.accuracy:.4f} at {eps_label(lo.eps)} -> {hi.accuracy:.4f}"
                )
    return {k: tuple(v) for k, v in flags.items() if v}
