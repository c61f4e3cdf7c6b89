"""Serving-time condition strategies, chosen per call.

* ``fixed`` — a value the caller gives (raw units, e.g. 30000 ms of play time, or a rating 4.5).
* ``max`` — the largest condition the user has shown in their logged past.
* ``mean`` — the user's average condition, averaged in *normalised* (quantile / bucket) space so
  one very long view in a heavy-tailed play-time log does not dominate it.
* ``tdm`` — time-division: successive requests of the same user cycle through a list of
  conditions (``tdm_values`` raw, default the training quantiles 0.125 / 0.375 / 0.625 / 0.875,
  the centres of the four quarters of the training distribution);
  the per-user request counter lives in the :class:`ConditionPlanner` (thread-safe), so each
  call advances it.
* ``mix`` — no single condition: items are ranked by ``p(item | user)`` with the condition
  marginalised out over its training distribution (:mod:`onerec.retrieval.mixture`) — the
  strategy for plain relevance (recall), at the cost of one user vector per condition level.

Users with no logged condition fall back to the training median for ``max`` and ``mean``.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Literal

import numpy as np

from onerec.retrieval.condition import ConditionError, ConditionNormalizer

Strategy = Literal["fixed", "max", "mean", "tdm", "mix"]
STRATEGIES: tuple[str, ...] = ("fixed", "max", "mean", "tdm", "mix")
# Equal probability mass: each level stands for a quarter of the training distribution, so over
# one cycle the conditions are spread as the logged targets are.
DEFAULT_TDM_QUANTILES = (0.125, 0.375, 0.625, 0.875)


class ConditionPlanner:
    """Turns (user, strategy) into a condition position; holds the per-user ``tdm`` state."""

    def __init__(
        self,
        normalizer: ConditionNormalizer,
        user_condition_max: np.ndarray,
        user_condition_mean: np.ndarray,
        tdm_values: Sequence[float] | None = None,
    ) -> None:
        """``user_condition_max/mean [num_users]`` are positions (``NaN`` = no logged value)."""
        self.normalizer = normalizer
        self.user_condition_max = np.asarray(user_condition_max, dtype=np.float32)
        self.user_condition_mean = np.asarray(user_condition_mean, dtype=np.float32)
        if tdm_values is None:
            tdm_values = normalizer.value_at_quantile(DEFAULT_TDM_QUANTILES).tolist()
        if not len(tdm_values):
            raise ConditionError("tdm needs at least one condition value")
        self.tdm_values = [float(v) for v in tdm_values]
        self._requests: dict[int, int] = {}
        self._lock = threading.Lock()
        self._median_position = float(normalizer.encode([normalizer.median])[0])

    def position(
        self,
        user_idx: int | None,
        strategy: Strategy = "fixed",
        value: float | None = None,
        tdm_values: Sequence[float] | None = None,
    ) -> float:
        """Condition position for one request. ``tdm`` advances the user's request counter."""
        if strategy == "fixed":
            if value is None:
                raise ConditionError("strategy 'fixed' needs a condition value (--condition X)")
            return float(self.normalizer.encode([value])[0])
        if strategy in ("max", "mean"):
            table = self.user_condition_max if strategy == "max" else self.user_condition_mean
            known = user_idx is not None and 0 <= user_idx < len(table)
            pos = float(table[user_idx]) if known and user_idx is not None else float("nan")
            if not np.isfinite(pos):
                pos = self._median_position
            return float(self.normalizer.snap(np.array([pos]))[0])
        if strategy == "tdm":
            levels = [float(v) for v in tdm_values] if tdm_values else self.tdm_values
            key = -1 if user_idx is None else int(user_idx)
            with self._lock:
                count = self._requests.get(key, 0)
                self._requests[key] = count + 1
            return float(self.normalizer.encode([levels[count % len(levels)]])[0])
        if strategy == "mix":
            raise ConditionError(
                "strategy 'mix' marginalises the condition out, so it has no single position; "
                "Retriever.retrieve(strategy='mix') scores every level"
            )
        raise ConditionError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}")

    def request_count(self, user_idx: int | None) -> int:
        """How many ``tdm`` requests this user has made so far."""
        return self._requests.get(-1 if user_idx is None else int(user_idx), 0)

    def reset(self) -> None:
        """Forget every user's ``tdm`` position."""
        with self._lock:
            self._requests.clear()


def user_condition_stats(
    user_idx: np.ndarray, positions: np.ndarray, num_users: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-user max and mean of finite condition positions; ``NaN`` where a user has none."""
    finite = np.isfinite(positions)
    users, pos = user_idx[finite], positions[finite].astype(np.float64)
    counts = np.bincount(users, minlength=num_users)
    sums = np.bincount(users, weights=pos, minlength=num_users)
    maxes = np.full(num_users, -np.inf)
    np.maximum.at(maxes, users, pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    maxes = np.where(counts > 0, maxes, np.nan)
    return maxes.astype(np.float32), means.astype(np.float32)
