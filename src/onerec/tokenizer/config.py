"""Configuration of the semantic-ID tokenizer and of the ``onerec tokenize`` run around it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from onerec.config import StrictModel


class TokenizerConfig(StrictModel):
    """How item embeddings become semantic IDs (residual k-means, L levels × K codes).

    ``method="balanced"`` (ours, the OneRec paper's remedy for codebook collapse) gives every
    cluster exactly ``floor(N/K)`` or ``ceil(N/K)`` items at every level; ``"plain"`` is faiss
    k-means with nearest-centroid assignment, kept as the reference/ablation.
    """

    levels: int = Field(default=3, ge=1, le=16, description="number of k-means levels L")
    codebook_size: int = Field(default=256, ge=2, description="codes per level K")
    method: Literal["balanced", "plain"] = "balanced"
    kmeans_iters: int = Field(
        default=20,
        ge=1,
        description="Lloyd iterations of faiss k-means (the plain fit; balanced init)",
    )
    balanced_iters: int = Field(
        default=8, ge=1, description="balanced assignment + centroid update rounds per level"
    )
    num_candidates: int = Field(
        default=32, ge=2, description="nearest centroids kept per item during balanced assignment"
    )
    seed: int = 0


class EmbeddingSourceConfig(StrictModel):
    """Where ``onerec tokenize`` gets item embeddings from.

    ``kind``: ``text`` (MiniLM over ``text_columns``), ``collab`` (PPMI co-occurrence + SVD over
    the interaction sequences), ``text+collab`` (both, each row L2-normalised, the collaborative
    part scaled by ``collab_weight``, concatenated) or ``file`` (``path``: ``.npy``, ``.parquet``
    or ``.safetensors``).

    Collaborative vectors count co-occurrences in the sequences they are given. ``onerec train``
    passes only the training split's sequences, so a benchmark's held-out pairs never shape the
    semantic IDs; ``onerec tokenize`` uses every interaction of the data set.
    """

    kind: Literal["text", "collab", "text+collab", "file"] = "text"
    path: str | None = None
    text_columns: list[str] = Field(default_factory=lambda: ["text"])
    on_missing_text: Literal["error", "placeholder"] = "error"
    placeholder: str = "unknown item"
    batch_size: int = Field(default=128, ge=1)
    device: str = "auto"
    cache_dir: str | None = None
    collab_dim: int = Field(default=64, ge=1)
    collab_window: int = Field(default=5, ge=1)
    collab_weight: float = Field(
        default=1.0, gt=0.0, description="text+collab: scale of the (unit) collaborative part"
    )
    tensor_name: str | None = None


class TokenizeRunConfig(StrictModel):
    """Everything ``onerec tokenize --config FILE`` reads (``[tokenizer]`` and ``[embeddings]``)."""

    tokenizer: TokenizerConfig = Field(default_factory=lambda: TokenizerConfig())
    embeddings: EmbeddingSourceConfig = Field(default_factory=lambda: EmbeddingSourceConfig())
