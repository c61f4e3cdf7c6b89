"""Session-wise targets: for a user at a cut position, the next ``m`` positively-engaged items.

For one user with time-ordered interactions ``r_0 … r_{n-1}`` and the positions ``P = [p_0,
p_1, …]`` of the positive ones (see :class:`PositiveRule`), session ``k`` is

- targets: the items at positions ``P[k*stride : k*stride + m]`` (exactly ``m`` of them — users
  whose remaining positives are fewer give no further session),
- cut position: ``P[k*stride]`` (the first target's position in the user's full log),
- history: the items before the cut — all of them (``history="all"``) or only the positive ones
  (``history="positive"``, the default, OneRec's behaviour sequence) — last ``max_history``;
  a session needs at least ``min_history`` history items.

``stride`` defaults to ``m`` (non-overlapping sessions); ``stride=1`` makes every positive a cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from pydantic import model_validator

from onerec.config import StrictModel
from onerec.data.schema import FEEDBACK_COLUMNS, ITEM_IDX, TIMESTAMP, USER_IDX
from onerec.errors import DataValidationError


class PositiveRule(StrictModel):
    """Which interactions count as positive engagement: any enabled criterion suffices.

    ``all=True`` treats every interaction as positive (implicit data such as Amazon reviews).
    ``play_fraction=f`` is positive when ``play_time_ms >= f * duration_ms`` (and duration > 0).
    ``min_rating=x`` is positive when ``rating >= x``.
    """

    all: bool = False
    long_view: bool = False
    like: bool = False
    follow: bool = False
    click: bool = False
    comment: bool = False
    forward: bool = False
    play_fraction: float | None = None
    min_rating: float | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> PositiveRule:
        flags = (
            self.all,
            self.long_view,
            self.like,
            self.follow,
            self.click,
            self.comment,
            self.forward,
        )
        if not any(flags) and self.play_fraction is None and self.min_rating is None:
            raise ValueError(
                "enable at least one positive criterion (e.g. long_view=true, or all=true)"
            )
        if self.play_fraction is not None and self.play_fraction <= 0:
            raise ValueError("play_fraction must be > 0")
        return self

    @classmethod
    def kuairand_default(cls) -> PositiveRule:
        """Long view, like or follow: the engagement signals OneRec optimises on short video."""
        return cls(long_view=True, like=True, follow=True)

    def required_columns(self) -> list[str]:
        """Interaction columns this rule reads."""
        needed = [
            f
            for f in ("long_view", "like", "follow", "click", "comment", "forward")
            if getattr(self, f)
        ]
        if self.play_fraction is not None:
            needed += ["play_time_ms", "duration_ms"]
        if self.min_rating is not None:
            needed.append("rating")
        return needed

    def mask(self, interactions: pl.DataFrame) -> np.ndarray:
        """Boolean ``[n_rows]`` array: which rows are positive."""
        if self.all:
            return np.ones(interactions.height, dtype=bool)
        missing = [c for c in self.required_columns() if c not in interactions.columns]
        if missing:
            present = [c for c in FEEDBACK_COLUMNS if c in interactions.columns]
            raise DataValidationError(
                f"the positive rule needs column(s) {', '.join(missing)} but the data has "
                f"feedback columns [{', '.join(present)}]",
                field=missing[0],
                hint="choose criteria the data has, or all=true for implicit data",
            )
        positive = np.zeros(interactions.height, dtype=bool)
        for flag in ("long_view", "like", "follow", "click", "comment", "forward"):
            if getattr(self, flag):
                positive |= interactions[flag].to_numpy() > 0
        if self.play_fraction is not None:
            play = interactions["play_time_ms"].to_numpy().astype(np.float64)
            duration = interactions["duration_ms"].to_numpy().astype(np.float64)
            positive |= (duration > 0) & (play >= self.play_fraction * duration)
        if self.min_rating is not None:
            positive |= interactions["rating"].to_numpy() >= self.min_rating
        return positive


class SessionConfig(StrictModel):
    """How sessions are cut (see the module docstring)."""

    positive: PositiveRule = PositiveRule(all=True)
    session_size: int = 5
    stride: int | None = None
    max_history: int = 20
    min_history: int = 1
    history: Literal["positive", "all"] = "positive"


@dataclass
class SessionExamples:
    """Session-wise examples.

    Attributes:
        user_idx: ``[S]`` int64.
        cut_position: ``[S]`` int64, the first target's position in the user's full log.
        cut_timestamp: ``[S]`` int64, that interaction's timestamp.
        histories: ``S`` int64 item_idx arrays (oldest first).
        targets: ``[S, m]`` int64 item_idx of the next m positive items, in time order.
        feedback: feedback column → ``[S, m]`` values of the target interactions.
    """

    user_idx: np.ndarray
    cut_position: np.ndarray
    cut_timestamp: np.ndarray
    histories: list[np.ndarray]
    targets: np.ndarray
    feedback: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.user_idx)


def build_sessions(
    interactions: pl.DataFrame, config: SessionConfig | None = None
) -> SessionExamples:
    """Cut ``interactions`` (a prepared table) into session examples; see the module docstring."""
    config = config or SessionConfig()
    m = config.session_size
    stride = config.stride or m
    if m < 1 or stride < 1 or config.max_history < 1 or config.min_history < 0:
        raise ValueError("session_size, stride and max_history must be >= 1; min_history >= 0")
    ordered = interactions.sort([USER_IDX, TIMESTAMP], maintain_order=True)
    positive = config.positive.mask(ordered)
    users = ordered[USER_IDX].to_numpy()
    items = ordered[ITEM_IDX].to_numpy().astype(np.int64)
    times = ordered[TIMESTAMP].to_numpy()
    feedback_cols = [c for c in FEEDBACK_COLUMNS if c in ordered.columns]
    feedback_all = {c: ordered[c].to_numpy() for c in feedback_cols}
    boundaries = np.flatnonzero(np.diff(users)) + 1
    starts = np.concatenate([[0], boundaries]) if len(users) else np.array([], dtype=np.int64)
    ends = (
        np.concatenate([boundaries, [len(users)]]) if len(users) else np.array([], dtype=np.int64)
    )

    out_users: list[int] = []
    out_cut: list[int] = []
    out_time: list[int] = []
    out_hist: list[np.ndarray] = []
    out_rows: list[np.ndarray] = []
    for start, end in zip(starts, ends, strict=True):
        user_pos = np.flatnonzero(positive[start:end])  # positions within this user's log
        for k in range(0, len(user_pos) - m + 1, stride):
            target_pos = user_pos[k : k + m]
            cut = int(target_pos[0])
            if config.history == "positive":
                history = items[start + user_pos[:k]]
            else:
                history = items[start : start + cut]
            history = history[-config.max_history :]
            if len(history) < config.min_history:
                continue
            out_users.append(int(users[start]))
            out_cut.append(cut)
            out_time.append(int(times[start + cut]))
            out_hist.append(history)
            out_rows.append(start + target_pos)
    rows = np.stack(out_rows) if out_rows else np.zeros((0, m), dtype=np.int64)  # [S, m]
    return SessionExamples(
        user_idx=np.asarray(out_users, dtype=np.int64),
        cut_position=np.asarray(out_cut, dtype=np.int64),
        cut_timestamp=np.asarray(out_time, dtype=np.int64),
        histories=out_hist,
        targets=items[rows] if len(rows) else np.zeros((0, m), dtype=np.int64),
        feedback={c: v[rows] for c, v in feedback_all.items()},
    )
