"""Battery cost vs the naive composition and vs the bare passes it cannot avoid, in one run.

(a) evalsuite's battery: ``evaluate_with_arrays`` with the cache off and the default checks, attacks and
    eps (fgsm + pgd_linf at 1,2,4,8/255, pgd_l2 at 0.125,0.25,0.5; PGD-10, step eps/4, random start) and
    one OOD set (the ImageNet sample). Timed end to end: model and data loading included.
(b) the naive composition a user would write on the same model, examples and batch sizes:
    torchattacks.FGSM, torchattacks.PGD(steps=10, alpha=eps/4, random_start=True) and torchattacks.PGDL2
    (same) on every example, for every step, at every eps (no early retirement, no eps cascade, no
    shared FGSM gradient), each followed by a forward pass to score the adversarial batch; a separate
    forward pass over the ID set for each of accuracy, NLL, Brier and ECE (netcal.metrics.ECE, 15 bins),
    and per OOD score (msp, maxlogit, energy) one ID and one OOD forward pass and sklearn's
    roc_auc_score. Data are already in memory (loading not timed).
(c) the bare passes the battery cannot avoid, on random inputs of the same shape, same model, same batch
    sizes (the battery's forward batch for predictions, its attack batch for the rest):
    - one forward pass over the ID set and one over each OOD set (inference mode);
    - G example forward+backward passes (loss gradient w.r.t. the input only, as the attacks take it),
      G = ``example_grads`` summed over every (attack, eps) row (FGSM's one shared backward is charged to
      its first eps row);
    - F forward-only passes (no grad): FGSM one per eps per attacked example, PGD one final forward per
      attacked example per eps (an upper bound: only examples never fooled reach PGD's final forward),
      i.e. F = sum of ``attacked`` over all (attack, eps) rows.

Prints ``battery a=..s naive b=..s bare c=..s a/b=.. a/c=..`` and the model and data. With ``--repeat``
each of (a), (b), (c) runs that many times, interleaved, and the minimum is kept.

``--processes`` also times (a) and (b) as whole processes, start-up included, as a user meets them:
(a) ``python -m evalsuite.cli -q eval MODEL ... --no-cache`` with the same settings, and (b) this script in
``--naive-child`` mode, which imports torch, torchattacks, netcal and scikit-learn, loads the model and the
same examples from the npz files with numpy, and runs the naive composition. Prints ``process a=.. b=..
a/b=..`` (goal: a/b <= 0.25).
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _shared import ARCH_KWARGS, CIFAR_TEST, IMAGENET, MEAN, MODEL, STD, load_resnet20
from torch import Tensor, nn


@dataclass
class Setup:
    """Where the model and data come from, and how to describe them."""

    model_path: str
    data_spec: str
    ood_specs: list[str]
    description: str
    tmp: tempfile.TemporaryDirectory[str] | None = None


def make_setup(n: int, synthetic: bool) -> Setup:
    """The pretrained ResNet-20 on real CIFAR-10; a fresh one on synthetic data when ../shared is absent."""
    if not synthetic and MODEL.is_file() and CIFAR_TEST.is_file() and IMAGENET.is_file():
        return Setup(
            str(MODEL),
            f"npz:{CIFAR_TEST}",
            [f"imagenet=npz:{IMAGENET}"],
            f"model=akamaster resnet20 (pretrained) data=cifar10/test.npz stratified n={n} "
            f"ood=imagenet_sample (n={min(n, 1000)})",
        )
    from evalsuite.models.zoo import MODELS

    tmp = tempfile.TemporaryDirectory(prefix="evalsuite-perf-")
    d = Path(tmp.name)
    torch.manual_seed(0)
    net = MODELS.get("resnet20")(num_classes=10, in_channels=3, **ARCH_KWARGS)
    torch.save(net.state_dict(), d / "resnet20_init.pt")
    rng = np.random.default_rng(0)
    for name, size in (("id", max(n, 10)), ("ood", max(n, 10))):
        x = rng.integers(0, 256, size=(size, 32, 32, 3), dtype=np.uint8)
        y = np.arange(size, dtype=np.int64) % 10
        np.savez_compressed(d / f"{name}.npz", x=x, y=y)
    return Setup(
        str(d / "resnet20_init.pt"),
        f"npz:{d / 'id.npz'}",
        [f"synthetic=npz:{d / 'ood.npz'}"],
        f"model=resnet20 FRESHLY INITIALIZED (../shared absent or --synthetic) data=SYNTHETIC uniform noise "
        f"n={n} ood=synthetic noise n={n}",
        tmp,
    )


def forward_all(net: nn.Module, x: Tensor, batch_size: int) -> Tensor:
    with torch.inference_mode():
        return torch.cat([net(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


# ---------------------------------------------------------------------------------------------- (b) naive
def naive(
    net: nn.Module,
    x: Tensor,
    y: Tensor,
    ood: dict[str, Tensor],
    eps_linf: tuple[float, ...],
    eps_l2: tuple[float, ...],
    steps: int,
    rel_stepsize: float,
    eval_bs: int,
    attack_bs: int,
) -> dict[str, float]:
    """What a user writes by hand: one forward per metric, every attack on every example at every eps."""
    import torchattacks
    from netcal.metrics import ECE
    from sklearn.metrics import roc_auc_score

    from evalsuite.core.results import eps_name

    out: dict[str, float] = {}
    yn = y.numpy()
    out["accuracy"] = float((forward_all(net, x, eval_bs).argmax(1) == y).float().mean())
    out["nll"] = float(F.cross_entropy(forward_all(net, x, eval_bs), y))
    probs = forward_all(net, x, eval_bs).softmax(1)
    out["brier"] = float(((probs - F.one_hot(y, probs.shape[1]).float()) ** 2).sum(1).mean())
    probs = forward_all(net, x, eval_bs).softmax(1)
    out["ece"] = float(ECE(bins=15).measure(probs.double().numpy(), yn))
    scores: dict[str, Callable[[Tensor], Tensor]] = {
        "msp": lambda z: -z.softmax(1).max(1).values,
        "maxlogit": lambda z: -z.max(1).values,
        "energy": lambda z: -torch.logsumexp(z, 1),
    }
    for s, fn in scores.items():
        s_id = fn(forward_all(net, x, eval_bs)).numpy()
        for name, xo in ood.items():
            s_ood = fn(forward_all(net, xo, eval_bs)).numpy()
            target = np.r_[np.zeros(len(s_id)), np.ones(len(s_ood))]
            out[f"ood/{name}/{s}/auroc"] = float(roc_auc_score(target, np.r_[s_id, s_ood]))

    def robust(atk: Any) -> float:
        correct = 0
        for i in range(0, len(x), attack_bs):
            xb, yb = x[i : i + attack_bs], y[i : i + attack_bs]
            adv = atk(xb, yb)
            with torch.no_grad():
                correct += int((net(adv).argmax(1) == yb).sum())
        return correct / len(x)

    for e in eps_linf:
        out[f"robust/fgsm/{eps_name(e)}/accuracy"] = robust(torchattacks.FGSM(net, eps=e))
    for e in eps_linf:
        atk = torchattacks.PGD(net, eps=e, alpha=rel_stepsize * e, steps=steps, random_start=True)
        out[f"robust/pgd_linf/{eps_name(e)}/accuracy"] = robust(atk)
    for e in eps_l2:
        atk = torchattacks.PGDL2(net, eps=e, alpha=rel_stepsize * e, steps=steps, random_start=True)
        out[f"robust/pgd_l2/{eps_name(e)}/accuracy"] = robust(atk)
    return out


# ---------------------------------------------------------------------------------------------- (c) bare
@dataclass(frozen=True)
class BareCounts:
    """Rows of each kind of pass (c) runs; see the module docstring."""

    n_id: int
    n_ood: tuple[int, ...]
    grads: int
    forwards: int


def count_bare(details: dict[str, Any], n_id: int, n_ood: tuple[int, ...]) -> BareCounts:
    rows = details["robust"]["results"]
    # FGSM's one shared backward is charged to its first eps row, so the plain sum is the cost
    grads = sum(int(r["example_grads"]) for r in rows)
    forwards = sum(int(r["attacked"]) for r in rows)
    return BareCounts(n_id, n_ood, grads, forwards)


def bare(
    net: nn.Module, counts: BareCounts, shape: tuple[int, ...], classes: int, eval_bs: int, attack_bs: int
) -> float:
    """Seconds for the bare passes of ``counts`` on random inputs (made before the clock starts)."""
    g = torch.Generator().manual_seed(0)
    x_eval = torch.rand(eval_bs, *shape, generator=g)
    x_atk = torch.rand(attack_bs, *shape, generator=g)
    y_atk = torch.randint(0, classes, (attack_bs,), generator=g)

    def chunks(total: int, bs: int) -> list[int]:
        return [min(bs, total - i) for i in range(0, total, bs)]

    net.eval()
    t0 = time.perf_counter()
    for total in (counts.n_id, *counts.n_ood):
        with torch.inference_mode():
            for b in chunks(total, eval_bs):
                net(x_eval[:b])
    for b in chunks(counts.grads, attack_bs):
        xb = x_atk[:b].clone().requires_grad_(True)
        torch.autograd.grad(F.cross_entropy(net(xb), y_atk[:b]), xb)
    with torch.no_grad():
        for b in chunks(counts.forwards, attack_bs):
            net(x_atk[:b])
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- processes
def _npz_spec_path(spec: str) -> str:
    return spec.split("=", 1)[-1].removeprefix("npz:")


def time_processes(setup: Setup, n: int, repeat: int) -> tuple[float, float, list[float], list[float]]:
    """(a) and (b) as fresh processes, interleaved; returns the minima and every run."""
    import json
    import subprocess
    import sys

    tmp = Path(tempfile.mkdtemp(prefix="evalsuite-perf-proc-"))
    first = tmp / "a0.json"  # (b) reads the examples (a) used from here
    cmd_a = [sys.executable, "-m", "evalsuite.cli", "-q", "eval", setup.model_path, "--arch", "resnet20"]
    cmd_a += ["--arch-kwargs", json.dumps(ARCH_KWARGS), "--mean", ",".join(map(str, MEAN))]
    cmd_a += ["--std", ",".join(map(str, STD)), "--data", setup.data_spec, "--limit", str(n)]
    cmd_a += ["--device", "cpu", "--no-cache"]
    for spec in setup.ood_specs:
        cmd_a += ["--ood", spec]
    cmd_b = [sys.executable, __file__, "--naive-child", str(first), "--model", setup.model_path]
    cmd_b += ["--data", _npz_spec_path(setup.data_spec)]
    for spec in setup.ood_specs:
        cmd_b += ["--ood", spec.split("=", 1)[0] + "=" + _npz_spec_path(spec)]
    t_a: list[float] = []
    t_b: list[float] = []
    for rep in range(repeat):
        for cmd, times in (([*cmd_a, "--out", str(tmp / f"a{rep}.json")], t_a), (cmd_b, t_b)):
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
    return min(t_a), min(t_b), t_a, t_b


def naive_child(result_json: str, model: str, data: str, ood: list[str]) -> None:
    """(b) as a user's script: load with numpy, the examples (a) used, run the naive composition."""
    arrays = np.load(Path(result_json).with_suffix(".npz"))
    d = np.load(data)
    idx = arrays["id/index"]
    x = (torch.from_numpy(d["x"][idx]).permute(0, 3, 1, 2).float() / 255).contiguous()
    y = torch.from_numpy(d["y"][idx]).long()
    x_ood = {}
    for spec in ood:
        name, path = spec.split("=", 1)
        o = np.load(path)["x"][arrays[f"ood/{name}/index"]]
        x_ood[name] = (torch.from_numpy(o).permute(0, 3, 1, 2).float() / 255).contiguous()
    net = load_resnet20(model)
    from evalsuite.battery.config import BatteryConfig

    cfg = BatteryConfig()
    naive(net, x, y, x_ood, cfg.eps_linf, cfg.eps_l2, cfg.pgd_steps, cfg.pgd_rel_stepsize, 500, 256)


