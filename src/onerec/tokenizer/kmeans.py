"""Residual k-means: L levels × K codes, plain (faiss, nearest centroid) or balanced (ours).

Level 1 clusters the embeddings ``r¹ = e``; level ``l`` clusters the residuals
``r^l = r^{l-1} − c_{s^{l-1}}`` left by the centroid each item was *assigned* to.

Balanced assignment (:func:`balanced_assign`)
---------------------------------------------
Cluster sizes are fixed up front: every cluster gets ``floor(N/K)`` items and the ``N mod K``
clusters with the most nearest-centroid demand get one more, so sizes differ by at most one and
no cluster is empty when ``N ≥ K``. Items are then placed by rounds of *deferred acceptance
with regret priority*, all vectorised in numpy:

1. every unassigned item proposes to its nearest cluster that still has room;
2. its priority is its **regret** — how much farther its second-nearest open cluster is; a
   cluster with ``r`` free places accepts its ``r`` highest-regret proposers (ties by item index),
   so items with a good alternative are the ones pushed on;
3. rejected items propose again next round (their first choice has just filled up).

Every round either places all proposers or closes at least one cluster, so it ends after at most
``K + 1`` rounds (about ten in practice). Each item keeps only its ``num_candidates`` nearest
centroids; when fewer than two of them are still open its list is recomputed against the open
clusters only, so the result equals :func:`balanced_assign_reference` (full distance rows, Python
loops), which the tests check. A balanced level alternates this assignment with moving each
centroid to the mean of its members, starting from faiss k-means centroids.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import faiss
import numpy as np
import torch

from onerec.errors import ConfigError
from onerec.tokenizer.config import TokenizerConfig

_CHUNK_ROWS = 4096


def squared_distances(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """``‖x_i − c_j‖²`` for every pair, ``[n, k]``, clamped at 0 (the expansion can dip below)."""
    cross = points @ centroids.T  # [n, k]
    dist = (points * points).sum(1, keepdim=True) - 2 * cross + (centroids * centroids).sum(1)[None]
    return dist.clamp_min_(0)


def nearest_candidates(
    points: np.ndarray, centroids: np.ndarray, num_candidates: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ``num_candidates`` nearest centroids of each point, nearest first.

    Returns ``(distances [n, m], indices [n, m] int64)``; computed in row chunks so the full
    ``[n, k]`` matrix never exists (K may be 8192 and N millions).
    """
    cen = torch.from_numpy(np.ascontiguousarray(centroids))
    m = min(num_candidates, len(centroids))
    dist_out = np.empty((len(points), m), dtype=points.dtype)
    idx_out = np.empty((len(points), m), dtype=np.int64)
    for start in range(0, len(points), _CHUNK_ROWS):
        chunk = torch.from_numpy(np.ascontiguousarray(points[start : start + _CHUNK_ROWS]))
        top = torch.topk(squared_distances(chunk, cen), m, dim=1, largest=False, sorted=True)
        dist_out[start : start + len(chunk)] = top.values.numpy()
        idx_out[start : start + len(chunk)] = top.indices.numpy()
    return dist_out, idx_out


