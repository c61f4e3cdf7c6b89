"""Data-parallel training inside the one :class:`~onerec.training.Trainer` (``torchrun``).

:class:`ParallelTraining` is the trainer's only contact with torch.distributed. Strategies
(``train.distributed``):

* ``none`` — a single process (also what every strategy becomes when ``WORLD_SIZE`` is 1);
* ``ddp`` — ``DistributedDataParallel``: full replicas, gradients all-reduced (the default,
  ``auto``, under torchrun);
* ``fsdp2`` — ``fully_shard``: parameters, gradients and optimizer state sharded across ranks
  (see ``onerec.training.fsdp``).

**Same global batch, same gradient.** Every rank iterates the same global batches (data order
depends only on ``(seed, epoch)``) and keeps its slice of rows
(:func:`onerec.training.sharding.shard_batch`). A loss is a mean over some units (rows, tokens,
pairs); with ``w_r`` units on rank ``r`` (``LossOutput.weight``, default: the rank's row count)
the trainer back-propagates ``loss_r · w_r · world / Σw``. DDP/FSDP2 average gradients over
ranks, so the update is the gradient of ``Σ_r w_r loss_r / Σw`` — the single-process loss of
the whole batch. The logged loss is that same weighted mean (gathered from all ranks).
What cannot match bit for bit: losses that couple rows of a batch (in-batch negatives,
batch norm) and random draws inside the loss (dropout masks differ per rank).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from onerec.errors import ConfigError
from onerec.io import read_json
from onerec.training.checkpoint import STATE_FILE, load_checkpoint, save_checkpoint
from onerec.training.distributed import (
    all_gather_objects,
    barrier,
    broadcast_object,
    device_for_rank,
    init_distributed,
    is_distributed,
    is_main_process,
    launched_by_torchrun,
    rank,
    world_size,
)
from onerec.training.sharding import (
    BatchShard,
    batch_fingerprint,
    batch_rows,
    set_active_shard,
    shard_batch,
    shard_bounds,
)

if TYPE_CHECKING:
    from onerec.training.fsdp import ShardedModel
    from onerec.training.loop import LossOutput

# onerec.training.fsdp is imported only when FSDP2 is used: importing FSDP and
# torch.distributed.checkpoint costs seconds at start-up.

STRATEGIES = ("auto", "ddp", "fsdp2", "none")


class CallWithModel(nn.Module):
    """``forward(fn, *args) = fn(model, *args)``: runs a loss or evaluation function *inside*
    a forward call, so DDP's and FSDP2's hooks see every use of the parameters, whatever model
    methods the function calls (``encode``, ``score_histories``, …)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model

    def forward(self, fn: Callable[..., Any], *args: Any) -> Any:
        return fn(self.inner, *args)


