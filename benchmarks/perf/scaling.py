"""Battery time and peak memory as the ID test set grows, with 1 vs 3 OOD sets.

Each (size, OOD sets) point runs in a fresh subprocess (this script with ``--child``), so peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``) belongs to that point alone. The child loads the model,
runs one warm-up forward, records its RSS (the baseline: interpreter, torch, model), then times one
``evaluate_with_arrays`` call (cache off; model and data loading included).

Default (cheaper than the full battery, to keep the 4k point to a couple of CPU minutes):
``--checks clean,calibration,ood,robust`` (no sparsity audit), attacks ``fgsm,pgd_linf`` at eps 8/255 only
(PGD-10, step eps/4, random start, early retirement), the pretrained akamaster resnet20 on seeded
stratified subsets of cifar10/test.npz. OOD sets: 1 = the ImageNet sample; 3 = it plus ``gaussian:N`` and
``uniform:N`` (the battery's ``limit`` also caps each OOD set at N, and the ImageNet sample has 1,000
images). Without ../shared a fresh resnet20 on synthetic npz data is used, and the output says so.

With ``--repeat R`` every point runs R times (points interleaved, a fresh process each); the minimum
time and the maximum peak RSS are kept. Prints one line of ratios (time 2k/1k and 4k/1k with one OOD
set; peak RSS with 3 vs 1 OOD sets at the largest size), then one line per point.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _shared import ARCH_KWARGS, CIFAR_TEST, IMAGENET, MODEL, load_resnet20, resnet20_options


def _label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def child(args: argparse.Namespace) -> None:
    from evalsuite.battery.config import BatteryConfig, parse_list
    from evalsuite.battery.run import evaluate_with_arrays

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_resnet20(args.model)
    with torch.inference_mode():
        model(torch.rand(256, 3, 32, 32))
    del model
    base = _rss_mb()
    cfg = BatteryConfig(
        checks=parse_list(args.checks),
        attacks=parse_list(args.attacks),
        eps_linf=tuple(args.eps_linf),
        eps_l2=tuple(args.eps_l2),
        limit=args.n,
    )
    ood = [args.ood1] + ([f"gaussian:{args.n}", f"uniform:{args.n}"] if args.ood == 3 else [])
    opts = resnet20_options(data=args.data, ood=ood)
    t0 = time.perf_counter()
    result, arrays = evaluate_with_arrays(args.model, cfg, opts)
    wall = time.perf_counter() - t0
    out = {
        "n": result.data["id"]["n"],
        "ood": {o["name"]: o["n"] for o in result.data["ood"]},
        "seconds": wall,
        "timings": result.timings,
        "rss_base_mb": base,
        "rss_peak_mb": _rss_mb(),
        "arrays_mb": sum(a.nbytes for a in arrays.values()) / 2**20,
    }
    print(json.dumps(out))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="1000,2000,4000", help="ID set sizes, comma-separated")
    p.add_argument("--checks", default="clean,calibration,ood,robust")
    p.add_argument("--attacks", default="fgsm,pgd_linf")
    p.add_argument("--eps-linf", type=float, nargs="+", default=[8 / 255])
    p.add_argument("--eps-l2", type=float, nargs="+", default=[0.5])
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in each child")
    p.add_argument("--repeat", type=int, default=1, help="runs per point (fresh process each); min time kept")
    p.add_argument("--synthetic", action="store_true", help="fresh resnet20 + synthetic data")
    # child-only arguments
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--ood", type=int, help=argparse.SUPPRESS)
    p.add_argument("--ood1", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return

    sizes = [int(s) for s in args.sizes.split(",")]
    tmp = None
    if not args.synthetic and MODEL.is_file() and CIFAR_TEST.is_file() and IMAGENET.is_file():
        model, data, ood1 = str(MODEL), f"npz:{CIFAR_TEST}", f"imagenet=npz:{IMAGENET}"
        what = "akamaster resnet20 (pretrained), cifar10/test.npz stratified subsets, OOD imagenet_sample"
    else:
        from evalsuite.models.zoo import MODELS

        tmp = tempfile.TemporaryDirectory(prefix="evalsuite-scaling-")
        d = Path(tmp.name)
        torch.manual_seed(0)
        torch.save(MODELS.get("resnet20")(num_classes=10, **ARCH_KWARGS).state_dict(), d / "r20.pt")
        rng = np.random.default_rng(0)
        for name in ("id", "ood"):
            n = max(sizes)
            x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
            np.savez_compressed(d / f"{name}.npz", x=x, y=np.arange(n) % 10)
        model, data, ood1 = str(d / "r20.pt"), f"npz:{d / 'id.npz'}", f"synthetic=npz:{d / 'ood.npz'}"
        what = "resnet20 FRESHLY INITIALIZED on SYNTHETIC noise data (../shared absent or --synthetic)"

    runs: dict[tuple[int, int], list[dict[str, Any]]] = {}
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    points = [(n, k) for n in sizes for k in (1, 3)]
    for _rep in range(args.repeat):
        for n, k in points:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                "--n",
                str(n),
                "--ood",
                str(k),
                "--ood1",
                ood1,
                "--data",
                data,
                "--model",
                model,
                "--checks",
                args.checks,
                "--attacks",
                args.attacks,
                "--eps-linf",
                *map(repr, args.eps_linf),
                "--eps-l2",
                *map(repr, args.eps_l2),
            ]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            runs.setdefault((n, k), []).append(json.loads(done.stdout.strip().splitlines()[-1]))
    for key, rs in runs.items():
        rows[key] = dict(min(rs, key=lambda r: r["seconds"]))
        rows[key]["runs"] = [r["seconds"] for r in rs]
        rows[key]["rss_peak_mb"] = max(r["rss_peak_mb"] for r in rs)
    if tmp is not None:
        tmp.cleanup()

    n0, n_last = sizes[0], sizes[-1]
    t1 = rows[(n0, 1)]["seconds"]
    ratios = " ".join(f"{_label(n)}/{_label(n0)}={rows[(n, 1)]['seconds'] / t1:.2f}" for n in sizes[1:])
    mem = rows[(n_last, 3)]["rss_peak_mb"] / rows[(n_last, 1)]["rss_peak_mb"]
    mem_delta = (rows[(n_last, 3)]["rss_peak_mb"] - rows[(n_last, 3)]["rss_base_mb"]) / max(
        rows[(n_last, 1)]["rss_peak_mb"] - rows[(n_last, 1)]["rss_base_mb"], 1e-9
    )
    print(
        f"time (1 OOD set) {ratios}; peak RSS 3 OOD/1 OOD at n={n_last}: {mem:.2f} "
        f"(above baseline: {mem_delta:.2f})"
    )
    print(f"  {what}; checks={args.checks} attacks={args.attacks} eps_linf={args.eps_linf}")
    print(f"  torch {torch.__version__} threads={args.threads or torch.get_num_threads()} cpu")
    for (n, k), r in rows.items():
        tm = r["timings"]
        print(
            f"  n={n:5d} ood_sets={k} {r['seconds']:7.2f}s ({r['seconds'] / n * 1e3:.1f} ms/example; "
            f"predict {tm.get('predict', 0):.2f}s robust {tm.get('robust', 0):.2f}s) "
            f"peak RSS {r['rss_peak_mb']:.0f} MB (baseline {r['rss_base_mb']:.0f} MB, "
            f"+{r['rss_peak_mb'] - r['rss_base_mb']:.0f} MB; per-example arrays {r['arrays_mb']:.1f} MB) "
            f"ood n={r['ood']} runs={[round(t, 2) for t in r['runs']]}"
        )


if __name__ == "__main__":
    main()
