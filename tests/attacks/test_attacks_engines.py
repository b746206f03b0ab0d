"""The engines against torchattacks itself: FGSM equal, PGD bit for bit without retirement."""

from __future__ import annotations

import pytest
import torch
import torchattacks
from torch import Tensor, nn

from evalsuite.attacks import ATTACKS, MultiEpsFGSM, RetiringPGD, start_noise
from evalsuite.attacks.engines import NOISE_BLOCK

Data = tuple[nn.Module, Tensor, Tensor]


def test_multi_eps_fgsm_equals_torchattacks_fgsm(digits_model: Data) -> None:
    model, x, y = digits_model
    eps = (0.0, 0.03, 0.1, 0.3)
    ours = MultiEpsFGSM(model, eps)(x, y)
    fooled = MultiEpsFGSM(model, eps).fooled(x, y)
    for k, e in enumerate(eps):
        ref = ATTACKS.get("fgsm").reference(model, e, 0.0, 1, False)(x, y)
        assert torch.equal(ours[k], ref), f"eps={e}"
        with torch.no_grad():
            assert torch.equal(fooled[k], model(ref).argmax(dim=1) != y)
    assert fooled[-1].float().mean() > 0.5  # eps 0.3 breaks this model: the check can fail


@pytest.mark.parametrize(("name", "eps"), [("pgd_linf", 0.08), ("pgd_l2", 0.6)])
def test_pgd_without_retirement_is_torchattacks_bit_for_bit(
    digits_model: Data, name: str, eps: float
) -> None:
    model, x, y = digits_model
    spec = ATTACKS.get(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(123)
        ours = RetiringPGD(model, eps, eps / 4, 10, spec.norm, random_start=True, retire=False)(x, y)
        torch.manual_seed(123)
        ref = spec.reference(model, eps, eps / 4, 10, True)(x, y)
    assert torch.equal(ours, ref)


@pytest.mark.parametrize(("name", "eps"), [("pgd_linf", 0.08), ("pgd_l2", 0.6)])
def test_retirement_fools_at_least_what_the_final_iterate_fools(
    digits_model: Data, name: str, eps: float
) -> None:
    model, x, y = digits_model
    spec = ATTACKS.get(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        ref = spec.reference(model, eps, eps / 4, 10, True)(x, y)
        torch.manual_seed(7)
        atk = RetiringPGD(model, eps, eps / 4, 10, spec.norm, random_start=True, retire=True)
        adv = atk(x, y)
    with torch.no_grad():
        ref_fooled = model(ref).argmax(dim=1) != y
        adv_fooled = model(adv).argmax(dim=1) != y
    assert atk.fooled is not None
    assert bool((ref_fooled & ~atk.fooled).sum() == 0)
    assert int(atk.fooled.sum()) >= int(ref_fooled.sum()) > 0
    # the stored iterate is the fooling one, and it is a legal perturbation
    assert torch.equal(adv_fooled[atk.fooled], torch.ones_like(adv_fooled[atk.fooled]))
    assert adv.min() >= 0 and adv.max() <= 1
    delta = (adv - x).flatten(1)
    size = delta.abs().amax(dim=1) if spec.norm == "linf" else delta.norm(dim=1)
    assert bool((size <= eps * (1 + 1e-5)).all())
    assert atk.example_grads < 10 * len(x)  # retirement saved work


def test_pgd_eps_zero_stays_at_the_clean_image(digits_model: Data) -> None:
    model, x, y = digits_model
    for norm in ("linf", "l2"):
        adv = RetiringPGD(model, 0.0, 0.0, 3, norm, retire=False)(x, y)  # type: ignore[arg-type]
        assert torch.equal(adv, x), norm  # PGDL2 itself would give NaN here (0 / 0)


def test_start_noise_depends_on_index_only() -> None:
    idx = torch.tensor([3, NOISE_BLOCK + 5, 1, 2 * NOISE_BLOCK + 1])
    full = start_noise("linf", 0.1, torch.arange(3 * NOISE_BLOCK), (1, 8, 8), "k")
    assert torch.equal(start_noise("linf", 0.1, idx, (1, 8, 8), "k"), full[idx])
    assert full.abs().max() <= 0.1 and full.abs().max() > 0.09
    assert not torch.equal(start_noise("linf", 0.1, idx, (1, 8, 8), "other"), full[idx])
    l2 = start_noise("l2", 0.5, torch.arange(2 * NOISE_BLOCK), (3, 4, 4), "k")
    assert bool((l2.flatten(1).norm(dim=1) <= 0.5 * (1 + 1e-6)).all())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        a = start_noise("l2", 0.5, idx, (1, 8, 8), "k")
        torch.manual_seed(1)
        b = start_noise("l2", 0.5, idx, (1, 8, 8), "k")
    assert torch.equal(a, b)


def test_reference_factories_build_torchattacks(digits_model: Data) -> None:
    model = digits_model[0]
    assert isinstance(ATTACKS.get("pgd_linf").reference(model, 0.1, 0.025, 10, True), torchattacks.PGD)
    assert isinstance(ATTACKS.get("pgd_l2").reference(model, 0.1, 0.025, 10, True), torchattacks.PGDL2)
    assert ATTACKS.names() == ["autoattack", "autoattack_l2", "fgsm", "pgd_l2", "pgd_linf"]
    assert ATTACKS.get("autoattack").reference is None  # the package is its own reference
