"""``OneRecGenerator``: history encoder + session decoder with a sparse-MoE FFN.

Training calls :meth:`OneRecGenerator.forward` with a teacher-forced decoder input; generation
(``onerec.generation``) calls :meth:`encode` once per user, :meth:`start_decoding` to project
the cross-attention keys/values once, then :meth:`decode` step by step with the self-attention
KV cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from onerec.model.attention import KVPair
from onerec.model.config import GeneratorConfig
from onerec.model.decoder import DecoderRun, SessionDecoder
from onerec.model.encoder import EncoderOutput, HistoryEncoder
from onerec.model.targets import IGNORE_INDEX, session_decoder_sequences


@dataclass
class GeneratorOutput:
    """Teacher-forced forward result."""

    logits: torch.Tensor  # [B, T, V_max]; entries beyond a level's codebook are -inf
    aux_loss: torch.Tensor  # scalar: mean over MoE layers of N·Σ f_i P_i (0 when dense)
    expert_load: torch.Tensor | None  # [moe_layers, N] fraction of assignments per expert


@dataclass
class DecodingState:
    """Per-user cross-attention memory, shared by all of that user's beams."""

    memory_kv: list[KVPair]  # per layer, [U, H, S, Dh]
    memory_mask: torch.Tensor  # [U, S]


