"""Iterative Preference Alignment (OneRec §IPA): DPO on self-generated, reward-ranked sessions.

Iteration t (of ``iterations``):

1. sample a fraction ``user_fraction`` of the users;
2. beam-search ``num_candidates`` sessions per sampled user with the current policy M_t;
3. score them with the session scorer (reward model, or the simulator's truth) and combine
   the targets with ``reward_weights``; chosen = best, rejected = worst candidate;
4. M_{t+1} starts from M_t and trains for ``steps_per_iteration`` steps of
   ``DPO(pairs; reference = frozen M_t) + ntp_weight · next-token loss`` on the normal
   training data, through the common :class:`onerec.training.Trainer`.

Logged per iteration: mean combined reward of the candidates, of chosen and of rejected, their
margin, the DPO implicit-reward margin and accuracy on the pairs after training, and a KL
estimate: the mean of ``log π_{t+1}(y) − log π_t(y)`` over the new policy's top beam session
``y`` of each sampled user (a beam-based stand-in for KL(π_{t+1} ‖ π_t), which would need
unbiased samples).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from pydantic import Field
from torch import nn

from onerec.alignment.dpo import disable_dropout, dpo_loss, frozen_reference
from onerec.alignment.policy import SessionPolicy
from onerec.alignment.preferences import (
    PreferencePairs,
    SessionScorer,
    best_worst_pairs,
    combine_rewards,
    sample_users,
)
from onerec.config import StrictModel
from onerec.training import LossOutput, TrainConfig, Trainer, resolve_device, to_device


def default_ipa_train() -> TrainConfig:
    """Per-iteration optimiser settings: a short constant-LR run, no evaluation or checkpoints."""
    return TrainConfig(
        epochs=1000,
        max_steps=50,
        batch_size=16,
        lr=1e-4,
        warmup_steps=0,
        min_lr_ratio=1.0,
        eval_every_epochs=None,
        monitor="loss",
        progress=False,
    )


class IPAConfig(StrictModel):
    """Settings of :func:`run_ipa` (the ``[ipa]`` section of an alignment config)."""

    iterations: int = Field(default=3, ge=0, description="T: preference-alignment rounds")
    user_fraction: float = Field(
        default=0.01, gt=0.0, le=1.0, description="r: share of users sampled per round"
    )
    num_candidates: int = Field(
        default=8, ge=2, description="N: beam-searched sessions per sampled user"
    )
    beam_width: int = Field(default=16, ge=2)
    beta: float = Field(default=0.1, gt=0.0, description="DPO inverse temperature")
    label_smoothing: float = Field(default=0.0, ge=0.0, lt=0.5)
    ntp_weight: float = Field(default=1.0, ge=0.0, description="λ: weight of the next-token loss")
    use_dpo: bool = Field(default=True, description="False: NTP-only ablation with the same steps")
    disable_dropout: bool = Field(
        default=True, description="turn dropout off in the policy (DPO log-ratios)"
    )
    min_reward_gap: float = Field(
        default=0.0, ge=0.0, description="skip pairs whose best-worst gap is this small"
    )
    reward_weights: dict[str, float] = Field(
        default_factory=lambda: {"swt": 0.01, "vtr": 1.0, "wtr": 1.0, "ltr": 1.0}
    )
    seed: int = 0
    train: TrainConfig = Field(default_factory=default_ipa_train)


@dataclass
class IterationLog:
    """What one IPA round measured."""

    iteration: int
    users: int
    pairs: int
    candidate_reward: float
    chosen_reward: float
    rejected_reward: float
    reward_margin: float
    dpo_margin_after: float
    dpo_accuracy_after: float
    kl_estimate: float
    train_loss: float
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {**data, **extra}


@dataclass
class IPAResult:
    """The aligned policy and the per-iteration logs (index 0 = before alignment, if evaluated)."""

    model: nn.Module
    iterations: list[IterationLog]
    evaluations: list[dict[str, float]]


def pair_batches(
    policy: SessionPolicy, pairs: PreferencePairs, batch_size: int
) -> list[dict[str, torch.Tensor]]:
    """Preference pairs as tensor batches (histories + chosen/rejected sessions)."""
    batches = []
    for start in range(0, len(pairs), batch_size):
        part = slice(start, start + batch_size)
        batch = policy.history_tensors(pairs.users[part])
        batch.update(policy.session_tensors(pairs.chosen[part], "chosen"))
        batch.update(policy.session_tensors(pairs.rejected[part], "rejected"))
        batches.append(batch)
    return batches


@torch.no_grad()
def attach_reference_logps(
    policy: SessionPolicy,
    reference: nn.Module,
    batches: list[dict[str, torch.Tensor]],
    device: torch.device,
) -> None:
    """Add ``ref_chosen``/``ref_rejected`` (frozen M_t log-probabilities) to every batch, once."""
    for batch in batches:
        on_device = to_device(batch, device)
        assert isinstance(on_device, dict)
        batch["ref_chosen"] = policy.logps(reference, on_device, "chosen").cpu()
        batch["ref_rejected"] = policy.logps(reference, on_device, "rejected").cpu()


def _cycle_ntp(policy: SessionPolicy, seed_epoch: int) -> Iterator[Any]:
    for epoch in itertools.count(seed_epoch):
        batches = list(policy.ntp_batches(epoch))
        if not batches:
            return
        yield from batches


def _dpo_step_data(
    policy: SessionPolicy,
    pair_data: list[dict[str, torch.Tensor]],
    config: IPAConfig,
    steps: int,
    iteration: int,
) -> list[dict[str, Any]]:
    """``steps`` batches: preference batches cycled in a seeded order, each with an NTP batch."""
    rng = np.random.default_rng(config.seed * 1000 + iteration)
    ntp = _cycle_ntp(policy, iteration * 1000) if config.ntp_weight > 0 else iter(())
    out: list[dict[str, Any]] = []
    for step in range(steps):
        item: dict[str, Any] = {}
        if config.use_dpo and pair_data:
            if step % len(pair_data) == 0:
                order = rng.permutation(len(pair_data))
            item["pref"] = pair_data[int(order[step % len(pair_data)])]
        ntp_batch = next(ntp, None)
        if ntp_batch is not None:
            item["ntp"] = ntp_batch
        if item:
            out.append(item)
    return out


def _constant_epochs(steps: list[dict[str, Any]]) -> Callable[[int], list[dict[str, Any]]]:
    """The Trainer's per-epoch callable: the same step batches every epoch (max_steps stops it)."""

    def batches(epoch: int) -> list[dict[str, Any]]:
        del epoch
        return steps

    return batches


