"""Evaluation protocols: full ranking over the whole catalogue for any scoring function."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
import torch
from rich.progress import Progress

from onerec.eval.metrics import ranking_metrics, topk_from_scores


class HasEvalExamples(Protocol):
    """What :func:`evaluate_scorer` needs (``onerec.data.EvalExamples`` fits)."""

    histories: list[np.ndarray]
    targets: np.ndarray


ScoreFn = Callable[[list[np.ndarray]], torch.Tensor]


def rank_all(
    score_fn: ScoreFn,
    examples: HasEvalExamples,
    k: int,
    batch_size: int = 256,
    exclude_history: bool = False,
    progress: bool = False,
) -> np.ndarray:
    """Top-``k`` item indices ``[U, k]`` per example, scoring the whole catalogue.

    ``score_fn(histories) -> Tensor[B, num_items]`` is called once per batch of ``batch_size``
    examples; everything after it (masking, top-k) is batched tensor work.
    """
    histories = examples.histories
    num = len(histories)
    chunks: list[np.ndarray] = []
    show = progress and num > 0
    with Progress(disable=not show, transient=True) as bar:
        task = bar.add_task("ranking", total=num)
        for start in range(0, num, batch_size):
            batch = list(histories[start : start + batch_size])
            scores = score_fn(batch)  # [B, num_items]
            if scores.shape[0] != len(batch):
                raise ValueError(
                    f"score_fn returned {scores.shape[0]} rows for a batch of {len(batch)}"
                )
            top = topk_from_scores(scores.float(), k, batch if exclude_history else None)
            chunks.append(top.cpu().numpy())
            bar.advance(task, len(batch))
    if not chunks:
        return np.zeros((0, k), dtype=np.int64)
    return np.concatenate(chunks, axis=0)


def evaluate_scorer(
    score_fn: ScoreFn,
    examples: HasEvalExamples,
    ks: Sequence[int] = (5, 10),
    batch_size: int = 256,
    exclude_history: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """Full-ranking metrics (see :func:`onerec.eval.ranking_metrics`) of ``score_fn``.

    ``exclude_history=False`` is the TIGER leave-one-out protocol used for every published
    onerec figure; set it to True to forbid recommending items already in the history.
    """
    with torch.no_grad():
        topk = rank_all(score_fn, examples, max(ks), batch_size, exclude_history, progress)
    return ranking_metrics(topk, np.asarray(examples.targets), ks)
