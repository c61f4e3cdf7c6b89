"""SASRec (Kang & McAuley, 2018) trained with full softmax cross-entropy over all items.

A causal transformer over item embeddings with learned positions, pre-LayerNorm blocks and
dropout. Every position predicts the next item; the loss is the cross-entropy of the full
softmax over the catalogue (logits = hidden · item_embedding, the input table reused as the
output layer), counting padding out. This "CE" variant is much stronger than the original
binary cross-entropy with one sampled negative (published Beauty R@10 ≈ .085 vs .0605).

Batches are right-padded (see :mod:`onerec.baselines.batching`). Positions are aligned to the
most recent item: the last real item of every row gets position ``max_len - 1``, the one
before ``max_len - 2`` and so on, so a 20-item evaluation history and a 50-item training
window share the meaning of "k items ago".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from pydantic import Field
from torch import nn
from torch.nn import functional as F

from onerec.baselines.batching import pad_right
from onerec.config import StrictModel


class SASRecConfig(StrictModel):
    """Size and regularisation of :class:`SASRec` (the ``[model]`` config section)."""

    num_items: int | None = Field(
        default=None, ge=1, description="catalogue size (set from the data)"
    )
    max_len: int = Field(default=50, ge=1, description="longest training window / positions")
    d_model: int = Field(default=64, ge=8)
    num_layers: int = Field(default=2, ge=1)
    num_heads: int = Field(default=2, ge=1)
    ffn_dim: int = Field(default=256, ge=1, description="hidden size of the feed-forward block")
    dropout: float = Field(default=0.3, ge=0, lt=1, description="embedding, attention and residual")
    init_std: float = Field(default=0.02, gt=0)
    tie_embeddings: bool = Field(
        default=True,
        description="score with the input item table (False: a separate output table)",
    )
    output_bias: bool = Field(default=False, description="a learned per-item score bias")


class _Block(nn.Module):
    """Pre-LN transformer block: x + Attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        if cfg.d_model % cfg.num_heads:
            raise ValueError(
                f"d_model {cfg.d_model} must be divisible by num_heads {cfg.num_heads}"
            )
        self.num_heads = cfg.num_heads
        self.dropout = cfg.dropout
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.ffn_dim),
            nn.GELU(),
            nn.Linear(cfg.ffn_dim, cfg.d_model),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, seq, d_model = x.shape  # [B, T, d]
        qkv = self.qkv(self.norm1(x)).view(batch, seq, 3, self.num_heads, d_model // self.num_heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each [B, H, T, d_head]
        attn = F.scaled_dot_product_attention(
            q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0
        )  # [B, H, T, d_head]
        attn = attn.transpose(1, 2).reshape(batch, seq, d_model)  # [B, T, d]
        x = x + self.drop(self.proj(attn))
        return x + self.drop(self.ffn(self.norm2(x)))


class SASRec(nn.Module):
    """Causal self-attentive sequential recommender. Pad id is ``num_items``."""

    def __init__(self, config: SASRecConfig) -> None:
        super().__init__()
        if config.num_items is None:
            raise ValueError("SASRecConfig.num_items must be set (it comes from the data set)")
        self.config = config
        self.num_items = config.num_items
        self.pad_id = config.num_items
        self.item_emb = nn.Embedding(config.num_items + 1, config.d_model, padding_idx=self.pad_id)
        self.pos_emb = nn.Embedding(config.max_len, config.d_model)
        self.emb_drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.d_model)
        # Untied, the output table need not make an item look like its own best successor:
        # with tied tables the last input item's embedding is also the output direction.
        self.out_emb = (
            None if config.tie_embeddings else nn.Embedding(config.num_items, config.d_model)
        )
        self.out_bias = nn.Parameter(torch.zeros(config.num_items)) if config.output_bias else None
        self.apply(self._init)

    def _init(self, module: nn.Module) -> None:
        std = self.config.init_std
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, 0.0, std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()

    def encode(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[B, T, d]`` for right-padded ``input_ids [B, T]``."""
        seq = input_ids.shape[1]
        if seq > self.config.max_len:
            raise ValueError(f"sequence length {seq} exceeds max_len {self.config.max_len}")
        steps = torch.arange(seq, device=input_ids.device)  # [T]
        # recency-aligned: the last real item (t = length-1) gets position max_len-1
        positions = steps[None, :] - lengths[:, None] + self.config.max_len  # [B, T]
        positions = positions.clamp(0, self.config.max_len - 1)  # padding rows: any valid id
        x = self.item_emb(input_ids) * math.sqrt(self.config.d_model) + self.pos_emb(positions)
        x = self.emb_drop(x)  # [B, T, d]
        for block in self.blocks:
            x = block(x)
        return self.final_norm(x)  # [B, T, d]

    def item_table(self) -> torch.Tensor:
        """Output embeddings of the real items ``[num_items, d]`` (padding row excluded)."""
        if self.out_emb is not None:
            return self.out_emb.weight
        return self.item_emb.weight[: self.num_items]

    def last_hidden(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Hidden state at each row's last real item ``[B, d]``."""
        hidden = self.encode(input_ids, lengths)  # [B, T, d]
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, lengths - 1]  # [B, d]

    def score_histories(self, histories: Sequence[np.ndarray]) -> torch.Tensor:
        """Scores ``[B, num_items]`` of every item as the next one after each history."""
        device = self.item_emb.weight.device
        input_ids, lengths = pad_right(histories, self.pad_id, self.config.max_len)
        hidden = self.last_hidden(input_ids.to(device), lengths.to(device))  # [B, d]
        return hidden @ self.item_table().T + self.score_bias()  # [B, num_items]

    def score_bias(self) -> torch.Tensor | float:
        """Per-item bias ``[num_items]`` added to every score (0 when disabled)."""
        return self.out_bias if self.out_bias is not None else 0.0


def full_softmax_ce(
    hidden: torch.Tensor,
    item_table: torch.Tensor,
    targets: torch.Tensor,
    pad_id: int,
    bias: torch.Tensor | float = 0.0,
) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy of the full softmax over items, over non-padding positions.

    Args:
        hidden: ``[B, T, d]`` (or ``[N, d]``) hidden states.
        item_table: ``[num_items, d]`` output embeddings; logits = hidden · item_tableᵀ.
        targets: ``[B, T]`` (or ``[N]``) next-item ids; ``pad_id`` marks positions to ignore.
        bias: optional ``[num_items]`` added to every row of logits.

    Returns ``(loss, number of counted positions)``. Logits are computed only for counted
    positions — padding costs no ``[*, num_items]`` work.
    """
    keep = targets != pad_id  # [B, T]
    chosen = hidden[keep]  # [N, d]
    logits = chosen @ item_table.T + bias  # [N, num_items]
    loss = F.cross_entropy(logits.float(), targets[keep])
    return loss, int(keep.sum())