# ---------------------------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-n", "--n", type=int, default=500, help="ID examples (seeded stratified subset)")
    p.add_argument("--repeat", type=int, default=1, help="interleaved repeats; the minimum is kept")
    p.add_argument("--synthetic", action="store_true", help="fresh resnet20 + synthetic data")
    p.add_argument("--skip-naive", action="store_true", help="time only (a) and (c)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    p.add_argument("--profile", type=Path, default=None, help="cProfile the battery run into this file")
    p.add_argument("--processes", action="store_true", help="also time (a) and (b) as whole processes")
    p.add_argument("--naive-child", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--ood", action="append", default=[], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.naive_child:
        naive_child(args.naive_child, args.model, args.data, args.ood)
        return
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    from evalsuite.battery.config import BatteryConfig
    from evalsuite.battery.run import EvalOptions, evaluate_with_arrays
    from evalsuite.data import load_dataset

    setup = make_setup(args.n, args.synthetic)
    cfg = BatteryConfig(limit=args.n)
    opts = {
        "data": setup.data_spec,
        "ood": setup.ood_specs,
        "arch": "resnet20",
        "arch_kwargs": ARCH_KWARGS,
        "mean": MEAN,
        "std": STD,
        "device": "cpu",
        "cache": False,
    }
    net = load_resnet20(setup.model_path)
    with torch.inference_mode():  # warm-up: thread pool, allocator, kernels
        for _ in range(3):
            net(torch.rand(256, 3, 32, 32))

    t_a: list[float] = []
    t_b: list[float] = []
    t_c: list[float] = []
    result = arrays = counts = naive_out = None
    x_id = y_id = None
    x_ood: dict[str, Tensor] = {}
    for rep in range(args.repeat):
        t0 = time.perf_counter()
        if args.profile is not None and rep == 0:
            import cProfile

            prof = cProfile.Profile()
            result, arrays = prof.runcall(evaluate_with_arrays, setup.model_path, cfg, EvalOptions(**opts))
            prof.dump_stats(args.profile)
        else:
            result, arrays = evaluate_with_arrays(setup.model_path, cfg, EvalOptions(**opts))
        t_a.append(time.perf_counter() - t0)
        eval_bs = 500  # default_batch_size(cpu): the battery's prediction batch
        attack_bs = min(eval_bs, 256)  # the battery's attack batch
        if x_id is None:
            id_full = load_dataset(setup.data_spec, "test")
            idx = torch.from_numpy(arrays["id/index"])
            x_id, y_id = id_full.images(idx), id_full.y[idx].long()
            for spec in setup.ood_specs:
                name, _, rest = spec.partition("=")
                full = load_dataset(rest, "test")
                x_ood[name] = full.images(torch.from_numpy(arrays[f"ood/{name}/index"]))
            counts = count_bare(result.details, len(x_id), tuple(len(v) for v in x_ood.values()))
        assert counts is not None and y_id is not None
        t_c.append(bare(net, counts, tuple(x_id.shape[1:]), 10, eval_bs, attack_bs))
        if not args.skip_naive:
            t0 = time.perf_counter()
            naive_out = naive(
                net,
                x_id,
                y_id,
                x_ood,
                cfg.eps_linf,
                cfg.eps_l2,
                cfg.pgd_steps,
                cfg.pgd_rel_stepsize,
                eval_bs,
                attack_bs,
            )
            t_b.append(time.perf_counter() - t0)

    assert result is not None and counts is not None
    a, c = min(t_a), min(t_c)
    b = min(t_b) if t_b else math.nan
    print(f"battery a={a:.2f}s naive b={b:.2f}s bare c={c:.2f}s a/b={a / b:.3f} a/c={a / c:.3f}")
    print(f"  {setup.description}; torch {torch.__version__} threads={torch.get_num_threads()} cpu")
    tm = result.timings
    print(
        "  battery timings: "
        + " ".join(f"{k}={v:.2f}s" for k, v in tm.items())
        + f"; runs a={_r(t_a)} b={_r(t_b)} c={_r(t_c)}"
    )
    print(
        f"  (c) counts: forward ID {counts.n_id} + OOD {list(counts.n_ood)} rows (batch 500); "
        f"fwd+bwd {counts.grads} rows (sum of example_grads); "
        f"forward-only {counts.forwards} rows (batch 256)"
    )
    n_naive_fb = len(x_id) * (len(cfg.eps_linf) * (1 + cfg.pgd_steps) + len(cfg.eps_l2) * cfg.pgd_steps)
    print(f"  (b) naive fwd+bwd rows: {n_naive_fb}")
    m = result.metrics
    if naive_out is not None:
        print("  metric                          battery    naive")
        for k, v in naive_out.items():
            print(f"  {k:30s} {m.get(k, math.nan):8.4f} {v:8.4f}")
    if args.processes:
        if setup.tmp is not None:
            print("  --processes needs the real npz files (../shared); skipped on synthetic data")
        else:
            pa, pb, ra, rb = time_processes(setup, args.n, args.repeat)
            print(f"process a={pa:.2f}s b={pb:.2f}s a/b={pa / pb:.3f}  runs a={_r(ra)} b={_r(rb)}")
    if setup.tmp is not None:
        setup.tmp.cleanup()


def _r(v: list[float]) -> list[float]:
    return [round(t, 2) for t in v]


if __name__ == "__main__":
    main()