class ParallelTraining:
    """How one :meth:`Trainer.fit` spreads its work over the processes of a torchrun job.

    Built by :meth:`setup` at the start of ``fit``; single-process runs get ``strategy="none"``
    whose methods are the plain single-process operations (no collectives at all).
    """

    def __init__(self, strategy: str, device: torch.device) -> None:
        if strategy not in ("ddp", "fsdp2", "none"):
            raise ConfigError(f"train.distributed={strategy!r}; use one of {STRATEGIES}")
        self.strategy = strategy
        self.device = device
        self.world = world_size() if strategy != "none" else 1
        self.rank = rank() if strategy != "none" else 0
        self._wrapped: nn.Module | None = None
        self._sharded: ShardedModel | None = None
        self._rows = 0  # real rows of this rank's current shard
        self._fingerprint: tuple[Any, ...] = ()

    # ------------------------------------------------------------ set-up
    @classmethod
    def setup(cls, choice: str, device: torch.device) -> ParallelTraining:
        """Start the process group when launched by torchrun and pick the strategy.

        ``auto`` → ``ddp`` with more than one process, else ``none``; with one process every
        choice is ``none``. Under torchrun a CUDA device becomes ``cuda:LOCAL_RANK``.
        """
        if choice not in STRATEGIES:
            raise ConfigError(f"train.distributed={choice!r}; use one of {STRATEGIES}")
        if launched_by_torchrun():
            init_distributed("auto")
        device = device_for_rank(device)  # cuda:LOCAL_RANK under torchrun
        if not is_distributed() or world_size() == 1 or choice == "none":
            return cls("none", device)
        return cls("ddp" if choice == "auto" else choice, device)

    def wrap(self, model: nn.Module) -> None:
        """Wrap the bare (already on-device) model; call before building the optimizer (FSDP2
        replaces the parameters with sharded ones)."""
        if self.strategy == "ddp":
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            # find_unused_parameters: sparse MoE experts and optional heads may get no gradient
            # on some ranks in some steps; without it DDP would wait for them forever.
            self._wrapped = DistributedDataParallel(
                CallWithModel(model), device_ids=device_ids, find_unused_parameters=True
            )
        elif self.strategy == "fsdp2":
            from onerec.training.fsdp import ShardedModel

            _broadcast_from_rank0(model)  # DDP does this itself; fully_shard does not
            self._sharded = ShardedModel(model, self.device, self.world)
            self._wrapped = self._sharded.wrapper

    def finish(self, model: nn.Module) -> None:
        """After training: FSDP2 turns ``model`` back into a plain module with full weights
        (on every rank); the DDP wrapper is dropped. ``model`` is then usable as usual."""
        if self._sharded is not None:
            from onerec.training.fsdp import unshard_model

            unshard_model(self._sharded)
        self._wrapped = self._sharded = None
        set_active_shard(None)

    # ------------------------------------------------------------ one micro-batch
    def shard(self, batch: Any) -> Any:
        """This rank's slice of a global batch (the batch itself in a single process)."""
        if self.strategy == "none":
            return batch
        self._fingerprint = batch_fingerprint(batch)
        local, self._rows = shard_batch(batch, self.rank, self.world)
        # where the rows sit, for losses that gather the whole batch (gather_batch_rows)
        bounds = shard_bounds(batch_rows(batch), self.world)
        sizes = tuple(bounds[r + 1] - bounds[r] for r in range(self.world))
        set_active_shard(BatchShard(bounds[self.rank], self._rows, sizes))
        return local

    def forward(self, loss_fn: Callable[[nn.Module, Any], LossOutput], model: nn.Module,
                batch: Any) -> LossOutput:  # fmt: skip
        """``loss_fn(model, batch)``, through the DDP/FSDP2 wrapper when there is one."""
        if self._wrapped is None:
            return loss_fn(model, batch)
        output: LossOutput = self._wrapped(loss_fn, batch)
        return output

    def combine(self, output: LossOutput) -> tuple[float, dict[str, float]]:
        """``(scale, logged)``: back-propagate ``output.loss * scale``; log ``logged``.

        Single process: ``(1.0, {"loss": …, **metrics})``. Data parallel: one all-gather of
        every rank's (weight, loss, metrics) gives the single-process loss of the global batch
        and the scale ``w_r · world / Σw`` (see the module docstring); metrics are
        weight-averaged over ranks. Also checks that all ranks hold the same global batch.
        """
        loss_value = float(output.loss.detach())
        if self.strategy == "none":
            return 1.0, {"loss": loss_value, **output.metrics}
        set_active_shard(None)  # the forward is done; only a loss may gather the batch
        weight = 0.0 if self._rows == 0 else _weight(output, self._rows)
        parts = all_gather_objects((weight, loss_value, dict(output.metrics), self._fingerprint))
        if any(part[3] != parts[0][3] for part in parts):
            raise ConfigError(
                "the ranks are iterating different training batches; train_data must yield the "
                "same global batches on every rank, which the trainer splits itself (no "
                "DistributedSampler; shuffle with a generator seeded from "
                "onerec.training.epoch_seed(seed, epoch), not from the rank)"
            )
        total = sum(part[0] for part in parts)
        scale = weight * self.world / total if total > 0 else 0.0
        logged = {"loss": _weighted_mean([(p[0], p[1]) for p in parts])}
        for key in sorted({key for part in parts for key in part[2]}):
            logged[key] = _weighted_mean([(p[0], p[2][key]) for p in parts if key in p[2]])
        return scale, logged

    # ------------------------------------------------------------ evaluation and state
    def evaluate(
        self, evaluate_fn: Callable[[nn.Module], dict[str, float]], model: nn.Module
    ) -> dict[str, float]:
        """``evaluate_fn(model)`` on every rank (it may shard its work with
        :func:`onerec.training.sharding.sharded_map`); rank 0's result is broadcast so every
        rank takes the same early-stopping decision."""
        if self.strategy == "fsdp2" and self._wrapped is not None:
            metrics: dict[str, float] = self._wrapped(lambda inner: evaluate_fn(inner))
        else:
            metrics = evaluate_fn(model)
        result: dict[str, float] = broadcast_object(metrics)
        return result

    def full_state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """A detached copy of the full (unsharded) weights on every rank."""
        if self.strategy == "fsdp2" and self._wrapped is not None:
            from onerec.training.fsdp import full_model_state

            return {
                k: v.detach().clone()
                for k, v in full_model_state(self._wrapped, rank0_only=False).items()
            }
        return {k: v.detach().clone() for k, v in model.state_dict().items()}

    def save_checkpoint(
        self,
        directory: Path,
        model: nn.Module,
        optimizer: torch.optim.Optimizer | None,
        trainer_state: dict[str, Any],
    ) -> None:
        """Rank 0 writes the checkpoint (single-process format); every rank waits for it."""
        if self.strategy == "fsdp2" and self._wrapped is not None:
            from onerec.training.fsdp import save_sharded_checkpoint_parts

            model_state, optim_state = save_sharded_checkpoint_parts(self._wrapped, optimizer)
            if is_main_process():
                save_checkpoint(directory, model_state, optim_state, trainer_state)  # type: ignore[arg-type]
        elif is_main_process():
            save_checkpoint(directory, model, optimizer, trainer_state)
        barrier()  # no rank may read a checkpoint rank 0 is still writing

    def load_checkpoint(
        self, directory: Path, model: nn.Module, optimizer: torch.optim.Optimizer | None
    ) -> dict[str, Any]:
        """Load a checkpoint on every rank (from a file system all ranks can read)."""
        if self.strategy == "fsdp2" and self._wrapped is not None:
            from onerec.training.fsdp import load_into_sharded

            load_checkpoint_state = Path(directory) / STATE_FILE
            if not load_checkpoint_state.is_file():
                # same message as the single-process loader
                return load_checkpoint(directory, model, optimizer)
            load_into_sharded(Path(directory), self._wrapped, optimizer)
            state: dict[str, Any] = read_json(load_checkpoint_state)
            return state
        return load_checkpoint(directory, model, optimizer)


def _weight(output: LossOutput, rows: int) -> float:
    weight = getattr(output, "weight", None)
    if weight is None:
        return float(rows)
    if weight < 0:
        raise ConfigError(f"LossOutput.weight must be >= 0, got {weight}")
    return float(weight)


def _weighted_mean(pairs: list[tuple[float, float]]) -> float:
    total = sum(w for w, _ in pairs)
    if total > 0:
        return sum(w * v for w, v in pairs) / total
    return sum(v for _, v in pairs) / max(1, len(pairs))


@torch.no_grad()
def _broadcast_from_rank0(model: nn.Module) -> None:
    """Make every rank start from rank 0's parameters and buffers."""
    from torch import distributed as dist

    for tensor in [*model.parameters(), *model.buffers()]:
        dist.broadcast(tensor.data, src=0)
