"""The work behind ``onerec tokenize``: get item embeddings, fit one or both methods, save.

Kept apart from the CLI so it can be called (and tested) without typer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from onerec.errors import OnerecError
from onerec.io import atomic_write_json
from onerec.tokenizer.config import EmbeddingSourceConfig, TokenizerConfig
from onerec.tokenizer.embeddings import (
    collaborative_embeddings,
    load_embedding_matrix,
    read_embedding_file,
    text_embeddings,
)
from onerec.tokenizer.semantic import SemanticTokenizer

DEFAULT_CACHE_DIR = Path("~/.cache/onerec/embeddings")


@dataclass(frozen=True)
class ItemEmbeddings:
    """Embeddings ``[N, d]`` with row ``i`` = ``item_idx`` ``i``, the ids in that order, and
    a short description of where they came from."""

    matrix: np.ndarray
    item_ids: list[str]
    description: str


def build_embeddings(
    source: str | None,
    config: EmbeddingSourceConfig,
    data_root: str | Path | None = None,
    show_progress: bool = True,
    sequences: Sequence[np.ndarray] | None = None,
) -> ItemEmbeddings:
    """Item embeddings for a data set (name or prepared dir) or from a file alone.

    ``sequences`` (``item_idx`` arrays) are what collaborative vectors are counted on; ``None``
    means every user's whole sequence. Training recipes pass their training split, and then an
    item that co-occurs with nothing there gets a zero collaborative vector (instead of an
    error): it is one of the few items seen only in held-out positions.
    """
    if config.kind == "file" and not config.path:
        raise OnerecError("embeddings kind 'file' needs a path (--embeddings PATH)")
    if source is None:
        if config.kind != "file":
            raise OnerecError(
                f"{config.kind} embeddings need a data set: give a name (e.g. amazon-beauty) or "
                "a prepared directory, or pass --embeddings PATH to a matrix file"
            )
        assert config.path is not None
        ids, matrix = read_embedding_file(config.path, config.tensor_name)
        item_ids = ids if ids is not None else [str(i) for i in range(len(matrix))]
        matrix = load_embedding_matrix(config.path, item_ids, tensor_name=config.tensor_name)
        return ItemEmbeddings(matrix, item_ids, f"file {config.path}")

    from onerec.data import load_dataset

    dataset = load_dataset(source, data_root=data_root)
    items = dataset.items.sort("item_idx")
    item_ids = items["item_id"].cast(str).to_list()
    if config.kind == "file":
        assert config.path is not None
        matrix = load_embedding_matrix(config.path, item_ids, tensor_name=config.tensor_name)
        return ItemEmbeddings(matrix, item_ids, f"file {config.path}")
    collab: np.ndarray | None = None
    collab_note = f"collaborative PPMI+SVD dim {config.collab_dim} window {config.collab_window}"
    if config.kind in ("collab", "text+collab"):
        collab = collaborative_embeddings(
            dataset.sequences() if sequences is None else sequences,
            dataset.num_items,
            config.collab_dim,
            config.collab_window,
            on_missing="error" if sequences is None else "zero",
        )
        if sequences is not None:
            collab_note += " (training split only)"
        if config.kind == "collab":
            return ItemEmbeddings(collab, item_ids, collab_note)
    cache_dir = Path(config.cache_dir) if config.cache_dir else DEFAULT_CACHE_DIR
    matrix = text_embeddings(
        items,
        config.text_columns,
        cache_dir,
        batch_size=config.batch_size,
        device=config.device,
        on_missing=config.on_missing_text,
        placeholder=config.placeholder,
        show_progress=show_progress,
    )
    text_note = f"text MiniLM over {config.text_columns}"
    if collab is None:
        return ItemEmbeddings(matrix, item_ids, text_note)
    return ItemEmbeddings(
        concat_unit_rows(matrix, collab, config.collab_weight),
        item_ids,
        f"{text_note} + {config.collab_weight} x {collab_note}",
    )


def concat_unit_rows(first: np.ndarray, second: np.ndarray, second_weight: float) -> np.ndarray:
    """``[N, a] ⊕ [N, b] -> [N, a + b]`` float32: each part's rows L2-normalised (zero rows stay
    zero), the second scaled by ``second_weight``, so its share of a squared distance is set by
    the weight and not by the two sources' native scales."""

    def unit(rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.float32)
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return rows / np.where(norms > 0, norms, 1.0)

    if len(first) != len(second):
        raise OnerecError(f"cannot join {len(first)} and {len(second)} embedding rows")
    return np.concatenate([unit(first), second_weight * unit(second)], axis=1)


def fit_methods(
    embeddings: np.ndarray, config: TokenizerConfig, compare: bool, show_progress: bool = True
) -> dict[str, SemanticTokenizer]:
    """Fit ``config.method`` (first) and, with ``compare``, the other method too."""
    methods = [config.method]
    if compare:
        methods.append("plain" if config.method == "balanced" else "balanced")
    return {
        m: SemanticTokenizer.fit(
            embeddings, None, config.model_copy(update={"method": m}), show_progress=show_progress
        )
        for m in methods
    }


def save_run(
    out_dir: str | Path,
    fitted: dict[str, SemanticTokenizer],
    embeddings: ItemEmbeddings,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save the first tokenizer in ``fitted`` to ``out_dir`` with ``diagnostics.json`` (all
    methods) and ``item_ids.json`` (ids in ``item_idx`` order) beside it."""
    out = Path(out_dir)
    main = next(iter(fitted.values()))
    main.save(out)
    atomic_write_json(
        out / "diagnostics.json",
        {
            "embeddings": embeddings.description,
            "methods": {m: t.diagnostics() for m, t in fitted.items()},
            **(extra or {}),
        },
    )
    atomic_write_json(out / "item_ids.json", embeddings.item_ids)
    return out
