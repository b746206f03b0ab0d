"""One small registry type for models, sparsity schemes, datasets, attacks and OOD scores.

Modelled on timm's ``register_model``/``create_model`` and fvcore's ``Registry``: a decorator, an error
on duplicates, and a lookup error that lists the names and suggests the closest.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from evalsuite.core.errors import UsageError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object table with a one-line description per entry."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def register(self, name: str, help: str = "") -> Callable[[T], T]:
        """A decorator that registers its target under ``name`` and returns it unchanged."""

        def deco(obj: T) -> T:
            self.add(name, obj, help)
            return obj

        return deco

    def add(self, name: str, obj: T, help: str = "") -> None:
        """Register ``obj`` as ``name`` (help: given, else its docstring's first line); KeyError if taken."""
        if name in self._items:
            raise KeyError(f"{self.kind} {name!r} is already registered")
        self._items[name] = obj
        doc = help or (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
        self._help[name] = doc if isinstance(doc, str) else (doc[0] if doc else "")

    def get(self, name: str) -> T:
        """The object registered under ``name``; UsageError with close matches if none is."""
        try:
            return self._items[name]
        except KeyError:
            raise UsageError(self.unknown_message(name)) from None

    def unknown_message(self, name: str) -> str:
        """The error message for an unknown ``name``, with close matches and the known names."""
        close = difflib.get_close_matches(name, list(self._items), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._items))})"

    def describe(self, name: str) -> str:
        """The one-line help for ``name``, or an empty string."""
        return self._help.get(name, "")

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
