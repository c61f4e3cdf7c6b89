"""The one training loop every onerec model uses.

``Trainer(model, loss_fn, train_data, config, evaluate_fn).fit()`` runs AdamW with warm-up +
cosine, gradient clipping and accumulation, periodic evaluation with early stopping, rich
progress, JSON-lines metrics, safetensors checkpoints (``last`` and ``best``), exact resume, and
restores the best weights at the end.

Exact resume: data order per epoch depends only on (seed, epoch) — a ``DataLoader`` with a
``RandomSampler`` gets a generator seeded from :func:`onerec.training.seed.epoch_seed`, a
callable ``train_data(epoch)`` is expected to do the same — and the checkpoint stores the
global RNG states and how many batches of the current epoch were consumed. A resumed run
rebuilds the epoch's iterator, skips those batches, restores the RNG states and carries on.

Data parallel under ``torchrun`` (``train.distributed``): :class:`onerec.training.ddp.
ParallelTraining`, set up at the start of :meth:`Trainer.fit`, gives each rank its slice of
every global batch, wraps the model in DDP or FSDP2, weights the ranks' losses so the update
equals the single-process one, and routes checkpoints (rank 0 writes) and evaluation. All file
and console output sits behind ``is_main_process()``; the bare model is reached via
``unwrap_model``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, RandomSampler

from onerec.errors import ConfigError, OnerecError
from onerec.training.checkpoint import load_checkpoint
from onerec.training.config import TrainConfig
from onerec.training.ddp import ParallelTraining
from onerec.training.device import resolve_device, to_device
from onerec.training.distributed import is_main_process, unwrap_model
from onerec.training.metrics_log import MetricsLog, TrainProgress
from onerec.training.optim import WarmupCosineSchedule, build_optimizer
from onerec.training.seed import capture_rng_state, epoch_seed, restore_rng_state, seed_everything

TrainData = Iterable[Any] | Callable[[int], Iterable[Any]]
_SHOWN = ("loss", "recall", "ndcg", "auc", "accuracy", "acc")  # metric families echoed per eval


class NonFiniteLossError(OnerecError):
    """The loss became NaN or infinite (usually: LR too high, or bad input values)."""


@dataclass
class LossOutput:
    """What a loss function returns: the scalar to minimise and floats to log."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)
    # How many units (rows, tokens, pairs) ``loss`` is a mean over; None: the batch's rows.
    # Data-parallel runs weight each rank's loss by it, so the update equals the single-process
    # one on the whole global batch (see onerec.training.ddp).
    weight: float | None = None


@dataclass
class TrainResult:
    """Outcome of :meth:`Trainer.fit`."""

    best_metrics: dict[str, float]
    best_step: int | None
    history: list[dict[str, Any]]
    checkpoint_dir: Path | None
    final_step: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0  # CPU time of this process (all threads), contention-free


