"""Attention masks, cross-attention beam folding, and KV-cache decoding vs full re-forward."""

from __future__ import annotations

import pytest
import torch

from onerec.model.attention import CrossAttention, SelfAttention
from onerec.model.synthetic import random_catalogue, random_histories, random_model
from onerec.model.targets import session_decoder_sequences


def test_padded_keys_do_not_change_output() -> None:
    torch.manual_seed(0)
    attn = SelfAttention(16, 4).eval()
    x = torch.randn(1, 5, 16)
    mask = torch.tensor([[False, False, True, True, True]])
    out_masked, _ = attn(x, key_mask=mask)
    out_short, _ = attn(x[:, 2:])
    torch.testing.assert_close(out_masked[:, 2:], out_short, rtol=1e-5, atol=1e-6)


def test_causal_output_ignores_future_tokens() -> None:
    torch.manual_seed(0)
    attn = SelfAttention(16, 2).eval()
    x = torch.randn(2, 6, 16)
    changed = x.clone()
    changed[:, 4:] = torch.randn(2, 2, 16)
    a, _ = attn(x, causal=True)
    b, _ = attn(changed, causal=True)
    torch.testing.assert_close(a[:, :4], b[:, :4])
    assert not torch.allclose(a[:, 4:], b[:, 4:])


def test_cached_multi_token_step_matches_full_causal() -> None:
    torch.manual_seed(0)
    attn = SelfAttention(16, 2).eval()
    x = torch.randn(2, 6, 16)
    full, _ = attn(x, causal=True)
    first, past = attn(x[:, :3], causal=True)
    rest, _ = attn(x[:, 3:], causal=True, past_kv=past)
    torch.testing.assert_close(torch.cat([first, rest], 1), full, rtol=1e-5, atol=1e-6)


def test_cross_attention_folds_beams_without_copying_memory() -> None:
    torch.manual_seed(0)
    cross = CrossAttention(16, 4).eval()
    memory = torch.randn(3, 7, 16)  # 3 users
    memory_mask = torch.ones(3, 7, dtype=torch.bool)
    memory_mask[0, :3] = False
    beams = torch.randn(3 * 5, 2, 16)  # 5 beams per user, 2 positions
    folded = cross(beams, cross.project_memory(memory), memory_mask)
    # Reference: copy each user's memory once per beam.
    repeated = memory.repeat_interleave(5, dim=0)
    copied = cross(beams, cross.project_memory(repeated), memory_mask.repeat_interleave(5, dim=0))
    torch.testing.assert_close(folded, copied, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"tie_output_heads": True, "code_hash_buckets": 97},
        {"ffn": "dense", "item_embedding": "concat"},
    ],
)
def test_kv_cache_decoding_equals_full_reforward(overrides: dict[str, object]) -> None:
    sizes = [6, 5, 4]
    codes, _ = random_catalogue(60, sizes)
    model = random_model(sizes, max_session_items=3, **overrides)
    history_codes, history_mask, _ = random_histories(codes, users=4, max_len=6)
    session = torch.as_tensor(codes[[[1, 7, 9], [3, 4, 5], [10, 11, 12], [0, 20, 30]]])
    decoder_input, _, _ = session_decoder_sequences(
        session, torch.ones(4, 3, dtype=torch.bool), model.code_offsets
    )
    full = model(history_codes, history_mask, decoder_input).logits  # [4, T, V]
    state = model.start_decoding(model.encode(history_codes, history_mask))
    past = None
    position = 0
    # Feed one token, then two, then the rest: cache growth with mixed step sizes.
    for step in (1, 2, 1, 3, decoder_input.shape[1] - 7):
        run = model.decode(decoder_input[:, position : position + step], state, past, position)
        past = run.self_kv
        cached = model.decoder.logits(run.hidden, start_position=position)
        torch.testing.assert_close(
            cached, full[:, position : position + step], rtol=1e-9, atol=1e-9
        )
        position += step
    assert position == decoder_input.shape[1]
