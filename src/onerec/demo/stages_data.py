"""Demo stages 1–3: prepare the data, embed the items, fit the semantic-ID tokenizer.

Each stage is a function ``(ctx, *outputs of the stages it needs) -> its output``; outputs are
small dataclasses holding the in-memory objects later stages use plus a JSON-able ``summary``
for the report.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from safetensors.numpy import save_file

from onerec.data import (
    DataSource,
    LeaveOneOutSplit,
    PreparedDataset,
    leave_one_out,
    prepare_dataset,
)
from onerec.demo.context import StageContext
from onerec.io import atomic_write_json
from onerec.tokenizer import SemanticTokenizer, collaborative_embeddings, text_embeddings

ALL_DIR = "all"
ENGAGED_DIR = "engaged"


@dataclass
class PreparedData:
    """The data set (every impression), its engaged-only view, and the leave-one-out split.

    ``engaged`` keeps the full item and user tables (same ``item_idx``/``user_idx``) but only
    the interactions the positive rule accepts; ``split`` is leave-one-out over its sequences.
    """

    dataset: PreparedDataset
    engaged: PreparedDataset
    split: LeaveOneOutSplit
    summary: dict[str, Any] = field(default_factory=dict)


def engaged_view(dataset: PreparedDataset, mask: np.ndarray, name: str) -> PreparedDataset:
    """The same tables with only the interactions where ``mask`` is True."""
    interactions = dataset.interactions.filter(pl.Series(mask))
    manifest = {
        **dataset.manifest,
        "name": name,
        "counts": {
            "users": dataset.num_users,
            "items": dataset.num_items,
            "interactions": interactions.height,
        },
        "notes": [*dataset.manifest.get("notes", []), f"engaged-only view of {dataset.name}"],
    }
    return PreparedDataset(interactions, dataset.items, dataset.users, manifest, name)


def run_prepare(ctx: StageContext) -> PreparedData:
    """Read + validate the source (``onerec prepare``), then derive the engaged view."""
    cfg = ctx.config.data
    source = DataSource(
        dataset=cfg.dataset,
        interactions=Path(cfg.interactions) if cfg.interactions else None,
        items=Path(cfg.items) if cfg.items else None,
    )
    with ctx.stage_dir("prepare") as tmp:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dataset = prepare_dataset(source, tmp / ALL_DIR)
        for warning in caught:
            ctx.note("prepare", " ".join(str(warning.message).split()))
        mask = cfg.positive.mask(dataset.interactions)
        engaged_view(dataset, mask, f"{dataset.name}-engaged").save(tmp / ENGAGED_DIR)
    # Reload from the final location so every later stage sees real paths.
    dataset = PreparedDataset.load(ctx.path("prepare") / ALL_DIR)
    engaged = PreparedDataset.load(ctx.path("prepare") / ENGAGED_DIR)
    split = leave_one_out(engaged.sequences(), max_history=cfg.max_history)
    lengths = np.array([len(s) for s in engaged.sequences()])
    summary = {
        **dataset.summary(),
        "engaged_interactions": engaged.interactions.height,
        "engaged_rule": cfg.positive.model_dump(exclude_defaults=True),
        "users_with_engagement": int((lengths > 0).sum()),
        "evaluated_users": len(split.test),
        "short_users": split.num_short_users,
        "median_engaged_per_user": float(np.median(lengths)) if len(lengths) else 0.0,
    }
    return PreparedData(dataset, engaged, split, summary)


@dataclass
class ItemEmbeddings:
    """``[num_items, d]`` float32 item vectors (row = item_idx) and where they came from."""

    matrix: np.ndarray
    description: str
    summary: dict[str, Any] = field(default_factory=dict)


def run_embeddings(ctx: StageContext, data: PreparedData) -> ItemEmbeddings:
    """MiniLM over the items' text (default) or co-occurrence embeddings of engaged sequences."""
    cfg = ctx.config.embeddings
    items = data.dataset.items.sort("item_idx")
    if cfg.kind == "text":
        matrix = text_embeddings(
            items,
            cfg.text_columns,
            cfg.cache_dir,
            batch_size=cfg.batch_size,
            on_missing="placeholder",
            show_progress=ctx.show_progress,
        )
        description = f"MiniLM (all-MiniLM-L6-v2) over item columns {cfg.text_columns}"
    else:
        # Training sequences only: held-out targets must not shape the item IDs.
        matrix = collaborative_embeddings(
            data.split.train_sequences,
            data.dataset.num_items,
            cfg.collab_dim,
            cfg.collab_window,
            seed=ctx.config.seed,
            on_missing="zero",
        )
        description = (
            f"collaborative PPMI+SVD (dim {cfg.collab_dim}) over engaged training sequences"
        )
    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    with ctx.stage_dir("embeddings") as tmp:
        save_file({"embeddings": matrix}, str(tmp / "embeddings.safetensors"))
        atomic_write_json(
            tmp / "meta.json",
            {"description": description, "shape": list(matrix.shape), "kind": cfg.kind},
        )
    summary = {
        "description": description,
        "items": int(matrix.shape[0]),
        "dim": int(matrix.shape[1]),
    }
    return ItemEmbeddings(matrix, description, summary)


