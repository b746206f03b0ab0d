"""evalsuite: does a randomly pruned network replace its dense twin?

The package is library first; ``evalsuite.cli`` is a thin layer over it.
Import order is one way: cli -> battery | train | bench -> metrics | ood | attacks | sparsity | data
| models | report -> core.

``evalsuite.evaluate(model_or_path, config, options) -> EvalResult`` runs the battery (imported lazily,
so ``import evalsuite`` stays light).
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "compare", "evaluate"]


def evaluate(*args: Any, **kwargs: Any) -> Any:
    """See ``evalsuite.battery.evaluate``."""
    from evalsuite.battery import evaluate as _evaluate

    return _evaluate(*args, **kwargs)


def compare(*args: Any, **kwargs: Any) -> Any:
    """See ``evalsuite.report.api.compare``: models (or seed groups) vs a reference -> typed Comparison."""
    from evalsuite.report.api import compare as _compare

    return _compare(*args, **kwargs)
