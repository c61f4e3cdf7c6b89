"""The reward model R(user, session) → one prediction per target (OneRec §"Reward model").

    user  u = LayerNorm(E_user[user_idx] + mean_{h ∈ history} item(h))       # [B, d]
    item  v_j = E_item[i_j] + Σ_f E_f[feature_f(i_j)] + E_pos[j]             # [B, m, d]
    x_j   = W [v_j ; u ⊙ v_j ; u]            (target-aware: item ⊙ user)     # [B, m, d]
    h     = SelfAttention(x) over the session's items (padding masked)       # [B, m, d]
    ŷ_t,j = Tower_t(h_j)                     one MLP tower per target        # [B, m]

Towers act on every item, so training uses the per-impression labels logged data has; the
session value of a target is the sum (watch time, seconds) or mean (rates) of its per-item
predictions — :meth:`RewardModel.forward`. The paper pools before the towers; pooling after
them gives the same session-level output while letting per-item labels supervise each item.
"""

from __future__ import annotations

import torch
from torch import nn

from onerec.reward.config import RewardConfig
from onerec.reward.features import MAX_TAG_SLOTS

RewardBatch = dict[str, torch.Tensor]


def feature_slot_counts(config: RewardConfig) -> list[tuple[str, int]]:
    """``(feature, slots)`` in table order for the features this model embeds."""
    return [
        (name, MAX_TAG_SLOTS if name == "tags" else 1)
        for name in config.item_features
        if name in config.feature_cardinalities
    ]


class RewardModel(nn.Module):
    """Multi-target session reward model; see the module docstring for the computation.

    Inputs (a batch dict): ``user_idx [B]``, ``history [B, H]`` (padding ``num_items``),
    ``items [B, m]`` (padding ``num_items``), optional ``item_mask [B, m]`` (True = real item;
    derived from padding when absent).
    """

    def __init__(self, config: RewardConfig, item_feature_ids: torch.Tensor | None = None) -> None:
        super().__init__()
        if config.num_items <= 0 or config.num_users <= 0:
            raise ValueError("RewardConfig.num_users and num_items must be set (from the data set)")
        self.config = config
        d = config.d_model
        self.pad_item = config.num_items
        self.item_embedding = nn.Embedding(config.num_items + 1, d, padding_idx=config.num_items)
        self.user_embedding = nn.Embedding(config.num_users + 1, d) if config.use_user_id else None
        self.position_embedding = nn.Embedding(config.max_session_items, d)
        slots = feature_slot_counts(config)
        self.feature_names = [name for name, _ in slots]
        self.feature_embeddings = nn.ModuleDict(
            {
                name: nn.Embedding(config.feature_cardinalities[name], d, padding_idx=0)
                for name, _ in slots
            }
        )
        self.feature_slices: list[tuple[int, int]] = []
        start = 0
        for _, count in slots:
            self.feature_slices.append((start, start + count))
            start += count
        ids = (
            item_feature_ids
            if item_feature_ids is not None
            else torch.zeros(config.num_items + 1, start, dtype=torch.long)
        )
        if ids.shape != (config.num_items + 1, start):
            raise ValueError(
                f"item_feature_ids must be [{config.num_items + 1}, {start}], got {tuple(ids.shape)}"
            )
        self.register_buffer("item_feature_ids", ids.long().clone())
        self.user_norm = nn.LayerNorm(d)
        self.fuse = nn.Linear(3 * d, d)
        layer = nn.TransformerEncoderLayer(
            d,
            config.num_heads,
            2 * d,
            config.dropout,
            batch_first=True,
            norm_first=True,
            activation="gelu",
        )
        self.encoder = (
            nn.TransformerEncoder(layer, config.num_layers, enable_nested_tensor=False)
            if config.num_layers
            else None
        )
        self.final_norm = nn.LayerNorm(d)
        self.towers = nn.ModuleDict(
            {
                spec.name: nn.Sequential(
                    nn.Linear(d, config.tower_hidden), nn.GELU(), nn.Linear(config.tower_hidden, 1)
                )
                for spec in config.targets
            }
        )
        self.target_kinds = {spec.name: spec.kind for spec in config.targets}

    item_feature_ids: torch.Tensor

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """Id + side-feature embedding of items: ``[..., n]`` → ``[..., n, d]``."""
        vectors = self.item_embedding(items)
        if self.feature_names:
            ids = self.item_feature_ids[items]  # [..., n, slots]
            for name, (lo, hi) in zip(self.feature_names, self.feature_slices, strict=True):
                vectors = vectors + self.feature_embeddings[name](ids[..., lo:hi]).sum(dim=-2)
        return vectors

    def user_vector(self, user_idx: torch.Tensor, history: torch.Tensor | None) -> torch.Tensor:
        """``[B]`` (+ ``[B, H]``) → ``[B, d]``."""
        parts = torch.zeros(user_idx.shape[0], self.config.d_model, device=user_idx.device)
        if self.user_embedding is not None:
            # Users unseen at training time map to the shared last row.
            known = torch.where(
                user_idx < self.config.num_users,
                user_idx,
                torch.full_like(user_idx, self.config.num_users),
            )
            parts = parts + self.user_embedding(known)
        if self.config.use_history and history is not None:
            valid = (history != self.pad_item).unsqueeze(-1).float()  # [B, H, 1]
            pooled = (self.item_vectors(history) * valid).sum(dim=1) / valid.sum(dim=1).clamp(
                min=1.0
            )
            parts = parts + pooled
        return self.user_norm(parts)

    def item_predictions(self, batch: RewardBatch) -> dict[str, torch.Tensor]:
        """Raw per-item outputs ``[B, m]``: logits (binary) or log1p-value (regression)."""
        items = batch["items"]  # [B, m]
        mask = batch.get("item_mask")
        if mask is None:
            mask = items != self.pad_item
        user = self.user_vector(batch["user_idx"], batch.get("history"))  # [B, d]
        positions = torch.arange(items.shape[1], device=items.device)
        item = self.item_vectors(items) + self.position_embedding(positions)  # [B, m, d]
        user_b = user.unsqueeze(1).expand_as(item)  # [B, m, d]
        hidden = self.fuse(torch.cat([item, user_b * item, user_b], dim=-1))  # [B, m, d]
        if self.encoder is not None:
            hidden = self.encoder(hidden, src_key_padding_mask=~mask)
        hidden = self.final_norm(hidden)
        return {name: tower(hidden).squeeze(-1) for name, tower in self.towers.items()}

    def session_values(
        self, batch: RewardBatch, predictions: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Session-level values ``[B]`` from per-item outputs (sum of watch time, mean of rates)."""
        mask = batch.get("item_mask")
        if mask is None:
            mask = batch["items"] != self.pad_item
        weights = mask.float()
        out = {}
        for name, raw in predictions.items():
            if self.target_kinds[name] == "regression":
                out[name] = (torch.expm1(raw.clamp(min=0.0)) * weights).sum(dim=1)
            else:
                out[name] = (torch.sigmoid(raw) * weights).sum(dim=1) / weights.sum(dim=1).clamp(
                    min=1.0
                )
        return out

    def forward(self, batch: RewardBatch) -> dict[str, torch.Tensor]:
        """Predicted session rewards per target: ``{name: [B]}``."""
        return self.session_values(batch, self.item_predictions(batch))
