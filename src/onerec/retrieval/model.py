"""CRM two-tower model: user tower over (history, condition, user features), item tower.

Variants, all one code path (``TwoTowerConfig.condition``):

* ``"none"`` — the unconditioned two-tower baseline.
* ``"nn"`` (CRM-NN) — the condition embedding is concatenated with the pooled history (and user
  features) at the input of the user MLP.
* ``"transformer"`` (CRM-Transformer) — the condition embedding is an extra token placed before
  the history in a small transformer encoder; its output state is the user summary. With
  ``condition="none"`` and ``history_encoder="transformer"`` that slot holds a learned ``[CLS]``
  token instead — the matching baseline.

Conditions arrive as float *positions* in ``[0, num_condition_levels - 1]`` (see
:mod:`onerec.retrieval.condition`): integer positions select a bucket embedding, fractional ones
interpolate linearly between neighbouring anchor embeddings (continuous encoding).

Score = ``user_vec · item_vec / temperature`` (vectors L2-normalised when
``normalize_vectors``), so the ANN index searches by inner product.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn

from onerec.config import StrictModel


class TwoTowerConfig(StrictModel):
    """Configuration of :class:`CRMModel`. Sizes left at 0 are filled from the data."""

    num_items: int = Field(default=0, ge=0, description="catalogue size; item num_items is padding")
    num_users: int = Field(default=0, ge=0, description="rows of the user-feature tables (0: none)")
    embed_dim: int = Field(default=64, ge=4)
    hidden_dim: int = Field(default=128, ge=4)
    max_history: int = Field(default=20, ge=1)
    history_encoder: Literal["mean", "attention", "transformer"] = "mean"
    condition: Literal["none", "nn", "transformer"] = "nn"
    num_condition_levels: int = Field(default=10, ge=1, description="buckets or continuous anchors")
    transformer_layers: int = Field(default=1, ge=1)
    transformer_heads: int = Field(default=2, ge=1)
    dropout: float = Field(default=0.1, ge=0.0, lt=1.0)
    normalize_vectors: bool = True
    temperature: float = Field(default=0.05, gt=0.0)
    share_item_embeddings: bool = True
    user_residual: bool = Field(
        default=False, description="add the history summary to the user MLP's output"
    )
    semantic_codebook_sizes: list[int] = Field(default_factory=list)
    num_item_dense_features: int = Field(default=0, ge=0)
    num_user_dense_features: int = Field(default=0, ge=0)
    user_categorical_cardinalities: list[int] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _transformer_condition_needs_transformer(cls, data: Any) -> Any:
        # CRM-Transformer *is* a transformer over the history: fill the encoder in for the user,
        # and refuse a contradictory explicit choice rather than silently ignoring it.
        if isinstance(data, dict) and data.get("condition") == "transformer":
            chosen = data.get("history_encoder", "transformer")
            if chosen != "transformer":
                raise ValueError(
                    "condition='transformer' (CRM-Transformer) needs history_encoder='transformer'"
                )
            data = {**data, "history_encoder": "transformer"}
        return data


class ConditionEmbedding(nn.Module):
    """Anchor embeddings, linearly interpolated at a float position (exact at integers)."""

    def __init__(self, num_levels: int, dim: int) -> None:
        super().__init__()
        self.anchors = nn.Embedding(num_levels, dim)
        nn.init.normal_(self.anchors.weight, std=0.1)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        top = self.anchors.num_embeddings - 1
        positions = positions.float().clamp(0, top)  # [B]
        lower = positions.floor().long().clamp(max=top)
        upper = (lower + 1).clamp(max=top)
        weight = (positions - lower.float()).unsqueeze(-1)  # [B, 1]
        return (1 - weight) * self.anchors(lower) + weight * self.anchors(upper)  # [B, dim]


class ItemEncoder(nn.Module):
    """Raw item representation: id embedding + semantic-ID code embeddings + dense features.

    Codes and dense features are buffers indexed by ``item_idx`` so the towers take only
    indices; the padding row (index ``num_items``) has a zero id embedding, and history encoders
    mask padding positions, so what the encoder returns there never reaches a score.
    """

    item_codes: torch.Tensor  # [num_items + 1, levels] buffer
    item_dense: torch.Tensor  # [num_items + 1, f] buffer

    def __init__(self, config: TwoTowerConfig) -> None:
        super().__init__()
        n, d = config.num_items, config.embed_dim
        self.padding_idx = n
        self.id_embedding = nn.Embedding(n + 1, d, padding_idx=n)
        nn.init.normal_(self.id_embedding.weight, std=0.05)
        with torch.no_grad():
            self.id_embedding.weight[n].zero_()
        self.code_embeddings = nn.ModuleList(
            nn.Embedding(size, d) for size in config.semantic_codebook_sizes
        )
        levels = len(config.semantic_codebook_sizes)
        self.register_buffer("item_codes", torch.zeros(n + 1, levels, dtype=torch.long))
        f = config.num_item_dense_features
        self.register_buffer("item_dense", torch.zeros(n + 1, f))
        self.dense_proj = nn.Linear(f, d) if f else None

    def set_side_data(
        self, codes: torch.Tensor | None = None, dense: torch.Tensor | None = None
    ) -> None:
        """Install ``codes [num_items, levels]`` and/or ``dense [num_items, f]`` tables."""
        n = self.padding_idx
        if codes is not None:
            self.item_codes[:n] = codes.long()
        if dense is not None:
            self.item_dense[:n] = dense.float()

    def forward(self, item_idx: torch.Tensor) -> torch.Tensor:
        emb = self.id_embedding(item_idx)  # [..., d]
        if len(self.code_embeddings):
            codes = self.item_codes[item_idx]  # [..., levels]
            for level, table in enumerate(self.code_embeddings):
                emb = emb + table(codes[..., level])
        if self.dense_proj is not None:
            emb = emb + self.dense_proj(self.item_dense[item_idx])
        # Padding positions are not zeroed here: every history encoder masks them out itself.
        return emb


def _mlp(in_dim: int, hidden: int, out_dim: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, out_dim)
    )


class HistoryEncoder(nn.Module):
    """Summarises a padded history ``[B, L]`` (and, for CRM-Transformer, the condition token)."""

    def __init__(self, config: TwoTowerConfig) -> None:
        super().__init__()
        d = config.embed_dim
        self.kind = config.history_encoder
        if self.kind == "attention":
            self.attn_proj = nn.Linear(d, d)
            self.attn_query = nn.Parameter(torch.randn(d) * 0.1)
        elif self.kind == "transformer":
            self.cls_token = nn.Parameter(torch.randn(d) * 0.1)
            self.positions = nn.Embedding(config.max_history + 1, d)  # 0 = the lead token
            # Small like the item embeddings: N(0, 1) positions would drown item identity.
            nn.init.normal_(self.positions.weight, std=0.02)
            layer = nn.TransformerEncoderLayer(
                d,
                config.transformer_heads,
                dim_feedforward=2 * d,
                dropout=config.dropout,
                batch_first=True,
                norm_first=True,
            )
            self.encoder = nn.TransformerEncoder(
                layer, config.transformer_layers, enable_nested_tensor=False
            )
            self.out_norm = nn.LayerNorm(d)

    def forward(
        self, item_embs: torch.Tensor, valid: torch.Tensor, lead_token: torch.Tensor | None
    ) -> torch.Tensor:
        """``item_embs [B, L, d]``, ``valid [B, L]`` → ``[B, d]``; ``lead_token [B, d]`` or None."""
        if self.kind == "mean":
            weights = valid.float()
            count = weights.sum(dim=1, keepdim=True).clamp(min=1.0)  # [B, 1]
            return (item_embs * weights.unsqueeze(-1)).sum(dim=1) / count
        if self.kind == "attention":
            scores = torch.tanh(self.attn_proj(item_embs)) @ self.attn_query  # [B, L]
            scores = scores.masked_fill(~valid, float("-inf"))
            weights = torch.softmax(scores, dim=1).nan_to_num(0.0)  # empty history → zeros
            return (weights.unsqueeze(-1) * item_embs).sum(dim=1)
        batch, length, dim = item_embs.shape
        if lead_token is None:
            lead_token = self.cls_token.expand(batch, dim)
        tokens = torch.cat([lead_token.unsqueeze(1), item_embs], dim=1)  # [B, 1 + L, d]
        pos = torch.arange(length + 1, device=tokens.device)
        tokens = tokens + self.positions(pos).unsqueeze(0)
        keep = torch.cat([valid.new_ones(batch, 1), valid], dim=1)  # lead token always kept
        hidden = self.out_norm(self.encoder(tokens, src_key_padding_mask=~keep))  # [B, 1 + L, d]
        # Lead-token state (carries the condition) plus the mean of the history states (each
        # keeps its item embedding on the residual path, so interests need not be relearned
        # through freshly initialised attention projections).
        weights = valid.float().unsqueeze(-1)  # [B, L, 1]
        history_mean = (hidden[:, 1:] * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
        return hidden[:, 0] + history_mean


class CRMModel(nn.Module):
    """Two-tower retrieval model with an optional condition on the user side."""

    user_cat_table: torch.Tensor  # [num_users + 1, n_cat] buffer (1-based values, 0 unknown)
    user_dense_table: torch.Tensor  # [num_users + 1, n_dense] buffer

    def __init__(self, config: TwoTowerConfig) -> None:
        super().__init__()
        if config.num_items < 1:
            raise ValueError("TwoTowerConfig.num_items must be set (it is filled from the data)")
        self.config = config
        d = config.embed_dim
        self.item_encoder = ItemEncoder(config)
        self.history_item_encoder = (
            self.item_encoder if config.share_item_embeddings else ItemEncoder(config)
        )
        self.history_encoder = HistoryEncoder(config)
        self.condition_embedding = (
            ConditionEmbedding(config.num_condition_levels, d)
            if config.condition != "none"
            else None
        )
        users = config.num_users + 1  # last row: unknown user
        self.user_categorical = nn.ModuleList(
            nn.Embedding(size + 1, d) for size in config.user_categorical_cardinalities
        )
        n_cat = len(config.user_categorical_cardinalities)
        self.register_buffer("user_cat_table", torch.zeros(users, n_cat, dtype=torch.long))
        n_dense = config.num_user_dense_features
        self.register_buffer("user_dense_table", torch.zeros(users, n_dense))
        self.user_dense_proj = nn.Linear(n_dense, d) if n_dense else None

        user_in = d * (1 + int(config.condition == "nn"))
        user_in += d * int(bool(n_cat or n_dense))
        self.user_mlp = _mlp(user_in, config.hidden_dim, d, config.dropout)
        self.item_mlp = _mlp(d, config.hidden_dim, d, config.dropout)

    # ----------------------------------------------------------------------------- towers
    def user_vectors(
        self,
        history: torch.Tensor,
        condition: torch.Tensor | None = None,
        user_idx: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``history [B, L]`` (padded with ``num_items``), ``condition [B]`` positions → ``[B, d]``."""
        cfg = self.config
        if self.condition_embedding is not None and condition is None:
            raise ValueError(f"this model is conditioned (condition={cfg.condition!r}); pass one")
        cond_emb = (
            self.condition_embedding(condition)
            if self.condition_embedding is not None and condition is not None
            else None
        )  # [B, d]
        valid = history != cfg.num_items  # [B, L]
        item_embs = self.history_item_encoder(history)  # [B, L, d]
        lead = cond_emb if cfg.condition == "transformer" else None
        parts = [self.history_encoder(item_embs, valid, lead)]  # [B, d]
        if cfg.condition == "nn":
            assert cond_emb is not None
            parts.append(cond_emb)
        user_side = self._user_features(user_idx, history.shape[0], history.device)
        if user_side is not None:
            parts.append(user_side)
        vec = self.user_mlp(torch.cat(parts, dim=-1))  # [B, d]
        if cfg.user_residual:  # keep the pooled history's direct alignment with item vectors
            vec = vec + parts[0]
        return F.normalize(vec, dim=-1) if cfg.normalize_vectors else vec

    def item_vectors(self, item_idx: torch.Tensor) -> torch.Tensor:
        """``item_idx [...]`` → ``[..., d]``."""
        base = self.item_encoder(item_idx)
        vec = base + self.item_mlp(base)  # residual keeps the id embedding directly usable
        return F.normalize(vec, dim=-1) if self.config.normalize_vectors else vec

    def all_item_vectors(self, batch_size: int = 8192) -> torch.Tensor:
        """``[num_items, d]`` vectors of the whole catalogue (no padding row)."""
        device = self.item_encoder.id_embedding.weight.device
        chunks = [
            self.item_vectors(
                torch.arange(s, min(s + batch_size, self.config.num_items), device=device)
            )
            for s in range(0, self.config.num_items, batch_size)
        ]
        return torch.cat(chunks, dim=0)

    def score(self, user_vecs: torch.Tensor, item_vecs: torch.Tensor) -> torch.Tensor:
        """Scaled dot products ``[B, d] × [M, d] → [B, M]``."""
        return user_vecs @ item_vecs.T / self.config.temperature

    # ----------------------------------------------------------------------------- features
    def set_user_features(
        self, categorical: torch.Tensor | None = None, dense: torch.Tensor | None = None
    ) -> None:
        """Install per-user tables ``[num_users, ...]`` (categorical values are 1-based, 0 = unknown)."""
        n = self.config.num_users
        if categorical is not None:
            self.user_cat_table[:n] = categorical.long()
        if dense is not None:
            self.user_dense_table[:n] = dense.float()

    def _user_features(
        self, user_idx: torch.Tensor | None, batch: int, device: torch.device
    ) -> torch.Tensor | None:
        if not len(self.user_categorical) and self.user_dense_proj is None:
            return None
        if user_idx is None:  # unknown user: the all-zero last row
            user_idx = torch.full((batch,), self.config.num_users, device=device, dtype=torch.long)
        user_idx = user_idx.clamp(0, self.config.num_users)
        out = torch.zeros(batch, self.config.embed_dim, device=device)
        cats = self.user_cat_table[user_idx]  # [B, n_cat]
        for col, table in enumerate(self.user_categorical):
            out = out + table(cats[:, col])
        if self.user_dense_proj is not None:
            out = out + self.user_dense_proj(self.user_dense_table[user_idx])
        return out
