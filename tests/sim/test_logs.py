"""Logged interactions from the simulator: schema, sessions and the logging policy."""

from __future__ import annotations

import numpy as np
import polars as pl

from onerec.sim import LoggingPolicyConfig, SimConfig, UserSimulator, simulate_logs
from onerec.sim.logs import (
    INTERACTION_COLUMNS,
    logging_policy_log_probs,
    sample_sessions,
    write_simulated_dataset,
)


def _small() -> UserSimulator:
    policy = LoggingPolicyConfig(sessions_per_user=4, session_length=5)
    return UserSimulator(SimConfig(num_users=30, num_items=120, num_tags=5, seed=1, logging=policy))


def test_simulated_logs_have_the_canonical_schema_and_sessions() -> None:
    sim = _small()
    logs = simulate_logs(sim)
    assert tuple(logs.columns) == INTERACTION_COLUMNS
    assert logs.height == 30 * 4 * 5
    assert logs["user_id"].is_sorted()
    per_user_sorted = (
        logs.group_by("user_id").agg(pl.col("timestamp").is_sorted().alias("ok"))["ok"].all()
    )
    assert per_user_sorted
    # A 30-minute gap splits each user's impressions back into the logged sessions of 5 distinct items.
    gaps = logs.with_columns(
        new=(pl.col("timestamp").diff().over("user_id").fill_null(10**12) > 30 * 60 * 1000).cast(
            pl.Int32
        )
    ).with_columns(session=pl.col("new").cum_sum())
    sizes = gaps.group_by("session").agg(pl.len(), pl.col("item_id").n_unique().alias("distinct"))
    assert (sizes["len"] == 5).all() and (sizes["distinct"] == 5).all()
    assert set(np.unique(logs["click"].to_numpy())) <= {0, 1}
    assert (logs["play_time_ms"] >= 0).all()


def test_logs_are_reproducible_in_seed() -> None:
    sim = _small()
    assert simulate_logs(sim, seed=5).equals(simulate_logs(sim, seed=5))
    assert not simulate_logs(sim, seed=5).equals(simulate_logs(sim, seed=6))


def test_personalised_logging_beats_uniform_exposure() -> None:
    sim = _small()
    personal = simulate_logs(
        sim, LoggingPolicyConfig(epsilon=0.0, temperature_inverse=2.0, sessions_per_user=20), seed=0
    )
    uniform = simulate_logs(sim, LoggingPolicyConfig(epsilon=1.0, sessions_per_user=20), seed=0)
    assert personal["long_view"].mean() > uniform["long_view"].mean()  # type: ignore[operator]


def test_gumbel_top_k_draws_distinct_items_with_the_policy_probabilities() -> None:
    probs = np.array([[0.5, 0.3, 0.15, 0.05]])
    sessions = sample_sessions(np.log(probs), 20_000, 2, np.random.default_rng(0))  # [1, S, 2]
    assert np.all(sessions[0, :, 0] != sessions[0, :, 1])
    first = np.bincount(sessions[0, :, 0], minlength=4) / 20_000
    np.testing.assert_allclose(first, probs[0], atol=0.015)
    # Second item given first = 0: Plackett–Luce gives 0.3 / 0.5 = 0.6 for item 1.
    second_given_zero = sessions[0, sessions[0, :, 0] == 0, 1]
    assert abs((second_given_zero == 1).mean() - 0.6) < 0.03


def test_logging_policy_is_normalised_and_has_a_uniform_floor() -> None:
    sim = _small()
    policy = LoggingPolicyConfig(epsilon=0.2)
    log_probs = logging_policy_log_probs(sim, np.arange(3), policy)
    np.testing.assert_allclose(np.exp(log_probs).sum(axis=1), 1.0, rtol=1e-9)
    assert np.exp(log_probs).min() >= 0.2 / sim.num_items - 1e-12


def test_write_simulated_dataset(tmp_path) -> None:
    sim = _small()
    logs = write_simulated_dataset(sim, tmp_path / "simdata", show_progress=False)
    read = pl.read_parquet(tmp_path / "simdata" / "interactions.parquet")
    assert read.equals(logs)
    items = pl.read_parquet(tmp_path / "simdata" / "items.parquet")
    assert items.height == sim.num_items and {"item_id", "duration_ms", "tags"} <= set(
        items.columns
    )
    assert UserSimulator.load(tmp_path / "simdata" / "world").true_session_reward(
        0, [1, 2]
    ) == sim.true_session_reward(0, [1, 2])
