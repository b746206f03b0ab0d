"""``scipy.stats`` on first use: importing it costs about a second, and ``evalsuite eval`` never tests."""

from __future__ import annotations

from typing import Any


class _LazyModule:
    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        import importlib

        return getattr(importlib.import_module(self._name), attr)


scipy_stats: Any = _LazyModule("scipy.stats")
