"""The world for the IPA experiment: simulated logs, a generator trained on their positives,
and a reward model trained on all their feedback.

``build_sim_world(config)`` returns everything :mod:`onerec.alignment.sim_experiment` needs:

1. a :class:`onerec.sim.UserSimulator` and its logs (logging policy = mildly personalised);
2. the positive sequences (impressions with ``positive_column == 1``), split leave-one-out;
3. a semantic-ID tokenizer fitted on the simulator's stand-in content embeddings;
4. the OneRec generator M_0, trained with next-token loss on the positive sessions;
5. a reward model trained on every logged impression (temporal split by session start).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from pydantic import Field

from onerec.alignment.ipa import IPAConfig
from onerec.baselines.runs import DataSection, LoadedData
from onerec.config import StrictModel
from onerec.data import LeaveOneOutSplit, PreparedDataset, leave_one_out
from onerec.model.generator import OneRecGenerator
from onerec.model.recipe import (
    GeneratorEvalSection,
    GeneratorRunConfig,
    ObjectiveSection,
    train_generator,
)
from onerec.reward import RewardModel, RewardRecipe, train_reward
from onerec.reward.config import RewardConfig
from onerec.sim import SimConfig, UserSimulator, simulate_logs
from onerec.sim.logs import as_prepared_dataset, item_content_embeddings
from onerec.tokenizer import SemanticTokenizer, TokenizerConfig
from onerec.training import TrainConfig


def _default_generator_train() -> TrainConfig:
    return TrainConfig(
        epochs=4,
        batch_size=128,
        lr=3e-3,
        warmup_steps=50,
        weight_decay=0.01,
        monitor="ndcg@10",
        early_stopping_patience=2,
        progress=False,
    )


def _default_reward_recipe() -> RewardRecipe:
    return RewardRecipe(
        model=RewardConfig(
            d_model=32,
            num_heads=2,
            tower_hidden=32,
            dropout=0.0,
            item_features=["duration_ms", "tags"],
        ),
        train=TrainConfig(
            epochs=4,
            batch_size=128,
            lr=3e-3,
            monitor="valid_loss",
            monitor_mode="min",
            progress=False,
        ),
    )


class SimAlignConfig(StrictModel):
    """``onerec align-sim CONFIG``: world, generator, reward model, IPA and the ablations."""

    out_dir: str = "runs/ipa-sim"
    sim: SimConfig = Field(default_factory=lambda: SimConfig.model_validate({}))
    positive_column: str = Field(
        default="click", description="impressions that count as positives for the generator"
    )
    session_items: int = Field(default=5, ge=1, description="m: items per generated session")
    max_history: int = Field(default=20, ge=1)
    tokenizer: TokenizerConfig = Field(
        default_factory=lambda: TokenizerConfig(levels=2, codebook_size=32)
    )
    generator: dict[str, Any] = Field(default_factory=lambda: {"size": "tiny", "dropout": 0.1})
    generator_train: TrainConfig = Field(default_factory=_default_generator_train)
    generator_valid_users: int = Field(
        default=500, ge=1, description="users sampled for early stopping"
    )
    reward: RewardRecipe = Field(default_factory=_default_reward_recipe)
    ipa: IPAConfig = Field(default_factory=lambda: IPAConfig.model_validate({}))
    ntp_batch_size: int = Field(default=64, ge=1)
    eval_users: int = Field(
        default=1000, ge=1, description="users whose generated sessions are scored"
    )
    recall_users: int | None = Field(
        default=None, ge=1, description="users for Recall@10 (None: all)"
    )
    variants: list[str] = Field(
        default_factory=lambda: ["ipa", "ntp_only", "r_ablation", "oracle"],
        description="ipa | ntp_only | r_ablation | oracle (true-reward scorer)",
    )
    r_ablation: float = Field(
        default=0.05, gt=0.0, le=1.0, description="user fraction of the r_ablation variant"
    )


@dataclass
class SimWorld:
    """Everything the experiment reuses across variants."""

    simulator: UserSimulator
    dataset: PreparedDataset  # all logged impressions
    split: LeaveOneOutSplit  # positive sequences, leave-one-out
    tokenizer: SemanticTokenizer
    generator: OneRecGenerator  # M_0
    generator_metrics: dict[str, dict[str, float]]
    reward_model: RewardModel
    reward_results: dict[str, dict[str, Any]]
    timings: dict[str, float]


def positive_dataset(dataset: PreparedDataset, column: str) -> PreparedDataset:
    """The same users and items, keeping only impressions with ``column == 1``."""
    kept = dataset.interactions.filter(pl.col(column) == 1)
    return PreparedDataset(
        kept, dataset.items, dataset.users, dict(dataset.manifest), f"{dataset.name}-{column}"
    )


def build_sim_world(config: SimAlignConfig, show: Any = print) -> SimWorld:
    """Steps 1–5 of the module docstring, with wall-clock timings."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    simulator = UserSimulator(config.sim)
    dataset = as_prepared_dataset(simulator, simulate_logs(simulator))
    positives = positive_dataset(dataset, config.positive_column)
    split = leave_one_out(positives.sequences(), max_history=config.max_history)
    timings["simulate_s"] = time.perf_counter() - start
    show(
        f"simulated {dataset.interactions.height:,} impressions, {positives.interactions.height:,} positives; "
        f"{len(split.test.targets):,} users with a held-out item"
    )

    start = time.perf_counter()
    tokenizer = SemanticTokenizer.fit(item_content_embeddings(simulator), None, config.tokenizer)
    timings["tokenizer_s"] = time.perf_counter() - start

    start = time.perf_counter()
    run_cfg = GeneratorRunConfig(
        data=DataSection(dataset="sim", max_history=config.max_history),
        model=config.generator,
        objective=ObjectiveSection(session_items=config.session_items),
        train=config.generator_train,
        eval=GeneratorEvalSection(beam_width=20, valid_users=config.generator_valid_users),
    )
    out_dir = Path(config.out_dir)
    trained = train_generator(
        run_cfg, LoadedData(split, dataset.num_items, positives), tokenizer, out_dir / "generator"
    )
    timings["generator_s"] = time.perf_counter() - start
    show(f"generator M_0: test {_short(trained.metrics['test'])} ({timings['generator_s']:.0f} s)")

    start = time.perf_counter()
    recipe = config.reward.model_copy(update={"out_dir": str(out_dir / "reward")})
    reward_run = train_reward(recipe, dataset)
    timings["reward_s"] = time.perf_counter() - start
    aucs = {k: round(v["model_auc"], 3) for k, v in reward_run.results.items() if "model_auc" in v}
    show(f"reward model: held-out AUC {aucs} ({timings['reward_s']:.0f} s)")
    return SimWorld(
        simulator,
        dataset,
        split,
        tokenizer,
        trained.model,
        trained.metrics,
        reward_run.model,
        reward_run.results,
        timings,
    )


def _short(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k in ("recall@10", "ndcg@10"))


def eval_user_sample(split: LeaveOneOutSplit, count: int | None, seed: int) -> np.ndarray:
    """Row indices into ``split.test`` (a fixed sample of ``count`` users, or all)."""
    total = len(split.test.targets)
    if count is None or count >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, size=count, replace=False))
