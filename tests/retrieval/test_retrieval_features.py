"""Row selection and feature tables of the CRM pipeline."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from onerec.errors import ConfigError
from onerec.retrieval.features import item_feature_matrix, positive_rows, user_feature_tables


def test_positive_rows_keeps_order_and_explains_mistakes() -> None:
    frame = pl.DataFrame({"item_idx": [3, 1, 2], "click": [1, 0, 1]})
    assert positive_rows(frame, None).height == 3
    assert positive_rows(frame, "click")["item_idx"].to_list() == [3, 2]
    with pytest.raises(ConfigError, match="not an interaction column"):
        positive_rows(frame, "clicks")
    with pytest.raises(ConfigError, match="no interaction has"):
        positive_rows(frame.with_columns(pl.lit(0).alias("click")), "click")


def test_feature_tables() -> None:
    items = pl.DataFrame({"duration_ms": [0, 10, 100, None], "name": ["a", "b", "c", "d"]})
    dense = item_feature_matrix(items, ["duration_ms"])
    assert dense.shape == (4, 1) and abs(float(dense.mean())) < 1e-6
    assert dense[0, 0] == dense[3, 0]  # missing counts as 0
    with pytest.raises(ConfigError, match="not a numeric column"):
        item_feature_matrix(items, ["name"])
    users = pl.DataFrame({"gender": ["m", None, "f"], "age": [20, 30, 40]})
    cat, sizes, num = user_feature_tables(users, ["gender", "age"])
    assert cat is not None and cat[:, 0].tolist() == [2, 0, 1] and sizes == [2]
    assert num is not None and np.allclose(num[:, 0], [-1.2247449, 0.0, 1.2247449], atol=1e-5)
