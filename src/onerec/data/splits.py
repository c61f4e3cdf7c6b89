"""Evaluation splits: leave-one-out (the TIGER protocol) and a temporal cut-off.

Leave-one-out, per user with time-ordered items ``s``:

- test: target ``s[-1]``, history ``s[:-1]`` (cut to the last ``max_history`` items);
- validation: target ``s[-2]``, history ``s[:-2]`` (cut likewise);
- training: ``s[:-2]``.

Users with fewer than 3 items cannot give a validation example with a non-empty history.
Rule (``short_users="train_only"``, the default): they are left out of validation and test,
their whole sequence stays in ``train_sequences`` (no leakage: they are never evaluated), and
their number is ``LeaveOneOutSplit.num_short_users``. ``short_users="error"`` raises a
:class:`~onerec.errors.DataValidationError` naming the first such user instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from onerec.data.schema import TIMESTAMP
from onerec.errors import DataValidationError

MIN_LEAVE_ONE_OUT_ITEMS = 3


@dataclass
class EvalExamples:
    """Held-out examples: one target per user.

    Attributes:
        user_idx: ``[U]`` int64 user indices.
        histories: ``U`` int64 arrays of item_idx in time order (oldest first), each non-empty.
        targets: ``[U]`` int64 held-out item_idx.
    """

    user_idx: np.ndarray
    histories: list[np.ndarray]
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.targets)


@dataclass
class LeaveOneOutSplit:
    """Leave-one-out split; ``train_sequences`` is indexed by user_idx (one per user)."""

    train_sequences: list[np.ndarray]
    valid: EvalExamples
    test: EvalExamples
    max_history: int | None
    num_short_users: int


def _cut(history: np.ndarray, max_history: int | None) -> np.ndarray:
    return history if max_history is None else history[-max_history:]


def leave_one_out(
    sequences: Sequence[np.ndarray],
    max_history: int | None = 20,
    short_users: Literal["train_only", "error"] = "train_only",
) -> LeaveOneOutSplit:
    """Split per-user sequences (index = user_idx) into train / validation / test.

    ``max_history=None`` keeps whole histories. See the module docstring for users with fewer
    than 3 items.
    """
    if max_history is not None and max_history < 1:
        raise ValueError(f"max_history must be >= 1 or None, got {max_history}")
    train: list[np.ndarray] = []
    valid_users: list[int] = []
    valid_hist: list[np.ndarray] = []
    valid_tgt: list[int] = []
    test_hist: list[np.ndarray] = []
    test_tgt: list[int] = []
    short = 0
    for user, seq in enumerate(sequences):
        seq = np.asarray(seq, dtype=np.int64)
        if len(seq) < MIN_LEAVE_ONE_OUT_ITEMS:
            if short_users == "error":
                raise DataValidationError(
                    f"user_idx {user} has {len(seq)} interaction(s); leave-one-out needs at least "
                    f"{MIN_LEAVE_ONE_OUT_ITEMS} (history, validation target, test target)",
                    field="user_idx",
                    hint="filter such users out (e.g. a k-core filter) or use short_users='train_only'",
                )
            short += 1
            train.append(seq)
            continue
        train.append(seq[:-2])
        valid_users.append(user)
        valid_hist.append(_cut(seq[:-2], max_history))
        valid_tgt.append(int(seq[-2]))
        test_hist.append(_cut(seq[:-1], max_history))
        test_tgt.append(int(seq[-1]))
    users = np.asarray(valid_users, dtype=np.int64)
    return LeaveOneOutSplit(
        train_sequences=train,
        valid=EvalExamples(users, valid_hist, np.asarray(valid_tgt, dtype=np.int64)),
        test=EvalExamples(users.copy(), test_hist, np.asarray(test_tgt, dtype=np.int64)),
        max_history=max_history,
        num_short_users=short,
    )


@dataclass
class TemporalSplit:
    """Interactions before (``train``) and at/after (``test``) a cut-off timestamp."""

    train: pl.DataFrame
    test: pl.DataFrame
    cutoff_timestamp: int


def temporal_split(interactions: pl.DataFrame, cutoff_timestamp: int) -> TemporalSplit:
    """Rows with ``timestamp < cutoff_timestamp`` train, the rest test (order kept).

    The cut-off is in the data set's own timestamp unit (see ``manifest['timestamp_unit']``).
    Use :func:`cutoff_at_fraction` to pick one by quantile.
    """
    before = pl.col(TIMESTAMP) < cutoff_timestamp
    return TemporalSplit(
        interactions.filter(before), interactions.filter(~before), int(cutoff_timestamp)
    )


def cutoff_at_fraction(interactions: pl.DataFrame, train_fraction: float) -> int:
    """The timestamp below which about ``train_fraction`` of the interactions fall."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    if interactions.height == 0:
        raise DataValidationError("no interactions to split", hint="prepare a non-empty data set")
    times = np.sort(interactions[TIMESTAMP].to_numpy())
    return int(times[min(len(times) - 1, int(train_fraction * len(times)))])
