"""The package version, in core so that every layer can record it without importing the package root."""

from __future__ import annotations

__version__ = "0.1.0"
