"""Control measures against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from onerec.retrieval.eval_control import (
    heldout_metrics,
    interleave,
    spearman,
    target_auc,
    topk_excluding,
)
from onerec.retrieval.examples import HeldOutUsers


def _held(targets: list[list[int]], values: list[list[float]]) -> HeldOutUsers:
    n = len(targets)
    return HeldOutUsers(
        user_idx=np.arange(n),
        history=np.zeros((n, 1), dtype=np.int64),
        seen=[np.array([], dtype=np.int64) for _ in range(n)],
        targets=[np.array(t) for t in targets],
        target_values=[np.array(v, dtype=float) for v in values],
        condition_max=np.zeros(n, dtype=np.float32),
        condition_mean=np.zeros(n, dtype=np.float32),
    )


def test_heldout_metrics_by_hand() -> None:
    held = _held([[1, 2], [3, 4, 5]], [[10.0, 30.0], [5.0, float("nan"), 15.0]])
    topk = np.array([[2, 7, 1], [5, 8, 9]])
    m = heldout_metrics(topk, held, ks=[1, 3])
    # @1: user0 hits {2} → 1/2; user1 hits {5} → 1/3
    assert m["recall@1"] == pytest.approx((1 / 2 + 1 / 3) / 2)
    # weighted: hits 30 + 15 over finite totals 40 + 20
    assert m["target_recall@1"] == pytest.approx(45 / 60)
    assert m["hit_target@1"] == pytest.approx((30 + 15) / 2)
    assert m["hits@1"] == 2
    # SE over users of the per-user recalls (1/2, 1/3)
    assert m["recall@1_se"] == pytest.approx(np.std([1 / 2, 1 / 3], ddof=1) / np.sqrt(2))
    # @3: user0 hits both (1, 2); user1 still only 5
    assert m["recall@3"] == pytest.approx((1 + 1 / 3) / 2)
    assert m["target_recall@3"] == pytest.approx(55 / 60)
    assert m["hit_target@3"] == pytest.approx((10 + 30 + 15) / 3)


def test_target_auc_by_hand() -> None:
    # One user, items 0, 1, 2 with targets 1, 2, 3. Scores = item vectors · user.
    held = _held([[0, 1, 2]], [[1.0, 2.0, 3.0]])
    user = torch.tensor([[1.0]])
    assert target_auc(user, torch.tensor([[0.1], [0.2], [0.3]]), held) == 1.0  # same order
    assert target_auc(user, torch.tensor([[0.3], [0.2], [0.1]]), held) == 0.0  # reversed
    # scores 0.2, 0.1, 0.3: pairs (1>0) wrong, (2>0) right, (2>1) right → 2/3
    assert target_auc(user, torch.tensor([[0.2], [0.1], [0.3]]), held) == pytest.approx(2 / 3)
    # a tie counts ½: scores 0.1, 0.1, 0.3 → (½ + 1 + 1) / 3
    assert target_auc(user, torch.tensor([[0.1], [0.1], [0.3]]), held) == pytest.approx(2.5 / 3)
    assert math.isnan(target_auc(user, torch.ones(3, 1), _held([[0]], [[1.0]])))


def test_topk_excluding_masks_seen_items() -> None:
    users = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    items = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    top = topk_excluding(users, items, [np.array([0]), np.array([], dtype=np.int64)], k=2)
    assert top.tolist() == [[1, 3], [2, 3]]


def test_interleave_round_robin_without_repeats() -> None:
    a = np.array([[1, 2, 3, 4]])
    b = np.array([[2, 5, 6, 7]])
    assert interleave([a, b], 4).tolist() == [[1, 2, 5, 3]]


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 25, 100]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [1, 1, 2]) == pytest.approx(math.sqrt(3) / 2)  # ties: average ranks
