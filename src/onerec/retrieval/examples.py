"""Training examples, held-out users and batches for CRM, built from time-ordered interactions.

A training example is one logged interaction ``(user, item, target value)``: the history is the
user's previous ``max_history`` items (right-aligned, most recent last, left-padded with
``num_items``), the positive is the item and the condition is the normalised target.

Temporal protocol (:func:`split_masks`): global time cut-offs ``t_valid < t_test`` (or the same
per user). Train on the training rows; validation users are judged on their validation rows
from the history before them; test users on their test rows from everything before (training
and validation rows). Users with no interaction before their window are skipped (cold start is
not what CRM is about) and counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from onerec.retrieval.condition import ConditionNormalizer
from onerec.training.seed import epoch_seed


def padded_histories(
    user_idx: np.ndarray, item_idx: np.ndarray, rows: np.ndarray, max_history: int, pad: int
) -> np.ndarray:
    """For each row ``r`` in ``rows``: the items of the same user strictly before ``r``.

    ``user_idx``/``item_idx`` must be sorted by (user, time). Returns ``[len(rows), max_history]``
    right-aligned, padded with ``pad``.
    """
    starts = _user_starts(user_idx)
    offsets = np.arange(-max_history, 0)  # [L]
    idx = rows[:, None] + offsets[None, :]  # [R, L]
    valid = idx >= starts[rows][:, None]
    return np.where(valid, item_idx[np.clip(idx, 0, None)], pad).astype(np.int64)


def _user_starts(user_idx: np.ndarray) -> np.ndarray:
    """Row index where each row's user block begins (rows sorted by user)."""
    change = np.ones(len(user_idx), dtype=bool)
    change[1:] = user_idx[1:] != user_idx[:-1]
    block_start = np.flatnonzero(change)
    return block_start[np.cumsum(change) - 1]


@dataclass
class TrainingExamples:
    """Arrays of equal length N, one entry per training interaction."""

    user_idx: np.ndarray  # [N] int64
    history: np.ndarray  # [N, L] int64
    target_item: np.ndarray  # [N] int64
    condition: np.ndarray  # [N] float32 positions

    def __len__(self) -> int:
        return len(self.target_item)


def build_training_examples(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    raw_condition: np.ndarray,
    in_train: np.ndarray,
    normalizer: ConditionNormalizer,
    max_history: int,
    num_items: int,
    min_history: int = 1,
) -> tuple[TrainingExamples, int]:
    """Examples for rows with ``in_train`` and a known condition; returns (examples, dropped).

    ``dropped`` counts training rows left out because their condition is missing (e.g. a
    watch ratio with zero duration); they still count as history for later rows.
    """
    starts = _user_starts(user_idx)
    position = np.arange(len(user_idx)) - starts
    keep = in_train & (position >= min_history)
    known = np.isfinite(raw_condition)
    dropped = int((keep & ~known).sum())
    rows = np.flatnonzero(keep & known)
    return (
        TrainingExamples(
            user_idx=user_idx[rows].astype(np.int64),
            history=padded_histories(user_idx, item_idx, rows, max_history, num_items),
            target_item=item_idx[rows].astype(np.int64),
            condition=normalizer.encode(raw_condition[rows]),
        ),
        dropped,
    )


@dataclass
class HeldOutUsers:
    """Users judged on a later time window. Lists are per user, aligned with ``user_idx``."""

    user_idx: np.ndarray  # [U]
    history: np.ndarray  # [U, L] last items before the window
    seen: list[np.ndarray]  # every item before the window (excluded from the ranking)
    targets: list[np.ndarray]  # distinct held-out items
    target_values: list[np.ndarray]  # mean logged raw target of each held-out item (NaN: unknown)
    condition_max: np.ndarray  # [U] max condition position over the user's past
    condition_mean: np.ndarray  # [U] mean condition position over the user's past
    skipped_cold_users: int = 0

    def __len__(self) -> int:
        return len(self.user_idx)


