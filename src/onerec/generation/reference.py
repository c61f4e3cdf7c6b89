"""Plain reference beam search: one user at a time, Python lists, no cache.

Every step re-runs the *whole* model (encoder and decoder) on each beam's full decoder input and
asks the trie for allowed codes with ``allowed_next`` / ``lookup``. Slow by design; it exists so
:func:`onerec.generation.beam_search.search` can be checked against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from onerec.model.generator import OneRecGenerator
from onerec.model.targets import BOS_TOKEN
from onerec.tokenizer.trie import PrefixTrie


@dataclass
class ReferenceBeam:
    """One partial session."""

    tokens: list[int]  # decoder input so far, starting with [BOS]
    items: list[int]  # completed items
    codes: list[int]  # codes of the item in progress
    score: float  # summed log-probabilities


@torch.no_grad()
def reference_beam_search(
    model: OneRecGenerator,
    history_codes: torch.Tensor,  # [U, S, C]
    history_mask: torch.Tensor,  # [U, S]
    trie: PrefixTrie,
    beam_width: int,
    session_items: int = 1,
    exclude_items: list[set[int]] | None = None,
) -> list[list[tuple[tuple[int, ...], float]]]:
    """Per user, up to ``beam_width`` ``(items, score)`` best first."""
    levels = model.config.num_code_levels
    offsets = model.config.code_offsets
    results = []
    for user in range(history_codes.shape[0]):
        excluded = exclude_items[user] if exclude_items is not None else set()
        beams = [ReferenceBeam(tokens=[BOS_TOKEN], items=[], codes=[], score=0.0)]
        for _item_number in range(session_items):
            for level in range(levels):
                candidates: list[ReferenceBeam] = []
                for beam in beams:
                    decoder_input = torch.tensor([beam.tokens], device=history_codes.device)
                    logits = model(
                        history_codes[user : user + 1], history_mask[user : user + 1], decoder_input
                    ).logits
                    size = model.config.codebook_sizes[level]
                    logprobs = torch.log_softmax(logits[0, -1, :size], dim=-1)
                    for code in trie.allowed_next(beam.codes):
                        codes = [*beam.codes, int(code)]
                        items = beam.items
                        if level == levels - 1:
                            item = trie.lookup(codes)
                            if item is None or item in excluded or item in beam.items:
                                continue
                            items = [*beam.items, item]
                            codes = []
                        token = 1 + offsets[level] + int(code)
                        tokens = [*beam.tokens, token]
                        if level == levels - 1:
                            tokens.append(BOS_TOKEN)
                        score = beam.score + float(logprobs[int(code)])
                        candidates.append(ReferenceBeam(tokens, items, codes, score))
                candidates.sort(key=lambda b: -b.score)
                beams = candidates[:beam_width]
        results.append([(tuple(b.items), b.score) for b in beams])
    return results
