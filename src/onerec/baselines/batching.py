"""Padding variable-length item sequences into batches (right padding, pad id = num_items).

Right padding keeps every real token before every padding token, so a causal mask alone stops
real positions from attending to padding (no per-row key mask; the fast ``is_causal`` attention
path applies). Padding positions produce outputs that are excluded from losses and scores.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

from onerec.training.seed import epoch_seed


def pad_right(
    sequences: Sequence[np.ndarray], pad_id: int, max_len: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence (keeping each one's last ``max_len`` items).

    Returns ``(ids [B, T] int64, lengths [B] int64)`` with ``T = max(lengths)``.
    """
    cut = [
        np.asarray(s, dtype=np.int64)[-max_len:] if max_len else np.asarray(s) for s in sequences
    ]
    lengths = np.fromiter((len(s) for s in cut), dtype=np.int64, count=len(cut))
    width = int(lengths.max()) if len(cut) else 0
    ids = np.full((len(cut), width), pad_id, dtype=np.int64)
    if width:
        # scatter all sequences at once: row index per element, column = position in its row
        rows = np.repeat(np.arange(len(cut)), lengths)
        cols = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        ids[rows, cols] = np.concatenate(cut) if len(cut) else []
    return torch.from_numpy(ids), torch.from_numpy(lengths)


class NextItemBatches:
    """Per-epoch shuffled batches of (input, target) windows for next-item training.

    Each training sequence ``s`` (at least two items) becomes the window ``w = s[-(max_len+1):]``
    with ``input = w[:-1]`` and ``target = w[1:]``, right-padded with ``pad_id``; the target
    is ``pad_id`` wherever there is no next item. The order of an epoch depends only on
    ``(seed, epoch)`` (exact resume). ``len()`` is the number of batches.

    ``bucket_batches > 0`` groups similar lengths: the shuffled windows are cut into chunks of
    ``bucket_batches × batch_size``, each chunk is sorted by length and cut into batches, and the
    batch order is shuffled again. Padding (and attention work on it) then nearly vanishes —
    on Amazon Beauty (mean length 7, a few users near 50) the encoder does ~6× less work.
    """

    def __init__(
        self,
        sequences: Sequence[np.ndarray],
        pad_id: int,
        max_len: int,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        bucket_batches: int = 50,
    ) -> None:
        windows = [np.asarray(s, dtype=np.int64)[-(max_len + 1) :] for s in sequences]
        windows = [w for w in windows if len(w) >= 2]
        self.inputs, self.lengths = pad_right([w[:-1] for w in windows], pad_id)  # [N, L]
        self.targets, _ = pad_right([w[1:] for w in windows], pad_id)  # [N, L]
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.bucket_batches = bucket_batches
        self.epoch = 0

    def __len__(self) -> int:
        return (len(self.lengths) + self.batch_size - 1) // self.batch_size

    def for_epoch(self, epoch: int) -> NextItemBatches:
        """This object set to iterate ``epoch``'s order (the trainer's per-epoch callable)."""
        self.epoch = epoch
        return self

    def batch_rows(self) -> list[np.ndarray]:
        """Row indices of each batch of the current epoch, in order."""
        count = len(self.lengths)
        rng = np.random.default_rng(epoch_seed(self.seed, self.epoch))
        order = rng.permutation(count) if self.shuffle else np.arange(count)
        if self.bucket_batches <= 0:
            return [order[i : i + self.batch_size] for i in range(0, count, self.batch_size)]
        lengths = self.lengths.numpy()
        chunk = self.bucket_batches * self.batch_size
        batches: list[np.ndarray] = []
        for start in range(0, count, chunk):
            part = order[start : start + chunk]
            part = part[np.argsort(lengths[part], kind="stable")]
            batches.extend(
                part[i : i + self.batch_size] for i in range(0, len(part), self.batch_size)
            )
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for rows_np in self.batch_rows():
            rows = torch.from_numpy(rows_np)
            width = int(self.lengths[rows].max())
            yield {
                "input_ids": self.inputs[rows, :width],  # [B, T]
                "lengths": self.lengths[rows],  # [B]
                "targets": self.targets[rows, :width],  # [B, T]
            }
