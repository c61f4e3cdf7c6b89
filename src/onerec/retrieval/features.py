"""Side inputs of the CRM pipeline: which rows count, and item / user feature tables."""

from __future__ import annotations

import numpy as np
import polars as pl

from onerec.errors import ConfigError


def positive_rows(interactions: pl.DataFrame, column: str | None) -> pl.DataFrame:
    """Rows with ``column > 0`` (order kept), or every row when ``column`` is None."""
    if column is None:
        return interactions
    if column not in interactions.columns:
        raise ConfigError(
            f"data.positive_column={column!r} is not an interaction column "
            f"(columns: {interactions.columns}); use one of them or leave it unset"
        )
    kept = interactions.filter(pl.col(column) > 0)
    if kept.height == 0:
        raise ConfigError(f"no interaction has {column} > 0; check data.positive_column")
    return kept


def item_feature_matrix(items: pl.DataFrame, columns: list[str]) -> np.ndarray:
    """``[num_items, len(columns)]``: log1p of non-negative numeric columns, standardised."""
    feats = []
    for column in columns:
        if column not in items.columns or not items[column].dtype.is_numeric():
            raise ConfigError(
                f"item feature {column!r} is not a numeric column of the items table "
                f"(columns: {items.columns})"
            )
        values = items[column].cast(pl.Float64).fill_null(0.0).to_numpy()
        values = np.log1p(np.clip(values, 0, None))
        feats.append((values - values.mean()) / (values.std() + 1e-8))
    return np.stack(feats, axis=1).astype(np.float32)


def user_feature_tables(
    users: pl.DataFrame, columns: list[str]
) -> tuple[np.ndarray | None, list[int], np.ndarray | None]:
    """String columns → 1-based category codes (0 = missing); numeric → standardised floats."""
    cats, sizes, dense = [], [], []
    for column in columns:
        if column not in users.columns:
            raise ConfigError(
                f"user feature {column!r} is not a column of the users table ({users.columns})"
            )
        series = users[column]
        if series.dtype.is_numeric():
            values = series.cast(pl.Float64).fill_null(0.0).to_numpy()
            dense.append((values - values.mean()) / (values.std() + 1e-8))
        else:
            text = series.cast(pl.Utf8)
            vocab = {v: i + 1 for i, v in enumerate(sorted(set(text.drop_nulls().to_list())))}
            cats.append(np.array([vocab.get(v, 0) if v is not None else 0 for v in text.to_list()]))
            sizes.append(len(vocab))
    cat_table = np.stack(cats, axis=1).astype(np.int64) if cats else None
    dense_table = np.stack(dense, axis=1).astype(np.float32) if dense else None
    return cat_table, sizes, dense_table
