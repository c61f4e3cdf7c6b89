"""FLOPs of a generator training step, counted on real (non-padding) tokens only.

Forward FLOPs = 2 × (multiply-adds). A training step is 3 × forward (the backward pass costs
about twice the forward), i.e. the usual ``6 × active params × tokens`` plus attention terms:

* encoder token (each real history item + the context token), per encoder layer:
  ``qkv + out = 4d²``, FFN ``2·d·H_enc``; and per decoder layer the cross-attention key/value
  projection of the memory, ``2d²``;
* decoder token, per decoder layer: self-attention ``4d²``, cross-attention query + out
  ``2d²``, router ``d·N``, ``k`` experts ``k·2·d·H_exp`` (a dense FFN: ``2·d·k·H_exp``); plus
  its level's output head ``d·V_level``;
* attention scores and weighted sums, ``2·d`` multiply-adds per (query, key) pair: full over
  ``S`` real encoder positions (``S²`` pairs per layer), causal in the decoder
  (``T(T+1)/2`` pairs), and ``T·S`` cross pairs per decoder layer.

Embedding lookups, norms, activations, softmax and the optimizer are not counted (as in the
MFU convention of PaLM / nanoGPT), so MFU slightly undercounts the work done.
"""

from __future__ import annotations

import numpy as np

from onerec.model.config import GeneratorConfig


def forward_flops(
    config: GeneratorConfig, encoder_lengths: np.ndarray, decoder_lengths: np.ndarray
) -> float:
    """Forward FLOPs for rows with ``encoder_lengths`` real encoder tokens (history + context)
    and ``decoder_lengths`` real decoder input tokens."""
    d = config.d_model
    enc = np.asarray(encoder_lengths, dtype=np.float64)
    dec = np.asarray(decoder_lengths, dtype=np.float64)
    enc_tokens, dec_tokens = enc.sum(), dec.sum()
    ffn_hidden = config.top_k * config.expert_hidden
    router = d * config.num_experts if config.ffn == "moe" else 0
    encoder_token = config.encoder_layers * (4 * d * d + 2 * d * config.encoder_ffn_hidden)
    memory_projection = config.decoder_layers * 2 * d * d
    decoder_token = config.decoder_layers * (4 * d * d + 2 * d * d + router + 2 * d * ffn_hidden)
    head = d * _head_outputs(config, dec)  # summed over every decoder position
    linear = enc_tokens * (encoder_token + memory_projection) + dec_tokens * decoder_token + head
    attention_pairs = (
        config.encoder_layers * (enc**2).sum()
        + config.decoder_layers * (dec * (dec + 1) / 2).sum()
        + config.decoder_layers * (dec * enc).sum()
    )
    return float(2 * (linear + 2 * d * attention_pairs))


def training_flops(
    config: GeneratorConfig, encoder_lengths: np.ndarray, decoder_lengths: np.ndarray
) -> float:
    """FLOPs of one optimizer step's forward + backward (3 × forward)."""
    return 3 * forward_flops(config, encoder_lengths, decoder_lengths)


def _head_outputs(config: GeneratorConfig, decoder_lengths: np.ndarray) -> float:
    # Total head outputs: position p of a row predicts level p mod (C+1); the level-0 head
    # also serves the positions that precede a [BOS] (see SessionDecoder.logits).
    levels = config.num_code_levels
    sizes = list(config.codebook_sizes) + [config.codebook_sizes[0]]
    total = 0.0
    for length in decoder_lengths.astype(np.int64):
        positions = np.arange(length) % (levels + 1)
        total += float(np.take(sizes, positions).sum())
    return total
