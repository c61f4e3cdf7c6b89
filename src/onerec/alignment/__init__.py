"""Preference alignment: the DPO loss and Iterative Preference Alignment (IPA)."""

from onerec.alignment.dpo import disable_dropout, dpo_loss, frozen_reference
from onerec.alignment.ipa import IPAConfig, IPAResult, IterationLog, run_ipa
from onerec.alignment.policy import GeneratorPolicy, SessionPolicy
from onerec.alignment.preferences import (
    PreferencePairs,
    best_worst_pairs,
    combine_rewards,
    reward_model_scorer,
    sample_users,
    simulator_scorer,
)

__all__ = [
    "GeneratorPolicy",
    "IPAConfig",
    "IPAResult",
    "IterationLog",
    "PreferencePairs",
    "SessionPolicy",
    "best_worst_pairs",
    "combine_rewards",
    "disable_dropout",
    "dpo_loss",
    "frozen_reference",
    "reward_model_scorer",
    "run_ipa",
    "sample_users",
    "simulator_scorer",
]
