"""Item side features for the reward model, turned into small integer ids per item.

Each configured column of the items table becomes one or more id slots (0 = missing/padding):

- ``duration_ms``: log₂-second buckets (<1 s, 1–2 s, 2–4 s, …, ≥ 1024 s) — fixed edges, so no
  vocabulary has to be saved;
- ``tags``: comma-separated lists; up to ``MAX_TAG_SLOTS`` tags, each an id in the tag
  vocabulary (embeddings of the slots are summed);
- any other column: categorical, values seen on at least ``min_count`` items get their own id,
  the rest share one "rare" id.

The resulting ``[num_items + 1, slots]`` table is stored inside the model as a buffer (the
last row is the padding item), so a saved model needs no vocabulary files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

MAX_TAG_SLOTS = 3
DURATION_BUCKETS = 12  # ids 1..12 for [0,1), [1,2), [2,4), … , [1024, ∞) seconds


@dataclass
class ItemFeatureTable:
    """``ids[num_items + 1, total_slots]`` and, per feature, its slot range and vocabulary size."""

    ids: np.ndarray
    slots: dict[str, tuple[int, int]]
    cardinalities: dict[str, int]


def duration_bucket(duration_ms: np.ndarray) -> np.ndarray:
    """Bucket ids 1..DURATION_BUCKETS for durations in ms; 0 for missing or non-positive."""
    duration_ms = np.asarray(duration_ms, dtype=np.float64)
    valid = np.isfinite(duration_ms) & (duration_ms > 0)
    seconds = np.where(valid, duration_ms, 1.0) / 1000.0
    bucket = np.clip(np.floor(np.log2(np.maximum(seconds, 0.5))) + 2, 1, DURATION_BUCKETS)
    return np.where(valid, bucket, 0).astype(np.int64)


def _categorical(values: list[str | None], min_count: int) -> tuple[np.ndarray, int]:
    counts: dict[str, int] = {}
    for v in values:
        if v is not None and v != "":
            counts[v] = counts.get(v, 0) + 1
    vocab = {v: i + 2 for i, v in enumerate(sorted(k for k, c in counts.items() if c >= min_count))}
    ids = np.array([0 if v is None or v == "" else vocab.get(v, 1) for v in values], dtype=np.int64)
    return ids, len(vocab) + 2  # 0 missing, 1 rare


def build_item_features(
    items: pl.DataFrame, num_items: int, columns: list[str], min_count: int = 2
) -> ItemFeatureTable:
    """Feature ids for every ``item_idx`` in ``items`` (columns absent from ``items`` are skipped)."""
    order = items.sort("item_idx")
    if order.height != num_items or not np.array_equal(
        order["item_idx"].to_numpy(), np.arange(num_items)
    ):
        raise ValueError("items table must hold every item_idx 0..num_items-1 exactly once")
    blocks: list[np.ndarray] = []
    slots: dict[str, tuple[int, int]] = {}
    cardinalities: dict[str, int] = {}
    start = 0
    for column in columns:
        if column not in order.columns:
            continue
        if column == "duration_ms":
            block = duration_bucket(order[column].cast(pl.Float64).fill_null(0.0).to_numpy())[
                :, None
            ]
            size = DURATION_BUCKETS + 1
        elif column == "tags":
            lists = order[column].cast(pl.Utf8).str.split(",").to_list()
            padded = [[t.strip() for t in (tags or [])][:MAX_TAG_SLOTS] for tags in lists]
            flat = [t for tags in padded for t in tags]
            vocab_ids, size = _categorical(flat, 1)
            block = np.zeros((order.height, MAX_TAG_SLOTS), dtype=np.int64)
            cursor = 0
            for row, tags in enumerate(padded):
                block[row, : len(tags)] = vocab_ids[cursor : cursor + len(tags)]
                cursor += len(tags)
        else:
            values = order[column].cast(pl.Utf8).to_list()
            ids, size = _categorical(values, min_count)
            block = ids[:, None]
        slots[column] = (start, start + block.shape[1])
        cardinalities[column] = size
        start += block.shape[1]
        blocks.append(block)
    table = np.concatenate(blocks, axis=1) if blocks else np.zeros((num_items, 0), dtype=np.int64)
    padded_table = np.concatenate([table, np.zeros((1, table.shape[1]), dtype=np.int64)], axis=0)
    return ItemFeatureTable(padded_table, slots, cardinalities)
