"""The inference decoder step (preallocated cache, matmul attention) equals the module path."""

from __future__ import annotations

import pytest
import torch

from onerec.model.attention_decode import DecodeMemory
from onerec.model.synthetic import random_catalogue, random_histories, random_model
from onerec.model.targets import session_decoder_sequences


@pytest.mark.parametrize(
    "overrides",
    [{}, {"tie_output_heads": True, "load_balance": "both"}, {"ffn": "dense"}],
)
def test_step_equals_cached_module_forward(overrides: dict[str, object]) -> None:
    sizes = [6, 5, 4]
    codes, _ = random_catalogue(60, sizes)
    model = random_model(sizes, max_session_items=3, **overrides)  # type: ignore[arg-type]
    history_codes, history_mask, _ = random_histories(codes, users=2, max_len=6)
    state = model.start_decoding(model.encode(history_codes, history_mask))
    memory = DecodeMemory.from_projected(state.memory_kv, state.memory_mask)
    # 3 beams per user (rows u*3 … u*3+2), different sessions per beam.
    session = torch.as_tensor(codes[torch.arange(18).view(6, 3).numpy()])  # [6, 3, C]
    decoder_input, _, _ = session_decoder_sequences(
        session, torch.ones(6, 3, dtype=torch.bool), model.code_offsets
    )
    cache = model.decoder.new_cache(6, decoder_input.shape[1], torch.float64, torch.device("cpu"))
    past = None
    position = 0
    parent = torch.tensor([2, 0, 0, 4, 5, 3])  # a beam reorder within each user
    for step in (1, 2, 1, 3, decoder_input.shape[1] - 7):
        tokens = decoder_input[:, position : position + step]
        run = model.decode(tokens, state, past, position)
        fast = model.decoder.step(tokens, memory, cache)
        torch.testing.assert_close(fast, run.hidden, rtol=1e-10, atol=1e-10)
        assert cache.length == position + step
        # Reorder both caches the same way, then continue from the reordered beams.
        past = [(k.index_select(0, parent), v.index_select(0, parent)) for k, v in run.self_kv]
        cache.reorder(parent)
        decoder_input = decoder_input.index_select(0, parent)
        position += step


def test_memory_padding_is_ignored() -> None:
    sizes = [4, 4]
    codes, _ = random_catalogue(12, sizes)
    model = random_model(sizes, max_session_items=1)
    history_codes, history_mask, _ = random_histories(codes, users=1, max_len=5)
    padded_codes = torch.cat([torch.zeros_like(history_codes[:, :3]), history_codes], dim=1)
    padded_mask = torch.cat([torch.zeros(1, 3, dtype=torch.bool), history_mask], dim=1)
    outputs = []
    for h_codes, h_mask in ((history_codes, history_mask), (padded_codes, padded_mask)):
        state = model.start_decoding(model.encode(h_codes, h_mask))
        memory = DecodeMemory.from_projected(state.memory_kv, state.memory_mask)
        cache = model.decoder.new_cache(1, 3, torch.float64, torch.device("cpu"))
        outputs.append(model.decoder.step(torch.tensor([[0, 2]]), memory, cache))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-10, atol=1e-10)


def test_step_refuses_training_mode_and_cache_overflow() -> None:
    sizes = [4, 4]
    codes, _ = random_catalogue(12, sizes)
    model = random_model(sizes, max_session_items=1)
    history_codes, history_mask, _ = random_histories(codes, users=1, max_len=3)
    state = model.start_decoding(model.encode(history_codes, history_mask))
    memory = DecodeMemory.from_projected(state.memory_kv, state.memory_mask)
    cache = model.decoder.new_cache(1, 2, torch.float64, torch.device("cpu"))
    with pytest.raises(ValueError, match="cache length"):
        model.decoder.step(torch.tensor([[0, 2, 3]]), memory, cache)
    model.train()
    with pytest.raises(RuntimeError, match="inference"):
        model.decoder.step(torch.tensor([[0]]), memory, cache)


def test_last_only_keeps_the_cache_and_the_last_position() -> None:
    sizes = [6, 5, 4]
    codes, _ = random_catalogue(60, sizes)
    model = random_model(sizes, max_session_items=2)
    history_codes, history_mask, _ = random_histories(codes, users=2, max_len=6)
    state = model.start_decoding(model.encode(history_codes, history_mask))
    memory = DecodeMemory.from_projected(state.memory_kv, state.memory_mask)
    tokens = torch.tensor([[0, 3, 9], [0, 4, 10]])
    caches = [model.decoder.new_cache(2, 8, torch.float64, torch.device("cpu")) for _ in range(2)]
    full = model.decoder.step(tokens, memory, caches[0])
    last = model.decoder.step(tokens, memory, caches[1], last_only=True)
    assert last.shape == (2, 1, full.shape[2])
    torch.testing.assert_close(last, full[:, -1:], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(caches[1].buffer[:3], caches[0].buffer[:3], rtol=0, atol=0)
