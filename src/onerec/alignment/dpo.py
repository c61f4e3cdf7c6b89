"""Direct Preference Optimisation loss (Rafailov et al., 2023) as a pure function.

For a preference pair (chosen ``y_w``, rejected ``y_l``) and a frozen reference model,

    logits = (log π(y_w) − log π(y_l)) − (log π_ref(y_w) − log π_ref(y_l))
    loss   = −(1 − ε) · log σ(β · logits) − ε · log σ(−β · logits)

where ε is the label-smoothing rate (conservative DPO: the label is flipped with probability ε).
The implicit rewards ``β · (log π(y) − log π_ref(y))`` are returned detached for logging.
Everything works on log-probabilities of whole sequences (sums of token log-probabilities).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    beta: float,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO loss for a batch of preference pairs.

    Args:
        policy_chosen_logps: ``[B]`` sequence log-probabilities of the chosen sessions under the policy.
        policy_rejected_logps: ``[B]`` the same for the rejected sessions.
        ref_chosen_logps: ``[B]`` chosen log-probabilities under the frozen reference model.
        ref_rejected_logps: ``[B]`` rejected log-probabilities under the reference model.
        beta: inverse temperature of the implicit reward (larger → stay closer to the reference).
        label_smoothing: ε in [0, 0.5); 0 is plain DPO.
        reduction: ``"mean"`` (scalar loss) or ``"none"`` (``[B]`` per-pair losses).

    Returns:
        ``(loss, chosen_rewards, rejected_rewards)``; the rewards are ``[B]`` and detached.
    """
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    policy_log_ratio = policy_chosen_logps - policy_rejected_logps  # [B]
    ref_log_ratio = ref_chosen_logps - ref_rejected_logps  # [B]
    logits = policy_log_ratio - ref_log_ratio  # [B]
    # logsigmoid is the numerically stable log σ(x) = −softplus(−x).
    losses = -(1.0 - label_smoothing) * F.logsigmoid(
        beta * logits
    ) - label_smoothing * F.logsigmoid(-beta * logits)  # [B]
    chosen_rewards = beta * (policy_chosen_logps - ref_chosen_logps).detach()  # [B]
    rejected_rewards = beta * (policy_rejected_logps - ref_rejected_logps).detach()  # [B]
    loss = losses.mean() if reduction == "mean" else losses
    return loss, chosen_rewards, rejected_rewards


def frozen_reference(policy: nn.Module) -> nn.Module:
    """A frozen deep copy of ``policy`` to serve as the DPO reference model.

    The copy is in eval mode (no dropout) and none of its parameters require gradients, so
    optimising the policy can never move it; it shares no storage with the policy.
    """
    reference = copy.deepcopy(policy)
    reference.eval()
    reference.requires_grad_(False)
    return reference


def disable_dropout(model: nn.Module) -> nn.Module:
    """Set every dropout rate in ``model`` to 0 (in place) and return it.

    DPO compares policy and reference log-probabilities of the same sequences; with dropout
    active in the policy only, the two differ by noise even before any update (TRL disables
    dropout for the same reason). Covers ``nn.Dropout`` layers and modules that keep their
    rate in a float ``dropout`` attribute (attention with ``dropout_p``).
    """
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = 0.0
        elif isinstance(getattr(module, "dropout", None), float):
            setattr(module, "dropout", 0.0)  # noqa: B010 (attribute found by name)
    return model
