"""Session grouping, history without leakage, temporal split and item feature ids."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from onerec.reward.config import SessionRule, TargetSpec
from onerec.reward.features import DURATION_BUCKETS, build_item_features, duration_bucket
from onerec.reward.sessions import build_reward_examples, session_ids, temporal_session_split

MIN = 60_000


def test_session_ids_split_on_gap_user_and_length() -> None:
    user = np.array([0, 0, 0, 0, 0, 0, 0, 1, 1])
    ts = np.array([0, 1, 2, 3, 40, 41, 200, 5, 6]) * MIN
    # Gap > 30 min splits user 0 into [0..3], [40, 41], [200]; max 3 items cuts [0..3] into 3 + 1.
    assert session_ids(user, ts, 30 * MIN, 3).tolist() == [0, 0, 0, 1, 2, 2, 3, 4, 4]


def _interactions() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_idx": [0, 0, 0, 0, 1, 1],
            "item_idx": [1, 2, 3, 4, 0, 2],
            "timestamp": [0, MIN, 100 * MIN, 101 * MIN, 0, MIN],
            "play_time_ms": [1000, 0, 5000, 3000, 7000, 2000],
            "click": [1, 0, 1, 1, 1, 0],
            "long_view": [0, 0, 1, 0, 1, 0],
        }
    )


def test_build_reward_examples_labels_and_history() -> None:
    targets = [
        TargetSpec(name="swt", column="play_time_ms", kind="regression"),
        TargetSpec(name="vtr", column="long_view"),
    ]
    ex = build_reward_examples(
        _interactions(), num_items=5, rule=SessionRule(max_items=3), targets=targets, max_history=2
    )
    assert ex.user_idx.tolist() == [0, 0, 1]
    assert ex.items.tolist() == [[1, 2, 5], [3, 4, 5], [0, 2, 5]]
    assert ex.mask.tolist() == [[True, True, False], [True, True, False], [True, True, False]]
    np.testing.assert_allclose(ex.labels["swt"][0], [1.0, 0.0, 0.0])  # seconds
    assert ex.labels["vtr"][1].tolist() == [1.0, 0.0, 0.0]
    # History = clicked items strictly before the session: none for the first sessions;
    # user 0's second session sees item 1 (clicked) but not item 2 (not clicked).
    assert ex.history.tolist() == [[5, 5], [5, 1], [5, 5]]


def test_missing_target_column_is_a_clear_error() -> None:
    from onerec.errors import DataValidationError

    with pytest.raises(DataValidationError, match="needs column 'like'"):
        build_reward_examples(
            _interactions(), 5, SessionRule(), [TargetSpec(name="ltr", column="like")], 2
        )


def test_temporal_split_orders_by_session_start() -> None:
    frame = pl.DataFrame(
        {
            "user_idx": np.repeat(np.arange(4), 5),
            "item_idx": np.arange(20) % 7,
            "timestamp": np.tile(np.arange(5) * 60 * MIN, 4) + np.repeat(np.arange(4), 5),
            "click": np.ones(20, dtype=np.int8),
        }
    )
    ex = build_reward_examples(frame, 7, SessionRule(), [TargetSpec(name="c", column="click")], 3)
    train, valid, test = temporal_session_split(ex, 0.2, 0.2)
    assert len(train) + len(valid) + len(test) == 20
    assert train.start_timestamp.max() <= valid.start_timestamp.min()
    assert valid.start_timestamp.max() <= test.start_timestamp.min()


def test_duration_buckets() -> None:
    got = duration_bucket(np.array([0, 500, 1500, 3000, 60_000, 10_000_000, np.nan]))
    assert got.tolist() == [0, 1, 2, 3, 7, DURATION_BUCKETS, 0]


def test_item_feature_table() -> None:
    items = pl.DataFrame(
        {
            "item_idx": [0, 1, 2],
            "item_id": ["a", "b", "c"],
            "duration_ms": [1500, None, 3000],
            "tags": ["7,9", None, "9"],
            "author_id": ["x", "x", "y"],
        }
    )
    table = build_item_features(items, 3, ["duration_ms", "tags", "author_id", "absent"])
    assert list(table.slots) == ["duration_ms", "tags", "author_id"]
    assert table.ids.shape == (4, 1 + 3 + 1)
    assert table.ids[:, 0].tolist() == [2, 0, 3, 0]
    tag_ids = table.ids[:, 1:4]
    assert (
        tag_ids[0, 0] != tag_ids[0, 1]
        and tag_ids[0, 1] == tag_ids[2, 0]
        and tag_ids[1].tolist() == [0, 0, 0]
    )
    # author "x" appears twice (own id), "y" once (shared rare id 1), padding row 0.
    assert table.ids[:, 4].tolist() == [2, 2, 1, 0]
