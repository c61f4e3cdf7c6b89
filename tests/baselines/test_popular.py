"""Most-popular: counts from training sequences only, deterministic ties, hand metrics."""

from __future__ import annotations

import numpy as np

from onerec.baselines.popular import MostPopular
from onerec.data import leave_one_out
from onerec.eval import evaluate_scorer


def test_counts_and_ranking() -> None:
    model = MostPopular.fit([np.array([2, 2, 1]), np.array([2, 3])], num_items=5)
    assert model.counts.tolist() == [0, 1, 3, 1, 0]
    scores = model.score_histories([np.array([0])] * 2)
    order = scores[0].argsort(descending=True).tolist()
    assert order == [2, 1, 3, 0, 4]  # ties (1 vs 3, 0 vs 4) go to the lower index


def test_only_training_items_are_counted_and_metrics_by_hand() -> None:
    # three users; validation/test targets (last two items) must not be counted
    seqs = [np.array([0, 1, 4, 4]), np.array([0, 2, 3, 4]), np.array([0, 1, 2, 1])]
    split = leave_one_out(seqs, max_history=20)
    model = MostPopular.fit(split.train_sequences, num_items=5)
    # training parts: [0, 1], [0, 2], [0, 1] -> counts 0:3, 1:2, 2:1, 3:0, 4:0
    assert model.counts.tolist() == [3, 2, 1, 0, 0]
    # ranking 0, 1, 2, 3, 4. Test targets 4, 4, 1 -> ranks 4, 4, 1
    # hr@2 = 1/3; ndcg@5 = (2 / log2(6) + 1 / log2(3)) / 3
    metrics = evaluate_scorer(model.score_histories, split.test, ks=(2, 5))
    assert np.isclose(metrics["hr@2"], 1 / 3)
    assert np.isclose(metrics["ndcg@5"], (2 / np.log2(6) + 1 / np.log2(3)) / 3)
