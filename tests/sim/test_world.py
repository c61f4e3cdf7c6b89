"""The simulator's exact expectations agree with its sampled feedback, and its effects point
the documented way."""

from __future__ import annotations

import numpy as np
import pytest

from onerec.sim import SimConfig, UserSimulator
from onerec.sim.world import lognormal_capped_mean


@pytest.fixture(scope="module")
def simulator() -> UserSimulator:
    return UserSimulator(SimConfig(num_users=50, num_items=200, num_tags=6, seed=3))


def test_lognormal_capped_mean_matches_monte_carlo() -> None:
    rng = np.random.default_rng(0)
    for mu, sigma, cap in ((0.0, 1.0, 2.0), (1.5, 0.4, 3.0), (-2.0, 2.0, 0.5)):
        draws = np.minimum(np.exp(mu + sigma * rng.standard_normal(400_000)), cap)
        exact = float(lognormal_capped_mean(np.array(mu), sigma, cap))
        assert exact == pytest.approx(draws.mean(), rel=5e-3)
    # A cap far above the mass gives the plain log-normal mean exp(mu + σ²/2).
    assert float(lognormal_capped_mean(np.array(0.0), 0.5, 1e9)) == pytest.approx(np.exp(0.125))


def test_world_is_deterministic_in_seed() -> None:
    a = UserSimulator(SimConfig(num_users=20, num_items=50, seed=7))
    b = UserSimulator(SimConfig(num_users=20, num_items=50, seed=7))
    c = UserSimulator(SimConfig(num_users=20, num_items=50, seed=8))
    assert np.array_equal(a.item_vectors, b.item_vectors)
    assert a.true_session_reward(1, [3, 4, 5]) == b.true_session_reward(1, [3, 4, 5])
    assert not np.array_equal(a.item_vectors, c.item_vectors)


def test_exact_expectations_match_sampled_feedback(simulator: UserSimulator) -> None:
    # Raise the rare rates so a few thousand draws measure them well.
    sim = simulator.with_config(
        simulator.config.model_copy(update={"like_bias": -1.0, "follow_bias": -2.0})
    )
    users = np.array([0, 1, 2, 3])
    sessions = np.array(
        [[0, 1, 2, 3, 4], [5, 6, 7, 8, 9], [10, 10, 10, 11, 12], [13, 14, 15, 16, 17]]
    )
    repeats = 6000
    rng = np.random.default_rng(1)
    draws = sim.sample_feedback(
        np.repeat(users, repeats), np.repeat(sessions, repeats, axis=0), rng
    )
    exact = sim.expected_item_feedback(users, sessions)
    for name, expected in exact.items():
        sampled = draws[name].astype(np.float64).reshape(len(users), repeats, -1)
        mean = sampled.mean(axis=1)
        # Binary outcomes: the exact Bernoulli spread (a rare event may have no draw at all).
        spread = (
            np.sqrt(expected * (1 - expected)) if name != "play_time_ms" else sampled.std(axis=1)
        )
        assert np.all(np.abs(mean - expected) <= 5 * spread / np.sqrt(repeats) + 1.0 / repeats), (
            name
        )
    rewards = sim.true_session_rewards(users, sessions)
    np.testing.assert_allclose(rewards["swt"], exact["play_time_ms"].sum(axis=1) / 1000.0)
    np.testing.assert_allclose(rewards["vtr"], exact["long_view"].mean(axis=1))


def test_long_view_follows_the_kuairand_rule(simulator: UserSimulator) -> None:
    users = np.arange(50)
    sessions = np.random.default_rng(0).integers(0, 200, size=(50, 5))
    draws = simulator.sample_feedback(users, sessions, np.random.default_rng(2))
    duration = simulator.item_duration_ms[sessions]
    rule = draws["play_time_ms"] >= np.minimum(18_000.0, duration)
    assert np.array_equal(draws["long_view"].astype(bool), rule)
    assert np.all(draws["play_time_ms"] <= duration * simulator.config.watch_ratio_cap + 1e-6)
    assert np.all(draws["like"] <= draws["click"]) and np.all(draws["follow"] <= draws["click"])


def test_position_and_tag_repetition_lower_engagement(simulator: UserSimulator) -> None:
    tags = simulator.item_tags
    tag = int(tags[0])
    same = np.flatnonzero(tags == tag)[:3]
    other = [
        int(np.flatnonzero(tags == t)[0]) for t in range(simulator.config.num_tags) if t != tag
    ][:2]
    diverse = [int(same[0]), *other]
    repeated = [int(same[0]), int(same[1]), int(same[2])]
    click_diverse = simulator.expected_item_feedback(np.array([0]), np.array([diverse]))["click"][0]
    click_repeated = simulator.expected_item_feedback(np.array([0]), np.array([repeated]))["click"][
        0
    ]
    # Same first item, same position → same probability; repeats of the tag are penalised.
    assert click_diverse[0] == pytest.approx(click_repeated[0])
    solo = simulator.expected_item_feedback(np.array([0, 0]), np.array([[same[1]], [same[2]]]))[
        "click"
    ][:, 0]
    assert np.all(click_repeated[1:] < solo)
    # Fatigue: the same item is engaged less at a later position.
    early = simulator.expected_item_feedback(np.array([0]), np.array([[other[0], other[1]]]))[
        "click"
    ][0, 0]
    late = simulator.expected_item_feedback(np.array([0]), np.array([[other[1], other[0]]]))[
        "click"
    ][0, 1]
    assert late < early


def test_higher_affinity_means_more_watch_time(simulator: UserSimulator) -> None:
    user = 5
    aff = simulator.affinity(np.array([user]), np.arange(200)[None, :])[0]
    best = np.argsort(-aff)[:5]
    worst = np.argsort(aff)[:5]
    good = simulator.true_session_reward(user, best.tolist())
    bad = simulator.true_session_reward(user, worst.tolist())
    assert good["vtr"] > bad["vtr"] and good["ltr"] > bad["ltr"] and good["wtr"] > bad["wtr"]


def test_save_and_load_round_trip(tmp_path, simulator: UserSimulator) -> None:
    simulator.save(tmp_path / "world")
    loaded = UserSimulator.load(tmp_path / "world")
    assert loaded.config == simulator.config
    assert loaded.true_session_reward(2, [1, 2, 3]) == simulator.true_session_reward(2, [1, 2, 3])


def test_load_missing_world_raises_checkpoint_error(tmp_path) -> None:
    from onerec.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not a saved simulator"):
        UserSimulator.load(tmp_path)
