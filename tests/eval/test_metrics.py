"""Ranking metrics against hand-computed values, and the vectorised/reference parity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from onerec.eval import ranking_metrics, ranking_metrics_reference, topk_from_scores

# 4 users; target ranks: u0 -> 0, u1 -> 2, u2 -> absent, u3 -> 4
TOPK = np.array(
    [
        [7, 2, 9, 4, 5],
        [1, 3, 8, 6, 0],
        [5, 6, 7, 8, 9],
        [0, 2, 4, 6, 3],
    ]
)
TARGETS = np.array([7, 8, 1, 3])

# Hand-computed:
# @1: only u0 hits (rank 0)              hr = recall = 1/4, precision = 1/4,
#     ndcg = 1/log2(2) / 4 = 0.25, mrr = 1/1 / 4 = 0.25
# @3: u0 (rank 0), u1 (rank 2) hit       hr = 2/4 = 0.5, precision = 0.5 / 3,
#     ndcg = (1 + 1/log2(4)) / 4 = 1.5 / 4 = 0.375, mrr = (1 + 1/3) / 4 = 1/3
# @5: u0, u1, u3 (rank 4) hit            hr = 3/4, precision = 0.75 / 5 = 0.15,
#     ndcg = (1 + 0.5 + 1/log2(6)) / 4 = (1.5 + 0.3868528) / 4 = 0.4717132,
#     mrr = (1 + 1/3 + 1/5) / 4 = 0.3833333
EXPECTED = {
    "hr@1": 0.25, "recall@1": 0.25, "precision@1": 0.25, "ndcg@1": 0.25, "mrr@1": 0.25,
    "hr@3": 0.5, "recall@3": 0.5, "precision@3": 0.5 / 3, "ndcg@3": 0.375, "mrr@3": 1 / 3,
    "hr@5": 0.75, "recall@5": 0.75, "precision@5": 0.15,
    "ndcg@5": 0.4717132, "mrr@5": 0.3833333,
}  # fmt: skip


def test_ranking_metrics_hand_computed() -> None:
    got = ranking_metrics(TOPK, TARGETS, ks=(1, 3, 5))
    assert set(got) == set(EXPECTED)
    for key, value in EXPECTED.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert 1 / math.log2(6) == pytest.approx(0.3868528, abs=1e-7)


def test_reference_matches_hand_computed() -> None:
    got = ranking_metrics_reference(TOPK, TARGETS, ks=(1, 3, 5))
    for key, value in EXPECTED.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(5, 12), st.integers(0, 10_000))
def test_vectorised_matches_reference(users: int, items: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    topk = np.stack([rng.permutation(items)[:5] for _ in range(users)])
    targets = rng.integers(0, items, size=users)
    fast = ranking_metrics(topk, targets, ks=(1, 2, 5))
    slow = ranking_metrics_reference(topk, targets, ks=(1, 2, 5))
    for key in slow:
        assert fast[key] == pytest.approx(slow[key], abs=1e-12), key


def test_too_few_columns_is_an_error() -> None:
    with pytest.raises(ValueError, match="@10"):
        ranking_metrics(TOPK, TARGETS, ks=(5, 10))


def test_topk_from_scores_and_exclusion() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.4, 0.3, 0.2, 0.1]])
    assert topk_from_scores(scores, 2).tolist() == [[1, 3], [0, 1]]
    excluded = topk_from_scores(scores, 2, [np.array([1]), np.array([0, 1])])
    assert excluded.tolist() == [[3, 2], [2, 3]]
    assert scores[0, 1] == pytest.approx(0.9)  # caller's tensor untouched
    assert topk_from_scores(scores, 2, [np.array([], dtype=np.int64)] * 2).tolist() == [
        [1, 3],
        [0, 1],
    ]
