"""A realistic Comparison dict (schema evalsuite-comparison v1) built without torch or the builder:
dense vs two sparse models, one failed model, every metric group and every plot kind."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# name -> (accuracy, nll, ece, auroc energy, fpr95 energy, auroc msp, pgd 8/255, fgsm 8/255, density)
_BASE = {
    "dense": (0.9312, 0.2410, 0.0310, 0.9120, 0.3100, 0.9010, 0.0120, 0.1050, 1.0),
    "erk-0.1": (0.9271, 0.2392, 0.0240, 0.9055, 0.3300, 0.8990, 0.0140, 0.1120, 0.1),
    "uniform-0.2": (0.9105, 0.2950, 0.0450, 0.8800, 0.4100, 0.8700, 0.0090, 0.0800, 0.2),
}
_METRICS = [
    ("accuracy", "clean", True, "wilson", "mcnemar_exact"),
    ("nll", "clean", False, "bootstrap", "paired_bootstrap"),
    ("ece", "calibration", False, "bootstrap", "paired_bootstrap"),
    ("ood/svhn/energy/auroc", "ood", True, "bootstrap", "delong"),
    ("ood/svhn/energy/fpr95", "ood", False, "bootstrap", "paired_bootstrap"),
    ("ood/svhn/msp/auroc", "ood", True, "bootstrap", "delong"),
    ("robust/pgd_linf/8_255/accuracy", "robust", True, "wilson", "mcnemar_exact"),
    ("robust/fgsm/8_255/accuracy", "robust", True, "wilson", "mcnemar_exact"),
    ("sparsity/density", "sparsity", False, None, None),
    ("sparsity/nonzero_params", "sparsity", False, None, None),
]
# p_holm per (non-reference position, metric index): erk is mostly n.s. but better on ECE; uniform worse.
_P_HOLM = [
    [0.60, 0.90, 0.004, 0.21, 0.30, 1.0, 0.45, 0.33],
    [0.0001, 0.002, 0.01, 0.0004, 0.003, 0.02, 0.11, 0.0009],
]
N_ID, N_OOD = 10000, 26032
LAYERS = [("net.conv1.weight", 432)] + [(f"net.layer{i}.conv.weight", 2304 * 2**i) for i in range(6)]
LAYERS += [("net.fc.weight", 640)]


def _verdict(delta: float, p: float, higher: bool) -> str:
    if p >= 0.05 or delta == 0:
        return "no significant difference"
    return "better" if (delta > 0) == higher else "worse"


def _reliability(acc: float, ece: float, rng: np.random.Generator) -> dict[str, Any]:
    edges = np.linspace(0, 1, 16)
    counts = np.zeros(15, dtype=int)
    counts[5:] = np.round(np.geomspace(30, 8000, 10)).astype(int)
    conf = (edges[:-1] + edges[1:]) / 2 + rng.uniform(-0.01, 0.01, 15)
    accuracy = np.clip(conf - ece * rng.uniform(0.5, 1.5, 15), 0, 1)
    return {
        "scheme": "uniform",
        "lower": edges[:-1].tolist(),
        "upper": edges[1:].tolist(),
        "counts": counts.tolist(),
        "confidence": [None if c == 0 else float(x) for c, x in zip(counts, conf)],
        "accuracy": [None if c == 0 else float(x) for c, x in zip(counts, accuracy)],
    }


def _roc(sid: np.ndarray, sood: np.ndarray) -> dict[str, Any]:
    thr = np.quantile(np.concatenate([sid, sood]), np.linspace(1, 0, 60))
    fpr = [float((sid >= t).mean()) for t in thr]
    tpr = [float((sood >= t).mean()) for t in thr]
    auroc = float((sood[:, None] > sid[None, :300]).mean())
    return {"fpr": [0.0, *fpr], "tpr": [0.0, *tpr], "auroc": auroc}


def build_comparison(
    names: tuple[str, str, str] = ("dense", "erk-0.1", "uniform-0.2"),
    failed: bool = True,
    seed_groups: bool = False,
) -> dict[str, Any]:
    """``names[0]`` is the reference; the numbers come from ``_BASE`` by position."""
    rng = np.random.default_rng(0)
    base = dict(zip(names, _BASE.values()))
    ref = names[0]
    rows = []
    for i, (metric, group, higher, ci_method, test) in enumerate(_METRICS):
        row: dict[str, Any] = {
            "name": metric,
            "group": group,
            "higher_is_better": higher,
            "values": {},
            "deltas": {},
        }
        for name, vals in base.items():
            v = float(round(11_173_962 * vals[-1])) if metric == "sparsity/nonzero_params" else vals[i]
            entry: dict[str, Any] = {
                "value": v,
                "ci_low": None,
                "ci_high": None,
                "n": None,
                "ci_method": ci_method,
            }
            if ci_method == "wilson":
                half = 1.96 * math.sqrt(v * (1 - v) / N_ID)
                # Wilson intervals lean towards 0.5: asymmetric near the ends.
                entry.update(ci_low=v - half * 1.05, ci_high=v + half * 0.95, n=N_ID)
            elif ci_method == "bootstrap":
                entry.update(ci_low=v - 0.004, ci_high=v + 0.004, n=N_ID)
            row["values"][name] = entry
        if test is not None:
            for j, name in enumerate(names[1:]):
                delta = base[name][i] - base[ref][i]
                p_holm = _P_HOLM[j][i]
                row["deltas"][name] = {
                    "delta": delta,
                    "ci_low": delta - 0.006,
                    "ci_high": delta + 0.006,
                    "p_value": p_holm / 4,
                    "p_holm": p_holm,
                    "test": test,
                    "verdict": _verdict(delta, p_holm, higher),
                }
        if seed_groups:
            row["seed_level"] = {n: {"mean": row["values"][n]["value"], "std": 0.002, "n": 3} for n in names}
        rows.append(row)

    models: list[dict[str, Any]] = []
    for name, vals in base.items():
        density = vals[-1]
        layers = [
            {
                "layer": layer,
                "density": 1.0 if k in (0, len(LAYERS) - 1) and density < 1 else density,
                "numel": n,
            }
            for k, (layer, n) in enumerate(LAYERS)
        ]
        models.append(
            {
                "name": name,
                "source": f"checkpoints/{name}.pt",
                "sha256": hashlib.sha256(name.encode()).hexdigest(),
                "status": "ok",
                "error": None,
                "arch": "resnet20",
                "sparsity": {"scheme": "dense" if density == 1 else name.split("-")[0], "density": density},
                "layer_density": layers,
            }
        )
    if failed:
        models.append(
            {
                "name": "broken",
                "source": "checkpoints/broken.pt",
                "sha256": None,
                "status": "failed",
                "error": "CheckpointError: checkpoints/broken.pt: truncated (expected 1.1 MB, got 12 kB)",
            }
        )

    plots: dict[str, Any] = {"reliability": {}, "robust": {}, "roc": {}, "hist": {}}
    for name, vals in base.items():
        acc, _, ece, au, _, _, pgd, fgsm, _ = vals
        plots["reliability"][name] = _reliability(acc, ece, rng)
        plots["robust"][name] = {
            "pgd_linf": [[0.0, acc], [2 / 255, 0.45 + pgd], [4 / 255, 0.15 + pgd], [8 / 255, pgd]],
            "fgsm": [[0.0, acc], [2 / 255, 0.55 + fgsm], [8 / 255, fgsm]],
        }
        plots["roc"][name] = {"svhn": {}}
        plots["hist"][name] = {"svhn": {}}
        for score, shift in (("energy", 2.0 * au), ("msp", 1.8 * au)):
            sid = rng.normal(0.0, 1.0, 400)
            sood = rng.normal(shift, 1.0, 400)
            plots["roc"][name]["svhn"][score] = _roc(sid, sood)
            plots["hist"][name]["svhn"][score] = {"id": sid.tolist(), "ood": sood.tolist()}

    comp: dict[str, Any] = {
        "schema": "evalsuite-comparison",
        "schema_version": 1,
        "reference": ref,
        "models": models,
        "metrics": rows,
        "seed_groups": {n: {"members": [f"{n}-s{s}" for s in range(3)]} for n in names}
        if seed_groups
        else None,
        "plots": plots,
        "settings": {
            "alpha": 0.05,
            "n_boot": 1000,
            "seed": 0,
            "multiple_testing": "holm",
            "ci_level": 0.95,
            "tests": {"accuracy": "exact McNemar; delta CI paired bootstrap", "auroc": "DeLong"},
        },
        "data": {"id": {"spec": "cifar10", "n": N_ID, "of": N_ID}, "ood": [{"name": "svhn", "n": N_OOD}]},
        "conventions": {
            "density": "fraction of prunable weights kept",
            "ece": "15 equal-width bins, L1, top-label",
            "ood": "higher score = more OOD; AUROC with OOD positive",
        },
        "provenance": {
            "inputs": {
                n: {"versions": {"evalsuite": "0.1.0"}, "git_revision": "6e6e7e5" + "a" * 33, "device": "cpu"}
                for n in names
            }
        },
    }
    return comp


@pytest.fixture
def comparison() -> dict[str, Any]:
    return build_comparison()


@pytest.fixture
def make_comparison() -> Callable[..., dict[str, Any]]:
    return build_comparison


@pytest.fixture(scope="session")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One full report (plots included) shared by the read-only tests; plotting is the slow part."""
    from evalsuite.report.write import write_report

    return write_report(build_comparison(), tmp_path_factory.mktemp("shared") / "report")
