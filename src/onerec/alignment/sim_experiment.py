"""The IPA experiment with ground truth (``onerec align-sim``).

On the world of :mod:`onerec.alignment.sim_setup`, every variant starts from the same M_0 and
is scored before and after each IPA round on:

- the simulator's **exact** expected rewards of each evaluation user's top beam session
  (``true_*``; ``true_reward`` is the weighted sum used by IPA),
- the reward model's score of the same sessions (``rm_reward``) — if it climbs while the true
  reward does not, the policy is exploiting the reward model,
- Recall@10 / NDCG@10 of next-item beam search on the held-out positives (leave-one-out).

Variants: ``ipa`` (reward-model scorer, the config's r and T; its round 1 is the T = 1 result),
``ntp_only`` (same steps, no DPO term), ``r_ablation`` (another user fraction), ``oracle``
(chosen/rejected picked by the simulator's true reward instead of the reward model).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from onerec.alignment.ipa import IPAConfig, IterationLog, run_ipa
from onerec.alignment.policy import GeneratorPolicy
from onerec.alignment.preferences import (
    SessionScorer,
    combine_rewards,
    reward_model_scorer,
    simulator_scorer,
)
from onerec.alignment.sim_setup import SimAlignConfig, SimWorld, build_sim_world, eval_user_sample
from onerec.eval import ranking_metrics
from onerec.generation.recommend import recommend_topk
from onerec.io import atomic_write_json, atomic_write_text
from onerec.model.batching import GeneratorBatches, sliding_session_examples
from onerec.model.generator import OneRecGenerator
from onerec.sim.config import SESSION_TARGETS

Evaluator = Callable[[nn.Module], dict[str, float]]


def evaluation_histories(world: SimWorld) -> list[np.ndarray]:
    """Per user: the test history (all positives but the last) where there is one, else training."""
    histories = [np.asarray(seq) for seq in world.split.train_sequences]
    for user, history in zip(world.split.test.user_idx, world.split.test.histories, strict=True):
        histories[int(user)] = np.asarray(history)
    return histories


def make_evaluator(world: SimWorld, config: SimAlignConfig) -> Evaluator:
    """``model -> metrics`` on fixed evaluation users (see the module docstring)."""
    histories = evaluation_histories(world)
    policy = GeneratorPolicy(
        world.tokenizer.codes,
        world.tokenizer.trie,
        histories,
        config.session_items,
        config.ipa.beam_width,
        max_history=config.max_history,
    )
    rows = eval_user_sample(world.split, config.eval_users, config.ipa.seed)
    users = world.split.test.user_idx[rows].astype(np.int64)
    recall_rows = eval_user_sample(world.split, config.recall_users, config.ipa.seed + 1)
    true_scorer = simulator_scorer(world.simulator)
    rm_scorer = reward_model_scorer(world.reward_model, histories)
    weights = config.ipa.reward_weights
    tags = world.simulator.item_tags
    durations = world.simulator.item_duration_ms
    targets = world.split.test.targets[recall_rows]
    first_hits: list[np.ndarray] = []  # Recall@10 hits of the first model evaluated (M_0)

    def evaluate(model: nn.Module) -> dict[str, float]:
        assert isinstance(model, OneRecGenerator)
        sessions = policy.generate(model, users, 1)  # [U, 1, m]
        true = true_scorer(users, sessions)
        predicted = rm_scorer(users, sessions)
        alive = np.all(sessions[:, 0] >= 0, axis=1)
        flat = np.where(sessions[:, 0] >= 0, sessions[:, 0], 0)
        out = {
            "true_reward": float(np.nanmean(combine_rewards(true, weights))),
            "rm_reward": float(np.nanmean(combine_rewards(predicted, weights))),
            "distinct_tags": float(np.mean([len(set(tags[s])) for s in flat[alive]]))
            if alive.any()
            else float("nan"),
            "mean_duration_s": float(durations[flat[alive]].mean() / 1000.0)
            if alive.any()
            else float("nan"),
        }
        out.update({f"true_{name}": float(np.nanmean(true[name])) for name in SESSION_TARGETS})
        topk, _ = recommend_topk(
            model,
            [world.split.test.histories[i] for i in recall_rows],
            world.tokenizer.codes,
            world.tokenizer.trie,
            top_k=10,
            beam_width=20,
        )
        metrics = ranking_metrics(topk, targets, (10,))
        out["recall@10"], out["ndcg@10"] = metrics["recall@10"], metrics["ndcg@10"]
        # Paired comparison with M_0 (McNemar): users newly hit / newly missed, and z.
        hits = np.any(topk == targets[:, None], axis=1)
        if not first_hits:
            first_hits.append(hits)
        gained = int((hits & ~first_hits[0]).sum())
        lost = int((~hits & first_hits[0]).sum())
        out["recall_gained"], out["recall_lost"] = float(gained), float(lost)
        out["recall_mcnemar_z"] = (gained - lost) / np.sqrt(gained + lost) if gained + lost else 0.0
        return out

    return evaluate


def variant_setup(
    name: str, config: SimAlignConfig, world: SimWorld
) -> tuple[IPAConfig, SessionScorer]:
    """The IPA config and scorer of one variant."""
    rm_scorer = reward_model_scorer(world.reward_model, world.split.train_sequences)
    if name == "ipa":
        return config.ipa, rm_scorer
    if name == "ntp_only":
        return config.ipa.model_copy(update={"use_dpo": False}), rm_scorer
    if name == "r_ablation":
        return config.ipa.model_copy(update={"user_fraction": config.r_ablation}), rm_scorer
    if name == "oracle":
        return config.ipa, simulator_scorer(world.simulator)
    raise ValueError(f"unknown variant {name!r}; use ipa, ntp_only, r_ablation or oracle")


def run_sim_alignment(
    config: SimAlignConfig, show: Callable[[str], None] = print
) -> dict[str, Any]:
    """Build the world, run every variant, write ``results.json`` and ``report.md``."""
    started = time.perf_counter()
    world = build_sim_world(config, show)
    evaluate = make_evaluator(world, config)
    ntp = GeneratorBatches(
        sliding_session_examples(
            world.split.train_sequences, config.max_history, config.session_items
        ),
        world.tokenizer.codes,
        config.ntp_batch_size,
        seed=config.ipa.seed,
    )
    policy = GeneratorPolicy(
        world.tokenizer.codes,
        world.tokenizer.trie,
        world.split.train_sequences,
        config.session_items,
        config.ipa.beam_width,
        ntp_data=ntp,
        max_history=config.max_history,
    )
    user_pool = np.flatnonzero([len(seq) > 0 for seq in world.split.train_sequences])
    start = time.perf_counter()
    baseline = evaluate(world.generator)
    show(f"M_0: {_fmt(baseline)} ({time.perf_counter() - start:.0f} s)")
    variants: dict[str, Any] = {}
    for name in config.variants:
        ipa_config, scorer = variant_setup(name, config, world)
        model = copy.deepcopy(world.generator)
        start = time.perf_counter()

        def log(entry: IterationLog, name: str = name) -> None:
            show(
                f"[{name}] round {entry.iteration}: pairs={entry.pairs} KL≈{entry.kl_estimate:.3f} {_fmt(entry.extra)}"
            )

        result = run_ipa(
            model, policy, scorer, user_pool, ipa_config, evaluate_fn=evaluate, log_fn=log
        )
        variants[name] = {
            "ipa": ipa_config.model_dump(),
            "rounds": [baseline] + [entry.extra for entry in result.iterations],
            "logs": [entry.to_dict() for entry in result.iterations],
            "seconds": time.perf_counter() - start,
        }
    results = {
        "config": config.model_dump(),
        "generator_metrics": world.generator_metrics,
        "reward_model": world.reward_results,
        "baseline": baseline,
        "variants": variants,
        "timings": {**world.timings, "total_s": time.perf_counter() - started},
    }
    out_dir = Path(config.out_dir)
    atomic_write_json(out_dir / "results.json", results)
    atomic_write_text(out_dir / "report.md", report_markdown(results))
    return results


def _fmt(metrics: dict[str, float]) -> str:
    keys = ("true_reward", "rm_reward", "recall@10")
    return " ".join(f"{k}={metrics[k]:.4f}" for k in keys if k in metrics)


def _pct(after: float, before: float) -> str:
    return f"{100.0 * (after - before) / abs(before):+.1f} %" if before else "n/a"


def report_markdown(results: dict[str, Any]) -> str:
    """Per variant and round: true reward, reward-model score, Recall@10 and their changes."""
    base = results["baseline"]
    lines = [
        "| variant | round | true reward | Δ true | RM score | Δ RM | Recall@10 | Δ Recall@10 | users +/− (McNemar z) | true swt (s) | true vtr | true ltr | mean duration (s) | distinct tags | KL est. | pairs |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, variant in results["variants"].items():
        for round_index, metrics in enumerate(variant["rounds"]):
            log = variant["logs"][round_index - 1] if round_index else {}
            lines.append(
                f"| {name} | {round_index} | {metrics['true_reward']:.4f} | {_pct(metrics['true_reward'], base['true_reward'])} | "
                f"{metrics['rm_reward']:.4f} | {_pct(metrics['rm_reward'], base['rm_reward'])} | "
                f"{metrics['recall@10']:.4f} | {_pct(metrics['recall@10'], base['recall@10'])} | "
                f"+{metrics['recall_gained']:.0f}/−{metrics['recall_lost']:.0f} ({metrics['recall_mcnemar_z']:+.2f}) | "
                f"{metrics['true_swt']:.1f} | {metrics['true_vtr']:.4f} | {metrics['true_ltr']:.4f} | "
                f"{metrics['mean_duration_s']:.0f} | {metrics['distinct_tags']:.2f} | {log.get('kl_estimate', float('nan')):.3f} | {log.get('pairs', '')} |"
            )
    return "\n".join(lines) + "\n"
