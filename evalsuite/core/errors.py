"""Errors the CLI turns into one-line messages.

``UsageError`` (exit 2) is for bad flags and names; every other ``EvalsuiteError`` (exit 1) is a runtime
failure such as missing data or a corrupt file.
"""

from __future__ import annotations


class EvalsuiteError(Exception):
    """A failure with a message meant for the user; the CLI prints it on one line, exit 1."""

    exit_code = 1


class UsageError(EvalsuiteError, ValueError):
    """Bad input from the user: an unknown name, a value out of range, conflicting flags. Exit 2."""

    exit_code = 2


class DataError(EvalsuiteError):
    """A dataset or file is missing, corrupt or of the wrong shape. Exit 1."""


class CheckpointError(EvalsuiteError):
    """A checkpoint cannot be read safely or does not match the request. Exit 1."""