@dataclass
class _State:
    """Everything needed to continue a run (saved as ``trainer_state.json``)."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    best_value: float | None = None
    best_step: int | None = None
    best_metrics: dict[str, float] = field(default_factory=dict)
    evals_without_improvement: int = 0
    last_eval_step: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped_early: bool = False
    train_seconds: float = 0.0
    train_cpu_seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> _State:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Trainer:
    """Trains ``model`` by minimising ``loss_fn(model, batch).loss`` over ``train_data``.

    Args:
        model: any ``nn.Module``; moved to the configured device.
        loss_fn: ``(model, batch) -> LossOutput``. ``batch`` has been moved to the device.
        train_data: an iterable of batches re-iterated each epoch (e.g. a ``DataLoader``), or a
            callable ``epoch -> iterable`` (seed its shuffling from ``epoch_seed(seed, epoch)``
            for exact resume).
        config: :class:`TrainConfig`.
        evaluate_fn: ``model -> dict[str, float]`` on validation data, called in eval mode
            under ``torch.no_grad``; ``config.monitor`` must be one of its keys.
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: Callable[[nn.Module, Any], LossOutput],
        train_data: TrainData,
        config: TrainConfig,
        evaluate_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    ) -> None:
        self.model = model
        self.loss_fn = loss_fn
        self.train_data = train_data
        self.config = config
        self.evaluate_fn = evaluate_fn
        self.device = resolve_device(config.device)
        self.out_dir = Path(config.out_dir) if config.out_dir is not None else None
        # Checked here, not in TrainConfig: recipes fill out_dir from the run directory after
        # the config file has been validated.
        if config.resume and self.out_dir is None:
            raise ConfigError("train.resume=true needs train.out_dir (where the checkpoints are)")
        self._best_in_memory: dict[str, torch.Tensor] | None = None
        if config.precision == "bf16" and self.device.type != "cuda":
            raise ConfigError("precision='bf16' needs a CUDA device; use 'auto' or 'fp32' on CPU")
        self.use_bf16 = self.device.type == "cuda" and config.precision in ("auto", "bf16")
        self.parallel = ParallelTraining("none", self.device)  # fit() sets up torchrun runs

    # ---------------------------------------------------------------- hooks
    def prepare_epoch(self, epoch: int) -> Iterable[Any]:
        """Return the iterable of batches for ``epoch`` (the sampler-epoch hook)."""
        data = self.train_data
        if isinstance(data, DataLoader):
            sampler = data.sampler
            if hasattr(sampler, "set_epoch"):  # DistributedSampler
                sampler.set_epoch(epoch)
            elif isinstance(sampler, RandomSampler):
                generator = torch.Generator()
                generator.manual_seed(epoch_seed(self.config.seed, epoch))
                sampler.generator = generator
            return data
        if callable(data):
            return data(epoch)
        return data

    # ---------------------------------------------------------------- main loop
    def fit(self) -> TrainResult:
        """Train to the budget or until early stopping; restore the best weights; return."""
        cfg = self.config
        seed_everything(cfg.seed)
        self.parallel = ParallelTraining.setup(cfg.distributed, self.device)
        self.device = self.parallel.device
        self.model.to(self.device)
        bare = unwrap_model(self.model)
        self.parallel.wrap(bare)  # DDP / FSDP2 under torchrun; before the optimizer
        optimizer = build_optimizer(
            bare, cfg.lr, cfg.weight_decay, (cfg.betas[0], cfg.betas[1]), cfg.decay_embeddings
        )
        schedule = WarmupCosineSchedule(
            optimizer, cfg.warmup_steps, self._schedule_steps(), cfg.min_lr_ratio
        )
        state, rng_to_restore = self._maybe_resume(bare, optimizer)
        log = MetricsLog(self.out_dir / "metrics.jsonl" if self.out_dir else None)
        progress = TrainProgress(
            enabled=cfg.progress and is_main_process(), total=self._total_steps()
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        seconds_before, cpu_before = state.train_seconds, state.train_cpu_seconds
        done = self._budget_spent(state)
        with progress:
            progress.advance_to(state.step)
            while not done and state.epoch < cfg.epochs:
                batches = iter(self.prepare_epoch(state.epoch))
                for _ in range(state.batches_in_epoch):  # resume mid-epoch: same order
                    next(batches, None)
                if rng_to_restore is not None:
                    restore_rng_state(rng_to_restore)
                    rng_to_restore = None
                done = self._run_epoch(batches, state, optimizer, schedule, log, progress)
                self._clock(
                    state,
                    seconds_before + time.perf_counter() - started,
                    cpu_before + time.process_time() - cpu_started,
                )
                if not done:  # the epoch ran to its end
                    state.epoch += 1
                    state.batches_in_epoch = 0
                    every = cfg.eval_every_epochs
                    if every is not None and state.epoch % every == 0:
                        done = self._evaluate(state, optimizer, log, progress) or done
                    done = done or self._budget_spent(state)
                    self._save_last(state, optimizer)
        self._clock(
            state,
            seconds_before + time.perf_counter() - started,
            cpu_before + time.process_time() - cpu_started,
        )
        self._save_last(state, optimizer)
        self.parallel.finish(bare)
        self._restore_best()
        return TrainResult(
            best_metrics=dict(state.best_metrics),
            best_step=state.best_step,
            history=list(state.history),
            checkpoint_dir=self.out_dir / "checkpoints" if self.out_dir else None,
            final_step=state.step,
            stopped_early=state.stopped_early,
            train_seconds=state.train_seconds,
            train_cpu_seconds=state.train_cpu_seconds,
        )

    @staticmethod
    def _clock(state: _State, wall: float, cpu: float) -> None:
        state.train_seconds, state.train_cpu_seconds = wall, cpu

    def _run_epoch(
        self,
        batches: Iterator[Any],
        state: _State,
        optimizer: torch.optim.Optimizer,
        schedule: WarmupCosineSchedule,
        log: MetricsLog,
        progress: TrainProgress,
    ) -> bool:
        """Consume one epoch's batches; True when training must stop (budget/early stop)."""
        cfg = self.config
        self.model.train()
        window: dict[str, float] = {}
        window_steps = 0
        micro = 0
        optimizer.zero_grad(set_to_none=True)
        for batch in batches:
            state.batches_in_epoch += 1
            output = self._forward(self.parallel.shard(batch))  # this rank's rows
            scale, logged = self.parallel.combine(output)  # (1.0, own values) in one process
            loss = output.loss * scale / cfg.grad_accum_steps
            loss.backward()
            for key, value in logged.items():
                window[key] = window.get(key, 0.0) + value / cfg.grad_accum_steps
            micro += 1
            if micro < cfg.grad_accum_steps:
                continue
            micro = 0
            grad_norm = self._optimizer_step(optimizer, schedule, state.step)
            window["grad_norm"] = window.get("grad_norm", 0.0) + grad_norm
            state.step += 1
            window_steps += 1
            progress.update(state.step, window.get("loss", 0.0) / window_steps)
            if state.step % cfg.log_every == 0:
                log.write_train(state, window, window_steps, optimizer)
                window, window_steps = {}, 0
            every = cfg.eval_every_steps
            if (
                every is not None
                and state.step % every == 0
                and self._evaluate(state, optimizer, log, progress)
            ):
                return True
            if cfg.checkpoint_every_steps and state.step % cfg.checkpoint_every_steps == 0:
                self._save_last(state, optimizer)
            if self._budget_spent(state):
                return True
        if micro > 0:  # a partial accumulation group at the epoch's end still gets its step
            self._optimizer_step(optimizer, schedule, state.step)
            state.step += 1
            progress.update(state.step, None)
        return False

    def _forward(self, batch: Any) -> LossOutput:
        batch = to_device(batch, self.device)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.use_bf16
            else contextlib.nullcontext()
        )
        with autocast:
            output = self.parallel.forward(self.loss_fn, self.model, batch)
        if not torch.isfinite(output.loss.detach()):
            raise NonFiniteLossError(
                f"loss is {float(output.loss.detach())} — lower train.lr, raise "
                "train.warmup_steps, or check the input data for NaN/inf values"
            )
        return output

    def _optimizer_step(
        self, optimizer: torch.optim.Optimizer, schedule: WarmupCosineSchedule, step: int
    ) -> float:
        schedule.apply(step)
        grad_norm = 0.0
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.config.grad_clip is not None and params:
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip))
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return grad_norm

    # ---------------------------------------------------------------- evaluation
    def _evaluate(
        self,
        state: _State,
        optimizer: torch.optim.Optimizer,
        log: MetricsLog,
        progress: TrainProgress | None = None,
    ) -> bool:
        """Evaluate, update best/early-stopping; True when patience is exhausted."""
        cfg = self.config
        if self.evaluate_fn is None or state.last_eval_step == state.step:
            return False
        bare = unwrap_model(self.model)
        bare.eval()
        with torch.no_grad():
            metrics = {
                k: float(v) for k, v in self.parallel.evaluate(self.evaluate_fn, bare).items()
            }
        self.model.train()
        if cfg.monitor not in metrics:
            raise ConfigError(
                f"train.monitor={cfg.monitor!r} is not among the evaluation results "
                f"{sorted(metrics)}; set train.monitor to one of them"
            )
        state.last_eval_step = state.step
        value = metrics[cfg.monitor]
        improved = state.best_value is None or (
            value > state.best_value + cfg.min_delta
            if cfg.monitor_mode == "max"
            else value < state.best_value - cfg.min_delta
        )
        if math.isnan(value):
            improved = False
        record = {"step": state.step, "epoch": state.epoch, **metrics, "improved": improved}
        state.history.append(record)
        log.write_eval(record)
        if progress is not None:
            shown = " ".join(
                f"{k}={v:.4f}" for k, v in metrics.items() if k.split("@")[0] in _SHOWN
            )
            mark = " (best)" if improved else ""
            progress.note(f"eval step {state.step} epoch {state.epoch}: {shown}{mark}")
        if improved:
            state.best_value, state.best_step = value, state.step
            state.best_metrics = dict(metrics)
            state.evals_without_improvement = 0
            self._save_best(state, optimizer)
        else:
            state.evals_without_improvement += 1
        patience = cfg.early_stopping_patience
        if patience is not None and state.evals_without_improvement >= patience:
            state.stopped_early = True
            return True
        return False

    # ---------------------------------------------------------------- budget
    def _batches_per_epoch(self) -> int | None:
        if not hasattr(self, "_batches_cache"):
            try:
                self._batches_cache: int | None = len(self.prepare_epoch(0))  # type: ignore[arg-type]
            except TypeError:
                self._batches_cache = None
        return self._batches_cache

    def _steps_per_epoch(self) -> int | None:
        batches = self._batches_per_epoch()
        if batches is None:
            return None
        return math.ceil(batches / self.config.grad_accum_steps)

    def _total_steps(self) -> int | None:
        per_epoch = self._steps_per_epoch()
        by_epochs = per_epoch * self.config.epochs if per_epoch is not None else None
        if self.config.max_steps is None:
            return by_epochs
        return min(self.config.max_steps, by_epochs) if by_epochs else self.config.max_steps

    def _schedule_steps(self) -> int:
        if self.config.schedule_steps is not None:
            return self.config.schedule_steps
        total = self._total_steps()
        if total is None:
            raise ConfigError(
                "train_data has no length, so the LR schedule needs train.max_steps "
                "or train.schedule_steps"
            )
        return total

    def _budget_spent(self, state: _State) -> bool:
        max_steps = self.config.max_steps
        return (max_steps is not None and state.step >= max_steps) or state.stopped_early

    # ---------------------------------------------------------------- checkpoints
    def _trainer_state(self, state: _State) -> dict[str, Any]:
        return {**state.to_json(), "rng": capture_rng_state(), "config": self.config.model_dump()}

    def _save_last(self, state: _State, optimizer: torch.optim.Optimizer) -> None:
        if self.out_dir is None:
            return
        self.parallel.save_checkpoint(  # rank 0 writes, every rank waits
            self.out_dir / "checkpoints" / "last",
            unwrap_model(self.model),
            optimizer,
            self._trainer_state(state),
        )

    def _save_best(self, state: _State, optimizer: torch.optim.Optimizer) -> None:
        bare = unwrap_model(self.model)
        if self.out_dir is None:
            self._best_in_memory = self.parallel.full_state_dict(bare)
            return
        self.parallel.save_checkpoint(
            self.out_dir / "checkpoints" / "best", bare, optimizer, self._trainer_state(state)
        )

    def _restore_best(self) -> None:
        bare = unwrap_model(self.model)
        if self._best_in_memory is not None:
            bare.load_state_dict(self._best_in_memory)
        elif self.out_dir is not None and (self.out_dir / "checkpoints" / "best").is_dir():
            load_checkpoint(self.out_dir / "checkpoints" / "best", bare)

    def _maybe_resume(
        self, bare: nn.Module, optimizer: torch.optim.Optimizer
    ) -> tuple[_State, dict[str, Any] | None]:
        last = self.out_dir / "checkpoints" / "last" if self.out_dir else None
        if not self.config.resume or last is None or not last.is_dir():
            return _State(), None
        saved = self.parallel.load_checkpoint(last, bare, optimizer)
        return _State.from_json(saved), saved["rng"]
