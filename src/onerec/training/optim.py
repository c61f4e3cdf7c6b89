"""AdamW with a principled weight-decay split, and a linear warm-up + cosine LR schedule."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.RMSNorm,
)


def param_groups(
    model: nn.Module, weight_decay: float, decay_embeddings: bool = False
) -> list[dict[str, object]]:
    """Split trainable parameters into a decayed group and a non-decayed group.

    Not decayed: biases, parameters of normalisation layers, any parameter with fewer than two
    dimensions (gains, scalars), and — unless ``decay_embeddings`` — ``nn.Embedding`` tables
    (decay on a sparse-gradient table shrinks rarely seen rows toward zero every step).
    Groups that would be empty are dropped.
    """
    no_decay_ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, _NORM_TYPES) or (
            isinstance(module, nn.Embedding) and not decay_embeddings
        ):
            no_decay_ids.update(id(p) for p in module.parameters(recurse=False))
    decay, no_decay = [], []
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if not param.requires_grad or id(param) in seen:
            continue
        seen.add(id(param))
        if id(param) in no_decay_ids or param.ndim < 2 or name.endswith("bias"):
            no_decay.append(param)
        else:
            decay.append(param)
    groups: list[dict[str, object]] = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


def build_optimizer(
    model: nn.Module,
    lr: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    decay_embeddings: bool = False,
) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups`, with the multi-tensor (``foreach``) update.

    torch only picks ``foreach`` by itself when every parameter is on CUDA; on CPU its
    per-parameter loop was ~5 % of a generator training step (bench/bench_generator.py).
    ``foreach`` gives the same weights as the loop; ``fused`` was ~6 % faster still but not
    bit-equal and not checked with FSDP2's sharded parameters, so it is not used.
    """
    groups = param_groups(model, weight_decay, decay_embeddings)
    return torch.optim.AdamW(groups, lr=lr, betas=betas, foreach=True)  # type: ignore[arg-type]


def warmup_cosine_factor(
    step: int, warmup_steps: int, total_steps: int, min_lr_ratio: float
) -> float:
    """LR multiplier for the optimizer step with 0-based index ``step``.

    * warm-up, ``step < warmup_steps``: ``(step + 1) / warmup_steps`` (linear, reaching 1 at
      the last warm-up step, never 0 so the first step moves the weights);
    * then cosine from 1 down to ``min_lr_ratio`` at ``step = total_steps - 1``:
      ``min + (1 - min) * 0.5 * (1 + cos(pi * p))`` with
      ``p = (step - warmup) / max(1, total - 1 - warmup)``;
    * steps past the horizon stay at ``min_lr_ratio``.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - 1 - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class WarmupCosineSchedule:
    """Sets each param group's LR to ``base_lr * warmup_cosine_factor(step)``.

    Stateless apart from the base LRs: the LR is a pure function of the step, so a resumed run
    needs only the step count (kept in ``trainer_state.json``), not a pickled scheduler.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        warmup_steps: int,
        total_steps: int,
        min_lr_ratio: float,
    ) -> None:
        self.optimizer = optimizer
        self.warmup_steps = warmup_steps
        self.total_steps = total_steps
        self.min_lr_ratio = min_lr_ratio
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]

    def factor(self, step: int) -> float:
        """The multiplier at ``step`` (see :func:`warmup_cosine_factor`)."""
        return warmup_cosine_factor(step, self.warmup_steps, self.total_steps, self.min_lr_ratio)

    def apply(self, step: int) -> float:
        """Set the LRs for optimizer step ``step``; returns the first group's LR."""
        factor = self.factor(step)
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor
        return self.base_lrs[0] * factor if self.base_lrs else 0.0


def trainable_parameters(model: nn.Module) -> Iterable[nn.Parameter]:
    """Parameters with ``requires_grad`` (for gradient clipping)."""
    return (p for p in model.parameters() if p.requires_grad)
