"""Preference pairs for IPA: sample users, score candidate sessions, pick best vs worst.

A *session scorer* maps ``(users [U], sessions [U, N, m])`` to per-target scores ``[U, N]``
(the reward model, or the simulator's exact rewards); :func:`combine_rewards` turns them into
one number per session with configurable weights. Candidates with a dead beam (any item -1)
score NaN and are never chosen or rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from onerec.reward.model import RewardModel
from onerec.sim.world import UserSimulator

SessionScorer = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]


def sample_users(candidates: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """``max(1, round(fraction · len(candidates)))`` users drawn without replacement, sorted."""
    count = min(len(candidates), max(1, int(round(fraction * len(candidates)))))
    return np.sort(rng.choice(candidates, size=count, replace=False))


def combine_rewards(
    per_target: Mapping[str, np.ndarray], weights: Mapping[str, float]
) -> np.ndarray:
    """``Σ_t weights[t] · per_target[t]``; every weighted target must be present."""
    missing = [name for name in weights if name not in per_target]
    if missing:
        raise KeyError(
            f"reward weights name targets the scorer does not produce: {missing}; has {sorted(per_target)}"
        )
    total: np.ndarray | None = None
    for name, weight in weights.items():
        term = weight * np.asarray(per_target[name], dtype=np.float64)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("reward weights are empty")
    return total


@dataclass
class PreferencePairs:
    """One (chosen, rejected) pair per user that had distinct candidate rewards."""

    users: np.ndarray  # [P]
    chosen: np.ndarray  # [P, m]
    rejected: np.ndarray  # [P, m]
    chosen_reward: np.ndarray  # [P]
    rejected_reward: np.ndarray  # [P]

    def __len__(self) -> int:
        return int(self.users.shape[0])


def best_worst_pairs(
    users: np.ndarray, candidates: np.ndarray, rewards: np.ndarray, min_gap: float = 0.0
) -> PreferencePairs:
    """Chosen = highest-reward candidate, rejected = lowest, per user.

    ``candidates [U, N, m]`` (``-1`` = dead beam), ``rewards [U, N]``. Users with fewer than two
    valid candidates, or whose best and worst differ by ``<= min_gap``, give no pair.
    """
    valid = np.all(candidates >= 0, axis=2) & np.isfinite(rewards)  # [U, N]
    high = np.where(valid, rewards, -np.inf)
    low = np.where(valid, rewards, np.inf)
    best, worst = high.argmax(axis=1), low.argmin(axis=1)
    rows = np.arange(len(users))
    gap = high[rows, best] - low[rows, worst]
    keep = (valid.sum(axis=1) >= 2) & (gap > min_gap)
    return PreferencePairs(
        users=users[keep],
        chosen=candidates[rows, best][keep],
        rejected=candidates[rows, worst][keep],
        chosen_reward=high[rows, best][keep],
        rejected_reward=low[rows, worst][keep],
    )


def simulator_scorer(simulator: UserSimulator) -> SessionScorer:
    """Exact expected rewards from the simulator (item indices must be the simulator's)."""

    def score(users: np.ndarray, sessions: np.ndarray) -> dict[str, np.ndarray]:
        batch, num, length = sessions.shape
        safe = np.where(sessions >= 0, sessions, 0).reshape(batch * num, length)
        rewards = simulator.true_session_rewards(np.repeat(users, num), safe)
        dead = np.any(sessions < 0, axis=2)
        return {k: np.where(dead, np.nan, v.reshape(batch, num)) for k, v in rewards.items()}

    return score


def reward_model_scorer(
    model: RewardModel,
    histories: Mapping[int, np.ndarray] | list[np.ndarray],
    batch_size: int = 1024,
) -> SessionScorer:
    """Session rewards predicted by ``model``; ``histories[user]`` = the user's positive items."""
    max_history = model.config.max_history
    pad = model.config.num_items

    def history_rows(users: np.ndarray) -> np.ndarray:
        rows = np.full((len(users), max_history), pad, dtype=np.int64)
        for row, user in enumerate(users):
            items = np.asarray(histories[int(user)], dtype=np.int64)[-max_history:]
            if len(items):
                rows[row, max_history - len(items) :] = items
        return rows

    @torch.no_grad()
    def score(users: np.ndarray, sessions: np.ndarray) -> dict[str, np.ndarray]:
        batch, num, length = sessions.shape
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        flat_users = np.repeat(users, num)
        flat = np.where(sessions >= 0, sessions, pad).reshape(batch * num, length)
        history = history_rows(flat_users)
        out: dict[str, list[np.ndarray]] = {}
        for start in range(0, len(flat_users), batch_size):
            part = slice(start, start + batch_size)
            inputs = {
                "user_idx": torch.from_numpy(flat_users[part]).to(device),
                "history": torch.from_numpy(history[part]).to(device),
                "items": torch.from_numpy(flat[part]).to(device),
            }
            for name, value in model(inputs).items():
                out.setdefault(name, []).append(value.double().cpu().numpy())
        model.train(was_training)
        dead = np.any(sessions < 0, axis=2)
        return {
            k: np.where(dead, np.nan, np.concatenate(v).reshape(batch, num)) for k, v in out.items()
        }

    return score
