"""Demo stages 4–6: train the OneRec generator, train the reward model, align with IPA.

All training goes through the parts' own recipes (``onerec.model.recipe.train_generator``,
``onerec.reward.train_reward``, ``onerec.alignment.run_ipa``) and so through the one Trainer;
the demo only wires their inputs and writes each stage's directory atomically.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from onerec.baselines.runs import DataSection, LoadedData
from onerec.demo.context import StageContext
from onerec.demo.stages_data import ALL_DIR, FittedTokenizer, PreparedData
from onerec.io import atomic_write_json
from onerec.model import OneRecGenerator, parameter_counts
from onerec.model.artifacts import save_generator
from onerec.model.batching import GeneratorBatches, sliding_session_examples
from onerec.model.recipe import GeneratorRunConfig, TokenizerSection, train_generator
from onerec.reward import RewardDataConfig, RewardModel, RewardRecipe, train_reward


def read_metrics_log(path: Path) -> list[dict[str, Any]]:
    """The Trainer's ``metrics.jsonl`` records (skips a torn last line of a killed run)."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def curves(
    records: list[dict[str, Any]], keys: list[str], kind: str
) -> dict[str, list[list[float]]]:
    """``{key: [[step, value], …]}`` for records of ``kind`` ("train" or "eval")."""
    out: dict[str, list[list[float]]] = {}
    for record in records:
        if record.get("kind") != kind:
            continue
        for key in keys:
            value = record.get(key)
            if isinstance(value, (int, float)) and np.isfinite(value):
                out.setdefault(key, []).append([float(record["step"]), float(value)])
    return out


def item_ids(data: PreparedData) -> list[str]:
    """External item ids in ``item_idx`` order."""
    return data.dataset.items.sort("item_idx")["item_id"].cast(str).to_list()


@dataclass
class TrainedGenerator:
    """The generator after next-token training (best weights) and its leave-one-out metrics."""

    model: OneRecGenerator
    run_config: GeneratorRunConfig
    metrics: dict[str, dict[str, float]]
    model_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)


def generator_run_config(
    ctx: StageContext, data: PreparedData, tok: FittedTokenizer
) -> GeneratorRunConfig:
    """The recipe's config, pointed at the engaged data and the demo's tokenizer."""
    cfg = ctx.config.generator
    train = cfg.train.model_copy(update={"progress": ctx.show_progress})
    return GeneratorRunConfig(
        data=DataSection(dataset=str(data.engaged.path), max_history=ctx.config.data.max_history),
        tokenizer=TokenizerSection(path=str(tok.path)),
        model=dict(cfg.model),
        objective=cfg.objective,
        train=train,
        eval=cfg.eval.model_copy(update={"ks": list(ctx.config.eval.ks)}),
    )


def run_generator(ctx: StageContext, data: PreparedData, tok: FittedTokenizer) -> TrainedGenerator:
    """Session-wise next-token training on engaged histories; beam-search leave-one-out eval."""
    run_cfg = generator_run_config(ctx, data, tok)
    loaded = LoadedData(data.split, data.dataset.num_items, data.engaged)
    with ctx.stage_dir("generator") as tmp:
        trained = train_generator(run_cfg, loaded, tok.tokenizer, tmp)
        save_generator(tmp / "model", trained.model, tok.tokenizer, item_ids(data))
        atomic_write_json(
            tmp / "metrics.json", {"metrics": trained.metrics, "expert_load": trained.expert_load}
        )
        records = read_metrics_log(tmp / "metrics.jsonl")
    counts = parameter_counts(trained.model)
    result = trained.result
    summary = {
        "config": trained.model.config.model_dump(),
        "parameters": {"total": counts.total, "active": counts.active},
        "metrics": trained.metrics,
        "expert_load": trained.expert_load,
        "best_step": result.best_step,
        "final_step": result.final_step,
        "stopped_early": result.stopped_early,
        "train_seconds": result.train_seconds,
        "train_curves": curves(records, ["loss", "ce", "moe_aux", "expert_load_max"], "train"),
        "eval_curves": curves(records, ["ndcg@10", "recall@10"], "eval"),
    }
    return TrainedGenerator(
        trained.model, run_cfg, trained.metrics, ctx.path("generator") / "model", summary
    )


@dataclass
class TrainedReward:
    """The reward model and its held-out results against the per-item-average baseline."""

    model: RewardModel
    summary: dict[str, Any] = field(default_factory=dict)


