"""Right padding and next-item batches."""

from __future__ import annotations

import numpy as np
import torch

from onerec.baselines.batching import NextItemBatches, pad_right


def test_pad_right_by_hand() -> None:
    ids, lengths = pad_right([np.array([1, 2, 3]), np.array([7])], pad_id=9)
    assert ids.tolist() == [[1, 2, 3], [7, 9, 9]]
    assert lengths.tolist() == [3, 1]
    cut, cut_len = pad_right([np.array([1, 2, 3, 4])], pad_id=9, max_len=2)
    assert cut.tolist() == [[3, 4]] and cut_len.tolist() == [2]


def test_windows_shift_targets_and_skip_single_items() -> None:
    seqs = [np.array([1, 2, 3, 4]), np.array([5]), np.array([6, 7])]
    batches = NextItemBatches(
        seqs, 0, max_len=2, batch_size=8, seed=0, shuffle=False, bucket_batches=0
    )
    (batch,) = list(batches)
    # user 0: window [2, 3, 4] (max_len + 1) -> input [2, 3], target [3, 4]; user 1 dropped
    assert batch["input_ids"].tolist() == [[2, 3], [6, 0]]
    assert batch["targets"].tolist() == [[3, 4], [7, 0]]
    assert batch["lengths"].tolist() == [2, 1]


def test_epoch_order_depends_only_on_seed_and_epoch() -> None:
    rng = np.random.default_rng(1)
    seqs = [rng.integers(0, 50, size=rng.integers(2, 30)) for _ in range(500)]
    a = NextItemBatches(seqs, pad_id=50, max_len=20, batch_size=16, seed=3, bucket_batches=4)
    b = NextItemBatches(seqs, pad_id=50, max_len=20, batch_size=16, seed=3, bucket_batches=4)
    rows_a1 = a.for_epoch(1).batch_rows()
    b.for_epoch(0).batch_rows()  # other epochs visited first do not matter
    rows_b1 = b.for_epoch(1).batch_rows()
    assert all(np.array_equal(x, y) for x, y in zip(rows_a1, rows_b1, strict=True))
    rows_a2 = a.for_epoch(2).batch_rows()
    assert not all(np.array_equal(x, y) for x, y in zip(rows_a1, rows_a2, strict=True))
    covered = np.sort(np.concatenate(rows_a1))
    assert np.array_equal(covered, np.arange(500))  # every window exactly once


def test_bucketing_reduces_padding() -> None:
    rng = np.random.default_rng(2)
    seqs = [rng.integers(0, 50, size=rng.choice([3, 40])) for _ in range(640)]

    def padded_tokens(bucket: int) -> int:
        batches = NextItemBatches(seqs, 50, 40, 32, seed=0, bucket_batches=bucket)
        return sum(int(b["input_ids"].numel()) for b in batches)

    assert padded_tokens(10) < 0.7 * padded_tokens(0)
    assert torch.is_tensor(next(iter(NextItemBatches(seqs, 50, 40, 32, 0)))["lengths"])
