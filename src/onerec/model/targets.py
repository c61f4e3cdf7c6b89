"""Session-wise decoder sequences: ``[BOS] s₁¹…s₁^C [BOS] s₂¹…s₂^C …`` and their targets.

For a session of ``m`` items with ``C`` code levels the full sequence has ``m·(C+1)`` tokens;
the decoder input is all but the last token and the target of position ``p`` is the code at
``p+1``. Targets that are ``[BOS]`` (deterministic) or that belong to padded session slots are
``IGNORE_INDEX``. ``m = 1`` gives next-item prediction: input ``[BOS] c¹…c^{C-1}``, target
``c¹…c^C``.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100
BOS_TOKEN = 0


def code_token_ids(codes: torch.Tensor, code_offsets: torch.Tensor) -> torch.Tensor:
    """Level-local codes ``[..., C]`` -> ids in the shared token table (``1 + offset + code``)."""
    return codes + code_offsets + 1


def session_decoder_sequences(
    session_codes: torch.Tensor,  # [B, m, C] long, level-local codes
    session_mask: torch.Tensor,  # [B, m] bool, real items first
    code_offsets: torch.Tensor,  # [C] long
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return ``decoder_input [B, m(C+1)-1]`` token ids, ``targets`` (level-local codes) and
    ``input_mask`` (True where the input token belongs to a real session item)."""
    batch, items, levels = session_codes.shape
    device = session_codes.device
    mask = session_mask.bool()
    tokens = code_token_ids(session_codes, code_offsets.to(device))  # [B, m, C]
    tokens = torch.where(mask.unsqueeze(-1), tokens, BOS_TOKEN)
    bos = torch.full((batch, items, 1), BOS_TOKEN, dtype=torch.long, device=device)
    full_tokens = torch.cat([bos, tokens], dim=2).reshape(batch, items * (levels + 1))
    codes = torch.where(mask.unsqueeze(-1), session_codes, IGNORE_INDEX)
    ignored_bos = torch.full_like(bos, IGNORE_INDEX)
    full_targets = torch.cat([ignored_bos, codes], dim=2).reshape(batch, items * (levels + 1))
    input_mask = mask.repeat_interleave(levels + 1, dim=1)  # [B, m(C+1)]
    return full_tokens[:, :-1], full_targets[:, 1:], input_mask[:, :-1]
