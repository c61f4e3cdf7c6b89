"""Full-ranking protocol: batching does not change results; history exclusion is optional."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from onerec.eval import MetricsReport, evaluate_scorer, ranking_metrics_reference
from onerec.eval.protocols import rank_all

NUM_ITEMS = 20


@dataclass
class _Examples:
    histories: list[np.ndarray]
    targets: np.ndarray


def _examples() -> _Examples:
    rng = np.random.default_rng(3)
    histories = [rng.integers(0, NUM_ITEMS, size=rng.integers(1, 6)) for _ in range(37)]
    # target: the next item after the last one, so a "last + 1" scorer is always right
    targets = np.array([(h[-1] + 1) % NUM_ITEMS for h in histories])
    return _Examples(histories, targets)


def _next_item_scorer(histories: list[np.ndarray]) -> torch.Tensor:
    last = torch.tensor([int(h[-1]) for h in histories])
    items = torch.arange(NUM_ITEMS)
    # item (last+1) scores highest, then last+2, …; last itself lowest
    return -((items[None, :] - last[:, None] - 1) % NUM_ITEMS).float()  # [B, num_items]


def test_perfect_scorer_scores_one() -> None:
    metrics = evaluate_scorer(_next_item_scorer, _examples(), ks=(5, 10), batch_size=8)
    assert metrics["recall@10"] == 1.0 and metrics["ndcg@10"] == 1.0 and metrics["mrr@5"] == 1.0


def test_batch_size_does_not_change_results() -> None:
    rng = np.random.default_rng(0)
    table = torch.from_numpy(rng.normal(size=(NUM_ITEMS, NUM_ITEMS))).float()

    def scorer(histories: list[np.ndarray]) -> torch.Tensor:
        return table[[int(h[-1]) for h in histories]]

    examples = _examples()
    a = evaluate_scorer(scorer, examples, ks=(1, 5, 10), batch_size=5)
    b = evaluate_scorer(scorer, examples, ks=(1, 5, 10), batch_size=100)
    assert a == b
    topk = rank_all(scorer, examples, 10, batch_size=7)
    reference = ranking_metrics_reference(topk, examples.targets, ks=(1, 5, 10))
    assert a == pytest.approx(reference, abs=1e-12)


def test_exclude_history_changes_ranking() -> None:
    examples = _Examples([np.array([1, 2])], np.array([2]))

    def scorer(histories: list[np.ndarray]) -> torch.Tensor:
        scores = torch.zeros(len(histories), NUM_ITEMS)
        scores[:, 2] = 5.0  # the target, which is also in the history
        return scores

    assert evaluate_scorer(scorer, examples, ks=(1,))["hr@1"] == 1.0  # TIGER default
    assert evaluate_scorer(scorer, examples, ks=(1,), exclude_history=True)["hr@1"] == 0.0


def test_report_json_and_table(tmp_path: Path) -> None:
    report = MetricsReport(
        {"valid": {"recall@5": 0.1, "ndcg@5": 0.05, "recall@10": 0.2, "ndcg@10": 0.07}},
        meta={"model": "x"},
    )
    path = report.save(tmp_path / "metrics.json")
    assert json.loads(path.read_text())["metrics"]["valid"]["ndcg@10"] == 0.07
    assert MetricsReport.load(path).splits == report.splits
    assert report.columns() == ["recall@5", "ndcg@5", "recall@10", "ndcg@10"]
    console = Console(record=True, width=100)
    report.print(console)
    text = console.export_text()
    assert "R@10" in text and "N@5" in text and "0.0700" in text