def split_masks(
    user_idx: np.ndarray,
    timestamp: np.ndarray,
    valid_fraction: float,
    test_fraction: float,
    split: str = "global_time",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row masks ``(train, valid, test)`` for rows sorted by (user, time).

    ``global_time``: cut-offs at the timestamp quantiles ``1 − valid − test`` and ``1 − test``
    (no interaction after a cut-off is ever trained on). ``user_time``: each user's own last
    ``test_fraction`` of interactions (at least one) is test and the ``valid_fraction`` before
    it validation; users with fewer than three interactions stay in training. Every user with a
    long enough log is then judged, at the price of training on other users' later rows.
    """
    if split == "global_time":
        t_valid = np.quantile(timestamp, 1.0 - valid_fraction - test_fraction, method="higher")
        t_test = np.quantile(timestamp, 1.0 - test_fraction, method="higher")
        return (
            timestamp < t_valid,
            (timestamp >= t_valid) & (timestamp < t_test),
            timestamp >= t_test,
        )
    if split != "user_time":
        raise ValueError(f"split must be global_time or user_time, not {split!r}")
    starts = _user_starts(user_idx)
    counts = np.bincount(user_idx)[user_idx]  # [rows] length of the row's user log
    position = np.arange(len(user_idx)) - starts
    n_test = np.maximum(1, np.rint(counts * test_fraction)).astype(np.int64)
    n_valid = np.maximum(1, np.rint(counts * valid_fraction)).astype(np.int64)
    eligible = counts >= 3
    test = eligible & (position >= counts - n_test)
    valid = eligible & ~test & (position >= counts - n_test - n_valid)
    return ~(test | valid), valid, test


def build_heldout(
    user_idx: np.ndarray,
    item_idx: np.ndarray,
    raw_condition: np.ndarray,
    before: np.ndarray,
    inside: np.ndarray,
    normalizer: ConditionNormalizer,
    max_history: int,
    num_items: int,
) -> HeldOutUsers:
    """Held-out users: each user's ``inside`` rows are judged from the ``before`` rows.

    Rows are sorted by (user, time) and each user's ``before`` rows must precede their
    ``inside`` rows (true for :func:`split_masks`: train rows before valid, train + valid
    rows before test).
    """
    positions = np.full(len(raw_condition), np.nan)
    known = np.isfinite(raw_condition)
    positions[known] = normalizer.encode(raw_condition[known])
    users, first_row = np.unique(user_idx, return_index=True)
    bounds = np.append(first_row, len(user_idx))
    out_users, rows_for_history = [], []
    seen, targets, values, cmax, cmean = [], [], [], [], []
    cold = 0
    default_position = float(normalizer.encode([normalizer.median])[0])
    for k, user in enumerate(users):
        lo, hi = bounds[k], bounds[k + 1]
        inside_rows = np.flatnonzero(inside[lo:hi]) + lo
        if inside_rows.size == 0:
            continue
        past_rows = np.flatnonzero(before[lo:hi]) + lo
        if past_rows.size == 0:
            cold += 1
            continue
        items = item_idx[inside_rows]
        distinct, inverse = np.unique(items, return_inverse=True)
        sums = np.bincount(inverse, weights=np.nan_to_num(raw_condition[inside_rows]))
        counts = np.bincount(inverse, weights=np.isfinite(raw_condition[inside_rows]).astype(float))
        with np.errstate(invalid="ignore", divide="ignore"):
            values.append(np.where(counts > 0, sums / np.maximum(counts, 1), np.nan))
        targets.append(distinct.astype(np.int64))
        seen.append(np.unique(item_idx[past_rows]).astype(np.int64))
        past_positions = positions[past_rows][np.isfinite(positions[past_rows])]
        cmax.append(past_positions.max() if past_positions.size else default_position)
        cmean.append(past_positions.mean() if past_positions.size else default_position)
        out_users.append(user)
        rows_for_history.append(past_rows[-1] + 1)  # history = everything before this row
    rows = np.asarray(rows_for_history, dtype=np.int64)
    # A row index one past the user's last past row: its "history" is exactly the past rows.
    history = histories_ending_at(user_idx, item_idx, rows, max_history, num_items)
    return HeldOutUsers(
        user_idx=np.asarray(out_users, dtype=np.int64),
        history=history,
        seen=seen,
        targets=targets,
        target_values=values,
        condition_max=np.asarray(cmax, dtype=np.float32),
        condition_mean=np.asarray(cmean, dtype=np.float32),
        skipped_cold_users=cold,
    )


def histories_ending_at(
    user_idx: np.ndarray, item_idx: np.ndarray, end_rows: np.ndarray, max_history: int, pad: int
) -> np.ndarray:
    """Like :func:`padded_histories` but ``end_rows`` may equal ``len(user_idx)`` (exclusive end)."""
    if end_rows.size == 0:
        return np.zeros((0, max_history), dtype=np.int64)
    starts = _user_starts(user_idx)
    block_start = starts[end_rows - 1]  # the user's block (end row itself may be the next user)
    idx = end_rows[:, None] + np.arange(-max_history, 0)[None, :]
    valid = idx >= block_start[:, None]
    return np.where(valid, item_idx[np.clip(idx, 0, None)], pad).astype(np.int64)


def item_log_frequency(target_item: np.ndarray, num_items: int) -> np.ndarray:
    """``log P_data(item)`` from training targets, add-one smoothed so unseen items are finite."""
    counts = np.bincount(target_item, minlength=num_items).astype(np.float64) + 1.0
    return np.log(counts / counts.sum()).astype(np.float32)


class RetrievalBatches:
    """Shuffled training batches; ``batches(epoch)`` is one epoch (order fixed by seed, epoch).

    Each batch: ``history [B, L]``, ``condition [B]``, ``user_idx [B]``, ``target [B]``,
    ``target_log_q [B]`` (``log(B · P_data)``) and, when ``num_negatives`` > 0,
    ``negatives [N]`` with ``negative_log_q [N]`` (``log(N · P_neg)``). With
    ``logq_correction=False`` both log-Q terms are zero (the uncorrected ablation).
    ``condition_dropout`` replaces that fraction of conditions by ``dropout_position`` (the
    training median's position: what a missing condition becomes at serving time too).
    """

    def __init__(
        self,
        examples: TrainingExamples,
        num_items: int,
        batch_size: int,
        num_negatives: int = 0,
        negative_sampling: str = "uniform",
        logq_correction: bool = True,
        seed: int = 0,
        condition_dropout: float = 0.0,
        dropout_position: float = 0.0,
    ) -> None:
        if len(examples) < 2:
            raise ValueError("need at least two training examples for in-batch negatives")
        self.examples = examples
        self.num_items = num_items
        self.batch_size = max(2, min(batch_size, len(examples)))
        self.num_negatives = num_negatives
        self.logq_correction = logq_correction
        self.condition_dropout = condition_dropout
        self.dropout_position = dropout_position
        self.log_p_data = torch.from_numpy(item_log_frequency(examples.target_item, num_items))
        if negative_sampling == "uniform":
            self.log_p_neg = torch.full((num_items,), -float(np.log(num_items)))
        elif negative_sampling == "popularity":
            self.log_p_neg = self.log_p_data.clone()
        else:
            raise ValueError(
                f"negative_sampling must be uniform or popularity, not {negative_sampling!r}"
            )
        self.seed = seed
        self._tensors = {
            "history": torch.from_numpy(examples.history),
            "condition": torch.from_numpy(examples.condition),
            "user_idx": torch.from_numpy(examples.user_idx),
            "target": torch.from_numpy(examples.target_item),
        }

    def __call__(self, epoch: int) -> EpochBatches:
        return EpochBatches(self, epoch)

    def num_batches(self) -> int:
        """Full batches per epoch (the last partial batch is dropped: in-batch negatives)."""
        return len(self.examples) // self.batch_size

    def batch(self, rows: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """The batch dict for example ``rows`` (negatives drawn with ``gen``)."""
        batch = {name: t[rows] for name, t in self._tensors.items()}
        if self.condition_dropout > 0:
            dropped = torch.rand(len(rows), generator=gen) < self.condition_dropout
            batch["condition"] = batch["condition"].masked_fill(dropped, self.dropout_position)
        scale = 1.0 if self.logq_correction else 0.0
        batch["target_log_q"] = scale * (
            self.log_p_data[batch["target"]] + float(np.log(len(rows)))
        )
        if self.num_negatives:
            negatives = torch.multinomial(
                self.log_p_neg.exp(), self.num_negatives, True, generator=gen
            )
            batch["negatives"] = negatives
            batch["negative_log_q"] = scale * (
                self.log_p_neg[negatives] + float(np.log(self.num_negatives))
            )
        return batch


class EpochBatches:
    """One epoch of :class:`RetrievalBatches` (has a length, for the LR schedule)."""

    def __init__(self, source: RetrievalBatches, epoch: int) -> None:
        self.source = source
        self.epoch = epoch

    def __len__(self) -> int:
        return self.source.num_batches()

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(epoch_seed(self.source.seed, self.epoch))
        order = torch.randperm(len(self.source.examples), generator=gen)
        size = self.source.batch_size
        for b in range(len(self)):
            yield self.source.batch(order[b * size : (b + 1) * size], gen)
