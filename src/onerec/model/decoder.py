"""Session decoder: causal self-attention, cross-attention to the history, sparse-MoE FFN.

Input tokens are ``[BOS] s₁¹…s₁^C [BOS] s₂¹…`` (ids from the shared token table, see
:class:`onerec.model.config.GeneratorConfig`). Position ``p`` predicts a code of level
``p mod (C+1)``; the value ``C`` marks a position whose successor is the deterministic
``[BOS]`` (no loss there). Output heads are per level, stacked as ``[C, V_max, d]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F
from torch import nn

from onerec.model.attention import CrossAttention, KVPair, SelfAttention
from onerec.model.attention_decode import (
    DecodeMemory,
    KVCache,
    cached_self_attention,
    memory_attention,
)
from onerec.model.config import GeneratorConfig
from onerec.model.moe import MoEStats, build_ffn, ffn_inference


@dataclass
class DecoderRun:
    """Hidden states of the decoder plus what generation and the loss need."""

    hidden: torch.Tensor  # [B, T, d] after the final norm
    self_kv: list[KVPair]  # per layer, [B, H, T_past + T, Dh]
    moe_stats: list[MoEStats]  # one per MoE layer (empty for a dense decoder)


class DecoderLayer(nn.Module):
    """Pre-LN block: causal self-attention, cross-attention, injected FFN (MoE or dense)."""

    def __init__(self, config: GeneratorConfig, ffn: nn.Module) -> None:
        super().__init__()
        width = config.d_model
        self.norm_self = nn.LayerNorm(width)
        self.self_attn = SelfAttention(width, config.num_heads, config.attention_dropout)
        self.norm_cross = nn.LayerNorm(width)
        self.cross_attn = CrossAttention(width, config.num_heads, config.attention_dropout)
        self.norm_ffn = nn.LayerNorm(width)
        self.ffn = ffn
        self.drop = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,  # [B, T, d]
        memory_kv: KVPair,  # [U, H, S, Dh]
        memory_mask: torch.Tensor,  # [U, S]
        token_mask: torch.Tensor | None = None,  # [B, T] real tokens (for MoE routing/stats)
        past_kv: KVPair | None = None,
        with_stats: bool = True,
    ) -> tuple[torch.Tensor, KVPair, MoEStats | None]:
        attended, kv = self.self_attn(self.norm_self(x), causal=True, past_kv=past_kv)
        x = x + self.drop(attended)
        x = x + self.drop(self.cross_attn(self.norm_cross(x), memory_kv, memory_mask))
        if not with_stats and not self.training:  # inference: no MoE statistics to compute
            return x + ffn_inference(self.ffn, self.norm_ffn(x), token_mask), kv, None
        hidden, stats = self.ffn(self.norm_ffn(x), token_mask)
        return x + self.drop(hidden), kv, stats

    def step(
        self,
        x: torch.Tensor,
        memory: DecodeMemory,
        cache: KVCache,
        index: int,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Inference fast path of :meth:`forward` for new positions ``x [B, T, d]`` (layer
        ``index`` of ``cache``); same math, fewer operators (no dropout, no MoE statistics).
        ``last_only``: after self-attention (which stores every position's keys/values) only
        the last position goes on — ``[B, 1, d]`` (for the top layer when only it is read)."""
        x = x + cached_self_attention(self.self_attn, _norm(self.norm_self, x), cache, index)
        if last_only and x.shape[1] > 1:
            x = x[:, -1:]
        x = x + memory_attention(self.cross_attn, _norm(self.norm_cross, x), memory, index)
        return x + ffn_inference(self.ffn, _norm(self.norm_ffn, x))


