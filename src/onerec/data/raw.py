"""``RawTables``: what every reader returns, before validation and dense indexing.

Readers rename the source columns to the canonical names (``user_id``, ``item_id``,
``timestamp`` and any of ``FEEDBACK_COLUMNS``) but leave values as they were read (often
strings); :func:`onerec.data.validation.validate_raw` types and checks them, and
:func:`onerec.data.indexing.index_tables` assigns dense indices. ``LINE_COLUMN`` carries each
row's 1-based line number in its source file so errors can point at it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import polars as pl


@dataclass
class RawTables:
    """Canonically named, not yet validated tables from one source.

    Attributes:
        interactions: ``user_id``, ``item_id``, ``timestamp``, feedback columns, ``LINE_COLUMN``.
        items: ``item_id`` plus side columns (``text``, …) and ``LINE_COLUMN``, or None.
        users: ``user_id`` plus side columns and ``LINE_COLUMN``, or None.
        name: short name of the data set (``amazon-beauty``, or the file stem).
        source: description for the manifest (format, files, licence notes).
        interactions_path / items_path / users_path: shown in error messages.
        timestamp_unit: ``"s"``, ``"ms"``, ``"position"`` (file order) or ``"auto"`` (detect).
        notes: human-readable remarks copied into the manifest.
        stats: extra counts copied into the manifest (e.g. items without text).
    """

    interactions: pl.DataFrame
    items: pl.DataFrame | None = None
    users: pl.DataFrame | None = None
    name: str = "dataset"
    source: dict[str, Any] = field(default_factory=dict)
    interactions_path: str = "<interactions>"
    items_path: str | None = None
    users_path: str | None = None
    timestamp_unit: str = "auto"
    notes: list[str] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)
