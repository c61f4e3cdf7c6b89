"""FLOP count of a training step against a hand-derived number and the parameter counts."""

from __future__ import annotations

import numpy as np

from onerec.model import GeneratorConfig, OneRecGenerator, parameter_counts
from onerec.model.flops import forward_flops, training_flops


def test_forward_flops_by_hand() -> None:
    config = GeneratorConfig(
        codebook_sizes=[4, 2],
        d_model=8,
        num_heads=2,
        encoder_layers=1,
        decoder_layers=1,
        encoder_ffn_hidden=16,
        num_experts=4,
        top_k=2,
        expert_hidden=8,
    )
    # One row: 3 encoder tokens, decoder input [BOS, c0] (positions predict levels 0 and 1).
    enc, dec = np.array([3]), np.array([2])
    encoder_token = 4 * 64 + 2 * 8 * 16  # 512
    memory_projection = 2 * 64  # 128
    decoder_token = 4 * 64 + 2 * 64 + 8 * 4 + 2 * 8 * 16  # 672
    head = 8 * (4 + 2)
    pairs = 3 * 3 + 2 * 3 / 2 + 2 * 3
    expected = 2 * (
        3 * (encoder_token + memory_projection) + 2 * decoder_token + head + 2 * 8 * pairs
    )
    assert forward_flops(config, enc, dec) == expected
    assert training_flops(config, enc, dec) == 3 * expected


def test_linear_part_matches_active_parameter_count() -> None:
    # Without attention pairs and heads, FLOPs are 2 x active matmul weights x tokens they touch.
    config = GeneratorConfig.named("small", [16, 16, 4])
    counts = parameter_counts(OneRecGenerator(config))
    d = config.d_model
    enc, dec = np.array([10.0]), np.array([1.0])
    flops = forward_flops(config, enc, dec)
    pairs = config.encoder_layers * 100 + config.decoder_layers * (1 + 10)
    head = d * 16
    memory_kv = config.decoder_layers * 2 * d * d  # decoder weights applied to encoder tokens
    linear = (flops / 2) - 2 * d * pairs - head
    expected = 10 * (counts.encoder_matmul + memory_kv) + (counts.decoder_matmul_active - memory_kv)
    assert linear == expected
