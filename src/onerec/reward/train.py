"""Train the reward model through the common :class:`onerec.training.Trainer` and evaluate it.

``train_reward(recipe)``: load the data set, build sessions (temporal split by session start),
fill the model's sizes from the data, train with early stopping on validation loss, evaluate
on the test sessions against the per-item-average baseline, and write ``out_dir/model``
(``config.json`` + ``model.safetensors``), ``out_dir/metrics.json`` and ``out_dir/report.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from onerec.data import PreparedDataset, load_dataset
from onerec.errors import DataValidationError
from onerec.io import atomic_write_json, atomic_write_text
from onerec.reward.config import RewardConfig, RewardRecipe, TargetSpec
from onerec.reward.evaluate import evaluate_reward, examples_batch, results_markdown
from onerec.reward.features import build_item_features
from onerec.reward.loss import reward_loss
from onerec.reward.model import RewardBatch, RewardModel
from onerec.reward.sessions import (
    RewardExamples,
    build_reward_examples,
    session_length_counts,
    temporal_session_split,
)
from onerec.training import (
    LossOutput,
    Trainer,
    TrainResult,
    load_state_into,
    read_model_config,
    save_model_dir,
)
from onerec.training.distributed import barrier, is_main_process, main_process_first
from onerec.training.seed import epoch_seed


@dataclass
class RewardData:
    """Sessions of one data set, split by time, and the model config filled from it."""

    config: RewardConfig
    item_feature_ids: torch.Tensor
    train: RewardExamples
    valid: RewardExamples
    test: RewardExamples
    session_lengths: dict[int, int]


@dataclass
class RewardRun:
    """What :func:`train_reward` produced."""

    model: RewardModel
    data: RewardData
    results: dict[str, dict[str, Any]]
    train_result: TrainResult


def available_targets(targets: list[TargetSpec], columns: list[str]) -> list[TargetSpec]:
    """The targets whose column the data has; warns about the others, errors if none is left."""
    kept = [t for t in targets if t.column in columns]
    dropped = [f"{t.name} ({t.column})" for t in targets if t.column not in columns]
    if dropped:
        warnings.warn(
            f"reward targets without a feedback column are skipped: {', '.join(dropped)}",
            stacklevel=2,
        )
    if not kept:
        raise DataValidationError(
            "none of the reward targets has a feedback column in this data set",
            hint=f"columns present: {', '.join(columns)}; set [model.targets] accordingly",
        )
    return kept


def prepare_reward_data(dataset: PreparedDataset, recipe: RewardRecipe) -> RewardData:
    """Sessions, split and filled config for ``dataset``."""
    columns = list(dataset.interactions.columns)
    targets = available_targets(recipe.model.targets, columns)
    features = build_item_features(dataset.items, dataset.num_items, recipe.model.item_features)
    config = recipe.model.model_copy(
        update={
            "targets": targets,
            "num_users": dataset.num_users,
            "num_items": dataset.num_items,
            "feature_cardinalities": features.cardinalities,
            "max_session_items": recipe.data.sessions.max_items,
        }
    )
    unit = str(dataset.manifest.get("timestamp_unit", "ms"))
    examples = build_reward_examples(
        dataset.interactions,
        dataset.num_items,
        recipe.data.sessions,
        targets,
        config.max_history,
        unit,
    )
    train, valid, test = temporal_session_split(
        examples, recipe.data.valid_fraction, recipe.data.test_fraction
    )
    return RewardData(
        RewardConfig.model_validate(config.model_dump()),
        torch.from_numpy(features.ids),
        train,
        valid,
        test,
        session_length_counts(examples),
    )


def make_loss_fn(targets: list[TargetSpec]) -> Callable[[torch.nn.Module, RewardBatch], LossOutput]:
    """``loss_fn(model, batch)`` for the Trainer."""

    def loss_fn(model: torch.nn.Module, batch: RewardBatch) -> LossOutput:
        predictions = model.item_predictions(batch)  # type: ignore[operator]
        labels = {spec.name: batch[f"label_{spec.name}"] for spec in targets}
        total, parts = reward_loss(predictions, labels, batch["item_mask"], targets)
        # a mean over real session items: weighting data-parallel ranks by their item count
        # makes the combined loss the single-process one
        items = float(batch["item_mask"].sum())
        return LossOutput(
            total, {f"loss_{k}": float(v.detach()) for k, v in parts.items()}, weight=items
        )

    return loss_fn


def epoch_batches(
    examples: RewardExamples, batch_size: int, seed: int
) -> Callable[[int], list[RewardBatch]]:
    """A callable ``epoch -> batches`` with a shuffle seeded from (seed, epoch) (exact resume)."""

    def batches(epoch: int) -> list[RewardBatch]:
        order = np.random.default_rng(epoch_seed(seed, epoch)).permutation(len(examples))
        return [
            examples_batch(examples, np.sort(order[i : i + batch_size]))
            for i in range(0, len(order), batch_size)
        ]

    return batches


@torch.no_grad()
def validation_loss(
    model: RewardModel, examples: RewardExamples, targets: list[TargetSpec]
) -> dict[str, float]:
    """Mean loss over ``examples`` (the early-stopping monitor ``valid_loss``)."""
    device = next(model.parameters()).device
    totals: dict[str, float] = {}
    weight = 0.0
    for start in range(0, len(examples), 2048):
        batch = examples_batch(examples, slice(start, start + 2048), device)
        labels = {spec.name: batch[f"label_{spec.name}"] for spec in targets}
        total, parts = reward_loss(
            model.item_predictions(batch), labels, batch["item_mask"], targets
        )
        n = float(batch["item_mask"].sum())
        weight += n
        totals["valid_loss"] = totals.get("valid_loss", 0.0) + float(total) * n
        for name, value in parts.items():
            totals[f"valid_loss_{name}"] = totals.get(f"valid_loss_{name}", 0.0) + float(value) * n
    return {k: v / max(weight, 1.0) for k, v in totals.items()}


def train_reward(recipe: RewardRecipe, dataset: PreparedDataset | None = None) -> RewardRun:
    """Train, evaluate and save a reward model (see the module docstring)."""
    if dataset is None:
        with main_process_first():  # torchrun: rank 0 prepares/caches the data first
            dataset = load_dataset(recipe.data.dataset, data_root=recipe.data.data_root)
    data = prepare_reward_data(dataset, recipe)
    torch.manual_seed(recipe.train.seed)
    model = RewardModel(data.config, data.item_feature_ids)
    targets = data.config.targets
    out_dir = Path(recipe.out_dir)
    train_cfg = recipe.train.model_copy(update={"out_dir": str(out_dir / "train")})
    trainer = Trainer(
        model,
        make_loss_fn(targets),
        epoch_batches(data.train, train_cfg.batch_size, train_cfg.seed),
        train_cfg,
        evaluate_fn=lambda m: validation_loss(m, data.valid, targets),  # type: ignore[arg-type]
    )
    train_result = trainer.fit()
    results = evaluate_reward(model, data.train, data.test, targets)
    if not is_main_process():  # under torchrun rank 0 alone writes the output directory
        barrier()
        return RewardRun(model, data, results, train_result)
    save_reward_model(out_dir / "model", model)
    summary = {
        "dataset": dataset.name,
        "sessions": {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)},
        "session_lengths": data.session_lengths,
        "best_step": train_result.best_step,
        "best_valid": train_result.best_metrics,
        "test": results,
    }
    atomic_write_json(out_dir / "metrics.json", summary)
    atomic_write_text(out_dir / "report.md", results_markdown(results))
    barrier()  # matches the other ranks' wait: the directory is complete when all return
    return RewardRun(model, data, results, train_result)


def save_reward_model(path: str | Path, model: RewardModel) -> Path:
    """Write the model directory (``config.json`` + ``model.safetensors``)."""
    return save_model_dir(
        path, model, {"kind": "reward_model", "config": model.config.model_dump()}
    )


def load_reward_model(path: str | Path, device: str | torch.device = "cpu") -> RewardModel:
    """Load a model directory written by :func:`save_reward_model`."""
    stored = read_model_config(path)
    if stored.get("kind") != "reward_model":
        raise DataValidationError(
            "not a reward model directory",
            path=str(path),
            hint="pass the out_dir/model of train-reward",
        )
    config = RewardConfig.model_validate(stored["config"])
    model = RewardModel(config)
    load_state_into(model, path)
    return model.to(device).eval()
