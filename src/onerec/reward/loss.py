"""Reward-model training loss as a pure function of predictions, labels and a mask."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from onerec.reward.config import TargetSpec


def reward_loss(
    predictions: dict[str, torch.Tensor],
    labels: dict[str, torch.Tensor],
    mask: torch.Tensor,
    targets: list[TargetSpec],
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum over targets of the mean per-item loss over real (unmasked) items.

    Binary targets: cross-entropy with logits. Regression targets: squared error between the
    prediction and ``log1p(label)`` (labels already in model units). ``mask``: ``[B, m]`` bool.

    Returns ``(total, {name: per-target loss})``.
    """
    weights = mask.float()  # [B, m]
    count = weights.sum().clamp(min=1.0)
    per_target: dict[str, torch.Tensor] = {}
    total = torch.zeros((), device=mask.device)
    for spec in targets:
        raw, label = predictions[spec.name], labels[spec.name]
        if spec.kind == "binary":
            item_loss = F.binary_cross_entropy_with_logits(raw, label, reduction="none")
        else:
            item_loss = (raw - torch.log1p(label.clamp(min=0.0))) ** 2
        per_target[spec.name] = (item_loss * weights).sum() / count
        total = total + spec.loss_weight * per_target[spec.name]
    return total, per_target
