"""Encoder over the user's history: one token per history item, full attention.

An item's token is built from its semantic-ID codes (sum of per-level code embeddings, or their
concatenation projected to ``d_model``) plus a learned *recency* position (0 = most recent item),
so the same item at the same distance from "now" looks the same whatever the history length.
Histories are **left-padded** (most recent item in the last column). A learned context token is
appended to every history: it keeps attention well defined for an empty history and carries
the optional user-feature embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from onerec.model.attention import SelfAttention
from onerec.model.config import GeneratorConfig
from onerec.model.moe import DenseFeedForward

_HASH_PRIME = 2_147_483_647  # 2^31 - 1


@dataclass
class EncoderOutput:
    """Encoder result, one row per user."""

    memory: torch.Tensor  # [U, S+1, d]
    memory_mask: torch.Tensor  # [U, S+1] True = real position


class ItemCodeEmbedding(nn.Module):
    """Semantic-ID codes ``[B, S, C]`` -> item tokens ``[B, S, d]``.

    Sum (or concatenation + projection) of per-level code embeddings. With
    ``code_hash_buckets > 0`` an item-specific vector is added: two universal hashes of the full
    code tuple index one table of that many rows and their rows are summed (hashing trick — the
    tuple is unique per item, so this acts as an item-ID embedding that needs nothing but the
    codes; two hashes make a full collision between two items rare).
    """

    offsets: torch.Tensor
    hash_multipliers: torch.Tensor

    def __init__(self, config: GeneratorConfig, code_table: nn.Embedding) -> None:
        super().__init__()
        # Row 1 + offset_l + code of the shared token table is (level l, code).
        self.register_buffer(
            "offsets", torch.tensor(config.code_offsets, dtype=torch.long) + 1, persistent=False
        )
        self.code_table = code_table
        self.mode = config.item_embedding
        levels, width = config.num_code_levels, config.d_model
        self.project = nn.Linear(levels * width, width) if self.mode == "concat" else None
        self.hash_table = (
            nn.Embedding(config.code_hash_buckets, width) if config.code_hash_buckets else None
        )
        # Fixed odd multipliers (a seeded draw, so saved models hash identically when reloaded).
        generator = torch.Generator().manual_seed(2**31 - 1)
        multipliers = torch.randint(1, _HASH_PRIME, (2, levels), generator=generator)
        self.register_buffer("hash_multipliers", multipliers, persistent=False)

    def hash_rows(self, codes: torch.Tensor) -> torch.Tensor:
        """Two bucket indices per code tuple: ``[..., C] -> [..., 2]``."""
        assert self.hash_table is not None
        # [..., 1, C] * [2, C] summed over C; < 2^31 * 2^8 * C fits in int64.
        mixed = (codes.unsqueeze(-2) * self.hash_multipliers).sum(-1) % _HASH_PRIME
        return mixed % self.hash_table.num_embeddings

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        per_level = self.code_table(codes + self.offsets)  # [B, S, C, d]
        if self.project is None:
            tokens = per_level.sum(dim=2)  # [B, S, d]
        else:
            tokens = self.project(per_level.flatten(2))  # [B, S, d]
        if self.hash_table is not None:
            tokens = tokens + self.hash_table(self.hash_rows(codes)).sum(dim=-2)
        return tokens


class EncoderLayer(nn.Module):
    """Pre-LN transformer block: full self-attention with key padding mask, dense FFN."""

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        width = config.d_model
        self.norm_attn = nn.LayerNorm(width)
        self.attn = SelfAttention(width, config.num_heads, config.attention_dropout)
        self.norm_ffn = nn.LayerNorm(width)
        total_layers = config.encoder_layers + config.decoder_layers
        self.ffn = DenseFeedForward(
            width, config.encoder_ffn_hidden, 0.02 / (2 * total_layers) ** 0.5
        )
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        attended, _ = self.attn(self.norm_attn(x), key_mask=key_mask)
        x = x + self.drop(attended)  # [B, S, d]
        hidden, _ = self.ffn(self.norm_ffn(x))
        return x + self.drop(hidden)  # [B, S, d]


class HistoryEncoder(nn.Module):
    """Item tokens + recency positions (+ user token) -> transformer -> memory."""

    def __init__(self, config: GeneratorConfig, code_table: nn.Embedding) -> None:
        super().__init__()
        width = config.d_model
        self.item_embedding = ItemCodeEmbedding(config, code_table)
        self.recency = nn.Embedding(config.max_history, width)
        self.context = nn.Parameter(torch.randn(width) * 0.02)
        self.user_embedding = (
            nn.Embedding(config.num_user_buckets, width) if config.num_user_buckets else None
        )
        self.drop = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.encoder_layers))
        self.norm = nn.LayerNorm(width)
        self.max_history = config.max_history

    def forward(
        self,
        history_codes: torch.Tensor,  # [U, S, C] long, left-padded
        history_mask: torch.Tensor,  # [U, S] bool
        user_ids: torch.Tensor | None = None,  # [U] long (hashed into num_user_buckets)
    ) -> EncoderOutput:
        users, length, _ = history_codes.shape
        if length > self.max_history:
            raise ValueError(f"history length {length} exceeds max_history {self.max_history}")
        # Column j of a left-padded row is (length - 1 - j) steps before the most recent item.
        recency = torch.arange(length - 1, -1, -1, device=history_codes.device)  # [S]
        tokens = self.item_embedding(history_codes) + self.recency(recency)  # [U, S, d]
        context = self.context.expand(users, 1, -1)  # [U, 1, d]
        if self.user_embedding is not None and user_ids is not None:
            buckets = user_ids % self.user_embedding.num_embeddings
            context = context + self.user_embedding(buckets).unsqueeze(1)
        x = self.drop(torch.cat([tokens, context], dim=1))  # [U, S+1, d]
        ones = torch.ones(users, 1, dtype=torch.bool, device=history_mask.device)
        memory_mask = torch.cat([history_mask.bool(), ones], dim=1)  # [U, S+1]
        for layer in self.layers:
            x = layer(x, memory_mask)
        return EncoderOutput(memory=self.norm(x), memory_mask=memory_mask)
