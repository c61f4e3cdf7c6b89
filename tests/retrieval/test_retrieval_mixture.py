"""The ``mix`` strategy's pure parts against hand-derived values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from onerec.retrieval.condition import ConditionNormalizer
from onerec.retrieval.mixture import level_prior, mixture_log_probs


def test_mixture_log_probs_by_hand() -> None:
    # Level 0: equal logits -> (1/2, 1/2). Level 1: logits (log 3, 0) -> (3/4, 1/4).
    logits = torch.tensor([[[0.0, 0.0]], [[math.log(3.0), 0.0]]])  # [C=2, U=1, I=2]
    mixed = mixture_log_probs(logits, torch.tensor([0.5, 0.5]))
    np.testing.assert_allclose(mixed.exp().numpy(), [[0.625, 0.375]], rtol=1e-6)
    # A zero-weight level drops out; a shift of one level's logits changes nothing (softmax).
    only_second = mixture_log_probs(
        logits + torch.tensor([[[5.0]], [[-2.0]]]), torch.tensor([0.0, 1.0])
    )
    np.testing.assert_allclose(only_second.exp().numpy(), [[0.75, 0.25]], rtol=1e-6)
    with pytest.raises(ValueError, match="must be"):
        mixture_log_probs(logits, torch.tensor([1.0]))


def test_level_prior_buckets_are_the_training_shares() -> None:
    ratings = np.array([1] * 10 + [2] * 10 + [3] * 20 + [4] * 35 + [5] * 25, dtype=float)
    normalizer = ConditionNormalizer.fit(ratings, "bucket", num_levels=10)
    positions, weights = level_prior(normalizer)
    assert normalizer.num_levels == 5
    np.testing.assert_array_equal(positions, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(weights, [0.10, 0.10, 0.20, 0.35, 0.25], atol=1e-6)
    # Each bucket's share is what encode() assigns to it.
    counts = np.bincount(normalizer.encode(ratings).astype(int), minlength=5) / len(ratings)
    np.testing.assert_allclose(weights, counts, atol=1e-6)


def test_level_prior_continuous_is_trapezoid() -> None:
    values = np.random.default_rng(0).lognormal(size=5000)
    positions, weights = level_prior(ConditionNormalizer.fit(values, "continuous", num_levels=5))
    np.testing.assert_array_equal(positions, [0, 1, 2, 3, 4])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125], atol=1e-7)
