"""``onerec prepare``: read raw logs into a validated prepared-dataset directory."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach the data commands to ``app`` (filled in by the data layer)."""
    del app
