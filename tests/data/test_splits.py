"""Leave-one-out and temporal splits against hand-built sequences."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from onerec.data import cutoff_at_fraction, leave_one_out, temporal_split


def arr(*values: int) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def test_leave_one_out_hand_example() -> None:
    sequences = [arr(10, 11, 12, 13, 14), arr(20, 21, 22), arr(30, 31)]
    split = leave_one_out(sequences, max_history=2)
    # user 0: train 10 11 12; valid history ≤2 before 13 → [11, 12]; test history before 14 → [12, 13]
    assert [s.tolist() for s in split.train_sequences] == [[10, 11, 12], [20], [30, 31]]
    assert split.valid.user_idx.tolist() == [0, 1]
    assert [h.tolist() for h in split.valid.histories] == [[11, 12], [20]]
    assert split.valid.targets.tolist() == [13, 21]
    assert split.test.user_idx.tolist() == [0, 1]
    assert [h.tolist() for h in split.test.histories] == [[12, 13], [20, 21]]
    assert split.test.targets.tolist() == [14, 22]
    assert split.num_short_users == 1 and len(split.test) == 2


def test_leave_one_out_no_cut_keeps_everything_before_target() -> None:
    split = leave_one_out([arr(*range(30))], max_history=None)
    assert split.test.histories[0].tolist() == list(range(29))
    assert split.valid.histories[0].tolist() == list(range(28))
    assert leave_one_out([arr(*range(30))]).test.histories[0].tolist() == list(range(9, 29))


def test_leave_one_out_rejects_bad_max_history() -> None:
    with pytest.raises(ValueError, match="max_history"):
        leave_one_out([arr(1, 2, 3)], max_history=0)


def test_temporal_split_and_cutoff() -> None:
    frame = pl.DataFrame(
        {"user_idx": [0, 0, 1, 1], "item_idx": [1, 2, 3, 4], "timestamp": [5, 10, 15, 20]}
    )
    split = temporal_split(frame, 12)
    assert split.train["item_idx"].to_list() == [1, 2]
    assert split.test["item_idx"].to_list() == [3, 4]
    assert cutoff_at_fraction(frame, 0.5) == 15
    with pytest.raises(ValueError):
        cutoff_at_fraction(frame, 1.0)