class OneRecGenerator(nn.Module):
    """Encoder–decoder generative recommender over semantic IDs."""

    code_offsets: torch.Tensor

    def __init__(self, config: GeneratorConfig) -> None:
        super().__init__()
        self.config = config
        width = config.d_model
        decoder_table = nn.Embedding(config.token_vocab_size, width)
        encoder_table = (
            decoder_table
            if config.share_code_embeddings
            else nn.Embedding(config.token_vocab_size, width)
        )
        self.encoder = HistoryEncoder(config, encoder_table)
        self.decoder = SessionDecoder(config, decoder_table)
        self.register_buffer(
            "code_offsets", torch.tensor(config.code_offsets, dtype=torch.long), persistent=False
        )
        self.apply(_init_weights)
        # GPT-2: residual-branch output projections scaled by 1/sqrt(2 * layers).
        scaled_std = 0.02 / math.sqrt(2 * (config.encoder_layers + config.decoder_layers))
        for name, param in self.named_parameters():
            if name.endswith(("attn.out.weight", "fc_out.weight")):
                nn.init.normal_(param, std=scaled_std)

    @torch.no_grad()
    def init_code_embeddings(self, centroids: torch.Tensor | np.ndarray) -> None:
        """Start code embeddings from the tokenizer's k-means centroids ``[L, K, d_emb]``.

        The centroids of all levels are projected on their top ``d_model`` principal directions
        and scaled to the mean row norm of a random init, so an item's input token (the sum of its codes) starts
        as a projection of its content embedding and similar items start close. Levels without
        centroids (the disambiguation level) keep their random rows.
        """
        points = torch.as_tensor(np.asarray(centroids), dtype=torch.float32)  # [L, K, e]
        levels, codes, _ = points.shape
        if levels > self.config.num_code_levels or codes > max(self.config.codebook_sizes):
            raise ValueError(
                f"centroids {tuple(points.shape)} do not fit codebook sizes {self.config.codebook_sizes}"
            )
        flat = points.reshape(levels * codes, -1)
        # PCA on all levels' centroids together (residual levels share one space).
        centred = flat - flat.mean(dim=0, keepdim=True)
        width = min(self.config.d_model, centred.shape[1], centred.shape[0])
        _, _, components = torch.linalg.svd(centred, full_matrices=False)
        projected = flat @ components[:width].T  # [L*K, width]
        # Same mean row norm as a randomly initialised row (std 0.02 in each of d_model dims).
        target_norm = 0.02 * math.sqrt(self.config.d_model)
        projected = projected * (target_norm / projected.norm(dim=1).mean().clamp(min=1e-12))
        table = self.decoder.token_table.weight
        for level in range(levels):
            size = min(codes, self.config.codebook_sizes[level])
            start = 1 + self.config.code_offsets[level]
            rows = projected[level * codes : level * codes + size].to(table.dtype)
            table[start : start + size].zero_()
            table[start : start + size, :width] = rows

    # -- training ---------------------------------------------------------------------------
    def encode(
        self,
        history_codes: torch.Tensor,  # [U, S, C]
        history_mask: torch.Tensor,  # [U, S]
        user_ids: torch.Tensor | None = None,  # [U]
    ) -> EncoderOutput:
        """Run the encoder over left-padded histories."""
        return self.encoder(history_codes, history_mask, user_ids)

    def forward(
        self,
        history_codes: torch.Tensor,  # [B, S, C]
        history_mask: torch.Tensor,  # [B, S]
        decoder_input: torch.Tensor,  # [B, T] token ids
        user_ids: torch.Tensor | None = None,
        decoder_mask: torch.Tensor | None = None,  # [B, T] real decoder tokens
    ) -> GeneratorOutput:
        """Teacher-forced logits for every decoder position."""
        encoded = self.encode(history_codes, history_mask, user_ids)
        state = self.start_decoding(encoded)
        run = self.decoder(decoder_input, state.memory_kv, state.memory_mask, decoder_mask)
        logits = self.decoder.logits(run.hidden)
        if run.moe_stats:
            aux = torch.stack([s.aux_loss for s in run.moe_stats]).mean()
            load: torch.Tensor | None = torch.stack([s.expert_load for s in run.moe_stats])
        else:
            aux, load = logits.new_zeros(()), None
        return GeneratorOutput(logits=logits, aux_loss=aux, expert_load=load)

    def sequence_logprob(
        self,
        history_codes: torch.Tensor,  # [B, S, C]
        history_mask: torch.Tensor,  # [B, S]
        session_codes: torch.Tensor,  # [B, m, C]
        session_mask: torch.Tensor,  # [B, m]
        user_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sum of the code log-probabilities of each session, ``[B]`` (for DPO)."""
        decoder_input, targets, input_mask = session_decoder_sequences(
            session_codes, session_mask, self.code_offsets
        )
        out = self(history_codes, history_mask, decoder_input, user_ids, input_mask)
        return token_logprobs(out.logits, targets).sum(dim=1)

    # -- generation -------------------------------------------------------------------------
    def start_decoding(self, encoded: EncoderOutput) -> DecodingState:
        """Project the memory to cross-attention keys/values once per user."""
        return DecodingState(
            memory_kv=self.decoder.project_memory(encoded.memory), memory_mask=encoded.memory_mask
        )

    def decode(
        self,
        tokens: torch.Tensor,  # [B, T_new], B = U * beams
        state: DecodingState,
        past_kv: list[KVPair] | None,
        start_position: int,
    ) -> DecoderRun:
        """Incremental decoder pass over new tokens, extending ``past_kv``."""
        return self.decoder(
            tokens,
            state.memory_kv,
            state.memory_mask,
            past_kv=past_kv,
            start_position=start_position,
        )

    def level_logprobs(self, hidden: torch.Tensor, level: int) -> torch.Tensor:
        """Log-softmax over level ``level``'s codes for states ``[B, d]`` -> ``[B, V_level]``."""
        return torch.log_softmax(self.decoder.level_logits(hidden, level), dim=-1)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Log-probability of each target ``[B, T]`` (0 where the target is ``IGNORE_INDEX``)."""
    valid = targets != IGNORE_INDEX
    logprobs = F.log_softmax(logits, dim=-1)  # [B, T, V]
    picked = logprobs.gather(2, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # [B, T]
    return torch.where(valid, picked, torch.zeros_like(picked))


def _init_weights(module: nn.Module) -> None:
    # nanoGPT's init for plain layers; expert and head weights initialise themselves.
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
