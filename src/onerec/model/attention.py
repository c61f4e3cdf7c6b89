"""Multi-head self- and cross-attention on ``scaled_dot_product_attention``, with a KV cache.

Self-attention serves the encoder (full attention, key padding mask) and the decoder (causal).
During incremental decoding it takes the cached keys/values of earlier positions and returns the
grown cache; beam search reorders that cache by parent beam between steps.

Cross-attention projects the encoder output to keys/values **once per user**
(:meth:`CrossAttention.project_memory`). When a batch of decoder rows holds ``G`` beams per user
(rows ``u*G … u*G+G-1`` belong to user ``u``), the queries of a user's beams are folded into the
query-length axis, ``[U, H, G*T, Dh]``, so every beam attends to the *same* ``[U, H, S, Dh]``
memory tensor: no per-beam copy of the memory is ever made.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KVPair = tuple[torch.Tensor, torch.Tensor]  # keys, values: [batch, heads, seq, head_dim]


def _split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    # [B, T, d] -> [B, H, T, Dh]
    batch, length, width = x.shape
    return x.view(batch, length, num_heads, width // num_heads).transpose(1, 2)


def _merge_heads(x: torch.Tensor) -> torch.Tensor:
    # [B, H, T, Dh] -> [B, T, d]
    batch, heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, heads * head_dim)


def _single_query_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Softmax attention for ``q [B, H, 1, Dh]`` over ``k, v [B, H, T, Dh]`` -> ``[B, H, 1, Dh]``."""
    scores = (q * k).sum(dim=-1, keepdim=True) * q.shape[-1] ** -0.5  # [B, H, T, 1]
    weights = torch.softmax(scores, dim=2)
    return (weights * v).sum(dim=2, keepdim=True)


def key_padding_to_attn_mask(key_mask: torch.Tensor) -> torch.Tensor:
    """``[B, S]`` bool (True = real key) -> ``[B, 1, 1, S]`` mask that SDPA broadcasts."""
    return key_mask[:, None, None, :]


class SelfAttention(nn.Module):
    """Multi-head self-attention, full or causal, with an optional KV cache."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(
        self,
        x: torch.Tensor,  # [B, T, d]
        key_mask: torch.Tensor | None = None,  # [B, T_total] True = real key
        causal: bool = False,
        past_kv: KVPair | None = None,  # [B, H, T_past, Dh] each
    ) -> tuple[torch.Tensor, KVPair]:
        """Return the attended output ``[B, T, d]`` and the keys/values including ``x``'s."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (_split_heads(t, self.num_heads) for t in (q, k, v))  # [B, H, T, Dh]
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)  # [B, H, T_past + T, Dh]
            v = torch.cat([past_kv[1], v], dim=2)
        new_len, total_len = q.shape[2], k.shape[2]
        if new_len == 1 and key_mask is None and not self.training:
            # One query per row (incremental decoding): elementwise math beats SDPA's kernel,
            # whose per-(row, head) overhead dominates at this size (see docs/generator.md).
            return self.out(_merge_heads(_single_query_attention(q, k, v))), (k, v)
        attn_mask: torch.Tensor | None = None
        is_causal = False
        if causal and new_len > 1:
            if total_len == new_len and key_mask is None:
                is_causal = True  # SDPA's fast path; aligned because there is no past
            else:
                # Query i (absolute position total_len - new_len + i) sees keys up to itself.
                offset = total_len - new_len
                rows = torch.arange(new_len, device=x.device)[:, None] + offset
                cols = torch.arange(total_len, device=x.device)[None, :]
                attn_mask = (cols <= rows)[None, None]  # [1, 1, T, T_total]
        if key_mask is not None:
            pad = key_padding_to_attn_mask(key_mask)  # [B, 1, 1, T_total]
            attn_mask = pad if attn_mask is None else attn_mask & pad
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=attn_mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=is_causal,
        )  # [B, H, T, Dh]
        return self.out(_merge_heads(y)), (k, v)


class CrossAttention(nn.Module):
    """Multi-head attention from decoder positions to the encoder output (the memory)."""

    def __init__(self, d_model: int, num_heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model {d_model} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def project_memory(self, memory: torch.Tensor) -> KVPair:
        """Keys and values of the memory ``[U, S, d]`` -> two ``[U, H, S, Dh]`` tensors."""
        k, v = self.key_value(memory).chunk(2, dim=-1)
        return _split_heads(k, self.num_heads), _split_heads(v, self.num_heads)

    def forward(
        self,
        x: torch.Tensor,  # [B, T, d] with B = U * G (G rows per user, contiguous)
        memory_kv: KVPair,  # [U, H, S, Dh] each
        memory_mask: torch.Tensor,  # [U, S] True = real memory position
    ) -> torch.Tensor:
        """Attend ``x`` to the memory; returns ``[B, T, d]``."""
        batch, length, width = x.shape
        users = memory_kv[0].shape[0]
        if batch % users:
            raise ValueError(f"{batch} decoder rows cannot be grouped over {users} users")
        group = batch // users
        heads, head_dim = self.num_heads, width // self.num_heads
        # Fold each user's G rows into the query axis: [U, H, G*T, Dh].
        q = self.query(x).view(users, group, length, heads, head_dim)
        q = q.permute(0, 3, 1, 2, 4).reshape(users, heads, group * length, head_dim)
        y = F.scaled_dot_product_attention(
            q,
            memory_kv[0],
            memory_kv[1],
            attn_mask=key_padding_to_attn_mask(memory_mask),
            dropout_p=self.dropout if self.training else 0.0,
        )  # [U, H, G*T, Dh]
        y = y.view(users, heads, group, length, head_dim).permute(0, 2, 3, 1, 4)
        return self.out(y.reshape(batch, length, width))
