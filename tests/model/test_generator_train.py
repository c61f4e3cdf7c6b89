"""Tiny end-to-end run on synthetic data: train -> beam-search recommend recovers the pattern."""

from __future__ import annotations

import numpy as np
import torch

from onerec.generation import beam_search
from onerec.model import GeneratorConfig, OneRecGenerator, generator_loss
from onerec.model.batching import (
    CodeLookup,
    GeneratorBatches,
    collate_histories,
    pad_histories,
    sliding_session_examples,
)
from onerec.model.synthetic import random_catalogue


def test_tiny_generator_learns_next_item_rule() -> None:
    # World: users walk the catalogue in order, so the next item is always (last + 1) mod N.
    torch.manual_seed(0)
    num_items, sizes = 24, [3, 3, 3]
    codes, trie = random_catalogue(num_items, sizes, seed=0)
    rng = np.random.default_rng(0)
    sequences = [
        (rng.integers(0, num_items) + np.arange(rng.integers(3, 9))) % num_items for _ in range(200)
    ]
    batches = GeneratorBatches(
        sliding_session_examples(sequences, 5, 1), codes, batch_size=128, seed=0
    )
    config = GeneratorConfig.named(
        "tiny", sizes, dropout=0.0, max_history=5, max_session_items=1, d_model=32, expert_hidden=32
    )
    model = OneRecGenerator(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for epoch in range(25):
        for batch in batches.for_epoch(epoch):
            out = generator_loss(model, batch, aux_loss_weight=0.01)
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            losses.append(out.metrics["ce"])
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])

    model.eval()
    histories = [np.array([(u - 1) % num_items, u]) for u in range(num_items)]
    padded, _ = pad_histories(histories, 5)
    history_codes, history_mask = collate_histories(padded, CodeLookup(codes))
    items, _ = beam_search(model, history_codes, history_mask, trie, beam_width=5, top_k=5)
    expected = (np.arange(num_items) + 1) % num_items
    top1 = float(np.mean(items[:, 0].numpy() == expected))
    hit5 = float(np.mean([expected[u] in items[u].tolist() for u in range(num_items)]))
    assert top1 >= 0.8, f"top-1 {top1}"
    assert hit5 >= 0.95, f"hit@5 {hit5}"
