"""Registry, errors, atomic I/O and provenance. Imports nothing else of ours."""

from evalsuite.core.errors import DataError, EvalsuiteError, UsageError
from evalsuite.core.io import atomic_write_bytes, atomic_write_text, sha256_file
from evalsuite.core.provenance import provenance
from evalsuite.core.registry import Registry

__all__ = [
    "DataError",
    "EvalsuiteError",
    "Registry",
    "UsageError",
    "atomic_write_bytes",
    "atomic_write_text",
    "provenance",
    "sha256_file",
]
