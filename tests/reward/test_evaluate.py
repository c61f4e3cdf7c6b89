"""Per-item-average baselines (plain and smoothed) and the results table."""

from __future__ import annotations

import numpy as np
import pytest

from onerec.reward.config import TargetSpec
from onerec.reward.evaluate import per_item_average, per_item_mean_raw, results_markdown
from onerec.reward.sessions import RewardExamples


def _train() -> RewardExamples:
    items = np.array([[0, 0, 3], [1, 3, 3]])  # 3 = padding (num_items = 3)
    mask = items != 3
    labels = {"vtr": np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]], dtype=np.float32)}
    return RewardExamples(
        np.array([0, 1]), items, mask, np.full((2, 1), 3), labels, np.array([0, 1])
    )


def test_per_item_average_plain_and_smoothed() -> None:
    spec = TargetSpec(name="vtr", column="long_view")
    train = _train()
    # item 0: labels 1, 0 → 0.5; item 1: 1 → 1.0; item 2 unseen → global mean 2/3.
    np.testing.assert_allclose(per_item_average(train, spec, 3)[:3], [0.5, 1.0, 2 / 3])
    # Smoothed with prior weight 3: (sum + 3·2/3) / (count + 3).
    np.testing.assert_allclose(
        per_item_average(train, spec, 3, 3.0)[:3], [(1 + 2) / 5, (1 + 2) / 4, 2 / 3]
    )
    np.testing.assert_allclose(per_item_mean_raw(train, spec, 3)[:3], [0.5, 1.0, 2 / 3])


def test_per_item_average_regression_is_in_log1p_space() -> None:
    spec = TargetSpec(name="swt", column="play_time_ms", kind="regression")
    train = _train()
    train.labels["swt"] = np.array([[np.e - 1, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=np.float32)
    assert per_item_average(train, spec, 3)[0] == pytest.approx(0.5, rel=1e-6)


def test_results_markdown_shows_na_for_single_class_targets() -> None:
    results = {
        "wtr": {
            "column": "follow",
            "kind": "binary",
            "impressions": 10,
            "positives": 0,
            "model_auc": float("nan"),
            "baseline_auc": float("nan"),
            "smoothed_auc": float("nan"),
        },
        "vtr": {
            "column": "long_view",
            "kind": "binary",
            "impressions": 10,
            "positives": 3,
            "model_auc": 0.75,
            "baseline_auc": 0.5,
            "smoothed_auc": 0.6,
        },
    }
    table = results_markdown(results)
    assert "| wtr | follow | AUC | n/a | n/a | n/a | 10 (0) |" in table
    assert "| vtr | long_view | AUC | 0.7500 | 0.5000 | 0.6000 | 10 (3) |" in table
    results["vtr"]["model_auc_se"] = 0.05
    assert "| 0.7500 ± 0.050 |" in results_markdown(results)
