"""Reward model R(user, session) → per-target predictions, trained on logged feedback."""

from onerec.reward.config import (
    RewardConfig,
    RewardDataConfig,
    RewardRecipe,
    SessionRule,
    TargetSpec,
)
from onerec.reward.model import RewardModel
from onerec.reward.train import load_reward_model, save_reward_model, train_reward

__all__ = [
    "RewardConfig",
    "RewardDataConfig",
    "RewardModel",
    "RewardRecipe",
    "SessionRule",
    "TargetSpec",
    "load_reward_model",
    "save_reward_model",
    "train_reward",
]