def nearest_centroid(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid per point, ``[n]`` int64 (the plain assignment)."""
    return nearest_candidates(points, centroids, 1)[1][:, 0]


def exact_capacities(nearest: np.ndarray, num_clusters: int) -> np.ndarray:
    """Cluster sizes summing to ``N``: ``floor(N/K)`` each, +1 for the ``N mod K`` most wanted.

    ``nearest[i]`` is item i's nearest centroid; demand ties go to the lower cluster index.
    """
    n = len(nearest)
    caps = np.full(num_clusters, n // num_clusters, dtype=np.int64)
    extra = n % num_clusters
    if extra:
        demand = np.bincount(nearest, minlength=num_clusters)
        # stable sort on -demand keeps lower indices first among equal demand
        caps[np.argsort(-demand, kind="stable")[:extra]] += 1
    return caps


def balanced_assign(
    points: np.ndarray,
    centroids: np.ndarray,
    capacities: np.ndarray | None = None,
    num_candidates: int = 32,
) -> np.ndarray:
    """Assign every point to a cluster without exceeding ``capacities`` (see module docstring).

    ``capacities`` defaults to :func:`exact_capacities`; it must sum to at least ``N``.
    Returns ``[n]`` int64 cluster indices.
    """
    n, k = len(points), len(centroids)
    m = min(max(num_candidates, 2), k)
    cand_dist, cand_idx = nearest_candidates(points, centroids, m)  # [n, m] each
    if capacities is None:
        capacities = exact_capacities(cand_idx[:, 0], k)
    remaining = np.asarray(capacities, dtype=np.int64).copy()
    if remaining.shape != (k,) or remaining.min() < 0 or remaining.sum() < n:
        raise ValueError(f"capacities must be {k} non-negative ints summing to >= {n}")
    assigned = np.full(n, -1, dtype=np.int64)
    unassigned = np.arange(n)
    while len(unassigned):
        idx, dist = cand_idx[unassigned], cand_dist[unassigned]  # [u, m]
        is_open = (idx >= 0) & (remaining[np.maximum(idx, 0)] > 0)
        open_clusters = np.flatnonzero(remaining > 0)
        short = is_open.sum(1) < min(2, len(open_clusters))
        if short.any():
            # Their lists ran out: recompute the nearest candidates among open clusters only.
            rows = unassigned[short]
            sub_dist, sub_idx = nearest_candidates(points[rows], centroids[open_clusters], m)
            width = sub_idx.shape[1]
            cand_idx[rows] = -1
            cand_dist[rows] = np.inf
            cand_idx[rows, :width] = open_clusters[sub_idx]
            cand_dist[rows, :width] = sub_dist
            idx, dist = cand_idx[unassigned], cand_dist[unassigned]
            is_open = (idx >= 0) & (remaining[np.maximum(idx, 0)] > 0)
        rows_u = np.arange(len(unassigned))
        first = is_open.argmax(1)
        is_open[rows_u, first] = False
        has_second = is_open.any(1)
        second = is_open.argmax(1)
        choice = idx[rows_u, first]
        regret = np.where(has_second, dist[rows_u, second] - dist[rows_u, first], np.inf)
        # group by cluster, highest regret first, then lowest item index
        order = np.lexsort((unassigned, -regret, choice))
        choice_sorted = choice[order]
        rank = np.arange(len(order)) - np.searchsorted(choice_sorted, choice_sorted, side="left")
        accept = rank < remaining[choice_sorted]
        assigned[unassigned[order[accept]]] = choice_sorted[accept]
        remaining -= np.bincount(choice_sorted[accept], minlength=k)
        unassigned = np.sort(unassigned[order[~accept]])
    return assigned


def balanced_assign_reference(
    points: np.ndarray, centroids: np.ndarray, capacities: np.ndarray | None = None
) -> np.ndarray:
    """Plain-loop version of :func:`balanced_assign` over full distance rows (for parity tests)."""
    dist = squared_distances(torch.from_numpy(points), torch.from_numpy(centroids)).numpy()
    n, k = dist.shape
    if capacities is None:
        capacities = exact_capacities(np.argmin(dist, axis=1), k)
    remaining = [int(c) for c in capacities]
    assigned = [-1] * n
    while -1 in assigned:
        proposals: dict[int, list[tuple[float, int]]] = {}
        for item in range(n):
            if assigned[item] != -1:
                continue
            ranked = sorted((float(dist[item, j]), j) for j in range(k) if remaining[j] > 0)
            regret = ranked[1][0] - ranked[0][0] if len(ranked) > 1 else float("inf")
            proposals.setdefault(ranked[0][1], []).append((-regret, item))
        for cluster, offers in proposals.items():
            offers.sort()
            for _, item in offers[: remaining[cluster]]:
                assigned[item] = cluster
            remaining[cluster] -= min(len(offers), remaining[cluster])
    return np.asarray(assigned, dtype=np.int64)


def cluster_means(points: np.ndarray, codes: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Mean of each cluster's members; an empty cluster keeps its ``previous`` centroid."""
    k = len(previous)
    source = torch.from_numpy(np.ascontiguousarray(points))
    sums = torch.zeros((k, points.shape[1]), dtype=source.dtype)
    sums.index_add_(0, torch.from_numpy(codes), source)
    counts = np.bincount(codes, minlength=k)
    means = previous.astype(points.dtype, copy=True)
    filled = counts > 0
    means[filled] = sums.numpy()[filled] / counts[filled, None]
    return means


def faiss_kmeans(points: np.ndarray, num_clusters: int, niter: int, seed: int) -> np.ndarray:
    """Seeded faiss k-means centroids ``[K, d]`` (float32)."""
    data = np.ascontiguousarray(points, dtype=np.float32)
    if len(data) < num_clusters:
        raise ConfigError(
            f"codebook size {num_clusters} exceeds the number of items {len(data)}; "
            "use a smaller codebook size (e.g. --codebook-size)"
        )
    km = faiss.Kmeans(
        data.shape[1],
        num_clusters,
        niter=niter,
        seed=seed,
        verbose=False,
        min_points_per_centroid=1,  # silence faiss's "too few points" warning; we chose K
    )
    km.train(data)
    return np.asarray(km.centroids, dtype=np.float32).copy()


@dataclass(frozen=True)
class ResidualKMeans:
    """Fitted residual k-means: ``codes [N, L]`` (the fitted assignment), ``centroids [L, K, d]``."""

    codes: np.ndarray
    centroids: np.ndarray


ProgressFn = Callable[[str], None]


def fit_residual_kmeans(
    embeddings: np.ndarray, config: TokenizerConfig, on_step: ProgressFn | None = None
) -> ResidualKMeans:
    """Fit ``config.levels`` levels of (balanced or plain) k-means on successive residuals.

    ``on_step`` is called with a short description after each unit of work (progress bars).
    """
    residuals = np.ascontiguousarray(embeddings, dtype=np.float32).copy()  # [N, d]
    k = config.codebook_size
    level_codes, level_centroids = [], []
    for level in range(config.levels):
        seed = config.seed + level
        centroids = faiss_kmeans(residuals, k, config.kmeans_iters, seed)  # [K, d]
        if config.method == "plain":
            codes = nearest_centroid(residuals, centroids)
        else:
            codes = np.full(len(residuals), -1, dtype=np.int64)
            for _ in range(config.balanced_iters):
                new_codes = balanced_assign(residuals, centroids, None, config.num_candidates)
                centroids = cluster_means(residuals, new_codes, centroids)
                if np.array_equal(new_codes, codes):
                    break
                codes = new_codes
        residuals -= centroids[codes]
        level_codes.append(codes)
        level_centroids.append(centroids)
        if on_step is not None:
            on_step(f"level {level + 1}/{config.levels}")
    return ResidualKMeans(codes=np.stack(level_codes, 1), centroids=np.stack(level_centroids))


def encode_residual(embeddings: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest-centroid codes ``[M, L]`` for embeddings, level by level on residuals.

    This is the path for *new* items; catalogue items keep their fitted (balanced) codes.
    """
    residuals = np.ascontiguousarray(embeddings, dtype=np.float32).copy()
    out = np.empty((len(residuals), len(centroids)), dtype=np.int64)
    for level, level_centroids in enumerate(centroids):
        out[:, level] = nearest_centroid(residuals, level_centroids)
        residuals -= level_centroids[out[:, level]]
    return out