def make_ipa_loss(
    policy: SessionPolicy, config: IPAConfig
) -> Callable[[nn.Module, dict[str, Any]], LossOutput]:
    """``loss_fn(model, batch) = DPO(pref) + ntp_weight · NTP(ntp)`` for the Trainer."""

    def loss_fn(model: nn.Module, batch: dict[str, Any]) -> LossOutput:
        metrics: dict[str, float] = {}
        total: torch.Tensor | None = None
        if "pref" in batch:
            pref = batch["pref"]
            loss, chosen_r, rejected_r = dpo_loss(
                policy.logps(model, pref, "chosen"),
                policy.logps(model, pref, "rejected"),
                pref["ref_chosen"],
                pref["ref_rejected"],
                config.beta,
                config.label_smoothing,
            )
            total = loss
            metrics["dpo_loss"] = float(loss.detach())
            metrics["dpo_margin"] = float((chosen_r - rejected_r).mean())
        if "ntp" in batch and config.ntp_weight > 0:
            ntp = policy.ntp_loss(model, batch["ntp"])
            metrics["ntp_loss"] = float(ntp.detach())
            total = config.ntp_weight * ntp if total is None else total + config.ntp_weight * ntp
        if total is None:
            raise ValueError("an IPA step has neither preference pairs nor NTP data")
        return LossOutput(total, metrics)

    return loss_fn


@torch.no_grad()
def mean_loss(
    loss_fn: Callable[[nn.Module, dict[str, Any]], LossOutput],
    model: nn.Module,
    steps: list[dict[str, Any]],
    device: torch.device,
) -> float:
    """Mean IPA objective over some step batches (eval mode, no gradients)."""
    if not steps:
        return float("nan")
    model.eval()
    values = []
    for step in steps:
        on_device = to_device(step, device)
        assert isinstance(on_device, dict)
        values.append(float(loss_fn(model, on_device).loss))
    return float(np.mean(values))


