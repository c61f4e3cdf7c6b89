"""Id lookups the service needs on every request, built once at start-up.

* :class:`ItemCatalog` — external ``item_id`` ↔ dense ``item_idx``, and each item's side
  columns as JSON (``GET /v1/items/{id}``).
* :class:`UserHistories` — external ``user_id`` ↔ ``user_idx`` and each user's stored history
  (``item_idx`` in time order) as one CSR array pair, so a lookup is two slices.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from onerec.errors import CheckpointError
from onerec.serve.api_errors import ApiError, listed

ItemKey = str | int


class ItemCatalog:
    """The bundle's item table: ``item_idx`` (0..N-1, in row order), ``item_id`` and side columns."""

    def __init__(self, items: pl.DataFrame) -> None:
        for column in ("item_idx", "item_id"):
            if column not in items.columns:
                raise CheckpointError(f"the bundle's item table has no {column!r} column")
        items = items.sort("item_idx")
        order = items["item_idx"].to_numpy()
        if not np.array_equal(order, np.arange(items.height)):
            raise CheckpointError("the bundle's item table must hold item_idx 0..N-1 exactly once")
        self.items = items
        self.item_ids: list[str] = [str(i) for i in items["item_id"].to_list()]
        self._index_of = {item_id: idx for idx, item_id in enumerate(self.item_ids)}
        if len(self._index_of) != len(self.item_ids):
            raise CheckpointError("the bundle's item table repeats an item_id")
        self.side_columns = [c for c in items.columns if c not in ("item_idx", "item_id")]

    @classmethod
    def read(cls, path: Path) -> ItemCatalog:
        """Load ``items.parquet``."""
        return cls(pl.read_parquet(path))

    def __len__(self) -> int:
        return len(self.item_ids)

    def index_of(self, item_id: ItemKey) -> int | None:
        """Dense index of an external id, or None."""
        return self._index_of.get(str(item_id))

    def indices(self, item_ids: Sequence[ItemKey], field: str = "history") -> np.ndarray:
        """``item_idx`` for every id (int64); unknown ids -> 422 ``unknown_items`` listing them."""
        found = [self._index_of.get(str(i), -1) for i in item_ids]
        unknown = [str(i) for i, idx in zip(item_ids, found, strict=True) if idx < 0]
        if unknown:
            distinct = list(dict.fromkeys(unknown))
            raise ApiError(
                422,
                "unknown_items",
                f"{field} has {len(distinct)} unknown item id(s): {listed(distinct)}; ids are "
                "the data set's item_id strings (GET /v1/items/{id} checks one)",
                {"unknown_item_ids": distinct[:1000]},
            )
        return np.asarray(found, dtype=np.int64)

    def describe(self, item_idx: int) -> dict[str, Any]:
        """The item's row as JSON-ready values (NaN/inf -> null, dates -> ISO strings)."""
        row = self.items.row(int(item_idx), named=True)
        return {column: json_value(row[column]) for column in self.side_columns}


class UserHistories:
    """Per-user stored histories in CSR form: ``items[offsets[u]:offsets[u + 1]]``."""

    def __init__(self, user_ids: list[str], items: np.ndarray, offsets: np.ndarray) -> None:
        if len(offsets) != len(user_ids) + 1 or offsets[0] != 0 or offsets[-1] != len(items):
            raise CheckpointError("user histories: offsets do not match the users and items")
        self.user_ids = user_ids
        self.items = items.astype(np.int64)
        self.offsets = offsets.astype(np.int64)
        self._index_of = {user_id: idx for idx, user_id in enumerate(user_ids)}
        if len(self._index_of) != len(user_ids):
            raise CheckpointError("user histories: a user_id appears twice")

    @classmethod
    def read(cls, path: Path) -> UserHistories:
        """Load ``user_histories.parquet`` (``user_idx``, ``user_id``, ``history: list[i32]``)."""
        table = pl.read_parquet(path).sort("user_idx")
        if isinstance(table.schema["history"], pl.Array):  # equal-length lists may be stored so
            table = table.with_columns(pl.col("history").arr.to_list())
        if not np.array_equal(table["user_idx"].to_numpy(), np.arange(table.height)):
            raise CheckpointError(f"{path}: user_idx must run over 0..U-1 exactly once")
        lengths = table["history"].list.len().fill_null(0).to_numpy().astype(np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        flat = table["history"].explode().drop_nulls().to_numpy() if offsets[-1] else np.zeros(0)
        return cls([str(u) for u in table["user_id"].to_list()], np.asarray(flat), offsets)

    def __len__(self) -> int:
        return len(self.user_ids)

    def index_of(self, user_id: ItemKey) -> int:
        """Dense index of an external user id; unknown -> 404 ``unknown_user``."""
        idx = self._index_of.get(str(user_id))
        if idx is None:
            raise ApiError(
                404,
                "unknown_user",
                f"unknown user {str(user_id)!r}: not among the {len(self.user_ids)} users of this "
                "model; send an explicit 'history' of item ids instead",
            )
        return idx

    def history(self, user_idx: int) -> np.ndarray:
        """The user's stored ``item_idx`` history, oldest first."""
        return self.items[self.offsets[user_idx] : self.offsets[user_idx + 1]]


def json_value(value: Any) -> Any:
    """A polars cell as a JSON-native value."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return json_value(float(value))
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return value