class SessionDecoder(nn.Module):
    """Decoder stack with per-level output heads."""

    level_mask: torch.Tensor
    head_rows: torch.Tensor

    def __init__(self, config: GeneratorConfig, token_table: nn.Embedding) -> None:
        super().__init__()
        width, levels = config.d_model, config.num_code_levels
        self.token_table = token_table
        self.position = nn.Embedding(config.max_decoder_len, width)
        self.drop = nn.Dropout(config.dropout)
        total_layers = config.encoder_layers + config.decoder_layers
        self.layers = nn.ModuleList(
            DecoderLayer(
                config,
                build_ffn(
                    config.ffn,
                    width,
                    config.expert_hidden,
                    config.num_experts,
                    config.top_k,
                    total_layers,
                    config.renormalize_gates,
                    config.load_balance,
                    config.bias_update_rate,
                ),
            )
            for _ in range(config.decoder_layers)
        )
        self.norm = nn.LayerNorm(width)
        self.codebook_sizes = list(config.codebook_sizes)
        max_codes = max(self.codebook_sizes)
        # Tied heads reuse the input rows of the codes (1 + offset + code) as output weights.
        self.head_weight: nn.Parameter | None = None
        if not config.tie_output_heads:
            self.head_weight = nn.Parameter(torch.randn(levels, max_codes, width) * 0.02)
        self.head_bias = nn.Parameter(torch.zeros(levels, max_codes))
        mask = torch.zeros(levels, max_codes)
        rows = torch.zeros(levels, max_codes, dtype=torch.long)
        for level, (size, offset) in enumerate(
            zip(self.codebook_sizes, config.code_offsets, strict=True)
        ):
            mask[level, size:] = float("-inf")  # codes that do not exist at this level
            rows[level, :size] = 1 + offset + torch.arange(size)
        self.register_buffer("level_mask", mask, persistent=False)
        self.register_buffer("head_rows", rows, persistent=False)
        self.code_offsets = list(config.code_offsets)
        self.levels_per_item = levels + 1

    def project_memory(self, memory: torch.Tensor) -> list[KVPair]:
        """Cross-attention keys/values of every layer, computed once per user."""
        return [
            cast(DecoderLayer, layer).cross_attn.project_memory(memory) for layer in self.layers
        ]

    def forward(
        self,
        decoder_input: torch.Tensor,  # [B, T] token ids
        memory_kv: list[KVPair],
        memory_mask: torch.Tensor,  # [U, S]
        token_mask: torch.Tensor | None = None,  # [B, T]
        past_kv: list[KVPair] | None = None,
        start_position: int = 0,
        with_stats: bool = True,
    ) -> DecoderRun:
        """Decoder pass; ``with_stats=False`` in eval mode skips the MoE statistics (inference)."""
        length = decoder_input.shape[1]
        positions = torch.arange(
            start_position, start_position + length, device=decoder_input.device
        )
        x = self.drop(self.token_table(decoder_input) + self.position(positions))  # [B, T, d]
        new_kv: list[KVPair] = []
        stats: list[MoEStats] = []
        for index, layer in enumerate(self.layers):
            past = past_kv[index] if past_kv is not None else None
            x, kv, layer_stats = layer(
                x, memory_kv[index], memory_mask, token_mask, past, with_stats
            )
            new_kv.append(kv)
            if layer_stats is not None:
                stats.append(layer_stats)
        return DecoderRun(hidden=self.norm(x), self_kv=new_kv, moe_stats=stats)

    def new_cache(
        self, batch: int, max_length: int, dtype: torch.dtype, device: torch.device
    ) -> KVCache:
        """An empty self-attention cache of every layer for :meth:`step`."""
        first = cast(DecoderLayer, self.layers[0]).self_attn
        heads = first.num_heads
        width = self.position.weight.shape[1]
        return KVCache(len(self.layers), batch, heads, max_length, width // heads, dtype, device)

    @torch.no_grad()
    def step(
        self,
        tokens: torch.Tensor,  # [B, T] new token ids, B = U * G
        memory: DecodeMemory,
        cache: KVCache,
        last_only: bool = False,
    ) -> torch.Tensor:
        """Inference fast path: the normalised hidden states ``[B, T, d]`` of the new tokens
        (``[B, 1, d]``, the last one only, with ``last_only``: what a search step reads).

        Same math as :meth:`forward` with ``past_kv`` (the reference) in eval mode: positions
        continue at ``cache.length``, the cache grows in place and advances by ``T``.
        """
        if self.training:
            raise RuntimeError("SessionDecoder.step is the inference path; call eval() first")
        start, length = cache.length, tokens.shape[1]
        x = (
            F.embedding(tokens, self.token_table.weight)
            + self.position.weight[start : start + length]
        )
        top = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            x = cast(DecoderLayer, layer).step(x, memory, cache, index, last_only and index == top)
        cache.length = start + length
        return _norm(self.norm, x)

    def predicted_levels(self, length: int, start_position: int = 0) -> torch.Tensor:
        """Level each position predicts; ``C`` (= num levels) where ``[BOS]`` comes next."""
        positions = torch.arange(
            start_position, start_position + length, device=self.level_mask.device
        )
        return positions % self.levels_per_item  # [T]

    def logits(self, hidden: torch.Tensor, start_position: int = 0) -> torch.Tensor:
        """All positions' logits ``[B, T, V_max]``, each from its level's head (one bmm).

        Positions that precede a ``[BOS]`` use the level-0 head; their targets are ignored.
        """
        levels = self.predicted_levels(hidden.shape[1], start_position)
        levels = torch.where(levels == len(self.codebook_sizes), 0, levels)  # [T]
        weight = self.stacked_heads()[levels]  # [T, V_max, d]
        # [T, B, d] @ [T, d, V] -> [T, B, V]
        out = torch.baddbmm(
            self.head_bias[levels].unsqueeze(1), hidden.transpose(0, 1), weight.transpose(1, 2)
        )
        return out.transpose(0, 1) + self.level_mask[levels]  # [B, T, V_max]

    def level_logits(self, hidden: torch.Tensor, level: int) -> torch.Tensor:
        """Logits of one level for a batch of states ``[B, d]`` -> ``[B, codebook_sizes[level]]``."""
        size = self.codebook_sizes[level]
        if self.head_weight is None:
            start = 1 + self.code_offsets[level]
            weight = self.token_table.weight[start : start + size]  # [V_level, d]
        else:
            weight = self.head_weight[level, :size]
        return torch.addmm(self.head_bias[level, :size], hidden, weight.T)

    def level_heads(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per level ``(weight_t [d, V_level], bias [V_level])`` for :meth:`level_logits`-equal
        products, sliced once per search instead of once per step (inference)."""
        heads = []
        for level, size in enumerate(self.codebook_sizes):
            if self.head_weight is None:
                start = 1 + self.code_offsets[level]
                weight = self.token_table.weight[start : start + size]  # [V_level, d]
            else:
                weight = self.head_weight[level, :size]
            heads.append((weight.T, self.head_bias[level, :size]))
        return heads

    def stacked_heads(self) -> torch.Tensor:
        """Every level's output weights, ``[C, V_max, d]`` (rows past a level's size unused)."""
        if self.head_weight is None:
            return self.token_table.weight[self.head_rows]
        return self.head_weight


def _norm(norm: nn.LayerNorm, x: torch.Tensor) -> torch.Tensor:
    # The module's own layer norm without the nn.Module call and F.layer_norm wrapper overhead.
    return torch.layer_norm(x, norm.normalized_shape, norm.weight, norm.bias, norm.eps)
