"""A readable terminal summary of one EvalResult."""

from __future__ import annotations

from evalsuite.core.results import EvalResult, format_normalization
from evalsuite.metrics import catalogue as K

_GROUP_TITLES = {
    "clean": "clean",
    "calibration": "calibration",
    "ood": "OOD detection",
    "robust": "adversarial robustness",
    "corruption": "corruption shift",
    "sparsity": "sparsity",
}


def _fmt(value: float | int | None, name: str) -> str:
    if value is None:
        return "n/a"
    if K.kind_of(name) == "count":
        return f"{int(value):,}"
    return f"{value:.4f}"


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
        groups.setdefault(K.group_of(name), []).append(name)
    for group in K.GROUP_ORDER:
        names = groups.get(group)
        if not names:
            continue
        lines.append("")
        lines.append(_GROUP_TITLES[group])
        width = max(len(n) for n in names)
        for name in names:
            hib = (result.metric_info.get(name) or {}).get("higher_is_better")
            arrow = "↑" if (K.higher_is_better(name) if hib is None else hib) else "↓"
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
