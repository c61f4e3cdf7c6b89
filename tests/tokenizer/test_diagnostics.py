"""Diagnostics against a hand-built example (numbers derived by hand in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rich.console import Console

from onerec.tokenizer.diagnostics import compute_diagnostics, diagnostics_table
from onerec.tokenizer.semantic import disambiguate


def _example():
    # 5 items in 1-D, L = 2 levels, K = 3 codes (code 2 never used).
    emb = np.array([[0.0], [2.0], [10.0], [12.0], [12.0]], dtype=np.float32)
    centroids = np.array(
        [
            [[1.0], [11.0], [100.0]],  # level 1
            [[-1.0], [1.0], [50.0]],
        ],  # level 2
        dtype=np.float32,
    )
    # level-1 residuals: [-1, 1, -1, 1, 1]; item 0 is *fitted* to level-2 code 1 although
    # code 0 is nearer (as a balanced fit may do) -> residual -2 for it, 0 for the others.
    level_codes = np.array([[0, 1], [0, 1], [1, 0], [1, 1], [1, 1]])
    codes, _ = disambiguate(level_codes)
    return emb, level_codes, centroids, codes


def test_hand_example():
    d = compute_diagnostics(*_example())
    # tuples (0,1),(0,1),(1,0),(1,1),(1,1): items 0,1 and 3,4 share -> 4/5
    assert d["collision_rate"] == pytest.approx(0.8)
    assert d["colliding_items"] == 4 and d["colliding_groups"] == 2
    assert d["distinct_tuples"] == 3 and d["max_group_size"] == 2
    assert d["disambiguation_size"] == 2 and d["duplicate_ids_after_dedup"] == 0
    assert d["mean_sq_norm"] == pytest.approx((0 + 4 + 100 + 144 + 144) / 5)
    l1, l2 = d["per_level"]
    # level 1: sizes [2, 3, 0], mean 5/3
    assert l1["used_codes"] == 2 and l1["utilisation"] == pytest.approx(2 / 3)
    assert l1["max_cluster"] == 3 and l1["min_cluster"] == 0
    assert l1["max_over_mean"] == pytest.approx(3 / (5 / 3))
    h1 = -(0.4 * math.log(0.4) + 0.6 * math.log(0.6)) / math.log(3)
    assert l1["size_entropy"] == pytest.approx(h1)
    assert l1["distinct_prefixes"] == 2 and l1["prefix_utilisation"] == pytest.approx(2 / 3)
    assert l1["quantisation_mse"] == pytest.approx(1.0)  # every residual is ±1
    assert l1["relative_quantisation_error"] == pytest.approx(1.0 / 78.4)
    assert l1["reencode_agreement"] == 1.0 and l1["reencode_max_over_mean"] == pytest.approx(1.8)
    # level 2: sizes [1, 4, 0]; residuals [-2, 0, 0, 0, 0]
    assert l2["max_over_mean"] == pytest.approx(4 / (5 / 3))
    h2 = -(0.2 * math.log(0.2) + 0.8 * math.log(0.8)) / math.log(3)
    assert l2["size_entropy"] == pytest.approx(h2)
    assert l2["quantisation_mse"] == pytest.approx(4 / 5)
    assert l2["distinct_prefixes"] == 3 and l2["prefix_utilisation"] == pytest.approx(3 / 5)
    # nearest-centroid re-encoding moves item 0 to code 0: sizes [2, 3, 0], agreement 4/5
    assert l2["reencode_max_over_mean"] == pytest.approx(1.8)
    assert l2["reencode_agreement"] == pytest.approx(0.8)


def test_table_renders_methods_side_by_side():
    d = compute_diagnostics(*_example())
    console = Console(width=200, record=True)
    console.print(
        diagnostics_table(
            {"balanced": {**d, "fit_seconds": 1.5}, "plain": {**d, "fit_seconds": 0.5}}
        )
    )
    text = console.export_text()
    assert "balanced" in text and "plain" in text
    assert "80.0 %" in text and "L2 largest / mean cluster" in text and "2.400" in text
    assert "1.5" in text
