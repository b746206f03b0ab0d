"""evalsuite: does a randomly pruned network replace its dense twin?

The package is library first; ``evalsuite.cli`` is a thin layer over it.
Import order is one way: cli -> battery | train | bench -> metrics | ood | attacks | sparsity | data
| models | report -> core.

``evalsuite.evaluate(model_or_path, config, options) -> EvalResult`` runs the battery (imported lazily,
so ``import evalsuite`` stays light).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the battery imports torch: loaded on the first call, not on ``import evalsuite``
    from torch import nn

    from evalsuite.battery import BatteryConfig, EvalOptions
    from evalsuite.core.results import EvalResult

__version__ = "0.1.0"

__all__ = ["__version__", "evaluate"]


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
