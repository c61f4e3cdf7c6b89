"""The KV-cached batched beam search equals the plain reference (items and scores)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from onerec.generation import (
    TrieTensors,
    beam_search,
    recommend_topk,
    reference_beam_search,
    search,
)
from onerec.generation.beam_search import exclusion_mask
from onerec.model.batching import CodeLookup, collate_histories, pad_histories
from onerec.model.synthetic import random_catalogue, random_histories, random_model

SIZES = [4, 5, 3]


def _compare(fast_items: torch.Tensor, fast_scores: torch.Tensor, reference: list) -> None:
    for user, ref in enumerate(reference):
        finite = torch.isfinite(fast_scores[user])
        assert int(finite.sum()) == len(ref), "different number of surviving beams"
        got_items = [tuple(int(i) for i in row) for row in fast_items[user][finite]]
        assert got_items == [items for items, _ in ref]
        for got, (_, want) in zip(fast_scores[user][finite].tolist(), ref, strict=True):
            assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(("session_items", "beam_width"), [(1, 1), (1, 6), (1, 20), (2, 5), (3, 4)])
def test_cached_search_equals_reference(session_items: int, beam_width: int, fast: bool) -> None:
    codes, trie = random_catalogue(30, SIZES, seed=1)
    model = random_model(SIZES, seed=2, max_session_items=3)
    history_codes, history_mask, _ = random_histories(codes, users=2, max_len=5, seed=3)
    state = model.start_decoding(model.encode(history_codes, history_mask))
    tensors = TrieTensors.from_trie(trie)
    fast_result = search(model, state, tensors, beam_width, session_items, fast=fast)
    reference = reference_beam_search(
        model, history_codes, history_mask, trie, beam_width, session_items
    )
    _compare(fast_result.items, fast_result.scores, reference)


def test_parity_with_history_exclusion() -> None:
    codes, trie = random_catalogue(30, SIZES, seed=4)
    model = random_model(SIZES, seed=5, max_session_items=2)
    history_codes, history_mask, histories = random_histories(codes, users=3, max_len=6, seed=6)
    exclude = torch.full((3, 6), -1, dtype=torch.long)
    for row, items in enumerate(histories):
        exclude[row, : len(items)] = torch.as_tensor(items)
    tensors = TrieTensors.from_trie(trie)
    state = model.start_decoding(model.encode(history_codes, history_mask))
    fast = search(model, state, tensors, 5, 2, exclusion_mask(exclude, tensors.num_items))
    reference = reference_beam_search(
        model, history_codes, history_mask, trie, 5, 2, [set(map(int, h)) for h in histories]
    )
    _compare(fast.items, fast.scores, reference)
    for row, items in enumerate(histories):
        emitted = set(fast.items[row].reshape(-1).tolist()) - {-1}
        assert not emitted & set(map(int, items))


def test_topk_api_returns_distinct_items_sorted() -> None:
    codes, trie = random_catalogue(50, SIZES, seed=7)
    model = random_model(SIZES, seed=8)
    history_codes, history_mask, _ = random_histories(codes, users=5, max_len=4, seed=9)
    items, scores = beam_search(model, history_codes, history_mask, trie, beam_width=20, top_k=10)
    assert items.shape == scores.shape == (5, 10)
    for row in range(5):
        assert len(set(items[row].tolist())) == 10
        assert np.all(np.diff(scores[row].numpy()) <= 0)
    with pytest.raises(ValueError):
        beam_search(model, history_codes, history_mask, trie, beam_width=5, top_k=10)


def test_small_catalogue_pads_missing_results() -> None:
    codes, trie = random_catalogue(3, SIZES, seed=10)
    model = random_model(SIZES, seed=11)
    history_codes, history_mask, _ = random_histories(codes, users=2, max_len=2, seed=12)
    items, scores = beam_search(model, history_codes, history_mask, trie, beam_width=5, top_k=5)
    for row in range(2):
        assert sorted(items[row, :3].tolist()) == [0, 1, 2]
        assert items[row, 3:].tolist() == [-1, -1] and torch.isinf(scores[row, 3:]).all()


def test_recommend_topk_batches_by_length_and_restores_order() -> None:
    codes, trie = random_catalogue(40, SIZES, seed=13)
    model = random_model(SIZES, seed=14)
    rng = np.random.default_rng(15)
    histories = [rng.integers(0, 40, size=int(n)) for n in rng.integers(1, 9, size=7)]
    items, scores = recommend_topk(
        model, histories, codes, trie, top_k=4, beam_width=6, batch_size=3, exclude_history=True
    )
    for row, history in enumerate(histories):
        padded, _ = pad_histories([history], model.config.max_history)
        history_codes, history_mask = collate_histories(padded, CodeLookup(codes))
        one_items, one_scores = beam_search(
            model, history_codes, history_mask, trie, 6, 4, exclude_items=torch.from_numpy(padded)
        )
        assert items[row].tolist() == one_items[0].tolist()
        np.testing.assert_allclose(scores[row], one_scores[0].numpy(), rtol=1e-9)
        assert not set(items[row].tolist()) & set(history.tolist())


def test_fast_and_module_paths_agree_in_float32_at_serving_shape() -> None:
    # The demo shape in small: 8 experts top-2, beam 20, m = 3, history excluded, several users.
    sizes = [8, 8, 6]
    codes, trie = random_catalogue(300, sizes, seed=16)
    model = random_model(
        sizes, seed=17, dtype=torch.float32, max_session_items=3, num_experts=8, top_k=2
    )
    history_codes, history_mask, histories = random_histories(codes, users=4, max_len=8, seed=18)
    exclude = torch.full((4, 8), -1, dtype=torch.long)
    for row, items in enumerate(histories):
        exclude[row, : len(items)] = torch.as_tensor(items)
    tensors = TrieTensors.from_trie(trie)
    excluded = exclusion_mask(exclude, tensors.num_items)
    state = model.start_decoding(model.encode(history_codes, history_mask))
    fast = search(model, state, tensors, 20, 3, excluded, fast=True)
    module = search(model, state, tensors, 20, 3, excluded, fast=False)
    assert fast.items.tolist() == module.items.tolist()
    torch.testing.assert_close(fast.scores, module.scores, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("fast", [True, False])
def test_item_scores_equal_a_teacher_forced_pass(fast: bool) -> None:
    from onerec.model import token_logprobs
    from onerec.model.targets import session_decoder_sequences

    codes, trie = random_catalogue(30, SIZES, seed=19)
    model = random_model(SIZES, seed=20, max_session_items=3)
    history_codes, history_mask, _ = random_histories(codes, users=2, max_len=5, seed=21)
    state = model.start_decoding(model.encode(history_codes, history_mask))
    result = search(model, state, TrieTensors.from_trie(trie), 4, 3, fast=fast)
    assert result.item_scores.shape == result.items.shape
    torch.testing.assert_close(result.item_scores.sum(dim=2), result.scores)
    for user in range(2):
        for beam in range(4):
            session = torch.as_tensor(codes[result.items[user, beam].numpy()]).unsqueeze(0)
            decoder_input, targets, _ = session_decoder_sequences(
                session, torch.ones(1, 3, dtype=torch.bool), model.code_offsets
            )
            logits = model(
                history_codes[user : user + 1], history_mask[user : user + 1], decoder_input
            ).logits
            per_token = token_logprobs(logits, targets)  # [1, 3(C+1)-1], targets shifted by one
            padded = torch.cat([per_token.new_zeros(1, 1), per_token], dim=1)
            expected = padded.view(3, -1).sum(dim=1)  # [m]
            torch.testing.assert_close(result.item_scores[user, beam], expected)


def test_dead_beams_have_no_item_scores() -> None:
    codes, trie = random_catalogue(3, SIZES, seed=10)
    model = random_model(SIZES, seed=11)
    history_codes, history_mask, _ = random_histories(codes, users=1, max_len=2, seed=12)
    state = model.start_decoding(model.encode(history_codes, history_mask))
    result = search(model, state, TrieTensors.from_trie(trie), 5, 1)
    dead = ~torch.isfinite(result.scores)
    assert bool(dead.any())
    assert bool(torch.isinf(result.item_scores[dead]).all())
