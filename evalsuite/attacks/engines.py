"""The attack engines: torchattacks' FGSM and PGD updates with what torchattacks does not offer.

torchattacks returns only the final iterate of one attack at one eps. We hand-write two things on top of
its ``Attack`` base (model-mode handling, ``get_logits``):

* ``MultiEpsFGSM``: FGSM's gradient is taken at the clean point, so it is the same for every eps; one
  backward serves the whole eps list instead of one per eps.
* ``RetiringPGD``: torchattacks.PGD / PGDL2's exact update, but every iterate (the random start included)
  is checked and an example leaves the batch as soon as it is fooled. That is at least as strong as
  judging the final iterate, and cheaper. With ``retire=False`` and the same random start it reproduces
  torchattacks bit for bit.

Random starts come from ``start_noise``: a dedicated generator per block of example indices, so the
noise an example gets depends on (key, its index) only, not on global RNG state or batch composition.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchattacks.attack import Attack

from evalsuite.attacks.config import Norm

# Noise is drawn per block of this many consecutive example indices: few Python iterations, bounded memory
# (64 ImageNet images = 38 MB), and an example's noise still depends only on its index.
NOISE_BLOCK = 64

# torchattacks.PGDL2's guard against a zero gradient norm; kept so the L2 update matches it exactly.
EPS_FOR_DIVISION = 1e-10


def _per_example(v: Tensor, ndim: int) -> Tensor:
    """[N] -> [N, 1, ..., 1] for broadcasting against an ndim batch."""
    return v.view(-1, *([1] * (ndim - 1)))


def _block_seed(key: str, block: int) -> int:
    digest = hashlib.blake2b(f"{key}/{block}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _draw_start(norm: Norm, eps: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """A random-start delta shaped like ``like`` [N, ...], drawn with torchattacks' ops in its order.

    With ``generator=None`` it consumes the global RNG of ``like``'s device exactly as torchattacks does.
    """
    if norm == "linf":
        return torch.empty_like(like).uniform_(-eps, eps, generator=generator)
    # PGDL2: a Gaussian direction scaled to radius r * eps with r ~ U(0, 1)
    delta = torch.empty_like(like).normal_(generator=generator)
    n = torch.norm(delta.view(like.size(0), -1), p=2, dim=1).view(-1, *([1] * (like.ndim - 1)))
    r = torch.zeros_like(n).uniform_(0, 1, generator=generator)
    delta *= r / n * eps
    return delta


def start_noise(norm: Norm, eps: float, index: Tensor, image_shape: Sequence[int], key: str) -> Tensor:
    """Random-start deltas [n, *image_shape] (CPU, float32) for the examples with global index ``index`` [n].

    Deterministic in (key, index): block ``b`` of NOISE_BLOCK indices is drawn from a CPU generator seeded
    with a hash of (key, b). Drawing on the CPU keeps the noise identical across devices.
    """
    index = index.cpu().long()
    like = torch.empty((NOISE_BLOCK, *image_shape))
    out = torch.empty((index.numel(), *image_shape))
    blocks = index // NOISE_BLOCK
    for b in torch.unique(blocks).tolist():
        g = torch.Generator().manual_seed(_block_seed(key, b))
        sel = blocks == b
        out[sel] = _draw_start(norm, eps, like, g)[index[sel] % NOISE_BLOCK]
    return out


def pgd_step(adv: Tensor, grad: Tensor, images: Tensor, eps: float, alpha: float, norm: Norm) -> Tensor:
    """One torchattacks PGD (L-inf) or PGDL2 update: step, project onto the eps-ball around ``images``, clamp.

    All [N, C, H, W]. The L2 projection factor is min(eps / ||delta||, 1) as in PGDL2, written as a
    ``where`` so that ||delta|| = 0 (eps = 0, or a zero gradient) gives 1 instead of 0/0 = NaN; wherever
    PGDL2 is finite the two are bit-identical.
    """
    if norm == "linf":
        adv = adv.detach() + alpha * grad.sign()
        delta = torch.clamp(adv - images, min=-eps, max=eps)
        return torch.clamp(images + delta, min=0, max=1).detach()
    b = adv.shape[0]
    grad_norms = torch.norm(grad.reshape(b, -1), p=2, dim=1) + EPS_FOR_DIVISION
    grad = grad / _per_example(grad_norms, grad.ndim)
    adv = adv.detach() + alpha * grad
    delta = adv - images
    delta_norms = torch.norm(delta.reshape(b, -1), p=2, dim=1)
    factor = torch.where(delta_norms > eps, eps / delta_norms, torch.ones_like(delta_norms))
    delta = delta * _per_example(factor, delta.ndim)
    return torch.clamp(images + delta, min=0, max=1).detach()


def pgd_with_retirement(
    get_logits: Callable[[Tensor], Tensor],
    images: Tensor,
    labels: Tensor,
    eps: float,
    alpha: float,
    steps: int,
    norm: Norm,
    start: Tensor | None,
    retire: bool = True,
) -> tuple[Tensor, Tensor, int]:
    """PGD from ``clamp(images + start, 0, 1)`` (or ``images`` if start is None), checking every iterate.

    images [N, C, H, W] in [0, 1], labels [N], start [N, C, H, W] or None. Returns (adv [N, C, H, W],
    fooled [N] bool, example_grads). ``fooled`` is True where any iterate, the start included, is
    misclassified; adv holds that first fooling iterate, else the final one. With ``retire=False`` nothing
    leaves the batch and adv is the final iterate for all, exactly torchattacks' output. example_grads
    counts the rows that went through a backward pass (the attack's cost).
    """
    n = images.shape[0]
    fooled = torch.zeros(n, dtype=torch.bool, device=images.device)
    out = images.clone()
    active = torch.arange(n, device=images.device)
    x, y = images, labels
    adv = images.clone().detach()
    if start is not None:
        adv = torch.clamp(adv + start.to(adv), min=0, max=1).detach()
    example_grads = 0
    for t in range(steps + 1):
        last = t == steps
        if last:
            with torch.no_grad():
                logits = get_logits(adv)
        else:
            adv.requires_grad = True
            logits = get_logits(adv)
        hit = logits.detach().argmax(dim=1) != y
        if hit.any():
            first = hit & ~fooled[active]
            fooled[active[first]] = True
            out[active[first]] = adv.detach()[first]
        if last:
            break
        if retire:
            keep = ~hit
            if not keep.any():
                active = active[keep]
                break
            # The mean over the kept rows only rescales each row's gradient; its sign (L-inf) and direction
            # (L2, up to the 1e-10 guard) are torchattacks' own.
            cost = F.cross_entropy(logits[keep], y[keep])
            grad = torch.autograd.grad(cost, adv, retain_graph=False, create_graph=False)[0]
            example_grads += adv.shape[0]
            if not keep.all():
                grad, adv, x, y, active = grad[keep], adv.detach()[keep], x[keep], y[keep], active[keep]
        else:
            cost = F.cross_entropy(logits, y)
            grad = torch.autograd.grad(cost, adv, retain_graph=False, create_graph=False)[0]
            example_grads += adv.shape[0]
        adv = pgd_step(adv, grad, x, eps, alpha, norm)
    if active.numel():
        if retire:
            out[active] = adv.detach()
        else:
            out = adv.detach()
    return out, fooled, example_grads


class RetiringPGD(Attack):
    """torchattacks.PGD (norm="linf") or PGDL2 (norm="l2") with every iterate checked and early retirement.

    ``atk(images, labels, start=None)`` returns adv [N, C, H, W]; afterwards ``atk.fooled`` [N] bool says
    which examples some iterate fooled and ``atk.example_grads`` the cost. With ``start=None`` and
    random_start the start is drawn from the global RNG exactly as torchattacks draws it.
    """

    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        alpha: float = 2 / 255,
        steps: int = 10,
        norm: Norm = "linf",
        random_start: bool = True,
        retire: bool = True,
    ) -> None:
        super().__init__("RetiringPGD", model)
        self.eps = eps
        self.alpha = alpha
        self.steps = steps
        self.norm = norm
        self.random_start = random_start
        self.retire = retire
        self.supported_mode = ["default"]
        self.fooled: Tensor | None = None
        self.example_grads = 0

    def forward(self, images: Tensor, labels: Tensor, start: Tensor | None = None) -> Tensor:
        """Adversarial images [N, C, H, W]; also sets ``fooled`` [N] and ``example_grads``."""
        images = images.clone().detach().to(self.device)
        labels = labels.clone().detach().to(self.device)
        if start is None and self.random_start:
            start = _draw_start(self.norm, self.eps, images, None)
        adv, fooled, grads = pgd_with_retirement(
            self.get_logits,
            images,
            labels,
            self.eps,
            self.alpha,
            self.steps,
            self.norm,
            start if self.random_start else None,
            self.retire,
        )
        self.fooled = fooled
        self.example_grads = grads
        return adv


class MultiEpsFGSM(Attack):
    """torchattacks.FGSM at every eps in ``eps`` from one backward pass.

    ``atk(images, labels)`` returns [E, N, C, H, W], entry e equal to ``torchattacks.FGSM(model, eps[e])``;
    ``atk.fooled(images, labels)`` returns [E, N] bool without materializing the E adversarial batches.
    """

    def __init__(self, model: nn.Module, eps: Sequence[float]) -> None:
        super().__init__("MultiEpsFGSM", model)
        self.eps = tuple(float(e) for e in eps)
        self.supported_mode = ["default"]

    def sign_grad(self, images: Tensor, labels: Tensor) -> Tensor:
        """Sign of d CE(mean) / d images at the clean point, [N, C, H, W]: torchattacks.FGSM's direction."""
        images = images.clone().detach().to(self.device)
        labels = labels.clone().detach().to(self.device)
        images.requires_grad = True
        cost = F.cross_entropy(self.get_logits(images), labels)
        grad = torch.autograd.grad(cost, images, retain_graph=False, create_graph=False)[0]
        return grad.sign()

    def forward(self, images: Tensor, labels: Tensor) -> Tensor:
        """FGSM images at every eps, [E, N, C, H, W], clamped to [0, 1]."""
        images = images.clone().detach().to(self.device)
        sign = self.sign_grad(images, labels)
        return torch.stack([torch.clamp(images + e * sign, min=0, max=1).detach() for e in self.eps])

    def fooled(self, images: Tensor, labels: Tensor) -> Tensor:
        """[E, N] bool: FGSM at eps[e] misclassifies example n. Model mode handled as in ``__call__``."""
        given_training = self.model.training
        self._change_model_mode(given_training)
        try:
            images = images.clone().detach().to(self.device)
            labels = labels.to(self.device)
            sign = self.sign_grad(images, labels)
            with torch.no_grad():
                rows = [
                    self.get_logits(torch.clamp(images + e * sign, min=0, max=1)).argmax(dim=1) != labels
                    for e in self.eps
                ]
        finally:
            self._recover_model_mode(given_training)
        return torch.stack(rows)
