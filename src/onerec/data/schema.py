"""Canonical column names and dtypes of a prepared data set, and the schema version.

A prepared data set has three tables:

- interactions: ``user_idx:i32, item_idx:i32, timestamp:i64`` plus any of
  :data:`FEEDBACK_COLUMNS`, sorted by (``user_idx``, ``timestamp``) with a stable sort.
- items: ``item_idx:i32, item_id:str`` plus optional side columns (``text``, ``author_id``, …).
- users: ``user_idx:i32, user_id:str`` plus optional features.

``SCHEMA_VERSION`` changes whenever a prepared directory written by an older onerec can no
longer be read as is; :meth:`onerec.data.PreparedDataset.load` refuses a mismatch.
"""

from __future__ import annotations

import polars as pl

SCHEMA_VERSION = 1

USER_IDX = "user_idx"
ITEM_IDX = "item_idx"
TIMESTAMP = "timestamp"
USER_ID = "user_id"
ITEM_ID = "item_id"
TEXT = "text"

INTERACTION_FILE = "interactions.parquet"
ITEMS_FILE = "items.parquet"
USERS_FILE = "users.parquet"
MANIFEST_FILE = "manifest.json"
PREPARED_FILES = (INTERACTION_FILE, ITEMS_FILE, USERS_FILE)

# Binary feedback flags: stored as 0/1 Int8.
BINARY_FEEDBACK = ("click", "like", "follow", "long_view", "comment", "forward", "hate")
# Durations in milliseconds: non-negative Int64.
DURATION_FEEDBACK = ("play_time_ms", "duration_ms")

FEEDBACK_DTYPES: dict[str, pl.DataType] = {
    "play_time_ms": pl.Int64(),
    "duration_ms": pl.Int64(),
    **{name: pl.Int8() for name in BINARY_FEEDBACK},
    "rating": pl.Float32(),
}
FEEDBACK_COLUMNS: tuple[str, ...] = (
    "play_time_ms",
    "duration_ms",
    "click",
    "like",
    "follow",
    "long_view",
    "comment",
    "forward",
    "hate",
    "rating",
)
assert set(FEEDBACK_COLUMNS) == set(FEEDBACK_DTYPES)

INTERACTION_DTYPES: dict[str, pl.DataType] = {
    USER_IDX: pl.Int32(),
    ITEM_IDX: pl.Int32(),
    TIMESTAMP: pl.Int64(),
    **FEEDBACK_DTYPES,
}

# Durations above a week are not watch times in milliseconds (µs or a unit mix-up).
MAX_DURATION_MS = 7 * 24 * 3600 * 1000

# Epoch bounds used to recognise the timestamp unit (seconds or milliseconds).
EPOCH_1990_S = 631_152_000
EPOCH_2100_S = 4_102_444_800

# Source line numbers travel with raw rows under this name until indexing drops them.
LINE_COLUMN = "__line"
