"""Sliding (history, session) examples, length bucketing, collate and real-token counts."""

from __future__ import annotations

import numpy as np
import torch

from onerec.model.batching import (
    PAD,
    GeneratorBatches,
    pad_histories,
    real_token_counts,
    sliding_session_examples,
)


def test_sliding_examples_by_hand() -> None:
    examples = sliding_session_examples(
        [np.array([10, 11, 12, 13])], max_history=2, session_items=2
    )
    assert examples.histories.tolist() == [[PAD, 10], [10, 11], [11, 12]]
    assert examples.sessions.tolist() == [[11, 12], [12, 13], [13, PAD]]
    assert examples.history_lengths.tolist() == [1, 2, 2]


def test_sequences_too_short_give_no_examples() -> None:
    examples = sliding_session_examples([np.array([1]), np.array([], dtype=np.int64)], 3, 1)
    assert len(examples) == 0


def test_pad_histories_cuts_to_most_recent() -> None:
    padded, lengths = pad_histories([np.array([1, 2, 3, 4]), np.array([7])], max_history=3)
    assert padded.tolist() == [[2, 3, 4], [PAD, PAD, 7]]
    assert lengths.tolist() == [3, 1]


def test_batches_cover_all_examples_and_bucket_by_length() -> None:
    rng = np.random.default_rng(0)
    sequences = [rng.integers(0, 50, size=int(n)) for n in rng.integers(2, 25, size=200)]
    examples = sliding_session_examples(sequences, max_history=20, session_items=1)
    codes = rng.integers(0, 8, size=(50, 3))
    bucketed = GeneratorBatches(examples, codes, batch_size=32, bucket_batches=64)
    seen = np.concatenate(bucketed.batch_indices())
    assert sorted(seen.tolist()) == list(range(len(examples)))
    # Padding waste: bucketed batches pad far less than unsorted ones.
    unsorted = GeneratorBatches(examples, codes, batch_size=32, bucket_batches=1)

    def waste(batches: GeneratorBatches) -> float:
        padded = real = 0
        for batch in batches:
            padded += batch["history_mask"].numel()
            real += int(batch["history_mask"].sum())
        return 1 - real / padded

    assert waste(bucketed) < 0.1 < waste(unsorted)


def test_collate_shapes_codes_and_counts() -> None:
    codes = np.arange(30).reshape(10, 3)
    examples = sliding_session_examples([np.array([1, 2, 3]), np.array([4, 5])], 4, 2)
    batches = GeneratorBatches(examples, codes, batch_size=8, shuffle=False)
    batch = batches.collate(np.arange(len(examples)))
    # examples: ([1]->[2,3]), ([1,2]->[3]), ([4]->[5])
    assert batch["history_codes"].shape == (3, 2, 3)
    assert batch["history_mask"].tolist() == [[False, True], [True, True], [False, True]]
    torch.testing.assert_close(batch["history_codes"][1, 0], torch.tensor([3, 4, 5]))
    assert batch["session_mask"].tolist() == [[True, True], [True, False], [True, False]]
    torch.testing.assert_close(batch["session_codes"][0, 1], torch.tensor([9, 10, 11]))
    encoder, decoder = real_token_counts(batch, num_code_levels=3)
    assert encoder == 4 + 3  # 4 history items + one context token per row
    assert decoder == (2 * 4 - 1) + (4 - 1) + (4 - 1)
