"""Time per training step: masked (MaskedParameters) vs dense, same model, batch and optimizer, on CPU.

Both nets are the zoo's resnet20 (evalsuite's default CIFAR-10 training architecture) from the same seed;
the masked one carries ERK masks (``--density``, default 0.1) applied with ``MaskedParameters``. One step
is exactly the training loop's (evalsuite/train/loop.py): forward in train mode, cross-entropy,
``zero_grad(set_to_none=True)``, backward, [``mask_grads()``], SGD step (momentum 0.9, wd 5e-4, lr 0.1),
[``after_step(opt)``]. Inputs are fixed random [0, 1] batches of ``--batch`` (default 128) images: the
step time does not depend on pixel values, and no data loading or augmentation is timed.

Dense and masked blocks of ``--block`` steps (default 1) alternate, order swapped every round, so that
load from other processes hits both alike. The headline ratio is the median over rounds of (masked block
time / dense block time) of adjacent blocks; also reported: the ratio of the medians and of the minima
of the step times, and the masking calls on their own (``mask_grads`` + ``after_step``, timed inside the
masked steps) as a fraction of the dense median step: the least noise-sensitive view of the overhead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def build(masked: bool, density: float, seed: int) -> tuple[nn.Module, object | None]:
    from evalsuite.models.zoo import create_model
    from evalsuite.sparsity import MaskedParameters, prune_at_init

    torch.manual_seed(seed)
    model = create_model("resnet20", 10, MEAN, STD, 3)
    if not masked:
        return model, None
    plan = prune_at_init(model, torch.zeros(1, 3, 32, 32), "erk", density, seed)
    masks = {k: v for k, v in plan.masks.items() if not bool(v.all())}
    return model, MaskedParameters(model, masks)


def make_step(
    model: nn.Module, masked: object | None, x: Tensor, y: Tensor, mask_times: list[float]
) -> Callable[[], float]:
    """A closure running one training step and returning its wall time in seconds."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    model.train()

    def step() -> float:
        t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if masked is not None:
            t = time.perf_counter()
            masked.mask_grads()  # type: ignore[attr-defined]
            overhead = time.perf_counter() - t
        opt.step()
        if masked is not None:
            t = time.perf_counter()
            masked.after_step(opt)  # type: ignore[attr-defined]
            mask_times.append(overhead + time.perf_counter() - t)
        return time.perf_counter() - t0

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--density", type=float, default=0.1, help="ERK density of the masked net")
    p.add_argument("--rounds", type=int, default=40, help="rounds of (dense block, masked block)")
    p.add_argument("--block", type=int, default=1, help="steps per block")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps of each before timing")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.batch, 3, 32, 32, generator=g)
    y = torch.randint(0, 10, (args.batch,), generator=g)
    dense_model, _ = build(False, 1.0, args.seed)
    masked_model, masked = build(True, args.density, args.seed)
    assert masked is not None and masked  # some layer is actually masked
    mask_times: list[float] = []
    steps = {
        "dense": make_step(dense_model, None, x, y, []),
        "masked": make_step(masked_model, masked, x, y, mask_times),
    }
    for fn in steps.values():
        for _ in range(args.warmup):
            fn()
    mask_times.clear()
    times: dict[str, list[float]] = {"dense": [], "masked": []}
    paired: list[float] = []
    for r in range(args.rounds):
        order = ("dense", "masked") if r % 2 == 0 else ("masked", "dense")
        block = {}
        for name in order:
            block[name] = [steps[name]() for _ in range(args.block)]
            times[name].extend(block[name])
        paired.append(sum(block["masked"]) / sum(block["dense"]))

    # pruned weights must still be exactly zero after training steps
    zero = all(
        bool((p[~m.bool()] == 0).all())
        for p, m in zip(masked.params, masked.masks)  # type: ignore[attr-defined]
    )
    med = {k: statistics.median(v) for k, v in times.items()}
    low = {k: min(v) for k, v in times.items()}
    over = statistics.median(mask_times)
    print(
        f"masked/dense step time ratio={statistics.median(paired):.3f} (median of adjacent pairs; "
        f"ratio of medians {med['masked'] / med['dense']:.3f}, "
        f"of minima {low['masked'] / low['dense']:.3f}); "
        f"mask_grads+after_step={over * 1e3:.2f} ms/step = "
        f"{over / med['dense'] * 100:.2f}% of a dense step"
    )
    print(
        f"  resnet20 (zoo, shortcut B) batch={args.batch} SGD(0.9, wd 5e-4) ERK density={args.density} "
        f"threads={torch.get_num_threads()} torch {torch.__version__}; "
        f"dense median {med['dense'] * 1e3:.1f} ms "
        f"min {low['dense'] * 1e3:.1f} ms, masked median {med['masked'] * 1e3:.1f} ms min "
        f"{low['masked'] * 1e3:.1f} ms; {args.rounds}x{args.block} steps each, alternating; "
        f"pruned weights still zero: {zero}"
    )


if __name__ == "__main__":
    main()
