"""SemanticTokenizer: unique IDs, lookups both ways, trie, save/load, new items."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onerec.errors import CheckpointError, DataValidationError, OnerecError
from onerec.tokenizer import SemanticTokenizer, TokenizerConfig, disambiguate
from onerec.tokenizer.semantic import META_FILE, TENSORS_FILE

SMALL: dict[str, Any] = {"kmeans_iters": 5, "balanced_iters": 3}


def _embeddings(seed: int, n: int, d: int = 6, distinct: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(distinct or n, d)).astype(np.float32)
    # repeated rows force shared code tuples, so the disambiguation level is exercised
    return base[rng.integers(0, len(base), n)] if distinct else base


def test_disambiguation_ranks_by_item_within_group():
    level = np.array([[1, 2], [0, 0], [1, 2], [3, 1], [1, 2], [0, 0]])
    codes, size = disambiguate(level)
    assert codes[:, -1].tolist() == [0, 0, 1, 0, 2, 1]
    assert size == 3
    np.testing.assert_array_equal(codes[:, :2], level)
    _, size_unique = disambiguate(np.array([[0], [1]]))
    assert size_unique == 1
    # appending rows keeps earlier codes (what add_items relies on)
    more, _ = disambiguate(np.concatenate([level, [[1, 2], [9, 9]]]))
    np.testing.assert_array_equal(more[: len(level)], codes)
    assert more[6:, -1].tolist() == [3, 0]


def _check_round_trip_and_paths(tok: SemanticTokenizer) -> None:
    n = tok.num_items
    assert tok.codes.shape == (n, tok.num_levels + 1) == (n, tok.num_code_levels)
    assert len(np.unique(tok.codes, axis=0)) == n
    for item in range(n):
        assert tok.codes_to_item(tok.item_to_codes(item)) == item
    # walk every trie path: each full path names exactly one item, all items are reached
    reached: list[int] = []
    frontier: list[list[int]] = [[]]
    for _ in range(tok.num_code_levels):
        frontier = [p + [int(c)] for p in frontier for c in tok.trie.allowed_next(p)]
    for path in frontier:
        found = tok.codes_to_item(path)
        assert found is not None and tuple(path) == tok.item_to_codes(found)
        reached.append(found)
    assert sorted(reached) == list(range(n))


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    n=st.integers(8, 80),
    k=st.integers(2, 8),
    levels=st.integers(1, 3),
    method=st.sampled_from(["balanced", "plain"]),
    duplicates=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_fit_save_load_round_trip(tmp_path_factory, n, k, levels, method, duplicates, seed):
    k = min(k, n)
    emb = _embeddings(seed, n, distinct=max(2, n // 3) if duplicates else None)
    cfg = TokenizerConfig(levels=levels, codebook_size=k, method=method, seed=seed, **SMALL)
    tok = SemanticTokenizer.fit(emb, config=cfg)
    _check_round_trip_and_paths(tok)
    assert tok.codebook_sizes[:-1] == [k] * levels
    assert tok.codebook_sizes[-1] == tok.diagnostics()["max_group_size"]
    out = tmp_path_factory.mktemp("tok") / "saved"
    tok.save(out)
    again = SemanticTokenizer.load(out)
    np.testing.assert_array_equal(again.codes, tok.codes)
    np.testing.assert_array_equal(again.centroids, tok.centroids)
    assert again.trie.equals(tok.trie) and again.codebook_sizes == tok.codebook_sizes
    assert again.config == tok.config and again.diagnostics() == json.loads(
        json.dumps(tok.diagnostics())
    )
    _check_round_trip_and_paths(again)


def test_item_idx_permutation_places_rows():
    emb = _embeddings(3, 40)
    perm = np.random.default_rng(0).permutation(40)
    cfg = TokenizerConfig(levels=2, codebook_size=4, **SMALL)
    direct = SemanticTokenizer.fit(emb, config=cfg)
    shuffled = np.empty_like(emb)
    shuffled[np.argsort(perm)] = emb  # row r of `shuffled` is item perm[r]
    via_perm = SemanticTokenizer.fit(shuffled, item_idx=perm, config=cfg)
    np.testing.assert_array_equal(via_perm.codes, direct.codes)
    with pytest.raises(DataValidationError, match="permutation"):
        SemanticTokenizer.fit(emb, item_idx=np.zeros(40, int), config=cfg)


def test_fit_rejects_bad_embeddings():
    cfg = TokenizerConfig(levels=1, codebook_size=2, **SMALL)
    bad = _embeddings(0, 10)
    bad[7, 1] = np.nan
    with pytest.raises(DataValidationError, match=r"NaN.*\[7\]"):
        SemanticTokenizer.fit(bad, config=cfg)
    with pytest.raises(DataValidationError, match="2-D"):
        SemanticTokenizer.fit(np.zeros(5), config=cfg)
    with pytest.raises(OnerecError, match="codebook size 16 exceeds"):
        SemanticTokenizer.fit(_embeddings(0, 10), config=TokenizerConfig(codebook_size=16))


def test_unknown_codes_and_items():
    tok = SemanticTokenizer.fit(
        _embeddings(1, 30), config=TokenizerConfig(levels=2, codebook_size=3, **SMALL)
    )
    assert tok.codes_to_item([99, 0, 0]) is None
    assert tok.codes_to_item([0, 0]) is None
    with pytest.raises(IndexError):
        tok.item_to_codes(30)


def test_new_items_keep_existing_ids(tmp_path: Path):
    emb = _embeddings(2, 60, distinct=20)
    tok = SemanticTokenizer.fit(emb, config=TokenizerConfig(levels=2, codebook_size=4, **SMALL))
    new = emb[:3] + 1e-4  # near-copies land on existing tuples
    level = tok.encode_new(new)
    assert level.shape == (3, 2)
    size = tok.codebook_sizes[-1]
    grown = tok.add_items(new, allow_grow=True)
    np.testing.assert_array_equal(grown.codes[:60], tok.codes)
    np.testing.assert_array_equal(grown.codes[60:, :2], level)
    assert grown.num_items == 63
    _check_round_trip_and_paths(grown)
    if grown.codebook_sizes[-1] > size:
        with pytest.raises(OnerecError, match="allow_grow"):
            tok.add_items(new)
    with pytest.raises(DataValidationError, match="dimension 3"):
        tok.encode_new(np.zeros((2, 3), np.float32))


def test_load_errors(tmp_path: Path):
    tok = SemanticTokenizer.fit(
        _embeddings(4, 20), config=TokenizerConfig(levels=1, codebook_size=4, **SMALL)
    )
    with pytest.raises(CheckpointError, match="not a saved tokenizer"):
        SemanticTokenizer.load(tmp_path / "nothing")
    out = tok.save(tmp_path / "tok")
    meta = json.loads((out / META_FILE).read_text())
    meta["version"] = 999
    (out / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="version 999"):
        SemanticTokenizer.load(out)
    tok.save(out)  # overwrite atomically, then damage the codes
    from safetensors.numpy import load_file, save_file

    arrays = load_file(out / TENSORS_FILE)
    arrays["codes"][0, 0] = (arrays["codes"][0, 0] + 1) % 4
    save_file(arrays, out / TENSORS_FILE)
    with pytest.raises(CheckpointError):
        SemanticTokenizer.load(out)
