"""Exceptions that carry a message fit to show a user (file, row, field, and what to do).

Every error the CLI reports without a traceback derives from :class:`OnerecError`.
"""

from __future__ import annotations


class OnerecError(Exception):
    """Base class for user-facing errors: the message is complete and actionable."""


class ConfigError(OnerecError):
    """A configuration file or ``key=value`` override is invalid."""


class DataValidationError(OnerecError):
    """Input data is malformed. The message names the file, row and field where known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        row: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path, self.row, self.field, self.hint = path, row, field, hint
        where = []
        if path is not None:
            where.append(f"file {path}")
        if row is not None:
            where.append(f"row {row}")
        if field is not None:
            where.append(f"field '{field}'")
        text = (", ".join(where) + ": " if where else "") + message
        if hint:
            text += f" — {hint}"
        super().__init__(text)


class CheckpointError(OnerecError):
    """A checkpoint or saved model directory is missing, incomplete or incompatible."""