def run_reward(ctx: StageContext, data: PreparedData) -> TrainedReward:
    """Sessions of logged impressions → multi-target reward model (temporal split)."""
    cfg = ctx.config.reward
    recipe = RewardRecipe(
        data=RewardDataConfig(
            dataset=str(ctx.path("prepare") / ALL_DIR),
            sessions=cfg.sessions,
            valid_fraction=cfg.valid_fraction,
            test_fraction=cfg.test_fraction,
        ),
        model=cfg.model,
        train=cfg.train.model_copy(update={"progress": ctx.show_progress}),
    )
    with ctx.stage_dir("reward") as tmp:
        run = train_reward(recipe.model_copy(update={"out_dir": str(tmp)}), dataset=data.dataset)
        records = read_metrics_log(tmp / "train" / "metrics.jsonl")
    sessions = {
        "train": len(run.data.train),
        "valid": len(run.data.valid),
        "test": len(run.data.test),
    }
    summary = {
        "targets": [t.model_dump() for t in run.data.config.targets],
        "sessions": sessions,
        "results": run.results,
        "best_step": run.train_result.best_step,
        "train_seconds": run.train_result.train_seconds,
        "train_curves": curves(records, ["loss"], "train"),
        "eval_curves": curves(records, ["valid_loss"], "eval"),
    }
    return TrainedReward(run.model, summary)


@dataclass
class AlignedGenerator:
    """The generator after IPA, with rewards of held-out users before and after."""

    model: OneRecGenerator
    model_dir: Path
    summary: dict[str, Any] = field(default_factory=dict)


def split_users(data: PreparedData, eval_count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(IPA user pool, held-out evaluation users): disjoint, both with a non-empty history."""
    with_history = np.array(
        [u for u, seq in enumerate(data.split.train_sequences) if len(seq) > 0], dtype=np.int64
    )
    rng = np.random.default_rng(seed)
    count = min(eval_count, max(1, len(with_history) // 2))
    held_out = np.sort(rng.choice(with_history, size=count, replace=False))
    return np.setdiff1d(with_history, held_out), held_out


def run_ipa_stage(
    ctx: StageContext,
    data: PreparedData,
    tok: FittedTokenizer,
    gen: TrainedGenerator,
    reward: TrainedReward,
) -> AlignedGenerator:
    """DPO on reward-ranked beam candidates (chosen = best, rejected = worst), T rounds."""
    from onerec.alignment import GeneratorPolicy, combine_rewards, reward_model_scorer, run_ipa

    cfg = ctx.config.ipa
    ipa_cfg = cfg.ipa
    gen_cfg = gen.run_config
    histories = data.split.train_sequences  # valid/test targets never condition the policy
    model_cfg = gen.model.config
    ntp = GeneratorBatches(
        sliding_session_examples(
            histories,
            model_cfg.max_history,
            gen_cfg.objective.session_items,
            min_history=gen_cfg.objective.min_history,
        ),
        tok.tokenizer.codes,
        gen_cfg.train.batch_size,
        seed=ctx.config.seed,
    )
    policy = GeneratorPolicy(
        tok.tokenizer.codes,
        tok.tokenizer.trie,
        histories,
        gen_cfg.objective.session_items,
        ipa_cfg.beam_width,
        ntp_data=ntp,
        aux_loss_weight=gen_cfg.objective.aux_loss_weight,
        max_history=model_cfg.max_history,
    )
    scorer = reward_model_scorer(reward.model, histories)
    pool, held_out = split_users(data, cfg.eval_users, ctx.config.seed)

    def evaluate(model: Any) -> dict[str, float]:
        top = policy.generate(model, held_out, 1)  # [U, 1, m]
        per_target = scorer(held_out, top)
        out = {name: float(np.nanmean(values)) for name, values in per_target.items()}
        out["reward"] = float(np.nanmean(combine_rewards(per_target, ipa_cfg.reward_weights)))
        return out

    def log(entry: Any) -> None:
        ctx.console.print(
            f"  IPA round {entry.iteration}: {entry.pairs} pairs, chosen {entry.chosen_reward:.3f} "
            f"vs rejected {entry.rejected_reward:.3f}, held-out reward "
            f"{entry.extra.get('reward', float('nan')):.4f}",
            highlight=False,
        )

    policy_model = copy.deepcopy(gen.model)  # the NTP-only generator stays for comparison
    result = run_ipa(policy_model, policy, scorer, pool, ipa_cfg, evaluate_fn=evaluate, log_fn=log)
    iterations = [entry.to_dict() for entry in result.iterations]
    summary = {
        "rounds": ipa_cfg.iterations,
        "user_fraction": ipa_cfg.user_fraction,
        "pool_users": int(len(pool)),
        "held_out_users": int(len(held_out)),
        "reward_weights": ipa_cfg.reward_weights,
        "evaluations": result.evaluations,  # [0] = before IPA, then one per round
        "iterations": iterations,
    }
    with ctx.stage_dir("ipa") as tmp:
        save_generator(tmp / "model", result.model, tok.tokenizer, item_ids(data))  # type: ignore[arg-type]
        atomic_write_json(tmp / "ipa.json", summary)
    return AlignedGenerator(result.model, ctx.path("ipa") / "model", summary)  # type: ignore[arg-type]
