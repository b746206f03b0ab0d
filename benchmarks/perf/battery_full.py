"""The full battery with issue 11's checks vs the passes it cannot avoid, on the pretrained ResNet-20.

(a) evalsuite's battery, ``evaluate_with_arrays`` with the cache off, every check on:
    - clean and calibration, with temperature scaling fit on ``--n-calib`` other CIFAR-10 test images
      (``--calib-data``, disjoint from the evaluated ones);
    - OOD with the logit scores (msp, maxlogit, energy) and the feature detectors (mahalanobis, knn, react,
      vim, odin), fit on ``--fit-limit`` images of the CIFAR-10 training subset, on two groups: near = the
      ImageNet sample (OpenOOD counts Tiny ImageNet as near for CIFAR-10), far = ``photos``;
    - robust: fgsm, pgd_linf, pgd_l2 and the reference AutoAttack (``pyautoattack``, ``--aa-version``,
      ``autoattack`` and ``autoattack_l2``), each at the default eps (1, 2, 4, 8/255; L2 0.125, 0.25, 0.5);
    - corruption: the 15 common corruptions x 5 severities of the same images, read as ``cifar10c:FOLDER``
      (made before the clock starts with ``write_corruption_folder``, as a user downloads CIFAR-10-C once);
    - the sparsity audit.
    Timed end to end: model and data loading included.
(c) the passes it cannot avoid, on the same images, model and batch sizes, timed one after another:
    - one forward pass (inference mode, the battery's prediction batch) over the evaluated images, the
      calibration split, each OOD set, the fit subset and each corrupted set;
    - FGSM/PGD: ``example_grads`` forward+backward rows (the input gradient only) and one forward-only row
      per attacked example per (attack, eps) row, as ``battery.py`` counts them;
    - ODIN: one forward+backward and one forward per ID and OOD image (the input-perturbation step);
    - AutoAttack: the package's own ``run_standard_evaluation`` on the clean-correct images at each eps,
      with the battery's attack batch size and seed: what the package costs on what must be attacked.

Prints ``full battery a=..s unavoidable c=..s a/c=..`` (issue 11's goal: a/c <= 1.2), the battery's own
timings per part, the (c) parts, and the robust accuracies of both AutoAttack runs (they must agree).

    python benchmarks/perf/battery_full.py --n 500                 # the issue's setting (CPU: ~15 min)
    python benchmarks/perf/battery_full.py --n 100 --fit-limit 2000 # a quick look
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _shared import CIFAR_TEST, IMAGENET, MODEL, SHARED, load_resnet20, resnet20_options
from torch import Tensor, nn

CIFAR_TRAIN = SHARED / "data" / "cifar10" / "train.npz"
SCORES = ("msp", "maxlogit", "energy", "mahalanobis", "knn", "react", "vim", "odin")
ATTACKS = ("fgsm", "pgd_linf", "pgd_l2", "autoattack", "autoattack_l2")


def _write_npz(path: Path, x: np.ndarray, y: np.ndarray) -> str:
    np.savez(path, x=x, y=y)
    return f"npz:{path}"


def prepare(tmp: Path, n: int, n_calib: int) -> tuple[str, str, str, float]:
    """ID and calibration npz files (disjoint seeded stratified subsets of the CIFAR-10 test set) and the
    corrupted copies of the ID images in the CIFAR-10-C layout; returns their specs and the seconds the
    corruptions took to generate (not part of either side)."""
    from evalsuite.data import load_dataset
    from evalsuite.data.base import stratified_indices
    from evalsuite.data.corruptions import write_corruption_folder

    d = np.load(CIFAR_TEST)
    y = torch.from_numpy(d["y"])
    id_idx = stratified_indices(y, n, seed=0).numpy()
    rest = np.setdiff1d(np.arange(len(y)), id_idx)
    cal_idx = rest[stratified_indices(y[rest], n_calib, seed=1).numpy()]
    id_spec = _write_npz(tmp / "id.npz", d["x"][id_idx], d["y"][id_idx])
    cal_spec = _write_npz(tmp / "calib.npz", d["x"][cal_idx], d["y"][cal_idx])
    t0 = time.perf_counter()
    write_corruption_folder(load_dataset(id_spec, "test"), tmp / "cifar10c", "common", seed=0)
    return id_spec, cal_spec, f"cifar10c:{tmp / 'cifar10c'}", time.perf_counter() - t0


def forward(net: nn.Module, x: Tensor, bs: int) -> Tensor:
    with torch.inference_mode():
        return torch.cat([net(x[i : i + bs]) for i in range(0, len(x), bs)])


def grad_rows(net: nn.Module, x: Tensor, rows: int, bs: int) -> None:
    """``rows`` input-gradient forward+backward rows, cycling through ``x``."""
    done = 0
    while done < rows:
        b = min(bs, rows - done)
        xb = x[torch.arange(done, done + b) % len(x)].clone().requires_grad_(True)
        logits = net(xb)
        torch.autograd.grad(F.cross_entropy(logits, logits.argmax(1)), xb)
        done += b


def forward_rows(net: nn.Module, x: Tensor, rows: int, bs: int) -> None:
    done = 0
    with torch.inference_mode():
        while done < rows:
            b = min(bs, rows - done)
            net(x[torch.arange(done, done + b) % len(x)])
            done += b


def unavoidable(
    net: nn.Module,
    result: Any,
    arrays: dict[str, np.ndarray],
    sets: dict[str, Tensor],
    x_id: Tensor,
    y_id: Tensor,
    eval_bs: int,
    attack_bs: int,
    aa_version: str,
    seed: int,
) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of each kind of pass (c) runs, and the package's robust accuracy per AutoAttack row."""
    from evalsuite.attacks.autoattack import make_adversary

    parts: dict[str, float] = {}
    t0 = time.perf_counter()
    for x in sets.values():
        forward(net, x, eval_bs)
    parts["forward passes"] = time.perf_counter() - t0

    rows = [r for r in result.details["robust"]["results"] if not r["attack"].startswith("autoattack")]
    grads = sum(int(r["example_grads"]) for r in rows)
    fwd = sum(int(r["attacked"]) for r in rows)
    t0 = time.perf_counter()
    grad_rows(net, x_id, grads, attack_bs)
    forward_rows(net, x_id, fwd, attack_bs)
    parts[f"fgsm/pgd ({grads} fwd+bwd, {fwd} fwd rows)"] = time.perf_counter() - t0

    odin_images = [sets["id"], *(x for k, x in sets.items() if k.startswith("ood:"))]
    t0 = time.perf_counter()
    for x in odin_images:
        grad_rows(net, x, len(x), attack_bs)
        forward_rows(net, x, len(x), attack_bs)
    parts["odin"] = time.perf_counter() - t0

    correct = torch.from_numpy(arrays["id/correct"])
    xc, yc = x_id[correct].contiguous(), y_id[correct]
    package: dict[str, float] = {}
    for r in result.details["robust"]["results"]:
        if not r["attack"].startswith("autoattack"):
            continue
        norm = "l2" if r["attack"] == "autoattack_l2" else "linf"
        t0 = time.perf_counter()
        adversary = make_adversary(net, float(r["eps"]), norm, aa_version, seed, "cpu")
        with torch.random.fork_rng():
            _, y_adv = adversary.run_standard_evaluation(xc, yc, batch_size=attack_bs)
        parts[f"{r['attack']} {r['eps']:.4f} (package)"] = time.perf_counter() - t0
        package[f"{r['attack']}/{r['eps']!r}"] = float((y_adv == yc).sum()) / len(y_id)
    return parts, package


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=500, help="evaluated CIFAR-10 test images (seeded, stratified)")
    p.add_argument("--n-calib", type=int, default=1000, help="calibration images (disjoint from --n)")
    p.add_argument("--fit-limit", type=int, default=10000, help="training images the detectors are fit on")
    p.add_argument("--aa-version", default="standard")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    for f in (MODEL, CIFAR_TEST, CIFAR_TRAIN, IMAGENET):
        if not f.is_file():
            raise SystemExit(f"battery_full.py needs {f} (../shared); not found")
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    from evalsuite.battery.config import CHECKS, BatteryConfig
    from evalsuite.battery.run import evaluate_with_arrays
    from evalsuite.core.results import eps_name
    from evalsuite.data import load_dataset
    from evalsuite.data.base import stratified_subset
    from evalsuite.data.corruptions import load_corruption_sets

    with tempfile.TemporaryDirectory(prefix="evalsuite-perf-full-") as tmp_name:
        tmp = Path(tmp_name)
        id_spec, cal_spec, cor_spec, t_gen = prepare(tmp, args.n, args.n_calib)
        cfg = BatteryConfig(
            checks=CHECKS,
            attacks=ATTACKS,
            ood_scores=SCORES,
            aa_version=args.aa_version,
            calibrate="temperature",
            calib_data=cal_spec,
            fit_data=f"npz:{CIFAR_TRAIN}",
            fit_limit=args.fit_limit,
            corruption_data=cor_spec,
        )
        opts = resnet20_options(data=id_spec, ood=[f"near:imagenet=npz:{IMAGENET}", "far:photos"])
        net = load_resnet20(MODEL)
        with torch.inference_mode():  # warm-up: thread pool, allocator, kernels
            for _ in range(3):
                net(torch.rand(256, 3, 32, 32))

        t0 = time.perf_counter()
        result, arrays = evaluate_with_arrays(str(MODEL), cfg, opts)
        a = time.perf_counter() - t0

        # the images (c) passes over: exactly those the battery used
        eval_bs, attack_bs = 500, 256
        id_set = load_dataset(id_spec, "test")
        x_id, y_id = id_set.images(torch.arange(len(id_set))), id_set.y.long()
        sets: dict[str, Tensor] = {"id": x_id}
        cal = load_dataset(cal_spec, "test")
        sets["calib"] = cal.images(torch.arange(len(cal)))
        for o in result.data["ood"]:
            full = load_dataset(o["spec"], "test")
            sets[f"ood:{o['name']}"] = full.images(torch.from_numpy(arrays[f"ood/{o['name']}/index"]))
        fit = stratified_subset(load_dataset(f"npz:{CIFAR_TRAIN}", "train"), args.fit_limit, seed=cfg.seed)
        sets["fit"] = fit.images(torch.arange(len(fit)))
        for cs in load_corruption_sets(cor_spec):
            sets[f"corruption:{cs.name}"] = cs.data.images(torch.arange(len(cs.data)))
        c_parts, package = unavoidable(
            net, result, arrays, sets, x_id, y_id, eval_bs, attack_bs, args.aa_version, cfg.seed
        )
        c = sum(c_parts.values())

    print(f"full battery a={a:.1f}s unavoidable c={c:.1f}s a/c={a / c:.3f}")
    print(
        f"  model=akamaster resnet20 (pretrained) data=cifar10/test.npz stratified n={args.n}, calib "
        f"{args.n_calib}, fit {len(sets['fit'])} train images, "
        f"OOD {[k for k in sets if k.startswith('ood:')]}, "
        f"{sum(k.startswith('corruption:') for k in sets)} corrupted sets; AutoAttack {args.aa_version}; "
        f"torch {torch.__version__} threads={torch.get_num_threads()} cpu"
    )
    print(f"  corruptions generated beforehand in {t_gen:.1f}s (not counted)")
    print("  battery timings: " + " ".join(f"{k}={v:.1f}s" for k, v in result.timings.items()))
    print("  (c) parts: " + "; ".join(f"{k} {v:.1f}s" for k, v in c_parts.items()))
    m = result.metrics
    for key, acc in package.items():
        attack, eps = key.split("/")
        ours = m[f"robust/{attack}/{eps_name(float(eps))}/accuracy"]
        print(f"  {attack} eps {eps}: robust accuracy evalsuite {ours:.4f}, package {acc:.4f}")


if __name__ == "__main__":
    main()
