"""Training examples and batches for the generator: (history, next session) pairs.

:func:`sliding_session_examples` turns each user's positive-item sequence into one example per
position ``t``: the history is the (up to ``max_history``) items before ``t`` and the session the
next ``m`` items (fewer at the end of a sequence; ``m = 1`` is next-item prediction).
:class:`GeneratorBatches` yields collated tensor batches, **bucketed by history length** (sorted
inside a window of batches, then the batch order shuffled) so the encoder wastes little work
on padding; histories are left-padded (most recent item last).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from onerec.training.seed import epoch_seed

PAD = -1  # empty slot in the example arrays


@dataclass
class SessionExamples:
    """Examples as padded arrays (``PAD`` = empty)."""

    histories: np.ndarray  # [E, max_history] int64, left-padded
    history_lengths: np.ndarray  # [E]
    sessions: np.ndarray  # [E, m] int64, right-padded
    user_idx: np.ndarray  # [E]

    def __len__(self) -> int:
        return len(self.histories)


def pad_histories(
    histories: Sequence[np.ndarray], max_history: int
) -> tuple[np.ndarray, np.ndarray]:
    """Left-pad (and cut to the last ``max_history`` items) -> ``([N, max_history], lengths)``."""
    out = np.full((len(histories), max_history), PAD, dtype=np.int64)
    lengths = np.zeros(len(histories), dtype=np.int64)
    for row, history in enumerate(histories):
        kept = np.asarray(history, dtype=np.int64)[-max_history:]
        if len(kept):
            out[row, max_history - len(kept) :] = kept
        lengths[row] = len(kept)
    return out, lengths


def sliding_session_examples(
    sequences: Sequence[np.ndarray],
    max_history: int,
    session_items: int = 1,
    user_idx: np.ndarray | None = None,
    min_history: int = 1,
) -> SessionExamples:
    """One example per position ``t >= min_history`` of every sequence."""
    histories: list[np.ndarray] = []
    sessions: list[np.ndarray] = []
    users: list[np.ndarray] = []
    users_of = np.arange(len(sequences)) if user_idx is None else np.asarray(user_idx)
    for row, raw in enumerate(sequences):
        seq = np.asarray(raw, dtype=np.int64)
        count = len(seq) - min_history
        if count <= 0:
            continue
        # Pad the sequence on both sides so every window is a plain strided slice.
        padded = np.concatenate(
            [np.full(max_history, PAD), seq, np.full(session_items, PAD)]
        ).astype(np.int64)
        starts = np.arange(min_history, len(seq))  # target position t
        windows = np.lib.stride_tricks.sliding_window_view(padded, max_history + session_items)
        picked = windows[starts]  # window begins at padded index t = original t - max_history
        histories.append(picked[:, :max_history])
        sessions.append(picked[:, max_history:])
        users.append(np.full(count, users_of[row], dtype=np.int64))
    if not histories:
        empty = np.zeros((0, max_history), dtype=np.int64)
        return SessionExamples(
            empty,
            np.zeros(0, np.int64),
            np.zeros((0, session_items), np.int64),
            np.zeros(0, np.int64),
        )
    history_array = np.concatenate(histories)
    return SessionExamples(
        histories=history_array,
        history_lengths=(history_array != PAD).sum(axis=1),
        sessions=np.concatenate(sessions),
        user_idx=np.concatenate(users),
    )


class CodeLookup:
    """``item_idx -> codes`` on tensors, with ``PAD`` mapping to an all-zero row."""

    def __init__(self, item_codes: np.ndarray) -> None:
        codes = torch.as_tensor(np.asarray(item_codes, dtype=np.int64))  # [N, C]
        self.table = torch.cat([codes, torch.zeros(1, codes.shape[1], dtype=torch.long)])
        self.pad_row = codes.shape[0]

    def __call__(self, items: torch.Tensor) -> torch.Tensor:
        rows = torch.where(items == PAD, self.pad_row, items)
        return self.table[rows]  # [..., C]


def collate_histories(
    histories: np.ndarray, lookup: CodeLookup
) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``[B, max_history]`` -> (``history_codes [B, S, C]``, ``history_mask [B, S]``)
    trimmed to the longest history in the batch (at least one column)."""
    width = max(int((histories != PAD).sum(axis=1).max(initial=0)), 1)
    items = torch.from_numpy(np.ascontiguousarray(histories[:, -width:]))
    return lookup(items), items != PAD


class GeneratorBatches:
    """Batches of :class:`SessionExamples`; :meth:`for_epoch` picks the pass (and its order)."""

    def __init__(
        self,
        examples: SessionExamples,
        item_codes: np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        bucket_batches: int = 64,
    ) -> None:
        self.examples = examples
        self.lookup = CodeLookup(item_codes)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_batches = bucket_batches
        self.epoch = 0

    def __len__(self) -> int:
        return -(-len(self.examples) // self.batch_size)

    def for_epoch(self, epoch: int) -> GeneratorBatches:
        """This object set to iterate ``epoch``'s order (the trainer's per-epoch callable)."""
        self.epoch = epoch
        return self

    def batch_indices(self) -> list[np.ndarray]:
        """Index arrays of this pass's batches, bucketed by history length.

        The order depends only on ``(seed, epoch)``, so a resumed run sees the same batches.
        """
        count = len(self.examples)
        rng = np.random.default_rng(epoch_seed(self.seed, self.epoch))
        order = rng.permutation(count) if self.shuffle else np.arange(count)
        window = self.batch_size * self.bucket_batches
        batches: list[np.ndarray] = []
        for start in range(0, count, window):
            chunk = order[start : start + window]
            # Stable sort keeps the random order among equal lengths.
            chunk = chunk[np.argsort(self.examples.history_lengths[chunk], kind="stable")]
            batches.extend(
                chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)
            )
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def collate(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        """Tensors for one batch: history codes/mask, session codes/mask, user ids."""
        history_codes, history_mask = collate_histories(
            self.examples.histories[indices], self.lookup
        )
        sessions = self.examples.sessions[indices]
        width = max(int((sessions != PAD).sum(axis=1).max(initial=0)), 1)
        session_items = torch.from_numpy(np.ascontiguousarray(sessions[:, :width]))
        return {
            "history_codes": history_codes,  # [B, S, C]
            "history_mask": history_mask,  # [B, S]
            "session_codes": self.lookup(session_items),  # [B, m, C]
            "session_mask": session_items != PAD,  # [B, m]
            "user_ids": torch.from_numpy(self.examples.user_idx[indices]),  # [B]
        }

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for indices in self.batch_indices():
            yield self.collate(indices)


def real_token_counts(batch: dict[str, torch.Tensor], num_code_levels: int) -> tuple[int, int]:
    """Non-padding (encoder, decoder) tokens of a batch, as the FLOP count uses them.

    Encoder: real history items plus the context token per row. Decoder: ``C+1`` input tokens
    per real session item, minus the final token that is never fed.
    """
    rows = batch["history_mask"].shape[0]
    encoder = int(batch["history_mask"].sum()) + rows
    items = batch["session_mask"].sum(dim=1)  # [B]
    decoder = int((items * (num_code_levels + 1) - 1).clamp(min=0).sum())
    return encoder, decoder
