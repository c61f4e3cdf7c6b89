"""Generator training loss: next-token cross-entropy over session codes + MoE auxiliary loss.

:func:`next_token_loss` is a pure function of logits and targets (tested against hand-computed
values); :func:`generator_loss` runs the model on a batch from
:class:`onerec.model.batching.GeneratorBatches` and returns the objective plus the metrics the
trainer logs (cross-entropy, aux loss, expert load spread).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from onerec.model.generator import OneRecGenerator
from onerec.model.targets import IGNORE_INDEX, session_decoder_sequences


def next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy over non-ignored targets.

    ``logits [B, T, V]`` (may hold ``-inf`` for codes a level does not have), ``targets [B, T]``
    with ``IGNORE_INDEX`` where no loss applies. Returns ``(mean loss, number of targets)``.
    """
    count = int((targets != IGNORE_INDEX).sum())
    if count == 0:
        return logits.sum() * 0.0, 0
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX
    )
    return loss, count


@dataclass
class GeneratorLoss:
    """Objective and logged figures of one batch."""

    loss: torch.Tensor
    metrics: dict[str, float]


def generator_loss(
    model: OneRecGenerator, batch: dict[str, torch.Tensor], aux_loss_weight: float = 0.01
) -> GeneratorLoss:
    """``CE + aux_loss_weight · aux`` on a collated batch (keys from ``GeneratorBatches``).

    The aux term is added only when the model balances with ``aux_loss`` (or ``both``).
    """
    decoder_input, targets, input_mask = session_decoder_sequences(
        batch["session_codes"], batch["session_mask"], model.code_offsets
    )
    out = model(
        batch["history_codes"],
        batch["history_mask"],
        decoder_input,
        batch.get("user_ids"),
        input_mask,
    )
    ce, count = next_token_loss(out.logits, targets)
    loss = ce
    if model.config.ffn == "moe" and model.config.load_balance in ("aux_loss", "both"):
        loss = loss + aux_loss_weight * out.aux_loss
    metrics = {"ce": float(ce.detach()), "target_tokens": float(count)}
    if out.expert_load is not None:
        load = out.expert_load  # [layers, N]
        experts = load.shape[1]
        metrics["moe_aux"] = float(out.aux_loss.detach())
        # max load relative to uniform: 1.0 is perfect balance, N means one expert takes all.
        metrics["expert_load_max"] = float(load.max(dim=1).values.mean() * experts)
        metrics["expert_load_min"] = float(load.min(dim=1).values.mean() * experts)
    return GeneratorLoss(loss=loss, metrics=metrics)
