"""``onerec align CONFIG``: IPA on a trained generator with a trained reward model.

Both models must come from the same data set (same ``item_idx`` and ``user_idx`` spaces): the
generator from ``onerec train`` (``task = "generator"``), the reward model from
``onerec train-reward``. IPA samples users from the data set's leave-one-out training
sequences (which also condition generation and feed the next-token term), scores candidate
sessions with the reward model, and writes the aligned generator (same layout as the input,
so ``onerec recommend`` and the server load it) plus ``ipa_log.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from onerec.alignment.ipa import IPAConfig, IterationLog, run_ipa
from onerec.alignment.policy import GeneratorPolicy
from onerec.alignment.preferences import combine_rewards, reward_model_scorer
from onerec.baselines.runs import DataSection, load_split
from onerec.config import StrictModel
from onerec.errors import ConfigError
from onerec.io import atomic_write_json
from onerec.model.artifacts import load_generator, save_generator
from onerec.model.batching import GeneratorBatches, sliding_session_examples
from onerec.reward import load_reward_model
from onerec.training import resolve_device


class AlignConfig(StrictModel):
    """Sections: ``generator`` (model dir), ``reward_model`` (model dir), ``data``, ``ipa``."""

    generator: str = Field(..., description="generator model directory (a run's model/ folder)")
    reward_model: str = Field(
        default=..., description="reward model directory (train-reward's out_dir/model)"
    )
    data: DataSection
    ipa: IPAConfig = Field(default_factory=lambda: IPAConfig.model_validate({}))
    session_items: int = Field(default=5, ge=1, description="m: items per generated session")
    ntp_batch_size: int = Field(default=64, ge=1)
    monitor_users: int = Field(
        default=200, ge=1, description="users whose top session's RM reward is logged"
    )
    out_dir: str = "runs/aligned"


def run_align(config: AlignConfig, show: Callable[[str], None] = print) -> dict[str, Any]:
    """Run IPA and save the aligned generator to ``out_dir/model``."""
    device = resolve_device(config.ipa.train.device)
    loaded = load_generator(Path(config.generator), device)
    reward_model = load_reward_model(Path(config.reward_model), device)
    data = load_split(config.data)
    sizes = {
        "tokenizer": loaded.tokenizer.num_items,
        "reward model": reward_model.config.num_items,
        "data set": data.num_items,
    }
    if len(set(sizes.values())) != 1:
        raise ConfigError(
            f"generator, reward model and data disagree on the catalogue size: {sizes}; train both on the same data set"
        )
    if config.session_items > loaded.model.config.max_session_items:
        raise ConfigError(
            f"session_items {config.session_items} exceeds the generator's max_session_items "
            f"{loaded.model.config.max_session_items}"
        )
    sequences = data.split.train_sequences
    max_history = loaded.model.config.max_history
    ntp = GeneratorBatches(
        sliding_session_examples(sequences, max_history, config.session_items),
        loaded.tokenizer.codes,
        config.ntp_batch_size,
        seed=config.ipa.seed,
    )
    policy = GeneratorPolicy(
        loaded.tokenizer.codes,
        loaded.tokenizer.trie,
        sequences,
        config.session_items,
        config.ipa.beam_width,
        ntp_data=ntp,
        max_history=max_history,
    )
    scorer = reward_model_scorer(reward_model, sequences)
    pool = np.flatnonzero([len(seq) > 0 for seq in sequences])
    monitor = np.sort(
        np.random.default_rng(config.ipa.seed + 7).choice(
            pool, size=min(config.monitor_users, len(pool)), replace=False
        )
    )

    def evaluate(model: Any) -> dict[str, float]:
        sessions = policy.generate(model, monitor, 1)
        return {
            "rm_reward": float(
                np.nanmean(combine_rewards(scorer(monitor, sessions), config.ipa.reward_weights))
            )
        }

    def log(entry: IterationLog) -> None:
        show(
            f"round {entry.iteration}: users={entry.users} pairs={entry.pairs} chosen={entry.chosen_reward:.4f} "
            f"rejected={entry.rejected_reward:.4f} dpo_margin={entry.dpo_margin_after:.3f} KL≈{entry.kl_estimate:.3f} "
            f"rm_reward={entry.extra.get('rm_reward', float('nan')):.4f}"
        )

    result = run_ipa(
        loaded.model, policy, scorer, pool, config.ipa, evaluate_fn=evaluate, log_fn=log
    )
    out_dir = Path(config.out_dir)
    save_generator(
        out_dir / "model", loaded.model, loaded.tokenizer, loaded.item_ids
    )  # aligned in place
    summary = {
        "config": config.model_dump(),
        "before": result.evaluations[0],
        "rounds": [entry.to_dict() for entry in result.iterations],
    }
    atomic_write_json(out_dir / "ipa_log.json", summary)
    return summary
