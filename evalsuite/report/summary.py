"""A readable terminal summary of one EvalResult."""

from __future__ import annotations

from typing import Any

from evalsuite.core.results import EvalResult, metric_group

_GROUP_TITLES = {
    "clean": "clean",
    "calibration": "calibration",
    "ood": "OOD detection",
    "robust": "adversarial robustness",
    "sparsity": "sparsity",
}


def _fmt(value: float | int | None, name: str) -> str:
    if value is None:
        return "n/a"
    if name.startswith("sparsity/") and name.split("/")[-1] in (
        "params",
        "nonzero_params",
        "macs_dense",
        "macs_sparse",
        "masked_nonzero",
    ):
        return f"{int(value):,}"
    return f"{value:.4f}"


def format_normalization(record: dict[str, Any] | None) -> str:
    """'dataset:cifar10 standard statistics (mean 0.4914,0.4822,0.4465; std 0.247,0.2435,0.2616)'."""
    if not record:
        return "not recorded"
    source = str(record.get("source") or "unknown")
    mean, std = record.get("mean"), record.get("std")
    if mean is None or std is None:
        return source

    def nums(values: list[float]) -> str:
        return ",".join(f"{float(v):.4g}" for v in values)

    return f"{source} (mean {nums(mean)}; std {nums(std)})"


def format_result(result: EvalResult) -> str:
    """Metrics grouped by part, each with its direction arrow; then sizes, sanity flags and timings."""
    lines = []
    m = result.model
    d = result.data
    lines.append(f"{m.get('name')}  ({m.get('source_format')}, sha256 {str(m.get('sha256'))[:12]})")
    ood = ", ".join(f"{o['name']} ({o['n']})" for o in d.get("ood", [])) or "none"
    lines.append(f"data: {d['id']['spec']} test, n={d['id']['n']} of {d['id']['of']}; OOD: {ood}")
    if "normalization" in m:
        lines.append(f"normalization: {format_normalization(m['normalization'])}")
    warnings = result.sanity.get("warnings") or []
    lines.extend(f"WARNING: {w}" for w in warnings)
    groups: dict[str, list[str]] = {}
    for name in result.metrics:
        groups.setdefault(metric_group(name), []).append(name)
    for group in ("clean", "calibration", "ood", "robust", "sparsity"):
        names = groups.get(group)
        if not names:
            continue
        lines.append("")
        lines.append(_GROUP_TITLES[group])
        width = max(len(n) for n in names)
        for name in names:
            arrow = "↑" if result.higher_is_better(name) else "↓"
            lines.append(f"  {name:<{width}}  {arrow}  {_fmt(result.metrics[name], name):>12}")
    flags = result.sanity.get("robust_flags") or []
    checks = {k: v for k, v in result.sanity.items() if isinstance(v, bool)}
    if flags or checks:
        lines.append("")
        lines.append("sanity: " + ", ".join(f"{k}={'ok' if v else 'FAILED'}" for k, v in checks.items()))
        lines.extend(f"  ! {f}" for f in flags)
    if result.timings:
        lines.append("")
        lines.append("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items()))
    return "\n".join(lines)
