"""Evaluation split across the ranks of a ``torchrun`` job, identical to single-process.

Each rank ranks a contiguous block of users; the top-K lists are gathered on every rank and the
metrics computed from the whole set, so every rank returns the same numbers (and the trainer's
early stopping agrees everywhere). Blocks are cut at multiples of ``batch_size`` (in the same
user order the single-process code batches in), so every rank runs exactly the batches a single
process would: the top-K lists — and therefore the metrics — are bit-identical.

Without a process group these functions are the single-process ones (no collectives).
Every rank must call them (they are collectives).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from onerec.eval.metrics import ranking_metrics
from onerec.eval.protocols import HasEvalExamples, ScoreFn, rank_all
from onerec.training.distributed import is_main_process
from onerec.training.sharding import sharded_rows

TopKFn = Callable[[np.ndarray], Any]  # example indices [n] -> top-K items [n, K] (or a tuple)


class _Histories:
    """The slice of examples one rank ranks (``rank_all`` reads only ``histories``)."""

    def __init__(self, histories: list[np.ndarray]) -> None:
        self.histories = histories
        self.targets = np.zeros(len(histories), dtype=np.int64)  # unused by rank_all


def rank_all_sharded(
    score_fn: ScoreFn,
    examples: HasEvalExamples,
    k: int,
    batch_size: int = 256,
    exclude_history: bool = False,
    progress: bool = False,
) -> np.ndarray:
    """:func:`onerec.eval.rank_all` with the users split across ranks; ``[U, k]`` on every rank."""
    histories = list(examples.histories)
    if not histories:
        return np.zeros((0, k), dtype=np.int64)

    def rank_block(block: list[np.ndarray]) -> np.ndarray:
        shown = progress and is_main_process()
        return rank_all(score_fn, _Histories(block), k, batch_size, exclude_history, shown)

    result: np.ndarray = sharded_rows(rank_block, histories, align=batch_size)
    return result


def evaluate_scorer_sharded(
    score_fn: ScoreFn,
    examples: HasEvalExamples,
    ks: Sequence[int] = (5, 10),
    batch_size: int = 256,
    exclude_history: bool = False,
    progress: bool = False,
) -> dict[str, float]:
    """:func:`onerec.eval.evaluate_scorer` with the users split across ranks (same metrics)."""
    import torch

    with torch.no_grad():
        topk = rank_all_sharded(score_fn, examples, max(ks), batch_size, exclude_history, progress)
    return ranking_metrics(topk, np.asarray(examples.targets), ks)


def sharded_topk(
    topk_fn: TopKFn,
    count: int,
    batch_size: int,
    order: Sequence[int] | np.ndarray | None = None,
) -> Any:
    """Run a top-K recommender (e.g. beam search) over ``count`` examples split across ranks.

    ``topk_fn(indices)`` gets an int64 array of example indices (a contiguous block of ``order``,
    default ``0..count-1``) and returns ``[len(indices), K]`` (or a tuple of such arrays, e.g.
    items and scores). Results come back on every rank, one row per example index.

    For results identical to a single-process run, pass the order in which the single-process
    code batches (e.g. users sorted by history length) and its ``batch_size``: each rank then
    runs exactly the same batches. ``topk_fn`` must not draw random numbers (or must seed them
    from the example indices), since ranks do not share a random stream.
    """
    indices = list(range(count))
    return sharded_rows(
        lambda block: topk_fn(np.asarray(block, dtype=np.int64)), indices, batch_size, order
    )


def evaluate_topk_sharded(
    topk_fn: TopKFn,
    examples: HasEvalExamples,
    ks: Sequence[int] = (5, 10),
    batch_size: int = 256,
    order: Sequence[int] | np.ndarray | None = None,
) -> dict[str, float]:
    """Ranking metrics of a top-K recommender (see :func:`sharded_topk`) with users split
    across ranks; ``topk_fn`` may return ``(items, scores)``, the items are scored."""
    targets = np.asarray(examples.targets)
    if len(targets) == 0:
        return ranking_metrics(np.zeros((0, max(ks)), dtype=np.int64), targets, ks)
    result = sharded_topk(topk_fn, len(targets), batch_size, order)
    items = result[0] if isinstance(result, tuple) else result
    return ranking_metrics(items, targets, ks)
