"""``TrainConfig``: every knob of the one training loop (the ``[train]`` section of a config)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from onerec.config import StrictModel


class TrainConfig(StrictModel):
    """Settings for :class:`onerec.training.Trainer`.

    Budget: ``epochs`` passes over the data, cut short by ``max_steps`` optimizer steps when
    given. The LR schedule (linear warm-up, then cosine to ``lr * min_lr_ratio``) spans
    ``schedule_steps`` when given, else ``max_steps`` when given, else
    ``epochs × batches-per-epoch / grad_accum_steps``.

    Evaluation runs every ``eval_every_steps`` optimizer steps and/or at the end of every
    ``eval_every_epochs``-th epoch (only on that schedule: no extra evaluation at the end, so
    a run stopped by ``max_steps`` and resumed behaves exactly like one never stopped).
    Early stopping: after ``early_stopping_patience`` evaluations without improvement of
    ``monitor`` (by more than ``min_delta``) training stops; the best weights are restored.
    """

    epochs: int = Field(default=10, ge=1, description="passes over the training data")
    max_steps: int | None = Field(
        default=None, ge=1, description="stop after this many optimizer steps"
    )
    schedule_steps: int | None = Field(
        default=None, ge=1, description="LR schedule horizon (default: max_steps or the whole run)"
    )
    batch_size: int = Field(
        default=256, ge=1, description="batch size (read by the recipe's loader)"
    )
    grad_accum_steps: int = Field(default=1, ge=1, description="micro-batches per optimizer step")
    lr: float = Field(default=1e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW decoupled weight decay")
    decay_embeddings: bool = Field(
        default=False, description="apply weight decay to embedding tables"
    )
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(default=0, ge=0, description="linear warm-up steps")
    min_lr_ratio: float = Field(default=0.1, ge=0, le=1, description="final LR as a fraction of lr")
    grad_clip: float | None = Field(
        default=1.0, gt=0, description="max global grad norm (None: off)"
    )
    eval_every_steps: int | None = Field(default=None, ge=1, description="evaluate every N steps")
    eval_every_epochs: int | None = Field(default=1, ge=1, description="evaluate every N epochs")
    early_stopping_patience: int | None = Field(
        default=None,
        ge=1,
        description="evaluations without improvement before stopping (None: off)",
    )
    min_delta: float = Field(default=0.0, ge=0, description="smallest change that counts as better")
    monitor: str = Field(
        default="ndcg@10", description="key of evaluate_fn's result to early-stop on"
    )
    monitor_mode: Literal["max", "min"] = "max"
    seed: int = 42
    device: str = Field(default="auto", description="auto | cpu | cuda | cuda:N")
    distributed: Literal["auto", "ddp", "fsdp2", "none"] = Field(
        default="auto",
        description="under torchrun: ddp (auto), fsdp2 (sharded) or none; one process: none",
    )
    precision: Literal["auto", "fp32", "bf16"] = Field(
        default="auto", description="auto: bf16 autocast on CUDA, fp32 on CPU"
    )
    out_dir: str | None = Field(
        default=None, description="checkpoints and metrics.jsonl go here (None: nothing is written)"
    )
    log_every: int = Field(default=50, ge=1, description="write a train-metrics line every N steps")
    checkpoint_every_steps: int | None = Field(
        default=None,
        ge=1,
        description="also save checkpoints/last every N steps (always at epoch end)",
    )
    resume: bool = Field(
        default=False, description="continue from out_dir/checkpoints/last if present"
    )
    progress: bool = Field(default=True, description="rich progress bar (only shown on a terminal)")
