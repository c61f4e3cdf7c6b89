"""Reward loss against hand-derived numbers; AUC against a brute-force pair count."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from onerec.reward.config import TargetSpec
from onerec.reward.loss import reward_loss
from onerec.reward.metrics import binary_auc, mae, rmse


def test_reward_loss_hand_derived() -> None:
    targets = [
        TargetSpec(name="swt", column="play_time_ms", kind="regression"),
        TargetSpec(name="vtr", column="long_view", loss_weight=2.0),
    ]
    mask = torch.tensor([[True, True], [True, False]])
    predictions = {
        "swt": torch.tensor([[0.0, 1.0], [2.0, 99.0]]),
        "vtr": torch.tensor([[0.0, 0.0], [0.0, 99.0]]),
    }
    labels = {
        # log1p(e − 1) = 1 and log1p(0) = 0: squared errors (0−1)², (1−0)², (2−1)² → mean 1.
        "swt": torch.tensor([[math.e - 1.0, 0.0], [math.e - 1.0, 0.0]]),
        # Logit 0 → BCE = log 2 for either label; the padded 99 is ignored.
        "vtr": torch.tensor([[1.0, 0.0], [1.0, 1.0]]),
    }
    total, parts = reward_loss(predictions, labels, mask, targets)
    assert parts["swt"].item() == pytest.approx(1.0)
    assert parts["vtr"].item() == pytest.approx(math.log(2.0))
    assert total.item() == pytest.approx(1.0 + 2.0 * math.log(2.0))


def _pairwise_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[labels == 1], scores[labels == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


def test_auc_matches_pair_counting_with_ties() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        labels = rng.integers(0, 2, size=40)
        scores = rng.integers(0, 6, size=40).astype(float)  # many ties
        assert binary_auc(labels, scores) == pytest.approx(_pairwise_auc(labels, scores))
    assert binary_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.3, 0.4])) == 1.0
    assert binary_auc(np.array([1, 1, 0, 0]), np.array([0.1, 0.2, 0.3, 0.4])) == 0.0
    assert math.isnan(binary_auc(np.array([0, 0]), np.array([0.1, 0.2])))


def test_rmse_and_mae() -> None:
    assert rmse(np.array([0.0, 0.0]), np.array([3.0, 4.0])) == pytest.approx(math.sqrt(12.5))
    assert mae(np.array([0.0, 0.0]), np.array([3.0, -4.0])) == pytest.approx(3.5)


def test_auc_standard_error_hanley_mcneil() -> None:
    from onerec.reward.metrics import auc_standard_error

    # A = 0.8, P = 10, N = 20: Q1 = 0.8/1.2, Q2 = 1.28/1.8,
    # var = (0.16 + 9·(Q1 − 0.64) + 19·(Q2 − 0.64)) / 200.
    q1, q2 = 0.8 / 1.2, 1.28 / 1.8
    expected = math.sqrt((0.16 + 9 * (q1 - 0.64) + 19 * (q2 - 0.64)) / 200)
    assert auc_standard_error(0.8, 10, 20) == pytest.approx(expected)
    assert math.isnan(auc_standard_error(0.8, 0, 20))
