"""The paper grid's size and cost: jobs, epochs, counted FLOPs, and hours from a measured step time.

    python benchmarks/perf/paper_grid.py [--suite paper-cifar10] [--device auto] [--no-measure]
                                         [--assume-tflops 30]

The FLOPs are counted (torch's FlopCounterMode, one forward pass of one image per distinct network, x3 for
a training step). The hours come from timing real training steps (batch 128) of each distinct network on
the device this runs on: on a GPU they are GPU-hours measured there; on a CPU they are CPU-hours of this
machine. ``--assume-tflops`` adds a clearly labelled *assumption* (sustained training FLOP/s of a GPU you
do not have here) for a GPU-hours figure that was not measured.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from evalsuite.bench.plan import estimate, plan_suite
from evalsuite.bench.suite import load_suite


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="paper-cifar10")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--no-measure", action="store_true", help="count FLOPs only")
    ap.add_argument("--assume-tflops", type=float, default=None, help="assumed sustained TFLOP/s (labelled)")
    args = ap.parse_args()
    plan = plan_suite(load_suite(args.suite, loading=False))
    t0 = time.perf_counter()
    est = estimate(plan, measure=not args.no_measure, device=args.device)
    print(f"suite {args.suite}: " + "\n".join(est.lines()))
    print(f"(estimate took {time.perf_counter() - t0:.1f} s)")
    if args.assume_tflops:
        hours = est.train_flops / (args.assume_tflops * 1e12) / 3600
        print(
            f"ASSUMPTION, not measured: at a sustained {args.assume_tflops:g} TFLOP/s, the training FLOPs "
            f"take {hours:,.0f} GPU-hours"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
