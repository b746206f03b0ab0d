"""``evalsuite.compare``: the library entry behind ``evalsuite compare``.

It lives in the battery layer because checkpoints among its inputs are evaluated first; the statistics and
the records are ``evalsuite.report``'s, which never imports the battery (or torch).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from evalsuite.core.errors import UsageError
from evalsuite.core.results import EvalResult
from evalsuite.report.compare import CompareSettings, ModelEntry, build_comparison, build_group_comparison
from evalsuite.report.model import Comparison

Input = str | os.PathLike[str] | ModelEntry | tuple[EvalResult, Mapping[str, np.ndarray]]


def _entries(
    inputs: Sequence[Input], names: Sequence[str] | None, config: Any, options: Any, group: str | None
) -> list[ModelEntry]:
    if names is not None and len(names) != len(inputs):
        raise UsageError(f"{len(names)} names for {len(inputs)} models")
    out: list[ModelEntry] = []
    paths = [str(x) for x in inputs if isinstance(x, str | os.PathLike)]
    collected: list[ModelEntry] = []
    if paths:
        # checkpoints go through the battery (imported here only: it needs torch); JSONs are read
        from evalsuite.battery.collect import collect_entries
        from evalsuite.battery.config import BatteryConfig
        from evalsuite.battery.options import EvalOptions

        collected = collect_entries(paths, config or BatteryConfig(), options or EvalOptions(), None, group)
    it = iter(collected)
    for i, x in enumerate(inputs):
        if isinstance(x, ModelEntry):
            e = x
        elif isinstance(x, tuple):
            result, arrays = x
            e = ModelEntry(str(result.model.get("name") or f"model{i}"), "<memory>", result, dict(arrays))
        else:
            e = next(it)
        if names is not None:
            e.name = names[i]
        e.group = group or e.group
        out.append(e)
    return out


def compare(
    models: Sequence[Input] | None = None,
    *,
    reference: str | None = None,
    names: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[Input]] | None = None,
    settings: CompareSettings | None = None,
    config: Any = None,
    options: Any = None,
) -> Comparison:
    """Compare models with a reference and return the typed :class:`~evalsuite.report.model.Comparison`.

    ``models``: checkpoints or result JSON paths (``Path`` or ``str``; checkpoints are evaluated with
    ``config`` / ``options``, a ``battery.BatteryConfig`` and ``battery.EvalOptions``), ``ModelEntry``
    records, or ``(EvalResult, arrays)`` pairs, the first the reference unless ``reference`` names another.
    ``groups``: several seeds per model instead (``{"dense": [...], "erk": [...]}``), tested per seed.
    ``settings``: alpha, bootstrap size, ``primary``, ``correction``, ``margins`` (``CompareSettings``).
    Render it with ``evalsuite.report.render_markdown`` or write a folder with ``write_report``.
    """
    if (models is None) == (groups is None):
        raise UsageError("give models or groups, not both (and not neither)")
    if groups is not None:
        built = {g: _entries(list(m), None, config, options, g) for g, m in groups.items()}
        return build_group_comparison(built, reference, settings)
    assert models is not None
    return build_comparison(_entries(list(models), names, config, options, None), reference, settings)


__all__ = ["compare"]
