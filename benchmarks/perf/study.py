"""Study throughput: the same slice of the digits study with 1 and with 2 local workers, in one run.

    python benchmarks/perf/study.py [--epochs 8] [--repeat 1]

The slice is study-digits with one scheme (ERK) at one density (0.1): 2 widths x 3 seeds and their dense
twins, 12 jobs, each a full job: init, ``--epochs`` of training on the 1,347 digits training images, and the
suite's battery. Each configuration runs in a fresh runs folder and store through the real driver
(``run_study`` with ``LocalEngine``), so process start-up and torch import are counted as a user pays them.
Prints jobs per minute for each and the ratio (2 workers / 1 worker); 2.0 would be perfect scaling on this
2-core machine. Configurations alternate when ``--repeat`` > 1; the best of each is kept.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from evalsuite.bench.engines import LocalEngine
from evalsuite.bench.runner import Overrides
from evalsuite.bench.study import run_study
from evalsuite.bench.suite import SUITE_DIR as SUITES
from evalsuite.bench.suite import load_suite


def _slice(folder: Path, epochs: int) -> Path:
    """study-digits with one scheme and one density: 2 widths x 3 seeds sparse + their 6 dense twins."""
    text = (SUITES / "study-digits.toml").read_text(encoding="utf-8")
    text = text.replace('scheme = ["erk", "er", "uniform"]', 'scheme = "erk"')
    text = text.replace("density = [0.05, 0.1, 0.2]", "density = 0.1")
    text = text.replace("epochs = 8", f"epochs = {epochs}")
    path = folder / "study-slice.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _run(workers: int, epochs: int) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        suite = load_suite(str(_slice(Path(tmp), epochs)))
        t0 = time.perf_counter()
        with LocalEngine(workers) as engine:
            out = run_study(suite, Path(tmp) / "s.db", Overrides(), Path(tmp) / "runs", engine)
        wall = time.perf_counter() - t0
    if out.failures or not out.ran:
        raise SystemExit(f"study slice failed: {out.failures}")
    return wall, len(out.ran)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    best: dict[int, float] = {}
    for _ in range(args.repeat):
        for w in (1, 2):
            wall, n = _run(w, args.epochs)
            best[w] = min(best.get(w, float("inf")), wall)
            print(f"workers={w}: {n} jobs in {wall:.1f} s ({60 * n / wall:.1f} jobs/min)")
    print(
        f"throughput ratio 2 workers / 1 worker = {best[1] / best[2]:.2f} "
        f"(best of {args.repeat}; 12 jobs, {args.epochs} epochs each)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