@dataclass
class FittedTokenizer:
    """The fitted tokenizer and where it was saved."""

    tokenizer: SemanticTokenizer
    path: Path
    summary: dict[str, Any] = field(default_factory=dict)


def cluster_sizes(codes: np.ndarray, codebook_size: int) -> list[list[int]]:
    """Per k-means level, the number of items on each code, largest first."""
    sizes = []
    for level in range(codes.shape[1]):
        counts = np.bincount(codes[:, level], minlength=codebook_size)
        sizes.append(sorted((int(c) for c in counts), reverse=True))
    return sizes


def run_tokenizer(ctx: StageContext, embeddings: ItemEmbeddings) -> FittedTokenizer:
    """Balanced residual k-means → unique semantic IDs (+ disambiguation level) and trie.

    With ``compare_plain`` the plain (nearest-centroid) residual k-means is fitted too, only
    for the report's balance plot; the demo uses the balanced tokenizer.
    """
    cfg = ctx.config.tokenizer.fit
    tokenizer = SemanticTokenizer.fit(embeddings.matrix, None, cfg, show_progress=ctx.show_progress)
    diagnostics = tokenizer.diagnostics()
    levels = tokenizer.num_levels
    summary: dict[str, Any] = {
        "method": cfg.method,
        "levels": levels,
        "codebook_sizes": tokenizer.codebook_sizes,
        "collision_rate": diagnostics.get("collision_rate"),
        "disambiguation_size": diagnostics.get("disambiguation_size"),
        "per_level": diagnostics.get("per_level", []),
        "cluster_sizes": cluster_sizes(tokenizer.codes[:, :levels], cfg.codebook_size),
        "fit_seconds": diagnostics.get("fit_seconds"),
        "embeddings": embeddings.description,
    }
    if ctx.config.tokenizer.compare_plain and cfg.method != "plain":
        plain = SemanticTokenizer.fit(
            embeddings.matrix, None, cfg.model_copy(update={"method": "plain"})
        )
        summary["plain"] = {
            "collision_rate": plain.diagnostics().get("collision_rate"),
            "per_level": plain.diagnostics().get("per_level", []),
            "cluster_sizes": cluster_sizes(plain.codes[:, :levels], cfg.codebook_size),
        }
    with ctx.stage_dir("tokenizer") as tmp:
        tokenizer.save(tmp / "semantic_ids")
        atomic_write_json(tmp / "diagnostics.json", {"balanced": diagnostics, **summary})
    return FittedTokenizer(tokenizer, ctx.path("tokenizer") / "semantic_ids", summary)
