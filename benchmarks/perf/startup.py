"""Start-up cost: a 10-image clean eval as a whole process vs ``python -c "import torch"``, in one run.

Both are fresh processes (interpreter start, imports, work, exit), interleaved ``--repeat`` times; the
minimum of each is kept. The eval is the CLI a user types on the embedded default:

    evalsuite -q eval checkpoints/digits-dense.pt --limit 10 --checks clean --no-cache

Prints ``eval=..s torch=..s ratio=..`` (goal: ratio <= 1.8) and the modules the eval pulled in that it should
not need (torchvision, torchattacks, pandas, matplotlib, netcal, scipy.stats).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _shared import ROOT

HEAVY = ("torchvision", "torchattacks", "pandas", "matplotlib", "netcal", "scipy.stats", "sklearn")


def wall(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    eval_cmd = [
        sys.executable,
        "-m",
        "evalsuite.cli",
        "-q",
        "eval",
        "checkpoints/digits-dense.pt",
        "--limit",
        "10",
        "--checks",
        "clean",
        "--no-cache",
    ]
    torch_cmd = [sys.executable, "-c", "import torch"]
    t_eval, t_torch = [], []
    for _ in range(args.repeat):
        t_torch.append(wall(torch_cmd))
        t_eval.append(wall(eval_cmd))
    e, t = min(t_eval), min(t_torch)
    print(f"eval={e:.2f}s torch={t:.2f}s ratio={e / t:.2f}  (min of {args.repeat}; goal ratio <= 1.8)")
    print(f"  runs eval={[round(v, 2) for v in t_eval]} torch={[round(v, 2) for v in t_torch]}")
    probe = subprocess.run(
        [sys.executable, "-X", "importtime", *eval_cmd[1:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = {
        ln.rsplit("|", 1)[-1].strip() for ln in probe.stderr.splitlines() if ln.startswith("import time:")
    }
    heavy = [m for m in HEAVY if m in loaded]
    print(f"  heavy modules imported by the eval: {', '.join(heavy) if heavy else 'none'}")


if __name__ == "__main__":
    main()
