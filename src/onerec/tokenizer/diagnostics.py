"""Tokenizer diagnostics: collisions, codebook utilisation, cluster balance, quantisation error.

All figures come from the *fitted* codes. Definitions (per level ``l = 1..L``, ``N`` items,
``K`` codes per level):

- ``collision_rate``: fraction of items whose L-tuple (before the disambiguation level) is
  shared with at least one other item.
- ``utilisation``: distinct codes used at level ``l`` / ``K``.
- ``prefix_utilisation``: distinct length-``l`` prefixes / ``min(N, K^l)`` — how much of the
  reachable space of the full level is used (for ``l = 1`` it equals ``utilisation`` when
  ``N ≥ K``).
- ``max_over_mean``: largest cluster / ``(N / K)``; clusters are the codes of that level (a
  level-2 code is one cluster of residuals, shared by all parents).
- ``size_entropy``: entropy of the cluster-size distribution divided by ``log K`` (1 = even).
- ``quantisation_mse``: mean ``‖r^{l+1}‖²``, the squared residual left after level ``l``;
  ``relative_quantisation_error`` divides it by the mean ``‖e‖²``.
- ``reencode_max_over_mean`` / ``reencode_agreement``: the same balance figure when items are
  re-encoded by nearest centroid (the new-item path), and the fraction of items whose
  re-encoded length-``l`` prefix equals the fitted one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from rich.table import Table

from onerec.tokenizer.kmeans import encode_residual


def collision_stats(level_codes: np.ndarray) -> dict[str, Any]:
    """Collision figures of ``level_codes [N, L]`` (tuples before disambiguation)."""
    _, inverse, counts = np.unique(level_codes, axis=0, return_inverse=True, return_counts=True)
    group_size = counts[inverse.reshape(-1)]
    return {
        "collision_rate": float((group_size > 1).mean()) if len(group_size) else 0.0,
        "colliding_items": int((group_size > 1).sum()),
        "colliding_groups": int((counts > 1).sum()),
        "distinct_tuples": len(counts),
        "max_group_size": int(counts.max()) if len(counts) else 0,
    }


def level_stats(codes: np.ndarray, codebook_size: int) -> dict[str, float]:
    """Utilisation and balance of one level's codes ``[N]``."""
    sizes = np.bincount(codes, minlength=codebook_size)
    n = len(codes)
    mean = n / codebook_size
    p = sizes[sizes > 0] / n
    entropy = float(-(p * np.log(p)).sum()) / math.log(codebook_size)
    return {
        "used_codes": int((sizes > 0).sum()),
        "utilisation": float((sizes > 0).mean()),
        "max_cluster": int(sizes.max()),
        "min_cluster": int(sizes.min()),
        "mean_cluster": float(mean),
        "max_over_mean": float(sizes.max() / mean),
        "size_entropy": entropy,
    }


def compute_diagnostics(
    embeddings: np.ndarray,
    level_codes: np.ndarray,
    centroids: np.ndarray,
    codes: np.ndarray,
) -> dict[str, Any]:
    """Diagnostics of a fitted tokenizer (see the module docstring for each figure).

    ``embeddings [N, d]`` and ``level_codes [N, L]`` in item order, ``centroids [L, K, d]``,
    ``codes [N, L+1]`` the final unique IDs (``codes[:, :L] == level_codes``).
    """
    n, num_levels = level_codes.shape
    k = centroids.shape[1]
    reencoded = encode_residual(embeddings, centroids)  # [N, L]
    residual = np.asarray(embeddings, dtype=np.float64).copy()
    base_sq = float((residual**2).sum(1).mean()) if n else 0.0
    levels = []
    for level in range(num_levels):
        residual -= centroids[level][level_codes[:, level]]
        mse = float((residual**2).sum(1).mean())
        prefixes = len(np.unique(level_codes[:, : level + 1], axis=0))
        stats = level_stats(level_codes[:, level], k)
        stats.update(
            level=level + 1,
            distinct_prefixes=prefixes,
            prefix_utilisation=prefixes / min(n, k ** (level + 1)),
            quantisation_mse=mse,
            relative_quantisation_error=mse / base_sq if base_sq > 0 else 0.0,
            reencode_max_over_mean=level_stats(reencoded[:, level], k)["max_over_mean"],
            reencode_agreement=float(
                (reencoded[:, : level + 1] == level_codes[:, : level + 1]).all(1).mean()
            ),
        )
        levels.append(stats)
    full_distinct = len(np.unique(codes, axis=0))
    return {
        "num_items": n,
        "levels": num_levels,
        "codebook_size": k,
        **collision_stats(level_codes),
        "disambiguation_size": int(codes[:, -1].max()) + 1 if n else 0,
        "duplicate_ids_after_dedup": n - full_distinct,
        "mean_sq_norm": base_sq,
        "per_level": levels,
    }


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


_ROWS: list[tuple[str, str, Any]] = [
    ("collision rate (before dedup)", "collision_rate", _pct),
    ("largest shared tuple (disamb. size)", "max_group_size", str),
    ("duplicate IDs after dedup", "duplicate_ids_after_dedup", str),
]
_LEVEL_ROWS: list[tuple[str, str, Any]] = [
    ("utilisation", "utilisation", _pct),
    ("distinct prefixes", "distinct_prefixes", str),
    ("largest / mean cluster", "max_over_mean", lambda x: f"{x:.3f}"),
    ("size entropy / log K", "size_entropy", lambda x: f"{x:.4f}"),
    ("quantisation MSE", "quantisation_mse", lambda x: f"{x:.4f}"),
    ("re-encoded largest / mean", "reencode_max_over_mean", lambda x: f"{x:.3f}"),
    ("re-encode agreement", "reencode_agreement", _pct),
]


def diagnostics_table(results: Mapping[str, Mapping[str, Any]], title: str = "") -> Table:
    """A rich table with one column per method (e.g. ``{"balanced": d1, "plain": d2}``)."""
    table = Table(title=title or None)
    table.add_column("metric")
    for name in results:
        table.add_column(name, justify="right")
    diags = list(results.values())
    for label, key, fmt in _ROWS:
        table.add_row(label, *(fmt(d[key]) for d in diags))
    num_levels = max(d["levels"] for d in diags)
    for level in range(num_levels):
        for label, key, fmt in _LEVEL_ROWS:
            cells = [fmt(d["per_level"][level][key]) if level < d["levels"] else "" for d in diags]
            table.add_row(f"L{level + 1} {label}", *cells, end_section=label == _LEVEL_ROWS[-1][0])
    if all("fit_seconds" in d for d in diags):
        table.add_row("fit seconds", *(f"{d['fit_seconds']:.1f}" for d in diags))
    return table
