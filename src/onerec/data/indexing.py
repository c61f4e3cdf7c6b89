"""External ids → dense indices (``user_idx``, ``item_idx`` from 0).

Order rule (recorded in the manifest): when every external id of a kind is a plain integer
(and no two spellings such as ``7``/``007`` collide), indices follow the integer order, so
KuaiRand video ``k`` → ``item_idx`` ``k`` and Amazon P5 item ``k`` → ``item_idx`` ``k-1``;
otherwise indices follow the order of first appearance in the interaction file.
"""

from __future__ import annotations

import polars as pl

from onerec.data.schema import ITEM_ID, ITEM_IDX, LINE_COLUMN, TIMESTAMP, USER_ID, USER_IDX

INTEGER_PATTERN = r"^-?[0-9]+$"


def dense_id_map(ids: pl.Series, index_name: str) -> tuple[pl.DataFrame, str]:
    """A two-column frame (external id as str, dense Int32 index) and a note on the order used."""
    id_name = ids.name
    unique = ids.unique(maintain_order=True)
    numeric = unique.str.contains(INTEGER_PATTERN).all()
    if numeric:
        as_int = unique.cast(pl.Int64)
        numeric = as_int.n_unique() == unique.len()
    if numeric:
        ordered = (
            pl.DataFrame({id_name: unique, "__key": unique.cast(pl.Int64)})
            .sort("__key")
            .drop("__key")
        )
        note = f"{index_name} follows the integer order of {id_name}"
    else:
        ordered = pl.DataFrame({id_name: unique})
        note = (
            f"{index_name} follows the order of first appearance of {id_name} in the interactions"
        )
    table = ordered.with_columns(pl.int_range(0, ordered.height, dtype=pl.Int32).alias(index_name))
    return table.select(index_name, id_name), note


def index_tables(
    interactions: pl.DataFrame, items: pl.DataFrame | None, users: pl.DataFrame | None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, str]]:
    """Map typed interactions (``user_id``, ``item_id``, …) to dense indices.

    Returns (interactions, items, users, notes): interactions with ``user_idx, item_idx,
    timestamp, feedback…`` sorted by (user_idx, timestamp) stably (ties keep file order);
    items ``item_idx, item_id, side…``; users ``user_idx, user_id, side…``.
    """
    user_map, user_note = dense_id_map(interactions[USER_ID], USER_IDX)
    item_map, item_note = dense_id_map(interactions[ITEM_ID], ITEM_IDX)
    feedback = [
        c for c in interactions.columns if c not in (USER_ID, ITEM_ID, TIMESTAMP, LINE_COLUMN)
    ]
    indexed = (
        interactions.join(user_map, on=USER_ID, how="left", maintain_order="left")
        .join(item_map, on=ITEM_ID, how="left", maintain_order="left")
        .select(USER_IDX, ITEM_IDX, TIMESTAMP, *feedback)
        .sort([USER_IDX, TIMESTAMP], maintain_order=True)
    )
    items_out = _attach_side(item_map, items, ITEM_ID)
    users_out = _attach_side(user_map, users, USER_ID)
    return indexed, items_out, users_out, {"user": user_note, "item": item_note}


def _attach_side(id_map: pl.DataFrame, side: pl.DataFrame | None, id_col: str) -> pl.DataFrame:
    if side is None:
        return id_map
    side = side.drop(LINE_COLUMN, strict=False)
    return id_map.join(side, on=id_col, how="left", maintain_order="left")
