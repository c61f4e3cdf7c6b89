"""Session building against a hand-built log."""

from __future__ import annotations

import polars as pl
import pytest
from pydantic import ValidationError

from onerec.data.sessions import PositiveRule, SessionConfig, build_sessions
from onerec.errors import DataValidationError


def log() -> pl.DataFrame:
    # user 0: 8 rows, positives (long_view or like) at positions 0, 2, 3, 5, 6, 7
    # user 1: 3 rows, positives at positions 1, 2 (too few for a session of 2 after history)
    return pl.DataFrame(
        {
            "user_idx": [0] * 8 + [1] * 3,
            "item_idx": [100, 101, 102, 103, 104, 105, 106, 107, 200, 201, 202],
            "timestamp": [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3],
            "long_view": [1, 0, 1, 0, 0, 1, 0, 1, 0, 1, 0],
            "like": [0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1],
            "play_time_ms": [900, 10, 900, 10, 950, 10, 10, 10, 10, 10, 10],
            "duration_ms": [1000] * 11,
        }
    )


def test_positive_history_non_overlapping_sessions() -> None:
    rule = PositiveRule(long_view=True, like=True)
    config = SessionConfig(positive=rule, session_size=2, max_history=2, min_history=1)
    sessions = build_sessions(log(), config)
    # user 0 positives P = [0, 2, 3, 5, 6, 7]; k = 0 has no history → skipped; k = 2: targets
    # P[2:4] = positions 3, 5 (items 103, 105), history = positives before = [100, 102];
    # k = 4: targets 106, 107, history = last 2 of [100, 102, 103, 105] = [103, 105].
    # user 1 positives [1, 2]: k = 0 only, no history → skipped.
    assert sessions.user_idx.tolist() == [0, 0]
    assert sessions.targets.tolist() == [[103, 105], [106, 107]]
    assert [h.tolist() for h in sessions.histories] == [[100, 102], [103, 105]]
    assert sessions.cut_position.tolist() == [3, 6]
    assert sessions.cut_timestamp.tolist() == [4, 7]
    assert sessions.feedback["like"].tolist() == [[1, 0], [1, 0]]


def test_all_history_and_stride_one() -> None:
    rule = PositiveRule(long_view=True, like=True)
    config = SessionConfig(
        positive=rule, session_size=2, stride=1, history="all", max_history=20, min_history=2
    )
    sessions = build_sessions(log(), config)
    # every positive is a cut while two positives remain: user 0 cuts at 0, 2, 3, 5, 6
    # (needs ≥ 2 history rows → cuts 2, 3, 5, 6); user 1 cut at 1 has 1 row of history → skipped
    assert sessions.cut_position.tolist() == [2, 3, 5, 6]
    assert sessions.targets.tolist() == [[102, 103], [103, 105], [105, 106], [106, 107]]
    assert sessions.histories[0].tolist() == [100, 101]


def test_play_fraction_rule() -> None:
    rule = PositiveRule(play_fraction=0.9)
    mask = rule.mask(log())
    assert mask.tolist() == [True, False, True, False, True] + [False] * 6


def test_all_rule_for_implicit_data_default_m_is_five() -> None:
    frame = pl.DataFrame(
        {"user_idx": [0] * 11, "item_idx": list(range(11)), "timestamp": list(range(11))}
    )
    sessions = build_sessions(frame)
    assert sessions.targets.tolist() == [[5, 6, 7, 8, 9]]
    assert sessions.histories[0].tolist() == [0, 1, 2, 3, 4]


def test_rule_needs_a_criterion_and_present_columns() -> None:
    with pytest.raises(ValidationError, match="at least one positive criterion"):
        PositiveRule()
    frame = pl.DataFrame({"user_idx": [0], "item_idx": [1], "timestamp": [1]})
    with pytest.raises(DataValidationError, match="needs column"):
        PositiveRule(like=True).mask(frame)
