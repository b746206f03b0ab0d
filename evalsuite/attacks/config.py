"""Attack configs and the attack registry.

Conventions: images in [0, 1] (the model normalizes inside), eps in pixel units of that range (write
``8/255`` where the literature does), the model attacked in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from torch import nn

from evalsuite.core.errors import UsageError
from evalsuite.core.registry import Registry

Norm = Literal["linf", "l2"]
Engine = Literal["torchattacks", "autoattack"]

if TYPE_CHECKING:
    from torchattacks.attack import Attack

ReferenceFactory = Callable[[nn.Module, float, float, int, bool], "Attack"]
"""``reference(model, eps, alpha, steps, random_start)``: the plain torchattacks attack we must match."""


def _torchattacks() -> Any:
    # imported when an attack is built, not when the registry is read (start-up time of every command)
    import torchattacks

    return torchattacks


@dataclass(frozen=True)
class AttackSpec:
    """What the engine needs to know about a registered attack."""

    name: str
    norm: Norm
    iterative: bool
    reference: ReferenceFactory | None = field(repr=False, compare=False)
    """The plain torchattacks attack our engine must match; None for the packaged AutoAttack (it is its own
    reference)."""
    engine: Engine = "torchattacks"


ATTACKS: Registry[AttackSpec] = Registry("attack")

ATTACKS.add(
    "fgsm",
    AttackSpec("fgsm", "linf", False, lambda m, eps, alpha, steps, rs: _torchattacks().FGSM(m, eps=eps)),
    help="FGSM, one signed-gradient step of size eps (L-inf); one backward serves every eps",
)
ATTACKS.add(
    "pgd_linf",
    AttackSpec(
        "pgd_linf",
        "linf",
        True,
        lambda m, eps, alpha, steps, rs: _torchattacks().PGD(
            m, eps=eps, alpha=alpha, steps=steps, random_start=rs
        ),
    ),
    help="PGD L-inf (torchattacks.PGD update), random start, early retirement, cascaded over eps",
)
ATTACKS.add(
    "pgd_l2",
    AttackSpec(
        "pgd_l2",
        "l2",
        True,
        lambda m, eps, alpha, steps, rs: _torchattacks().PGDL2(
            m, eps=eps, alpha=alpha, steps=steps, random_start=rs
        ),
    ),
    help="PGD L2 (torchattacks.PGDL2 update), random start, early retirement, cascaded over eps",
)

# The authors' AutoAttack (pyautoattack), not torchattacks' re-implementation: that one is not offered
# under this name. One name per norm, as for PGD, so that metric names say the threat model.
ATTACKS.add(
    "autoattack",
    AttackSpec("autoattack", "linf", True, None, engine="autoattack"),
    help="AutoAttack L-inf, the reference package (pyautoattack; --aa-version standard|plus|rand)",
)
ATTACKS.add(
    "autoattack_l2",
    AttackSpec("autoattack_l2", "l2", True, None, engine="autoattack"),
    help="AutoAttack L2, the reference package (pyautoattack; --aa-version standard|plus|rand)",
)

AA_VERSIONS: tuple[str, ...] = ("standard", "plus", "rand")


def parse_eps(text: str | float, norm: Norm = "linf") -> float:
    """``"8/255"``, ``"0.03"`` or a number -> float; a UsageError for anything else or a negative value.

    An L-inf eps is a pixel-range fraction, so above 1 it is a unit mistake (``8`` meant ``8/255``); an L2
    radius may exceed 1 (it sums over every pixel).
    """
    if isinstance(text, bool):
        raise UsageError(f"bad eps {text!r}: expected a number or a fraction like 8/255")
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        num, slash, den = str(text).strip().partition("/")
        try:
            value = float(num) / float(den) if slash else float(num)
        except (ValueError, ZeroDivisionError):
            raise UsageError(f"bad eps {text!r}: expected a number or a fraction like 8/255") from None
    if not math.isfinite(value) or value < 0:
        raise UsageError(f"eps must be finite and >= 0, got {text!r}")
    if norm == "linf" and value > 1:
        shown = f"{value:g}"
        hint = (
            f"did you mean {shown}/255?" if "/" not in str(text) else "eps is a fraction of the [0, 1] range"
        )
        raise UsageError(f"L-inf eps {text} is above 1 (images are in [0, 1]); {hint}")
    return value


@dataclass(frozen=True)
class AttackConfig:
    """One attack over a list of eps.

    ``eps`` is stored sorted ascending without duplicates (the cascade walks it upward). The step size
    is ``rel_stepsize * eps`` for both norms: eps/4 is the usual PGD-10 L-inf rule, and for L2 it equals
    the robustness library's 2.5 * eps / steps at 10 steps (torchattacks' PGDL2 default ratio is 0.2;
    pass ``rel_stepsize=0.2`` to match it). FGSM is one step of size eps from the clean image: whatever
    is passed, its config holds (and results record) steps 1, rel_stepsize 1, restarts 1, no random start.
    ``seed`` feeds the random starts; ``run_attacks(seed=...)`` overrides it for every config.
    AutoAttack runs the package's own settings for ``version`` (standard | plus | rand; default standard):
    the PGD fields do not apply, and its config holds steps 1, rel_stepsize 1, restarts 1, no random start
    so that results do not record PGD settings it never used. ``version`` is None for every other attack.
    ``cascade`` (AutoAttack only): attack only the examples that no other attack of the same norm (at this
    eps or a smaller one) and no smaller eps of this AutoAttack has fooled already; see
    ``robust._run_autoattack``.
    """

    name: str
    eps: tuple[float, ...]
    steps: int = 10
    rel_stepsize: float = 0.25
    restarts: int = 1
    random_start: bool = True
    seed: int = 0
    version: str | None = None
    cascade: bool = False

    def __post_init__(self) -> None:
        spec = ATTACKS.get(self.name)  # UsageError naming the known attacks
        if spec.engine != "autoattack":
            object.__setattr__(self, "cascade", False)
        if spec.engine == "autoattack":
            version = "standard" if self.version is None else self.version
            if version not in AA_VERSIONS:
                raise UsageError(
                    f"unknown AutoAttack version {version!r}; choose from {', '.join(AA_VERSIONS)}"
                )
            object.__setattr__(self, "version", version)
        else:
            object.__setattr__(self, "version", None)
        if not spec.iterative or spec.engine == "autoattack":
            # record what a single-step attack does, not the PGD settings a battery passes to every attack
            for key, value in (("steps", 1), ("rel_stepsize", 1.0), ("restarts", 1), ("random_start", False)):
                object.__setattr__(self, key, value)
        raw: Sequence[float | str] = (self.eps,) if isinstance(self.eps, (int, float, str)) else self.eps
        if len(raw) == 0:
            raise UsageError(f"attack {self.name!r}: eps list is empty")
        object.__setattr__(self, "eps", tuple(sorted({parse_eps(e, self.spec.norm) for e in raw})))
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise UsageError(f"attack {self.name!r}: steps must be an integer >= 1, got {self.steps!r}")
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, int) or self.restarts < 1:
            raise UsageError(f"attack {self.name!r}: restarts must be an integer >= 1, got {self.restarts!r}")
        if not (math.isfinite(self.rel_stepsize) and self.rel_stepsize > 0):
            raise UsageError(f"attack {self.name!r}: rel_stepsize must be > 0, got {self.rel_stepsize!r}")
        if self.restarts > 1 and not self.random_start and self.spec.iterative:
            raise UsageError(f"attack {self.name!r}: restarts > 1 need random_start")

    @property
    def spec(self) -> AttackSpec:
        """The registered AttackSpec for this attack's name (UsageError if unknown)."""
        return ATTACKS.get(self.name)

    def alpha(self, eps: float) -> float:
        """The PGD step size at ``eps``."""
        return self.rel_stepsize * eps
