"""Synthetic study results written with the real EvalResult: 2 widths x 2 schemes x 2 densities x 3 seeds
plus the dense twin of each (width, seed), with known metric values, laid out as study job folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from evalsuite.core.results import EvalResult, save_result
from evalsuite.metrics import catalogue as K

WIDTHS = (8, 16)
SCHEMES = ("erk", "uniform")
DENSITIES = (0.05, 0.2)
SEEDS = (0, 1, 2)
METRICS = ("accuracy", "ece", "nll", "sparsity/params")


def params_of(width: int) -> int:
    return 1000 * width * width + 37


def values(width: int, scheme: str, density: float, seed: int) -> dict[str, float]:
    """Known, seed-dependent numbers: sparse nets lose accuracy as density falls, less when wider."""
    rng = np.random.default_rng([width, len(scheme), int(density * 100), seed])
    gap = 0.0 if scheme == "dense" else (0.08 if scheme == "uniform" else 0.05) * (0.3 / (density + 0.1))
    gap *= 8 / width
    return {
        "accuracy": float(np.clip(0.95 - gap + rng.normal(0, 0.006), 0, 1)),
        "ece": float(abs(0.03 + gap / 3 + rng.normal(0, 0.004))),
        "nll": float(0.2 + gap + rng.normal(0, 0.01)),
        "sparsity/params": float(params_of(width)),
    }


def points() -> list[dict[str, Any]]:
    out = []
    for w in WIDTHS:
        for s in SEEDS:
            out.append(
                {
                    "dataset": "digits",
                    "arch": "smallcnn",
                    "width": w,
                    "scheme": "dense",
                    "density": 1.0,
                    "seed": s,
                }
            )
            out += [
                {"dataset": "digits", "arch": "smallcnn", "width": w, "scheme": sc, "density": d, "seed": s}
                for sc in SCHEMES
                for d in DENSITIES
            ]
    return out


def make_result(axes: dict[str, Any], metrics: dict[str, float] | None = None) -> EvalResult:
    m = (
        metrics
        if metrics is not None
        else values(axes["width"], axes["scheme"], axes["density"], axes["seed"])
    )
    w = axes["width"]
    card = {
        "arch": axes["arch"],
        "arch_kwargs": {"width": w},
        "num_classes": 10,
        "input_shape": [1, 8, 8],
        "normalization": {"mean": [0.5], "std": [0.25]},
        "dataset": axes["dataset"],
        "sparsity": {
            "scheme": axes["scheme"],
            "target_density": axes["density"],
            "realized_density": axes["density"],
            "layers": [
                {"name": "net.conv.weight", "numel": 90 * w},
                {"name": "net.fc.weight", "numel": 10 * w},
            ],
        },
        "recipe": None,
        "seed": axes["seed"],
        "metrics": {},
        "provenance": {},
    }
    name = f"{axes['arch']}-w{w}-{axes['scheme']}-{axes['density']}-s{axes['seed']}"
    return EvalResult(
        metrics=dict(m),
        metric_info={k: {"higher_is_better": K.higher_is_better(k)} for k in m},
        config={"checks": ["clean", "calibration"], "n_bins": 15, "shard": None},
        conventions={},
        data={"id": {"spec": "digits", "n": 360}},
        model={"name": name, "source": f"{name}.pt", "card": card},
        provenance={},
        # real results run to tens of kB of details: the schema tag (written last) lies far from the start
        details={"per_example_confidence": [round(0.5 + i / 20000, 5) for i in range(1000)]},
    )


def job_id(axes: dict[str, Any]) -> str:
    return "j" + "-".join(str(axes[k]) for k in ("width", "scheme", "density", "seed")).replace(".", "p")


def write_study(root: Path, with_spec: bool = True, file_name: str = "result.json") -> list[dict[str, Any]]:
    """One job folder per point (spec.json, status.json, result.json + .npz); returns the points.
    ``file_name="{job}.json"`` names each result after its job instead."""
    pts = points()
    for axes in pts:
        d = root / job_id(axes)
        d.mkdir(parents=True)
        save_result(make_result(axes), {"id/labels": np.arange(4)}, d / file_name.format(job=job_id(axes)))
        if with_spec:
            spec = {"job_id": job_id(axes), "name": job_id(axes), "axes": axes}
            (d / "spec.json").write_text(json.dumps(spec))
            (d / "status.json").write_text(json.dumps({"state": "done", "job_id": job_id(axes)}))
    return pts
