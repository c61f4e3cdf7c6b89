"""Preference-pair construction and session scorers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from onerec.alignment import (
    best_worst_pairs,
    combine_rewards,
    reward_model_scorer,
    sample_users,
    simulator_scorer,
)
from onerec.reward import RewardConfig, RewardModel
from onerec.sim import SimConfig, UserSimulator


def test_sample_users_fraction_and_uniqueness() -> None:
    rng = np.random.default_rng(0)
    pool = np.arange(1000)
    picked = sample_users(pool, 0.01, rng)
    assert len(picked) == 10 and len(np.unique(picked)) == 10 and np.all(np.diff(picked) > 0)
    assert len(sample_users(pool[:20], 0.01, rng)) == 1  # at least one user
    assert len(sample_users(pool[:5], 1.0, rng)) == 5


def test_combine_rewards_weights_targets() -> None:
    combined = combine_rewards(
        {"swt": np.array([100.0, 10.0]), "vtr": np.array([0.5, 0.2])}, {"swt": 0.01, "vtr": 2.0}
    )
    np.testing.assert_allclose(combined, [1.0 + 1.0, 0.1 + 0.4])
    with pytest.raises(KeyError, match="ltr"):
        combine_rewards({"swt": np.array([1.0])}, {"ltr": 1.0})


def test_best_worst_pairs_skip_dead_beams_and_ties() -> None:
    users = np.array([7, 8, 9])
    candidates = np.array(
        [
            [[1, 2], [3, 4], [5, 6]],
            [[1, 2], [-1, -1], [5, 6]],  # one dead beam
            [[1, 2], [3, 4], [-1, -1]],  # equal rewards on the live ones
        ]
    )
    rewards = np.array([[0.5, 0.9, 0.1], [0.3, 99.0, 0.2], [0.4, 0.4, np.nan]])
    pairs = best_worst_pairs(users, candidates, rewards)
    assert pairs.users.tolist() == [7, 8]
    assert pairs.chosen.tolist() == [[3, 4], [1, 2]]  # the dead beam's 99 is ignored
    assert pairs.rejected.tolist() == [[5, 6], [5, 6]]
    np.testing.assert_allclose(pairs.chosen_reward - pairs.rejected_reward, [0.8, 0.1])
    assert len(best_worst_pairs(users, candidates, rewards, min_gap=0.5)) == 1


def test_simulator_scorer_matches_the_simulator() -> None:
    sim = UserSimulator(SimConfig(num_users=5, num_items=30, seed=1))
    sessions = np.array([[[0, 1, 2], [3, 4, 5]], [[6, 7, 8], [-1, -1, -1]]])
    scores = simulator_scorer(sim)(np.array([1, 2]), sessions)
    assert scores["vtr"].shape == (2, 2)
    assert scores["swt"][0, 1] == pytest.approx(sim.true_session_reward(1, [3, 4, 5])["swt"])
    assert np.isnan(scores["vtr"][1, 1])


def test_reward_model_scorer_uses_histories_and_marks_dead_beams() -> None:
    torch.manual_seed(0)
    model = RewardModel(
        RewardConfig(num_users=3, num_items=10, d_model=16, num_heads=2, dropout=0.0)
    )
    histories = [np.array([1, 2]), np.array([], dtype=np.int64), np.array([3])]
    scorer = reward_model_scorer(model, histories)
    sessions = np.array([[[0, 1, 2], [4, 5, 6]], [[0, 1, 2], [-1, 3, 4]]])
    scores = scorer(np.array([0, 1]), sessions)
    assert set(scores) == {"swt", "vtr", "wtr", "ltr"}
    assert np.isfinite(scores["vtr"][0]).all() and np.isnan(scores["vtr"][1, 1])
    # Same session, different user and history → different score.
    assert scores["vtr"][0, 0] != scores["vtr"][1, 0]
    direct = model(
        {
            "user_idx": torch.tensor([0]),
            "history": torch.tensor([[10] * 18 + [1, 2]]),
            "items": torch.tensor([[4, 5, 6]]),
        }
    )
    assert scores["vtr"][0, 1] == pytest.approx(float(direct["vtr"][0].detach()), rel=1e-5)
