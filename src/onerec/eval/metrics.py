"""Top-K ranking metrics for one held-out target per user, and top-K from score matrices.

Definitions (``rank`` is the 0-based position of the target in the user's top-K list; a user
whose target is not in the first ``k`` positions scores 0 on every metric at ``k``):

* ``hr@k``        — 1 if ``rank < k`` (hit rate);
* ``recall@k``    — hits / number of relevant items = ``hr@k`` with a single target;
* ``precision@k`` — hits / k;
* ``ndcg@k``      — ``1 / log2(rank + 2)`` (the ideal DCG of a single relevant item is 1);
* ``mrr@k``       — ``1 / (rank + 1)``.

Each is averaged over users. :func:`ranking_metrics` is the vectorised version used
everywhere; :func:`ranking_metrics_reference` is the plain per-user loop it is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

METRIC_NAMES = ("recall", "ndcg", "hr", "mrr", "precision")


def _check(topk: np.ndarray, targets: np.ndarray, ks: Sequence[int]) -> None:
    if topk.ndim != 2 or targets.ndim != 1 or topk.shape[0] != targets.shape[0]:
        raise ValueError(
            f"topk must be [U, K] and targets [U]; got {topk.shape} and {targets.shape}"
        )
    if not ks or min(ks) < 1:
        raise ValueError(f"ks must be positive cut-offs, got {list(ks)}")
    if max(ks) > topk.shape[1]:
        raise ValueError(f"topk has {topk.shape[1]} columns but ks asks for @{max(ks)}")


def ranking_metrics(
    topk: np.ndarray, targets: np.ndarray, ks: Sequence[int] = (5, 10)
) -> dict[str, float]:
    """Mean recall/ndcg/hr/mrr/precision at each ``k`` (keys like ``"ndcg@10"``).

    Args:
        topk: ``[U, K]`` recommended item indices, best first (``K >= max(ks)``).
        targets: ``[U]`` the held-out item per user.
    """
    topk = np.asarray(topk)
    targets = np.asarray(targets)
    _check(topk, targets, ks)
    num_users = topk.shape[0]
    hits = topk == targets[:, None]  # [U, K]
    found = hits.any(axis=1)  # [U]
    # first hit position; K (beyond every cut-off) when the target is absent
    rank = np.where(found, hits.argmax(axis=1), topk.shape[1])  # [U]
    result: dict[str, float] = {}
    for k in ks:
        hit = rank < k  # [U]
        if num_users == 0:
            values = dict.fromkeys(METRIC_NAMES, 0.0)
        else:
            values = {
                "recall": float(hit.mean()),
                "ndcg": float(np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0).mean()),
                "hr": float(hit.mean()),
                "mrr": float(np.where(hit, 1.0 / (rank + 1.0), 0.0).mean()),
                "precision": float(hit.mean() / k),
            }
        for name in METRIC_NAMES:
            result[f"{name}@{k}"] = values[name]
    return result


def ranking_metrics_reference(
    topk: np.ndarray, targets: np.ndarray, ks: Sequence[int] = (5, 10)
) -> dict[str, float]:
    """Plain per-user loop computing the same numbers as :func:`ranking_metrics`."""
    topk = np.asarray(topk)
    targets = np.asarray(targets)
    _check(topk, targets, ks)
    result: dict[str, float] = {}
    num_users = len(targets)
    for k in ks:
        sums = dict.fromkeys(METRIC_NAMES, 0.0)
        for user in range(num_users):
            row = [int(x) for x in topk[user, :k]]
            target = int(targets[user])
            if target in row:
                rank = row.index(target)
                sums["recall"] += 1.0
                sums["hr"] += 1.0
                sums["precision"] += 1.0 / k
                sums["ndcg"] += 1.0 / float(np.log2(rank + 2))
                sums["mrr"] += 1.0 / (rank + 1)
        for name in METRIC_NAMES:
            result[f"{name}@{k}"] = sums[name] / num_users if num_users else 0.0
    return result


def topk_from_scores(
    scores: torch.Tensor, k: int, exclude: Sequence[np.ndarray] | None = None
) -> torch.Tensor:
    """Indices ``[B, k]`` of the ``k`` highest scores per row, best first.

    ``exclude`` (one array of item indices per row) sets those items' scores to ``-inf`` first,
    e.g. to drop items already in the history. The TIGER protocol — and every number onerec
    reports for Amazon leave-one-out — does **not** exclude history (a repeat purchase is a
    valid target), so callers pass ``exclude=None`` by default. Ties are broken by
    ``torch.topk``'s order; models with continuous scores practically never tie.
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be [B, num_items], got shape {tuple(scores.shape)}")
    k = min(k, scores.shape[1])
    if exclude is not None:
        if len(exclude) != scores.shape[0]:
            raise ValueError(f"exclude has {len(exclude)} rows for {scores.shape[0]} score rows")
        lengths = np.fromiter((len(e) for e in exclude), dtype=np.int64, count=len(exclude))
        if lengths.sum() > 0:
            rows = torch.from_numpy(np.repeat(np.arange(len(exclude)), lengths))
            cols = torch.from_numpy(
                np.concatenate([np.asarray(e, dtype=np.int64) for e in exclude])
            )
            scores = scores.clone()
            scores[rows.to(scores.device), cols.to(scores.device)] = float("-inf")
    return torch.topk(scores, k, dim=1).indices
