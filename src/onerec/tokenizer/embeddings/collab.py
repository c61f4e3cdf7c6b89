"""Collaborative item embeddings from interaction co-occurrence (PPMI + truncated SVD).

Two items co-occur when they appear within ``window`` positions of each other in a user's
sequence (both directions, weight 1, an item with itself not counted). The count matrix is
turned into positive pointwise mutual information,
``PPMI_ij = max(0, log(c_ij · C / (c_i · c_j)))`` with ``C`` the total count, kept sparse, and
factorised with a randomised truncated SVD (``torch.svd_lowrank``, seeded). An item's vector
is ``U_i · sqrt(S)``, L2-normalised.

An item that never co-occurs with another has no signal: by default that is an error naming the
first such items; ``on_missing="zero"`` keeps a zero vector for them instead (they then share
semantic codes and are told apart by the disambiguation level).

For embeddings of a *trained* model, load its item-embedding matrix with
:func:`onerec.tokenizer.embeddings.load_embedding_matrix` (safetensors, ``tensor_name=``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from onerec.errors import DataValidationError


def cooccurrence_counts(
    sequences: Sequence[np.ndarray], num_items: int, window: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric co-occurrence counts as COO ``(rows, cols, counts)``, unique pairs, i ≠ j."""
    lefts, rights = [], []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        if len(seq) and (seq.min() < 0 or seq.max() >= num_items):
            raise DataValidationError(
                f"a sequence holds item_idx {int(seq.min())}..{int(seq.max())}, outside "
                f"0..{num_items - 1}"
            )
        for offset in range(1, min(window, len(seq) - 1) + 1):
            lefts.append(seq[:-offset])
            rights.append(seq[offset:])
    if not lefts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    a, b = np.concatenate(lefts), np.concatenate(rights)
    keep = a != b
    a, b = a[keep], b[keep]
    keys = np.concatenate([a * num_items + b, b * num_items + a])
    unique, counts = np.unique(keys, return_counts=True)
    return unique // num_items, unique % num_items, counts


def ppmi_matrix(
    rows: np.ndarray, cols: np.ndarray, counts: np.ndarray, num_items: int
) -> torch.Tensor:
    """Sparse PPMI ``[num_items, num_items]`` from co-occurrence counts."""
    counts_f = counts.astype(np.float64)
    row_sum = np.bincount(rows, weights=counts_f, minlength=num_items)
    col_sum = np.bincount(cols, weights=counts_f, minlength=num_items)
    total = counts_f.sum()
    pmi = np.log(counts_f * total / (row_sum[rows] * col_sum[cols]))
    keep = pmi > 0
    indices = torch.from_numpy(np.stack([rows[keep], cols[keep]]))
    values = torch.from_numpy(pmi[keep].astype(np.float32))
    return torch.sparse_coo_tensor(
        indices, values, (num_items, num_items), check_invariants=True
    ).coalesce()


def collaborative_embeddings(
    sequences: Sequence[np.ndarray],
    num_items: int,
    dim: int = 64,
    window: int = 5,
    seed: int = 0,
    on_missing: Literal["error", "zero"] = "error",
) -> np.ndarray:
    """``[num_items, dim]`` float32 item vectors from co-occurrence (see module docstring)."""
    if dim >= num_items:
        raise DataValidationError(f"dim {dim} must be smaller than the number of items {num_items}")
    rows, cols, counts = cooccurrence_counts(sequences, num_items, window)
    ppmi = ppmi_matrix(rows, cols, counts, num_items)
    has_signal = np.zeros(num_items, dtype=bool)
    has_signal[ppmi.indices()[0].numpy()] = True
    missing = np.flatnonzero(~has_signal)
    if len(missing) and on_missing == "error":
        raise DataValidationError(
            f"{len(missing)} items never co-occur with another item within window {window} "
            f"(first item_idx: {missing[:5].tolist()})",
            hint="use text or file embeddings, a larger window, or on_missing='zero'",
        )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        u, s, _ = torch.svd_lowrank(ppmi, q=min(dim + 10, num_items), niter=4)
    finally:
        torch.random.set_rng_state(generator_state)
    vectors = (u[:, :dim] * s[:dim].sqrt()).numpy().astype(np.float32)  # [num_items, dim]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = np.where(norms > 0, vectors / np.maximum(norms, 1e-12), 0.0).astype(np.float32)
    vectors[~has_signal] = 0.0
    return vectors
