"""Balanced assignment (fast vs reference), capacities, and residual k-means invariants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onerec.errors import ConfigError
from onerec.tokenizer.config import TokenizerConfig
from onerec.tokenizer.kmeans import (
    balanced_assign,
    balanced_assign_reference,
    cluster_means,
    encode_residual,
    exact_capacities,
    fit_residual_kmeans,
    nearest_candidates,
    nearest_centroid,
    squared_distances,
)


def _blobs(rng: np.random.Generator, n: int, d: int, dtype=np.float32) -> np.ndarray:
    # Lopsided mixture: one dense blob holds half the points, so plain k-means is unbalanced.
    centers = rng.normal(size=(6, d)) * 3
    which = np.where(rng.random(n) < 0.5, 0, rng.integers(1, 6, n))
    return (centers[which] + rng.normal(size=(n, d))).astype(dtype)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 200),
    k=st.integers(1, 24),
    d=st.integers(1, 6),
    slack=st.integers(0, 30),
    m=st.integers(2, 8),
    seed=st.integers(0, 10_000),
)
def test_balanced_assign_respects_given_capacities_exactly(n, k, d, slack, m, seed):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, d)).astype(np.float32)
    centroids = rng.normal(size=(k, d)).astype(np.float32)
    # random capacities summing to n + slack (some may be zero)
    caps = np.bincount(rng.integers(0, k, n + slack), minlength=k)
    codes = balanced_assign(points, centroids, caps, num_candidates=m)
    assert codes.shape == (n,) and codes.min() >= 0 and codes.max() < k
    assert (np.bincount(codes, minlength=k) <= caps).all()


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 300), k=st.integers(1, 40), seed=st.integers(0, 10_000))
def test_default_capacities_give_sizes_floor_or_ceil(n, k, seed):
    rng = np.random.default_rng(seed)
    points = _blobs(rng, n, 3)
    centroids = rng.normal(size=(k, 3)).astype(np.float32)
    sizes = np.bincount(balanced_assign(points, centroids, num_candidates=4), minlength=k)
    assert sizes.sum() == n
    assert sizes.min() >= n // k and sizes.max() <= -(-n // k)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 60),
    k=st.integers(1, 10),
    m=st.integers(2, 12),
    seed=st.integers(0, 10_000),
)
def test_fast_assignment_matches_reference(n, k, m, seed):
    # float64 keeps distances identical between full rows and recomputed candidate lists
    rng = np.random.default_rng(seed)
    points = _blobs(rng, n, 4, np.float64)
    centroids = rng.normal(size=(k, 4)) * 2
    np.testing.assert_array_equal(
        balanced_assign(points, centroids, num_candidates=m),
        balanced_assign_reference(points, centroids),
    )


def test_regret_priority_on_a_hand_example():
    # Two clusters of capacity 1 at x=0 and x=10. Item A (x=1) and B (x=4) both prefer 0;
    # B loses less by moving (regret 36-16=20 vs A's 81-1=80), so A keeps cluster 0.
    points = np.array([[4.0], [1.0]], dtype=np.float32)
    centroids = np.array([[0.0], [10.0]], dtype=np.float32)
    caps = np.array([1, 1])
    assert balanced_assign(points, centroids, caps).tolist() == [1, 0]
    assert balanced_assign_reference(points, centroids, caps).tolist() == [1, 0]


def test_exact_capacities_give_extras_to_most_wanted():
    nearest = np.array([2, 2, 2, 0, 1, 1, 2])  # n=7, k=3 -> base 2, one extra
    assert exact_capacities(nearest, 3).tolist() == [2, 2, 3]
    assert exact_capacities(np.array([0, 1, 0, 1]), 3).tolist() == [2, 1, 1]  # ties -> low index
    assert exact_capacities(np.array([0, 0, 1, 1]), 2).tolist() == [2, 2]


def test_capacities_must_cover_all_points():
    with pytest.raises(ValueError, match="summing"):
        balanced_assign(
            np.zeros((3, 2), np.float32), np.zeros((2, 2), np.float32), np.array([1, 1])
        )


def test_distances_candidates_and_means():
    import torch

    points = np.array([[0.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    centroids = np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    dist = squared_distances(torch.from_numpy(points), torch.from_numpy(centroids)).numpy()
    np.testing.assert_allclose(dist, [[0, 9, 25], [25, 16, 0]])
    d2, i2 = nearest_candidates(points, centroids, 2)
    assert i2.tolist() == [[0, 1], [2, 1]] and d2.tolist() == [[0, 9], [0, 16]]
    assert nearest_centroid(points, centroids).tolist() == [0, 2]
    means = cluster_means(points, np.array([1, 1]), centroids)
    np.testing.assert_allclose(means, [[0, 0], [1.5, 2], [3, 4]])  # empty clusters keep theirs


@pytest.mark.parametrize("method", ["balanced", "plain"])
def test_residual_levels_use_the_assigned_centroid(method):
    rng = np.random.default_rng(0)
    emb = _blobs(rng, 400, 8)
    cfg = TokenizerConfig(levels=3, codebook_size=8, method=method, kmeans_iters=10)
    fitted = fit_residual_kmeans(emb, cfg)
    assert fitted.codes.shape == (400, 3) and fitted.centroids.shape == (3, 8, 8)
    residual = emb.astype(np.float64)
    for level in range(3):
        codes = fitted.codes[:, level]
        sizes = np.bincount(codes, minlength=8)
        if method == "balanced":
            assert sizes.min() == 50 and sizes.max() == 50
            # balanced centroids are the means of their members' residuals
            for c in range(8):
                np.testing.assert_allclose(
                    fitted.centroids[level, c], residual[codes == c].mean(0), atol=1e-4
                )
        residual = residual - fitted.centroids[level][codes]
    if method == "plain":
        # plain codes are the nearest-centroid encoding, so the new-item path reproduces them
        np.testing.assert_array_equal(encode_residual(emb, fitted.centroids), fitted.codes)
        assert np.bincount(fitted.codes[:, 0], minlength=8).max() > 50  # lopsided data shows


def test_fit_is_deterministic_and_rejects_too_large_codebooks():
    rng = np.random.default_rng(1)
    emb = _blobs(rng, 120, 5)
    cfg = TokenizerConfig(levels=2, codebook_size=6, kmeans_iters=5, balanced_iters=3)
    a, b = fit_residual_kmeans(emb, cfg), fit_residual_kmeans(emb, cfg)
    np.testing.assert_array_equal(a.codes, b.codes)
    with pytest.raises(ConfigError, match="codebook size"):
        fit_residual_kmeans(emb[:5], cfg)
