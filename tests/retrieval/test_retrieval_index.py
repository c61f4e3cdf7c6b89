"""faiss item index: exact vs HNSW/IVF recall, exclusion, save/load round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from onerec.errors import CheckpointError
from onerec.retrieval.index import IndexConfig, ItemIndex, exact_topk, recall_vs_exact


def _unit(n: int, d: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_flat_index_is_exact_inner_product() -> None:
    items, queries = _unit(500, 16, 0), _unit(20, 16, 1)
    index = ItemIndex.build(items, IndexConfig(kind="flat"))
    scores, found = index.search(queries, 10)
    brute = np.argsort(-(queries @ items.T), axis=1)[:, :10]
    assert np.array_equal(found, brute)
    assert np.allclose(scores, np.take_along_axis(queries @ items.T, brute, axis=1), atol=1e-5)


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    # Learned item vectors cluster (genres, topics); uniform noise is IVF's worst case.
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((20, d))
    x = centres[rng.integers(0, 20, n)] + 0.5 * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_reach_high_recall(kind: str) -> None:
    points = _clustered(3100, 32, 2)
    items, queries = points[:3000], points[3000:]
    index = ItemIndex.build(items, IndexConfig(kind=kind, ef_construction=64, ef_search=128))
    assert recall_vs_exact(index, items, queries, k=100) >= 0.95


def test_hnsw_returns_k_even_when_ef_search_is_smaller() -> None:
    items = _unit(300, 8, 4)
    index = ItemIndex.build(items, IndexConfig(kind="hnsw", ef_construction=32, ef_search=16))
    assert (index.search(items[:3], 100)[1] >= 0).all()


def test_search_excluding_skips_items() -> None:
    items = _unit(300, 8, 5)
    index = ItemIndex.build(items, IndexConfig(kind="flat"))
    top = exact_topk(items, items[:1], 5)[0]
    _, found = index.search_excluding(items[0], 5, exclude=top[:2])
    assert not set(top[:2]) & set(found.tolist())
    assert found.tolist()[:3] == top[2:].tolist()
    assert len(found) == 5


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_save_load_round_trip(tmp_path: Path, kind: str) -> None:
    items, queries = _unit(400, 16, 6), _unit(10, 16, 7)
    index = ItemIndex.build(items, IndexConfig(kind=kind, ef_construction=32, ef_search=64))
    index.save(tmp_path)
    again = ItemIndex.load(tmp_path)
    assert again.config == index.config and again.num_items == 400 and again.dim == 16
    assert np.array_equal(index.search(queries, 20)[1], again.search(queries, 20)[1])


def test_load_missing_or_corrupt_index_is_a_checkpoint_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no item index"):
        ItemIndex.load(tmp_path)
    ItemIndex.build(_unit(50, 4, 8), IndexConfig(kind="flat")).save(tmp_path)
    (tmp_path / "item_index.faiss").write_bytes(b"not an index")
    with pytest.raises(CheckpointError):
        ItemIndex.load(tmp_path)
