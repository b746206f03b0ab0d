"""evalsuite: does a randomly pruned network replace its dense twin?

The package is library first; ``evalsuite.cli`` is a thin layer over it.
Import order is one way: cli -> battery | train | bench -> metrics | ood | attacks | sparsity | data
| models | report -> core.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
