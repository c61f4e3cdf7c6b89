"""Property: constrained decoding only ever emits catalogue items, never repeats in a session."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from onerec.generation import generate_session
from onerec.model.synthetic import random_catalogue, random_histories, random_model


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(2, 6), min_size=1, max_size=4),
    item_fraction=st.floats(0.05, 1.0),
    beam_width=st.integers(1, 12),
    session_items=st.integers(1, 3),
    seed=st.integers(0, 10_000),
)
def test_constrained_search_emits_only_valid_distinct_items(
    sizes: list[int], item_fraction: float, beam_width: int, session_items: int, seed: int
) -> None:
    total = int(np.prod(sizes))
    num_items = max(1, int(total * item_fraction))
    codes, trie = random_catalogue(num_items, sizes, seed=seed)
    model = random_model(sizes, seed=seed, scale=1.0, dtype=torch.float32, max_session_items=3)
    history_codes, history_mask, _ = random_histories(codes, users=2, max_len=3, seed=seed)
    result = generate_session(
        model, history_codes, history_mask, trie, session_items, beam_width, num_sessions=beam_width
    )
    valid = {tuple(row) for row in codes.tolist()}
    for user in range(2):
        for session, score in zip(
            result.items[user].tolist(), result.scores[user].tolist(), strict=True
        ):
            if score == float("-inf"):
                assert session == [-1] * session_items
                continue
            assert all(0 <= item < num_items for item in session)
            assert all(tuple(codes[item].tolist()) in valid for item in session)
            assert trie.lookup(codes[session[0]].tolist()) == session[0]
            assert len(set(session)) == session_items
    # Single items: if a beam died, every item was reachable, so fewer items than beams.
    if session_items == 1 and num_items >= beam_width:
        assert torch.isfinite(result.scores).all()
