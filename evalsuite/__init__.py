"""evalsuite: does a randomly pruned network replace its dense twin?

The package is library first; ``evalsuite.cli`` is a thin layer over it. Imports go one way, top to
bottom (``a | b``: siblings that never import each other):

    cli
    bench                                        orchestrates training and the battery; stores runs
    train | battery                              train models; evaluate one model into an EvalResult
    report                                       compare results and render them; never imports torch
    attacks | ood | sparsity | data | models     the parts the battery and training assemble
    metrics                                      pure functions on arrays, statistics, the metric catalogue
    core                                         errors, registry, I/O, provenance, record types, __version__

``make lint`` holds the line with the import-linter contract in pyproject.toml (``lint-imports``). A
record type or helper that two layers share goes down to the lower one, never up.

``evalsuite.evaluate(model_or_path, config, options) -> EvalResult`` runs the battery (imported lazily,
so ``import evalsuite`` stays light).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the battery imports torch: loaded on the first call, not on ``import evalsuite``
    from torch import nn

    from evalsuite.battery import BatteryConfig, EvalOptions
    from evalsuite.core.results import EvalResult, ModelEntry
    from evalsuite.report.compare import CompareSettings
    from evalsuite.report.model import Comparison

from evalsuite.core.version import __version__

__all__ = ["__version__", "compare", "evaluate"]


def evaluate(
    model: str | os.PathLike[str] | nn.Module,
    config: BatteryConfig | None = None,
    options: EvalOptions | None = None,
    **option_overrides: Any,
) -> EvalResult:
    """Run the battery on a checkpoint path or an nn.Module; see ``evalsuite.battery.evaluate``.

    ``option_overrides`` are ``EvalOptions`` fields (``data="digits"``) applied to a copy of ``options``.
    """
    from evalsuite.battery import evaluate as _evaluate

    return _evaluate(model, config, options, **option_overrides)


def compare(
    models: Sequence[str | os.PathLike[str] | ModelEntry | tuple[EvalResult, dict[str, Any]]] | None = None,
    *,
    reference: str | None = None,
    names: Sequence[str] | None = None,
    groups: Mapping[str, Sequence[str | os.PathLike[str]]] | None = None,
    settings: CompareSettings | None = None,
    config: BatteryConfig | None = None,
    options: EvalOptions | None = None,
) -> Comparison:
    """Models (or seed groups) vs a reference -> the typed Comparison; see ``evalsuite.battery.compare``."""
    from evalsuite.battery.compare import compare as _compare

    return _compare(
        models,
        reference=reference,
        names=names,
        groups=groups,
        settings=settings,
        config=config,
        options=options,
    )
