"""Serving-time condition strategies: fixed, max, mean, time-division (stateful per user)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from onerec.retrieval.condition import ConditionError, ConditionNormalizer
from onerec.retrieval.strategies import ConditionPlanner, user_condition_stats


def _planner(**kwargs: object) -> ConditionPlanner:
    norm = ConditionNormalizer.fit(np.arange(1, 101, dtype=float), "bucket", num_levels=4)
    # user 0: max 3, mean 1.4; user 1: nothing logged.
    return ConditionPlanner(norm, np.array([3.0, np.nan]), np.array([1.4, np.nan]), **kwargs)  # type: ignore[arg-type]


def test_fixed_needs_a_value_and_encodes_it() -> None:
    planner = _planner()
    assert planner.position(0, "fixed", 80.0) == 3.0
    with pytest.raises(ConditionError, match="needs a condition"):
        planner.position(0, "fixed")


def test_max_and_mean_use_history_and_fall_back_to_median() -> None:
    planner = _planner()
    assert planner.position(0, "max") == 3.0
    assert planner.position(0, "mean") == 1.0  # 1.4 snapped to the nearest trained bucket
    median_bucket = float(planner.normalizer.encode([planner.normalizer.median])[0])
    assert planner.position(1, "max") == median_bucket
    assert planner.position(None, "mean") == median_bucket  # unknown user


def test_tdm_cycles_per_user_independently() -> None:
    planner = _planner(tdm_values=[10.0, 60.0, 90.0])  # buckets 0, 2, 3
    seq_a = [planner.position(0, "tdm") for _ in range(4)]
    seq_b = [planner.position(1, "tdm") for _ in range(2)]
    assert seq_a == [0.0, 2.0, 3.0, 0.0]
    assert seq_b == [0.0, 2.0]  # user 1 has its own counter
    assert planner.request_count(0) == 4 and planner.request_count(1) == 2
    # A per-call list: the 5th request of user 0 takes index 4 % 2 = 0 → 90 → bucket 3.
    assert planner.position(0, "tdm", tdm_values=[90.0, 10.0]) == 3.0
    planner.reset()
    assert planner.request_count(0) == 0


def test_tdm_counter_is_thread_safe() -> None:
    planner = _planner(tdm_values=[10.0, 90.0])

    def hammer() -> None:
        for _ in range(200):
            planner.position(7, "tdm")

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert planner.request_count(7) == 800


def test_unknown_strategy_is_a_clear_error() -> None:
    with pytest.raises(ConditionError, match="unknown strategy"):
        _planner().position(0, "median")  # type: ignore[arg-type]


def test_user_condition_stats() -> None:
    users = np.array([0, 0, 0, 2, 2])
    pos = np.array([1.0, 3.0, np.nan, 0.0, 2.0])
    cmax, cmean = user_condition_stats(users, pos, num_users=3)
    assert cmax[0] == 3.0 and cmean[0] == 2.0
    assert np.isnan(cmax[1]) and np.isnan(cmean[1])
    assert cmax[2] == 2.0 and cmean[2] == 1.0
