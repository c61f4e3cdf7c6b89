"""Inference-only attention for step-by-step decoding: a preallocated KV cache, folded beams.

The module path (:mod:`onerec.model.attention`) is the reference: its KV cache grows by
``torch.cat`` every step and is reordered layer by layer, and cross-attention runs SDPA. For
generation, where a step is tiny (tens of rows) and per-operator overhead dominates, this
module does the same math with fewer operators:

* :class:`KVCache` — the self-attention keys/values of *all* decoder layers in one
  preallocated, time-major tensor ``[T_max, L, 2, B, H, Dh]``: a step writes its new
  keys/values into place (no ``cat``), the beam reorder is one ``index_select`` of the filled
  prefix for all layers, and a single query attends over the time axis without permutes.
* :class:`DecodeMemory` — each layer's cross-attention keys (already transposed) and values,
  one copy per user, plus the memory padding as an additive bias; a user's ``G`` beams are
  folded into the query axis (as in :class:`onerec.model.attention.CrossAttention`).
* Attention as explicit ``matmul`` / softmax, which beats SDPA's kernel at these sizes on CPU.

Parity with the module path: ``tests/model/test_decode_step.py`` (and, through the beam
search, ``tests/generation/test_beam_parity.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from onerec.model.attention import (
    CrossAttention,
    KVPair,
    SelfAttention,
)


class KVCache:
    """Self-attention keys/values of every decoder layer, preallocated to the longest session.

    Time-major, ``[T_max, L, 2, B, H, Dh]``: the filled positions are a contiguous prefix, so
    the beam reorder copies only them, straight into a new buffer (``index_select(out=…)``).
    """

    def __init__(
        self,
        layers: int,
        batch: int,
        heads: int,
        max_length: int,
        head_dim: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        # Positions past ``length`` are never read, so the buffer needs no initialisation.
        self.buffer = torch.empty(
            max_length, layers, 2, batch, heads, head_dim, dtype=dtype, device=device
        )  # [T_max, L, 2, B, H, Dh]
        self.length = 0  # positions filled (the same for every layer between steps)

    @property
    def max_length(self) -> int:
        return int(self.buffer.shape[0])

    def reorder(self, parent: torch.Tensor) -> None:
        """Row ``b`` of the next step continues row ``parent[b]`` (all layers at once)."""
        shape = list(self.buffer.shape)
        shape[3] = parent.shape[0]
        reordered = self.buffer.new_empty(shape)
        torch.index_select(self.buffer[: self.length], 3, parent, out=reordered[: self.length])
        self.buffer = reordered

    def layer_kv(self, layer: int, end: int | None = None) -> KVPair:
        """Keys and values of ``layer`` up to ``end`` (default: the filled length):
        two ``[B, H, end, Dh]`` views."""
        stop = self.length if end is None else end
        keys, values = self.buffer[:stop, layer].permute(1, 2, 3, 0, 4).unbind(0)
        return keys, values


@dataclass
class DecodeMemory:
    """Per-user cross-attention keys/values of every decoder layer, ready for matmul."""

    keys_t: list[torch.Tensor]  # per layer [U*H, Dh, S] (keys transposed once, not per step)
    values: list[torch.Tensor]  # per layer [U*H, S, Dh]
    bias: torch.Tensor  # [U*H, 1, S]: 0 for a real memory position, -inf for padding
    users: int

    @classmethod
    def from_projected(cls, memory_kv: list[KVPair], memory_mask: torch.Tensor) -> DecodeMemory:
        """From :meth:`CrossAttention.project_memory` outputs and the ``[U, S]`` mask."""
        users, heads, length, head_dim = memory_kv[0][0].shape
        bias = torch.zeros(
            memory_mask.shape, dtype=memory_kv[0][0].dtype, device=memory_mask.device
        )
        bias = bias.masked_fill(~memory_mask, float("-inf"))  # [U, S]
        return cls(
            keys_t=[
                k.transpose(2, 3).reshape(users * heads, head_dim, length) for k, _ in memory_kv
            ],
            values=[v.reshape(users * heads, length, head_dim) for _, v in memory_kv],
            bias=bias.repeat_interleave(heads, dim=0).unsqueeze(1),
            users=users,
        )


def cached_self_attention(
    attn: SelfAttention,
    x: torch.Tensor,  # [B, T, d], the new positions
    cache: KVCache,
    layer: int,
) -> torch.Tensor:
    """Causal self-attention of the new positions over the cache plus themselves: ``[B, T, d]``.

    Writes the new keys/values at ``cache.length …`` of ``layer``; the caller advances
    ``cache.length`` once every layer has run.
    """
    batch, length, width = x.shape
    heads = attn.num_heads
    head_dim = width // heads
    start = cache.length
    end = start + length
    if end > cache.max_length:
        raise ValueError(f"decoding past the cache length {cache.max_length}")
    qkv = F.linear(x, attn.qkv.weight, attn.qkv.bias).view(batch, length, 3, heads, head_dim)
    qkv = qkv.permute(1, 2, 0, 3, 4)  # [T, 3, B, H, Dh]
    cache.buffer[start:end, layer] = qkv[:, 1:]  # the new keys/values, in place
    if length == 1:
        # One query per row, in the cache's time-major layout (no permutes): the math of
        # onerec.model.attention._single_query_attention, softmax over the time axis.
        keys, values = cache.buffer[:end, layer].unbind(1)  # [end, B, H, Dh] each
        scores = (qkv[0, 0] * keys).sum(dim=-1, keepdim=True) * head_dim**-0.5  # [end, B, H, 1]
        y = (torch.softmax(scores, dim=0) * values).sum(dim=0)  # [B, H, Dh]
        return F.linear(y.view(batch, 1, width), attn.out.weight, attn.out.bias)
    keys, values = cache.layer_kv(layer, end)  # [B, H, end, Dh] each
    q = qkv[:, 0].permute(1, 2, 0, 3)  # [B, H, T, Dh]
    scores = torch.matmul(q, keys.transpose(2, 3)) * head_dim**-0.5  # [B, H, T, end]
    # Query i sits at position start + i and sees keys up to itself.
    future = torch.ones(length, end, dtype=torch.bool, device=x.device).triu(start + 1)
    weights = torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1)
    y = torch.matmul(weights, values)  # [B, H, T, Dh]
    merged = y.transpose(1, 2).reshape(batch, length, width)
    return F.linear(merged, attn.out.weight, attn.out.bias)


def memory_attention(
    cross: CrossAttention,
    x: torch.Tensor,  # [B, T, d], B = U * G (G rows per user, contiguous)
    memory: DecodeMemory,
    layer: int,
) -> torch.Tensor:
    """Cross-attention of decoder positions to their user's memory: ``[B, T, d]``."""
    batch, length, width = x.shape
    users = memory.users
    if batch % users:
        raise ValueError(f"{batch} decoder rows cannot be grouped over {users} users")
    group = batch // users
    heads = cross.num_heads
    head_dim = width // heads
    q = F.linear(x, cross.query.weight, cross.query.bias).view(
        users, group, length, heads, head_dim
    )
    q = q.permute(0, 3, 1, 2, 4).reshape(users * heads, group * length, head_dim)  # [U*H, G*T, Dh]
    # bias + scale * q k^T in one kernel: [U*H, G*T, S]
    scores = torch.baddbmm(memory.bias, q, memory.keys_t[layer], alpha=head_dim**-0.5)
    y = torch.bmm(torch.softmax(scores, dim=-1), memory.values[layer])  # [U*H, G*T, Dh]
    y = y.view(users, heads, group, length, head_dim).permute(0, 2, 3, 1, 4)
    return F.linear(y.reshape(batch, length, width), cross.out.weight, cross.out.bias)
