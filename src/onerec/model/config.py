"""``GeneratorConfig``: every size and switch of the OneRec encoder–decoder.

Named sizes (``tiny``, ``small``, ``base``) live in :data:`NAMED_SIZES`; ``GeneratorConfig.named``
builds one for a given tokenizer, and :func:`onerec.model.sizes.size_table` prints total and
active parameter counts.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from onerec.config import StrictModel
from onerec.model.moe import LoadBalance


class GeneratorConfig(StrictModel):
    """Architecture of :class:`onerec.model.generator.OneRecGenerator`.

    The decoder vocabulary is per code level: one output head per level (``codebook_sizes[l]``
    logits), stacked into one ``[levels, max_codebook, d_model]`` weight so a training batch
    computes every position's head in a single batched matmul; positions beyond a level's
    codebook size get ``-inf``. Decoder *input* tokens share one embedding table with level
    offsets: row 0 is ``[BOS]``, row ``1 + offset_l + code`` is code ``code`` at level ``l``.
    """

    codebook_sizes: list[int] = Field(min_length=1)
    d_model: int = Field(128, ge=8)
    num_heads: int = Field(4, ge=1)
    encoder_layers: int = Field(2, ge=1)
    decoder_layers: int = Field(2, ge=1)
    encoder_ffn_hidden: int = Field(512, ge=1)
    ffn: Literal["moe", "dense"] = "moe"
    num_experts: int = Field(8, ge=1)
    top_k: int = Field(2, ge=1)
    expert_hidden: int = Field(256, ge=1)
    renormalize_gates: bool = True
    load_balance: LoadBalance = "aux_loss"
    bias_update_rate: float = Field(1e-3, ge=0.0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)  # embeddings and residual branches
    # Dropout on attention weights; any > 0 makes SDPA ~1.7x slower on CPU.
    attention_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    max_history: int = Field(20, ge=1)
    max_session_items: int = Field(5, ge=1)
    item_embedding: Literal["sum", "concat"] = "sum"
    share_code_embeddings: bool = True
    tie_output_heads: bool = False  # level heads reuse the code input embeddings
    code_hash_buckets: int = Field(0, ge=0)  # > 0: hashed item-ID embedding in the encoder
    num_user_buckets: int = Field(0, ge=0)  # > 0: a user-feature embedding token (id % buckets)

    @model_validator(mode="after")
    def _check(self) -> GeneratorConfig:
        if self.d_model % self.num_heads:
            raise ValueError(
                f"d_model {self.d_model} must be divisible by num_heads {self.num_heads}"
            )
        if self.top_k > self.num_experts:
            raise ValueError(f"top_k {self.top_k} exceeds num_experts {self.num_experts}")
        if any(size < 1 for size in self.codebook_sizes):
            raise ValueError("codebook_sizes must be positive")
        return self

    @property
    def num_code_levels(self) -> int:
        return len(self.codebook_sizes)

    @property
    def code_offsets(self) -> list[int]:
        """Start of each level's codes inside the shared token table (after ``[BOS]``)."""
        offsets, total = [], 0
        for size in self.codebook_sizes:
            offsets.append(total)
            total += size
        return offsets

    @property
    def token_vocab_size(self) -> int:
        """``[BOS]`` plus every level's codes."""
        return 1 + sum(self.codebook_sizes)

    @property
    def max_decoder_len(self) -> int:
        """``[BOS] c¹…c^C`` per item, minus the last token that is never an input."""
        return self.max_session_items * (self.num_code_levels + 1)

    @classmethod
    def named(cls, size: str, codebook_sizes: list[int], **overrides: Any) -> GeneratorConfig:
        """A named size for a tokenizer's ``codebook_sizes``, with field overrides."""
        if size not in NAMED_SIZES:
            raise ValueError(f"unknown generator size {size!r}; choose from {sorted(NAMED_SIZES)}")
        return cls(codebook_sizes=codebook_sizes, **{**NAMED_SIZES[size], **overrides})


NAMED_SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(
        d_model=32,
        num_heads=2,
        encoder_layers=1,
        decoder_layers=1,
        encoder_ffn_hidden=64,
        num_experts=4,
        top_k=2,
        expert_hidden=32,
    ),
    "small": dict(
        d_model=128,
        num_heads=4,
        encoder_layers=2,
        decoder_layers=2,
        encoder_ffn_hidden=512,
        num_experts=8,
        top_k=2,
        expert_hidden=256,
    ),
    "base": dict(
        d_model=256,
        num_heads=8,
        encoder_layers=4,
        decoder_layers=4,
        encoder_ffn_hidden=1024,
        num_experts=16,
        top_k=2,
        expert_hidden=512,
    ),
}
