"""Parameter counts of the generator: total, and *active* (what one decoder token touches).

Active = total minus the experts a token does not use: in each MoE layer only ``top_k`` of the
``num_experts`` expert MLPs run per token. Embedding tables are counted in both totals (they are
parameters), and reported separately because lookups cost no FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from onerec.model.config import NAMED_SIZES, GeneratorConfig
from onerec.model.generator import OneRecGenerator
from onerec.model.moe import GroupedExperts


@dataclass(frozen=True)
class ParameterCounts:
    """Parameter counts of one model."""

    total: int
    active: int  # total minus unused experts
    embedding: int  # token, position and user tables
    encoder_matmul: int  # encoder non-embedding weights (per encoder token)
    decoder_matmul_active: int  # decoder non-embedding weights one token uses, heads excluded
    head_per_token: int  # one level head (d_model * mean codebook size)


def parameter_counts(model: OneRecGenerator) -> ParameterCounts:
    """Count ``model``'s parameters (shared tables counted once)."""
    config = model.config
    total = sum(p.numel() for p in model.parameters())
    inactive = 0
    for module in model.modules():
        if isinstance(module, GroupedExperts):
            per_expert = sum(p[0].numel() for p in module.parameters())
            inactive += (module.num_experts - config.top_k) * per_expert
    embedding_ids = set()
    embedding = 0
    for module in model.modules():
        if isinstance(module, nn.Embedding) and id(module.weight) not in embedding_ids:
            embedding_ids.add(id(module.weight))
            embedding += module.weight.numel()
    encoder_matmul = sum(
        p.numel()
        for name, p in model.encoder.named_parameters()
        if _is_matmul_weight(name, p.dim())
    )
    decoder_matmul = 0
    for layer in model.decoder.layers:
        for name, p in layer.named_parameters():
            if not _is_matmul_weight(name, p.dim()):
                continue
            decoder_matmul += p[0].numel() * config.top_k if "experts.w_" in name else p.numel()
    mean_codes = sum(config.codebook_sizes) / len(config.codebook_sizes)
    return ParameterCounts(
        total=total,
        active=total - inactive,
        embedding=embedding,
        encoder_matmul=encoder_matmul,
        decoder_matmul_active=decoder_matmul,
        head_per_token=int(config.d_model * mean_codes),
    )


def _is_matmul_weight(name: str, dims: int) -> bool:
    # Weights that multiply activations: Linear weights and expert matrices, not norms/biases.
    if (
        name.endswith(("bias", ".b_in", ".b_out"))
        or "norm" in name
        or "embedding" in name
        or "recency" in name
    ):
        return False
    return dims >= 2 and "table" not in name


def size_table(
    codebook_sizes: list[int], sizes: list[str] | None = None
) -> list[dict[str, object]]:
    """Total and active parameter counts of each named size for ``codebook_sizes``."""
    rows = []
    for name in sizes or list(NAMED_SIZES):
        counts = parameter_counts(OneRecGenerator(GeneratorConfig.named(name, codebook_sizes)))
        rows.append(
            {
                "size": name,
                "total": counts.total,
                "active": counts.active,
                "embedding": counts.embedding,
            }
        )
    return rows


def print_size_table(codebook_sizes: list[int], sizes: list[str] | None = None) -> None:
    """Print :func:`size_table` as an aligned text table."""
    print(f"codebook sizes {codebook_sizes}")
    print(f"{'size':<8}{'total':>14}{'active':>14}{'embedding':>14}")
    for row in size_table(codebook_sizes, sizes):
        print(f"{row['size']:<8}{row['total']:>14,}{row['active']:>14,}{row['embedding']:>14,}")
