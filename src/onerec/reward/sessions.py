"""Reward-model examples: a user's impressions grouped into sessions, with per-item labels.

Rule (:class:`onerec.reward.config.SessionRule`): consecutive impressions of one user form a
session while the gap between neighbours is at most ``gap_minutes`` (timestamps in the data
set's unit, ms for KuaiRand and the simulator); sessions longer than ``max_items`` are cut into
chunks. Each session carries the user's positive history (impressions with
``history_column == 1``) strictly *before* the session's first impression, so nothing from the
session or the future leaks into the user representation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from onerec.errors import DataValidationError
from onerec.reward.config import SessionRule, TargetSpec

TIMESTAMP_UNITS_PER_MINUTE = {"ms": 60_000.0, "s": 60.0}


@dataclass
class RewardExamples:
    """Sessions as padded arrays (padding item = ``num_items``).

    Attributes:
        user_idx: ``[S]``; items/mask: ``[S, m]``; history: ``[S, H]`` (most recent last);
        labels: per target ``[S, m]`` float32 — binary 0/1, regression in model units
        (column / scale), 0 at padding; start_timestamp: ``[S]``.
    """

    user_idx: np.ndarray
    items: np.ndarray
    mask: np.ndarray
    history: np.ndarray
    labels: dict[str, np.ndarray]
    start_timestamp: np.ndarray

    def __len__(self) -> int:
        return int(self.user_idx.shape[0])

    def subset(self, index: np.ndarray) -> RewardExamples:
        """The sessions at ``index``."""
        return RewardExamples(
            self.user_idx[index],
            self.items[index],
            self.mask[index],
            self.history[index],
            {k: v[index] for k, v in self.labels.items()},
            self.start_timestamp[index],
        )


def session_ids(user: np.ndarray, timestamp: np.ndarray, gap: float, max_items: int) -> np.ndarray:
    """Session number of every row (rows sorted by user then time): ``[N]`` → ``[N]``."""
    n = len(user)
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = (user[1:] != user[:-1]) | (np.diff(timestamp) > gap)
    raw = np.cumsum(new) - 1  # gap sessions
    first_row = np.flatnonzero(new)
    position = np.arange(n) - first_row[raw]
    chunked_new = new | (position % max_items == 0)
    return np.cumsum(chunked_new) - 1


def build_reward_examples(
    interactions: pl.DataFrame,
    num_items: int,
    rule: SessionRule,
    targets: list[TargetSpec],
    max_history: int,
    timestamp_unit: str = "ms",
) -> RewardExamples:
    """Group ``interactions`` (canonical, sorted by user and time) into sessions with labels."""
    for spec in targets:
        if spec.column not in interactions.columns:
            raise DataValidationError(
                f"target {spec.name!r} needs column {spec.column!r}, which the data set lacks",
                field=spec.column,
                hint=f"available: {', '.join(interactions.columns)}; drop the target from [model.targets]",
            )
    if rule.history_column not in interactions.columns:
        raise DataValidationError(
            f"history column {rule.history_column!r} is missing",
            field=rule.history_column,
            hint="set data.sessions.history_column to a 0/1 feedback column",
        )
    frame = interactions.sort(["user_idx", "timestamp"], maintain_order=True)
    user = frame["user_idx"].to_numpy().astype(np.int64)
    item = frame["item_idx"].to_numpy().astype(np.int64)
    ts = frame["timestamp"].to_numpy().astype(np.int64)
    per_minute = TIMESTAMP_UNITS_PER_MINUTE.get(timestamp_unit, 60_000.0)
    sid = session_ids(user, ts, rule.gap_minutes * per_minute, rule.max_items)
    num_sessions = int(sid[-1]) + 1 if len(sid) else 0
    first = np.searchsorted(sid, np.arange(num_sessions))
    slot = np.arange(len(sid)) - first[sid]
    m = rule.max_items
    items = np.full((num_sessions, m), num_items, dtype=np.int64)
    items[sid, slot] = item
    mask = np.zeros((num_sessions, m), dtype=bool)
    mask[sid, slot] = True
    labels: dict[str, np.ndarray] = {}
    for spec in targets:
        values = frame[spec.column].cast(pl.Float64).fill_null(0.0).to_numpy()
        if spec.kind == "regression":
            values = np.maximum(values, 0.0) / spec.scale
        out = np.zeros((num_sessions, m), dtype=np.float32)
        out[sid, slot] = values
        labels[spec.name] = out
    session_user = user[first]
    session_start = ts[first]
    positive = frame[rule.history_column].cast(pl.Float64).fill_null(0.0).to_numpy() > 0.5
    history = _histories(
        user, item, ts, positive, session_user, session_start, num_items, max_history
    )
    return RewardExamples(session_user, items, mask, history, labels, session_start)


def _histories(
    user: np.ndarray,
    item: np.ndarray,
    ts: np.ndarray,
    positive: np.ndarray,
    session_user: np.ndarray,
    session_start: np.ndarray,
    num_items: int,
    max_history: int,
) -> np.ndarray:
    """``[S, H]``: each session's last ``H`` positive items strictly before its start."""
    history = np.full((len(session_user), max_history), num_items, dtype=np.int64)
    pos_user, pos_item, pos_ts = user[positive], item[positive], ts[positive]
    user_bounds = np.searchsorted(pos_user, np.arange(int(user.max()) + 2 if len(user) else 1))
    session_bounds = np.searchsorted(
        session_user, np.arange(int(user.max()) + 2 if len(user) else 1)
    )
    for u in np.unique(session_user):
        lo, hi = user_bounds[u], user_bounds[u + 1]
        if lo == hi:
            continue
        s_lo, s_hi = session_bounds[u], session_bounds[u + 1]
        ends = lo + np.searchsorted(pos_ts[lo:hi], session_start[s_lo:s_hi], side="left")
        for row, end in zip(range(s_lo, s_hi), ends, strict=True):
            start = max(lo, end - max_history)
            if end > start:
                history[row, max_history - (end - start) :] = pos_item[start:end]
    return history


def temporal_session_split(
    examples: RewardExamples, valid_fraction: float, test_fraction: float
) -> tuple[RewardExamples, RewardExamples, RewardExamples]:
    """Train / valid / test by session start time (the last ``test_fraction`` of sessions test)."""
    order = np.argsort(examples.start_timestamp, kind="stable")
    n = len(order)
    valid_start = int(round(n * (1.0 - valid_fraction - test_fraction)))
    test_start = int(round(n * (1.0 - test_fraction)))
    if valid_start == 0 or test_start in (valid_start, n):
        raise DataValidationError(
            f"{n} sessions are too few for a train/valid/test split",
            hint="use more data or change data.valid_fraction / data.test_fraction",
        )
    return (
        examples.subset(np.sort(order[:valid_start])),
        examples.subset(np.sort(order[valid_start:test_start])),
        examples.subset(np.sort(order[test_start:])),
    )


def session_length_counts(examples: RewardExamples) -> dict[int, int]:
    """How many sessions have 1, 2, … items (for the docs)."""
    lengths = examples.mask.sum(axis=1)
    values, counts = np.unique(lengths, return_counts=True)
    return {int(v): int(c) for v, c in zip(values, counts, strict=True)}