@torch.no_grad()
def pair_statistics(
    policy: SessionPolicy,
    model: nn.Module,
    batches: list[dict[str, torch.Tensor]],
    beta: float,
    device: torch.device,
) -> tuple[float, float]:
    """Mean DPO implicit-reward margin and the share of pairs with a positive margin."""
    margins = []
    model.eval()
    for batch in batches:
        on_device = to_device(batch, device)
        assert isinstance(on_device, dict)
        chosen = policy.logps(model, on_device, "chosen").cpu() - batch["ref_chosen"]
        rejected = policy.logps(model, on_device, "rejected").cpu() - batch["ref_rejected"]
        margins.append(beta * (chosen - rejected))
    if not margins:
        return float("nan"), float("nan")
    margin = torch.cat(margins)
    return float(margin.mean()), float((margin > 0).float().mean())


@torch.no_grad()
def kl_estimate(
    policy: SessionPolicy,
    model: nn.Module,
    reference: nn.Module,
    users: np.ndarray,
    device: torch.device,
) -> float:
    """Mean ``log π(y) − log π_ref(y)`` over ``model``'s top beam session ``y`` per user."""
    top = policy.generate(model, users, 1)[:, 0]  # [U, m]
    alive = np.all(top >= 0, axis=1)
    if not alive.any():
        return float("nan")
    batch = policy.history_tensors(users[alive])
    batch.update(policy.session_tensors(top[alive], "top"))
    on_device = to_device(batch, device)
    assert isinstance(on_device, dict)
    model.eval()
    diff = policy.logps(model, on_device, "top") - policy.logps(reference, on_device, "top")
    return float(diff.mean())


def run_ipa(
    model: nn.Module,
    policy: SessionPolicy,
    scorer: SessionScorer,
    user_pool: np.ndarray,
    config: IPAConfig,
    evaluate_fn: Callable[[nn.Module], dict[str, float]] | None = None,
    log_fn: Callable[[IterationLog], None] | None = None,
) -> IPAResult:
    """Align ``model`` (trained in place) for ``config.iterations`` rounds; see the module doc.

    ``user_pool``: the users IPA may sample. ``evaluate_fn`` (optional) runs before the first
    round and after every round; its results land in ``IPAResult.evaluations`` and in each
    round's ``extra``.
    """
    device = resolve_device(config.train.device)
    model.to(device)
    if config.disable_dropout:
        disable_dropout(model)
    rng = np.random.default_rng(config.seed)
    evaluations = [evaluate_fn(model)] if evaluate_fn is not None else []
    logs: list[IterationLog] = []
    loss_fn = make_ipa_loss(policy, config)
    for iteration in range(config.iterations):
        users = sample_users(user_pool, config.user_fraction, rng)
        candidates = policy.generate(model, users, config.num_candidates)  # [U, N, m]
        rewards = combine_rewards(scorer(users, candidates), config.reward_weights)  # [U, N]
        pairs = best_worst_pairs(users, candidates, rewards, config.min_reward_gap)
        reference = frozen_reference(model).to(device)  # M_t, frozen
        batches = pair_batches(policy, pairs, config.train.batch_size)
        attach_reference_logps(policy, reference, batches, device)
        steps = _dpo_step_data(policy, batches, config, config.train.max_steps or 1, iteration)
        train_cfg = config.train.model_copy(
            update={"seed": config.train.seed + iteration, "eval_every_epochs": None}
        )
        Trainer(model, loss_fn, _constant_epochs(steps), train_cfg).fit()
        train_loss = mean_loss(loss_fn, model, steps[:8], device)
        margin, accuracy = pair_statistics(policy, model, batches, config.beta, device)
        log = IterationLog(
            iteration=iteration + 1,
            users=len(users),
            pairs=len(pairs),
            candidate_reward=float(np.nanmean(rewards))
            if np.isfinite(rewards).any()
            else float("nan"),
            chosen_reward=float(pairs.chosen_reward.mean()) if len(pairs) else float("nan"),
            rejected_reward=float(pairs.rejected_reward.mean()) if len(pairs) else float("nan"),
            reward_margin=float((pairs.chosen_reward - pairs.rejected_reward).mean())
            if len(pairs)
            else float("nan"),
            dpo_margin_after=margin,
            dpo_accuracy_after=accuracy,
            kl_estimate=kl_estimate(policy, model, reference, users, device),
            train_loss=train_loss,
        )
        if evaluate_fn is not None:
            evaluation = evaluate_fn(model)
            evaluations.append(evaluation)
            log.extra = dict(evaluation)
        logs.append(log)
        if log_fn is not None:
            log_fn(log)
    model.eval()
    return IPAResult(model, logs, evaluations)
