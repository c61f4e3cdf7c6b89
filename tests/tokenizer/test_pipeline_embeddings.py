"""``build_embeddings``: text+collab joining and training-split-only collaborative counts."""

from __future__ import annotations

import numpy as np
import pytest

from onerec.data import load_dataset
from onerec.errors import OnerecError
from onerec.tokenizer import pipeline
from onerec.tokenizer.config import EmbeddingSourceConfig
from onerec.tokenizer.pipeline import build_embeddings, concat_unit_rows

DEMO = "kuairand-demo"


def test_concat_unit_rows_by_hand():
    first = np.array([[3.0, 4.0], [0.0, 2.0]])
    second = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 0.0]])
    joined = concat_unit_rows(first, second, 0.5)
    expected = np.array([[0.6, 0.8, 0.0, 0.0, 0.5], [0.0, 1.0, 0.0, 0.0, 0.0]])  # zero row stays 0
    np.testing.assert_allclose(joined, expected, atol=1e-7)
    assert joined.dtype == np.float32
    with pytest.raises(OnerecError, match="cannot join 2 and 1"):
        concat_unit_rows(first, second[:1], 1.0)


def test_collab_counts_only_the_sequences_given():
    dataset = load_dataset(DEMO)
    full = dataset.sequences()
    config = EmbeddingSourceConfig(kind="collab", collab_dim=8)
    everything = build_embeddings(DEMO, config, show_progress=False).matrix
    # Keep only the first half of every sequence: items seen only later get zero vectors (not an
    # error), and the vectors differ from the ones counted on everything.
    halves = [seq[: len(seq) // 2] for seq in full]
    split = build_embeddings(DEMO, config, show_progress=False, sequences=halves)
    seen = np.zeros(dataset.num_items, dtype=bool)
    for seq in halves:
        if len(seq) > 1:
            seen[seq] = True
    assert "training split only" in split.description
    zero_rows = np.linalg.norm(split.matrix, axis=1) == 0
    assert zero_rows.any() and not zero_rows[seen].any()
    assert np.all(zero_rows[~seen])
    assert not np.allclose(split.matrix, everything)


def test_text_plus_collab_joins_both_parts(monkeypatch: pytest.MonkeyPatch):
    dataset = load_dataset(DEMO)

    def fake_text(items, *args, **kwargs):  # MiniLM stand-in: 3-d vectors from the row number
        rows = np.arange(items.height, dtype=np.float32)
        return np.stack([rows + 1, np.ones_like(rows), rows % 7], axis=1)

    monkeypatch.setattr(pipeline, "text_embeddings", fake_text)
    config = EmbeddingSourceConfig(kind="text+collab", collab_dim=8, collab_weight=0.5)
    joined = build_embeddings(DEMO, config, show_progress=False)
    assert joined.matrix.shape == (dataset.num_items, 3 + 8)
    np.testing.assert_allclose(np.linalg.norm(joined.matrix[:, :3], axis=1), 1.0, rtol=1e-6)
    collab_norms = np.linalg.norm(joined.matrix[:, 3:], axis=1)
    np.testing.assert_allclose(collab_norms[collab_norms > 0], 0.5, rtol=1e-6)
    assert "MiniLM" in joined.description and "0.5 x collaborative" in joined.description
