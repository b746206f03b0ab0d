"""AutoAttack through evalsuite vs the package's ``run_standard_evaluation`` run directly on all examples:
time ratio and robust accuracy, on the pretrained ResNet-20 and a seeded stratified subset of N CIFAR-10 test
images (the npz is sorted by class, so a prefix would be one class).

Default mode, one eps: evalsuite's default AutoAttack (the battery's bookkeeping, clean-correct examples only,
one package call per sub-attack; the package's own number) vs the package.

    python benchmarks/perf/autoattack.py --n 500 --version standard       # eps 8/255
    python benchmarks/perf/autoattack.py --n 100 --quick                  # APGD-CE + APGD-T, 20 steps

``--cascade``, every eps of ``--eps-list``: evalsuite as the battery runs it with ``--aa-cascade`` (PGD-10 at
every eps first, as the battery always does; then AutoAttack at each eps on what PGD and the smaller eps left
standing) vs the package at each eps on all examples. Prints both robust accuracies per eps and the time
ratio with and without the PGD evalsuite runs anyway.

    python benchmarks/perf/autoattack.py --n 500 --cascade

``--quick`` uses the package's ``custom`` version (the standard sub-attack order APGD-CE, APGD-T at smaller
budgets) for both sides.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[2]))

from _shared import CIFAR_TEST, MODEL, load_resnet20

from evalsuite.attacks import AttackConfig, run_attacks
from evalsuite.attacks.autoattack import make_adversary, run_autoattack
from evalsuite.data.base import stratified_indices


def _adversary(model: torch.nn.Module, eps: float, version: str, quick: bool, seed: int) -> Any:
    if not quick:
        return make_adversary(model, eps, "linf", version, seed, "cpu")
    from pyautoattack import AutoAttack

    aa = AutoAttack(model, attacks=["apgd-ce", "apgd-t"], eps=eps, seed=seed, version="custom", device="cpu")
    aa.apgd.n_iter = 20
    aa.apgd_targeted.n_iter = 20
    aa.apgd_targeted.n_target_classes = 3
    return aa


def cascade(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, correct: torch.Tensor, a: argparse.Namespace
) -> None:
    eps = AttackConfig("pgd_linf", tuple(a.eps_list.split(","))).eps
    marks: list[tuple[str, float]] = []
    t0 = time.perf_counter()
    res = run_attacks(
        model,
        x,
        y,
        correct,
        [
            AttackConfig("pgd_linf", eps, steps=10, rel_stepsize=0.25, seed=a.seed),
            AttackConfig("autoattack", eps, seed=a.seed, version=a.version, cascade=True),
        ],
        batch_size=a.batch_size,
        seed=a.seed,
        on_attack_done=lambda name, _: marks.append((name, time.perf_counter())),
    )
    t_pgd = dict(marks)["pgd_linf"] - t0
    t_aa = dict(marks)["autoattack"] - dict(marks)["pgd_linf"]
    t_pkg = 0.0
    print(
        f"n {a.n}, clean-correct {int(correct.sum())}, AutoAttack {a.version}, "
        f"{torch.get_num_threads()} threads"
    )
    print("eps       attacked  robust: evalsuite --aa-cascade  package   same outcome")
    for e in eps:
        t = time.perf_counter()
        _, y_adv = make_adversary(model, e, "linf", a.version, a.seed, "cpu").run_standard_evaluation(
            x, y, batch_size=a.batch_size
        )
        t_pkg += time.perf_counter() - t
        theirs = y_adv == y
        o = res.outcomes[("autoattack", e)]
        print(
            f"{e:.5f}  {o.attacked:8d}  {o.accuracy:27.4f}  {theirs.float().mean():7.4f}   "
            f"{bool(torch.equal(o.robust, theirs))}"
        )
    print(
        f"seconds: evalsuite AutoAttack {t_aa:.1f} (+ PGD-10 {t_pgd:.1f}, which the battery runs anyway), "
        f"package at every eps {t_pkg:.1f}; ratio {t_aa / t_pkg:.3f} (with PGD {(t_aa + t_pgd) / t_pkg:.3f})"
    )


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=100)
    p.add_argument("--eps", type=float, default=8 / 255)
    p.add_argument("--version", default="standard")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--cascade", action="store_true", help="--aa-cascade at every eps of --eps-list")
    p.add_argument("--eps-list", default="1/255,2/255,4/255,8/255")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    model = load_resnet20(MODEL)
    d = np.load(CIFAR_TEST)
    idx = stratified_indices(torch.from_numpy(d["y"]), a.n, seed=a.seed).numpy()
    x = (torch.from_numpy(d["x"][idx]).permute(0, 3, 1, 2).float() / 255).contiguous()
    y = torch.from_numpy(d["y"][idx]).long()

    t = time.perf_counter()
    with torch.no_grad():
        correct = torch.cat([model(xb).argmax(1) == yb for xb, yb in zip(x.split(256), y.split(256))])
    t_clean = time.perf_counter() - t  # the battery's predict pass, shared with every other metric
    if a.cascade:
        cascade(model, x, y, correct, a)
        return
    t = time.perf_counter()
    ours = run_autoattack(
        _adversary(model, a.eps, a.version, a.quick, a.seed), x, y, correct, a.batch_size, torch.device("cpu")
    )
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    _, y_adv = _adversary(model, a.eps, a.version, a.quick, a.seed).run_standard_evaluation(
        x, y, batch_size=a.batch_size
    )
    t_pkg = time.perf_counter() - t
    theirs = y_adv == y
    print(
        f"n {a.n}, clean-correct {int(correct.sum())}, eps {a.eps:.5f}, "
        f"{'quick (custom apgd-ce+apgd-t, 20 steps)' if a.quick else a.version}, "
        f"{torch.get_num_threads()} threads"
    )
    print(f"robust accuracy: evalsuite {ours.robust.float().mean():.4f}, package {theirs.float().mean():.4f}")
    print(f"same per-example outcome: {bool(torch.equal(ours.robust, theirs))}")
    print(f"fooled by: { {k: int(v.sum()) for k, v in ours.fooled_by.items()} }")
    print(
        f"seconds: evalsuite {t_ours:.1f} (+ {t_clean:.1f} predict pass, shared), package {t_pkg:.1f}; "
        f"ratio {t_ours / t_pkg:.2f}"
    )


if __name__ == "__main__":
    main()
