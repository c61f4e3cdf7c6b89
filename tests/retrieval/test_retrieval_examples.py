"""Example building, held-out windows and batches (log-Q values, determinism)."""

from __future__ import annotations

import math

import numpy as np
import torch

from onerec.retrieval.condition import ConditionNormalizer
from onerec.retrieval.examples import (
    RetrievalBatches,
    build_heldout,
    build_training_examples,
    item_log_frequency,
    padded_histories,
    split_masks,
)

PAD = 9
# Two users, sorted by (user, time).
USER = np.array([0, 0, 0, 0, 1, 1, 1])
ITEM = np.array([1, 2, 3, 4, 5, 6, 7])
TIME = np.array([10, 20, 30, 40, 15, 25, 35])
RAW = np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0])


def test_padded_histories_by_hand() -> None:
    hist = padded_histories(USER, ITEM, np.array([0, 2, 3, 4, 6]), max_history=2, pad=PAD)
    assert hist.tolist() == [[PAD, PAD], [1, 2], [2, 3], [PAD, PAD], [5, 6]]


def test_training_examples_skip_missing_conditions_and_short_histories() -> None:
    norm = ConditionNormalizer.fit(RAW, "bucket", num_levels=2)
    in_train = TIME < 30
    ex, dropped = build_training_examples(USER, ITEM, RAW, in_train, norm, 3, PAD, min_history=1)
    assert ex.target_item.tolist() == [2, 6]  # rows 1 and 5 (first rows have no history)
    assert ex.history.tolist() == [[PAD, PAD, 1], [PAD, PAD, 5]]
    assert dropped == 0
    ex_all, dropped_all = build_training_examples(
        USER, ITEM, RAW, np.ones(7, bool), norm, 3, PAD, 0
    )
    assert dropped_all == 1  # row 2 has no condition
    assert len(ex_all) == 6


def test_heldout_window() -> None:
    norm = ConditionNormalizer.fit(RAW, "bucket", num_levels=2)
    held = build_heldout(USER, ITEM, RAW, TIME < 30, TIME >= 30, norm, max_history=3, num_items=PAD)
    assert held.user_idx.tolist() == [0, 1]
    assert held.history.tolist() == [[PAD, 1, 2], [PAD, 5, 6]]
    assert [t.tolist() for t in held.targets] == [[3, 4], [7]]
    assert np.isnan(held.target_values[0][0]) and held.target_values[0][1] == 4.0
    assert [s.tolist() for s in held.seen] == [[1, 2], [5, 6]]
    # positions: user 0 past raw 1, 2 → buckets; max ≥ mean
    assert held.condition_max[0] >= held.condition_mean[0]
    cold = build_heldout(USER, ITEM, RAW, TIME < 0, TIME < 12, norm, 3, PAD)
    assert len(cold) == 0 and cold.skipped_cold_users == 1


def test_split_masks_global_and_per_user() -> None:
    train, valid, test = split_masks(USER, TIME, 0.15, 0.3, "global_time")
    # timestamps sorted: 10 15 20 25 30 35 40; cut-offs at quantiles .55 → 30 and .7 → 35
    assert TIME[train].tolist() == [10, 20, 15, 25]
    assert TIME[valid].tolist() == [30] and sorted(TIME[test].tolist()) == [35, 40]
    train, valid, test = split_masks(USER, TIME, 0.25, 0.25, "user_time")
    # user 0 (4 rows): 1 test, 1 valid; user 1 (3 rows): round(.75) = 1 test, 1 valid
    assert test.tolist() == [False, False, False, True, False, False, True]
    assert valid.tolist() == [False, False, True, False, False, True, False]
    assert (train ^ valid ^ test).all()
    short = split_masks(np.array([0, 0, 1, 1, 1]), np.arange(5), 0.1, 0.1, "user_time")
    assert short[0][:2].all()  # a 2-row user stays in training


def test_batches_log_q_and_determinism() -> None:
    norm = ConditionNormalizer.fit(RAW, "bucket", num_levels=2)
    ex, _ = build_training_examples(USER, ITEM, RAW, np.ones(7, bool), norm, 2, PAD, 0)
    batches = RetrievalBatches(ex, num_items=PAD, batch_size=4, num_negatives=3, seed=1)
    epoch0 = list(batches(0))
    assert len(epoch0) == len(batches(0)) == 1  # 6 examples // 4 (partial batch dropped)
    b = epoch0[0]
    log_p = item_log_frequency(ex.target_item, PAD)
    assert torch.allclose(b["target_log_q"], torch.from_numpy(log_p)[b["target"]] + math.log(4))
    assert torch.allclose(b["negative_log_q"], torch.full((3,), math.log(3) - math.log(PAD)))
    again = list(batches(0))[0]
    assert all(torch.equal(b[k], again[k]) for k in b)  # same epoch → same batch
    other = list(batches(1))[0]
    assert not torch.equal(b["target"], other["target"]) or not torch.equal(
        b["negatives"], other["negatives"]
    )
    off = RetrievalBatches(ex, PAD, 4, 3, logq_correction=False)
    nb = list(off(0))[0]
    assert (
        float(nb["target_log_q"].abs().sum()) == 0.0
        and float(nb["negative_log_q"].abs().sum()) == 0.0
    )


def test_item_log_frequency_is_smoothed() -> None:
    log_p = item_log_frequency(np.array([0, 0, 1]), 3)
    assert np.allclose(np.exp(log_p), [3 / 6, 2 / 6, 1 / 6])


def test_condition_dropout_replaces_a_fraction_by_the_median_position() -> None:
    norm = ConditionNormalizer.fit(RAW, "bucket", num_levels=2)
    ex, _ = build_training_examples(USER, ITEM, RAW, np.ones(7, bool), norm, 2, PAD, 0)
    ex.condition[:] = 5.0  # every real condition at 5; the dropout value is 0.5
    never = RetrievalBatches(ex, PAD, 6, condition_dropout=0.0, dropout_position=0.5)
    always = RetrievalBatches(ex, PAD, 6, condition_dropout=0.99999, dropout_position=0.5)
    assert torch.equal(list(never(0))[0]["condition"], torch.full((6,), 5.0))
    assert torch.equal(list(always(0))[0]["condition"], torch.full((6,), 0.5))
