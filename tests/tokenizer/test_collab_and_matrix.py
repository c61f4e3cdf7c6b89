"""Collaborative (co-occurrence) embeddings and user-given matrix files, with their errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from safetensors.numpy import save_file

from onerec.errors import DataValidationError
from onerec.tokenizer.embeddings import (
    collaborative_embeddings,
    cooccurrence_counts,
    load_embedding_matrix,
    read_embedding_file,
)
from onerec.tokenizer.embeddings.collab import ppmi_matrix


def test_cooccurrence_counts_by_hand():
    seqs = [np.array([0, 1, 2]), np.array([1, 1, 0])]
    rows, cols, counts = cooccurrence_counts(seqs, 3, window=1)
    # pairs within 1 step: (0,1), (1,2) from the first; (1,1) dropped, (1,0) from the second
    got = {(int(r), int(c)): int(n) for r, c, n in zip(rows, cols, counts, strict=True)}
    assert got == {(0, 1): 2, (1, 0): 2, (1, 2): 1, (2, 1): 1}
    rows2, cols2, counts2 = cooccurrence_counts(seqs, 3, window=2)
    # offset 2 adds (0,2) from the first sequence and (1,0) from the second, both ways
    got2 = {(int(r), int(c)): int(n) for r, c, n in zip(rows2, cols2, counts2, strict=True)}
    assert got2 == {(0, 1): 3, (1, 0): 3, (0, 2): 1, (2, 0): 1, (1, 2): 1, (2, 1): 1}
    with pytest.raises(DataValidationError, match="outside"):
        cooccurrence_counts([np.array([0, 5])], 3)


def test_ppmi_by_hand():
    # counts (0,1)=2,(1,0)=2,(1,2)=1,(2,1)=1 -> total 6; row sums [2,3,1], col sums [2,3,1]
    ppmi = ppmi_matrix(np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1]), np.array([2, 2, 1, 1]), 3)
    dense = ppmi.to_dense().numpy()
    assert dense[0, 1] == pytest.approx(math.log(2 * 6 / (2 * 3)))
    assert dense[1, 2] == pytest.approx(math.log(1 * 6 / (3 * 1)))
    assert dense[0, 0] == 0


def test_collaborative_embeddings_cluster_co_occurring_items():
    rng = np.random.default_rng(0)
    # two communities of items {0..9} and {10..19}; users stay within one
    seqs = [rng.integers(0, 10, 12) if u % 2 else rng.integers(10, 20, 12) for u in range(200)]
    emb = collaborative_embeddings(seqs, 20, dim=4, window=3)
    assert emb.shape == (20, 4) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sims = emb @ emb.T
    within = (sims[:10, :10].mean() + sims[10:, 10:].mean()) / 2
    assert within > sims[:10, 10:].mean() + 0.5
    np.testing.assert_array_equal(emb, collaborative_embeddings(seqs, 20, dim=4, window=3))


def test_collaborative_missing_items():
    seqs = [np.array([0, 1, 2, 0, 1])]
    with pytest.raises(DataValidationError, match=r"never co-occur.*\[3, 4\]"):
        collaborative_embeddings(seqs, 5, dim=2)
    emb = collaborative_embeddings(seqs, 5, dim=2, on_missing="zero")
    assert not emb[3:].any()


def test_npy_and_safetensors(tmp_path: Path):
    matrix = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.save(tmp_path / "e.npy", matrix)
    ids = ["w", "x", "y", "z"]
    out = load_embedding_matrix(tmp_path / "e.npy", ids)
    assert out.dtype == np.float32 and out.shape == (4, 3)
    with pytest.raises(DataValidationError, match="4 rows but the catalogue has 3"):
        load_embedding_matrix(tmp_path / "e.npy", ids[:3])
    with pytest.raises(DataValidationError, match="dimension 3, expected 8"):
        load_embedding_matrix(tmp_path / "e.npy", ids, expected_dim=8)
    # a model's table with a trailing padding row
    save_file(
        {"item_emb.weight": np.ones((5, 3), np.float32), "bias": np.ones(3, np.float32)},
        tmp_path / "m.safetensors",
    )
    assert load_embedding_matrix(tmp_path / "m.safetensors", ids).shape == (4, 3)
    save_file(
        {"a": np.ones((4, 3), np.float32), "b": np.ones((4, 2), np.float32)},
        tmp_path / "two.safetensors",
    )
    with pytest.raises(DataValidationError, match="tensor_name"):
        load_embedding_matrix(tmp_path / "two.safetensors", ids)
    assert load_embedding_matrix(tmp_path / "two.safetensors", ids, tensor_name="b").shape == (4, 2)
    with pytest.raises(DataValidationError, match="no tensor 'c'"):
        load_embedding_matrix(tmp_path / "two.safetensors", ids, tensor_name="c")


def test_nan_rows_named(tmp_path: Path):
    matrix = np.ones((4, 2), np.float32)
    matrix[2, 1] = np.nan
    np.save(tmp_path / "e.npy", matrix)
    with pytest.raises(DataValidationError, match=r"1 rows hold NaN.*item ids: y"):
        load_embedding_matrix(tmp_path / "e.npy", ["w", "x", "y", "z"])


def test_parquet_keyed_by_id(tmp_path: Path):
    frame = pl.DataFrame(
        {"item_id": [3, 1, 2, 9], "vec": [[3.0, 3.0], [1.0, 1.0], [2.0, 2.0], [9.0, 9.0]]}
    )
    frame.write_parquet(tmp_path / "v.parquet")
    out = load_embedding_matrix(tmp_path / "v.parquet", ["1", "2", "3"])  # extra id 9 ignored
    np.testing.assert_array_equal(out[:, 0], [1, 2, 3])
    ids, raw = read_embedding_file(tmp_path / "v.parquet")
    assert ids == ["3", "1", "2", "9"] and raw.shape == (4, 2)
    with pytest.raises(DataValidationError, match=r"no embedding for 2 of 4.*7, 8"):
        load_embedding_matrix(tmp_path / "v.parquet", ["1", "7", "8", "2"])
    # one numeric column per dimension
    pl.DataFrame({"item_id": ["a", "b"], "d0": [1.0, 2.0], "d1": [3, 4]}).write_parquet(
        tmp_path / "c.parquet"
    )
    np.testing.assert_array_equal(
        load_embedding_matrix(tmp_path / "c.parquet", ["b", "a"]), [[2, 4], [1, 3]]
    )


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pl.DataFrame({"id": ["a"], "v": [[1.0]]}), "no 'item_id' column"),
        (pl.DataFrame({"item_id": ["a", "a"], "v": [[1.0], [2.0]]}), "duplicate item ids"),
        (pl.DataFrame({"item_id": ["a", "b"], "v": [[1.0, 2.0], [1.0]]}), "different lengths"),
        (pl.DataFrame({"item_id": ["a", "b"], "v": [[1.0], None]}), "null"),
        (pl.DataFrame({"item_id": ["a", "b"], "v": ["x", "y"]}), "not numeric"),
        (pl.DataFrame({"item_id": ["a", "b"], "v": [[1.0, None], [1.0, 2.0]]}), "NaN"),
        (pl.DataFrame({"item_id": ["a", "b"], "d0": [1.0, None]}), "NaN"),
    ],
)
def test_parquet_errors(tmp_path: Path, frame: pl.DataFrame, message: str):
    frame.write_parquet(tmp_path / "bad.parquet")
    with pytest.raises(DataValidationError, match=message):
        load_embedding_matrix(tmp_path / "bad.parquet", ["a", "b"])


def test_unknown_or_absent_files(tmp_path: Path):
    with pytest.raises(DataValidationError, match="does not exist"):
        load_embedding_matrix(tmp_path / "nope.npy", ["a"])
    (tmp_path / "e.csv").write_text("1,2\n")
    with pytest.raises(DataValidationError, match="unknown embedding file type"):
        load_embedding_matrix(tmp_path / "e.csv", ["a"])
    np.save(tmp_path / "flat.npy", np.ones(3))
    with pytest.raises(DataValidationError, match="2-D"):
        load_embedding_matrix(tmp_path / "flat.npy", ["a"])
